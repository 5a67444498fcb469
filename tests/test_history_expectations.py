"""Allocation plans announced on a date, and expectations that price in what is known.

- ``PublishedPlans`` / ``KnownAllocation`` (model/allocation.py) on hand-built state: what
  firms expect of a year's quota before and after its plan is published;
- ``PriceExpectations.set_fundamental_path`` (agents/expectations.py): the "smooth"
  timing moves the fundamental price through the year towards next year's;
- whole classroom runs (same seed, compare runs): an announcement of tighter quota in
  July 2025 raises the fundamental price and later the market price from July, and
  changes nothing before it; a known rising path gives a smaller January step when it is
  priced in through the year.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from institutions import ALUMINIUM, STEEL, STEEL_BENCHMARK_2025, hand_built_market, make_firms

from etsim import load_scenario
from etsim.agents.expectations import PriceExpectations
from etsim.model.allocation import KnownAllocation, PublishedPlans
from etsim.model.market import CarbonMarketModel
from etsim.model.scenario import ScenarioError

INDUSTRY = ["steel", "cement", "aluminium"]
# classroom: steel's benchmark 2.0 t/unit in 2025, tightening 3% a year from 2026
TIGHTENED_2026 = STEEL_BENCHMARK_2025 * (1 - 0.03)


def known_allocation(overrides: dict[str, Any]) -> KnownAllocation:
    """What firms know of the classroom plans, with ``overrides``."""
    market = hand_built_market(make_firms(2, sector=[STEEL, ALUMINIUM]), overrides)
    plans = PublishedPlans(market.scenario, ["steel", "cement", "aluminium"], market.calendar)
    return KnownAllocation(market.allocation, plans)


def test_a_plan_is_known_from_the_first_trading_day_on_or_after_its_date() -> None:
    """Steel's 2026 plan, published on Wednesday 2 July 2025, is known from that day on;
    before it firms expect the 2025 plan tightened by unpublished_tightening (1%)."""
    known = known_allocation({
        "trading.unpublished_tightening": 0.01,
        "announcements": [{"date": "2025-07-02", "sectors": ["steel"], "years": [2026]}],
    })
    day = known.plans.first_day[(STEEL, 2026)]
    calendar_date = str(hand_built_market(make_firms(1)).calendar.date[day])
    assert calendar_date == "2025-07-02"
    known.day = day - 1
    assert known.basis(STEEL, 2026) == 2025
    assert known.benchmark(STEEL, 2026) == pytest.approx(STEEL_BENCHMARK_2025 * 0.99)
    # quota of 100 units at the expected benchmark: 198 t, not the 194 t of the plan
    quota = known.final_free_quota(STEEL, 2026, np.array([100.0]), np.array([200.0]))
    assert quota.tolist() == pytest.approx([198.0])
    known.day = day
    assert known.basis(STEEL, 2026) == 2026
    assert known.benchmark(STEEL, 2026) == pytest.approx(TIGHTENED_2026)
    quota = known.final_free_quota(STEEL, 2026, np.array([100.0]), np.array([200.0]))
    assert quota.tolist() == pytest.approx([194.0])


def test_sectors_without_announcements_know_every_plan_from_the_start() -> None:
    """Aluminium, named in no announcement, knows its 2026 plan on day 0; steel's first
    year in the run (2025) is known from the start too."""
    known = known_allocation({
        "trading.unpublished_tightening": 0.05,
        "announcements": [{"date": "2026-03-02", "sectors": ["steel"], "years": [2026]}],
    })
    known.day = 0
    plans = known.plans
    assert plans.known(ALUMINIUM, 2026, 0) and plans.known(STEEL, 2025, 0)
    assert not plans.known(STEEL, 2026, 0)
    assert known.benchmark(ALUMINIUM, 2026) == pytest.approx(
        known_allocation({}).benchmark(ALUMINIUM, 2026))
    # steel's later years (never announced) follow the 2025 plan, cut 5% a year
    assert known.benchmark(STEEL, 2028) == pytest.approx(STEEL_BENCHMARK_2025 * 0.95 ** 3)


def test_a_later_unannounced_year_follows_the_latest_known_plan() -> None:
    """Once 2026 is published, 2027 (never published) is expected at 2026's benchmark
    tightened by unpublished_tightening."""
    known = known_allocation({
        "end_year": 2027,
        "trading.unpublished_tightening": 0.02,
        "announcements": [{"date": "2025-07-01", "sectors": ["steel"], "years": [2026]}],
    })
    known.day = known.plans.first_day[(STEEL, 2026)]
    assert known.basis(STEEL, 2027) == 2026
    assert known.benchmark(STEEL, 2027) == pytest.approx(TIGHTENED_2026 * 0.98)


def test_the_smooth_timing_moves_the_fundamental_price_through_the_year() -> None:
    """p0 = 100, p1 = 121: in July (m = 7) the price is 100 x 1.21^(6/12) = 110; with the
    january timing it is 100 all year; the expected growth is 21% either way."""
    firm_model = np.zeros(1, dtype=np.int64)
    market = hand_built_market(make_firms(1), {"trading.fundamental_timing": "smooth"})
    smooth = PriceExpectations(["adaptive"], firm_model, market.scenario.trading, 95.0)
    smooth.set_fundamental_path(np.array([100.0, 121.0]), month=7)
    assert smooth.fundamental_price == pytest.approx(110.0)
    assert smooth.fundamental_growth == pytest.approx(0.21)
    smooth.set_fundamental_path(np.array([0.0, 60.0]), month=4)  # from 0: linear
    assert smooth.fundamental_price == pytest.approx(15.0)
    january = PriceExpectations(["adaptive"], firm_model,
                                hand_built_market(make_firms(1)).scenario.trading, 95.0)
    january.set_fundamental_path(np.array([100.0, 121.0]), month=7)
    assert january.fundamental_price == pytest.approx(100.0)


# --- whole runs -------------------------------------------------------------------------------


def classroom_run(seed: int = 3, **overrides: Any) -> CarbonMarketModel:
    """A finished classroom run."""
    return CarbonMarketModel("classroom", seed=seed, overrides=overrides).run()


def test_news_of_tighter_quota_moves_the_price_from_its_day_not_before() -> None:
    """The 2026 plans (3% tighter) published in July 2025 against published only after
    2026's production: the same run until July, then a higher fundamental price at once
    and a higher market price in 2026."""
    def announced(date: str) -> CarbonMarketModel:
        return classroom_run(announcements=[{"date": date, "sectors": INDUSTRY,
                                             "years": [2026]}])

    early, late = announced("2025-07-01"), announced("2027-06-01")
    day = early.calendar.day_of("2025-07-01")
    for column in ("close", "fundamental_price", "volume"):
        np.testing.assert_array_equal(early.daily[column][:day], late.daily[column][:day])
    assert (early.daily["fundamental_price"][day:day + 120]
            > late.daily["fundamental_price"][day:day + 120]).all()
    year_2026 = slice(early.calendar.first_day(2026), early.calendar.last_day(2026) + 1)
    # the mean over days with a listed trade (a day without one has no close)
    assert (np.nanmean(early.daily["close"][year_2026])
            > np.nanmean(late.daily["close"][year_2026]))


@pytest.mark.parametrize("seed", [1, 2])
def test_a_known_rising_path_gives_a_smaller_january_step_when_priced_in(seed: int) -> None:
    """With every plan known from the start, the smooth timing prices the rise to 2026 in
    through 2025: the step of the fundamental price at 1 January 2026 is smaller."""
    steps = {}
    for timing in ("january", "smooth"):
        run = classroom_run(seed, trading__fundamental_timing=timing)
        january = run.calendar.first_day(2026)
        fundamental = run.daily["fundamental_price"]
        steps[timing] = fundamental[january] - fundamental[january - 1]
    assert steps["january"] > 0
    assert abs(steps["smooth"]) < steps["january"]


@pytest.mark.parametrize(("announcement", "message"), [
    ({"date": 20251015, "sectors": ["steel"], "years": [2026]},
     "key 'announcements.0.date': must be a date"),
    ({"date": "2025-13-01", "sectors": ["steel"], "years": [2026]},
     "must be a date written YYYY-MM-DD"),
    ({"date": "2025-10-01", "sectors": ["stel"], "years": [2026]},
     "key 'announcements': entry 0: unknown sector 'stel'"),
    ({"date": "2025-10-01", "sectors": ["steel"], "years": []},
     "key 'announcements.0.years'"),
    ({"date": "2025-10-01", "sectors": ["steel"], "years": [20260]},
     "years must be from 1990 to 2100"),
    ({"date": "2025-10-01", "sector": ["steel"], "years": [2026]},
     "key 'announcements.0.sectors' is required"),
])
def test_a_bad_announcement_names_its_key(announcement: dict[str, Any], message: str) -> None:
    """A bad date, sector or year of an announcement is one message naming the key."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario("classroom", {"announcements": [announcement]})
    assert message in str(caught.value)
