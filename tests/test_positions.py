"""What firms know of their positions, on hand-built state (agents/positions.py), and the
firm-side pieces it reads: ``FirmState`` coverage, ``draw_mix``, ``Production``
projections and ``PriceExpectations`` (agents/population.py, production.py,
expectations.py).

Steel firms of the classroom scenario (benchmark 2.0 t/unit in 2025, 1.94 in 2026), base
output 100 units, CCER offsets off unless a test says otherwise. The calendar has 20
trading days a month; the deadline of 2025 is the last day of December 2026 (day 479),
the true-up of 2025 in September 2026. Expected numbers are worked out in the comments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from institutions import HandBuiltMarket, hand_built_market, make_firms, scenario

from etsim.agents.expectations import PriceExpectations
from etsim.agents.population import draw_mix
from etsim.model.exchange import RestingOrders

NO_OFFSETS = {"compliance.offset_share": 0.0}


def firms_market(intensity: list[float], overrides: dict[str, Any] | None = None,
                 **firm_attributes: Any) -> HandBuiltMarket:
    """Steel firms of 100 units a year at the given intensities."""
    firms = make_firms(len(intensity), baseline_intensity=intensity, **firm_attributes)
    return hand_built_market(firms, {**NO_OFFSETS, **(overrides or {})})


def test_before_any_report_the_balance_is_free_quota_to_come_less_baseline_emissions() -> None:
    """Before any report a firm expects baseline emissions against quota at planned output."""
    market = firms_market([2.2, 1.8, 2.2], entry_year=[2024, 2024, 2026])
    balance = market.positions().expected_balance(2025, day=0, last_close=95.0)
    # quota 100 x 2.0 = 200 against 220 and 180 t; firm 2 enters in 2026
    np.testing.assert_allclose(balance, [-20.0, 20.0, 0.0])


def test_reports_so_far_are_scaled_to_a_year() -> None:
    """Reports so far are scaled to a year; quota already issued is no longer to come."""
    market = firms_market([2.2, 1.8])
    records, col = market.records, market.records.col(2025)
    records["reported_emissions"][:, col] = [60.0, 40.0]  # January to March
    records["output"][:, col] = [30.0, 25.0]
    records["free_entitled"][:, col] = [100, 50]  # pre-allocated
    day = market.calendar.first_day(2025, 4)  # 3 months done
    balance = market.positions().expected_balance(2025, day, last_close=95.0)
    # obligation 60 x 12 / 3 = 240 and 160; output 120 and 100 -> quota 240 and 200;
    # to come 240 - 100 = 140 and 200 - 50 = 150: balances -100 and -10
    np.testing.assert_allclose(balance, [-100.0, -10.0])


def test_verified_emissions_and_owed_quota_replace_the_projection() -> None:
    """Verified emissions plus owed quota replace the projection; none is to come after true-up."""
    market = firms_market([2.2, 1.8])
    records, col = market.records, market.records.col(2025)
    records["verified_emissions"][:, col] = [230.0, 170.0]
    records["owed"][:, col] = [5, 0]
    records.verified_known[col] = True
    records["output"][:, col] = [120.0, 100.0]
    records["free_entitled"][:, col] = [168, 140]
    positions = market.positions()
    june = market.calendar.first_day(2026, 6)
    # quota 120 x 2.0 = 240 and 200, to come 72 and 60; obligations 235 and 170
    np.testing.assert_allclose(positions.expected_balance(2025, june, 95.0), [-163.0, -110.0])
    october = market.calendar.first_day(2026, 10)  # after the true-up month (9)
    np.testing.assert_allclose(positions.expected_balance(2025, october, 95.0),
                               [-235.0, -170.0])


def test_offsets_counted_on_are_the_scarce_share_when_cheaper() -> None:
    """A firm counts on a little less than its share of scarce offsets, when they are cheaper."""
    market = firms_market([2.0], {"compliance.offset_share": 0.05})
    positions = market.positions()
    obligation = np.array([100_000.0])
    # floor(0.99 x min(0.05, 0.0011) x 100,000) = floor(108.9) = 108 t
    assert positions.offset_plan(obligation, last_close=95.0).tolist() == [108.0]
    assert positions.offset_plan(obligation, last_close=70.0).tolist() == [0.0]  # < 70.76


def refreshed_in_october_2026() -> tuple[HandBuiltMarket, int]:
    """Two firms in October 2026: 2025 verified (230 and 170 t) and trued up, 2026 nine
    months in; refreshed."""
    market = firms_market([2.2, 1.8], {"sectors.steel.demand_growth": 0.0})
    records = market.records
    col_2025, col_2026 = records.col(2025), records.col(2026)
    records["verified_emissions"][:, col_2025] = [230.0, 170.0]
    records.verified_known[col_2025] = True
    records["reported_emissions"][:, col_2026] = [180.0, 135.0]
    records["output"][:, col_2026] = [90.0, 75.0]
    day = market.calendar.first_day(2026, 10)
    market.positions().refresh(2026, day, last_close=95.0)
    return market, day


def test_refresh_sums_open_years_and_trades_for_the_nearest_deadline() -> None:
    """Refresh sums the balances of open compliance years and singles out the nearest deadline."""
    market, day = refreshed_in_october_2026()
    positions = market.positions()
    # 2025 (deadline day 479): trued up, balance -230 / -170;
    # 2026: obligation 180 x 12 / 9 = 240 and 180, output 120 and 100 -> quota x 1.94 =
    # 232.8 and 194: balance -7.2 and +14
    np.testing.assert_allclose(positions.expected_nearest, [-230.0, -170.0])
    np.testing.assert_allclose(positions.expected_net, [-237.2, -156.0])
    assert (positions.next_deadline, positions.next_compliance_year) == (479, 2025)
    # in January 2027, after 2025's deadline, only 2026 is open, an earlier year now:
    # its 12 months as reported, 180 and 135 t, against quota 90 x 1.94 = 174.6 and
    # 75 x 1.94 = 145.5
    earlier = positions.refresh(2027, market.calendar.first_day(2027), last_close=95.0)
    assert (positions.next_deadline, positions.next_compliance_year) == (719, 2026)
    np.testing.assert_allclose(earlier, [-5.4, 10.5])
    np.testing.assert_allclose(positions.expected_nearest, [-5.4, 10.5])


def test_trading_state_position_urgency_and_prices() -> None:
    """The position is quota usable at the nearest deadline plus its balance; urgency nears 1."""
    market, day = refreshed_in_october_2026()
    market.registry.issue(np.array([0, 1]), np.array([250, 150]), 2025, "issued_free")
    market.registry.issue(np.array([0]), np.array([50]), 2026, "auctioned")
    state = market.positions().trading_state(day)
    # vintage 2026 is not usable at 2025's deadline: 250 - 230 and 150 - 170
    np.testing.assert_allclose(state.position, [20.0, -20.0])
    # over all open years: 300 - 237.2 = 62.8 and 150 - 156 = -6
    assert state.short_later.tolist() == [False, True]
    np.testing.assert_allclose(state.sellable, [300.0, 150.0])
    # 479 - 420 = 59 days left: (1 - 59 / 240) ^ 6
    np.testing.assert_allclose(state.urgency, (181 / 240) ** 6)
    np.testing.assert_allclose(state.penalty_price, 5 * 95.0)
    assert (state.limit_down, state.limit_up, state.banking) == (85.5, 104.5, True)
    assert state.can_trade.tolist() == [True, True]


def test_resting_orders_count_as_filled() -> None:
    """Resting GTC orders count as filled in the position, the sellable quota and the budget."""
    market, day = refreshed_in_october_2026()
    market.registry.issue(np.array([0, 1]), np.array([250, 150]), 2025, "issued_free")
    positions = market.positions()
    budget = positions.carbon_budget()
    # firm 0 offers 30 t at 100; firm 1 bids for 10 t at 90 (900 CNY)
    market.session().resting = RestingOrders.from_rows([(0, 0, 0, -1, 30, 100.0, 0, -1),
                                                        (1, 1, 1, 1, 10, 90.0, 0, -1)])
    state = positions.trading_state(day)
    np.testing.assert_allclose(state.position, [20.0 - 30.0, -20.0 + 10.0])
    np.testing.assert_allclose(state.sellable, [220.0, 150.0])
    np.testing.assert_allclose(state.budget, budget - [0.0, 900.0])


def test_carbon_budget_is_a_year_of_emissions_plus_this_years_carbon_cash() -> None:
    """The carbon budget is a year of emissions at the expected price plus this year's cash."""
    market = firms_market([2.0, 2.0], expected_price=[95.0, 80.0], cash=[-500.0, 3000.0])
    market.firms.cash_year_start[:] = [0.0, 1000.0]
    # 200 t x 95 - 500 = 18,500; 200 t x 80 + 2,000 = 18,000
    np.testing.assert_allclose(market.positions().carbon_budget(), [18500.0, 18000.0])


