"""Clearing tests for the continuous double auction order book on hand-built books.

Each test builds a tiny book by hand, works out the expected fills in a comment and asserts them
exactly. Prices are in yuan/t with the day's band 81.00-99.00 (previous close 90, +/-10 %).
"""

from __future__ import annotations

import numpy as np
import pytest

from etsim.model.exchange import (
    BUY,
    SELL,
    OrderBook,
    RestingOrders,
    lowest_tick,
)
from etsim.model.session import closing_price, price_band


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
    assert book.trades()["price"][-1] == 92.00
    # the close of a session with these trades: their VWAP, to the fen
    assert closing_price(book.trades()) == round((89.0 * 10 + 92.0 * 4) / 14, 2)


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


def test_a_band_must_lie_above_zero_and_hold_a_tick() -> None:
    """The book refuses a band that admits a price below one tick (none may print at
    0.00) or holds no tick; the session never hands it one (``price_band``)."""
    with pytest.raises(ValueError, match="lowest price"):
        OrderBook(0.0, 1.0)
    with pytest.raises(ValueError, match="lowest price"):
        OrderBook(0.0, 3.0, tick=1.0)
    assert OrderBook(0.5, 3.0, tick=1.0).limit_down == 1.0  # rounded up onto the grid
    with pytest.raises(ValueError, match="empty price band"):
        OrderBook(30.2, 30.8, tick=1.0)
    lowest = OrderBook(0.01, 0.02)
    assert lowest.submit(1, SELL, 1, 0.0) == -1
    assert lowest.submit(1, SELL, 1, 0.001) == 0  # up to the less aggressive tick, 0.01
    lowest.submit(2, BUY, 1, None)
    assert lowest.trades()["price"].tolist() == [0.01]
    # below a fen the lowest price is one fen: prices print to the fen
    assert lowest_tick(0.01) == 1 and lowest_tick(1.0) == 1 and lowest_tick(0.004) == 3
    assert OrderBook(*price_band(30.5, 0.01, tick=1.0), tick=1.0).limit_down == 30.0


def test_session_bands_around_the_previous_close() -> None:
    """The listed band is the previous close -/+10%, the block band -/+30%, to the fen."""
    assert price_band(60.0, 0.10) == (54.0, 66.0)
    assert price_band(60.0, 0.30) == (42.0, 78.0)
    block = OrderBook(*price_band(60.0, 0.30), kind="block")
    listed = OrderBook(*price_band(60.0, 0.10))
    assert block.submit(1, BUY, 1, 77.99) == 0
    assert listed.submit(1, BUY, 1, 77.99) == -1


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


# ---------------------------------------------------------------- expiry: day and GTC orders
#
# Day 1 has the band 81.00-99.00 (previous close 90) unless a test says otherwise; the next
# day's book is opened with ``carried=`` the previous book's ``resting_gtc()``.


def test_gtc_bid_rests_overnight_and_fills_next_day_at_its_price() -> None:
    day1 = OrderBook(81.0, 99.0)
    bid = day1.submit(1, BUY, 100, 90.00, gtc=True)
    day1.submit(3, SELL, 10, 95.00)  # no cross: the day closes with the bid resting
    carried = day1.resting_gtc()
    assert carried.trader.tolist() == [1] and carried.quantity.tolist() == [100]
    assert carried.limit_price.tolist() == [90.00] and carried.age.tolist() == [0]
    assert carried.order_id.tolist() == carried.first_id.tolist() == [bid]
    day2 = OrderBook(81.0, 99.0, carried=carried)
    # The carried bid is order 0 of day 2. Sell 60 @ 89.00 trades at the resting bid's 90.00.
    assert day2.depth() == ([(90.00, 100)], [])
    assert day2.submit(2, SELL, 60, 89.00) == 1
    assert trade_rows(day2) == [(1, 2, 90.00, 60)]
    assert day2.remaining(0) == 40
    again = day2.resting_gtc()
    assert again.quantity.tolist() == [40] and again.age.tolist() == [1]
    assert again.first_id.tolist() == [bid] and again.order_id.tolist() == [0]
    assert day2.n_carried == 1 and day2.n_orders == 1


