"""Changes of accounting (``sectors.NAME.accounting_change``): measured intensities fall
in a year, and a benchmark set on the balance value is expected to fall with them.

- ``accounting_factor`` (model/mrv.py) on hand-computed cases;
- ``MRV.change_accounting`` on hand-built state: only the named sector, only in its year;
- ``KnownAllocation`` (model/allocation.py): an unpublished plan's benchmark is expected
  to follow the change, a published plan is what it says;
- china-history keeps the published 2023 benchmark while power's measured intensity
  falls;
- a whole run: a change the benchmark does not follow leaves the sector long, and the
  fundamental price falls.
"""

from __future__ import annotations

import numpy as np
import pytest
from institutions import ALUMINIUM, STEEL, STEEL_BENCHMARK_2025, hand_built_market, make_firms

from etsim import load_scenario
from etsim.model.allocation import AllocationPolicy, KnownAllocation, PublishedPlans
from etsim.model.market import CarbonMarketModel
from etsim.model.mrv import accounting_factor
from etsim.model.scenario import ScenarioError

CHANGES = {"2023": 0.1, "2025": 0.2}


@pytest.mark.parametrize(("after", "through", "factor"), [
    (2022, 2023, 0.9),          # the 2023 change only
    (2022, 2026, 0.9 * 0.8),    # both
    (2023, 2024, 1.0),          # 2023's already counted, 2025's still to come
    (2023, 2025, 0.8),
    (2025, 2030, 1.0),          # none left
])
def test_accounting_factor_multiplies_the_changes_between_two_years(
        after: int, through: int, factor: float) -> None:
    assert accounting_factor(CHANGES, after, through) == pytest.approx(factor)


def test_a_change_cuts_the_named_sectors_intensity_in_its_year_only() -> None:
    """Steel's 5% change of 2026: nothing in 2025, steel's baseline intensity x 0.95 in
    2026, aluminium's untouched."""
    firms = make_firms(2, sector=[STEEL, ALUMINIUM], baseline_intensity=[2.0, 1.5])
    market = hand_built_market(firms, {"sectors.steel.accounting_change": {"2026": 0.05}})
    mrv = market.mrv()
    mrv.change_accounting(2025)
    assert firms.baseline_intensity.tolist() == [2.0, 1.5]
    mrv.change_accounting(2026)
    assert firms.baseline_intensity.tolist() == pytest.approx([1.9, 1.5])
    assert mrv.accounting_year == 2026
    mrv.change_accounting(2027)
    assert firms.baseline_intensity.tolist() == pytest.approx([1.9, 1.5])


def test_firms_expect_an_unpublished_benchmark_to_follow_the_change() -> None:
    """Steel's 2026 plan is published in March 2026; a 4% change of accounting in 2026.
    Before: 2025's benchmark x (1 - 1%) x (1 - 4%). After: the published benchmark,
    2025's x (1 - 3%), whatever the accounting."""
    market = hand_built_market(make_firms(1), {
        "trading.unpublished_tightening": 0.01,
        "sectors.steel.accounting_change": {"2026": 0.04},
        "announcements": [{"date": "2026-03-02", "sectors": ["steel"], "years": [2026]}],
    })
    plans = PublishedPlans(market.scenario, ["steel", "cement", "aluminium"], market.calendar)
    known = KnownAllocation(market.allocation, plans)
    published = plans.first_day[(STEEL, 2026)]
    known.day = published - 1
    assert known.benchmark(STEEL, 2026) == pytest.approx(STEEL_BENCHMARK_2025 * 0.99 * 0.96)
    # the year of the basis (2025) is before the change: no fall expected in it
    assert known.benchmark(STEEL, 2025) == pytest.approx(STEEL_BENCHMARK_2025)
    known.day = published
    assert known.benchmark(STEEL, 2026) == pytest.approx(STEEL_BENCHMARK_2025 * 0.97)


def test_china_history_keeps_the_published_2023_benchmark() -> None:
    """The 2023 benchmark of power is the published 0.7861 t/MWh; its accounting change
    is what of the cut is not a tightening."""
    scenario = load_scenario("china-history")
    names = list(scenario.firm_counts())
    policy = AllocationPolicy(scenario, names)
    power = names.index("power")
    assert policy.benchmark(power, 2023) == pytest.approx(0.7861, abs=5e-5)
    change = scenario.sectors["power"].accounting_change["2023"]
    real_cut = 1 - policy.benchmark(power, 2023) / policy.benchmark(power, 2022) / (1 - change)
    assert real_cut == pytest.approx(0.005, abs=2e-4)  # as in 2022 and 2024


def test_a_change_the_benchmark_does_not_follow_leaves_the_market_long() -> None:
    """Every plan known from the start (the classroom's), a 10% fall of steel's measured
    intensity in 2026: steel's verified emissions per unit fall, its quota does not, and
    the fundamental price of 2026 is lower than without the change."""
    def run(changes: dict[str, float]) -> CarbonMarketModel:
        overrides = {"sectors.steel.accounting_change": changes} if changes else {}
        return CarbonMarketModel("classroom", seed=4, overrides=overrides).run()

    changed, plain = run({"2026": 0.1}), run({})
    year = changed.calendar.first_day(2026), changed.calendar.last_day(2026) + 1
    days = slice(*year)
    assert (np.nanmean(changed.daily["fundamental_price"][days])
            < np.nanmean(plain.daily["fundamental_price"][days]))
    steel = changed.firms.sector == changed.sector_names.index("steel")
    col = changed.fy.col(2026)

    def surplus(model: CarbonMarketModel) -> float:
        fy = model.fy
        return float(fy["free_entitled"][steel, col].sum()
                     - fy["verified_emissions"][steel, col].sum())

    assert surplus(changed) > surplus(plain)


@pytest.mark.parametrize("changes", [{"2023": 1.0}, {"2023": -0.1}, {"23": 0.1}])
def test_a_bad_accounting_change_names_its_key(changes: dict[str, float]) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario("china-history", {"sectors.power.accounting_change": changes})
    assert "sectors.power.accounting_change" in str(caught.value)


def test_projected_emissions_count_a_change_once_before_and_after_it() -> None:
    """The fundamental price's projection of 2026 emissions: with steel's 10% change
    still to come, the change is applied to the projection; once MRV has applied it (in
    January 2026), the firms' intensities carry it and the projection is the same; both
    are below the projection without the change (the steel firms' part by 10%)."""
    from etsim.model.equilibrium import _projected_years

    def projected(model: CarbonMarketModel) -> float:
        return float(_projected_years(model, np.array([2026]), None)[0][0])

    changed = CarbonMarketModel("classroom", seed=2,
                                overrides={"sectors.steel.accounting_change": {"2026": 0.1}})
    plain = CarbonMarketModel("classroom", seed=2)
    ahead = projected(changed)
    changed.mrv.change_accounting(2025)
    changed.mrv.change_accounting(2026)
    assert projected(changed) == pytest.approx(ahead, rel=1e-12)
    assert ahead < projected(plain)
