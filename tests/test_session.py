"""The trading day on hand-built state (model/session.py): price bands, the close, the
daily record's mean-price windows, the block session before the listed one, settlement
of both, the recorded book events and GTC orders carried to the next day.

Firms hold quota of vintage 2025; the day's orders are hand-made ``Orders`` in arrival
order. The classroom market: previous close 95 CNY/t, listed band +/-10% (85.50 to
104.50), block band +/-30% (66.50 to 123.50).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from institutions import HandBuiltMarket, hand_built_market, ledger_balances, make_firms

from etsim.agents.strategies import Orders
from etsim.model.calendar import TradingCalendar
from etsim.model.session import (
    DailyRecord,
    closing_price,
    default_recorded_days,
    price_band,
    recorded_days,
)

BUY, SELL = 1, -1


def exchange(holdings: list[int], overrides: dict[str, Any] | None = None,
             book_days: set[int] | None = None) -> HandBuiltMarket:
    """Firms holding ``holdings`` t of vintage 2025 before a trading day."""
    market = hand_built_market(make_firms(len(holdings)), overrides, book_days=book_days)
    market.registry.issue(np.arange(len(holdings)), np.array(holdings), 2025, "issued_free")
    return market


def orders(*placed: tuple[int, int, int, float]) -> Orders:
    """Orders from (trader, side, tonnes, limit price) tuples, in arrival order."""
    trader, side, quantity, price = zip(*placed, strict=True)
    return Orders(np.array(trader, dtype=np.int64), np.array(side, dtype=np.int64),
                  np.array(quantity, dtype=np.int64), np.array(price, dtype=float))


def test_price_band_is_the_previous_close_plus_minus_the_limit_to_the_fen() -> None:
    """A session's band is the previous close -/+ its limit, rounded to the fen."""
    assert price_band(95.0, 0.10) == (85.5, 104.5)
    assert price_band(95.0, 0.30) == (66.5, 123.5)
    assert price_band(33.33, 0.10) == (30.0, 36.66)  # 29.997 and 36.663
    # 94.905 to the fen as Python rounds it, also for a numpy close (numpy gives 94.90)
    assert price_band(np.float64(95.0), 0.001) == price_band(95.0, 0.001) == (94.91, 95.09)


def test_a_band_narrower_than_a_tick_widens_to_the_ticks_around_the_close() -> None:
    """A band that holds no tick below or above the previous close reaches the nearest
    tick on that side, on the tick grid: it is never empty and never locks the price."""
    # tick 1.0, +/-1% of 30.5: [30.195, 30.805] holds no whole yuan; the ticks around
    # the close are 30 and 31
    assert price_band(30.5, 0.01, tick=1.0) == (30.0, 31.0)
    # a close on the grid: [29.7, 30.3] holds only 30 itself, so one tick either side
    assert price_band(30.0, 0.01, tick=1.0) == (29.0, 31.0)
    # a close near zero: 0.01 x 0.9 = 0.001 rounds to 0.00, below the lowest price (one
    # tick); 0.01 x 1.1 = 0.011 rounds to 0.01, the close itself, so one tick above
    assert price_band(0.01, 0.9) == (0.01, 0.02)
    assert price_band(0.01, 0.1) == (0.01, 0.02)
    assert price_band(1.0, 1.0) == (0.01, 2.0)  # a limit of 100%: down to one tick
    # tick 0.05: 9.018 -> 9.02 -> up to 9.05; 11.022 -> 11.02 -> down to 11.00
    assert price_band(10.02, 0.10, tick=0.05) == (9.05, 11.0)


def test_the_band_of_a_zero_close_starts_at_one_tick() -> None:
    """A close of 0 (it cannot arise in a run) gives a band of the lowest price, one tick."""
    assert price_band(0.0, 0.10) == (0.01, 0.01)
    assert price_band(0.0, 0.90, tick=1.0) == (1.0, 1.0)
    assert price_band(0.0, 0.10, tick=0.05) == (0.05, 0.05)


def test_a_session_trades_when_the_tick_is_wider_than_the_band() -> None:
    """Tick 1 CNY and +/-1% of a close of 30.50: the day trades at 30 or 31 CNY/t."""
    market = exchange([10, 0], {"market.tick": 1.0, "market.price_limit": 0.01,
                                "market.initial_price": 30.5})
    market.session().trade(0, 2025, orders((0, SELL, 10, 30.2), (1, BUY, 10, 31.0)), None)
    record = market.daily
    # the ask at 30.20 goes up to 31 (the less aggressive tick) and the bid lifts it
    assert (record["limit_down"][0], record["limit_up"][0]) == (30.0, 31.0)
    assert record["close"][0] == 31.0 and record["volume"][0] == 10
    assert market.session().listed_band() == (30.0, 32.0)  # 31 is on the grid