def test_day_order_does_not_survive_the_close() -> None:
    day1 = OrderBook(81.0, 99.0)
    day1.submit(1, BUY, 10, 88.00)  # day order (the default)
    day1.submit(2, BUY, 20, 87.00, gtc=False)
    day1.submit(3, SELL, 30, 92.00, gtc=True)
    day1.submit(4, BUY, 5, None, gtc=True)  # market: its remainder never rests
    day1.submit_many(np.array([5]), np.array([SELL]), np.array([7]), np.array([93.0]))
    carried = day1.resting_gtc()
    assert carried.trader.tolist() == [3]
    assert carried.quantity.tolist() == [25]  # the market buy took 5
    day2 = OrderBook(81.0, 99.0, carried=carried)
    assert day2.depth() == ([], [(92.00, 25)])
    # A book opened without carried orders is empty, whatever yesterday held.
    assert OrderBook(81.0, 99.0).depth() == ([], [])
    assert len(OrderBook(81.0, 99.0).resting_gtc()) == 0


def test_carried_order_outside_new_band_expires_and_is_recorded() -> None:
    day1 = OrderBook(81.0, 99.0)
    day1.submit(1, BUY, 10, 82.00, gtc=True)
    day1.submit(2, SELL, 20, 98.00, gtc=True)
    # The close jumps to 100: the new band is 90.00-110.00, so the bid at 82 is outside it.
    day2 = OrderBook(*price_band(100.0, 0.10), record=True, carried=day1.resting_gtc())
    assert (day2.limit_down, day2.limit_up) == (90.00, 110.00)
    assert day2.events == [
        ("carry", 0, 1, BUY, 10, 82.00, 0, 1),
        ("expire", 0, "band"),
        ("carry", 1, 2, SELL, 20, 98.00, 1, 1),
    ]
    assert day2.depth() == ([], [(98.00, 20)])
    expired = day2.expired
    assert expired.trader.tolist() == [1] and expired.quantity.tolist() == [10]
    assert expired.order_id.tolist() == [0] and expired.limit_price.tolist() == [82.00]
    assert day2.remaining(0) == 0 and not day2.cancel(0)
    assert day2.n_carried == 2
    # A sell at 90 cannot reach the expired bid.
    day2.submit(3, SELL, 5, 90.00)
    assert day2.volume == 0


def test_gtc_max_age_expires_an_old_order_at_the_open() -> None:
    # max_age=1: carried once (age 1 on day 2), expired at the open of day 3 (age 2).
    day1 = OrderBook(81.0, 99.0)
    day1.submit_many(np.array([1, 2]), np.array([BUY, SELL]), np.array([10, 10]),
                     np.array([85.0, 95.0]), gtc=np.array([True, True]), max_age=1)
    day1.submit(3, BUY, 10, 86.00, gtc=True)  # no age limit
    day2 = OrderBook(81.0, 99.0, carried=day1.resting_gtc())
    assert day2.depth() == ([(86.00, 10), (85.00, 10)], [(95.00, 10)])
    carried = day2.resting_gtc()
    assert carried.max_age.tolist() == [1, 1, -1] and carried.age.tolist() == [1, 1, 1]
    day3 = OrderBook(81.0, 99.0, record=True, carried=carried)
    assert day3.depth() == ([(86.00, 10)], [])
    assert [e for e in day3.events if e[0] == "expire"] == [("expire", 0, "age"),
                                                            ("expire", 1, "age")]
    assert day3.expired.trader.tolist() == [1, 2]
    # max_age=0 makes a GTC order a day order; bad limits are refused.
    day1b = OrderBook(81.0, 99.0)
    day1b.submit(1, BUY, 10, 85.00, gtc=True, max_age=0)
    assert OrderBook(81.0, 99.0, carried=day1b.resting_gtc()).depth() == ([], [])
    with pytest.raises(ValueError, match="max_age"):
        day1b.submit(1, BUY, 10, 85.00, gtc=True, max_age=-1)
    with pytest.raises(ValueError, match="gtc"):
        day1b.submit_many(np.array([1, 2]), np.array([BUY, BUY]), np.array([1, 1]),
                          np.array([85.0, 85.0]), gtc=np.array([True]))


