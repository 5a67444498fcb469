"""Clearing tests for the continuous double auction order book on hand-built books.

Each test builds a tiny book by hand, works out the expected fills in a comment and asserts them
exactly. Prices are in yuan/t with the day's band 81.00-99.00 (previous close 90, +/-10 %).
"""

from __future__ import annotations

import numpy as np
import pytest

from model.exchange import (
    BUY,
    CLEARING_RULES,
    SELL,
    OrderBook,
    clearing_rule,
)


def trade_rows(book: OrderBook) -> list[tuple[int, int, float, int]]:
    """Trades as (buyer, seller, price, quantity) tuples for exact comparison."""
    t = book.trades()
    return list(
        zip(
            t["buyer"].tolist(),
            t["seller"].tolist(),
            t["price"].tolist(),
            t["quantity"].tolist(),
            strict=True,
        )
    )


def test_price_time_priority_same_price_earlier_first() -> None:
    book = OrderBook(81.0, 99.0)
    a1 = book.submit(1, SELL, 100, 90.00)
    a2 = book.submit(2, SELL, 100, 90.00)
    a3 = book.submit(3, SELL, 100, 89.50)
    # Buy 150 @ 90.00: best price first -> 100 from trader 3 @ 89.50; then at 90.00 the earlier
    # ask (trader 1) fills 50 before trader 2 gets anything.
    b = book.submit(9, BUY, 150, 90.00)
    assert (a1, a2, a3, b) == (0, 1, 2, 3)
    assert trade_rows(book) == [(9, 3, 89.50, 100), (9, 1, 90.00, 50)]
    assert book.remaining(a1) == 50
    assert book.remaining(a2) == 100
    assert book.remaining(a3) == 0
    assert book.remaining(b) == 0
    assert book.best_ask() == 90.00
    assert book.best_bid() is None
    assert book.volume == 150
    assert book.n_orders == 4


def test_bid_side_priority_highest_then_earliest() -> None:
    book = OrderBook(81.0, 99.0)
    book.submit(1, BUY, 10, 89.00)
    book.submit(2, BUY, 10, 89.50)
    book.submit(3, BUY, 10, 89.50)
    # Sell 25 @ 89.00: 10 to trader 2 @ 89.50, 10 to trader 3 @ 89.50, 5 to trader 1 @ 89.00.
    book.submit(9, SELL, 25, 89.00)
    assert trade_rows(book) == [(2, 9, 89.50, 10), (3, 9, 89.50, 10), (1, 9, 89.00, 5)]
    assert book.best_bid() == 89.00
    assert book.remaining(0) == 5


def test_partial_fill_remainder_rests_and_trades_at_resting_price() -> None:
    book = OrderBook(81.0, 99.0)
    ask = book.submit(1, SELL, 100, 91.00)
    # Buy 300 @ 91.50 takes the 100 @ 91.00 (resting price), 200 rest as a bid @ 91.50.
    bid = book.submit(2, BUY, 300, 91.50)
    assert trade_rows(book) == [(2, 1, 91.00, 100)]
    assert book.remaining(ask) == 0
    assert book.remaining(bid) == 200
    assert book.best_bid() == 91.50
    assert book.best_ask() is None
    # Sell 50 @ 91.20 crosses the resting bid and trades at the bid's 91.50; 150 remain.
    book.submit(3, SELL, 50, 91.20)
    assert trade_rows(book)[1] == (2, 3, 91.50, 50)
    assert book.remaining(bid) == 150
    assert book.volume == 150


