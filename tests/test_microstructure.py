"""Microstructure (agents/strategies.py, model/session.py): patient firms rest orders on
both sides of the book, large positions trade in the block session, and the close stays
the VWAP of the listed session's trades.

Strategy-level tests build a ``TradingState`` by hand: expected price 100 CNY/t, the
last close (reference price) 100, listed band 90-110, the exchange's minimum block
order 100,000 t.
"""

from __future__ import annotations

import numpy as np
import pytest

from etsim import CarbonMarketModel
from etsim.agents.strategies import BudgetConstrainedStrategy, TradingState
from etsim.model.exchange import OrderBook
from etsim.model.scenario import TradingConfig

ALWAYS = {"base_activity": 1.0, "peak_activity": 1.0}


def _state(position: np.ndarray, urgency: float, annual_need: float = 1e7,
           block_min_t: int = 100_000) -> TradingState:
    n = len(position)
    return TradingState(
        position=np.asarray(position, dtype=float),
        short_later=np.zeros(n, dtype=bool),
        sellable=np.maximum(np.asarray(position, dtype=float), 0.0),
        urgency=np.full(n, urgency),
        expected_price=np.full(n, 100.0),
        expected_growth=np.zeros(n),
        discount_rate=np.full(n, 0.08),
        penalty_price=np.full(n, 500.0),
        budget=np.full(n, 1e12),
        can_trade=np.ones(n, dtype=bool),
        limit_down=90.0,
        limit_up=110.0,
        banking=True,
        reference_price=100.0,
        annual_need=np.full(n, annual_need),
        block_min_t=block_min_t,
    )


def _mixed(n: int) -> np.ndarray:
    """Half the firms short 1,000 t, half long 1,000 t."""
    return np.where(np.arange(n) % 2 == 0, -1000.0, 1000.0)


def test_patient_firms_bid_below_and_ask_above_the_last_close() -> None:
    """With patience 1 and no urgency every bid is at most the last close and every ask
    at least it (buyers' own values, 130, would bid above it); within the band."""
    strategy = BudgetConstrainedStrategy(TradingConfig(patience=1.0, **ALWAYS),
                                         np.random.default_rng(0))
    orders = strategy.orders(_state(_mixed(400), urgency=0.0))
    bids = orders.limit_price[orders.side > 0]
    asks = orders.limit_price[orders.side < 0]
    assert len(bids) == len(asks) == 200
    assert bids.max() <= 100.0 and bids.min() >= 90.0
    assert asks.min() >= 100.0 and asks.max() <= 110.0


def test_urgent_firms_and_no_patience_cross_the_last_close() -> None:
    """On the deadline day (urgency 1), or with patience 0, no bid is patient: buyers
    bid near their value (100 x 1.6, clipped to 110), above the last close."""
    for config, urgency in ((TradingConfig(patience=1.0, **ALWAYS), 1.0),
                            (TradingConfig(patience=0.0, **ALWAYS), 0.0)):
        strategy = BudgetConstrainedStrategy(config, np.random.default_rng(1))
        orders = strategy.orders(_state(_mixed(400), urgency=urgency))
        assert (orders.limit_price[orders.side > 0] > 100.0).all()


def test_a_position_large_against_annual_needs_is_not_patient() -> None:
    """A position as large as the firm's annual emissions leaves no patience."""
    strategy = BudgetConstrainedStrategy(TradingConfig(patience=1.0, **ALWAYS),
                                         np.random.default_rng(2))
    orders = strategy.orders(_state(_mixed(400), urgency=0.0, annual_need=1000.0))
    assert (orders.limit_price[orders.side > 0] > 100.0).all()


def test_patient_orders_leave_a_two_sided_book_with_a_spread() -> None:
    """One day's orders of a half-patient market on the real exchange: after matching,
    bids rest below the best ask and asks above the best bid."""
    strategy = BudgetConstrainedStrategy(TradingConfig(patience=0.5, **ALWAYS),
                                         np.random.default_rng(3))
    orders = strategy.orders(_state(_mixed(400), urgency=0.2))
    arrival = np.random.default_rng(4).permutation(len(orders.trader))
    book = OrderBook(90.0, 110.0)
    book.submit_many(orders.trader[arrival], orders.side[arrival],
                     orders.quantity[arrival], orders.limit_price[arrival])
    bids, asks = book.depth()
    assert len(book.trades()["quantity"]) > 0  # urgent orders traded...
    assert len(bids) >= 5 and len(asks) >= 5  # ...and a ladder rests on both sides
    assert book.best_bid() < book.best_ask()


