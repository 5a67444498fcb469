"""Financial traders (agents/financial.py): quotes, limits, ids, determinism, and a few days
on the real order book with zero-intelligence firms.

Unless a test says otherwise the day is: previous close 100, band 90.00-110.00, tick 0.01,
fundamental price 100.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from etsim.agents.financial import (
    FINANCIAL_TRADERS,
    FinancialDayState,
    FinancialTraders,
    MarketMaker,
    Speculator,
)
from etsim.model.exchange import BUY, SELL, OrderBook
from etsim.model.scenario import FinancialTradersConfig
from etsim.model.session import closing_price, price_band

DAY = FinancialDayState(previous_close=100.0, limit_down=90.0, limit_up=110.0,
                        fundamental_price=100.0)


def makers(n: int = 1, offset: int = 0, seed: int = 0, **config) -> FinancialTraders:
    return FinancialTraders({"market_maker": n}, FinancialTradersConfig(**config),
                            np.random.default_rng(seed), offset)


def speculators(n: int = 1, offset: int = 0, seed: int = 0, **config) -> FinancialTraders:
    config = {"activity": 1.0, "threshold_dispersion": 0.0, **config}
    return FinancialTraders({"speculator": n}, FinancialTradersConfig(**config),
                            np.random.default_rng(seed), offset)


def rows(orders) -> list[tuple[int, int, int, float]]:
    return list(zip(orders.trader.tolist(), orders.side.tolist(), orders.quantity.tolist(),
                    orders.limit_price.tolist(), strict=True))


def test_registry_and_unknown_kind() -> None:
    assert FINANCIAL_TRADERS == {"speculator": Speculator, "market_maker": MarketMaker}
    with pytest.raises(KeyError, match="market_maker"):
        FinancialTraders({"arbitrageur": 1}, FinancialTradersConfig(), np.random.default_rng(0), 0)
    fin = FinancialTraders.from_config(FinancialTradersConfig(market_makers=2, speculators=3),
                                       np.random.default_rng(0), 7)
    assert fin.n == 5 and fin.kinds == ["market_maker", "speculator"]
    assert fin.kind.tolist() == [0, 0, 1, 1, 1]
    assert fin.cash.tolist() == [5_000_000.0] * 5 and fin.holdings.tolist() == [0] * 5
    none = FinancialTraders.from_config(FinancialTradersConfig(), np.random.default_rng(0), 0)
    assert none.n == 0


def test_market_maker_quotes_both_sides_around_the_reference_with_the_spread() -> None:
    # At half its limit there is no skew: bid 100 x (1 - 0.01), ask 100 x (1 + 0.01).
    fin = makers(spread=0.02, quote_t=500, position_limit_t=10_000)
    fin.holdings[:] = 5_000
    assert rows(fin.orders(DAY)) == [(0, BUY, 500, 99.00), (0, SELL, 500, 101.00)]
    wide = makers(spread=0.05, quote_t=500, position_limit_t=10_000)
    wide.holdings[:] = 5_000
    assert rows(wide.orders(DAY)) == [(0, BUY, 500, 97.50), (0, SELL, 500, 102.50)]
    # Reference "mid": the previous closing mid quote (98 + 104) / 2 = 101.
    mid = makers(spread=0.02, quote_t=500, position_limit_t=10_000, reference="mid")
    mid.holdings[:] = 5_000
    day = dataclasses.replace(DAY, best_bid=98.0, best_ask=104.0)
    assert rows(mid.orders(day)) == [(0, BUY, 500, 99.99), (0, SELL, 500, 102.01)]
    # without a two-sided close it falls back to the close
    assert rows(mid.orders(DAY))[0][3] == 99.00


def test_market_maker_skews_its_quotes_by_inventory() -> None:
    # Long 9,000 of 10,000: shift = 0.01 x (2 x 0.9 - 1) = 0.008 -> bid 98.20, ask 100.20.
    fin = makers(2, spread=0.02, inventory_skew=0.01, quote_t=500, position_limit_t=10_000)
    fin.holdings[:] = [9_000, 1_000]
    orders = fin.orders(DAY)
    # Short of half (1,000 of 10,000): shift = -0.008 -> bid 99.80, ask 101.80.
    assert rows(orders) == [(0, BUY, 500, 98.20), (1, BUY, 500, 99.80),
                            (0, SELL, 500, 100.20), (1, SELL, 500, 101.80)]
    # Both quotes of the long one are below those of the short one, spread unchanged.


def test_market_maker_stops_buying_at_its_position_limit() -> None:
    fin = makers(3, quote_t=500, position_limit_t=10_000)
    fin.holdings[:] = [10_000, 9_800, 0]
    orders = fin.orders(DAY)
    bids = {t: q for t, s, q, _ in rows(orders) if s == BUY}
    asks = {t: q for t, s, q, _ in rows(orders) if s == SELL}
    assert bids == {1: 200, 2: 500}  # at the limit: no bid; 200 t of room: 200 t
    assert asks == {0: 500, 1: 500}  # nothing held: no ask (no short selling)


def test_cash_limits_a_bid() -> None:
    fin = makers(quote_t=500, position_limit_t=10_000, cash=10_000.0)
    fin.holdings[:] = 5_000
    (trader, side, qty, price), _ = rows(fin.orders(DAY))
    assert (side, price, qty) == (BUY, 99.00, 101)  # floor(10,000 / 99)


def test_speculator_buys_below_value_and_sells_above() -> None:
    fin = speculators(threshold=0.05, order_t=2_000)
    # Close 90 is 10 % under value 100: buy, bidding value x (1 - 0.05) = 95.
    cheap = dataclasses.replace(DAY, previous_close=90.0, limit_down=81.0, limit_up=99.0)
    assert rows(fin.orders(cheap)) == [(0, BUY, 2_000, 95.00)]
    # Close 110 is 10 % over value: sell what it holds (1,500 < 2,000) at 105.
    dear = dataclasses.replace(DAY, previous_close=110.0, limit_down=99.0, limit_up=121.0)
    assert rows(fin.orders(dear)) == []  # holds nothing: no short selling
    fin.holdings[:] = 1_500
    assert rows(fin.orders(dear)) == [(0, SELL, 1_500, 105.00)]
    # Within the threshold: nothing.
    near = dataclasses.replace(DAY, previous_close=97.0)
    assert rows(fin.orders(near)) == []
    # Value outside the band: the bid is clipped to the upper limit.
    far = dataclasses.replace(DAY, fundamental_price=150.0)
    assert rows(fin.orders(far)) == [(0, BUY, 2_000, 110.00)]
    # No fundamental price: no view, no orders.
    assert rows(fin.orders(dataclasses.replace(DAY, fundamental_price=float("nan")))) == []


def test_orders_use_the_row_offset() -> None:
    fin = FinancialTraders({"market_maker": 2, "speculator": 2},
                           FinancialTradersConfig(activity=1.0), np.random.default_rng(1), 500)
    fin.holdings[:] = 1_000
    assert fin.rows.tolist() == [500, 501, 502, 503]
    assert fin.owns(np.array([499, 500, 503, 504])).tolist() == [False, True, True, False]
    orders = fin.orders(dataclasses.replace(DAY, previous_close=90.0, limit_down=81.0,
                                            limit_up=99.0))
    assert set(orders.trader.tolist()) == {500, 501, 502, 503}
    assert orders.trader.dtype == np.int64 and orders.quantity.dtype == np.int64
    with pytest.raises(ValueError, match="offset"):
        FinancialTraders({"market_maker": 1}, FinancialTradersConfig(),
                         np.random.default_rng(0), -1)


@pytest.mark.parametrize("tick", [0.01, 0.05])
def test_quotes_inside_the_days_limits_on_the_tick_and_within_holdings(tick: float) -> None:
    rng = np.random.default_rng(3)
    # a skew above spread / 2, which the schema refuses: the quoting rules must hold even so
    config = FinancialTradersConfig.model_construct(
        spread=0.3, inventory_skew=0.2, activity=1.0, threshold=0.02, quote_t=3_000,
        order_t=4_000, position_limit_t=8_000, cash=400_000.0)
    fin = FinancialTraders({"market_maker": 20, "speculator": 20}, config, rng, 100)
    for _ in range(50):
        close = float(np.round(rng.uniform(40, 120), 2))
        fin.holdings[:] = rng.integers(0, 8_001, fin.n)
        fin.cash[:] = rng.uniform(0, 400_000, fin.n)
        day = FinancialDayState(close, round(close * 0.9, 2), round(close * 1.1, 2),
                                float(rng.uniform(30, 150)), tick=tick)
        orders = fin.orders(day)
        price = orders.limit_price
        assert np.all((price >= day.limit_down - 1e-9) & (price <= day.limit_up + 1e-9))
        assert np.allclose(price / tick, np.round(price / tick), atol=1e-6)
        assert np.all(orders.quantity >= 1)
        local = orders.trader - 100
        sells, buys = orders.side == SELL, orders.side == BUY
        assert np.all(orders.quantity[sells] <= fin.holdings[local[sells]])
        room = fin.position_limit[local[buys]] - fin.holdings[local[buys]]
        assert np.all(orders.quantity[buys] <= room)
        assert np.all(orders.quantity[buys] * price[buys] <= fin.cash[local[buys]] + 1e-6)
        # at most one order a side per account, and an account's ask is above its bid
        for side in (BUY, SELL):
            assert len(set(local[orders.side == side].tolist())) == int(
                np.sum(orders.side == side))
        bid_of = dict(zip(local[buys].tolist(), price[buys].tolist(), strict=True))
        for trader, ask in zip(local[sells].tolist(), price[sells].tolist(), strict=True):
            assert ask > bid_of.get(trader, -1.0)


def test_resting_orders_leave_room_under_the_limits() -> None:
    fin = makers(quote_t=500, position_limit_t=10_000)
    fin.holdings[:] = 5_000
    day = dataclasses.replace(DAY, resting_buy_t=np.array([4_800]),
                              resting_sell_t=np.array([4_700]),
                              resting_buy_value=np.array([0.0]))
    assert rows(fin.orders(day)) == [(0, BUY, 200, 99.00), (0, SELL, 300, 101.00)]


def test_deterministic_under_a_seed() -> None:
    def run(seed: int) -> list:
        fin = FinancialTraders({"market_maker": 3, "speculator": 10},
                               FinancialTradersConfig(activity=0.5, threshold=0.03),
                               np.random.default_rng(seed), 0)
        fin.holdings[:] = 2_000
        out = []
        for close in (90.0, 95.0, 104.0, 110.0, 96.0):
            day = FinancialDayState(close, close * 0.9, close * 1.1, 100.0)
            out.append(rows(fin.orders(day)))
        return out

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_settle_books_trades_and_refuses_broken_accounts() -> None:
    fin = makers(2, offset=10, position_limit_t=1_000, cash=50_000.0)
    fin.settle_trades({"buyer": np.array([10, 3, 11]), "seller": np.array([3, 10, 4]),
                       "price": np.array([100.0, 101.0, 99.0]),
                       "quantity": np.array([300, 100, 50])})
    # 10 bought 300 @ 100 and sold 100 @ 101; 11 bought 50 @ 99; 3 and 4 are not ours.
    assert fin.holdings.tolist() == [200, 50]
    assert fin.cash.tolist() == [50_000.0 - 30_000.0 + 10_100.0, 50_000.0 - 4_950.0]
    fin.settle(np.array([11]), np.array([-50]), np.array([5_000.0]))
    assert fin.holdings.tolist() == [200, 0]
    with pytest.raises(ValueError, match="not financial"):
        fin.settle(np.array([9]), np.array([1]), np.array([-1.0]))
    with pytest.raises(ValueError, match="financial account 11"):
        fin.settle(np.array([11]), np.array([-1]), np.array([100.0]))  # would go short


# ---------------------------------------------------------------- a few days on the book


def test_market_makers_and_zi_firms_on_the_order_book_conserve_quota_and_cash() -> None:
    """Zero-intelligence firms (rows 0-9) and financial accounts (rows 10-14) trade for 40
    days in the real order book; quota and cash are conserved, nobody goes short, overdrawn
    or over the position limit."""
    rng = np.random.default_rng(2021)
    n_zi = 10
    config = FinancialTradersConfig(market_makers=3, speculators=2, position_limit_t=3_000,
                             cash=600_000.0, spread=0.02, quote_t=400, order_t=800,
                             activity=1.0, threshold=0.03)
    fin = FinancialTraders.from_config(config, rng, offset=n_zi)
    zi_quota = np.full(n_zi, 20_000, dtype=np.int64)
    zi_cash = np.full(n_zi, 3_000_000.0)
    total_quota = int(zi_quota.sum() + fin.holdings.sum())
    total_cash = float(zi_cash.sum() + fin.cash.sum())
    close, fundamental = 100.0, 100.0
    best_bid = best_ask = float("nan")
    mm_rows = fin.rows[fin.kind == fin.kinds.index("market_maker")]
    fin_volume = 0
    mm_sides: set[int] = set()
    for _ in range(40):
        book = OrderBook(*price_band(close, 0.10))
        day = FinancialDayState(close, book.limit_down, book.limit_up, fundamental,
                                best_bid=best_bid, best_ask=best_ask)
        fin_orders = fin.orders(day)
        # ZI firms: random side, price uniform in the band, never short or overdrawn.
        side = rng.choice(np.array([BUY, SELL]), n_zi)
        price = np.round(rng.uniform(book.limit_down, book.limit_up, n_zi), 2)
        qty = rng.integers(1, 1_500, n_zi)
        qty = np.where(side > 0, np.minimum(qty, np.floor(zi_cash / price)),
                       np.minimum(qty, zi_quota)).astype(np.int64)
        keep = qty >= 1
        trader = np.concatenate([np.arange(n_zi)[keep], fin_orders.trader])
        sides = np.concatenate([side[keep], fin_orders.side])
        qtys = np.concatenate([qty[keep], fin_orders.quantity])
        prices = np.concatenate([price[keep], fin_orders.limit_price])
        arrival = rng.permutation(len(trader))
        book.submit_many(trader[arrival], sides[arrival], qtys[arrival], prices[arrival])

        trades = book.trades()
        zi_b, zi_s = trades["buyer"] < n_zi, trades["seller"] < n_zi
        value = trades["price"] * trades["quantity"]
        np.add.at(zi_quota, trades["buyer"][zi_b], trades["quantity"][zi_b])
        np.add.at(zi_quota, trades["seller"][zi_s], -trades["quantity"][zi_s])
        np.add.at(zi_cash, trades["buyer"][zi_b], -value[zi_b])
        np.add.at(zi_cash, trades["seller"][zi_s], value[zi_s])
        fin.settle_trades(trades)  # raises on any broken account

        assert int(zi_quota.sum() + fin.holdings.sum()) == total_quota
        assert float(zi_cash.sum() + fin.cash.sum()) == pytest.approx(total_cash, rel=1e-12)
        assert np.all(zi_quota >= 0) and np.all(zi_cash >= -1e-6)
        mm = mm_rows - fin.offset
        assert np.all(fin.holdings[mm] <= config.position_limit_t)
        assert np.all(fin.holdings >= 0) and np.all(fin.cash >= -1e-6)
        fin_volume += int(trades["quantity"][fin.owns(trades["buyer"])
                                             | fin.owns(trades["seller"])].sum())
        mm_sides.update(BUY for b in trades["buyer"].tolist() if b in mm_rows)
        mm_sides.update(SELL for s in trades["seller"].tolist() if s in mm_rows)
        if book.volume:
            close = closing_price(book.trades())
        bid, ask = book.best_bid(), book.best_ask()
        best_bid = float("nan") if bid is None else bid
        best_ask = float("nan") if ask is None else ask
        fundamental *= 1.0 + rng.normal(0, 0.01)
    assert fin_volume > 0
    assert mm_sides == {BUY, SELL}
    assert fin.holdings[mm].max() > 0
