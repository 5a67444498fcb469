"""Scenario files: the shipped scenarios, the bad-file corpus, schedules, overrides, digests
and the `etsim validate` command-line contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from etsim.agents.sectors import SECTOR_LIBRARY
from etsim.model.scenario import (
    Scenario,
    ScenarioError,
    apply_overrides,
    build_scenario,
    load_scenario,
    parse_override_value,
    schedule_value,
    shipped_scenarios,
)

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "bad_scenarios"
COVERED = ("power", "steel", "cement", "aluminium")

# Each bad file -> fragments its ScenarioError message must contain (the key first).
BAD_FILES: dict[str, tuple[str, ...]] = {
    "unknown_top_level_key": ("unknown key 'start_yaer'", "allowed keys here", "start_year"),
    "unknown_section": ("unknown key 'markets'", "market"),
    "unknown_section_key": ("unknown key 'penalty.multiplier'", "deduct_shortfall, multiple"),
    "unknown_sector_key": ("unknown key 'sectors.steel.firmz'", "firms"),
    "unknown_allocation_key": ("unknown key 'sectors.cement.allocation.tightenning'",),
    "wrong_type": ("'market.initial_price'", "valid number"),
    "wrong_type_firms": ("'sectors.aluminium.firms'", "integer"),
    "negative_penalty_multiple": ("'penalty.multiple'", "greater than or equal to 0"),
    "tightening_one": ("'sectors.steel.allocation.tightening'", "below 1"),
    "tightening_schedule_too_high": ("'sectors.steel.allocation.tightening'", "below 1"),
    "paid_share_one": ("'sectors.power.allocation.paid_share'", "below 1"),
    "adjustment_factor_zero": ("'sectors.steel.allocation.adjustment_factor'", "above 0"),
    "unknown_allocation_rule": (
        "'sectors.power.allocation.rule'",
        "verified_emissions, intensity, absolute_cap",
    ),
    "unknown_rule_in_schedule": ("'sectors.steel.allocation.rule'", "allocation rule"),
    "bad_pre_allocation_basis": (
        "'sectors.steel.allocation.pre_allocation_basis'",
        "previous_verified",
    ),
    "bad_year_key": ("'sectors.steel.allocation.paid_share'", "year keys", "'next'"),
    "year_key_out_of_range": ("'sectors.cement.allocation.adjustment_factor'", "'3000'"),
    "end_before_start": ("key 'end_year'", "must not be before start_year"),
    "horizon_too_long": ("at most 31 years",),
    "absorb_above_release": ("key 'reserve_pool.absorb_price'", "must be below release_price"),
    "tnac_lower_above_upper": ("key 'reserve_pool.tnac_lower'", "must be below tnac_upper"),
    "unknown_reserve_policy": ("'reserve_pool.policy'", "none, price_trigger, bank_based"),
    "unknown_strategy": ("'trading.strategy'", "budget_constrained, zero_intelligence, zip"),
    "strategy_mix_shares": ("'trading.strategy_mix.steel'", "add up to 1"),
    "unknown_expectations": ("'trading.expectations'", "adaptive, trend_following, fundamental"),
    "not_toml": ("not valid TOML", "line 2"),
    "no_sectors_enabled": ("key 'sectors'", "at least one sector must be enabled"),
    "zero_firms": ("key 'sectors'", "with firms > 0"),
    "sectors_not_table": ("'sectors'", "table of sector tables"),
    "sector_not_table": ("'sectors.steel'", "must be a table"),
    "pre_allocation_after_true_up": (
        "key 'compliance.pre_allocation_month'", "must not come after true_up_month"
    ),
    "true_up_after_deadline": (
        "key 'compliance.true_up_month'", "true_up_month <= deadline_month"
    ),
    "month_out_of_range": ("'compliance.deadline_month'",),
    "auction_month_out_of_range": ("'auction.months'", "months 1 to 12", "13"),
    "auction_months_empty": ("'auction.months'", "non-empty"),
    "bad_unsold": ("'auction.unsold'", "'reserve' or 'cancel'"),
    "cost_range_not_holding_cost": (
        "key 'sectors.steel.abatement.0.capital_cost_range'", "low <= capital_cost"
    ),
    "abatement_levelised_cost_given": (
        "key 'sectors.steel.abatement.0.cost_per_t'", "capital_cost, operating_cost"
    ),
    "peer_degree_odd": ("key 'investment.peer_degree'", "even"),
    "province_shares_not_one": ("key 'sectors.steel.provinces'", "add up to 1"),
    "unknown_order_expiry": ("key 'market.order_expiry'", "'day' or 'gtc'", "'week'"),
    "financial_skew_above_half_spread": ("key 'financial.inventory_skew'", "spread / 2"),
    "financial_quote_block_size": ("key 'financial.quote_t'", "below market.block_min_t"),
    "number_as_string": ("key 'penalty.multiple'", "valid number", "'5'"),
    "boolean_as_string": ("key 'sectors.steel.enabled'", "valid boolean", "'yes'"),
    "entry_after_horizon": ("key 'sectors'", "entry_year no later than end_year"),
    "abatement_missing_key": ("'sectors.cement.abatement.0.lead_time_years'", "required"),
    "abatement_reduction_too_large": (
        "'sectors.aluminium.abatement.0.intensity_reduction'",
        "less than 1",
    ),
    "new_sector_missing_keys": ("'sectors.glass.entry_year'", "required"),
    "scale_zero": ("'scale'", "greater than 0"),
}

# Bad files for the command-line test: file -> the key the message must name.
CLI_BAD_FILES = {
    "unknown_section_key": "penalty.multiplier",
    "wrong_type": "market.initial_price",
    "unknown_allocation_rule": "sectors.power.allocation.rule",
    "auction_month_out_of_range": "auction.months",
}


# --- the bad-file corpus -------------------------------------------------------------


def test_corpus_and_expectations_match() -> None:
    on_disk = {p.stem for p in BAD.glob("*.toml")}
    assert len(on_disk) >= 15
    assert on_disk == set(BAD_FILES), (
        f"files without expectations: {sorted(on_disk - set(BAD_FILES))}; "
        f"expectations without files: {sorted(set(BAD_FILES) - on_disk)}"
    )


@pytest.mark.parametrize("stem", sorted(BAD_FILES))
def test_bad_scenario_gives_a_clear_message(stem: str) -> None:
    path = BAD / f"{stem}.toml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    assert "\n" not in message, message
    for fragment in BAD_FILES[stem]:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --- shipped scenarios ---------------------------------------------------------------


def test_the_five_scenarios_are_shipped() -> None:
    expected = {"china-2024", "absolute-cap-2027", "paid-allocation", "reserve-pool", "classroom"}
    assert expected <= set(shipped_scenarios())


@pytest.mark.parametrize("name", shipped_scenarios())
def test_every_shipped_scenario_loads(name: str) -> None:
    scenario = load_scenario(name)
    assert isinstance(scenario, Scenario)
    assert scenario.name == name
    assert scenario.description
    assert load_scenario(ROOT / "scenarios" / f"{name}.toml") == scenario


def test_default_scenario_is_china_2024() -> None:
    assert load_scenario() == load_scenario("china-2024")


def test_china_2024() -> None:
    s = load_scenario("china-2024")
    assert (s.start_year, s.end_year, s.last_calendar_year) == (2024, 2030, 2031)
    assert [n for n, sec in s.sectors.items() if sec.enabled] == list(COVERED)
    for name in ("chemicals", "petrochemicals", "aviation", "paper"):
        assert not s.sectors[name].enabled
    power = s.sectors["power"].allocation
    assert schedule_value(power.rule, 2024) == "intensity"
    assert schedule_value(power.tightening, 2027) == pytest.approx(0.01)
    for name in ("steel", "cement", "aluminium"):
        alloc = s.sectors[name].allocation
        assert schedule_value(alloc.rule, 2024) == "verified_emissions"
        assert [schedule_value(alloc.rule, y) for y in (2025, 2030)] == ["intensity"] * 2
        assert schedule_value(alloc.tightening, 2026) == pytest.approx(0.02)
        assert s.sectors[name].benchmark_base_year == 2025
    for name in COVERED:
        alloc = s.sectors[name].allocation
        assert alloc.pre_allocation_share == pytest.approx(0.7)
        assert alloc.pre_allocation_basis == "previous_verified"
        assert schedule_value(alloc.paid_share, 2030) == 0.0
        # sector data not in the file comes from the library
        assert s.sectors[name].firms == SECTOR_LIBRARY[name]["firms"]
    assert (s.compliance.deadline_year_offset, s.compliance.deadline_month) == (1, 12)
    assert s.penalty.multiple == 5.0
    assert (s.compliance.offset_share, s.compliance.offset_price) == (0.05, 70.76)
    assert s.reserve_pool.policy == "none"
    assert s.market.initial_price == 95.0
    assert not s.scope.include_indirect


def test_absolute_cap_2027_differs_from_china_2024_only_in_caps() -> None:
    base = load_scenario("china-2024").model_dump()
    s = load_scenario("absolute-cap-2027")
    for name in ("steel", "cement", "aluminium"):
        alloc = s.sectors[name].allocation
        rules = [schedule_value(alloc.rule, y) for y in range(2024, 2031)]
        assert rules == ["verified_emissions", "intensity", "intensity"] + ["absolute_cap"] * 4
        assert alloc.cap_decline == pytest.approx(0.02)
    assert schedule_value(s.sectors["power"].allocation.rule, 2030) == "intensity"
    changed = s.model_dump()
    for name in ("steel", "cement", "aluminium"):
        del changed["sectors"][name]["allocation"]["rule"]
        del base["sectors"][name]["allocation"]["rule"]
    del changed["name"], changed["description"], base["name"], base["description"]
    assert changed == base


def test_paid_allocation() -> None:
    s = load_scenario("paid-allocation")
    expected = {2024: 0.0, 2025: 0.0, 2026: 0.05, 2027: 0.05, 2028: 0.10, 2029: 0.10, 2030: 0.20}
    for name in COVERED:
        paid = s.sectors[name].allocation.paid_share
        assert {y: schedule_value(paid, y) for y in expected} == pytest.approx(expected)
    assert s.auction.reserve_price == 40.0


def test_reserve_pool() -> None:
    pool = load_scenario("reserve-pool").reserve_pool
    assert pool.policy == "price_trigger"
    assert (pool.set_aside_share, pool.initial_holdings_share) == (0.02, 0.02)
    assert (pool.release_price, pool.absorb_price) == (120.0, 50.0)


def test_classroom_is_small() -> None:
    s = load_scenario("classroom")
    assert (s.start_year, s.end_year, s.seed) == (2025, 2026, 1)
    firms = {n: sec.firms for n, sec in s.sectors.items() if sec.enabled}
    assert firms == {"steel": 8, "cement": 8, "aluminium": 4}
    for name in firms:
        alloc = s.sectors[name].allocation
        assert schedule_value(alloc.rule, 2025) == "intensity"
        assert schedule_value(alloc.tightening, 2026) == pytest.approx(0.03)


# --- schedules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "year", "expected"),
    [
        (0.02, 1990, 0.02),
        (0.02, 2050, 0.02),
        ("intensity", 2030, "intensity"),
        ({"2024": 0.0, "2026": 0.05, "2028": 0.1}, 2023, 0.0),  # before the first year
        ({"2024": 0.0, "2026": 0.05, "2028": 0.1}, 2024, 0.0),
        ({"2024": 0.0, "2026": 0.05, "2028": 0.1}, 2025, 0.0),
        ({"2024": 0.0, "2026": 0.05, "2028": 0.1}, 2026, 0.05),
        ({"2024": 0.0, "2026": 0.05, "2028": 0.1}, 2027, 0.05),
        ({"2024": 0.0, "2026": 0.05, "2028": 0.1}, 2040, 0.1),
        ({"2030": 0.3, "2026": 0.1}, 2027, 0.1),  # listed out of order
        ({"2030": 0.3, "2026": 0.1}, 2020, 0.1),  # before the first: the earliest year's
        (
            {"2027": "absolute_cap", "2024": "verified_emissions", "2025": "intensity"},
            2026,
            "intensity",
        ),
    ],
)
def test_schedule_value(schedule: object, year: int, expected: object) -> None:
    assert schedule_value(schedule, year) == expected


# --- overrides -----------------------------------------------------------------------


def test_override_with_wildcard_sets_every_sector() -> None:
    s = load_scenario("china-2024", {"sectors.*.allocation.tightening": 0.03})
    for name, sector in s.sectors.items():
        assert sector.allocation.tightening == pytest.approx(0.03), name
    # the rest of the allocation table is kept
    assert schedule_value(s.sectors["steel"].allocation.rule, 2024) == "verified_emissions"


def test_override_with_double_underscore() -> None:
    s = load_scenario("china-2024", {"penalty__multiple": 7, "sectors__steel__firms": 12})
    assert s.penalty.multiple == 7
    assert s.sectors["steel"].firms == 12
    assert s.sectors["cement"].firms == SECTOR_LIBRARY["cement"]["firms"]


def test_dotted_and_keyword_overrides_agree() -> None:
    dotted = load_scenario("china-2024", {"reserve_pool.policy": "bank_based"})
    keyword = load_scenario("china-2024", {"reserve_pool__policy": "bank_based"})
    assert dotted == keyword
    assert dotted.digest() == keyword.digest()


def test_override_can_enable_a_sector() -> None:
    s = load_scenario("china-2024", {"sectors.chemicals.enabled": True})
    assert s.sectors["chemicals"].enabled


def test_override_of_a_loaded_scenario() -> None:
    base = load_scenario("classroom")
    changed = load_scenario(base, {"penalty.multiple": 8})
    assert changed.penalty.multiple == 8
    assert base.penalty.multiple == 5
    assert load_scenario(base) is base


def test_apply_overrides_does_not_touch_its_input() -> None:
    raw = {"penalty": {"multiple": 5}, "sectors": {"a": {"x": 1}, "b": {"x": 2}}}
    out = apply_overrides(raw, {"penalty.multiple": 6, "sectors.*.x": 0})
    assert out == {"penalty": {"multiple": 6}, "sectors": {"a": {"x": 0}, "b": {"x": 0}}}
    assert raw["penalty"]["multiple"] == 5 and raw["sectors"]["a"]["x"] == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7),
        ("0.03", 0.03),
        ("true", True),
        ("price_trigger", "price_trigger"),
        ('"quoted"', "quoted"),
        ("[3, 6]", [3, 6]),
        ("{2026 = 0.05, 2030 = 0.2}", {"2026": 0.05, "2030": 0.2}),
    ],
)
def test_parse_override_value(text: str, value: object) -> None:
    assert parse_override_value(text) == value


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("penalty.multiplier", "unknown key 'penalty.multiplier'"),
        ("foo.bar", "unknown key 'foo'"),
        ("sectors.*.allocation.tightness", "unknown key 'sectors."),
        ("penalty__multiplier", "unknown key 'penalty.multiplier'"),
    ],
)
def test_override_of_an_unknown_key(key: str, fragment: str) -> None:
    with pytest.raises(ScenarioError, match="unknown key") as info:
        load_scenario("china-2024", {key: 7})
    assert fragment in str(info.value)


def test_override_with_a_bad_value_names_the_key() -> None:
    with pytest.raises(ScenarioError, match=r"'penalty\.multiple'"):
        load_scenario("china-2024", {"penalty.multiple": -1})


def test_override_through_a_value_that_is_not_a_table() -> None:
    with pytest.raises(ScenarioError, match="'multiple' is not a table"):
        load_scenario("china-2024", {"penalty.multiple.x": 1})


def test_override_with_an_empty_path_part() -> None:
    with pytest.raises(ScenarioError, match="penalty..multiple"):
        load_scenario("china-2024", {"penalty..multiple": 1})


# --- names, files, new sectors -------------------------------------------------------


def test_missing_file() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(ROOT / "no_such_dir" / "nothing.toml")
    message = str(info.value)
    assert "nothing.toml" in message and "no such scenario file" in message


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario("china-2099")
    message = str(info.value)
    assert "'china-2099' not found" in message
    assert "china-2024" in message and "classroom" in message


def test_a_new_sector_with_every_key_is_accepted() -> None:
    glass = {
        "label": "Flat glass",
        "entry_year": 2027,
        "firms": 30,
        "unit": "t glass",
        "output_per_firm": 5.0e5,
        "output_dispersion": 0.5,
        "benchmark": 0.7,
        "benchmark_base_year": 2027,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.05,
        "indirect_intensity": 0.1,
        "product_price": 2000.0,
        "margin_share": 0.1,
        "demand_elasticity": 0.3,
        "demand_growth": 0.0,
        "output_shock_sd": 0.03,
        "sector_shock_sd": 0.02,
        "initial_bank_share": 0.0,
    }
    s = build_scenario({"sectors": {"glass": glass}}, "test")
    assert s.sectors["glass"].enabled
    assert s.sectors["glass"].abatement == []
    assert s.sectors["glass"].allocation.rule == "intensity"


def test_a_file_with_only_overrides_gets_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[penalty]\nmultiple = 7\n", encoding="utf-8")
    s = load_scenario(path)
    assert s.penalty.multiple == 7
    assert s.name == "custom"
    assert set(s.sectors) == set(SECTOR_LIBRARY)


# --- digest --------------------------------------------------------------------------


def test_digest_is_stable() -> None:
    first = load_scenario("china-2024").digest()
    assert first == load_scenario("china-2024").digest()
    assert len(first) == 16
    # the same in another process (no dependence on hash randomisation or dict order)
    code = "from etsim import load_scenario; print(load_scenario('china-2024').digest())"
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert other.stdout.strip() == first


def test_digest_changes_when_a_value_changes() -> None:
    base = load_scenario("china-2024")
    assert load_scenario("china-2024", {"penalty.multiple": 7}).digest() != base.digest()
    tighter = load_scenario("china-2024", {"sectors.steel.allocation.tightening": 0.021})
    assert tighter.digest() != base.digest()
    assert load_scenario("china-2024", {"penalty.multiple": 5.0}).digest() == base.digest()


def test_scenarios_differ_in_digest() -> None:
    digests = {load_scenario(name).digest() for name in shipped_scenarios()}
    assert len(digests) == len(shipped_scenarios())


# --- command line contract -----------------------------------------------------------


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etsim", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("stem", "key"), sorted(CLI_BAD_FILES.items()))
def test_cli_validate_rejects_a_bad_file(stem: str, key: str) -> None:
    result = _validate(BAD / f"{stem}.toml")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0]
    assert f"{stem}.toml" in lines[0]


def test_cli_validate_rejects_a_missing_file() -> None:
    result = _validate(ROOT / "no_such_dir" / "nothing.toml")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing.toml" in lines[0]


@pytest.mark.parametrize("name", ["china-2024", "classroom"])
def test_cli_validate_accepts_a_good_file(name: str) -> None:
    result = _validate(ROOT / "scenarios" / f"{name}.toml")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