def test_market_buy_sweeps_levels_and_remainder_is_cancelled() -> None:
    book = OrderBook(81.0, 99.0)
    book.submit(1, SELL, 10, 90.00)
    book.submit(2, SELL, 20, 90.50)
    book.submit(3, SELL, 30, 91.00)
    # Market buy 100: 10 @ 90.00 + 20 @ 90.50 + 30 @ 91.00 = 60; the other 40 are dropped.
    mkt = book.submit(9, BUY, 100, None)
    assert mkt == 3
    assert trade_rows(book) == [(9, 1, 90.00, 10), (9, 2, 90.50, 20), (9, 3, 91.00, 30)]
    assert book.volume == 60
    assert book.remaining(mkt) == 0
    assert book.best_bid() is None  # the market remainder never rests
    assert book.best_ask() is None
    assert not book.cancel(mkt)


def test_market_sell_stops_when_bids_run_out_and_empty_book_market_order() -> None:
    book = OrderBook(81.0, 99.0)
    assert book.submit(5, SELL, 10, None) == 0  # accepted, nothing to hit, nothing rests
    assert book.volume == 0
    assert book.best_ask() is None
    book.submit(1, BUY, 7, 88.00)
    book.submit(2, BUY, 5, 89.00)
    # Market sell 20: 5 @ 89.00 then 7 @ 88.00 = 12; 8 dropped.
    book.submit(9, SELL, 20, None)
    assert trade_rows(book) == [(2, 9, 89.00, 5), (1, 9, 88.00, 7)]
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.n_orders == 4


def test_orders_outside_price_limits_are_rejected() -> None:
    book = OrderBook(81.0, 99.0)
    assert book.submit(1, BUY, 10, 99.01) == -1  # above limit up
    assert book.submit(1, BUY, 10, 80.00) == -1  # below limit down
    assert book.submit(2, SELL, 10, 80.99) == -1
    assert book.submit(2, SELL, 10, 120.0) == -1
    assert book.submit(2, SELL, 10, float("inf")) == -1
    assert book.best_bid() is None and book.best_ask() is None
    assert book.n_rejected == 5
    assert book.n_orders == 0
    # Exactly at the limits is fine: bid @ 99.00 rests, sell @ 81.00 hits it at 99.00.
    assert book.submit(1, BUY, 10, 99.00) == 0
    assert book.submit(2, SELL, 4, 81.00) == 1
    assert trade_rows(book) == [(1, 2, 99.00, 4)]
    assert book.n_orders == 2
    assert book.n_rejected == 5


def test_submit_many_rejects_and_returns_ids() -> None:
    book = OrderBook(81.0, 99.0)
    ids = book.submit_many(
        np.array([1, 2, 3, 4, 5]),
        np.array([SELL, BUY, SELL, BUY, BUY]),
        np.array([10, 10, 10, 10, 3]),
        np.array([90.0, 99.5, 50.0, 90.0, np.nan]),
    )
    # Order 0 rests @ 90; 99.5 and 50 are out of band; order "3" buys 10 @ 90 against it;
    # the market buy finds an empty ask side.
    assert ids.tolist() == [0, -1, -1, 1, 2]
    assert ids.dtype == np.int64
    assert trade_rows(book) == [(4, 1, 90.00, 10)]
    assert book.n_rejected == 2
    assert book.n_orders == 3


def test_tick_rounding_buys_down_sells_up() -> None:
    book = OrderBook(81.0, 99.0)
    book.submit(1, BUY, 10, 90.057)  # -> 90.05
    book.submit(2, SELL, 10, 90.051)  # -> 90.06, so no cross
    assert book.best_bid() == 90.05
    assert book.best_ask() == 90.06
    assert book.volume == 0
    book.submit(3, BUY, 10, 90.07)  # 90.07 / 0.01 is 9006.999... in floats: must stay 90.07
    assert trade_rows(book) == [(3, 2, 90.06, 10)]
    # Rounding happens before the band check.
    assert book.submit(4, BUY, 1, 99.004) != -1  # -> 99.00
    assert book.submit(5, SELL, 1, 80.996) != -1  # -> 81.00
    assert book.submit(4, SELL, 1, 99.001) == -1  # -> 99.01
    assert book.submit(5, BUY, 1, 80.999) == -1  # -> 80.99
    # Off-grid band edges shrink onto the grid.
    off = OrderBook(81.005, 98.995)
    assert (off.limit_down, off.limit_up) == (81.01, 98.99)
    assert off.submit(1, BUY, 1, 81.00) == -1


