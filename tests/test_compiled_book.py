"""The compiled order book against the pure-Python reference (``model.exchange``).

The compiled book (``model.matching.CompiledOrderBook``) must give the reference's
results fill for fill: every hand-built case of ``test_exchange`` is run on it, random
books (market orders, out-of-band prices, self-trades, cancels, one-by-one and batch
submission, GTC days with carried orders and expiry) are compared field by field, and a
day recorded by a model run with the compiled engine is replayed on the reference book.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import test_exchange

from etsim.model import matching
from etsim.model.exchange import BUY, SELL, OrderBook, RestingOrders
from etsim.model.matching import CompiledOrderBook
from etsim.model.session import closing_price, price_band

HAND_BUILT = [name for name, function in inspect.getmembers(test_exchange, inspect.isfunction)
              if name.startswith("test_") and not inspect.signature(function).parameters]


@pytest.mark.parametrize("name", HAND_BUILT)
def test_hand_built_books_give_the_same_fills_compiled(name: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hand-built case of test_exchange, with its expected fills, on the compiled book."""
    monkeypatch.setattr(test_exchange, "OrderBook", CompiledOrderBook)
    getattr(test_exchange, name)()


def state(book: OrderBook) -> dict:
    """Everything a user can read of a book, as plain Python values."""
    t = book.trades()
    resting = book.resting_gtc()
    expired = book.expired
    return {
        "trades": list(zip(t["buyer"].tolist(), t["seller"].tolist(), t["price"].tolist(),
                           t["quantity"].tolist(), strict=True)),
        "ticks": [int(x) for x in book.trade_tick],
        "events": list(book.events),
        "depth": book.depth(),
        "best": (book.best_bid(), book.best_ask()),
        "counts": (book.n_orders, book.n_rejected, book.n_carried, int(book.volume)),
        "resting": {name: getattr(resting, name).tolist()
                    for name in RestingOrders.__dataclass_fields__},
        "expired": {name: getattr(expired, name).tolist()
                    for name in RestingOrders.__dataclass_fields__},
    }