def test_before_any_report_obligation_follows_the_output_plan() -> None:
    """A firm planning half its output expects half the obligation as well as half the quota."""
    market = firms_market([2.0])  # intensity = benchmark: no surplus, no deficit
    market.firms.output_factor[:] = 0.5
    balance = market.positions().expected_balance(2025, day=0, last_close=95.0)
    # quota 50 x 2.0 = 100 against emissions 50 x 2.0 = 100
    np.testing.assert_allclose(balance, [0.0])


def test_projected_output_is_the_plan_then_the_year_so_far() -> None:
    """Projected output is the plan before a month is done, then the year so far scaled up."""
    market = firms_market([2.0, 2.0])  # steel demand falls 1% a year
    production = market.production()
    market.firms.output_factor[:] = [1.0, 0.5]
    np.testing.assert_allclose(production.projected_output(2026, 0), [99.0, 49.5])
    market.records["output"][:, market.records.col(2025)] = [30.0, 12.0]
    np.testing.assert_allclose(production.projected_output(2025, 3), [120.0, 48.0])


def test_coverage_and_sector_rows_follow_entry_years() -> None:
    """A firm is covered from its entry year, and sector_rows lists a sector's covered firms."""
    firms = make_firms(4, sector=[0, 1, 0, 2], entry_year=[2024, 2024, 2026, 2024])
    assert firms.covered(2025).tolist() == [True, True, False, True]
    assert firms.sector_rows(0, 2025).tolist() == [0]
    assert firms.sector_rows(0, 2026).tolist() == [0, 2]