def test_tick_rounding_with_coarser_tick() -> None:
    book = OrderBook(81.0, 99.0, tick=0.05)
    book.submit(1, BUY, 10, 90.04)  # -> 90.00
    book.submit(2, SELL, 10, 90.01)  # -> 90.05
    assert (book.best_bid(), book.best_ask()) == (90.00, 90.05)


def test_self_trade_prevention_cancels_resting_order() -> None:
    book = OrderBook(81.0, 99.0, record=True)
    own = book.submit(1, SELL, 100, 90.00)
    book.submit(2, SELL, 100, 90.50)
    # Trader 1 buys 150 @ 91: its own ask @ 90 is cancelled instead of traded, then 100 from
    # trader 2 @ 90.50, and 50 rest @ 91.00.
    bid = book.submit(1, BUY, 150, 91.00)
    assert trade_rows(book) == [(1, 2, 90.50, 100)]
    assert book.remaining(own) == 0
    assert book.remaining(bid) == 50
    assert book.best_bid() == 91.00
    assert book.best_ask() is None
    assert ("cancel", own) in book.events
    assert not book.cancel(own)


def test_self_trade_prevention_on_market_order() -> None:
    book = OrderBook(81.0, 99.0)
    book.submit(2, BUY, 10, 90.00)
    own = book.submit(1, BUY, 10, 92.00)
    book.submit(1, SELL, 15, None)  # own bid @ 92 cancelled, 10 to trader 2 @ 90, 5 dropped
    assert trade_rows(book) == [(2, 1, 90.00, 10)]
    assert book.remaining(own) == 0
    assert book.best_bid() is None


def test_cancel_and_best_quotes_after_cancels_and_fills() -> None:
    book = OrderBook(81.0, 99.0)
    b0 = book.submit(1, BUY, 10, 90.00)
    b1 = book.submit(2, BUY, 10, 89.00)
    a0 = book.submit(3, SELL, 10, 92.00)
    a1 = book.submit(4, SELL, 10, 91.00)
    assert (book.best_bid(), book.best_ask()) == (90.00, 91.00)
    assert book.cancel(b0)
    assert not book.cancel(b0)  # already cancelled
    assert not book.cancel(99)  # unknown id
    assert not book.cancel(-1)
    assert book.best_bid() == 89.00
    assert book.cancel(a1)
    assert book.best_ask() == 92.00
    # Sell 10 @ 88 skips the cancelled 90 bid and trades with trader 2 @ 89.
    book.submit(5, SELL, 10, 88.00)
    assert trade_rows(book) == [(2, 5, 89.00, 10)]
    assert book.best_bid() is None
    assert not book.cancel(b1)  # fully filled
    # Buy 4 @ 92: partial fill of a0, which stays best ask with 6 left.
    book.submit(6, BUY, 4, 92.00)
    assert book.remaining(a0) == 6
    assert book.best_ask() == 92.00
    assert book.last_price() == 92.00
    assert book.vwap() == pytest.approx((89.0 * 10 + 92.0 * 4) / 14)