def test_partial_fill_then_carry_of_the_remainder() -> None:
    day1 = OrderBook(81.0, 99.0)
    ask = day1.submit(1, SELL, 100, 91.00, gtc=True)
    day1.submit(2, BUY, 30, 91.00)  # fills 30 of the 100
    carried = day1.resting_gtc()
    assert (carried.order_id.tolist(), carried.quantity.tolist()) == ([ask], [70])
    day2 = OrderBook(81.0, 99.0, carried=carried)
    # Buy 80 @ 92 takes the 70 left at the ask's 91.00; its own 10 rest as a day order.
    day2.submit(3, BUY, 80, 92.00)
    assert trade_rows(day2) == [(3, 1, 91.00, 70)]
    assert len(day2.resting_gtc()) == 0
    assert day2.depth() == ([(92.00, 10)], [])
    assert len(OrderBook(81.0, 99.0, carried=day2.resting_gtc()).depth()[0]) == 0


def test_carried_orders_keep_priority_over_new_orders_at_the_same_price() -> None:
    day1 = OrderBook(81.0, 99.0)
    day1.submit(2, SELL, 10, 90.00, gtc=True)  # earliest
    day1.submit(1, SELL, 10, 90.00, gtc=True)
    day1.submit(4, SELL, 10, 89.00)  # day order, gone tomorrow
    day2 = OrderBook(81.0, 99.0, carried=day1.resting_gtc())
    day2.submit(3, SELL, 10, 90.00, gtc=True)  # new today, same price
    # Buy 25 @ 90: trader 2, then trader 1 (carried, in their old order), then 5 from 3.
    day2.submit(9, BUY, 25, 90.00)
    assert trade_rows(day2) == [(9, 2, 90.00, 10), (9, 1, 90.00, 10), (9, 3, 90.00, 5)]
    left = day2.resting_gtc()
    assert (left.trader.tolist(), left.quantity.tolist(), left.age.tolist()) == ([3], [5], [0])
    # Still ahead of day 3's orders at the same price the day after.
    day3 = OrderBook(81.0, 99.0, carried=left)
    day3.submit(5, SELL, 10, 90.00)
    day3.submit(9, BUY, 6, 90.00)
    assert trade_rows(day3) == [(9, 3, 90.00, 5), (9, 5, 90.00, 1)]


def test_carried_orders_that_cross_are_refused_and_committed_totals() -> None:
    crossed = RestingOrders.from_rows([(0, 0, 1, BUY, 10, 91.0, 0, -1),
                                       (1, 1, 2, SELL, 10, 90.0, 0, -1)])
    with pytest.raises(ValueError, match="cross"):
        OrderBook(81.0, 99.0, carried=crossed)
    resting = RestingOrders.from_rows([(0, 0, 1, BUY, 10, 88.0, 0, -1),
                                       (3, 3, 1, BUY, 5, 87.0, 2, -1),
                                       (4, 4, 2, SELL, 7, 92.0, 0, 3)])
    buy_t, sell_t, value = resting.committed(4)
    assert buy_t.tolist() == [0, 15, 0, 0] and sell_t.tolist() == [0, 0, 7, 0]
    assert value.tolist() == [0.0, 88.0 * 10 + 87.0 * 5, 0.0, 0.0]
    assert len(RestingOrders.empty()) == 0


def reference_gtc_days(
    days: list[tuple[int, int, list[tuple[int, int, int, int | None, bool]]]],
    max_age: int,
) -> list[list[tuple[int, int, int, int]]]:
    """Naive multi-day matcher: per day (lo, hi, orders of (trader, side, qty, tick, gtc)).

    Resting orders are [time, trader, side, tick, remaining, gtc, age]; the GTC ones with a
    remainder carry to the next day in time order unless outside its band or too old.
    """
    carried: list[list[int]] = []
    clock = 0
    out = []
    for lo, hi, orders in days:
        resting = [
            [o[0], o[1], o[2], o[3], o[4], 1, o[6] + 1]
            for o in carried
            if lo <= o[3] <= hi and o[6] + 1 <= max_age
        ]
        trades: list[tuple[int, int, int, int]] = []
        for trader, side, qty, tick, gtc in orders:
            if tick is not None and not lo <= tick <= hi:
                continue
            while qty > 0:
                live = [o for o in resting if o[2] == -side and o[4] > 0
                        and (tick is None or (o[3] <= tick if side > 0 else o[3] >= tick))]
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
                resting.append([clock, trader, side, tick, qty, int(gtc), 0])
            clock += 1
        carried = sorted((o for o in resting if o[4] > 0 and o[5]), key=lambda o: o[0])
        out.append(trades)
    return out