def test_draw_mix_gives_sectors_without_a_mix_the_default() -> None:
    """Sectors without a behaviour mix, and mixes of sectors not simulated, leave the default."""
    names, chosen = draw_mix("adaptive", {"steel": {"trend_following": 1.0},
                                          "power": {"fundamental": 1.0}},
                             ["steel", "cement"], np.array([0, 1, 0]),
                             np.random.default_rng(0))
    assert names == ["adaptive", "trend_following"]
    assert chosen.tolist() == [1, 0, 1]


def test_price_expectations_move_each_firm_by_its_own_model() -> None:
    """Adaptive firms smooth towards close and fundamental; trend followers extrapolate."""
    trading = scenario().trading  # smoothing 0.1, fundamental weight 0.7, trend weight 0.5
    firms = make_firms(2, expected_price=90.0)
    expectations = PriceExpectations(["adaptive", "trend_following"], np.array([0, 1]),
                                     trading, initial_price=95.0)
    expectations.set_fundamental_path(np.array([80.0, 84.0]))  # 5% a year
    expectations.update(firms, close=100.0, month_ago=90.0)
    # adaptive: 0.9 x 90 + 0.1 x (0.3 x 100 + 0.7 x 80) = 81 + 8.6 = 89.6
    # trend: close part 100 + 0.5 x (100 - 90) = 105: 81 + 0.1 x (31.5 + 56) = 89.75
    np.testing.assert_allclose(firms.expected_price, [89.6, 89.75])
    # growth: 0.7 x 5% = 3.5%; trend: 0.3 x ((1 + 0.5 x 10/90) ^ 12 - 1) + 0.7 x 5%
    trend_growth = 0.3 * ((1 + 0.5 * (100 / 90 - 1)) ** 12 - 1) + 0.7 * 0.05
    np.testing.assert_allclose(firms.expected_growth, [0.035, trend_growth])
