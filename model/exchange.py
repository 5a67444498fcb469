"""Continuous double auction (CDA) order book for one trading session of carbon allowances.

The book models listed agreement trading ("挂牌协议交易") in China's national ETS on the
Shanghai Environment and Energy Exchange, reduced to the rules that shape prices:

* **Price limits.** Every order price must lie inside the day's band, +/-10 % of the previous
  close for listed agreement trading. Block agreement trades ("大宗协议交易") use the same class
  with a +/-30 % band and ``kind="block"``. Limit orders outside the band are rejected (nothing
  happens, ``submit`` returns -1); no trade can ever print outside the band.
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

A book lives for one session: resting orders expire when the object is discarded. Internally
the bid and ask sides are binary heaps of ``(price_key, seq)`` tuples with lazy deletion: an
order that is filled or cancelled gets ``remaining == 0`` and is popped when it reaches the top.
Per-order state lives in flat lists indexed by the order id (= sequence number).
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import Any

import numpy as np

from model.plugins import lookup

# Tolerance in ticks against float noise, e.g. 90.07 / 0.01 == 9006.999999999999.
_EPS = 1e-7

KINDS: tuple[str, ...] = ("continuous", "block")
"""Session kinds: listed agreement trading and block agreement trading."""

PRICE_LIMIT_PCT: dict[str, float] = {"continuous": 0.10, "block": 0.30}
"""Daily price band around the previous close, by session kind."""

BUY = 1
SELL = -1


class OrderBook:
    """Order book of one trading session (one day), cleared as a continuous double auction.

    Args:
        limit_down: Lowest admissible price (yuan/t); rounded up onto the tick grid.
        limit_up: Highest admissible price (yuan/t); rounded down onto the tick grid.
        tick: Minimum price increment (yuan/t).
        kind: ``"continuous"`` (listed agreement, +/-10 %) or ``"block"`` (+/-30 %). Only
            informational here: the band is whatever ``limit_down``/``limit_up`` say.
        record: Keep an event log in :attr:`events` so the session can be replayed.

    Attributes:
        trade_buyer, trade_seller, trade_tick, trade_qty: Plain lists, one entry per trade
            (price in integer ticks). :meth:`trades` returns them as numpy arrays.
        volume: Total tonnes traded in the session.
        n_orders: Accepted orders (limit and market).
        n_rejected: Limit orders rejected for being outside the price band.
        events: Event log when ``record=True``: ``("order", seq, trader, side, qty, price)``
            with ``price=None`` for market orders (their remainder is dropped, never logged as
            a cancel), ``("cancel", seq)`` and ``("trade", buyer, seller, price, qty)``.
    """

    def __init__(
        self,
        limit_down: float,
        limit_up: float,
        tick: float = 0.01,
        kind: str = "continuous",
        record: bool = False,
    ) -> None:
        if not (tick > 0 and math.isfinite(tick)):
            raise ValueError(f"tick must be a positive finite number, got {tick!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not (math.isfinite(limit_down) and math.isfinite(limit_up)):
            raise ValueError("limit_down and limit_up must be finite")
        if limit_down < 0:
            raise ValueError(f"limit_down must be >= 0, got {limit_down!r}")
        self.tick = float(tick)
        self.kind = kind
        self.record = bool(record)
        # Band in ticks, shrunk onto the grid so no admissible price falls outside it.
        self._lo = math.ceil(limit_down / tick - _EPS)
        self._hi = math.floor(limit_up / tick + _EPS)
        if self._lo > self._hi:
            raise ValueError(f"empty price band [{limit_down}, {limit_up}] at tick {tick}")
        self.limit_down = round(self._lo * self.tick, 2)
        self.limit_up = round(self._hi * self.tick, 2)

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

    @classmethod
    def from_previous_close(
        cls,
        previous_close: float,
        tick: float = 0.01,
        kind: str = "continuous",
        record: bool = False,
    ) -> OrderBook:
        """Open a session whose band is the exchange's percentage around the previous close.

        Args:
            previous_close: Previous session's closing price (yuan/t).
            tick: Minimum price increment.
            kind: ``"continuous"`` (+/-10 %) or ``"block"`` (+/-30 %).
            record: Keep an event log.

        Returns:
            A fresh, empty :class:`OrderBook`.
        """
        if kind not in PRICE_LIMIT_PCT:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        pct = PRICE_LIMIT_PCT[kind]
        # Limit prices are quoted on the tick grid, rounded to nearest like the exchange does.
        down = round(previous_close * (1.0 - pct) / tick) * tick
        up = round(previous_close * (1.0 + pct) / tick) * tick
        return cls(down, up, tick=tick, kind=kind, record=record)

    # ------------------------------------------------------------------ order entry

    def submit(self, trader: int, side: int, quantity: int, limit_price: float | None) -> int:
        """Submit one order and match it immediately.

        Args:
            trader: Trader id (any int); used for self-trade prevention and trade records.
            side: ``+1`` buy, ``-1`` sell.
            quantity: Tonnes, integer >= 1.
            limit_price: Limit price in yuan/t, or ``None`` (or NaN) for a market order.

        Returns:
            The order id (sequence number), or -1 if the limit price is outside the band.

        Raises:
            ValueError: On a bad side or quantity.
        """
        if side != BUY and side != SELL:
            raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side!r}")
        if quantity != int(quantity) or quantity < 1:
            raise ValueError(f"quantity must be an integer >= 1, got {quantity!r}")
        quantity = int(quantity)
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
        return self._submit(int(trader), side, quantity, pt, False)

    def submit_many(
        self,
        traders: np.ndarray,
        sides: np.ndarray,
        quantities: np.ndarray,
        limit_prices: np.ndarray,
    ) -> np.ndarray:
        """Submit a batch of orders in array order (the simulation's hot path).

        Args:
            traders: Trader ids, int array of length n.
            sides: ``+1`` buy / ``-1`` sell, length n.
            quantities: Tonnes, integers >= 1, length n.
            limit_prices: Limit prices, NaN for market orders, length n.

        Returns:
            int64 array of order ids, -1 where the order was rejected.

        Raises:
            ValueError: On mismatched lengths, bad sides or bad quantities.
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
        submit = self._submit
        out = [
            submit(t, s, q, p, m)
            for t, s, q, p, m in zip(
                traders_a[accepted].astype(np.int64).tolist(),
                sides_a[accepted].astype(np.int64).tolist(),
                qty_a[accepted].astype(np.int64).tolist(),
                ticks[accepted].astype(np.int64).tolist(),
                market[accepted].tolist(),
                strict=True,
            )
        ]
        ids[accepted] = out
        return ids

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
        if side > 0:
            book = self._asks
            while qty and book:
                ask_t, s = book[0]
                if ask_t > pt:
                    break
                r = remaining[s]
                if r == 0:  # lazily deleted
                    heappop(book)
                    continue
                seller = owner[s]
                if seller == trader:  # self-trade prevention: cancel the resting order
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
                self.trade_buyer.append(trader)
                self.trade_seller.append(seller)
                self.trade_tick.append(ask_t)
                self.trade_qty.append(fill)
                if log is not None:
                    log.append(("trade", trader, seller, round(ask_t * self.tick, 2), fill))
            if qty and not market:
                remaining[seq] = qty
                heappush(self._bids, (-pt, seq))
        else:
            book = self._bids
            while qty and book:
                neg_t, s = book[0]
                if -neg_t < pt:
                    break
                r = remaining[s]
                if r == 0:
                    heappop(book)
                    continue
                buyer = owner[s]
                if buyer == trader:
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
                self.trade_buyer.append(buyer)
                self.trade_seller.append(trader)
                self.trade_tick.append(-neg_t)
                self.trade_qty.append(fill)
                if log is not None:
                    log.append(("trade", buyer, trader, round(-neg_t * self.tick, 2), fill))
            if qty and not market:
                remaining[seq] = qty
                heappush(self._asks, (pt, seq))
        self.volume += filled
        return seq

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

    def last_price(self) -> float | None:
        """Price of the session's last trade, or None if nothing traded."""
        return round(self.trade_tick[-1] * self.tick, 2) if self.trade_tick else None

    def vwap(self) -> float | None:
        """Volume-weighted average trade price of the session, or None if nothing traded."""
        if not self.volume:
            return None
        notional = sum(t * q for t, q in zip(self.trade_tick, self.trade_qty, strict=True))
        return notional * self.tick / self.volume

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


CLEARING_RULES: dict[str, type] = {"continuous_double_auction": OrderBook}
"""Secondary-market clearing mechanisms by configuration name."""


def clearing_rule(name: str) -> type:
    """Look up a secondary-market clearing mechanism by name.

    Args:
        name: Key of :data:`CLEARING_RULES`, e.g. ``"continuous_double_auction"``.

    Returns:
        The order-book class implementing the rule.

    Raises:
        KeyError: If ``name`` is unknown; the message lists the allowed names.
    """
    return lookup(CLEARING_RULES, name, "clearing rule")