def random_orders(rng: np.random.Generator, n: int, n_traders: int, centre: int = 9000
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    traders = rng.integers(0, n_traders, n)
    sides = rng.choice(np.array([BUY, SELL]), n)
    quantities = rng.integers(1, 400, n)
    ticks = np.round(centre - sides * rng.normal(20, 150, n)).astype(np.int64)
    prices = ticks / 100.0 + rng.choice(np.array([0.0, 0.003]), n)  # some off the grid
    prices[rng.random(n) < 0.04] = np.nan  # market orders
    odd = rng.random(n) < 0.03
    prices[odd] = rng.choice(np.array([70.0, 120.0, np.inf, -np.inf]), odd.sum())
    return traders, sides, quantities, prices


@pytest.mark.parametrize("seed", range(12))
def test_random_books_identical(seed: int) -> None:
    """Random sessions, in batches with cancels between them and one order at a time."""
    rng = np.random.default_rng(seed)
    n_traders = int(rng.choice([2, 5, 40]))  # few traders: many self-trade cancels
    books = [cls(81.0, 99.0, record=bool(seed % 2)) for cls in (OrderBook, CompiledOrderBook)]
    for _ in range(4):
        orders = random_orders(rng, int(rng.integers(0, 400)), n_traders)
        ids = [book.submit_many(*orders) for book in books]
        assert ids[0].tolist() == ids[1].tolist()
        for order_id in rng.integers(-2, max(1, books[0].n_orders + 2), 20).tolist():
            assert books[0].cancel(order_id) == books[1].cancel(order_id)
            assert books[0].remaining(order_id) == books[1].remaining(order_id)
        assert state(books[0]) == state(books[1])
    traders, sides, quantities, prices = random_orders(rng, 200, n_traders)
    for t, s, q, p in zip(traders.tolist(), sides.tolist(), quantities.tolist(),
                          prices.tolist(), strict=True):
        price = None if np.isnan(p) else p
        assert books[0].submit(t, s, q, price) == books[1].submit(t, s, q, price)
    assert state(books[0]) == state(books[1])
    assert len(books[0].trade_qty) > 50  # the comparison covered real trading


@pytest.mark.parametrize("seed", range(6))
def test_random_gtc_days_identical(seed: int) -> None:
    """Days of GTC and day orders: carried orders, expiry by band and by age, cancels of
    carried orders at the open, partial fills; each day's state the same."""
    rng = np.random.default_rng(100 + seed)
    close = 90.0
    carried = {cls: RestingOrders.empty() for cls in (OrderBook, CompiledOrderBook)}
    reasons = set()
    for day in range(10):
        books = {cls: cls(*price_band(close, 0.10), record=True, carried=carried[cls])
                 for cls in carried}
        for order_id in rng.integers(0, max(1, len(carried[OrderBook])), 3).tolist():
            assert len({book.cancel(order_id) for book in books.values()}) == 1
        traders, sides, quantities, prices = random_orders(rng, 250, 25, round(close * 100))
        gtc = rng.random(len(traders)) < 0.6
        for book in books.values():
            book.submit_many(traders, sides, quantities, prices, gtc=gtc, max_age=3)
        reference, compiled = (state(books[cls]) for cls in carried)
        assert reference == compiled
        reasons |= {e[2] for e in reference["events"] if e[0] == "expire"}
        carried = {cls: book.resting_gtc() for cls, book in books.items()}
        close = closing_price(books[OrderBook].trades()) or close
        if day == 3:
            close *= 1.15  # carried orders fall outside the next band
    assert reasons == {"band", "age"}


def test_replay_of_a_compiled_book_on_the_reference() -> None:
    """A compiled book's event log replays on the reference book to the same book."""
    rng = np.random.default_rng(7)
    book = CompiledOrderBook(81.0, 99.0, record=True)
    book.submit_many(*random_orders(rng, 500, 30))
    replayed = OrderBook.replay(book.events, book.limit_down, book.limit_up)
    assert replayed.events == book.events
    assert book.n_rejected > 0  # rejected orders are not logged, so not replayed
    replayed.n_rejected = book.n_rejected
    assert state(replayed) == state(book)


def test_large_batches_grow_the_arrays() -> None:
    """A batch far larger than the initial arrays, on a book already holding orders."""
    rng = np.random.default_rng(3)
    books = [cls(81.0, 99.0) for cls in (OrderBook, CompiledOrderBook)]
    for n in (10, 5000, 3):
        orders = random_orders(rng, n, 200)
        for book in books:
            book.submit_many(*orders)
    assert state(books[0]) == state(books[1])


def test_engine_choice() -> None:
    assert matching.engine() in matching.ENGINES
    with pytest.raises(ValueError, match="engine must be one of"):
        matching.set_engine("fortran")


def test_a_book_too_high_for_its_tick_is_refused() -> None:
    with pytest.raises(ValueError, match="too high"):
        CompiledOrderBook(1.0, 3e7, tick=0.01)


def test_remaining_many() -> None:
    for cls in (OrderBook, CompiledOrderBook):
        book = cls(81.0, 99.0)
        ids = book.submit_many(np.array([1, 2, 3]), np.array([BUY, SELL, SELL]),
                               np.array([10, 4, 9]), np.array([90.0, 89.0, 150.0]))
        assert ids.tolist() == [0, 1, -1]  # the third is outside the band
        assert book.remaining_many(np.array([0, 1, -1, 7])).tolist() == [6, 0, 0, 0]


def test_the_compiled_trades_value_is_numpys_sum_bit_for_bit() -> None:
    """The compiled day's value of the listed trades (the close's numerator) is numpy's
    ``(price * tonnes).sum()`` to the last bit, on lengths around each step of numpy's
    pairwise summation (below 8, blocks of 128, halves above) and on long days; so
    the close a compiled day records is ``closing_price`` of its trades."""
    k = matching.kernels()
    rng = np.random.default_rng(5)
    lengths = [*range(0, 300), 1023, 1024, 1025, 4097, 8191, 8192, 8193, 20_000, 70_001]
    for n in lengths:
        price = np.round(rng.uniform(20.0, 150.0, n), 2)
        quantity = rng.integers(1, 500_000, n)
        assert k.trades_value(price, quantity) == (price * quantity).sum(), n
    # a numpy reduction of a plain sequence differs from a running sum: the test bites
    values = rng.uniform(0.0, 1e6, 1000)
    running = 0.0
    for value in values.tolist():
        running += value
    assert k.pairwise_sum(values, 0, len(values)) == values.sum() != running
    # a range inside the array, as the kernel sums one session's trades in a store
    assert k.pairwise_sum(values, 100, 500) == values[100:600].sum()


@pytest.mark.parametrize("cls", [OrderBook, CompiledOrderBook])
def test_a_reopened_book_trades_as_a_new_book(cls: type) -> None:
    """A book reopened for a new session (the trading session reuses its day books)
    keeps nothing of its last session: the next day's orders give the trades, ladder,
    counts and band of a new book, also when the new day is smaller than the last."""
    rng = np.random.default_rng(8)
    reused = cls(81.0, 99.0)
    for n_orders, band in ((900, (85.0, 95.0)), (60, (88.5, 92.25)), (400, (82.0, 98.0))):
        reused.submit_many(*random_orders(rng, n_orders, 30))
        assert reused.trade_qty is not None and len(reused.trade_qty)
        reused.reopen(*band)
        new = cls(*band)
        orders = random_orders(rng, n_orders // 3, 30)
        assert reused.submit_many(*orders).tolist() == new.submit_many(*orders).tolist()
        assert state(reused) == state(new)
        assert (reused.limit_down, reused.limit_up, reused.n_rejected) == (
            new.limit_down, new.limit_up, new.n_rejected)
    with pytest.raises(ValueError, match="empty price band"):
        reused.reopen(90.004, 90.006)
