"""Classroom mode: the live session engine, its API and the replay of a recorded session.

The session runs the shipped ``classroom`` scenario with a fake clock, so pace and
leaving are tested without waiting; the API is driven through Flask's test client.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etsim.dashboard.classroom.engine import ClassroomError, ClassroomSession, classroom_model
from etsim.dashboard.classroom.replay import replay_folder
from etsim.dashboard.classroom.server import create_app

# The classroom scenario issues its first quota in April 2026 (pre-allocation of 2025):
# day 401 is 2 September 2026, after the true-up of the 1st, when firms hold quota and
# trade for the 2025 deadline.
TRADING_DAY = 401


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def trading_session() -> tuple[ClassroomSession, Clock, list[str]]:
    """Three students in the market on a day when firms hold quota."""
    clock = Clock()
    session = ClassroomSession(seats=3, pace=0, leave_after=30, clock=clock)
    tokens = [session.join(session.join_code, f"student {i}")["token"] for i in range(3)]
    session.step(TRADING_DAY)
    return session, clock, tokens


def _api(session: ClassroomSession):
    app = create_app(session)
    app.testing = True
    return app.test_client()


def test_seats_cover_the_sectors_and_the_class_fills() -> None:
    session = ClassroomSession(seats=3, pace=0)
    assert [seat.sector for seat in session.seats] == ["steel", "cement", "aluminium"]
    for i in range(3):
        session.join(session.join_code.lower(), f"s{i}")  # the code is not case-sensitive
    with pytest.raises(ClassroomError, match="the class is full") as full:
        session.join(session.join_code, "late")
    assert full.value.status == 409
    with pytest.raises(ClassroomError, match="code"):
        session.join("WRONG1", "x")
    with pytest.raises(ClassroomError, match="--seats must be from 1 to 20"):
        ClassroomSession(seats=21)


def test_bad_orders_get_a_message_naming_the_field(trading_session) -> None:
    session, _, tokens = trading_session
    client = _api(session)
    low, high = session.model.session.listed_band()
    held = int(session.model.registry.total()[session.seats[0].row])
    assert held > 0  # a firm holds quota by now
    cases = [
        ({"side": "short", "quantity": 1, "price": low}, "side", "'buy' or 'sell'"),
        ({"side": "buy", "quantity": 0, "price": low}, "quantity", "whole tonnes"),
        ({"side": "buy", "quantity": 2.5, "price": low}, "quantity", "whole tonnes"),
        ({"side": "buy", "quantity": 10**9, "price": low}, "quantity", "1 to 99,999 for "
         "the listed session, or 100,000 to"),
        ({"side": "buy", "quantity": 1, "price": high + 1}, "price", "today's band"),
        ({"side": "buy", "quantity": 1, "price": low - 0.01}, "price", "today's band"),
        ({"side": "buy", "quantity": 1, "price": low + 0.005}, "price", "tick"),
        ({"side": "buy", "quantity": 1, "price": "cheap"}, "price", "a number"),
        ({"side": "buy", "quantity": 99_999, "price": high, "colour": "red"}, "colour",
         "not an order field"),
    ]
    for body, field, words in cases:
        response = client.post("/api/student/orders", json=body,
                               headers={"X-Classroom-Token": tokens[0]})
        assert response.status_code == 400, body
        assert response.json["field"] == field, body
        assert words in response.json["error"], (body, response.json)
    # holdings: offers beyond what the firm holds, less what it offers already
    offers = [session.place_order(tokens[0], "sell", 99_999, high)["order_id"]
              for _ in range(held // 99_999)]
    left = held - 99_999 * len(offers)
    response = client.post("/api/student/orders",
                           json={"side": "sell", "quantity": left + 1, "price": high},
                           headers={"X-Classroom-Token": tokens[0]})
    assert response.status_code == 400 and response.json["field"] == "quantity"
    assert f"you hold {held:,} t" in response.json["error"]
    assert f"sell at most {left:,} t" in response.json["error"]
    for order_id in offers:
        session.cancel(tokens[0], order_id)
    # the budget: bids beyond what the firm may spend on quota this year
    budget = float(session.model.positions.carbon_budget()[session.seats[0].row])
    too_many = int(budget // high) + 1
    if too_many < 100_000:
        response = client.post("/api/student/orders",
                               json={"side": "buy", "quantity": too_many, "price": high},
                               headers={"X-Classroom-Token": tokens[0]})
        assert response.status_code == 400 and "carbon budget" in response.json["error"]
    assert not session.working(session.seats[0])  # nothing of it was queued


def test_a_student_acts_only_for_their_own_firm(trading_session) -> None:
    session, _, tokens = trading_session
    client = _api(session)
    low, high = session.model.session.listed_band()
    mine = client.post("/api/student/orders", json={"side": "buy", "quantity": 5,
                                                     "price": low},
                       headers={"X-Classroom-Token": tokens[1]})
    assert mine.status_code == 200
    order_id = mine.json["order_id"]
    # another student cannot cancel it, and does not see it
    other = client.delete(f"/api/student/orders/{order_id}",
                          headers={"X-Classroom-Token": tokens[2]})
    assert other.status_code == 404 and other.json["field"] == "order_id"
    view = client.get("/api/student/state", headers={"X-Classroom-Token": tokens[2]}).json
    assert all(o["order_id"] != order_id for o in view["orders"])
    assert view["firm"]["firm_id"] == session.seats[2].firm_id
    assert "leaderboard" not in view and "seats" not in view  # no other firm's account
    # no token, a made-up token, or a student's token on the teacher's controls
    assert client.get("/api/student/state").status_code == 401
    assert client.get("/api/student/state",
                      headers={"X-Classroom-Token": "made-up"}).status_code == 401
    for path in ("/api/teacher/pause", "/api/teacher/resume", "/api/teacher/step",
                 "/api/teacher/finish"):
        refused = client.post(path, json={}, headers={"X-Classroom-Token": tokens[0]})
        assert refused.status_code == 403, path
    assert client.get("/api/teacher/state",
                      headers={"X-Classroom-Token": tokens[0]}).status_code == 403
    assert client.get("/api/teacher/order_log.csv").status_code == 403
    # the owner cancels it
    ok = client.delete(f"/api/student/orders/{order_id}",
                       headers={"X-Classroom-Token": tokens[1]})
    assert ok.status_code == 200 and ok.json["status"] == "cancelled"
    again = client.delete(f"/api/student/orders/{order_id}",
                          headers={"X-Classroom-Token": tokens[1]})
    assert again.status_code == 409
    # the teacher's token works on the teacher's controls only
    teacher = client.get("/api/teacher/state",
                         headers={"X-Classroom-Token": session.teacher_token})
    assert teacher.status_code == 200 and len(teacher.json["leaderboard"]) == 3
    assert client.get("/api/student/state", headers={
        "X-Classroom-Token": session.teacher_token}).status_code == 401


def test_an_order_crossing_the_students_own_order_is_refused(trading_session) -> None:
    session, _, tokens = trading_session
    low, high = session.model.session.listed_band()
    sell = session.place_order(tokens[0], "sell", 3, high)
    with pytest.raises(ClassroomError, match="would trade with your own sell") as err:
        session.place_order(tokens[0], "buy", 3, high)
    assert err.value.field == "price"
    session.cancel(tokens[0], sell["order_id"])


def test_students_trade_with_each_other_and_with_agents(trading_session) -> None:
    """A student's ask at the top of the band and another's bid there meet in the book;
    quota and cash move between their firms as the trade says."""
    session, clock, tokens = trading_session
    model = session.model
    seller, buyer = session.seats[0], session.seats[1]
    held_before = model.registry.total()[[seller.row, buyer.row]].copy()
    cash_before = model.firms.cash[[seller.row, buyer.row]].copy()
    low, high = model.session.listed_band()
    # a large ask at the bottom of the band, then a large bid at the top: agents may
    # take part of the ask first, but the bid meets what is left of it
    clock.now += 1
    session.place_order(tokens[0], "sell", 99_999, low, keep=False)
    clock.now += 1
    bid = session.place_order(tokens[1], "buy", 99_999, high, keep=False)
    day = model.day
    clock.now += 1
    session.step()
    between = [t for t in session.trades if t["day"] == day
               and (t["buyer"], t["seller"]) == (buyer.row, seller.row)]
    assert between and all(t["price"] == low for t in between)  # the resting ask's price
    bought = sum(t["quantity"] for t in session.trades
                 if t["day"] == day and t["buyer"] == buyer.row)
    sold = sum(t["quantity"] for t in session.trades
               if t["day"] == day and t["seller"] == seller.row)
    # each order's fills are the firm's trades of the day (one order each)
    order = session.student_orders[bid["order_id"]]
    assert order.filled == bought > 0 and order.remaining == 99_999 - bought
    assert order.status == ("filled" if bought == 99_999 else "expired")
    held_after = model.registry.total()[[seller.row, buyer.row]]
    assert held_after[0] == held_before[0] - sold and held_after[1] == held_before[1] + bought
    paid = sum(t["quantity"] * t["price"] for t in session.trades
               if t["day"] == day and t["buyer"] == buyer.row)
    assert model.firms.cash[buyer.row] == pytest.approx(cash_before[1] - paid)
    assert all(low <= t["price"] <= high for t in session.trades if t["day"] == day)
    # the log says who traded, and the leaderboard counts it
    log = session.order_log()
    trades = log[(log["event"] == "trade") & (log["day"] == day)]
    assert (trades["buyer_by"] == "student").any()
    board = {r["seat"]: r for r in session.leaderboard()}
    assert board[buyer.index]["bought_t"] >= bought
    # with agents: a student's bid at the top of the band fills from agents' asks over
    # the next days (no student sells then)
    before = board[buyer.index]["bought_t"]
    session.place_order(tokens[1], "buy", 50, model.session.listed_band()[1], keep=True)
    for _ in range(20):
        clock.now += 1
        session.step()
    agent_sales = [t for t in session.trades if t["day"] > day and t["buyer"] == buyer.row
                   and t["seller_by"] == "agent"]
    assert agent_sales, "no agent sold to the student's bid at the top of the band"
    assert session.leaderboard()[0]["gain_from_trade"] is not None
    assert {r["seat"]: r for r in session.leaderboard()}[buyer.index]["bought_t"] > before


def test_a_leaver_is_taken_over_and_gets_the_firm_back(trading_session) -> None:
    session, clock, tokens = trading_session
    model = session.model
    seat = session.seats[2]
    session.seat_for(tokens[2])
    for token in tokens[:2]:
        session.seat_for(token)
    low, _ = model.session.listed_band()
    order = session.place_order(tokens[2], "buy", 1, low, keep=True)
    clock.now += 31  # no word from anyone for longer than leave_after
    session.tick()
    assert seat.control == "agent" and not session.firms[seat.row]
    assert session.student_orders[order["order_id"]].status == "cancelled"
    # the agent trades for the firm again from the next open: its strategy places
    # its orders, none is the student's
    session.step()
    day = model.day
    session.step()
    log = session.order_log()
    entered = log[(log["event"] == "enter") & (log["day"] == day)
                  & (log["firm_id"] == seat.firm_id)]
    assert (entered["by"] != "student").all()
    # the token gives the firm back, with a message
    view = session.student_view(tokens[2])
    assert view["firm"]["control"] == "student" and session.firms[seat.row]
    assert any("yours again" in m for m in view["messages"])
    assert view["firm"]["firm_id"] == seat.firm_id


def test_pace_closes_a_day_and_pause_stops_the_clock() -> None:
    clock = Clock()
    session = ClassroomSession(seats=1, pace=5, clock=clock)
    clock.now += 10
    session.tick()
    assert session.model.day == 0  # paused at the start
    session.resume()
    clock.now += 4.9
    session.tick()
    assert session.model.day == 0
    clock.now += 0.2
    session.tick()
    assert session.model.day == 1
    session.pause()
    clock.now += 60
    session.tick()
    assert session.model.day == 1


def test_the_students_abatement_choice_is_adopted_in_january() -> None:
    session = ClassroomSession(seats=1, pace=0)
    token = session.join(session.join_code, "a")["token"]
    view = session.student_view(token)
    cheapest = min(view["options"], key=lambda o: o["cost_per_t"])["option"]
    with pytest.raises(ClassroomError, match="options: your firm has options"):
        session.choose_abatement(token, [99])
    session.choose_abatement(token, [cheapest])
    session.step()  # 1 January 2025: the review
    row = session.seats[0].row
    fo = session.model.firms.options
    log = session.order_log()
    adopted = log[log["event"] == "adopt"]
    assert len(adopted) == 1
    if adopted["options"].iloc[0]:
        assert fo.adopted_year[row, cheapest] == 2025
        assert session.model.fy["investment"][row].sum() > 0
    else:  # over the capital budget: said so, nothing adopted
        assert "capital budget" in adopted["note"].iloc[0]
        assert fo.adopted_year[row, cheapest] == -1


def test_without_students_the_class_trades_as_the_model_does() -> None:
    """One matching rule: a lesson nobody joins, its days opened and closed by the class
    (agents' orders arriving over the day, the block session at the open), gives the
    tables of the model's own run, trade for trade and order-book event for event."""
    session = ClassroomSession(seats=2, pace=0)
    session.finish()
    plain = classroom_model("classroom", None).run().results()
    for name in ("trades", "market_daily", "book_events", "firm_years"):
        assert session.tables[name].equals(plain[name]), name
    assert session.tables["market_daily"]["block_volume"].sum() > 0  # block days too


def _resting_agent_asks(session: ClassroomSession) -> list:
    return session.student_view(session.seats[0].token)["asks"]


def test_a_students_crossing_order_fills_on_arrival() -> None:
    """Continuous trading: the agents' orders arrive as the clock runs; a student's bid
    at the best ask trades at once, at the resting ask's price, and the student sees the
    fill in the answer; a student's ask is then hit by another student's bid at once."""
    clock = Clock()
    session = ClassroomSession(seats=2, pace=0, clock=clock)
    tokens = [session.join(session.join_code, f"s{i}")["token"] for i in range(2)]
    session.step(TRADING_DAY)
    session.resume()
    asks: list = []
    for _ in range(30):  # days until agents rest an ask during the day
        clock.now += 59  # most of the day's agents' orders have arrived
        session.tick()
        asks = _resting_agent_asks(session)
        if asks:
            break
        session.step()
    assert asks, "no agent ask rested in the book in 30 days"
    price, tonnes = asks[0]
    day = session.model.day
    before = len(session.trades)
    held = session.student_view(tokens[1])["firm"]["holdings"]
    ack = session.place_order(tokens[1], "buy", 1, price, keep=False)
    assert ack["filled"] == 1 and ack["status"] == "filled" and ack["remaining"] == 0
    trade = session.trades[before]
    assert (trade["buyer"], trade["price"], trade["quantity"], trade["day"]) == \
        (session.seats[1].row, price, 1, day)
    assert trade["seller_by"] == "agent" and trade["buyer_by"] == "student"
    view = session.student_view(tokens[1])
    assert view["trades"][-1]["price"] == price and view["open"]
    assert view["asks"][0] == [price, tonnes - 1] or tonnes == 1
    # the student's page counts the tonne at once; it settles at the close
    assert view["firm"]["holdings"] == held + 1
    session.pause()  # the next day opens with the clock stopped: no agent order yet
    session.step()
    assert session.model.registry.total()[session.seats[1].row] == held + 1
    assert session.model.daily["trades"][day] >= 1
    # student with student in the empty book: the resting ask's price, at once
    low, high = session.model.session.listed_band()
    ask = session.place_order(tokens[0], "sell", 2, low, keep=False)
    assert ask["status"] == "working" and ask["filled"] == 0
    bid = session.place_order(tokens[1], "buy", 2, high, keep=False)
    assert bid["filled"] == 2 and session.trades[-1]["price"] == low
    assert session.student_orders[ask["order_id"]].status == "filled"


def test_block_orders_trade_in_the_block_session_at_the_next_open() -> None:
    clock = Clock()
    session = ClassroomSession(seats=3, pace=0, clock=clock)
    tokens = [session.join(session.join_code, f"s{i}")["token"] for i in range(3)]
    session.step(TRADING_DAY)
    model = session.model
    market = model.scenario.market
    seller = max(range(3), key=lambda i: model.registry.total()[session.seats[i].row])
    buyer = (seller + 1) % 3
    held = int(model.registry.total()[session.seats[seller].row])
    assert held >= market.block_min_t, "the seller needs a block of quota"
    last = model.daily.last_close
    low, high = session.student_view(tokens[0])["block_band"]
    assert (low, high) == (round(last * 0.7, 2), round(last * 1.3, 2))
    listed_high = model.session.listed_band()[1]
    with pytest.raises(ClassroomError, match="block session's band") as err:
        session.place_order(tokens[seller], "sell", market.block_min_t, high + 0.01)
    assert err.value.field == "price"
    with pytest.raises(ClassroomError, match="100,000 to") as err:
        session.place_order(tokens[seller], "sell", held + 10**9, low)
    assert err.value.field == "quantity"
    # a block beyond the listed band but inside the block band is accepted
    price = round(listed_high + 0.05, 2)
    assert price <= high
    sell = session.place_order(tokens[seller], "sell", market.block_min_t, price)
    assert sell["block"] and sell["status"] == "working" and "block session" in sell["note"]
    buy = session.place_order(tokens[buyer], "buy", market.block_min_t + 5, high)
    assert buy["filled"] == 0
    day = model.day
    session.step()  # the next open runs the block session first
    block = [t for t in session.trades if t["session"] == "block" and t["day"] == day + 1]
    assert block and block[0]["price"] == price
    assert block[0]["quantity"] == market.block_min_t
    assert session.student_orders[sell["order_id"]].status == "filled"
    rest = session.student_orders[buy["order_id"]]
    assert rest.filled == market.block_min_t
    assert rest.status == "filled" or rest.remaining <= 5  # 5 t went on to the listed book
    session.step()
    assert model.daily["block_volume"][day + 1] >= market.block_min_t
    assert model.registry.total()[session.seats[buyer].row] >= market.block_min_t


def test_a_recorded_session_replays_to_the_same_trades(tmp_path: Path) -> None:
    """Students trade during the day against the agents' flow and each other, cancel,
    place block orders, one leaves and is taken over, one chooses abatement; the lesson
    ends and is exported; the order log replayed gives the same trades and log."""
    clock = Clock()
    session = ClassroomSession(seats=3, pace=4, clock=clock)
    tokens = [session.join(session.join_code, f"s{i}")["token"] for i in range(3)]
    options = session.student_view(tokens[2])["options"]
    session.choose_abatement(tokens[2], [options[0]["option"]])
    session.step(TRADING_DAY)
    session.resume()
    rng = np.random.default_rng(5)
    for day in range(15):
        for i, token in enumerate(tokens):
            clock.now += float(rng.random())
            session.tick()
            low, high = session.model.session.listed_band()
            price = round(float(rng.uniform(low, high)), 2)
            try:
                if i == 0 or (i == 1 and day % 2):
                    ack = session.place_order(token, "sell", int(rng.integers(1, 40)), price,
                                              keep=bool(day % 3))
                else:
                    ack = session.place_order(token, "buy", int(rng.integers(1, 40)), price,
                                              keep=bool(day % 2))
                if ack["status"] == "working" and rng.random() < 0.3:
                    session.cancel(token, ack["order_id"])
                if day == 3 and i == 0:
                    session.place_order(token, "sell", 100_000, high)
                if day == 3 and i == 1:
                    session.place_order(token, "buy", 100_000, high)
            except ClassroomError:
                pass  # an order crossing the student's own: refused, as in class
        if day == 7:
            clock.now += 60  # everyone is gone for a minute: agents take over
            session.tick()
            for token in tokens[:2]:
                session.seat_for(token)  # two come back, mid-day
        clock.now += 2
        session.tick()
    session.finish()
    out = session.export(tmp_path / "lesson")
    assert (out / "order_log.csv").is_file() and (out / "trades.parquet").is_file()
    log = pd.read_parquet(out / "order_log.parquet")
    assert (log["event"] == "order").sum() == len(session.student_orders)
    student_trades = log[(log["event"] == "trade") & ((log["buyer_by"] == "student")
                                                      | (log["seller_by"] == "student"))]
    assert len(student_trades) > 0
    assert (log["session"] == "block").any() and (log["event"] == "cancel").any()
    replayed = replay_folder(out)
    assert replayed.tables["trades"].equals(session.tables["trades"])
    columns = ["day", "buyer_id", "seller_id", "price", "quantity", "buyer_by", "seller_by"]
    trades = [frame.loc[frame["event"] == "trade", columns].reset_index(drop=True)
              for frame in (log, replayed.order_log())]
    assert trades[1].equals(trades[0])
    entered = [frame.loc[frame["event"] == "enter", ["day", "firm_id", "book_id", "session"]
                         ].reset_index(drop=True) for frame in (log, replayed.order_log())]
    assert entered[1].equals(entered[0])
    with pytest.raises(ClassroomError, match="exists already"):
        session.export(out)


def test_the_debrief_sets_market_and_equilibrium_prices_side_by_side() -> None:
    session = ClassroomSession(seats=2, pace=0)
    session.join(session.join_code, "a")
    with pytest.raises(ClassroomError, match="has not finished"):
        session.export("unused")
    session.finish()
    debrief = session.teacher_view()["debrief"]
    years = {row["year"]: row for row in debrief["years"]}
    assert set(years) == {2025, 2026}
    # a year without a listed trade has no mean price (no carried-forward closes)
    daily = session.tables["market_daily"]
    closes = daily.groupby("year")["close"].count()
    for year, row in years.items():
        if closes.get(year, 0):
            assert row["mean_price"] > 0
        else:
            assert row["mean_price"] is None
        assert row["equilibrium_price"] > 0
        assert row["verified_emissions"] > 0 and row["free_allocation"] > 0
    assert any(row["mean_price"] for row in years.values())
    assert set(debrief["gains"]) == {"students", "agents"}
    with pytest.raises(ClassroomError, match="ended"):
        session.place_order(session.seats[0].token, "buy", 1, 95.0)


def test_teacher_controls_check_their_input(trading_session) -> None:
    session, _, tokens = trading_session
    client = _api(session)
    teacher = {"X-Classroom-Token": session.teacher_token}
    day = session.model.day
    for days in (0, -3, "5", 2.5, 10**6):
        response = client.post("/api/teacher/step", json={"days": days}, headers=teacher)
        assert response.status_code == 400 and response.json["field"] == "days", days
    assert session.model.day == day
    bad_body = client.post("/api/student/orders", data="side=buy",
                           headers={"X-Classroom-Token": tokens[0]})
    assert bad_body.status_code == 400 and bad_body.json["field"] == "body"
    export = client.post("/api/teacher/export", headers=teacher)
    assert export.status_code == 409 and "--out" in export.json["error"]


@pytest.mark.parametrize("args, words", [
    (["--seats", "21"], "--seats must be from 1 to 20"),
    (["--port", "0"], "--port must be from 1 to 65535"),
    (["--pace", "-1"], "--pace must be seconds from 0"),
    (["--leave-after", "1"], "--leave-after must be seconds from 5"),
    (["--seed", "-2"], "--seed must be a whole number >= 0"),
    (["no-such-scenario"], "not found"),
])
def test_bad_classroom_arguments_exit_2_with_one_line(args, words, capsys) -> None:
    from etsim.experiments.cli import main

    assert main(["classroom", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_scenario_with_gtc_orders_is_refused(tmp_path: Path, capsys) -> None:
    from etsim.experiments.cli import main

    text = (Path(__file__).resolve().parents[1] / "scenarios" / "classroom.toml").read_text()
    path = tmp_path / "gtc.toml"
    path.write_text(text.replace("[market]\n", "[market]\norder_expiry = \"gtc\"\n"))
    assert main(["classroom", str(path)]) == 2
    assert "market.order_expiry must be 'day'" in capsys.readouterr().err


def test_the_server_binds_to_loopback_by_default() -> None:
    from etsim.experiments.cli import build_parser

    assert build_parser().parse_args(["classroom"]).host == "127.0.0.1"


def test_the_student_page_shows_the_firms_own_figures(trading_session) -> None:
    session, _, tokens = trading_session
    model = session.model
    seat = session.seats[1]
    view = session.student_view(tokens[1])
    firm = view["firm"]
    state = model.positions.trading_state(model.day)
    assert firm["holdings"] == int(model.registry.total()[seat.row])
    assert firm["position"] == pytest.approx(float(state.position[seat.row]))
    assert view["band"] == list(model.session.listed_band())
    assert view["deadline"]["compliance_year"] == 2025  # the next deadline: end of 2026
    assert firm["obligation_year"] == 2025
    assert firm["free_quota"] == float(model.fy["free_allocation"][seat.row, model.fy.col(2025)])
    assert firm["free_quota"] > 0
    fo = model.firms.options
    assert [o["lead_time_years"] for o in view["options"]] == \
        fo.lead_time[seat.row][fo.valid[seat.row]].tolist()
    assert all(o["cost_per_t"] > 0 for o in view["options"])


def test_views_are_strict_json_on_days_without_a_close(trading_session) -> None:
    """A day without a listed trade has no close: the views send null, never NaN (which
    browsers' JSON.parse refuses, so the pages would stop updating)."""
    session, _, tokens = trading_session
    assert np.isnan(session.model.daily["close"][:session.model.day]).any()
    teacher = session.teacher_view()
    json.dumps(teacher, allow_nan=False)
    json.dumps(session.student_view(tokens[0]), allow_nan=False)
    assert None in teacher["prices"]
