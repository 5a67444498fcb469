"""Continuous double auction (CDA) order book for one trading session of carbon allowances.

The book models listed agreement trading ("挂牌协议交易") in China's national ETS on the
Shanghai Environment and Energy Exchange, reduced to the rules that shape prices:

* **Price limits.** Every order price must lie inside the session's band (the trading session,
  ``model.session.price_band``, sets it around the previous close: +/-10 % for listed
  agreement trading, +/-30 % for block agreement trades ("大宗协议交易"), which use the same
  class with ``kind="block"``). Limit orders outside the band are rejected (nothing happens,
  ``submit`` returns -1); no trade can ever print outside the band. The day's close is the
  session's business too (``model.session.closing_price``). A band must hold a price and
  lie above zero: its lowest admissible price is at least one tick (and one fen, as prices
  are printed to the fen; ``lowest_tick``), so no trade prints at 0.00.
* **Tick size.** Prices are held as integer ticks (``round(price / tick)``) so that comparisons
  are exact. A buy price that is not on the grid is rounded down, a sell price up, i.e. always
  to the less aggressive side, before the band is checked.
* **Price-time priority.** An incoming order matches the best opposite price first and, at equal
  price, the earliest resting order first. The trade price is the resting order's price.
  Partial fills are allowed; the remainder of a limit order rests in the book.
* **Market orders** (``limit_price=None``) sweep the best opposite prices, which are inside the
  band by construction; any unfilled remainder is cancelled, it never rests.
* **Self-trade prevention** (cancel resting): an incoming order never trades against a resting
  order of the same trader; that resting order is cancelled and matching continues.
* **Expiry.** A limit order is a *day* order (the default, as on the exchange: it expires at the
  close) or *good-till-cancelled* (``gtc=True``, optionally with a ``max_age`` in trading days).
  A book lives for one session; :meth:`OrderBook.resting_gtc` reads the unfilled GTC orders at
  the close and the next day's book takes them as ``carried=...``: they rest at the open, in
  their old time priority and ahead of every new order, unless their limit lies outside the new
  band or they are too old, in which case they expire (an ``"expire"`` event).

Internally the bid and ask sides are binary heaps of ``(price_key, seq)`` tuples with lazy
deletion: an order that is filled or cancelled gets ``remaining == 0`` and is popped when it
reaches the top. Per-order state lives in flat lists indexed by the order id (= sequence number);
the few extra facts a GTC order needs live in a dict keyed by order id, so that day orders, the
hot path, pay nothing for expiry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from itertools import chain
from typing import Any

import numpy as np

# Tolerance in ticks against float noise, e.g. 90.07 / 0.01 == 9006.999999999999.
_EPS = 1e-7

KINDS: tuple[str, ...] = ("continuous", "block")
"""Session kinds: listed agreement trading and block agreement trading."""

BUY = 1
SELL = -1

EXPIRIES: tuple[str, ...] = ("day", "gtc")
"""Order expiry rules: day orders die at the close; good-till-cancelled orders are carried."""


def band_ticks(limit_down: float, limit_up: float, tick: float) -> tuple[int, int]:
    """The lowest and highest admissible prices of a band in integer ticks: its limits
    rounded inwards onto the tick grid (``lo > hi`` when no tick fits in the band)."""
    return math.ceil(limit_down / tick - _EPS), math.floor(limit_up / tick + _EPS)


def lowest_tick(tick: float) -> int:
    """The lowest admissible price in ticks: one tick, or one fen if the tick is smaller
    (prices are printed to the fen, and none may print at 0.00)."""
    return max(1, math.ceil(0.01 / tick - _EPS))


@dataclass(frozen=True)
class RestingOrders:
    """Unfilled good-till-cancelled orders at a session's close, in time priority.

    One entry per order; all arrays have the same length. Built by
    :meth:`OrderBook.resting_gtc` and passed to the next session as ``carried=``.

    Attributes:
        order_id: Id of the order in the book it was read from (its time priority there).
        first_id: Id the order got in the session where it was first placed, ``age`` trading
            days earlier; ``(first_id, age)`` identifies an order across days.
        trader: Trader ids.
        side: ``+1`` buy, ``-1`` sell.
        quantity: Tonnes still unfilled (>= 1).
        limit_price: Limit prices (yuan/t, on the tick grid).
        age: Trading days the order has been carried so far (0 = placed in that session).
        max_age: Most trading days the order may be carried, -1 for no limit.
    """

    order_id: np.ndarray
    first_id: np.ndarray
    trader: np.ndarray
    side: np.ndarray
    quantity: np.ndarray
    limit_price: np.ndarray
    age: np.ndarray
    max_age: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, int, int, int, int, float, int, int]]
                  ) -> RestingOrders:
        """Build from ``(order_id, first_id, trader, side, quantity, limit_price, age,
        max_age)`` tuples."""
        cols = list(zip(*rows, strict=True)) if rows else [()] * 8
        ints = [np.array(c, dtype=np.int64) for c in cols]
        return cls(ints[0], ints[1], ints[2], ints[3], ints[4],
                   np.array(cols[5], dtype=np.float64), ints[6], ints[7])

    @classmethod
    def empty(cls) -> RestingOrders:
        """No orders (the first day, or day orders only)."""
        return cls.from_rows([])

    def __len__(self) -> int:
        return len(self.order_id)

    def committed(self, n_traders: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What each trader has tied up in these orders, to keep new orders within limits.

        Args:
            n_traders: Length of the returned arrays; trader ids must be below it.

        Returns:
            ``(buy_t, sell_t, buy_value)`` per trader: tonnes bid, tonnes offered and the
            cash the bids would cost at their limits (yuan).
        """
        buy = self.side > 0
        q = self.quantity.astype(np.float64)
        buy_t = np.bincount(self.trader[buy], weights=q[buy], minlength=n_traders)
        sell_t = np.bincount(self.trader[~buy], weights=q[~buy], minlength=n_traders)
        value = np.bincount(self.trader[buy], weights=(q * self.limit_price)[buy],
                            minlength=n_traders)
        return buy_t.astype(np.int64), sell_t.astype(np.int64), value