def test_no_trade_prints_below_one_tick() -> None:
    """Near zero the lowest price is one tick: an ask at 0 is rejected, one at 0.004 goes
    up to 0.01, and the close stays above zero."""
    market = exchange([20, 0], {"market.price_limit": 0.9, "market.initial_price": 0.01,
                                "market.block_min_t": 1000})
    day_orders = orders((0, SELL, 10, 0.0), (0, SELL, 10, 0.004), (1, BUY, 20, 0.01))
    books = market.session().trade(0, 2025, day_orders, None)
    assert books.listed.n_rejected == 1
    assert books.listed.trades()["price"].tolist() == [0.01]
    assert market.daily["close"][0] == 0.01
    assert (market.daily["limit_down"][0], market.daily["limit_up"][0]) == (0.01, 0.02)


def test_close_is_the_volume_weighted_price_to_the_fen() -> None:
    """The close is the VWAP of the listed trades, to the fen; None when nothing traded."""
    traded = {"price": np.array([100.0, 102.0]), "quantity": np.array([10, 30])}
    assert closing_price(traded) == 101.5  # (1,000 + 3,060) / 40
    odd = {"price": np.array([100.01, 100.02]), "quantity": np.array([1, 2])}
    assert closing_price(odd) == 100.02  # 300.05 / 3 = 100.0167
    assert closing_price({"price": np.array([]), "quantity": np.array([])}) is None


def test_daily_record_mean_prices_over_months_years_and_windows() -> None:
    """Month, year and window means use the closes so far, an auction's price on its day."""
    record = DailyRecord(TradingCalendar(2025, 2027), initial_price=95.0)
    record["close"][:20] = 90.0  # January 2025
    record["close"][20:40] = 100.0  # February 2025
    record["primary_price"][37] = 50.0
    record.last_close = 100.0
    assert record.month_mean_close(2025, 1, today=40) == 90.0
    assert record.month_mean_close(2025, 2, today=30) == 100.0  # days 20-29 so far
    assert record.month_mean_close(2025, 3, today=40) == 100.0  # none yet: the last close
    assert record.month_mean_close(2024, 12, today=40) == 95.0  # before the run
    assert record.year_mean_close(2025, today=40) == 95.0  # (20 x 90 + 20 x 100) / 40
    # days 35-39: 100, 100, 50 (auction), 100, 100 -> 90
    assert record.recent_mean_price(5, today=40) == pytest.approx(90.0)
    assert record.recent_mean_price(5, today=0) is None
    assert record.month_ago_close(30) == 90.0  # day 10's close
    record.last_close = 80.0
    assert record.month_ago_close(65) == 80.0  # day 45 has no close yet: the last close


def test_mean_prices_leave_out_days_without_a_close() -> None:
    """Days without listed trades (NaN close) count in no mean price: the month's,
    year's and window's means are over the days with a close; a month with none gives
    the reference price, and a month ago without a close gives that day's reference."""
    record = DailyRecord(TradingCalendar(2025, 2027), initial_price=95.0)
    record["close"][:20] = np.nan  # January 2025: no listed trade...
    record["close"][5] = 90.0  # ...but on day 5
    record["reference_price"][:20] = 95.0
    record["reference_price"][5:20] = 90.0
    record["close"][20:40] = np.nan  # February: none at all
    record["reference_price"][20:40] = 90.0
    record.last_close = 90.0
    assert record.month_mean_close(2025, 1, today=40) == 90.0  # not (19 x 95 + 90) / 20
    assert record.month_mean_close(2025, 2, today=40) == 90.0  # the reference price
    assert record.year_mean_close(2025, today=40) == 90.0
    assert record.recent_mean_price(10, today=40) == 90.0
    assert record.month_ago_close(30) == 90.0  # day 10: no close, its reference price
    assert record.reference_before(3) == 95.0 and record.reference_before(0) == 95.0


def test_month_ago_close_in_the_first_month_is_the_initial_price() -> None:
    """A month before a day of the first month, the close was the initial price."""
    record = DailyRecord(TradingCalendar(2025, 2027), initial_price=95.0)
    record["close"][:6] = [97.0, 98.0, 99.0, 100.0, 101.0, 102.0]
    record.last_close = 102.0
    assert record.month_ago_close(5) == 95.0


