"""The live classroom session: students run firms of a scenario in the agents' market.

A ``ClassroomSession`` wraps a ``CarbonMarketModel``. Each of its seats is bound to one
firm; while a student holds the seat, the firm's orders come from the student and its
trading strategy stays silent (the model's ``external`` hook), so students and agents
trade in the same order book by the same rules: price band, tick, price-time priority.

How a trading day runs in class (continuous trading, as on the exchange): the model's
day runs in a worker thread up to its trading session (``TradingSession.trade``), where
the classroom takes over the day's books. At the open, the block session runs first, as
in the model: the students' block orders (``market.block_min_t`` t or more, placed
since the last open) and then the agents' block-size orders, in their arrival order;
what each leaves unfilled goes on to the listed session, below block size. The listed
book opens with the students' kept orders. The agents' orders arrive over the day, at
random times spread over ``pace`` seconds of running clock (``HAND_WINDOW`` seconds when
the teacher steps by hand), and each student order is matched the moment it is placed,
against what rests in the book: the student sees the fill at once. At the close the
agents' orders still to come arrive, and the model's own session code records the day,
its close and settles the trades. With no student in the market this gives exactly the
trades of a run without a class (same books, same orders, same order).

An unfilled remainder is a day order and expires at the close, unless the student asked
to keep it: then it enters again at the next open, ahead of that day's new orders, if it
still fits the band, the holdings and the budget. Block orders are day orders.

A student who sends nothing (the pages poll every second) for ``leave_after`` seconds is
taken over: the firm's agent trades for it again from the next open and the student's
working orders are cancelled; a student who takes a firm mid-day withdraws its agent's
orders of the day. The student's token gives the seat back on the next call. Abatement:
a student picks options during the year; they are adopted at the January review, where
the agent would decide, within the same capital budget (``Firm.review_abatement``).

Everything is logged (``log``): each day's open and close, each order placed, cancel,
order entering a book (students' and agents', with its id in the book), trade, change of
hands and abatement choice, with the trading day and who acted.
``dashboard.classroom.replay`` rebuilds the session from it.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from etsim.agents.firm import Firm
from etsim.agents.strategies import Orders
from etsim.model.calendar import TradingCalendar
from etsim.model.market import CarbonMarketModel
from etsim.model.matching import order_book
from etsim.model.scenario import Scenario, ScenarioError, load_scenario
from etsim.model.session import DayBooks, TradingSession, price_band

MAX_WORKING = 50  # working orders a student may have at once (keeps the book sane)
EXTERNAL = -1  # ``placed_by`` of students' orders: no strategy learns from them
HAND_WINDOW = 60.0  # seconds of running clock the agents' orders arrive over at pace 0
LOG_COLUMNS = ("event", "day", "date", "seconds", "seat", "firm_id", "by", "order_id",
               "side", "quantity", "price", "keep", "arrival", "seq", "book_id",
               "session", "buyer_id", "seller_id", "buyer_by", "seller_by", "options",
               "note")


_NO_ORDERS = Orders(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                    np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


class ClassroomError(Exception):
    """A request the session refuses, with the field it concerns and an HTTP status.

    Args:
        message: What is wrong and what is allowed.
        field: The request field at fault (``side``, ``quantity``, ``price``, ...) or "".
        status: 400 bad input, 401 unknown token, 403 not allowed, 404 unknown order,
            409 not now (the class is full, the session has ended).
    """

    def __init__(self, message: str, field: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status

    def as_dict(self) -> dict[str, str]:
        """The error as the API returns it."""
        return {"error": self.message, "field": self.field}


@dataclass
class Seat:
    """A student's place in the class: one firm, and who trades for it now.

    ``control`` is ``"agent"`` before a student joins and while the student is away,
    ``"student"`` while the student is there.
    """

    index: int
    row: int
    firm_id: int
    sector: str
    token: str = ""
    name: str = ""
    control: str = "agent"
    last_seen: float = 0.0
    abatement_choice: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass
class StudentOrder:
    """A student's limit order and what became of it."""

    order_id: int
    seat: int
    row: int
    side: int  # +1 buy, -1 sell
    quantity: int
    price: float
    keep: bool  # re-enter an unfilled remainder at the next open (else a day order)
    day: int  # trading day it was placed for
    placed_at: float
    remaining: int
    filled: int = 0
    status: str = "working"  # working, filled, cancelled, expired
    note: str = ""
    block: bool = False  # block size: waits for the next open's block session
    book_id: int = -1  # its id in today's listed book (-1: not in it)

    def as_dict(self) -> dict[str, Any]:
        """The order as the student's page shows it."""
        return {"order_id": self.order_id, "side": "buy" if self.side > 0 else "sell",
                "quantity": self.quantity, "price": self.price, "keep": self.keep,
                "remaining": self.remaining, "filled": self.filled, "status": self.status,
                "block": self.block, "note": self.note}


@dataclass
class LiveDay:
    """A trading day while it is open in class: its books and the agents' orders to come.

    Attributes:
        day, year: The trading day and its calendar year.
        listed: The listed session's book (continuous trading).
        block: The block session's book (None if no order was of block size).
        agents: The agents' orders of the day, in arrival order (as the strategies made
            them); ``listed_qty`` is what each brings to the listed session (its block
            remainder below block size for a block-size order; 0: nothing left).
        times: Each agent order's arrival, a share of the day (rising).
        fed: Agent orders arrived so far (the first ``fed``).
        skip: Agent orders withdrawn before they arrived (a student took the firm).
        agent_ids: Listed-book id of each arrived agent order (-1: none).
        n_orders: Orders of the day so far (the day's ``orders`` figure).
        seen: Trades of each book already passed on to the class.
        by_book_id: The students' orders in the listed book, by book id.
        sold, spent: Per firm row, tonnes sold and CNY spent today (not yet settled).
    """

    day: int
    year: int
    listed: Any
    block: Any
    agents: Orders
    listed_qty: np.ndarray
    times: np.ndarray
    fed: int = 0
    skip: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    agent_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_orders: int = 0
    seen: dict[str, int] = field(default_factory=lambda: {"block": 0, "continuous": 0})
    by_book_id: dict[int, StudentOrder] = field(default_factory=dict)
    sold: dict[int, int] = field(default_factory=dict)
    spent: dict[int, float] = field(default_factory=dict)
    volume: int = 0
    last: float | None = None
    version: int = 0