def _random_day(rng: np.random.Generator, n: int, centre: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    traders = rng.integers(0, 30, n)
    sides = rng.choice(np.array([BUY, SELL]), n)
    qty = rng.integers(1, 300, n)
    ticks = np.round(centre - sides * rng.normal(40, 250, n)).astype(np.int64)
    prices = ticks / 100.0
    prices[rng.random(n) < 0.04] = np.nan
    gtc = rng.random(n) < 0.5
    return traders, sides, qty, prices, gtc


def _run_gtc_days(seed: int, unique_traders: bool, max_age: int = 3, n_days: int = 12
                  ) -> tuple[list[OrderBook], list, RestingOrders]:
    """Random GTC/day limit orders over days; returns the books, the reference input and
    the orders resting after the last day."""
    rng = np.random.default_rng(seed)
    close, carried = 90.0, RestingOrders.empty()
    books, reference_days = [], []
    next_trader = 0
    for day in range(n_days):
        book = OrderBook(*price_band(close, 0.10), record=True, carried=carried)
        traders, sides, qty, prices, gtc = _random_day(rng, 300, round(close * 100))
        if unique_traders:  # nobody meets itself: no self-trade cancels
            traders = np.arange(next_trader, next_trader + len(traders))
            next_trader += len(traders)
        prices = np.where(np.isnan(prices), close, prices)  # limit orders only
        book.submit_many(traders, sides, qty, prices, gtc=gtc, max_age=max_age)
        ticks = np.where(sides > 0, np.floor(prices * 100 + 1e-7), np.ceil(prices * 100 - 1e-7))
        reference_days.append((book._lo, book._hi, [
            (int(t), int(s), int(q), int(k), bool(g))
            for t, s, q, k, g in zip(traders, sides, qty, ticks, gtc, strict=True)]))
        books.append(book)
        carried = book.resting_gtc()
        close = closing_price(book.trades()) or close
        if day == 4:
            close *= 1.12  # a jump, so that carried orders fall outside the next band
    return books, reference_days, carried


def test_gtc_days_match_a_naive_reference() -> None:
    max_age = 3
    books, reference_days, _ = _run_gtc_days(20240101, unique_traders=False, max_age=max_age)
    expected = reference_gtc_days(reference_days, max_age)
    for book, want in zip(books, expected, strict=True):
        got = list(zip(book.trade_buyer, book.trade_seller, book.trade_tick, book.trade_qty,
                       strict=True))
        assert got == want
    assert any(e[0] == "cancel" for b in books for e in b.events)  # self-trades happened
    reasons = {e[2] for b in books for e in b.events if e[0] == "expire"}
    assert reasons == {"band", "age"}


def test_gtc_conserves_quantity_over_days() -> None:
    books, reference_days, final = _run_gtc_days(11, unique_traders=True)
    for side in (BUY, SELL):
        sent = sum(q for lo, hi, orders in reference_days for _, s, q, k, _ in orders
                   if s == side and lo <= k <= hi)  # rejected orders never entered
        traded = sum(b.volume for b in books)
        expired = sum(int(b.expired.quantity[b.expired.side == side].sum()) for b in books)
        dropped = 0  # day-order remainders at each close
        for i, book in enumerate(books):
            bids, asks = book.depth()
            resting = sum(q for _, q in (bids if side == BUY else asks))
            kept = books[i + 1] if i + 1 < len(books) else None
            carried = (int(final.quantity[final.side == side].sum()) if kept is None else
                       sum(e[4] for e in kept.events if e[0] == "carry" and e[3] == side))
            dropped += resting - carried
        left = int(final.quantity[final.side == side].sum())
        assert sent == traded + dropped + expired + left
        assert dropped > 0 and expired > 0 and left > 0
    for book in books[1:]:
        # What was carried in = what rested at the open + what expired at the open.
        carried_in = sum(e[4] for e in book.events if e[0] == "carry")
        expired = int(book.expired.quantity.sum())
        opening = OrderBook.replay([e for e in book.events if e[0] in ("carry", "expire")],
                                   book.limit_down, book.limit_up).depth()
        assert carried_in == expired + sum(q for side in opening for _, q in side)
    assert not any(e[0] == "cancel" for b in books for e in b.events)


def test_replay_from_the_carried_orders_rebuilds_each_day() -> None:
    """Each day's log, replayed from its carry events, rebuilds that day's book exactly."""
    rng = np.random.default_rng(7)
    close, carried = 90.0, None
    n_carry = 0
    for day in range(6):
        book = OrderBook(*price_band(close, 0.10), record=True, carried=carried)
        traders, sides, qty, prices, gtc = _random_day(rng, 150, round(close * 100))
        ids = book.submit_many(traders, sides, qty, prices, gtc=gtc, max_age=2)
        for seq in rng.choice(ids[ids >= 0], 5, replace=False).tolist():
            book.cancel(seq)  # explicit cancels, some of them no-ops
        replayed = OrderBook.replay(book.events, book.limit_down, book.limit_up)
        assert replayed.events == book.events
        assert replayed.depth() == book.depth()
        assert trade_rows(replayed) == trade_rows(book)
        carried_ids = book.resting_gtc().order_id
        assert set(carried_ids[carried_ids < book.n_carried].tolist()) == {
            int(o) for o in replayed.resting_gtc().order_id}
        n_carry += sum(e[0] == "carry" for e in book.events)
        # The model's own replay, which submits the day's orders to a fresh book, works once
        # the book is opened from the carried orders rather than empty.
        fresh = OrderBook.replay([e for e in book.events if e[0] in ("carry", "expire")],
                                 book.limit_down, book.limit_up)
        for e in book.events:
            if e[0] == "order":
                fresh.submit(e[2], e[3], e[4], e[5])
        assert trade_rows(fresh) == trade_rows(book)
        carried = book.resting_gtc()
        close = closing_price(book.trades()) or close
        if day == 2:
            close *= 1.15  # a jump, so that some carried orders fall outside the next band
    assert n_carry > 0


def test_replay_rejects_an_inconsistent_log() -> None:
    with pytest.raises(ValueError, match="sequence"):
        OrderBook.replay([("order", 3, 1, BUY, 10, 90.0)], 81.0, 99.0)


def test_cancel_a_carried_order_at_the_open() -> None:
    # The k-th carried order gets id k in the new book: the model can withdraw it (e.g. an
    # ask larger than what its firm may still sell) before the day's orders arrive.
    day1 = OrderBook(81.0, 99.0)
    day1.submit_many(np.array([1, 2]), np.array([SELL, SELL]), np.array([10, 20]),
                     np.array([92.0, 93.0]), gtc=np.True_)
    carried = day1.resting_gtc()
    day2 = OrderBook(81.0, 99.0, record=True, carried=carried)
    assert day2.cancel(1)
    assert day2.events[-1] == ("cancel", 1)
    assert day2.depth() == ([], [(92.00, 10)])
    assert day2.resting_gtc().trader.tolist() == [1]
    # a false numpy flag is a day batch
    day1.submit_many(np.array([3]), np.array([BUY]), np.array([5]), np.array([85.0]),
                     gtc=np.False_)
    assert day1.resting_gtc().trader.tolist() == [1, 2]


def test_the_close_is_numpys_volume_weighted_mean_to_the_fen() -> None:
    """``closing_price`` is bit for bit numpy's ``np.round(sum(price x tonnes) /
    sum(tonnes), 2)``, ties at half a fen included, on random days of trades."""
    rng = np.random.default_rng(11)
    for n in [*range(1, 40), *rng.integers(40, 3000, 200).tolist()]:
        price = np.round(rng.uniform(20.0, 150.0, n), 2)
        quantity = rng.integers(1, 5000, n)
        want = float(np.round((price * quantity).sum() / quantity.sum(), 2))
        assert closing_price({"price": price, "quantity": quantity}) == want
    # means at (or a bit off) half a fen: two trades a fen apart, equal tonnes
    ties = 0
    for fen in range(1, 20_000, 7):
        price, quantity = np.array([fen, fen + 1]) / 100, np.array([3, 3])
        mean = (price * quantity).sum() / quantity.sum()
        ties += (mean * 100) % 1 == 0.5
        assert closing_price({"price": price, "quantity": quantity}) == float(
            np.round(mean, 2))
    assert ties > 100  # exact ties were among them