def test_listed_session_matches_sets_the_close_and_settles() -> None:
    """Listed orders trade at the resting price; the close is their VWAP; trades settle."""
    market = exchange([50, 0, 0, 50])
    day_orders = orders((0, SELL, 50, 94.0), (3, SELL, 50, 95.0), (1, BUY, 100, 96.0),
                        (2, BUY, 30, 93.0))
    market.session().trade(0, 2025, day_orders, None)
    record = market.daily
    # firm 1 lifts 50 at 94 and 50 at 95: VWAP 94.5; firm 2's bid at 93 rests
    assert record["close"][0] == 94.5 and record.last_close == 94.5
    assert (record["open"][0], record["high"][0], record["low"][0]) == (94.0, 95.0, 94.0)
    assert (record["volume"][0], record["trades"][0], record["orders"][0]) == (100, 2, 4)
    assert (record["limit_down"][0], record["limit_up"][0]) == (85.5, 104.5)
    assert record["best_bid"][0] == 93.0 and np.isnan(record["best_ask"][0])
    assert market.registry.total().tolist() == [0, 100, 0, 0]
    np.testing.assert_allclose(market.firms.cash, [4700.0, -9450.0, 0.0, 4750.0])
    assert ledger_balances(market.registry)
    # the next day's band is around the new close: 94.5 -/+ 10%
    assert market.session().listed_band() == (85.05, 103.95)


def test_a_day_without_listed_trades_has_no_close_and_keeps_the_reference_price() -> None:
    """A day without listed trades has no close (NaN), no open, high or low; its
    reference price, on which the next bands are based, stays the previous close.
    Out-of-band orders are rejected."""
    market = exchange([10, 0])
    # the bid at 110 is above the 104.50 limit: rejected, so the ask at 100 rests alone
    market.session().trade(0, 2025, orders((0, SELL, 10, 100.0), (1, BUY, 10, 110.0)), None)
    record = market.daily
    assert np.isnan(record["close"][0]) and record.last_close == 95.0
    assert record["reference_price"][0] == 95.0
    assert all(np.isnan(record[name][0]) for name in ("open", "high", "low"))
    assert market.session().listed_band() == (85.5, 104.5)  # still around 95
    assert record["volume"][0] == 0 and np.isnan(record["vwap"][0])
    assert record["best_ask"][0] == 100.0 and np.isnan(record["best_bid"][0])
    assert market.registry.total().tolist() == [10, 0]


def test_block_orders_trade_in_the_block_session_first_and_the_rest_goes_listed() -> None:
    """Block-size orders trade in the block session first and what is left goes listed."""
    market = exchange([1500, 0, 0], {"market.block_min_t": 1000})
    day_orders = orders((0, SELL, 1500, 90.0), (1, BUY, 1200, 90.0), (2, BUY, 500, 91.0))
    books = market.session().trade(0, 2025, day_orders, None)
    record = market.daily
    # block: 1,200 at 90; listed: the seller's other 300 at 90 meet firm 2's bid at 91
    assert books.block.trades()["quantity"].tolist() == [1200]
    assert books.listed.trades()["quantity"].tolist() == [300]
    assert record["close"][0] == 90.0
    assert (record["block_volume"][0], record["volume"][0]) == (1200, 1500)
    assert record["best_bid"][0] == 91.0  # firm 2's 200 t left
    assert market.registry.total().tolist() == [0, 1200, 300]
    np.testing.assert_allclose(market.firms.cash, [135000.0, -108000.0, -27000.0])
    assert ledger_balances(market.registry)


def test_block_trades_outside_the_listed_band_do_not_move_the_close() -> None:
    """A block trade outside the listed band settles but does not move the close."""
    market = exchange([1500, 0], {"market.block_min_t": 1000})
    market.session().trade(0, 2025, orders((0, SELL, 1500, 80.0), (1, BUY, 1200, 80.0)),
                           None)
    # 1,200 t at 80 in the block session; the other 300 t at 80 are below 85.50 listed:
    # no listed trade, so no close, and the reference price stays 95
    assert np.isnan(market.daily["close"][0]) and market.daily.last_close == 95.0
    assert market.daily["block_volume"][0] == 1200
    assert market.registry.total().tolist() == [300, 1200]


def test_unfilled_block_order_goes_listed_below_block_size() -> None:
    """An unfilled block order goes on to the listed session just below block size."""
    market = exchange([5000, 0], {"market.block_min_t": 1000})
    books = market.session().trade(0, 2025, orders((0, SELL, 5000, 90.0),
                                                   (1, BUY, 900, 91.0)), None)
    # listed ask min(5,000, 1,000 - 1) = 999 t; 900 of it trade, 99 t rest at 90
    assert books.listed.trades()["quantity"].tolist() == [900]
    assert books.listed.depth()[1] == [(90.0, 99)]
    assert market.daily["block_volume"][0] == 0