def choose_seats(model: CarbonMarketModel, n_seats: int) -> list[int]:
    """The firms (rows) the seats run: round the sectors in turn, so that a class has
    firms of every sector, surplus and deficit alike.

    Raises:
        ClassroomError: More seats than firms covered from the first year.
    """
    firms = model.firms
    start = model.scenario.start_year
    by_sector = [np.flatnonzero((firms.sector == s) & (firms.entry_year <= start)).tolist()
                 for s in range(len(model.sector_names))]
    total = sum(len(rows) for rows in by_sector)
    if not 1 <= n_seats <= total:
        raise ClassroomError(f"--seats must be from 1 to {total} (the firms of scenario "
                             f"{model.scenario.name} in the market from {start}), got "
                             f"{n_seats}", "seats")
    rows: list[int] = []
    while len(rows) < n_seats:
        for sector_rows in by_sector:
            if sector_rows and len(rows) < n_seats:
                rows.append(sector_rows.pop(0))
    return rows


def classroom_model(scenario: str | Scenario, seed: int | None) -> CarbonMarketModel:
    """The session's model: every trading day's book recorded (``book_events``), so that
    the Market page can replay any day of the lesson.

    Raises:
        ClassroomError: A scenario whose orders are good-till-cancelled (the classroom
            keeps students' orders itself; it needs day orders).
    """
    sc = load_scenario(scenario)
    if sc.market.order_expiry != "day":
        raise ClassroomError(f"scenario {sc.name}: market.order_expiry must be 'day' for a "
                             f"classroom (students' orders are kept by the classroom), got "
                             f"'{sc.market.order_expiry}'", "scenario")
    calendar = TradingCalendar(sc.start_year, sc.last_calendar_year,
                               sc.market.trading_days_per_month)
    days = [str(d) for d in calendar.date.astype("datetime64[D]")]
    return CarbonMarketModel(sc, seed=seed, book_days=days)


