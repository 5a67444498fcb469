"""The dashboard's levers: per-sector levers -> scenario overrides, year tables as
written, one message with the allowed range for every bad value, warnings for a reserve
that cannot act, the URL query string, the lever panel's callbacks and Compare's
coverage warning. Pure functions, no run."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from dash import no_update

from etsim import ScenarioError, load_scenario, shipped_scenarios
from etsim.dashboard import levers as panel
from etsim.dashboard import runs
from etsim.model.scenario import schedule_value

INDUSTRY = ("steel", "cement", "aluminium")


def default(**changes: Any) -> dict[str, Any]:
    return dict(runs.default_levers(), **changes)


def test_default_run_is_china_2024_without_power():
    levers = runs.default_levers()
    assert levers["scenario"] == "china-2024"
    assert levers["sectors"] == list(INDUSTRY)
    assert runs.lever_overrides(levers) == {"sectors.power.enabled": False}
    scenario, seed, _ = runs.resolve(levers)
    expected = load_scenario("china-2024", {"sectors.power.enabled": False})
    assert scenario.digest() == expected.digest() and seed == 1


@pytest.mark.parametrize("name", shipped_scenarios())
def test_untouched_levers_leave_the_scenario_as_shipped(name):
    levers = runs.scenario_levers(name)
    assert runs.lever_overrides(levers) == {}
    assert runs.resolve(levers)[0].digest() == load_scenario(name).digest()


def test_levers_show_each_sectors_own_values():
    own = runs.scenario_levers("china-history")
    assert own["power.tightening_pct"] == "2022: 0.5, 2023: 3.86, 2024: 0.5, 2025: 1"
    assert own["steel.tightening_pct"] == "2"
    assert own["steel.cap_year"] is None and own["steel.cap_mt"] is None
    assert own["steel.cap_decline_pct"] == 2.0 and own["steel.pre_allocation_pct"] == 70.0
    capped = runs.scenario_levers("absolute-cap-2027")
    assert capped["steel.cap_year"] == 2027 and capped["power.cap_year"] is None
    assert runs.scenario_levers("paid-allocation")["cement.paid_share"] == (
        "2024: 0, 2026: 5, 2028: 10, 2030: 20")


def test_tightening_acts_on_its_sector_only():
    overrides = runs.lever_overrides(default(**{"steel.tightening_pct": "3"}))
    assert overrides["sectors.steel.allocation.tightening"] == pytest.approx(0.03)
    assert not any(k.startswith(("sectors.cement.allocation", "sectors.aluminium.allocation"))
                   for k in overrides)
    # a sector that is not chosen: its levers are ignored
    assert runs.lever_overrides(default(**{"power.tightening_pct": "9"})) == {
        "sectors.power.enabled": False}


def test_steel_moves_to_an_absolute_cap_in_2027_alone():
    scenario, _, overrides = runs.resolve(default(**{"steel.cap_year": 2027}))
    assert overrides["sectors.steel.allocation.rule"] == {
        "2024": "verified_emissions", "2025": "intensity", "2027": "absolute_cap"}
    for year, rule in ((2026, "intensity"), (2027, "absolute_cap"), (2030, "absolute_cap")):
        assert schedule_value(scenario.sectors["steel"].allocation.rule, year) == rule
    for sector in ("cement", "aluminium"):
        assert "absolute_cap" not in scenario.sectors[sector].allocation.rule.values()
    # switching a shipped cap off returns the sector to intensity benchmarks
    off = dict(runs.default_levers("absolute-cap-2027"), **{"steel.cap_year": None})
    rules = runs.resolve(off)[0].sectors
    assert "absolute_cap" not in rules["steel"].allocation.rule.values()
    assert rules["cement"].allocation.rule["2027"] == "absolute_cap"
    # a cap from the first year on a scenario with a single rule
    first = dict(runs.default_levers("classroom"), **{"steel.cap_year": 2025})
    assert runs.lever_overrides(first)["sectors.steel.allocation.rule"] == "absolute_cap"


def test_cap_level_decline_and_pre_allocation():
    scenario, _, overrides = runs.resolve(default(**{
        "steel.cap_year": 2027, "steel.cap_mt": 1500, "steel.cap_decline_pct": 4,
        "cement.pre_allocation_pct": 50}))
    steel = scenario.sectors["steel"].allocation
    assert steel.cap_base_t == pytest.approx(1.5e9) and steel.cap_decline == pytest.approx(0.04)
    assert scenario.sectors["cement"].allocation.pre_allocation_share == pytest.approx(0.5)
    assert "sectors.cement.allocation.cap_decline" not in overrides


def test_a_paid_share_year_table_applies_from_its_year():
    scenario, _, overrides = runs.resolve(default(**{"steel.paid_share": "2028: 20"}))
    paid = scenario.sectors["steel"].allocation.paid_share
    assert overrides["sectors.steel.allocation.paid_share"] == {"2024": 0.0, "2028": 0.2}
    assert [schedule_value(paid, y) for y in (2024, 2027, 2028, 2030)] == [0, 0, 0.2, 0.2]
    assert scenario.sectors["cement"].allocation.paid_share == 0.0
    # the same for a tightening table: 0% before its first year
    tight = runs.resolve(default(**{"cement.tightening_pct": "2027: 4"}))[0]
    assert schedule_value(tight.sectors["cement"].allocation.tightening, 2025) == 0.0
    assert schedule_value(tight.sectors["cement"].allocation.tightening, 2027) == 0.04


def test_schedule_text_forms():
    limits = runs.sector_range("steel", "paid_share")
    assert runs.parse_schedule("10", limits) == pytest.approx(0.1)
    assert runs.parse_schedule("", limits) == 0.0
    assert runs.parse_schedule("2026: 5, 2030: 20", limits) == {"2026": 0.05, "2030": 0.2}
    assert runs.parse_schedule("{2026 = 5; 2028 = 10%}", limits) == {"2026": 0.05,
                                                                     "2028": 0.1}
    shipped = runs.default_levers("paid-allocation")
    assert not any("paid_share" in key for key in runs.lever_overrides(shipped))


@pytest.mark.parametrize(("change", "text"), [
    ({"steel.tightening_pct": "60"},
     "steel: benchmark tightening: each value must be from 0 to 50% a year (got 60)"),
    ({"steel.tightening_pct": "lots"}, "steel: benchmark tightening: write a percentage"),
    ({"steel.paid_share": "2028: 100"},
     "steel: paid share (auction): each value must be from 0 to below 100% of quota"),
    ({"steel.cap_year": 2040}, "steel: absolute cap from year: must be a whole number from "
                               "2024 to 2030, or empty for no absolute cap (got 2040)"),
    ({"steel.cap_mt": -3}, "steel: cap in its first year: must be from 0.001 to 100,000 Mt"),
    ({"steel.cap_decline_pct": 80}, "steel: cap decline: must be from 0 to 50% a year"),
    ({"cement.pre_allocation_pct": 150}, "cement: pre-allocation: must be from 0 to 100%"),
    ({"banking_limit_t": -5}, "Banking limit: must be a number of at least 0 t per firm, "
                              "or empty for no limit (got -5)"),
    ({"release_price": None}, "Reserve: release above: enter a value from 1 to 10,000 CNY/t"),
    ({"price_limit_pct": 0}, "Daily price limit: must be from 1 to 100% (got 0)"),
    ({"penalty_multiple": "x"}, "Penalty: must be from 0 to 100 x the mean price"),
    ({"seed": -1}, "Seed: must be a whole number from 0 to"),
    ({"n_firms": 1}, "Number of firms: must be a whole number from 3 to 14400 firms"),
    ({"sectors": []}, "Sectors: choose at least one sector"),
    ({"reserve_policy": "price_trigger", "absorb_price": 150},
     "Reserve: buy back below (150 CNY/t) must be below release above (120 CNY/t)"),
    ({"set_aside_pct": 2}, "Reserve pool: the policy is none"),
])
def test_bad_levers_raise_one_message_with_the_range(change, text):
    with pytest.raises((runs.LeverError, ScenarioError)) as err:
        runs.resolve(default(**change))
    assert text in runs.lever_error_message(err.value)
    assert "a number is needed" not in str(err.value)


def test_a_reserve_that_cannot_act_is_said_before_the_run():
    empty = default(reserve_policy="price_trigger")
    errors, warnings = panel.check_levers(empty)
    assert errors == [] and len(warnings) == 1
    assert "holds nothing" in warnings[0] and "120 CNY/t" in warnings[0]
    held = default(reserve_policy="price_trigger", set_aside_pct=2)
    assert panel.check_levers(held) == ([], [])
    assert panel.check_levers(default()) == ([], [])
    errors, _ = panel.check_levers(default(set_aside_pct=2))
    assert "policy is none" in errors[0]


def test_lever_changes_describe_a_run():
    levers = default(**{"steel.tightening_pct": "5", "steel.cap_year": 2027})
    label = runs.run_label(levers, {"scenario": "china-2024", "firms": 1440, "seed": 1,
                                    "sectors": levers["sectors"]})
    assert label == ("china-2024 (steel, cement, aluminium), 1,440 firms, seed 1; "
                     "steel: tightening 5% a year, steel: absolute cap from 2027")


# --- URL -------------------------------------------------------------------------------


def test_url_holds_only_changed_levers_and_reopens_them():
    levers = default(**{"steel.tightening_pct": "3", "steel.cap_year": 2027, "seed": 4})
    query = panel.levers_query(levers)
    pairs = dict(parse_qsl(urlsplit(query).query, keep_blank_values=True))
    assert pairs == {"scenario": "china-2024", "sectors": "steel,cement,aluminium",
                     "steel.tightening_pct": "3", "steel.cap_year": "2027", "seed": "4"}
    reopened = panel.levers_from_query(pairs, runs.default_levers())
    assert runs.resolve(reopened)[0].digest() == runs.resolve(levers)[0].digest()
    # another scenario in the URL starts from that scenario's levers
    other = panel.levers_from_query({"scenario": "reserve-pool", "sectors": "steel"},
                                    runs.default_levers())
    assert other["reserve_policy"] == "price_trigger" and other["n_firms"] == 680


def test_bad_url_values_get_the_range_message():
    opened = panel.levers_from_query({"banking_limit_t": "-5", "steel.cap_year": "soon"},
                                     runs.default_levers())
    errors, _ = panel.check_levers(opened)  # one message at a time, the sector's first
    assert errors == ["steel: absolute cap from year: must be a whole number from 2024 to "
                      "2030, or empty for no absolute cap (got 'soon')"]
    errors, _ = panel.check_levers(dict(opened, **{"steel.cap_year": None}))
    assert errors == ["Banking limit: must be a number of at least 0 t per firm, or empty "
                      "for no limit (got -5)"]


# --- lever panel callbacks ---------------------------------------------------------------


def test_lever_values_round_trip():
    levers = default(banking=False, **{"steel.cap_year": 2027})
    shown = panel.values_from_levers(levers)
    assert shown[panel.LEVER_KEYS.index("banking")] == []
    assert panel.levers_from_values(shown) == {k: levers.get(k) for k in panel.LEVER_KEYS}


def test_sync_levers_follows_scenario_sectors_and_the_sessions_run():
    keys = panel.LEVER_KEYS
    out = panel.sync_levers("explore-scenario", "explore", "paid-allocation", ["steel"], None)
    assert out[0] is no_update
    assert out[keys.index("sectors")] == ["power", "steel", "cement", "aluminium"]
    assert out[keys.index("steel.paid_share")] == "2024: 0, 2026: 5, 2028: 10, 2030: 20"
    assert out[keys.index("n_firms")] == 3640
    out = panel.sync_levers("explore-sectors", "explore", "china-2024", ["steel"], None)
    assert out[keys.index("n_firms")] == 680
    assert all(v is no_update for i, v in enumerate(out) if i != keys.index("n_firms"))
    saved = default(**{"steel.tightening_pct": "4"})
    out = panel.sync_levers(None, "explore", "china-2024", [], saved)
    assert out[keys.index("steel.tightening_pct")] == "4"
    assert all(v is no_update for v in panel.sync_levers("explore-scenario", "explore",
                                                         "nope", [], None))


def test_the_page_says_what_the_scenario_includes():
    assert panel.coverage_text(runs.scenario_levers("china-2024")) == (
        "china-2024 includes power, steel, cement, aluminium (3,640 firms), 2024-2030.")
    assert panel.coverage_text(runs.default_levers()).endswith(
        "This run: steel, cement, aluminium (1,440 firms).")


def test_compare_warns_when_a_and_b_differ_in_coverage():
    from etsim.dashboard.app import create_app

    create_app()
    from etsim.dashboard.pages import compare

    a, b = runs.default_levers(), runs.scenario_levers("china-2024")
    text = compare.coverage_warning(a["sectors"], a["n_firms"], b["sectors"], b["n_firms"])
    assert text.startswith("A and B cover different markets: A steel, cement, aluminium "
                           "(1,440 firms), B power, steel, cement, aluminium (3,640 firms)")
    assert compare.coverage_warning(a["sectors"], 1440, list(reversed(a["sectors"])),
                                    1440) == ""
    assert compare.align(1, a["sectors"], "china-2024") == a["sectors"]