class OrderBook:
    """Order book of one trading session (one day), cleared as a continuous double auction.

    Args:
        limit_down: Lowest admissible price (yuan/t); rounded up onto the tick grid, and
            at least ``lowest_tick`` ticks.
        limit_up: Highest admissible price (yuan/t); rounded down onto the tick grid.
        tick: Minimum price increment (yuan/t).
        kind: ``"continuous"`` (listed agreement) or ``"block"``. Only informational
            here: the band is whatever ``limit_down``/``limit_up`` say.
        record: Keep an event log in :attr:`events` so the session can be replayed.
        carried: Unfilled GTC orders of the previous session (:meth:`resting_gtc`). They
            rest at the open in their old time priority, ahead of every new order; those
            outside this band or past their ``max_age`` expire at once (:attr:`expired`).
            The k-th carried order (in ``order_id`` order, as :meth:`resting_gtc` lists
            them) gets id k here, so ``cancel(k)`` withdraws it before the day's orders.

    Attributes:
        trade_buyer, trade_seller, trade_tick, trade_qty: Plain lists, one entry per trade
            (price in integer ticks). :meth:`trades` returns them as numpy arrays.
        volume: Total tonnes traded in the session.
        n_orders: Accepted orders (limit and market).
        n_rejected: Limit orders rejected for being outside the price band.
        n_carried: GTC orders carried in from the previous session (expired ones included).
        expired: The carried orders that expired at the open (limit outside the band, or
            older than their ``max_age``), with their ids in this book.
        events: Event log when ``record=True``: ``("order", seq, trader, side, qty, price)``
            with ``price=None`` for market orders (their remainder is dropped, never logged as
            a cancel), ``("cancel", seq)`` and ``("trade", buyer, seller, price, qty)``.
            Carried orders come first: ``("carry", seq, trader, side, qty, price, first_id,
            age)`` puts an order in the book at the open without matching, and
            ``("expire", seq, reason)`` (``reason`` ``"band"`` or ``"age"``) takes a carried
            order out again at once. :meth:`replay` rebuilds a session from this log.
    """

    def __init__(
        self,
        limit_down: float,
        limit_up: float,
        tick: float = 0.01,
        kind: str = "continuous",
        record: bool = False,
        carried: RestingOrders | None = None,
    ) -> None:
        if not (tick > 0 and math.isfinite(tick)):
            raise ValueError(f"tick must be a positive finite number, got {tick!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.tick = float(tick)
        self.kind = kind
        self.record = bool(record)
        self._set_band(limit_down, limit_up)
        self._init_state()
        if carried is not None and len(carried):
            self._carry_in(carried)

    def _set_band(self, limit_down: float, limit_up: float) -> None:
        if not (math.isfinite(limit_down) and math.isfinite(limit_up)):
            raise ValueError("limit_down and limit_up must be finite")
        tick = self.tick
        # Band in ticks, shrunk onto the grid so no admissible price falls outside it.
        # The trading session hands over bands that pass both checks (session.price_band).
        self._lo, self._hi = band_ticks(limit_down, limit_up, tick)
        if self._lo < lowest_tick(tick):
            raise ValueError(f"price band [{limit_down}, {limit_up}] at tick {tick} reaches "
                             "below the lowest price (one tick, at least 0.01)")
        if self._lo > self._hi:
            raise ValueError(f"empty price band [{limit_down}, {limit_up}] at tick {tick}")
        self.limit_down = round(self._lo * self.tick, 2)
        self.limit_up = round(self._hi * self.tick, 2)

    def reopen(self, limit_down: float, limit_up: float) -> None:
        """Empty the book for a new session with the band ``[limit_down, limit_up]``, as a
        new book of the same tick and kind (not recorded, nothing carried in) would be;
        what the book held before is gone."""
        self._set_band(limit_down, limit_up)
        self.record = False
        self._init_state()

    def _init_state(self) -> None:
        """An empty book: no orders, no trades (the compiled book keeps arrays instead)."""
        self._bids: list[tuple[int, int]] = []  # (-price_tick, seq): heapq is a min-heap
        self._asks: list[tuple[int, int]] = []  # (price_tick, seq)
        self._trader: list[int] = []  # per order id
        self._remaining: list[int] = []  # per order id; 0 = filled/cancelled/not resting

        self.trade_buyer: list[int] = []
        self.trade_seller: list[int] = []
        self.trade_tick: list[int] = []
        self.trade_qty: list[int] = []
        self.volume = 0
        self.n_orders = 0
        self.n_rejected = 0
        self.events: list[tuple[Any, ...]] = []
        # GTC orders only: seq -> (first_id, age, max_age, side, price_tick)
        self._gtc: dict[int, tuple[int, int, int, int, int]] = {}
        self.n_carried = 0
        self._expired: list[tuple[int, int, int, int, int, float, int, int]] = []

    @classmethod
    def replay(
        cls,
        events: Iterable[Sequence[Any]],
        limit_down: float,
        limit_up: float,
        tick: float = 0.01,
        kind: str = "continuous",
    ) -> OrderBook:
        """Rebuild a recorded session from its event log.

        Carried orders are put back as they were at the open (``"carry"``, then ``"expire"``),
        then every ``"order"`` is submitted again and every explicit ``"cancel"`` repeated;
        ``"trade"`` events and the cancels of self-trade prevention follow from the orders.
        The result has the same ladder, trades and event log as the recorded book. The log
        does not say which new orders were GTC, so the replayed book's :meth:`resting_gtc`
        only knows the carried ones.

        Args:
            events: The recorded book's :attr:`events` (or rows in the same layout; a carry
                row may stop after its price, then ``first_id`` is its own id and age 1).
            limit_down: The session's lower price limit.
            limit_up: The session's upper price limit.
            tick: Minimum price increment.
            kind: Session kind.

        Returns:
            The rebuilt :class:`OrderBook`, with ``record=True``.

        Raises:
            ValueError: If the log is inconsistent (an order id out of sequence).
        """
        book = cls(limit_down, limit_up, tick=tick, kind=kind, record=True)
        for event in events:
            what = event[0]
            if what == "carry":
                seq, trader, side, qty, price = event[1:6]
                first_id = int(event[6]) if len(event) > 6 else int(seq)
                age = int(event[7]) if len(event) > 7 else 1
                got = book._carry(int(trader), int(side), int(qty),
                                  round(float(price) / book.tick), first_id, age, -1)
            elif what == "expire":
                seq = int(event[1])
                got = seq
                book._expire(seq, str(event[2]) if len(event) > 2 else "band")
            elif what == "order":
                seq, trader, side, qty, price = event[1:6]
                market = price is None or (isinstance(price, float) and math.isnan(price))
                got = book.submit(int(trader), int(side), int(qty),
                                  None if market else float(price))
            elif what == "cancel":
                book.cancel(int(event[1]))  # no-op if self-trade prevention did it already
                continue
            else:
                continue
            if got != int(seq):
                raise ValueError(f"event {tuple(event)!r} is out of sequence (got id {got})")
        return book

    # ------------------------------------------------------------------ order entry

    def submit(
        self,
        trader: int,
        side: int,
        quantity: int,
        limit_price: float | None,
        gtc: bool = False,
        max_age: int | None = None,
    ) -> int:
        """Submit one order and match it immediately.

        Args:
            trader: Trader id (any int); used for self-trade prevention and trade records.
            side: ``+1`` buy, ``-1`` sell.
            quantity: Tonnes, integer >= 1.
            limit_price: Limit price in yuan/t, or ``None`` (or NaN) for a market order.
            gtc: Good-till-cancelled: an unfilled remainder is kept for the next session
                (:meth:`resting_gtc`) instead of expiring at the close. Ignored for market
                orders, whose remainder never rests.
            max_age: For a GTC order, the most trading days it may be carried (0 = as a day
                order); None for no limit.

        Returns:
            The order id (sequence number), or -1 if the limit price is outside the band.

        Raises:
            ValueError: On a bad side, quantity or max_age.
        """
        if side != BUY and side != SELL:
            raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side!r}")
        if quantity != int(quantity) or quantity < 1:
            raise ValueError(f"quantity must be an integer >= 1, got {quantity!r}")
        quantity = int(quantity)
        age_limit = _max_age(max_age) if gtc else -1
        if limit_price is None or math.isnan(limit_price):
            return self._submit(
                int(trader), side, quantity, self._hi if side > 0 else self._lo, True
            )
        if not math.isfinite(limit_price):
            self.n_rejected += 1
            return -1
        scaled = limit_price / self.tick
        # Off-grid prices go to the less aggressive tick.
        pt = math.floor(scaled + _EPS) if side > 0 else math.ceil(scaled - _EPS)
        if pt < self._lo or pt > self._hi:
            self.n_rejected += 1
            return -1
        seq = self._submit(int(trader), side, quantity, pt, False)
        if gtc and self._remaining[seq]:
            self._gtc[seq] = (seq, 0, age_limit, side, pt)
        return seq

    def submit_many(
        self,
        traders: np.ndarray,
        sides: np.ndarray,
        quantities: np.ndarray,
        limit_prices: np.ndarray,
        gtc: bool | np.ndarray = False,
        max_age: int | None = None,
    ) -> np.ndarray:
        """Submit a batch of orders in array order (the simulation's hot path).

        Args:
            traders: Trader ids, int array of length n.
            sides: ``+1`` buy / ``-1`` sell, length n.
            quantities: Tonnes, integers >= 1, length n.
            limit_prices: Limit prices, NaN for market orders, length n.
            gtc: Good-till-cancelled, for all orders (a bool) or per order (bool array of
                length n); see :meth:`submit`.
            max_age: Most trading days a GTC order of this batch may be carried; None for no
                limit.

        Returns:
            int64 array of order ids, -1 where the order was rejected.

        Raises:
            ValueError: On mismatched lengths, bad sides, quantities or max_age.
        """
        traders_a = np.asarray(traders).ravel()
        sides_a = np.asarray(sides).ravel()
        qty_a = np.asarray(quantities).ravel()
        price_a = np.asarray(limit_prices, dtype=np.float64).ravel()
        n = traders_a.size
        if not (sides_a.size == qty_a.size == price_a.size == n):
            raise ValueError(
                "traders, sides, quantities and limit_prices must have the same length, got "
                f"{n}, {sides_a.size}, {qty_a.size}, {price_a.size}"
            )
        if n == 0:
            return np.empty(0, dtype=np.int64)
        if not np.all((sides_a == BUY) | (sides_a == SELL)):
            raise ValueError("sides must contain only +1 (buy) and -1 (sell)")
        if np.any(qty_a < 1) or np.any(qty_a != np.floor(qty_a)):
            raise ValueError("quantities must be integers >= 1")

        # Vectorised tick rounding and band check; only the matching itself is sequential.
        market = np.isnan(price_a)
        is_buy = sides_a > 0
        with np.errstate(invalid="ignore"):
            scaled = price_a / self.tick
            ticks = np.where(is_buy, np.floor(scaled + _EPS), np.ceil(scaled - _EPS))
        ticks[market] = np.where(is_buy[market], self._hi, self._lo)
        rejected = ~market & ~((ticks >= self._lo) & (ticks <= self._hi))  # +/-inf too
        ticks[rejected] = 0

        ids = np.full(n, -1, dtype=np.int64)
        accepted = np.flatnonzero(~rejected)
        self.n_rejected += n - accepted.size
        ids[accepted] = self._match_batch(
            traders_a[accepted].astype(np.int64), sides_a[accepted].astype(np.int64),
            qty_a[accepted].astype(np.int64), ticks[accepted].astype(np.int64),
            market[accepted])
        if gtc is not False:
            self._keep_gtc(ids, sides_a, ticks, market, gtc, max_age)
        return ids

    def _match_batch(self, traders: np.ndarray, sides: np.ndarray, quantities: np.ndarray,
                     ticks: np.ndarray, market: np.ndarray) -> list[int]:
        """Match validated orders (int64 arrays, prices in ticks inside the band) one after
        the other, in array order; returns their ids."""
        submit = self._submit
        return [submit(t, s, q, p, m) for t, s, q, p, m in zip(
            traders.tolist(), sides.tolist(), quantities.tolist(), ticks.tolist(),
            market.tolist(), strict=True)]

    def _keep_gtc(
        self,
        ids: np.ndarray,
        sides: np.ndarray,
        ticks: np.ndarray,
        market: np.ndarray,
        gtc: bool | np.ndarray,
        max_age: int | None,
    ) -> None:
        """Mark the batch's GTC limit orders that still rest (after the batch) as GTC."""
        age_limit = _max_age(max_age)
        keep = ~market & (ids >= 0)
        if np.ndim(gtc) == 0:  # one flag for the batch (a bool or a numpy bool)
            if not gtc:
                return
        else:
            flags = np.asarray(gtc, dtype=bool).ravel()
            if flags.size != ids.size:
                raise ValueError(f"gtc must be a bool or have length {ids.size}")
            keep &= flags
        remaining, meta = self._remaining, self._gtc
        pick = np.flatnonzero(keep)
        for seq, side, pt in zip(ids[pick].tolist(), sides[pick].astype(np.int64).tolist(),
                                 ticks[pick].astype(np.int64).tolist(), strict=True):
            if remaining[seq]:  # filled orders need no carrying
                meta[seq] = (seq, 0, age_limit, side, pt)

    def _submit(self, trader: int, side: int, qty: int, pt: int, market: bool) -> int:
        """Match a validated order (price ``pt`` in ticks, inside the band); rest the remainder."""
        seq = len(self._remaining)
        self._trader.append(trader)
        self._remaining.append(0)
        self.n_orders += 1
        log = self.events if self.record else None
        if log is not None:
            log.append(
                ("order", seq, trader, side, qty, None if market else round(pt * self.tick, 2))
            )
        remaining = self._remaining
        owner = self._trader
        filled = 0
        # A buy takes asks priced at or below its limit, a sell bids at or above it: the
        # other side's heap, while its top's price key is at most the order's limit as
        # that side's key (ticks for asks, minus ticks for bids).
        buying = side > 0
        book, limit_key = (self._asks, pt) if buying else (self._bids, -pt)
        while qty and book:
            price_key, s = book[0]
            if price_key > limit_key:
                break
            r = remaining[s]
            if r == 0:  # lazily deleted
                heappop(book)
                continue
            other = owner[s]
            if other == trader:  # self-trade prevention: cancel the resting order
                remaining[s] = 0
                heappop(book)
                if log is not None:
                    log.append(("cancel", s))
                continue
            if r > qty:
                fill = qty
                remaining[s] = r - qty
            else:
                fill = r
                remaining[s] = 0
                heappop(book)
            qty -= fill
            filled += fill
            buyer, seller = (trader, other) if buying else (other, trader)
            tick = price_key if buying else -price_key
            self.trade_buyer.append(buyer)
            self.trade_seller.append(seller)
            self.trade_tick.append(tick)
            self.trade_qty.append(fill)
            if log is not None:
                log.append(("trade", buyer, seller, round(tick * self.tick, 2), fill))
        # what is left rests on the order's own side (a market order's is dropped)
        if qty and not market:
            remaining[seq] = qty
            if buying:
                heappush(self._bids, (-pt, seq))
            else:
                heappush(self._asks, (pt, seq))
        self.volume += filled
        return seq

    # ------------------------------------------------------------------ expiry

    def _carry(self, trader: int, side: int, qty: int, pt: int, first_id: int, age: int,
               max_age: int) -> int:
        """Rest a carried order at price tick ``pt`` without matching; returns its new id."""
        seq = len(self._remaining)
        self._trader.append(trader)
        self._remaining.append(qty)
        self._gtc[seq] = (first_id, age, max_age, side, pt)
        heappush(self._bids if side > 0 else self._asks, (-pt if side > 0 else pt, seq))
        self.n_carried += 1
        if self.record:
            self.events.append(("carry", seq, trader, side, qty, round(pt * self.tick, 2),
                                first_id, age))
        return seq

    def _expire(self, seq: int, reason: str) -> None:
        """Take a carried order out of the book at the open (lazy heap deletion)."""
        first_id, age, max_age, side, pt = self._gtc.pop(seq)
        self._expired.append((seq, first_id, self._trader[seq], side, self._remaining[seq],
                              round(pt * self.tick, 2), age, max_age))
        self._remaining[seq] = 0
        if self.record:
            self.events.append(("expire", seq, reason))

    def _carry_in(self, carried: RestingOrders) -> None:
        """Open the session with the previous session's unfilled GTC orders.

        They get the first ids, in their old time priority, so at equal price they fill
        before any new order. Each is one trading day older; one whose limit lies outside
        this session's band, or that is older than its ``max_age``, expires at once. The old
        book was not crossed and a narrower band does not cross it, so nothing matches here.
        Vectorised, since with GTC orders the carried book can be larger than a day's flow.
        """
        if self._order_count():
            raise ValueError("carried orders must enter the book before any new order")
        order = np.argsort(carried.order_id, kind="stable")
        side = carried.side[order].astype(np.int64)
        qty = carried.quantity[order].astype(np.int64)
        if not np.all((side == BUY) | (side == SELL)) or np.any(qty < 1):
            raise ValueError("carried orders need sides +1/-1 and quantities >= 1")
        scaled = carried.limit_price[order] / self.tick
        # Same rounding as a new order: buys down, sells up onto this book's grid.
        ticks = np.where(side > 0, np.floor(scaled + _EPS), np.ceil(scaled - _EPS)).astype(
            np.int64)
        age = carried.age[order].astype(np.int64) + 1
        max_age = carried.max_age[order].astype(np.int64)
        out_of_band = (ticks < self._lo) | (ticks > self._hi)
        too_old = ~out_of_band & (max_age >= 0) & (age > max_age)
        live = ~(out_of_band | too_old)
        m = len(order)
        seqs = np.arange(m, dtype=np.int64)
        trader = carried.trader[order].astype(np.int64)
        first_id = carried.first_id[order].astype(np.int64)

        self.n_carried = m
        self._load_carried(trader, np.where(live, qty, 0), ticks, live & (side > 0),
                           live & (side < 0))
        self._gtc.update(zip(seqs[live].tolist(), zip(
            first_id[live].tolist(), age[live].tolist(), max_age[live].tolist(),
            side[live].tolist(), ticks[live].tolist(), strict=True), strict=True))
        gone = np.flatnonzero(~live)
        prices = np.round(ticks * self.tick, 2)
        self._expired = list(zip(
            gone.tolist(), first_id[gone].tolist(), trader[gone].tolist(), side[gone].tolist(),
            qty[gone].tolist(), prices[gone].tolist(), age[gone].tolist(),
            max_age[gone].tolist(), strict=True))
        if self.record:
            log = self.events
            for i, (t, sd, q, pr, f, a) in enumerate(zip(
                trader.tolist(), side.tolist(), qty.tolist(), prices.tolist(),
                first_id.tolist(), age.tolist(), strict=True,
            )):
                log.append(("carry", i, t, sd, q, pr, f, a))
                if out_of_band[i]:
                    log.append(("expire", i, "band"))
                elif too_old[i]:
                    log.append(("expire", i, "age"))
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            raise ValueError(f"carried orders cross: best bid {bid} >= best ask {ask}")

    def _order_count(self) -> int:
        """Ids given so far (orders and carried orders)."""
        return len(self._remaining)

    def _load_carried(self, trader: np.ndarray, left: np.ndarray, ticks: np.ndarray,
                      buys: np.ndarray, sells: np.ndarray) -> None:
        """Rest the carried orders as ids 0..m-1 (``left`` tonnes each, 0 if expired) in
        an empty book; ``buys``/``sells`` mark the live ones of each side."""
        seqs = np.arange(len(trader), dtype=np.int64)
        self._trader.extend(trader.tolist())
        self._remaining.extend(left.tolist())
        # Built in id order and heapified once: same heap property as pushing one by one.
        self._bids = list(zip((-ticks[buys]).tolist(), seqs[buys].tolist(), strict=True))
        self._asks = list(zip(ticks[sells].tolist(), seqs[sells].tolist(), strict=True))
        heapify(self._bids)
        heapify(self._asks)

    @property
    def expired(self) -> RestingOrders:
        """Carried orders that expired at this session's open (ids in this book)."""
        return RestingOrders.from_rows(self._expired)

    def resting_gtc(self) -> RestingOrders:
        """The unfilled GTC orders now in the book, to carry into the next session.

        Call it at the close; pass the result as ``carried=`` to the next day's book.
        Day orders and filled or cancelled GTC orders are left out.

        Returns:
            :class:`RestingOrders` in time priority, ``quantity`` the unfilled tonnes and
            ``age`` the days carried so far (0 for orders placed in this session).
        """
        remaining = self._remaining
        seqs = [seq for seq in self._gtc if remaining[seq]]
        if not seqs:
            return RestingOrders.empty()
        n = len(seqs)
        seq_a = np.fromiter(seqs, dtype=np.int64, count=n)
        # fromiter over flat iterators: much faster than np.array on lists of tuples
        meta = np.fromiter(chain.from_iterable(map(self._gtc.__getitem__, seqs)),
                           dtype=np.int64, count=5 * n).reshape(n, 5)
        trader = np.fromiter(map(self._trader.__getitem__, seqs), dtype=np.int64, count=n)
        left = np.fromiter(map(remaining.__getitem__, seqs), dtype=np.int64, count=n)
        order = np.argsort(seq_a, kind="stable")  # ids were kept in rising order; be sure
        seq_a, meta, trader, left = seq_a[order], meta[order], trader[order], left[order]
        return RestingOrders(seq_a, meta[:, 0], trader, meta[:, 3], left,
                             np.round(meta[:, 4] * self.tick, 2), meta[:, 1], meta[:, 2])

    # ------------------------------------------------------------------ cancels

    def cancel(self, order_id: int) -> bool:
        """Cancel a resting order.

        Args:
            order_id: Id returned by :meth:`submit`.

        Returns:
            True if a live resting order was cancelled; False if the id is unknown or the order
            is already filled, cancelled, or was a market order.
        """
        if not 0 <= order_id < len(self._remaining) or self._remaining[order_id] == 0:
            return False
        self._remaining[order_id] = 0  # heap entry is dropped lazily
        if self.record:
            self.events.append(("cancel", order_id))
        return True

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> float | None:
        """Highest live bid price, or None if there is no live bid."""
        book, remaining = self._bids, self._remaining
        while book and remaining[book[0][1]] == 0:
            heappop(book)
        return round(-book[0][0] * self.tick, 2) if book else None

    def best_ask(self) -> float | None:
        """Lowest live ask price, or None if there is no live ask."""
        book, remaining = self._asks, self._remaining
        while book and remaining[book[0][1]] == 0:
            heappop(book)
        return round(book[0][0] * self.tick, 2) if book else None

    def depth(self) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        """The ladder: resting quantity per price level, bids best first, asks best first.

        Returns:
            ``(bids, asks)``, each a list of ``(price, tonnes)``.
        """
        levels: tuple[dict[int, int], dict[int, int]] = ({}, {})
        for side, book in ((0, self._bids), (1, self._asks)):
            for key, seq in book:
                left = self._remaining[seq]
                if left:
                    ticks = -key if side == 0 else key
                    levels[side][ticks] = levels[side].get(ticks, 0) + left
        bids = [(round(t * self.tick, 2), q) for t, q in sorted(levels[0].items(), reverse=True)]
        asks = [(round(t * self.tick, 2), q) for t, q in sorted(levels[1].items())]
        return bids, asks

    def remaining(self, order_id: int) -> int:
        """Tonnes still resting for an order (0 if filled, cancelled, market or unknown)."""
        if 0 <= order_id < len(self._remaining):
            return self._remaining[order_id]
        return 0

    def remaining_many(self, order_ids: np.ndarray) -> np.ndarray:
        """:meth:`remaining` of each id (0 for -1, a rejected order), as an int64 array."""
        return np.array([self.remaining(i) for i in np.asarray(order_ids).tolist()],
                        dtype=np.int64)

    def trades(self) -> dict[str, np.ndarray]:
        """Trades of the session so far, in execution order.

        Returns:
            Dict of arrays ``buyer`` (int64), ``seller`` (int64), ``price`` (float64, yuan/t,
            rounded to 2 decimals) and ``quantity`` (int64).
        """
        return {
            "buyer": np.array(self.trade_buyer, dtype=np.int64),
            "seller": np.array(self.trade_seller, dtype=np.int64),
            "price": np.round(np.array(self.trade_tick, dtype=np.float64) * self.tick, 2),
            "quantity": np.array(self.trade_qty, dtype=np.int64),
        }


def _max_age(max_age: int | None) -> int:
    """A GTC order's age limit as stored: -1 for none."""
    if max_age is None:
        return -1
    if max_age != int(max_age) or max_age < 0:
        raise ValueError(f"max_age must be None or an integer >= 0, got {max_age!r}")
    return int(max_age)
