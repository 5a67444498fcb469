"""Lumpy block trading (``trading.block_deals``, agents/strategies.py): a firm whose
position is at least the exchange's minimum block size (100,000 t) trades it in a few
block deals, smaller positions on the listed session; the session then trades them with
no quota created or lost.

Strategy-level tests build a ``TradingState`` by hand: expected price 100 CNY/t, last
close 100, listed band 90-110, every firm active every day (activity 1), no patience.
"""

from __future__ import annotations

import numpy as np
import pytest
from institutions import hand_built_market, ledger_balances, make_firms

from etsim.agents.strategies import BudgetConstrainedStrategy, TradingState
from etsim.model.scenario import TradingConfig

LUMPY = {"base_activity": 1.0, "peak_activity": 1.0, "patience": 0.0, "block_deals": 2}


def _state(position, urgency: float, band: tuple[float, float] = (90.0, 110.0)
           ) -> TradingState:
    position = np.asarray(position, dtype=float)
    n = len(position)
    return TradingState(
        position=position, short_later=np.zeros(n, dtype=bool),
        sellable=np.maximum(position, 0.0), urgency=np.full(n, urgency),
        expected_price=np.full(n, 100.0), expected_growth=np.zeros(n),
        discount_rate=np.full(n, 0.08), penalty_price=np.full(n, 500.0),
        budget=np.full(n, 1e12), can_trade=np.ones(n, dtype=bool), limit_down=band[0],
        limit_up=band[1], banking=True, reference_price=100.0,
        annual_need=np.full(n, 1e7), block_min_t=100_000)


def _orders(position, urgency: float = 1.0, seed: int = 3,
            band: tuple[float, float] = (90.0, 110.0), **config):
    strategy = BudgetConstrainedStrategy(TradingConfig(**{**LUMPY, **config}),
                                         np.random.default_rng(seed))
    return strategy.orders(_state(position, urgency, band))


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_a_large_position_goes_in_block_deals_of_half_what_is_left(sign: float) -> None:
    """On the deadline day: 2,000,000 t -> one block order of 1,000,000 t; 400,000 ->
    200,000; 150,000 -> the minimum block, 100,000; 50,000 t -> a listed order of all of
    it (below block size)."""
    orders = _orders(sign * np.array([2_000_000, 400_000, 150_000, 50_000]))
    by_firm = dict(zip(orders.trader.tolist(), orders.quantity.tolist(), strict=True))
    assert by_firm == {0: 1_000_000, 1: 200_000, 2: 100_000, 3: 50_000}
    assert (orders.side == (1 if sign < 0 else -1)).all()


def test_block_share_rises_with_position_size() -> None:
    """The share of the ordered tonnes in block orders rises with the position size: none
    below the minimum block, all of it from there on, for buyers and sellers."""
    sizes = np.array([20_000, 60_000, 99_999, 100_000, 300_000, 3_000_000])
    shares = []
    for size in sizes:
        orders = _orders(np.array([-size, size], dtype=float))
        shares.append(orders.quantity[orders.quantity >= 100_000].sum()
                      / orders.quantity.sum())
    assert shares[:3] == [0.0, 0.0, 0.0] and shares[3:] == [1.0, 1.0, 1.0]
    assert (np.diff(shares) >= 0).all()


def test_far_from_the_deadline_deals_keep_the_timing_of_sliced_orders() -> None:
    """Far from the deadline a day's sliced order would be 0.3 x 0.1 = 3% of the
    position: a deal of half of it comes with probability 2 x 3% = 6% a day, so the
    expected flow is the same."""
    orders = _orders(np.full(20_000, -1_000_000.0), urgency=0.0, seed=11)
    assert orders.quantity.tolist() == [500_000] * len(orders.trader)
    assert len(orders.trader) / 20_000 == pytest.approx(0.06, abs=0.006)


def test_without_block_deals_orders_are_sliced_as_before() -> None:
    """block_deals 0 keeps the split by block_threshold_t: 400,000 t on the deadline day
    is 300,000 t in the block session and 99,999 t listed."""
    orders = _orders(np.array([-400_000.0]), block_deals=0)
    assert sorted(orders.quantity.tolist()) == [99_999, 300_000]


def test_block_share_of_traded_volume_rises_with_position_size() -> None:
    """Buyers and sellers of matching positions trade through the session: the block
    share of the day's volume rises with the size of their positions, and no quota is
    created or lost (the ledger balances, holdings only move)."""
    shares = []
    for scale in (0.2, 1.0, 5.0):
        base = np.array([-60_000, -150_000, -400_000, 60_000, 150_000, 400_000]) * scale
        n = len(base)
        firms = make_firms(n)
        market = hand_built_market(firms, {"trading.block_deals": 2,
                                           "trading.patience": 0.0})
        held = np.maximum(base, 0).astype(np.int64)
        market.registry.issue(np.arange(n), held, 2025, "issued_free")
        before = market.registry.total().sum()
        orders = _orders(base, band=market.session().listed_band())
        market.session().trade(0, 2025, orders, None)
        volume = market.daily["volume"][0]
        assert volume > 0
        shares.append(market.daily["block_volume"][0] / volume)
        assert market.registry.total().sum() == before and ledger_balances(market.registry)
    assert shares[0] == 0.0 and shares[0] < shares[1] <= shares[2]