def test_a_recorded_day_keeps_block_then_listed_events_with_account_ids() -> None:
    """A book day keeps block then listed orders and trades, with account ids."""
    market = exchange([1500, 0, 0], {"market.block_min_t": 1000}, book_days={0})
    day_orders = orders((0, SELL, 1500, 90.0), (1, BUY, 1200, 90.0), (2, BUY, 500, 91.0))
    session = market.session()
    session.trade(0, 2025, day_orders, None)
    rows = [row for recorded in session.book_log for row in recorded.rows()]
    kinds = [(row.session, row.event) for row in rows]
    assert kinds == [("block", "order"), ("block", "order"), ("block", "trade"),
                     ("continuous", "order"), ("continuous", "order"),
                     ("continuous", "trade")]
    block_trade, listed_trade = rows[2], rows[5]
    # account ids are 101 + row in the hand-built market
    assert (block_trade.buyer_id, block_trade.seller_id) == (102, 101)
    assert (block_trade.price, block_trade.quantity) == (90.0, 1200)
    assert (listed_trade.buyer_id, listed_trade.quantity) == (103, 300)
    # a field an event does not have is None: a trade has no order id nor trader
    assert (block_trade.order_id, block_trade.trader_id, block_trade.side) == (None,) * 3
    assert (rows[0].trader_id, rows[0].side, rows[0].buyer_id) == (101, SELL, None)
    session.trade(1, 2025, orders((1, BUY, 10, 90.0)), None)  # not a book day
    assert len(session.book_log) == 2  # the day's block and listed sessions


def test_gtc_orders_rest_overnight_and_trade_the_next_day() -> None:
    """With GTC orders an unfilled listed order rests overnight and trades the next day."""
    market = exchange([100, 0], {"market.order_expiry": "gtc"})
    session = market.session()
    session.trade(0, 2025, orders((0, SELL, 100, 100.0)), session.open(0))
    _, offered, _ = session.committed()
    assert offered.tolist() == [100, 0]
    session.trade(1, 2025, orders((1, BUY, 40, 100.0)), session.open(1))
    assert market.daily["close"][1] == 100.0
    assert market.registry.total().tolist() == [60, 40]
    _, offered, _ = session.committed()
    assert offered.tolist() == [60, 0]  # the rest still rests


def test_day_orders_do_not_rest_overnight() -> None:
    """With day orders (the default) nothing is carried to the next day."""
    market = exchange([100, 0])
    session = market.session()
    assert session.open(0) is None
    session.trade(0, 2025, orders((0, SELL, 100, 100.0)), None)
    assert session.committed() is None


def test_carried_asks_beyond_holdings_are_cancelled_at_the_open() -> None:
    """At the open a firm's carried asks are kept in time order only while they fit its holdings."""
    market = exchange([100, 0], {"market.order_expiry": "gtc"})
    session = market.session()
    session.trade(0, 2025, orders((0, SELL, 50, 100.0), (0, SELL, 50, 101.0)),
                  session.open(0))
    # the firm surrenders 30 t overnight: 70 held, so the first ask (50) fits, the second
    # (50 > 20 left) is cancelled
    market.registry.take(np.array([0]), np.array([30]), 2025, "surrendered")
    book = session.open(1)
    assert session.committed()[1].tolist() == [50, 0]
    session.trade(1, 2025, orders((1, BUY, 100, 101.0)), book)
    assert market.daily["volume"][1] == 50  # only the ask at 100 was left
    assert market.registry.total().tolist() == [20, 50]


def test_recorded_days_default_to_the_month_before_each_deadline() -> None:
    """One recorded book per compliance year: the 10th trading day of the month before
    its deadline (classroom: deadlines at the end of December of the next year)."""
    market = hand_built_market(make_firms(1))
    calendar = market.calendar
    days = default_recorded_days(calendar, market.compliance(), [2025, 2026])
    # 2025's deadline is December 2026, so November 2026; 2026's is November 2027
    assert days == {calendar.first_day(2026, 11) + 9, calendar.first_day(2027, 11) + 9}


def test_recorded_days_from_dates_take_the_next_trading_day_and_refuse_bad_ones() -> None:
    """A date that is no trading day means the next one; a bad or late date is refused."""
    calendar = TradingCalendar(2025, 2026, 20)
    first = recorded_days(calendar, [str(calendar.date[0])])
    assert first == {0}
    day_after_first = str(calendar.date[0] + np.timedelta64(1, "D"))
    assert recorded_days(calendar, [day_after_first]) == {1}
    with pytest.raises(ValueError, match="book_days: 'soon' is not a date"):
        recorded_days(calendar, ["soon"])
    with pytest.raises(ValueError, match="after the last trading day"):
        recorded_days(calendar, ["2030-01-01"])
