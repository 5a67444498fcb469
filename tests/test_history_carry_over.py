"""Anticipating the carry-over limit (compliance.must_sell, agents/positions.py and
agents/strategies.py): a firm whose surplus at its next deadline exceeds what it may
carry past it (a basic allowance plus a multiple of its net sales) must sell the excess
or lose it, so it sells that part first, without the Hotelling floor of banked quota:
a banking limit tied to net sales lowers the price.

Hand-built state: the classroom scenario with a carry-over rule from 2025 of 10,000 t
plus 1.5 x net sales; strategy tests use a ``TradingState`` with expected price 100,
expected growth 10% a year against a discount rate of 8% (so a banked tonne is worth
100 x 1.1 / 1.08 = 101.85 today), listed band 50-150, no patience.
"""

from __future__ import annotations

import numpy as np
import pytest
from institutions import hand_built_market, make_firms

from etsim.agents.strategies import BudgetConstrainedStrategy, Orders, TradingState
from etsim.model.scenario import TradingConfig

RULE_2025 = {"compliance.offset_share": 0.0, "compliance.carry_over": {
    "2025": {"basic_t": 10_000, "net_sales_multiple": 1.5}}}
ALWAYS = {"base_activity": 1.0, "peak_activity": 1.0, "patience": 0.0}


def test_must_sell_is_the_excess_over_the_limit_divided_by_one_plus_the_multiple() -> None:
    """Surplus 110,000 t, no sales: limit 10,000, excess 100,000; each tonne sold lowers
    the surplus by 1 and raises the limit by 1.5, so 100,000 / 2.5 = 40,000 t must go
    (then 70,000 t are left against a limit of 10,000 + 60,000). A firm that sold
    20,000 t has a limit of 40,000: surplus 30,000 must sell nothing."""
    market = hand_built_market(make_firms(3), RULE_2025)
    market.firms.net_sales[:] = [0, 20_000, 0]
    must = market.compliance().must_sell(2025, np.array([110_000.0, 30_000.0, -5_000.0]))
    assert must.tolist() == [40_000, 0, 0]
    assert 110_000 - 40_000 <= 10_000 + 1.5 * 40_000


def test_no_limit_means_nothing_must_be_sold() -> None:
    market = hand_built_market(make_firms(1), {"compliance.offset_share": 0.0})
    assert market.compliance().must_sell(2025, np.array([1e6])) is None


def test_positions_pass_the_must_sell_of_the_next_deadline() -> None:
    """A firm holding 110,000 t more than its 2025 obligation must sell 40,000 t before
    the 2025 deadline; the trading state says so."""
    firms = make_firms(1, baseline_intensity=2.0)  # quota 200 = emissions 200
    market = hand_built_market(firms, RULE_2025)
    market.registry.issue(np.arange(1), np.array([110_000]), 2024, "issued_free")
    positions = market.positions()
    positions.refresh(2025, day=0, last_close=95.0)
    state = positions.trading_state(0)
    assert state.position.tolist() == [110_000.0]
    assert state.must_sell.tolist() == [40_000.0]


def _state(must_sell, urgency: float = 0.5) -> TradingState:
    n = 2
    return TradingState(
        position=np.full(n, 110_000.0), short_later=np.zeros(n, dtype=bool),
        sellable=np.full(n, 110_000.0), urgency=np.full(n, urgency),
        expected_price=np.full(n, 100.0), expected_growth=np.full(n, 0.10),
        discount_rate=np.full(n, 0.08), penalty_price=np.full(n, 500.0),
        budget=np.full(n, 1e12), can_trade=np.ones(n, dtype=bool), limit_down=50.0,
        limit_up=150.0, banking=True, reference_price=100.0,
        annual_need=np.full(n, 1e7), block_min_t=100_000,
        must_sell=None if must_sell is None else np.asarray(must_sell, dtype=float))


def test_a_banking_limit_tied_to_net_sales_lowers_the_sellers_value_and_asks() -> None:
    """Without a limit a long firm sells at no less than the value of holding, 101.85;
    the firm that must sell 40,000 t values it at 100 x (1 - 0.05) x (1 - 0.5) = 47.5
    half-way to its deadline and asks less for it (same draws)."""
    strategy = BudgetConstrainedStrategy(TradingConfig(**ALWAYS), np.random.default_rng(1))
    _, free = strategy.reservation_values(_state(None))
    _, limited = strategy.reservation_values(_state([40_000, 0]))
    assert free == pytest.approx([100 * 1.1 / 1.08] * 2)
    assert limited == pytest.approx([47.5, 100 * 1.1 / 1.08])
    asks = {}
    for name, must in (("free", None), ("limited", [40_000, 40_000])):
        orders = BudgetConstrainedStrategy(TradingConfig(**ALWAYS),
                                           np.random.default_rng(2)).orders(
            _state(must, urgency=1.0))
        asks[name] = orders.limit_price
    assert (asks["limited"] < asks["free"]).all()


def test_the_excess_is_offered_first_and_only_the_excess() -> None:
    """On the deadline day a firm offers all it may sell; one that must sell 40,000 t
    offers those 40,000 t (at the lower value), not its whole surplus."""
    strategy = BudgetConstrainedStrategy(TradingConfig(**ALWAYS), np.random.default_rng(3))
    orders = strategy.orders(_state([40_000, 0], urgency=1.0))
    offered = np.bincount(orders.trader, weights=orders.quantity, minlength=2)
    # firm 1 offers from its whole surplus: 99,999 t listed (below block size; its
    # block part, 1 - 100,000 / 110,000 of it, is below the minimum block)
    assert offered.tolist() == [40_000, 99_999]


def test_a_banking_limit_tied_to_net_sales_lowers_the_close() -> None:
    """The same day's market traded twice through the session: long firms (surplus
    60,000 t each) and short firms (short 60,000 t each) half-way to their deadline;
    under a carry-over rule of 10,000 t + 1.5 x net sales the long firms must sell
    20,000 t each, which they offer without the Hotelling floor: the close is lower."""
    closes = {}
    for name, overrides in (("unlimited", {}), ("limited", RULE_2025)):
        firms = make_firms(8, baseline_intensity=2.0, expected_price=100.0)
        firms.expected_growth[:] = 0.10
        market = hand_built_market(firms, {"compliance.offset_share": 0.0,
                                           "trading.patience": 0.0,
                                           "trading.base_activity": 1.0,
                                           "trading.peak_activity": 1.0, **overrides})
        long = np.arange(8) < 4
        market.registry.issue(np.arange(8), np.where(long, 60_000, 0), 2024, "issued_free")
        market.records["verified_emissions"][:, market.records.col(2025)] = np.where(
            long, 0.0, 60_000.0)
        market.records["free_entitled"][:, market.records.col(2025)] = 0
        market.records.verified_known[market.records.col(2025)] = True
        positions = market.positions()
        day = market.calendar.first_day(2026, 6)  # half a year before the 2025 deadline
        positions.refresh(2026, day, last_close=95.0)
        state = positions.trading_state(day)
        orders = BudgetConstrainedStrategy(market.scenario.trading,
                                           np.random.default_rng(4)).orders(state)
        # the sellers' orders arrive first, so buyers trade at the resting asks
        first = np.argsort(orders.side, kind="stable")
        orders = Orders(orders.trader[first], orders.side[first], orders.quantity[first],
                        orders.limit_price[first])
        market.session().trade(day, 2026, orders, None)
        closes[name] = market.daily["close"][day]
        if name == "limited":
            assert state.must_sell[long].tolist() == [20_000.0] * 4
    assert closes["limited"] < closes["unlimited"]