def test_event_log_records_orders_cancels_trades() -> None:
    book = OrderBook(81.0, 99.0, record=True)
    book.submit(1, SELL, 5, 90.004)  # rounds up to 90.01
    book.submit(2, SELL, 5, 90.50)
    # Trader 2 buys 6 @ 95: 5 from trader 1 @ 90.01, then its own ask is cancelled (self-trade
    # prevention) and 1 rests @ 95.
    book.submit(2, BUY, 6, 95.0)
    book.submit(3, SELL, 3, None)  # hits the 1 @ 95; 2 dropped without a cancel event
    book.submit(3, BUY, 2, 89.0)
    assert book.cancel(4)
    assert book.submit(3, BUY, 1, 99.5) == -1  # rejected orders are not logged
    assert book.events == [
        ("order", 0, 1, -1, 5, 90.01),
        ("order", 1, 2, -1, 5, 90.50),
        ("order", 2, 2, 1, 6, 95.0),
        ("trade", 2, 1, 90.01, 5),
        ("cancel", 1),
        ("order", 3, 3, -1, 3, None),
        ("trade", 2, 3, 95.0, 1),
        ("order", 4, 3, 1, 2, 89.0),
        ("cancel", 4),
    ]
    quiet = OrderBook(81.0, 99.0)
    quiet.submit(1, SELL, 5, 90.0)
    quiet.submit(2, BUY, 5, 90.0)
    assert quiet.events == []


def test_bad_side_and_quantity_raise() -> None:
    book = OrderBook(81.0, 99.0)
    with pytest.raises(ValueError, match="side"):
        book.submit(1, 0, 10, 90.0)
    with pytest.raises(ValueError, match="quantity"):
        book.submit(1, BUY, 0, 90.0)
    with pytest.raises(ValueError, match="quantity"):
        book.submit(1, BUY, 2.5, 90.0)
    with pytest.raises(ValueError, match="same length"):
        book.submit_many(np.array([1, 2]), np.array([1]), np.array([1, 1]), np.array([90, 90]))
    with pytest.raises(ValueError, match="sides"):
        book.submit_many(np.array([1]), np.array([2]), np.array([1]), np.array([90.0]))
    with pytest.raises(ValueError, match="quantities"):
        book.submit_many(np.array([1]), np.array([1]), np.array([0]), np.array([90.0]))
    with pytest.raises(ValueError, match="band"):
        OrderBook(99.0, 81.0)
    with pytest.raises(ValueError, match="kind"):
        OrderBook(81.0, 99.0, kind="auction")


def test_from_previous_close_bands() -> None:
    cont = OrderBook.from_previous_close(60.0)
    assert (cont.limit_down, cont.limit_up, cont.kind) == (54.0, 66.0, "continuous")
    block = OrderBook.from_previous_close(60.0, kind="block")
    assert (block.limit_down, block.limit_up, block.kind) == (42.0, 78.0, "block")
    assert block.submit(1, BUY, 1, 77.99) == 0
    assert cont.submit(1, BUY, 1, 77.99) == -1


def test_clearing_rule_registry() -> None:
    assert clearing_rule("continuous_double_auction") is OrderBook
    assert CLEARING_RULES == {"continuous_double_auction": OrderBook}
    with pytest.raises(KeyError, match="continuous_double_auction"):
        clearing_rule("call_auction")


# ---------------------------------------------------------------- randomised book vs reference


def reference_trades(
    lo: int, hi: int, orders: list[tuple[int, int, int, int | None]]
) -> list[tuple[int, int, int, int]]:
    """Naive O(n^2) price-time-priority matcher over integer ticks, for cross-checking."""
    resting: list[list[int]] = []  # [seq, trader, side, tick, remaining]
    trades: list[tuple[int, int, int, int]] = []
    seq = 0
    for trader, side, qty, tick in orders:
        if tick is not None and not lo <= tick <= hi:
            continue  # rejected
        while qty > 0:
            live = [
                o
                for o in resting
                if o[2] == -side
                and o[4] > 0
                and (tick is None or (o[3] <= tick if side > 0 else o[3] >= tick))
            ]
            if not live:
                break
            best = min(live, key=lambda o: (o[3] * side, o[0]))
            if best[1] == trader:
                best[4] = 0
                continue
            fill = min(qty, best[4])
            best[4] -= fill
            qty -= fill
            buyer, seller = (trader, best[1]) if side > 0 else (best[1], trader)
            trades.append((buyer, seller, best[3], fill))
        if qty > 0 and tick is not None:
            resting.append([seq, trader, side, tick, qty])
        resting = [o for o in resting if o[4] > 0]
        seq += 1
    return trades


