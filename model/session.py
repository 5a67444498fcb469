"""The trading session: one day on the exchange, and the market's daily record.

A day runs as on the Shanghai Environment and Energy Exchange (from
``market.opening_date``, if set: before it no order is taken):

1. The listed session's band is the previous close -/+ ``market.price_limit``
   (``price_band``); the block session's is -/+ ``market.block_price_limit``. A band
   always reaches at least one tick below and one above the previous close, and never
   below the lowest price (one tick), so no band is empty and the price never locks.
2. With ``market.order_expiry = "gtc"`` the listed book opens with the orders resting
   since the last close; those outside the new band or too old expire, and a firm's
   carried asks beyond what it now holds are cancelled.
3. Orders of ``market.block_min_t`` or more go to the block session first; what they
   leave unfilled goes on to the listed session, below block size.
4. The close is the volume-weighted mean price of the listed session's trades
   (``closing_price``). A day without listed trades has no close of its own (its
   ``close``, ``open``, ``high`` and ``low`` are NaN); its ``reference_price``, the
   price the next day's bands are based on, stays the last close, as on the exchange.
   Block trades never make the close.
5. Trades settle (``model.settlement``); a recorded day keeps every order, cancel and
   trade for the ``book_events`` table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from etsim.model.exchange import OrderBook, RestingOrders, band_ticks, lowest_tick
from etsim.model.matching import engine, order_book, trade_and_settle_day

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable

    from etsim.agents.strategies import Orders
    from etsim.model.calendar import TradingCalendar
    from etsim.model.compliance import Compliance
    from etsim.model.registry import Registry
    from etsim.model.scenario import MarketConfig
    from etsim.model.settlement import Settlement

DAILY_FLOAT = ("open", "high", "low", "close", "reference_price", "vwap", "best_bid",
               "best_ask", "limit_down", "limit_up", "fundamental_price", "primary_price")
DAILY_INT = ("volume", "trades", "block_volume", "orders")


def price_band(previous_close: float, limit: float, tick: float = 0.01
               ) -> tuple[float, float]:
    """A session's price limits: the previous close -/+ ``limit`` (a share), to the fen,
    on the tick grid.

    Where that band holds no price one tick below or above the previous close (a tick
    wider than the band, or a close near zero), it is widened to the nearest tick on that
    side: otherwise the band could be empty, or hold only the previous close and lock the
    price there. Its lower limit is never below the lowest price (one tick,
    ``exchange.lowest_tick``), so a close of 0 gives a band starting at one tick. For
    any band wider than a tick on each side this is the previous close -/+ the limit, to
    the fen.

    Args:
        previous_close: The previous close (CNY/t).
        limit: The session's price limit, a share of the previous close.
        tick: The price tick (CNY/t).

    Returns:
        ``(limit_down, limit_up)``: prices on the tick grid, to the fen. Where a tick
        is not a whole number of fen they are rounded outwards to the fen, so the
        book, which rounds inwards onto its grid, gets the same ticks back (for a tick
        of a fen or more) or a band as wide or wider (for a smaller one).
    """
    previous_close = float(previous_close)  # numpy's round differs from Python's at halves
    lo, hi = band_ticks(round(previous_close * (1 - limit), 2),
                        round(previous_close * (1 + limit), 2), tick)
    # the grid prices at or next to the close: ceil and floor of close / tick
    at_or_above, at_or_below = band_ticks(previous_close, previous_close, tick)
    lo = max(min(lo, at_or_above - 1), lowest_tick(tick))
    hi = max(hi, at_or_below + 1, lo)
    return (math.floor(lo * tick * 100 + 1e-7) / 100,
            math.ceil(hi * tick * 100 - 1e-7) / 100)


# A day asks for the same bands several times (the firms' state, the sessions), and
# the close moves over few prices: the bands of recent closes are kept.
_cached_band = lru_cache(maxsize=256)(price_band)


def closing_price(trades: dict[str, np.ndarray]) -> float | None:
    """The close: the volume-weighted mean price of the listed session's trades, to the
    fen; None when nothing traded (the previous close then stands)."""
    quantity = trades["quantity"]
    if not len(quantity):
        return None
    return close_of(float((trades["price"] * quantity).sum()), int(quantity.sum()))


def close_of(value: float, volume: int) -> float:
    """The close of listed trades worth ``value`` (CNY, numpy's sum of price x tonnes)
    for ``volume`` tonnes: their volume-weighted mean price, to the fen."""
    vwap = value / float(volume)
    # to the fen as numpy rounds (times 100, half to even, over 100), without its
    # per-call cost: Python's round() of a float to an integer is half to even too
    return round(vwap * 100.0) / 100.0


def default_recorded_days(calendar: TradingCalendar, compliance: Compliance,
                          compliance_years: Iterable[int]) -> set[int]:
    """The trading days whose books are recorded by default: one per compliance year,
    the 10th trading day of the month before its deadline (when most firms trade)."""
    return {min(calendar.first_day(*compliance.month_before_deadline(year)) + 9,
                calendar.n_days - 1)
            for year in compliance_years}


def recorded_days(calendar: TradingCalendar, dates: Iterable[str]) -> set[int]:
    """Trading days of dates ``"YYYY-MM-DD"`` (a date that is no trading day means the
    next trading day).

    Raises:
        ValueError: A date that cannot be read, or after the last trading day.
    """
    chosen = set()
    for text in dates:
        try:
            wanted = np.datetime64(text, "D")
        except ValueError:
            raise ValueError(f"book_days: '{text}' is not a date YYYY-MM-DD") from None
        index = int(np.searchsorted(calendar.date, wanted))
        if index >= calendar.n_days:
            raise ValueError(f"book_days: {text} is after the last trading day")
        chosen.add(index)
    return chosen


class DailyRecord(dict):
    """The market's daily series by name (``record["close"][day]``), the last close, and
    mean prices over windows of it.

    Args:
        calendar: The run's trading calendar.
        initial_price: The close before the first trading day (CNY/t).
    """

    def __init__(self, calendar: TradingCalendar, initial_price: float) -> None:
        super().__init__()
        n_days = calendar.n_days
        self.update({name: np.full(n_days, np.nan) for name in DAILY_FLOAT})
        self.update({name: np.zeros(n_days, dtype=np.int64) for name in DAILY_INT})
        self.calendar = calendar
        self.initial_price = initial_price
        self.last_close = initial_price

    def recent_mean_price(self, window_days: int, today: int) -> float | None:
        """Mean market price over the last ``window_days`` trading days before ``today``
        (None before any): the close, or the primary auction's price on a day when one
        cleared, so that a pool selling by auction sees the price its sales make. Days
        with neither have no price and are left out; a window without any price gives
        the reference price (the last close before it)."""
        if today == 0:
            return None
        window = slice(max(0, today - window_days), today)
        primary = self["primary_price"][window]
        prices = np.where(np.isnan(primary), self["close"][window], primary)
        return self._mean_or_reference(prices, today)

    def _mean_or_reference(self, closes: np.ndarray, today: int) -> float:
        """Mean of the days with a price in ``closes``; without any, the reference price
        at ``today`` (the last close before it, or the initial price)."""
        priced = closes[~np.isnan(closes)]
        if len(priced):
            return float(np.mean(priced))
        return self.reference_before(today)

    def reference_before(self, today: int) -> float:
        """The reference price at the open of ``today``: the last close before it (the
        initial price before any)."""
        if today <= 0:
            return self.initial_price
        price = float(self["reference_price"][min(today, len(self["close"])) - 1])
        return self.last_close if np.isnan(price) else price

    def month_mean_close(self, year: int, month: int, today: int) -> float:
        """Mean close of a month up to ``today``, over its days with listed trades (the
        initial price before the run; the reference price if no day of it traded)."""
        if year < self.calendar.year[0]:
            return self.initial_price
        first = self.calendar.first_day(year, month)
        end = min(first + self.calendar.days_per_month, today)
        return self._mean_or_reference(self["close"][first:end], max(end, first))

    def year_mean_close(self, year: int, today: int) -> float:
        """Mean close of a calendar year up to ``today``, over its days with listed
        trades (the reference price if none traded)."""
        first = self.calendar.first_day(year, 1)
        end = min(first + self.calendar.days_per_year, today)
        return self._mean_or_reference(self["close"][first:end], max(end, first))

    def month_ago_close(self, today: int) -> float:
        """The reference price a month of trading days before ``today``: that day's
        close, or the last close before it when it had none; the initial price (the
        close before the run) when that day is before the run."""
        day = today - self.calendar.days_per_month
        if day < 0:  # a month before the run: the close before it
            return self.initial_price
        for series in ("close", "reference_price"):
            price = float(self[series][day])
            if not np.isnan(price):
                return price
        return self.last_close  # that day has not traded yet


class BookEvent(NamedTuple):
    """One event of a recorded session (a row of ``book_events``, by trading day):
    an order or carried order (``order_id``, ``trader_id``, ``side``, ``quantity``,
    ``price``: NaN for a market order), a cancel or expiry (``order_id``), or a trade
    (``buyer_id``, ``seller_id``, ``price``, ``quantity``); None where a field does not
    apply."""

    day: int
    session: str
    event: str
    order_id: int | None
    trader_id: int | None
    side: int | None
    quantity: int | None
    price: float
    buyer_id: int | None
    seller_id: int | None
    limit_down: float
    limit_up: float


# The events of a recorded session, by code (``RecordedSession.event``), and which of
# them have each integer field of ``BookEvent`` (for the others it is missing).
EVENT_NAMES = ("order", "carry", "cancel", "expire", "trade")
EVENT_FIELDS = {
    "order_id": ("order", "carry", "cancel", "expire"),
    "trader_id": ("order", "carry"),
    "side": ("order", "carry"),
    "quantity": ("order", "carry", "trade"),
    "buyer_id": ("trade",),
    "seller_id": ("trade",),
}
_EVENT_CODE = {name: code for code, name in enumerate(EVENT_NAMES)}


class RecordedSession(NamedTuple):
    """The events of one recorded session (a trading day's block or listed book) in the
    order they happened, as columns: the rows of ``book_events`` for that day and
    session. ``event`` holds codes into ``EVENT_NAMES``; an integer field an event does
    not have (``EVENT_FIELDS``) holds 0, and a price it does not have NaN. Columns, not
    a ``BookEvent`` per event: a 50,000-firm run records about 300,000 events."""

    day: int
    session: str
    limit_down: float
    limit_up: float
    event: np.ndarray  # int8 codes into EVENT_NAMES
    order_id: np.ndarray
    trader_id: np.ndarray  # account ids
    side: np.ndarray
    quantity: np.ndarray
    price: np.ndarray  # CNY/t
    buyer_id: np.ndarray  # account ids
    seller_id: np.ndarray

    def rows(self) -> list[BookEvent]:
        """The session's events as ``BookEvent`` rows (None where a field does not
        apply), for inspection; ``book_events`` is built from the columns."""
        names = [EVENT_NAMES[code] for code in self.event.tolist()]
        fields = [[value if name in EVENT_FIELDS[field] else None
                   for name, value in zip(names, getattr(self, field).tolist(), strict=True)]
                  for field in ("order_id", "trader_id", "side", "quantity", "buyer_id",
                                "seller_id")]
        return [BookEvent(self.day, self.session, name, order_id, trader_id, side,
                          quantity, price, buyer_id, seller_id, self.limit_down,
                          self.limit_up)
                for name, price, order_id, trader_id, side, quantity, buyer_id, seller_id
                in zip(names, self.price.tolist(), *fields, strict=True)]


@dataclass
class DayBooks:
    """The books of a trading day: the listed session and, if any order was of block
    size, the block session. They hold until the session's next day, which may reuse
    them (``TradingSession._day_book``)."""

    listed: OrderBook
    block: OrderBook | None

    def traders(self) -> set[int]:
        """Accounts that traded in either session."""
        parts = [np.asarray(side, dtype=np.int64) for book in (self.listed, self.block)
                 if book is not None for side in (book.trade_buyer, book.trade_seller)]
        return set(np.unique(np.concatenate(parts)).tolist())


class TradingSession:
    """The exchange's trading day.

    Args:
        config: The scenario's ``[market]`` section.
        registry: The quota registry (carried asks are checked against holdings).
        record: The market's daily record (the close and the day's figures).
        settlement: Settles each session's trades.
        account_id: Per registry row, the account id used in results tables.
        n_firms: Registry rows of firms (financial accounts follow; their orders never
            rest overnight).
        book_days: Trading days whose books are recorded event by event.
    """

    def __init__(self, config: MarketConfig, registry: Registry, record: DailyRecord,
                 settlement: Settlement, account_id: np.ndarray, n_firms: int,
                 book_days: set[int]) -> None:
        self.config = config
        self.registry = registry
        self.record = record
        self.settlement = settlement
        self.account_id = account_id
        self.n_firms = n_firms
        self.book_days = book_days
        self.gtc = config.order_expiry == "gtc"
        # no trading before the exchange opened (market.opening_date)
        self.opening_day = (0 if config.opening_date is None
                            else record.calendar.day_of(config.opening_date))
        # GTC orders resting in the listed book since the last close
        self.resting = RestingOrders.empty()
        self.book_log: list[RecordedSession] = []
        # the compiled books of days not recorded, by kind, reused day after day
        self._day_books: dict[str, OrderBook] = {}

    def listed_band(self) -> tuple[float, float]:
        """Today's price limits of the listed session."""
        return _cached_band(self.record.last_close, self.config.price_limit, self.config.tick)

    def open(self, day: int) -> OrderBook | None:
        """With GTC orders: today's listed book, opened with the orders resting since
        the last close (None with day orders: the book opens when orders arrive)."""
        return self._open_listed_book(day in self.book_days) if self.gtc else None

    def committed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Per firm, what its GTC orders resting in the listed book tie up: tonnes bid,
        tonnes offered and the cash the bids may cost; None when nothing rests."""
        if not len(self.resting):
            return None
        buy_t, sell_t, value = self.resting.committed(len(self.account_id))
        n = self.n_firms
        return buy_t[:n], sell_t[:n], value[:n]

    def trade(self, day: int, year: int, orders: Orders, book: OrderBook | None) -> DayBooks:
        """Run the day's block and listed sessions on ``orders``, record the day and its
        close, and settle the trades.

        Args:
            day: The trading day.
            year: Its calendar year.
            orders: The day's orders in arrival order.
            book: The listed book opened with carried GTC orders (``open``), or None.
        """
        market = self.config
        record = self.record
        recorded = day in self.book_days
        if day < self.opening_day:  # the exchange has not opened: no order is taken
            orders = type(orders)(*(getattr(orders, f)[:0] for f in
                                    ("trader", "side", "quantity", "limit_price")))
        limit_down, limit_up = self.listed_band()
        block_band = _cached_band(record.last_close, market.block_price_limit, market.tick)
        gtc = book is not None  # the listed book opened with the carried GTC orders
        block = settled = None
        if not gtc and not recorded and engine() == "compiled":
            # both sessions and their settlement in one compiled call (the steps of
            # _submit, then of the settlement below) on the session's own books
            book = self._day_book("continuous", limit_down, limit_up, recorded)
            block = self._day_book("block", *block_band, recorded)
            settled = trade_and_settle_day(
                book, block, orders.trader, orders.side, orders.quantity, orders.limit_price,
                market.block_min_t, self.settlement.accounts(year))
            if settled is None or settled.block is None:  # no order was of block size
                block = None
        if settled is None:
            # Orders of block size go to the block session first (+/-30%); what they
            # leave unfilled goes on to the listed session in an order below block size.
            large = orders.quantity >= market.block_min_t
            if large.any():
                block = self._day_book("block", *block_band, recorded)
            if book is None:
                book = self._day_book("continuous", limit_down, limit_up, recorded)
            self._submit(orders, large, block, book, gtc=gtc)
            trades = book.trades()
            prices, qty = trades["price"], trades["quantity"]
            volume = int(qty.sum())
            value = float((prices * qty).sum()) if volume else 0.0
            high, low = (prices.max(), prices.min()) if volume else (np.nan, np.nan)
            bid, ask = book.best_bid(), book.best_ask()
            listed_failed = block_failed = None
        else:  # the same figures, from the compiled day
            trades = settled.listed
            prices = trades["price"]
            volume, value = settled.listed_volume, settled.listed_value
            high, low = settled.listed_high, settled.listed_low
            bid, ask = settled.best_bid, settled.best_ask
            listed_failed, block_failed = settled.listed_failed, settled.block_failed
        record["limit_down"][day], record["limit_up"][day] = limit_down, limit_up
        record["orders"][day] = len(orders.trader)
        if len(prices):
            close = close_of(value, volume)  # as closing_price(trades)
            record["open"][day], record["high"][day] = prices[0], high
            record["low"][day], record["vwap"][day] = low, close
            record["close"][day] = record.last_close = close
        # a day without listed trades has no close (NaN): the reference price, on which
        # the next day's bands are based, stays the last close
        record["reference_price"][day] = record.last_close
        record["volume"][day] = volume
        record["trades"][day] = len(prices)
        record["best_bid"][day] = np.nan if bid is None else bid
        record["best_ask"][day] = np.nan if ask is None else ask
        self._settle(trades, "continuous", day, year, listed_failed)
        if block is not None:
            if settled is None:
                block_trades = block.trades()
                block_volume = int(block_trades["quantity"].sum())
            else:
                block_trades, block_volume = settled.block, settled.block_volume
            record["block_volume"][day] = block_volume
            record["volume"][day] += block_volume
            self._settle(block_trades, "block", day, year, block_failed)
        if recorded:
            for session in (block, book):  # the block session runs first
                if session is not None:
                    self._keep_book_events(day, session)
        return DayBooks(book, block)

    def _day_book(self, kind: str, limit_down: float, limit_up: float,
                  recorded: bool) -> OrderBook:
        """An empty book for today's session ``kind`` (``block`` or ``continuous``, with
        day orders). A compiled book not recorded is the session's own, reopened each
        day with its arrays kept (so the ``DayBooks`` of a day hold until the next)."""
        market = self.config
        if recorded or engine() != "compiled":
            return order_book(limit_down, limit_up, market.tick, kind=kind, record=recorded)
        book = self._day_books.get(kind)
        if book is None:
            book = self._day_books[kind] = order_book(limit_down, limit_up, market.tick,
                                                      kind=kind)
        else:
            book.reopen(limit_down, limit_up)
        return book

    def _settle(self, trades: dict[str, np.ndarray], kind: str, day: int, year: int,
                failed: int | None) -> None:
        """Settle a session's trades (``Settlement.settle``), or, when the compiled day
        already delivered and paid them (``failed``: its code), what is left of it."""
        if failed is None:
            self.settlement.settle(trades, kind, day, year)
        elif len(trades["quantity"]):
            self.settlement.settled(trades, kind, day, year, failed)

    def _submit(self, orders: Orders, large: np.ndarray, block: OrderBook | None,
                book: OrderBook, gtc: bool) -> None:
        """Send the day's orders to its sessions: the ``large`` ones (of block size) to
        the block book first; what they leave unfilled goes on to the listed ``book``,
        below block size, with the other orders (GTC for firms when ``gtc``)."""
        market = self.config
        listed_quantity = orders.quantity
        if block is not None:
            ids = block.submit_many(orders.trader[large], orders.side[large],
                                    orders.quantity[large], orders.limit_price[large])
            left = np.where(ids >= 0, block.remaining_many(ids), orders.quantity[large])
            listed_quantity = listed_quantity.copy()
            listed_quantity[large] = np.minimum(left, market.block_min_t - 1)
        send = listed_quantity >= 1
        listed = (orders.trader[send], orders.side[send], listed_quantity[send],
                  orders.limit_price[send])
        if gtc:
            # firms' listed orders are GTC; financial accounts' are day orders
            book.submit_many(*listed, gtc=listed[0] < self.n_firms,
                             max_age=market.gtc_max_age_days or None)
            self.resting = book.resting_gtc()
        else:
            book.submit_many(*listed)

    def _open_listed_book(self, recorded: bool) -> OrderBook:
        """Today's listed book with the GTC orders resting since the last close: those
        outside today's band or too old expire at the open (``OrderBook``), and a firm's
        carried asks beyond what it holds now (after a surrender, a withdrawal or a sale
        to the reserve pool) are cancelled: its asks are kept in time priority while they
        fit in its holdings, and the others cancelled."""
        market = self.config
        down, up = self.listed_band()
        carried = self.resting
        book = order_book(down, up, market.tick, kind="continuous", record=recorded,
                         carried=carried)
        if not len(carried):
            return book
        # the k-th carried order, in order_id order, has id k in the new book
        order = np.argsort(carried.order_id, kind="stable")
        side, trader = carried.side[order], carried.trader[order]
        left = carried.quantity[order].copy()
        left[book.expired.order_id] = 0
        asks = np.flatnonzero((side < 0) & (left > 0))
        held = self.registry.holdings.sum(axis=1)
        offered = np.bincount(trader[asks], weights=left[asks], minlength=len(held))
        short = offered > held
        if short.any():  # rare: walk those firms' asks in time priority
            room = held.copy()
            for k in asks[short[trader[asks]]].tolist():
                if left[k] <= room[trader[k]]:
                    room[trader[k]] -= left[k]
                else:
                    book.cancel(k)
                    left[k] = 0
        # what still rests at the open (the book's own resting_gtc(), built cheaper)
        live = np.flatnonzero(left > 0)
        self.resting = RestingOrders(
            live, carried.first_id[order][live], trader[live], side[live], left[live],
            carried.limit_price[order][live], carried.age[order][live] + 1,
            carried.max_age[order][live])
        return book

    def _keep_book_events(self, day: int, book: OrderBook) -> None:
        """Keep a recorded session's orders, cancels and trades for ``book_events`` (a
        ``RecordedSession``); a carried GTC order (``carry``) is kept like an order, its
        expiry at the open (``expire``) like a cancel."""
        code, order_id, trader, side, quantity, price, buyer, seller = (
            [] for _ in range(8))
        for event in book.events:
            name = event[0]
            code.append(_EVENT_CODE[name])
            if name in ("order", "carry"):
                _, seq, row, order_side, qty, limit = event[:6]
                order_id.append(seq)
                trader.append(row)
                side.append(order_side)
                quantity.append(qty)
                buyer.append(0)
                seller.append(0)
                price.append(np.nan if limit is None else limit)
            elif name in ("cancel", "expire"):
                order_id.append(event[1])
                for column in (trader, side, quantity, buyer, seller):
                    column.append(0)
                price.append(np.nan)
            else:
                _, buyer_row, seller_row, trade_price, qty = event
                for column in (order_id, trader, side):
                    column.append(0)
                quantity.append(qty)
                buyer.append(buyer_row)
                seller.append(seller_row)
                price.append(trade_price)
        codes = np.array(code, dtype=np.int8)
        ids = self.account_id

        def account_ids(rows: list[int], names: tuple[str, ...]) -> np.ndarray:
            # the rows' account ids where the event has the field, else 0
            has = np.isin(codes, [_EVENT_CODE[name] for name in names])
            return np.where(has, ids[np.array(rows, dtype=np.int64)], 0).astype(np.int64)

        self.book_log.append(RecordedSession(
            day, book.kind, book.limit_down, book.limit_up, codes,
            np.array(order_id, dtype=np.int64), account_ids(trader, EVENT_FIELDS["trader_id"]),
            np.array(side, dtype=np.int64), np.array(quantity, dtype=np.int64),
            np.array(price, dtype=np.float64), account_ids(buyer, EVENT_FIELDS["buyer_id"]),
            account_ids(seller, EVENT_FIELDS["seller_id"])))