class ClassroomSession:
    """A live trading session of a class in a scenario's market.

    Args:
        scenario: A shipped scenario name, a TOML path or a Scenario (``classroom``).
        seats: Student seats, each bound to one firm.
        pace: Seconds a trading day is open; 0 = the teacher steps each day.
        leave_after: Seconds without a call after which a student's firm is taken over
            by its agent.
        seed: Random seed (None: the scenario's).
        clock: Seconds, monotonic (tests pass a fake one).

    Raises:
        ClassroomError: Bad seats, pace or leave_after, or an unusable scenario.
        ScenarioError: A bad scenario.
    """

    def __init__(self, scenario: str | Scenario = "classroom", seats: int = 4,
                 pace: float = 5.0, leave_after: float = 30.0, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not (isinstance(pace, int | float) and math.isfinite(pace) and 0 <= pace <= 3600):
            raise ClassroomError(f"--pace must be seconds from 0 (the teacher steps) to "
                                 f"3600, got {pace!r}", "pace")
        if not (isinstance(leave_after, int | float) and math.isfinite(leave_after)
                and 5 <= leave_after <= 3600):
            raise ClassroomError(f"--leave-after must be seconds from 5 to 3600, got "
                                 f"{leave_after!r}", "leave_after")
        self.model = model = classroom_model(scenario, seed)
        self.scenario = model.scenario
        self.clock = clock
        self.pace = float(pace)
        self.leave_after = float(leave_after)
        self.lock = threading.RLock()
        self.join_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                                 for _ in range(6))
        self.teacher_token = secrets.token_urlsafe(18)
        self.seats = [Seat(i, row, int(model.firms.firm_id[row]),
                           model.sector_names[int(model.firms.sector[row])])
                      for i, row in enumerate(choose_seats(model, seats))]
        self.by_token: dict[str, Seat] = {}
        self.by_row = {seat.row: seat for seat in self.seats}
        self.firms = np.zeros(model.n_firms, dtype=bool)  # the hook's mask: student-run
        self.student_orders: dict[int, StudentOrder] = {}  # every student order by id
        # indexes, so that a page's poll costs the same at the end of a lesson as at its
        # start: each seat's orders, the orders still working, each firm row's trades
        self.seat_orders: list[list[StudentOrder]] = [[] for _ in self.seats]
        self.working_orders: dict[int, StudentOrder] = {}
        self.trades: list[dict[str, Any]] = []  # every trade of the session
        self.row_trades: dict[int, list[dict[str, Any]]] = {}
        self.log: list[dict[str, Any]] = []
        self.status = "paused"  # paused, running, finished
        self.started = clock()
        self.opened_at = self.started  # when the current trading day opened
        self.rng = np.random.default_rng([int(model.seed_value), 20260])
        self.book_depth: tuple[list, list] = ([], [])  # the last close's listed book
        self.day_volume: list[int] = []
        self.tables: dict[str, pd.DataFrame] | None = None
        self._next_order = 1
        self._snapshot: tuple[int, dict[str, Any]] | None = None
        self._live_view: tuple[int, int, dict[str, Any]] | None = None
        # the open day: its books, and the model's thread parked in its session
        self.live: LiveDay | None = None
        self.elapsed = 0.0  # seconds of running clock the open day has had
        self._mark = self.started  # when ``elapsed`` was last brought up to date
        self._thread: threading.Thread | None = None
        self._at_session = threading.Event()
        self._closing = threading.Event()
        self._error: BaseException | None = None
        self._day_books: Any = None
        model.external = self
        # the day's session is run by the class (continuous trading), and recorded and
        # settled by the model's own session code at the close
        model.session.trade = self._session_hook  # type: ignore[method-assign]
        for seat in self.seats:  # the January review: the student's choice, or the agent's
            agent = self._agent(seat.row)
            agent.review_abatement = partial(self._review_abatement, seat, agent)

    # --- the model's hooks (called in the model's thread) -----------------------------

    def orders(self, day: int, agent_orders: Orders, placed_by: np.ndarray
               ) -> tuple[Orders, np.ndarray]:
        """The external hook: the agents' orders pass on unchanged (the students' enter
        the day's books directly, ``_session_hook``)."""
        return agent_orders, placed_by

    def traded(self, day: int, books: Any) -> None:
        """The external hook after the session: nothing left to do (done live)."""

    def _session_hook(self, day: int, year: int, orders: Orders, book: Any) -> Any:
        """The model's trading session, in the model's thread: hand the day's orders to
        the class, wait for the close, then record and settle the day with the
        session's own code (``TradingSession.trade`` on the matched book, with no more
        orders) and the block session as it does."""
        self._day_books = (day, year, orders)
        self._at_session.set()
        self._closing.wait()
        self._closing.clear()
        live = self.live
        assert live is not None
        session = self.model.session
        start = len(session.book_log)
        books = TradingSession.trade(session, day, year, _NO_ORDERS, live.listed)
        record = self.model.daily
        record["orders"][day] = live.n_orders
        if live.block is not None:
            trades = live.block.trades()
            record["block_volume"][day] = int(trades["quantity"].sum())
            record["volume"][day] += record["block_volume"][day]
            session.settlement.settle(trades, "block", day, year)
            if day in session.book_days:  # the block session's events come first
                listed = session.book_log[start:]  # the listed session, just recorded
                del session.book_log[start:]
                session._keep_book_events(day, live.block)
                session.book_log.extend(listed)
        return DayBooks(books.listed, live.block)

    def _run_day(self) -> None:
        try:
            self.model.step()
        except BaseException as error:  # noqa: BLE001 - raised again in the class's thread
            self._error = error
        finally:
            self._at_session.set()  # never leave the class waiting

    # --- the day ----------------------------------------------------------------------

    def _open_day(self) -> None:
        """Open the next trading day if none is open: the model runs up to its session,
        then the block session runs and the listed book opens with the kept orders."""
        if self.live is not None or self.status == "finished":
            return
        model = self.model
        self._at_session.clear()
        self._day_books = None
        self._thread = threading.Thread(target=self._run_day, name="classroom-day",
                                        daemon=True)
        self._thread.start()
        self._at_session.wait()
        self._raise_model_error()
        assert self._day_books is not None
        day, year, agents = self._day_books
        market = self.scenario.market
        recorded = day in model.session.book_days
        n = len(agents.trader)
        live = LiveDay(day, year, order_book(*model.session.listed_band(), market.tick,
                                             kind="continuous", record=recorded),
                       None, agents, agents.quantity.copy(), np.sort(self.rng.random(n)),
                       skip=np.zeros(n, dtype=bool),
                       agent_ids=np.full(n, -1, dtype=np.int64), n_orders=n)
        self.live = live
        self.elapsed, self._mark = 0.0, self.clock()
        self._snapshot = None
        self._log("open", day=day)
        self._enter_kept_orders()
        self._block_session(recorded)
        self._collect()

    def _block_session(self, recorded: bool) -> None:
        """The day's block session, before the listed one (as ``TradingSession.trade``):
        the students' block orders (at the open) and the agents' block-size orders, in
        arrival order; each one's remainder goes on to the listed session below block
        size (the students' at the open, the agents' when they arrive)."""
        live = self.live
        assert live is not None
        market = self.scenario.market
        agents = live.agents
        large = np.flatnonzero(agents.quantity >= market.block_min_t)
        students = [o for o in sorted(self.working_orders.values(), key=lambda o: o.order_id)
                    if o.block]
        if not len(large) and not students:
            return
        last = self.model.daily.last_close
        block = order_book(*price_band(last, market.block_price_limit, market.tick),
                           market.tick, kind="block", record=recorded)
        live.block = block
        live.n_orders += len(students)
        entered = []
        for order in students:
            book_id = block.submit(order.row, order.side, order.remaining, order.price)
            self._log("enter", day=live.day, seat=order.seat,
                      firm_id=self.seats[order.seat].firm_id, by="student",
                      order_id=order.order_id, side=order.side, quantity=order.remaining,
                      price=order.price, book_id=book_id, session="block")
            entered.append((order, book_id))
        ids = block.submit_many(agents.trader[large], agents.side[large],
                                agents.quantity[large], agents.limit_price[large])
        left = np.where(ids >= 0, block.remaining_many(ids), agents.quantity[large])
        live.listed_qty[large] = np.minimum(left, market.block_min_t - 1)
        self._collect()
        for order, book_id in entered:
            left_t = order.remaining if book_id < 0 else block.remaining(book_id)
            order.filled += order.remaining - left_t
            order.remaining = 0
            if book_id < 0:
                self._done(order, "expired", "outside the block session's band "
                           f"{block.limit_down:.2f}-{block.limit_up:.2f}: not entered")
            elif left_t == 0:
                self._done(order, "filled", "filled in the block session")
            else:  # what is left goes on to the listed session, below block size
                listed = min(left_t, market.block_min_t - 1)
                order.note = (f"block session: {order.filled:,} t filled; {listed:,} t go "
                              "on to the listed session"
                              + (f", {left_t - listed:,} t expire" if left_t > listed else ""))
                order.remaining = listed
                self._enter_listed(order)

    def _feed(self, until: float) -> None:
        """The agents' orders arriving up to ``until`` (a share of the day; 1 = all)."""
        live = self.live
        if live is None:
            return
        n = len(live.times)
        upto = n if until >= 1 else int(np.searchsorted(live.times, until, side="right"))
        self._feed_to(upto)

    def _feed_to(self, upto: int) -> None:
        """The agents' orders up to number ``upto`` arrive (each logged as it enters)."""
        live = self.live
        assert live is not None
        agents = live.agents
        book = live.listed
        while live.fed < upto:
            k = live.fed
            live.fed += 1
            quantity = int(live.listed_qty[k])
            if live.skip[k] or quantity < 1:
                continue
            trader = int(agents.trader[k])
            book_id = book.submit(trader, int(agents.side[k]), quantity,
                                  float(agents.limit_price[k]))
            live.agent_ids[k] = book_id
            self._log("enter", day=live.day, firm_id=self._account(trader), by="agent",
                      side=int(agents.side[k]), quantity=quantity,
                      price=float(agents.limit_price[k]), seq=k, book_id=book_id,
                      arrival=float(live.times[k]), session="continuous")
            self._collect()

    def _now_share(self) -> float:
        """How far the open day has run, as a share of it (the clock brought up to date)."""
        self._advance()
        window = self.pace if self.pace > 0 else HAND_WINDOW
        return self.elapsed / window

    def _advance(self) -> None:
        now = self.clock()
        if self.status == "running":
            self.elapsed += max(now - self._mark, 0.0)
        self._mark = now

    def _enter_listed(self, order: StudentOrder) -> None:
        """A student's order enters the listed book now and trades at once if it can."""
        live = self.live
        assert live is not None
        book_id = live.listed.submit(order.row, order.side, order.remaining, order.price)
        live.n_orders += 1
        order.book_id = book_id
        self._log("enter", day=live.day, seat=order.seat,
                  firm_id=self.seats[order.seat].firm_id, by="student",
                  order_id=order.order_id, side=order.side, quantity=order.remaining,
                  price=order.price, book_id=book_id, session="continuous")
        if book_id < 0:  # outside the band (checked before, so only a kept order's race)
            self._done(order, "expired", "outside today's band")
            return
        live.by_book_id[book_id] = order
        self._collect()
        self._refresh(order)

    def _refresh(self, order: StudentOrder) -> None:
        """A student's listed order's fills so far."""
        live = self.live
        if live is None or order.book_id < 0 or order.status != "working":
            return
        left = live.listed.remaining(order.book_id)
        order.filled += order.remaining - left
        order.remaining = left
        if left == 0:
            self._done(order, "filled")

    def _collect(self) -> None:
        """Pass the books' new trades on: the trade list, the log, the students' fills."""
        live = self.live
        if live is None:
            return
        touched: set[int] = set()
        date = self._date(live.day)
        for book in (live.block, live.listed):
            if book is None:
                continue
            seen, count = live.seen[book.kind], len(book.trade_qty)
            if count == seen:
                continue
            live.seen[book.kind] = count
            live.version += 1
            for buyer, seller, tick, qty in zip(
                    np.asarray(book.trade_buyer[seen:count]).tolist(),
                    np.asarray(book.trade_seller[seen:count]).tolist(),
                    np.asarray(book.trade_tick[seen:count]).tolist(),
                    np.asarray(book.trade_qty[seen:count]).tolist(), strict=True):
                price = round(tick * book.tick, 2)
                trade = {"day": live.day, "buyer": buyer, "seller": seller, "price": price,
                         "quantity": qty, "buyer_by": self._who(buyer),
                         "seller_by": self._who(seller), "session": book.kind}
                self.trades.append(trade)
                self.row_trades.setdefault(buyer, []).append(trade)
                self.row_trades.setdefault(seller, []).append(trade)
                live.volume += qty
                live.last = price if book.kind == "continuous" else live.last
                live.sold[seller] = live.sold.get(seller, 0) + qty
                live.spent[buyer] = live.spent.get(buyer, 0.0) + qty * price
                self._log("trade", day=live.day, date=date, buyer_id=self._account(buyer),
                          seller_id=self._account(seller), buyer_by=trade["buyer_by"],
                          seller_by=trade["seller_by"], price=price, quantity=qty,
                          session=book.kind)
                touched.update((buyer, seller))
        for row in touched:
            seat = self.by_row.get(row)
            if seat is not None:
                for order in self.working(seat):
                    self._refresh(order)
        live.version += 1

    def _close_day(self) -> None:
        """Close the open day: the agents' orders still to come arrive, the model records
        and settles the day and runs on to the next open (unless the calendar ends)."""
        self._open_day()
        live = self.live
        if live is None:  # the session has finished
            return
        self._feed(1.0)
        day = live.day
        self._log("close", day=day)
        self._closing.set()
        assert self._thread is not None
        self._thread.join()
        self._raise_model_error()
        self.live = None
        self.book_depth = live.listed.depth()
        self.day_volume.append(int(self.model.daily["volume"][day]))
        for order in list(self.working_orders.values()):
            if order.block:
                continue
            order.book_id = -1
            if not order.keep:
                self._done(order, "expired", "day order: expired at the close")
        self._snapshot = None
        model = self.model
        if not model.running:
            self.status = "finished"
            for order in list(self.working_orders.values()):
                self._done(order, "expired", "the market closed")
            self.tables = model.results()
            self._log("control", day=model.day, by="classroom", note="finished")
            return
        self._open_day()

    def _raise_model_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self.status = "finished"
            raise error

    # --- students ---------------------------------------------------------------------

    def join(self, code: str, name: str) -> dict[str, Any]:
        """A student joins with the class code and gets a seat and its token.

        Raises:
            ClassroomError: A wrong code, a missing name, or a full class.
        """
        if not isinstance(code, str) or code.strip().upper() != self.join_code:
            raise ClassroomError("code: that is not this class's join code (6 letters and "
                                 "digits, shown on the teacher's screen)", "code", 403)
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 40:
            raise ClassroomError("name: give a name of 1 to 40 characters", "name")
        with self.lock:
            free = [seat for seat in self.seats if not seat.token]
            if not free:
                raise ClassroomError(f"the class is full ({len(self.seats)} seats); ask "
                                     "the teacher", "code", 409)
            seat = free[0]
            seat.token = secrets.token_urlsafe(18)
            seat.name = name.strip()
            self.by_token[seat.token] = seat
            self._take_seat(seat)
            return {"token": seat.token, "seat": seat.index, "firm_id": seat.firm_id,
                    "sector": seat.sector, "name": seat.name}

    def seat_for(self, token: str | None) -> Seat:
        """The seat of a student token; the call counts as the student being there, and
        gives a taken-over firm back.

        Raises:
            ClassroomError: An unknown token (401).
        """
        seat = self.by_token.get(token or "")
        if seat is None:
            raise ClassroomError("token: not a student token of this class; join again "
                                 "with the class code", "token", 401)
        with self.lock:
            if seat.control != "student":
                seat.messages.append("welcome back: your firm is yours again")
                self._take_seat(seat)
            seat.last_seen = self.clock()
        return seat

    def place_order(self, token: str | None, side: Any, quantity: Any, price: Any,
                    keep: Any = True) -> dict[str, Any]:
        """Validate a student's limit order and enter it: a listed order trades at once
        against what rests in the book; a block-size order waits for the block session
        at the next open.

        Returns:
            The acknowledged order (its id, status and what has filled already).

        Raises:
            ClassroomError: The order breaks a rule; the message names the field and
                what is allowed.
        """
        seat = self.seat_for(token)
        with self.lock:
            self._open_for_trading()
            self._open_day()
            model = self.model
            market = model.scenario.market
            if side not in ("buy", "sell"):
                raise ClassroomError(f"side: must be 'buy' or 'sell', got {side!r}", "side")
            sign = 1 if side == "buy" else -1
            block_min = market.block_min_t
            most = self._most_tonnes(seat)
            if (isinstance(quantity, bool) or not isinstance(quantity, int | float)
                    or not math.isfinite(quantity) or quantity != int(quantity)
                    or not 1 <= quantity <= most):
                block_text = (f"or {block_min:,} to {most:,} for the block session"
                              if most >= block_min else f"(a block order of {block_min:,} t "
                              "or more needs the quota or the budget for it)")
                raise ClassroomError(f"quantity: whole tonnes from 1 to {block_min - 1:,} "
                                     f"for the listed session, {block_text}, got "
                                     f"{quantity!r}", "quantity")
            quantity = int(quantity)
            block = quantity >= block_min
            tick = market.tick
            limit = market.block_price_limit if block else market.price_limit
            low, high = price_band(model.daily.last_close, limit, tick)
            what = ("the block session's band" if block else "today's band")
            if (isinstance(price, bool) or not isinstance(price, int | float)
                    or not math.isfinite(price)):
                raise ClassroomError(f"price: a number of CNY/t within {what} "
                                     f"{low:.2f}-{high:.2f}, got {price!r}", "price")
            if abs(price / tick - round(price / tick)) > 1e-6:
                raise ClassroomError(f"price: must be on the {tick:g} CNY/t tick, got "
                                     f"{price!r}", "price")
            price = round(round(price / tick) * tick, 2)
            if not low <= price <= high:
                kind = f"a block order of {quantity:,} t" if block else "an order"
                raise ClassroomError(
                    f"price: {kind} must be within {what} {low:.2f}-{high:.2f} CNY/t (the previous "
                    f"close {model.daily.last_close:.2f} -/+ {limit:.0%}), got {price:.2f}",
                    "price")
            working = self.working(seat)
            if len(working) >= MAX_WORKING:
                raise ClassroomError(f"orders: at most {MAX_WORKING} working orders; "
                                     "cancel some first", "orders", 409)
            for other in working:
                if other.side != sign and (price >= other.price if sign > 0
                                           else price <= other.price):
                    raise ClassroomError(
                        f"price: a {side} at {price:.2f} would trade with your own "
                        f"{'sell' if sign > 0 else 'buy'} order {other.order_id} at "
                        f"{other.price:.2f}; cancel it first", "price")
            self._check_cover(seat, sign, quantity, price, working)
            self._feed(self._now_share())  # the agents' orders that came meanwhile
            order = self._accept(seat, sign, quantity, price, bool(keep) and not block)
            return order.as_dict()

    def _accept(self, seat: Seat, sign: int, quantity: int, price: float, keep: bool
                ) -> StudentOrder:
        """Take a checked order: log it, and enter it in the listed book at once (a
        block-size order waits for the next open's block session)."""
        model = self.model
        block = quantity >= model.scenario.market.block_min_t
        order = StudentOrder(self._next_order, seat.index, seat.row, sign, quantity,
                             price, keep, model.day, self.clock(), quantity, block=block)
        if block:
            order.note = "waits for the block session at the next open"
        self._next_order += 1
        self.student_orders[order.order_id] = order
        self.seat_orders[seat.index].append(order)
        self.working_orders[order.order_id] = order
        self._log("order", day=model.day, seat=seat.index, firm_id=seat.firm_id,
                  by="student", order_id=order.order_id, side=sign, quantity=quantity,
                  price=price, keep=order.keep, session="block" if block else "continuous")
        if not block:
            self._enter_listed(order)
        return order

    def _most_tonnes(self, seat: Seat) -> int:
        """The largest order a student may place: the block minimum less one, or more
        (a block order) up to what the firm holds or its budget could buy at the top of
        the block band, whichever is larger."""
        model = self.model
        market = model.scenario.market
        held, budget = self._room(seat)
        top = price_band(model.daily.last_close, market.block_price_limit, market.tick)[1]
        return max(market.block_min_t - 1, held, int(max(budget, 0) // max(top, 0.01)))

    def cancel(self, token: str | None, order_id: Any) -> dict[str, Any]:
        """Cancel a student's working order (what has not traded yet).

        Raises:
            ClassroomError: Not the student's order (404), or no longer working (409).
        """
        seat = self.seat_for(token)
        with self.lock:
            order = self.student_orders.get(order_id) if isinstance(order_id, int) else None
            if order is None or order.seat != seat.index:
                raise ClassroomError(f"order_id: you have no order {order_id!r}",
                                     "order_id", 404)
            self._feed(self._now_share())
            if order.status != "working":
                raise ClassroomError(f"order_id: order {order_id} is {order.status}, not "
                                     "working", "order_id", 409)
            self._cancel(order, "student", "cancelled by the student")
            return order.as_dict()

    def choose_abatement(self, token: str | None, options: Any) -> dict[str, Any]:
        """A student's abatement choice for the next January review.

        Raises:
            ClassroomError: Options that are not a list of this firm's open options.
        """
        seat = self.seat_for(token)
        with self.lock:
            self._open_for_trading()
            model = self.model
            fo = model.firms.options
            row = seat.row
            n = int(fo.valid[row].sum())
            if not isinstance(options, list) or not all(
                    isinstance(k, int) and not isinstance(k, bool) for k in options):
                raise ClassroomError("options: a list of option numbers", "options")
            for k in options:
                if not (0 <= k < fo.valid.shape[1] and fo.valid[row, k]):
                    raise ClassroomError(f"options: your firm has options 0 to {n - 1}, "
                                         f"got {k}", "options")
                if fo.adopted_year[row, k] >= 0:
                    raise ClassroomError(f"options: option {k} was adopted in "
                                         f"{fo.adopted_year[row, k]}", "options")
            seat.abatement_choice = sorted(set(options))
            self._log("abatement", day=model.day, seat=seat.index, firm_id=seat.firm_id,
                      by="student", options=",".join(map(str, seat.abatement_choice)))
            return {"options": seat.abatement_choice,
                    "review": f"January {self._next_review_year()}"}

    def working(self, seat: Seat) -> list[StudentOrder]:
        """A seat's working orders, oldest first."""
        return [o for o in self.working_orders.values() if o.seat == seat.index]

    # --- the teacher ------------------------------------------------------------------

    def check_teacher(self, token: str | None) -> None:
        """Raises ClassroomError (403) unless ``token`` is the teacher's."""
        if not token or not secrets.compare_digest(token, self.teacher_token):
            raise ClassroomError("token: the teacher's controls need the teacher's token",
                                 "token", 403)

    def pause(self) -> None:
        """Stop the clock: the agents' orders stop arriving and the day does not close
        until resume or step (students may still trade against the book)."""
        with self.lock:
            if self.status == "running":
                self._advance()
                self.status = "paused"
                self._log("control", day=self.model.day, by="teacher", note="pause")

    def resume(self) -> None:
        """Start (or restart) the clock; the open day goes on where it stopped."""
        with self.lock:
            if self.status == "paused":
                self._open_day()
                self._mark = self.clock()
                self.status = "running"
                self._log("control", day=self.model.day, by="teacher", note="resume")

    def step(self, days: int = 1) -> None:
        """Close the current trading day now (``days`` days in a row).

        Raises:
            ClassroomError: Days outside 1 to the calendar's length, or the session has
                ended.
        """
        most = self.model.calendar.n_days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= most:
            raise ClassroomError(f"days: a whole number from 1 to {most}, got {days!r}",
                                 "days")
        with self.lock:
            self._open_for_trading()
            for _ in range(days):
                if self.status == "finished":
                    break
                self._close_day()

    def finish(self) -> None:
        """End the lesson: the agents take every firm and run the rest of the calendar,
        then the results tables and the debrief are ready."""
        with self.lock:
            if self.status == "finished":
                return
            for seat in self.seats:
                if seat.control == "student":
                    self._hand_to_agent(seat, "the lesson ended")
            while self.status != "finished":
                self._close_day()

    def tick(self) -> None:
        """Called about once a second: take over leavers; let the agents' orders arrive;
        close the day when it is due."""
        with self.lock:
            if self.status == "finished":
                return
            now = self.clock()
            for seat in self.seats:
                if seat.control == "student" and now - seat.last_seen > self.leave_after:
                    self._hand_to_agent(seat, f"no word from the student for "
                                              f"{self.leave_after:g} s")
            if self.status != "running":
                return
            self._open_day()
            share = self._now_share()
            if self.pace > 0 and self.elapsed >= self.pace:
                self._close_day()
            else:
                self._feed(share)

    def _enter_kept_orders(self) -> None:
        """At the open: a kept order from an earlier day enters again, ahead of the day's
        new orders, only if it still fits today's band, the holdings and the budget
        (else it expires)."""
        model = self.model
        low, high = model.session.listed_band()
        for seat in self.seats:
            room_t, room_cny = self._room(seat)
            for order in sorted(self.working(seat), key=lambda o: o.order_id):
                if order.block:
                    continue
                reason = ""
                if not low <= order.price <= high:
                    reason = f"outside today's band {low:.2f}-{high:.2f}"
                elif order.side < 0 and order.remaining > room_t:
                    reason = "more than you now hold"
                elif order.side > 0 and order.remaining * order.price > room_cny:
                    reason = "more than your carbon budget now allows"
                if reason:
                    self._done(order, "expired", f"not re-entered: {reason}")
                    self._log("cancel", day=model.day, seat=seat.index,
                              firm_id=seat.firm_id, by="classroom", order_id=order.order_id,
                              note=order.note)
                    continue
                if order.side < 0:
                    room_t -= order.remaining
                else:
                    room_cny -= order.remaining * order.price
                self._enter_listed(order)

    # --- seats and control ------------------------------------------------------------

    def _take_seat(self, seat: Seat) -> None:
        seat.control = "student"
        seat.last_seen = self.clock()
        self.firms[seat.row] = True
        self._log("control", day=self.model.day, seat=seat.index, firm_id=seat.firm_id,
                  by="student", note="student")
        live = self.live
        if live is not None:  # the agent's orders of today are withdrawn
            mine = live.agents.trader == seat.row
            live.skip |= mine
            for book_id in live.agent_ids[mine].tolist():
                if book_id >= 0:
                    live.listed.cancel(book_id)
            live.version += 1

    def _hand_to_agent(self, seat: Seat, reason: str) -> None:
        seat.control = "agent"
        self.firms[seat.row] = False
        for order in self.working(seat):
            self._cancel(order, "classroom", f"cancelled: {reason}")
        seat.messages.append(f"your agent took over ({reason})")
        self._log("control", day=self.model.day, seat=seat.index, firm_id=seat.firm_id,
                  by="agent", note=reason)

    def _done(self, order: StudentOrder, status: str, note: str = "") -> None:
        """An order stops working: filled, expired or cancelled."""
        order.status, order.note = status, note
        self.working_orders.pop(order.order_id, None)

    def _cancel(self, order: StudentOrder, by: str, note: str) -> None:
        live = self.live
        if live is not None and order.book_id >= 0:
            self._refresh(order)
            if order.status != "working":  # filled meanwhile
                return
            live.listed.cancel(order.book_id)
            live.version += 1
        self._done(order, "cancelled", note)
        self._log("cancel", day=self.model.day, seat=order.seat,
                  firm_id=self.seats[order.seat].firm_id, by=by, order_id=order.order_id,
                  book_id=order.book_id if order.book_id >= 0 else None, note=note)

    def _review_abatement(self, seat: Seat, agent: Firm, year: int) -> None:
        """The January review of a seat's firm: the student's choice while a student
        runs it (nothing if none), else the agent's own review."""
        if seat.control != "student":
            Firm.review_abatement(agent, year)
            return
        chosen, seat.abatement_choice = seat.abatement_choice, []
        adopted, refused = adopt_options(self.model, agent, year, chosen)
        if chosen:
            seat.messages.append(
                f"January {year}: adopted options {adopted or 'none'}"
                + (f"; over the capital budget: {refused}" if refused else ""))
        self._log("adopt", day=self.model.day, seat=seat.index, firm_id=seat.firm_id,
                  by="student", options=",".join(map(str, adopted)),
                  note=f"refused (capital budget): {refused}" if refused else "")

    # --- checks -----------------------------------------------------------------------

    def _open_for_trading(self) -> None:
        if self.status == "finished":
            raise ClassroomError("the session has ended", "", 409)

    def _room(self, seat: Seat) -> tuple[int, float]:
        """Tonnes a seat may still offer and CNY it may still bid, before its working
        orders: its holdings less what it sold today, its carbon budget less what it
        spent today (today's trades settle at the close)."""
        model = self.model
        held = int(model.registry.total()[seat.row])
        budget = float(model.positions.carbon_budget()[seat.row])
        live = self.live
        if live is not None:
            held -= live.sold.get(seat.row, 0)
            budget -= live.spent.get(seat.row, 0.0)
        return held, budget

    def _check_cover(self, seat: Seat, sign: int, quantity: int, price: float,
                     working: list[StudentOrder]) -> None:
        held, budget = self._room(seat)
        if sign < 0:
            offered = sum(o.remaining for o in working if o.side < 0)
            if quantity > held - offered:
                raise ClassroomError(
                    f"quantity: you hold {held:,} t and offer {offered:,} t already; you "
                    f"can sell at most {max(held - offered, 0):,} t", "quantity")
        else:
            bid = sum(o.remaining * o.price for o in working if o.side > 0)
            room = budget - bid
            if quantity * price > room:
                most = max(int(room // price), 0)
                raise ClassroomError(
                    f"quantity: your carbon budget leaves {max(room, 0):,.0f} CNY after "
                    f"your working bids; at {price:.2f} that buys at most {most:,} t",
                    "quantity")

    # --- views ------------------------------------------------------------------------

    def _date(self, day: int) -> str:
        cal = self.model.calendar
        return str(cal.date[min(day, cal.n_days - 1)])[:10]

    def _account(self, row: int) -> int:
        return int(self.model.account_id[row])

    def _who(self, row: int) -> str:
        return "student" if row < len(self.firms) and self.firms[row] else "agent"

    def _agent(self, row: int) -> Firm:
        agents = self.__dict__.setdefault("_agents", {})
        if row not in agents:
            agents[row] = next(a for a in self.model.agents
                               if isinstance(a, Firm) and a.row == row)
        return agents[row]

    def _next_review_year(self) -> int:
        model = self.model
        day = min(model.day, model.calendar.n_days - 1)
        year = int(model.calendar.year[day])
        first = model.day % model.calendar.days_per_year == 0 and self.live is None
        return year if first else year + 1  # an open day has had its January review

    def _log(self, event: str, **values: Any) -> None:
        values["event"] = event
        values.setdefault("date", self._date(values.get("day", self.model.day)))
        values["seconds"] = round(self.clock() - self.started, 3)
        self.log.append(values)

    def order_log(self) -> pd.DataFrame:
        """The session's log as a table (``LOG_COLUMNS``), in the order things happened."""
        with self.lock:
            frame = pd.DataFrame(self.log, columns=list(LOG_COLUMNS))
        for name in ("day", "seat", "firm_id", "order_id", "side", "quantity", "seq",
                     "buyer_id", "seller_id"):
            frame[name] = frame[name].astype("Int64")
        return frame

    def export(self, out: str | Path) -> Path:
        """Write the results tables (``write_results``), ``order_log.parquet`` and
        ``order_log.csv`` into a new folder ``out``.

        Raises:
            ClassroomError: Before the session has finished, or ``out`` exists.
        """
        from etsim.model.results import run_record, write_results

        with self.lock:
            if self.tables is None:
                raise ClassroomError("export: the session has not finished; end it first",
                                     "", 409)
            out = Path(out)
            if out.exists():
                raise ClassroomError(f"out: {out} exists already (nothing is overwritten)",
                                     "out", 409)
            log = self.order_log()
            record = run_record(self.model)
            record["classroom"] = {
                "seats": [{"seat": s.index, "firm_id": s.firm_id, "sector": s.sector,
                           "name": s.name} for s in self.seats],
                "pace": self.pace, "leave_after": self.leave_after,
            }
            tables = dict(self.tables, order_log=log)
            write_results(tables, record, out)
            log.to_csv(out / "order_log.csv", index=False)
            return out

    def snapshot(self) -> dict[str, Any]:
        """What every page shares today: the firms' positions and the market (cached for
        the day, as nothing in it changes before the close)."""
        model = self.model
        if self._snapshot is not None and self._snapshot[0] == model.day:
            return self._live(self._snapshot[1])
        day = min(model.day, model.calendar.n_days - 1)
        open_ = model.day < model.calendar.n_days
        state = model.positions.trading_state(day) if open_ else None
        low, high = model.session.listed_band()
        deadline = model.positions.next_deadline
        shared = {
            "day": model.day, "days": model.calendar.n_days, "date": self._date(day),
            "close": model.daily.last_close, "band": [low, high],
            "block_band": list(price_band(model.daily.last_close,
                                          model.scenario.market.block_price_limit,
                                          model.scenario.market.tick)),
            "block_min_t": int(model.scenario.market.block_min_t),
            "tick": model.scenario.market.tick,
            "penalty_price": float(model.compliance.penalty_price(model.daily.last_close)),
            "deadline": None if deadline is None else {
                "date": self._date(deadline), "days_left": max(deadline - model.day, 0),
                "compliance_year": int(model.positions.next_compliance_year)},
            "position": None if state is None else state.position.copy(),
            "budget": model.positions.carbon_budget(),
            "output_expected": self._expected_output(day),
            "bids": [list(level) for level in self.book_depth[0][:8]],
            "asks": [list(level) for level in self.book_depth[1][:8]],
            # null on a day without a listed trade: it has no close (drawn as a gap)
            "prices": [_num(p) for p in model.daily["close"][:model.day]],
            "volumes": list(self.day_volume),
        }
        self._snapshot = (model.day, shared)
        return self._live(shared)

    def _live(self, shared: dict[str, Any]) -> dict[str, Any]:
        """The shared view with the open day's book: its depth (best 8 levels a side),
        the last trade and today's volume so far (cached until the book changes)."""
        live = self.live
        if live is None:
            return dict(shared, open=False, last=None, volume_today=0)
        key = (live.day, live.version)
        if self._live_view is None or self._live_view[:2] != key:
            bids, asks = live.listed.depth()
            self._live_view = (*key, {
                "open": True, "bids": [list(level) for level in bids[:8]],
                "asks": [list(level) for level in asks[:8]],
                "last": live.last, "volume_today": live.volume,
            })
        return dict(shared, **self._live_view[2])

    def _expected_output(self, day: int) -> np.ndarray:
        """Each firm's expected output this year (the year so far scaled up; the plan
        before the first month, the base output before the first January)."""
        model = self.model
        if model.firms.output_factor is None:  # before the first January's decisions
            return model.firms.base_output.copy()
        year = min(int(model.calendar.year[day]), self.scenario.end_year)
        return model.positions.projected_output(year, day)

    def _clock_view(self) -> dict[str, Any]:
        left = None
        if self.status == "running" and self.pace > 0:
            left = max(self.pace - (self.clock() - self.opened_at), 0.0)
        return {"status": self.status, "pace": self.pace, "seconds_to_close": left}

    def student_view(self, token: str | None) -> dict[str, Any]:
        """What a student sees: the market, and their own firm only."""
        seat = self.seat_for(token)
        with self.lock:
            model = self.model
            shared = self.snapshot()
            row = seat.row
            fy = model.fy
            year = int(model.calendar.year[min(model.day, model.calendar.n_days - 1)])
            col = fy.col(min(year, self.scenario.end_year))
            fo = model.firms.options
            output = float(shared["output_expected"][row])
            intensity = float(model.firms.intensity[row])
            # the free quota of the compliance year whose deadline comes next
            obligation = (shared["deadline"]["compliance_year"] if shared["deadline"]
                          else self.scenario.end_year)
            ocol = fy.col(obligation)
            options = [{
                "option": k, "name": fo.names[row][k],
                "reduction": float(fo.reduction[row, k]),
                "cost_per_t": float(fo.cost[row, k]),
                "capital_per_t_year": float(fo.capital_cost[row, k]),
                "lead_time_years": int(fo.lead_time[row, k]),
                "tonnes_per_year": output * intensity * float(fo.reduction[row, k]),
                "adopted_year": None if fo.adopted_year[row, k] < 0
                else int(fo.adopted_year[row, k]),
                "chosen": k in seat.abatement_choice,
            } for k in np.flatnonzero(fo.valid[row]).tolist()]
            working = self.working(seat)
            bid_value = sum(o.remaining * o.price for o in working if o.side > 0)
            held_now, budget_now = self._room(seat)
            live = self.live
            bought_today = 0 if live is None else sum(
                t["quantity"] for t in self.row_trades.get(row, [])[-200:]
                if t["day"] == live.day and t["buyer"] == row)
            mine = [o.as_dict() for o in self.seat_orders[seat.index][-60:]]
            # the counterparty is shown as a student or an agent, never by name
            trades = [{"day": t["day"], "date": self._date(t["day"]),
                       "side": "buy" if t["buyer"] == row else "sell",
                       "price": t["price"], "quantity": t["quantity"],
                       "with": t["seller_by"] if t["buyer"] == row else t["buyer_by"]}
                      for t in self.row_trades.get(row, [])[-60:]]
            messages, seat.messages = seat.messages, []
            view = {k: shared[k] for k in ("day", "days", "date", "close", "band", "tick",
                                           "penalty_price", "deadline", "bids", "asks",
                                           "block_band", "block_min_t", "open", "last",
                                           "volume_today")}
            view["prices"] = shared["prices"][-60:]
            view.update(self._clock_view())
            view["firm"] = {
                "seat": seat.index, "name": seat.name, "firm_id": seat.firm_id,
                "sector": seat.sector, "control": seat.control, "year": year,
                "output_so_far": float(fy["output"][row, col]),
                "output": output, "intensity": intensity,
                "emissions_so_far": float(fy["emissions"][row, col]),
                "emissions_expected": output * intensity,
                "obligation_year": int(obligation),
                "free_quota": float(fy["free_allocation"][row, ocol]),
                "free_entitled": float(fy["free_entitled"][row, ocol]),
                # today's trades count at once (they settle at the close)
                "holdings": held_now + bought_today,
                "position": None if shared["position"] is None
                else float(shared["position"][row]),
                "cash": float(model.firms.cash[row]),
                "budget_left": budget_now - bid_value,
                "capital_budget": self._agent(row).capital_budget(),
                "penalties": float(fy["penalty"][row].sum()),
                "next_review": self._next_review_year(),
            }
            view["options"] = options
            view["orders"] = mine[-60:]
            view["trades"] = trades[-60:]
            view["messages"] = messages
            return view

    def leaderboard(self) -> list[dict[str, Any]]:
        """Each seat's compliance cost against its cost without trading, best gain first.

        Compliance cost = what it paid for quota less what it sold for, plus penalties
        and abatement cost. Without trading, the tonnes it bought net would have been
        short at the deadline, at today's penalty price (5 x the close by default), and
        the tonnes it sold net would have stayed in its bank, bringing no cash.
        """
        model = self.model
        penalty_price = float(model.compliance.penalty_price(model.daily.last_close))
        board = []
        for seat in self.seats:
            gain = firm_gains(self.row_trades.get(seat.row, []), seat.row)
            penalties = float(model.fy["penalty"][seat.row].sum())
            abatement = float(model.fy["abatement_cost"][seat.row].sum())
            cost = gain["net_paid"] + penalties + abatement
            no_trade = penalties + abatement + max(gain["net_bought"], 0) * penalty_price
            board.append({"seat": seat.index, "name": seat.name or "(empty seat)",
                          "firm_id": seat.firm_id, "sector": seat.sector,
                          "control": seat.control, "bought_t": gain["bought"],
                          "sold_t": gain["sold"], "net_paid": gain["net_paid"],
                          "penalties": penalties, "abatement_cost": abatement,
                          "compliance_cost": cost, "cost_without_trading": no_trade,
                          "gain_from_trade": no_trade - cost})
        return sorted(board, key=lambda r: -r["gain_from_trade"])

    def teacher_view(self) -> dict[str, Any]:
        """What the teacher sees: the market, the seats, the leaderboard, the debrief."""
        with self.lock:
            shared = self.snapshot()
            view = {k: shared[k] for k in ("day", "days", "date", "close", "band", "tick",
                                           "penalty_price", "deadline", "bids", "asks",
                                           "prices", "volumes", "block_band", "open",
                                           "last", "volume_today")}
            view.update(self._clock_view())
            now = self.clock()
            view["join_code"] = self.join_code
            view["seats"] = [{"seat": s.index, "name": s.name, "firm_id": s.firm_id,
                              "sector": s.sector, "control": s.control,
                              "seen_seconds_ago": None if not s.token
                              else round(now - s.last_seen, 1)} for s in self.seats]
            view["leaderboard"] = self.leaderboard()
            view["orders_today"] = len(self.working_orders)
            view["debrief"] = self.debrief() if self.tables is not None else None
            return view

    def debrief(self) -> dict[str, Any]:
        """After the lesson: each year's market price beside the equilibrium price, the
        supply and demand of quota, and who gained from trade (students and agents)."""
        tables = self.tables
        assert tables is not None
        years = tables["market_years"]
        fy = tables["firm_years"]
        end = self.scenario.end_year
        rows = []
        for r in years.itertuples():
            if r.year > end:
                continue
            mine = fy[fy["year"] == r.year]
            rows.append({
                "year": int(r.year), "mean_price": _num(r.mean_price),
                "equilibrium_price": _num(r.equilibrium_price),
                "free_allocation": float(mine["free_allocation"].sum()),
                "offsets_used": float(mine["offsets_used"].sum()),
                "verified_emissions": float(mine["verified_emissions"].sum()),
                "abatement": float(mine["abatement"].sum()),
                "volume": float(r.volume),
                "shortfall": float(mine["shortfall"].sum()),
            })
        penalty_price = float(self.model.compliance.penalty_price(
            self.model.daily.last_close))
        students = {s.row for s in self.seats if s.name}
        groups = {"students": 0.0, "agents": 0.0}
        for row in range(self.model.n_firms):
            g = firm_gains(self.row_trades.get(row, []), row)
            gain = max(g["net_bought"], 0) * penalty_price - g["net_paid"]
            groups["students" if row in students else "agents"] += gain
        return {"years": rows, "gains": groups, "leaderboard": self.leaderboard()}


def firm_gains(trades: list[dict[str, Any]], row: int) -> dict[str, float]:
    """A firm's trading in a session: tonnes bought and sold, net tonnes bought, and
    what it paid net (CNY; negative when it earned)."""
    bought = sold = 0
    paid = 0.0
    for t in trades:
        if t["buyer"] == row:
            bought += t["quantity"]
            paid += t["quantity"] * t["price"]
        if t["seller"] == row:
            sold += t["quantity"]
            paid -= t["quantity"] * t["price"]
    return {"bought": bought, "sold": sold, "net_bought": bought - sold, "net_paid": paid}


def adopt_options(model: CarbonMarketModel, agent: Firm, year: int, chosen: list[int]
                  ) -> tuple[list[int], list[int]]:
    """Adopt a student's chosen options in ``year`` as the agent's review would: cheapest
    first, each when its instalments fit the capital budget of the years it is paid in.

    Returns:
        The options adopted, and those refused for the budget.
    """
    row = agent.row
    firms = model.firms
    fo = firms.options
    open_ = fo.valid[row] & (fo.adopted_year[row] < 0)
    reduction = fo.reduction[row]
    intensity = float(firms.baseline_intensity[row]
                      * np.prod(1.0 - reduction[fo.valid[row] & ~open_]))
    output = float(firms.base_output[row])
    budget = agent.capital_budget()
    due = model.capital_due[row]
    col = model.year_index(year)
    adopted, refused = [], []
    for k in sorted((k for k in chosen if open_[k]), key=lambda k: float(fo.cost[row, k])):
        tonnes = output * intensity * float(reduction[k])
        build = max(int(fo.lead_time[row, k]), 1)
        instalment = float(fo.capital_cost[row, k]) * tonnes / build
        if (due[col: col + build] + instalment > budget * (1 + 1e-12)).any():
            refused.append(k)
            continue
        due[col: col + build] += instalment
        fo.adopted_year[row, k] = year
        intensity *= 1.0 - float(reduction[k])
        adopted.append(k)
    n_years = model.fy["investment"].shape[1]
    model.fy["investment"][row, col:] = due[col:n_years]
    return adopted, refused


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


__all__ = ["ClassroomError", "ClassroomSession", "LiveDay", "ScenarioError"]