def test_randomised_book_conservation_and_reference_match() -> None:
    rng = np.random.default_rng(20210716)  # national ETS opening day
    n = 2000
    traders = rng.integers(0, 40, n)
    sides = rng.choice(np.array([BUY, SELL]), n)
    quantities = rng.integers(1, 500, n)
    # Buyers quote mostly below 90, sellers above, with overlap; a few out of band or market.
    ticks = np.round(9000 - sides * rng.normal(30, 150, n)).astype(np.int64)
    out_of_band = rng.random(n) < 0.03
    ticks[out_of_band] = rng.choice(np.array([8099, 9901, 7000, 12000]), out_of_band.sum())
    prices = ticks / 100.0
    prices[rng.random(n) < 0.05] = np.nan
    book = OrderBook(81.0, 99.0)
    ids = book.submit_many(traders, sides, quantities, prices)

    t = book.trades()
    assert t["buyer"].dtype == np.int64 and t["price"].dtype == np.float64
    assert book.n_rejected == int(np.sum(ids == -1)) > 0
    assert book.n_orders + book.n_rejected == n
    assert len(t["quantity"]) > 100
    # Conservation and band.
    assert int(t["quantity"].sum()) == book.volume
    assert np.all(t["quantity"] >= 1)
    assert np.all(t["buyer"] != t["seller"])
    assert np.all((t["price"] >= 81.0) & (t["price"] <= 99.0))
    bought = np.bincount(t["buyer"], weights=t["quantity"], minlength=40)
    sold = np.bincount(t["seller"], weights=t["quantity"], minlength=40)
    assert bought.sum() == sold.sum() == book.volume
    # Nobody gets more than it asked for.
    asked_buy = np.bincount(traders[sides == BUY], weights=quantities[sides == BUY], minlength=40)
    asked_sell = np.bincount(
        traders[sides == SELL], weights=quantities[sides == SELL], minlength=40
    )
    assert np.all(bought <= asked_buy) and np.all(sold <= asked_sell)
    # The book is not crossed at the end of the session.
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None and bid < ask

    orders = [
        (int(tr), int(sd), int(q), None if np.isnan(p) else int(tk))
        for tr, sd, q, p, tk in zip(traders, sides, quantities, prices, ticks, strict=True)
    ]
    expected = reference_trades(8100, 9900, orders)
    got = list(
        zip(
            t["buyer"].tolist(),
            t["seller"].tolist(),
            np.round(t["price"] * 100).astype(np.int64).tolist(),
            t["quantity"].tolist(),
            strict=True,
        )
    )
    assert got == expected

    # One-by-one submission gives the same session as the batch path.
    single = OrderBook(81.0, 99.0)
    single_ids = [
        single.submit(int(tr), int(sd), int(q), None if np.isnan(p) else float(p))
        for tr, sd, q, p in zip(traders, sides, quantities, prices, strict=True)
    ]
    assert single_ids == ids.tolist()
    assert trade_rows(single) == trade_rows(book)


def test_depth_aggregates_live_orders_per_level() -> None:
    # bids 100 x 10 (trader 1), 100 x 5 (trader 2), 99 x 7; asks 101 x 3. A sell of 12 at
    # 100 fills 10 from trader 1 and 2 from trader 2: 3 t stay bid at 100.
    book = OrderBook(90.0, 110.0)
    book.submit(1, 1, 10, 100.0)
    book.submit(2, 1, 5, 100.0)
    book.submit(3, 1, 7, 99.0)
    book.submit(4, -1, 3, 101.0)
    book.submit(5, -1, 12, 100.0)
    assert book.depth() == ([(100.0, 3), (99.0, 7)], [(101.0, 3)])
