"""The matching engine: the compiled order book, and which engine a run uses.

:class:`CompiledOrderBook` is ``model.exchange.OrderBook`` with its state in flat numpy
arrays and its matching loop compiled with numba (``model._kernels``). Its interface
and results are the reference's, fill for fill: the same ids, trades, cancels, event
log, ladder, GTC carry and expiry. The pure-Python :class:`~etsim.model.exchange.
OrderBook` stays the reference: the Market page's teaching replay uses it, and the
tests run both on random books, hand-built books and recorded days.

Which engine a run's trading sessions use (:func:`order_book`, and the registry's
settlement of a day's trades, ``Registry.transfer_many``):

* ``"compiled"`` (the default): numba kernels, compiled once per machine and cached on
  disk (``model._numba``);
* ``"python"``: the pure-Python reference.

Choose it with the environment variable ``ETSIM_ENGINE`` (read at import; another
value gives a warning and the default) or
:func:`set_engine` (for the process, e.g. in a test or a notebook). Both engines give
identical tables; the choice changes only the speed. If numba cannot be imported, the
compiled engine falls back to the Python one with a warning.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, NamedTuple

import numpy as np

from etsim.model.exchange import OrderBook

ENGINES: tuple[str, ...] = ("compiled", "python")
"""The matching engines: numba-compiled kernels, or the pure-Python reference."""

_engine = "compiled"
_kernels: Any = None


def set_engine(engine: str) -> None:
    """Choose the matching engine of every book made from now on in this process.

    Args:
        engine: ``"compiled"`` or ``"python"``.

    Raises:
        ValueError: An unknown engine.
    """
    global _engine
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    _engine = engine


def engine() -> str:
    """The engine in use: ``"compiled"``, or ``"python"`` (chosen, or numba missing)."""
    return "compiled" if _engine == "compiled" and kernels() is not None else "python"


def kernels() -> Any:
    """The compiled kernels module (imported, and numba with it, on first use), or None
    when numba cannot be imported."""
    global _kernels
    if _kernels is None:
        try:
            from etsim.model import _kernels as compiled
        except ImportError as error:  # pragma: no cover (numba is a dependency)
            warnings.warn(f"numba unavailable ({error}); using the Python matching engine",
                          RuntimeWarning, stacklevel=2)
            _kernels = False
        else:
            _kernels = compiled
    return _kernels or None


def order_book(*args: Any, **kwargs: Any) -> OrderBook:
    """A new order book of the engine in use; arguments as for ``OrderBook``."""
    if engine() == "compiled":
        return CompiledOrderBook(*args, **kwargs)
    return OrderBook(*args, **kwargs)


_NO_EVENTS = np.zeros((0, 6), dtype=np.int64)  # the event rows of a book not recorded


def _compiled_day(listed: OrderBook, block: OrderBook | None,
                  columns: tuple[np.ndarray, ...]) -> bool:
    """Whether a day's orders can go to ``listed`` and ``block`` in one compiled call:
    compiled books on one tick, not recorded, and integer traders, sides and tonnes."""
    books = (listed,) if block is None else (listed, block)
    return (all(type(b) is CompiledOrderBook and not b.record and b.tick == listed.tick
                for b in books)
            and all(isinstance(c, np.ndarray) and c.dtype.kind in "iu" for c in columns))


def _day_books(listed: OrderBook, block: OrderBook | None, n: int, block_min_t: int
               ) -> tuple[OrderBook, int]:
    """Room for ``n`` orders in both books; the book that block orders go to and the
    least block size (without a block session: the listed book, and a size never
    reached, so no order is large)."""
    listed._reserve(n)
    if block is None:
        return listed, int(np.iinfo(np.int64).max)
    block._reserve(n)
    return block, int(block_min_t)


def _count_orders(listed: OrderBook, block: OrderBook | None, n_block: int,
                  block_rejected: int, n_listed: int, listed_rejected: int) -> None:
    if block is not None:
        block.n_rejected += block_rejected
        block.n_orders += n_block - block_rejected
    listed.n_rejected += listed_rejected
    listed.n_orders += n_listed - listed_rejected


def _raise_bad_orders(code: int) -> None:
    if code == -1:
        raise ValueError("sides must contain only +1 (buy) and -1 (sell)")
    if code == -2:
        raise ValueError("quantities must be integers >= 1")


class SettledDay(NamedTuple):
    """A day traded and settled in one compiled call (:func:`trade_and_settle_day`):
    each session's trades (as ``OrderBook.trades()``; ``block`` None without a block
    session or when no order was of block size), the codes of their deliveries
    (``_kernels.settle_session``: -1 when delivered; the block session's is -1 too when
    it was not attempted), the listed book's best bid and ask (None when that side is
    empty), the tonnes of each session, the listed trades' value (numpy's ``(price *
    quantity).sum()``, for the close) and their highest and lowest price (NaN without
    trades)."""

    listed: dict[str, np.ndarray]
    block: dict[str, np.ndarray] | None
    listed_failed: int
    block_failed: int
    best_bid: float | None
    best_ask: float | None
    listed_volume: int
    block_volume: int
    listed_value: float
    listed_high: float
    listed_low: float


def trade_and_settle_day(listed: OrderBook, block: OrderBook | None, traders: np.ndarray,
                         sides: np.ndarray, quantities: np.ndarray,
                         limit_prices: np.ndarray, block_min_t: int,
                         accounts: tuple[Any, ...]) -> SettledDay | None:
    """A day's orders on its fresh block and listed books, then both sessions' trades
    delivered and paid, in one compiled call (``_kernels.session_day``), as the trading
    session's reference steps do them (``TradingSession.trade``): orders of
    ``block_min_t`` or more to ``block`` first, what they leave to ``listed``, below
    block size, with the other orders; each book's ``trades()``, the listed book's
    ``best_bid()`` and ``best_ask()``; ``Settlement.settle`` of the listed session's
    trades, then of the block session's.

    Args:
        accounts: What a settlement writes (``Settlement.accounts``).

    Returns:
        The day's trades and settlement, or None, with nothing done, where the compiled
        call does not apply (a Python book, a recorded session, orders that are not
        integer arrays): the session then takes its reference steps.

    Raises:
        ValueError: A bad side or quantity among the orders a session was sent.
    """
    columns = (traders, sides, quantities)
    if not _compiled_day(listed, block, columns):
        return None
    blocks, least = _day_books(listed, block, len(quantities), block_min_t)
    k = kernels()
    (code, *counted, listed_failed, block_failed, listed_prices, block_prices,
     listed_value, listed_high, listed_low) = k.session_day(
        *(np.ascontiguousarray(c, dtype=np.int64) for c in columns),
        np.ascontiguousarray(limit_prices, dtype=np.float64), listed.tick, least,
        block is not None, blocks._lo, blocks._hi,
        blocks._store, blocks._counts, listed._lo, listed._hi, listed._store, listed._counts,
        *accounts)
    _raise_bad_orders(code)
    _count_orders(listed, block, *counted)
    return SettledDay(
        listed._settled_trades(listed_prices),
        None if block is None or not counted[0] else block._settled_trades(block_prices),
        int(listed_failed), int(block_failed), listed._best(k.N_BIDS), listed._best(k.N_ASKS),
        int(listed._counts[k.VOLUME]), 0 if block is None else int(block._counts[k.VOLUME]),
        float(listed_value), float(listed_high), float(listed_low))


class CompiledOrderBook(OrderBook):
    """An order book with the reference's rules and results, matched by compiled code.

    Arguments, attributes and methods are those of ``model.exchange.OrderBook``; the
    trade attributes (``trade_buyer``, ``trade_seller``, ``trade_tick``, ``trade_qty``)
    are int64 arrays instead of lists.
    """

    def _init_state(self) -> None:
        k = kernels()
        if k is None:  # pragma: no cover (numba is a dependency)
            raise RuntimeError("the compiled order book needs numba")
        if self._hi >= k.BID_BASE:
            raise ValueError(f"price limit {self.limit_up} is too high for tick {self.tick}")
        self._k = k
        if getattr(self, "_counts", None) is None:  # a new book
            self._counts = np.zeros(5, dtype=np.int64)
            self._use_store(np.zeros((k.STORE_ROWS, 0), dtype=np.int64))  # sized on first use
        else:  # reopened: the arrays (their room) are kept; from count 0 none is read
            self._counts[:] = 0
        self.n_orders = 0
        self.n_rejected = 0
        self.events: list[tuple[Any, ...]] = []
        self._gtc: dict[int, tuple[int, int, int, int, int]] = {}
        self.n_carried = 0
        self._expired: list[tuple[int, int, int, int, int, float, int, int]] = []

    # ------------------------------------------------------------------ state views

    def _order_count(self) -> int:
        return int(self._counts[self._k.N_IDS])

    @property
    def volume(self) -> int:  # type: ignore[override]
        """Total tonnes traded in the session."""
        return int(self._counts[self._k.VOLUME])

    def _trade_column(self, index: int) -> np.ndarray:
        return self._trades[index][: self._counts[self._k.N_TRADES]]

    @property
    def trade_buyer(self) -> np.ndarray:  # type: ignore[override]
        """Buyer of each trade."""
        return self._trade_column(0)

    @property
    def trade_seller(self) -> np.ndarray:  # type: ignore[override]
        """Seller of each trade."""
        return self._trade_column(1)

    @property
    def trade_tick(self) -> np.ndarray:  # type: ignore[override]
        """Price of each trade in ticks."""
        return self._trade_column(2)

    @property
    def trade_qty(self) -> np.ndarray:  # type: ignore[override]
        """Tonnes of each trade."""
        return self._trade_column(3)

    # ------------------------------------------------------------------ matching

    def _use_store(self, store: np.ndarray) -> None:
        """Keep the book's state in ``store``: one row per order id (trader, tonnes
        resting), per heap and per trade column, one allocation for all of them."""
        self._store = store

    # the store's rows (views, taken when a Python step needs them: a day's compiled
    # session never does)
    @property
    def _trader(self) -> np.ndarray:
        return self._store[self._k.S_TRADER]

    @property
    def _remaining(self) -> np.ndarray:
        return self._store[self._k.S_REMAINING]

    @property
    def _bid_heap(self) -> np.ndarray:
        return self._store[self._k.S_BIDS]

    @property
    def _ask_heap(self) -> np.ndarray:
        return self._store[self._k.S_ASKS]

    @property
    def _trades(self) -> np.ndarray:
        return self._store[self._k.S_BUYER:]

    def _reserve(self, n_orders: int) -> None:
        """Room for ``n_orders`` more orders, their resting and the trades they can make."""
        k, counts = self._k, self._counts
        # each trade fills a resting order (at most every heap entry, old or new) or
        # ends an incoming order; ids and each heap need less
        most = int(counts[k.N_TRADES] + counts[k.N_BIDS] + counts[k.N_ASKS]) + 2 * n_orders
        needed = max(most, int(counts[k.N_IDS]) + n_orders)
        cap = self._store.shape[1]
        if needed <= cap:
            return
        bigger = np.zeros((len(self._store), max(needed, 2 * cap)), dtype=np.int64)
        if cap:
            bigger[:, :cap] = self._store
        self._use_store(bigger)

    def _match_batch(self, traders: np.ndarray, sides: np.ndarray, quantities: np.ndarray,
                     ticks: np.ndarray, market: np.ndarray) -> np.ndarray:
        n = len(traders)
        ids = np.empty(n, dtype=np.int64)
        if n == 0:
            return ids
        k, counts = self._k, self._counts
        resting = int(counts[k.N_BIDS] + counts[k.N_ASKS])
        self._reserve(n)
        # orders, trades and cancels: bounded as the trades are, plus one row per order
        events = (np.zeros((4 * n + 2 * resting, 6), dtype=np.int64) if self.record
                  else _NO_EVENTS)
        written = k.match_batch(
            np.ascontiguousarray(traders, dtype=np.int64),
            np.ascontiguousarray(sides, dtype=np.int64),
            np.ascontiguousarray(quantities, dtype=np.int64),
            np.ascontiguousarray(ticks, dtype=np.int64),
            np.ascontiguousarray(market, dtype=np.bool_),
            self._store, counts, events, self.record, ids)
        self.n_orders += n
        if self.record:
            self._log_events(events[:written])
        return ids

    def submit_many(
        self,
        traders: np.ndarray,
        sides: np.ndarray,
        quantities: np.ndarray,
        limit_prices: np.ndarray,
        gtc: bool | np.ndarray = False,
        max_age: int | None = None,
    ) -> np.ndarray:
        """As ``OrderBook.submit_many``; a batch of day orders with integer sides and
        quantities is checked, priced and matched in one compiled call."""
        columns = (np.asarray(traders).ravel(), np.asarray(sides).ravel(),
                   np.asarray(quantities).ravel())
        prices = np.asarray(limit_prices, dtype=np.float64).ravel()
        n = len(prices)
        if (gtc is not False or n == 0 or any(len(c) != n for c in columns)
                or any(c.dtype.kind not in "iu" for c in columns)):
            return super().submit_many(traders, sides, quantities, limit_prices, gtc, max_age)
        k, counts = self._k, self._counts
        resting = int(counts[k.N_BIDS] + counts[k.N_ASKS])
        self._reserve(n)
        events = (np.zeros((4 * n + 2 * resting, 6), dtype=np.int64) if self.record
                  else _NO_EVENTS)
        ids = np.empty(n, dtype=np.int64)
        written, rejected = k.submit_batch(
            *(np.ascontiguousarray(c, dtype=np.int64) for c in columns),
            np.ascontiguousarray(prices), self.tick, self._lo, self._hi, self._store,
            counts, events, self.record, ids)
        if written == -1:
            raise ValueError("sides must contain only +1 (buy) and -1 (sell)")
        if written == -2:
            raise ValueError("quantities must be integers >= 1")
        self.n_rejected += rejected
        self.n_orders += n - rejected
        if self.record:
            self._log_events(events[:written])
        return ids

    def _log_events(self, rows: np.ndarray) -> None:
        """Append the kernel's event rows to :attr:`events` as the reference logs them."""
        k, log, tick = self._k, self.events, self.tick
        for code, a, b, c, d, e in rows.tolist():
            if code == k.EV_TRADE:
                log.append(("trade", a, b, round(c * tick, 2), d))
            elif code == k.EV_CANCEL:
                log.append(("cancel", a))
            else:
                log.append(("order", a, b, c, d,
                            None if code == k.EV_MARKET else round(e * tick, 2)))

    def _submit(self, trader: int, side: int, qty: int, pt: int, market: bool) -> int:
        one = np.ones(1, dtype=np.int64)
        ids = self._match_batch(one * trader, one * side, one * qty, one * pt,
                                np.array([market]))
        return int(ids[0])

    # ------------------------------------------------------------------ expiry

    def _carry(self, trader: int, side: int, qty: int, pt: int, first_id: int, age: int,
               max_age: int) -> int:
        k, counts = self._k, self._counts
        self._reserve(1)
        seq = int(counts[k.N_IDS])
        self._trader[seq] = trader
        self._remaining[seq] = qty
        self._gtc[seq] = (first_id, age, max_age, side, pt)
        if side > 0:
            counts[k.N_BIDS] = k.heap_push(self._bid_heap, counts[k.N_BIDS],
                                           ((k.BID_BASE - pt) << k.SEQ_BITS) | seq)
        else:
            counts[k.N_ASKS] = k.heap_push(self._ask_heap, counts[k.N_ASKS],
                                           (pt << k.SEQ_BITS) | seq)
        counts[k.N_IDS] = seq + 1
        self.n_carried += 1
        if self.record:
            self.events.append(("carry", seq, trader, side, qty, round(pt * self.tick, 2),
                                first_id, age))
        return seq

    def _expire(self, seq: int, reason: str) -> None:
        first_id, age, max_age, side, pt = self._gtc.pop(seq)
        self._expired.append((seq, first_id, int(self._trader[seq]), side,
                              int(self._remaining[seq]), round(pt * self.tick, 2), age,
                              max_age))
        self._remaining[seq] = 0
        if self.record:
            self.events.append(("expire", seq, reason))

    def _load_carried(self, trader: np.ndarray, left: np.ndarray, ticks: np.ndarray,
                      buys: np.ndarray, sells: np.ndarray) -> None:
        k, counts = self._k, self._counts
        m = len(trader)
        self._reserve(m)
        self._trader[:m] = trader
        self._remaining[:m] = left
        seqs = np.arange(m, dtype=np.int64)
        # a sorted array is a valid heap
        bid_keys = np.sort(((k.BID_BASE - ticks[buys]) << k.SEQ_BITS) | seqs[buys])
        ask_keys = np.sort((ticks[sells] << k.SEQ_BITS) | seqs[sells])
        self._bid_heap[: len(bid_keys)] = bid_keys
        self._ask_heap[: len(ask_keys)] = ask_keys
        counts[k.N_IDS], counts[k.N_BIDS], counts[k.N_ASKS] = m, len(bid_keys), len(ask_keys)

    # ------------------------------------------------------------------ cancels, queries

    def cancel(self, order_id: int) -> bool:
        if not 0 <= order_id < self._order_count() or self._remaining[order_id] == 0:
            return False
        self._remaining[order_id] = 0  # heap entry is dropped lazily
        if self.record:
            self.events.append(("cancel", order_id))
        return True

    def remaining(self, order_id: int) -> int:
        if 0 <= order_id < self._order_count():
            return int(self._remaining[order_id])
        return 0

    def remaining_many(self, order_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(order_ids, dtype=np.int64)
        known = (ids >= 0) & (ids < self._order_count())
        return np.where(known, self._remaining[np.where(known, ids, 0)], 0)

    def _top(self, heap: np.ndarray, count: int) -> int | None:
        """The top price key of a side after dropping dead entries, or None."""
        k, counts = self._k, self._counts
        counts[count] = k.clean_top(heap, counts[count], self._remaining)
        return int(heap[0] >> k.SEQ_BITS) if counts[count] else None

    def best_bid(self) -> float | None:
        self._top(self._bid_heap, self._k.N_BIDS)
        return self._best(self._k.N_BIDS)

    def best_ask(self) -> float | None:
        self._top(self._ask_heap, self._k.N_ASKS)
        return self._best(self._k.N_ASKS)

    def _best(self, count: int) -> float | None:
        """The best bid (``count`` N_BIDS) or ask of a side already cleaned to its top
        (by ``_top``, or by ``_kernels.session_day``), to the fen; None when empty."""
        k = self._k
        if not self._counts[count]:
            return None
        heap = self._bid_heap if count == k.N_BIDS else self._ask_heap
        key = int(heap[0] >> k.SEQ_BITS)
        return round((k.BID_BASE - key) * self.tick, 2) if count == k.N_BIDS \
            else round(key * self.tick, 2)

    def depth(self) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        k, counts = self._k, self._counts
        ladders = []
        for heap, count, bid in ((self._bid_heap, k.N_BIDS, True),
                                 (self._ask_heap, k.N_ASKS, False)):
            keys = heap[: counts[count]]
            left = self._remaining[keys & k.SEQ_MASK]
            live = left > 0
            ticks = keys[live] >> k.SEQ_BITS
            if bid:
                ticks = k.BID_BASE - ticks
            levels, at = np.unique(ticks, return_inverse=True)
            tonnes = np.bincount(at, weights=left[live], minlength=len(levels))
            rows = [(round(t * self.tick, 2), int(q)) for t, q in zip(
                levels.tolist(), tonnes.astype(np.int64).tolist(), strict=True)]
            ladders.append(rows[::-1] if bid else rows)
        return ladders[0], ladders[1]

    def trades(self) -> dict[str, np.ndarray]:
        k = self._k
        # buyer, seller, tick and tonnes of every trade, copied in one go
        buyer, seller, tick, qty = self._store[k.S_BUYER:k.S_QTY + 1,
                                               : self._counts[k.N_TRADES]].copy()
        return {"buyer": buyer, "seller": seller,
                "price": np.round(tick.astype(np.float64) * self.tick, 2), "quantity": qty}

    def _settled_trades(self, prices: np.ndarray) -> dict[str, np.ndarray]:
        """``trades()`` with the prices ``_kernels.trade_prices`` computed."""
        k = self._k
        buyer, seller, _, qty = self._store[k.S_BUYER:k.S_QTY + 1, :len(prices)].copy()
        return {"buyer": buyer, "seller": seller, "price": prices, "quantity": qty}


_chosen = os.environ.get("ETSIM_ENGINE", "compiled") or "compiled"
if _chosen in ENGINES:
    _engine = _chosen
else:  # a run must not fail for a speed setting: say so, and use the default
    warnings.warn(f"ETSIM_ENGINE must be one of {', '.join(ENGINES)}, got {_chosen!r}; "
                  "using compiled", RuntimeWarning, stacklevel=1)