def _block_share(position: np.ndarray, threshold: float) -> np.ndarray:
    """Per firm, the share of its order on the deadline day (its whole position) that
    goes to the block session."""
    strategy = BudgetConstrainedStrategy(
        TradingConfig(patience=0.0, block_threshold_t=threshold, **ALWAYS),
        np.random.default_rng(5))
    orders = strategy.orders(_state(position, urgency=1.0))
    total = np.bincount(orders.trader, weights=orders.quantity, minlength=len(position))
    block = np.bincount(orders.trader, weights=np.where(
        orders.quantity >= 100_000, orders.quantity, 0), minlength=len(position))
    return block / total


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_block_share_rises_with_position_size(sign: float) -> None:
    """Buyers and sellers alike: no block order at or below the threshold, then a block
    share that rises with the position (1 - 100,000 / |position| of the order, the
    listed rest below block size)."""
    sizes = np.array([50_000, 100_000, 250_000, 400_000, 2_000_000, 10_000_000])
    share = _block_share(sign * sizes, threshold=100_000)
    assert share[0] == share[1] == 0.0
    assert (np.diff(share[1:]) > 0).all()
    # 400,000 t: 1 - 1/4 of it goes to the block session (300,000 t), 99,999 t listed
    assert share[3] == pytest.approx(300_000 / 399_999)
    # a higher threshold keeps more of the same position in the listed session
    assert (_block_share(sign * sizes, threshold=1_000_000) <= share).all()


def test_a_small_block_part_of_a_large_position_is_one_minimum_block_order() -> None:
    """Far from the deadline a large position's daily order is small: its block part is
    raised to the exchange's minimum block size (a lump), never beyond the position."""
    strategy = BudgetConstrainedStrategy(TradingConfig(patience=0.0, **ALWAYS),
                                         np.random.default_rng(6))
    # order share 0.3 x 0.1 = 3% of 2,000,000 t = 60,000 t; block part of the position
    # 1 - 0.05 = 95%: so one block order of 100,000 t and no listed order
    orders = strategy.orders(_state(np.array([-2_000_000.0]), urgency=0.0))
    assert orders.quantity.tolist() == [100_000]
    # a position whose block part is below the minimum stays listed
    orders = strategy.orders(_state(np.array([-105_000.0]), urgency=0.0))
    assert (orders.quantity < 100_000).all()


@pytest.fixture(scope="module")
def classroom_runs() -> dict[str, dict]:
    """The classroom market with and without patient firms."""
    return {name: CarbonMarketModel("classroom", seed=1, overrides=overrides).run().results()
            for name, overrides in (("patient", None),
                                    ("impatient", {"trading.patience": 0.0}),
                                    ("no_block", {"trading.block_threshold_t": 1e9}))}


def test_resting_bids_exist_in_a_recorded_day(classroom_runs) -> None:
    """A recorded day's book holds bids at the close below the best ask, which it did
    not without patient firms; bands and ledger invariants hold (the run checks them:
    no quota created or lost)."""
    def resting_bids(tables) -> int:
        events = tables["book_events"]
        recorded = set(events["date"])
        daily = tables["market_daily"]
        day = daily[daily["date"].isin(recorded)]
        both = day["best_bid"].notna() & day["best_ask"].notna()
        assert (day.loc[both, "best_bid"] < day.loc[both, "best_ask"]).all()
        return int(day["best_bid"].notna().sum())

    assert resting_bids(classroom_runs["patient"]) >= 1
    assert resting_bids(classroom_runs["impatient"]) == 0


def test_the_close_is_the_vwap_of_listed_trades(classroom_runs) -> None:
    """Each close is the volume-weighted mean price of that day's listed trades, to the
    fen; block trades never enter it."""
    tables = classroom_runs["patient"]
    trades = tables["trades"]
    listed = trades[trades["kind"] == "continuous"]
    vwap = (listed.assign(value=listed["price"] * listed["quantity"]).groupby("date")
            [["value", "quantity"]].sum())
    daily = tables["market_daily"].set_index("date")
    expected = (vwap["value"] / vwap["quantity"]).round(2)
    np.testing.assert_allclose(daily.loc[expected.index, "close"], expected)
    assert daily["close"].notna().sum() == len(expected)


def test_block_volume_comes_from_large_positions(classroom_runs) -> None:
    """In a whole run, block trades come from positions above the threshold: with a
    threshold above every position no order reaches block size and there is no block
    volume; with the default there is."""
    default = classroom_runs["patient"]["market_daily"]["block_volume"].sum()
    none = classroom_runs["no_block"]["market_daily"]["block_volume"].sum()
    assert default > 0 and none == 0
