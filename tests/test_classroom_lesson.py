"""A recorded lesson on the Market page: ``etsim dashboard --lesson DIR`` opens an
exported classroom session, and the page replays its days with the students' orders and
trades named. Also the page's choice of the day to show after recording one.

The lesson is made here: two students trade during the day against the agents and
with each other, the lesson ends and is exported. The browser test runs Debian's
Chromium under Playwright, as test_dashboard_e2e.py does (skipped without it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_dashboard_e2e import SCREENSHOTS, _free_port, browser  # noqa: F401

from etsim.dashboard import book
from etsim.dashboard.classroom import lessons
from etsim.dashboard.classroom.engine import ClassroomError, ClassroomSession
from etsim.experiments.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRADING_DAY = 401  # 2 September 2026: firms hold quota (tests/test_classroom.py)
TIMEOUT_MS = 60_000  # bounds a wait for something that never comes; not a budget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The Market page's module (Dash registers pages only once an app exists)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("ETSIM_DASHBOARD_CACHE", str(tmp_path_factory.mktemp("cache")))
    from etsim.dashboard.app import create_app

    create_app()
    from etsim.dashboard.pages import market as page

    yield page
    patch.undo()


@pytest.fixture(scope="module")
def lesson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported lesson: Ada and Ben trade for three days, then the agents finish."""
    clock = Clock()
    session = ClassroomSession(seats=2, pace=0, clock=clock)
    ada, ben = (session.join(session.join_code, name)["token"] for name in ("Ada", "Ben"))
    session.step(TRADING_DAY)
    session.resume()
    for _ in range(3):
        clock.now += 20  # a third of the day's agents' orders have come
        session.tick()
        low, high = session.model.session.listed_band()
        for token, side, price in ((ada, "sell", low), (ben, "buy", high)):
            try:
                session.place_order(token, side, 40, price, keep=False)
            except ClassroomError:
                pass
        session.step()
    session.finish()
    out = session.export(tmp_path_factory.mktemp("lessons") / "lesson-classroom")
    return out


def test_a_lesson_opens_on_the_students_day_with_their_orders_named(lesson: Path,
                                                                     market: Any) -> None:
    folder = str(lesson)
    options, value, years, year, label, *_ = market.choices(None, folder)
    assert "Ada" in str(label) and "Ben" in str(label)
    marked = [o for o in options if o["label"].endswith("students traded")]
    assert len(marked) == 3 and value == marked[0]["value"]  # the students' first day
    assert year in [o["value"] for o in years]
    log = pd.read_parquet(lesson / "order_log.parquet")
    agent_orders = 0
    for option in marked:
        events = market._events_for(None, option["value"], folder)
        date = f"{events['date'].iloc[0]:%Y-%m-%d}"
        entered = log[(log["event"] == "enter") & (log["by"] == "student")
                      & (log["date"] == date) & (log["session"] == "continuous")
                      & (log["book_id"] >= 0)]
        students = events[events["trader_label"].fillna("").str.startswith("student")]
        # every student order of the day is named, and only those
        assert sorted(students["order_id"].astype(int)) == \
            sorted(entered["book_id"].astype(int))
        assert set(students["trader_label"].str.split(" ").str[1]) <= {"Ada", "Ben"}
        agents = events[(events["event"] == "order") & ~events.index.isin(students.index)]
        assert agents["trader_label"].str.startswith("agent").all()
        agent_orders += len(agents)
    assert agent_orders > 0
    events = market._events_for(None, value, folder)
    students = events[events["trader_label"].fillna("").str.startswith("student")]
    # Ada's ask at the bottom of the band met Ben's bid, or agents': the tape names them
    ladder, depth, tape, _, event, status = market.render_book(len(events), value, None,
                                                               folder)
    parties = {row["buyer"] for row in tape} | {row["seller"] for row in tape}
    assert any(p.startswith("student Ada") for p in parties)
    assert "Students' orders so far 2" in status
    first = int(students.index[0]) + 1
    text = market.render_book(first, value, None, folder)[4]
    assert text.startswith("Student ") and "sends an order" in text
    # the curves come from the lesson's own tables
    fig, note = market.render_curves(year, None, folder)
    assert fig.data and str(year) in note


def test_a_recorded_day_without_trades_shows_the_nearest_day_with_trades(market: Any
                                                                           ) -> None:
    sessions = pd.DataFrame({
        "date": pd.to_datetime(["2026-03-02", "2026-03-05", "2026-03-12", "2026-03-20"]),
        "session": "continuous", "events": 9, "orders": 5, "trades": [2, 0, 0, 4],
        "limit_down": 90.0, "limit_up": 110.0})
    pick, note = market.pick_session(sessions, "2026-03-05")
    assert f"{pick['date']:%Y-%m-%d}" == "2026-03-02"  # 3 days before beats 15 after
    assert note == ("2026-03-05 had no trade: showing 2026-03-02, the recorded day with "
                    "trades nearest to it.")
    pick, note = market.pick_session(sessions, "2026-03-11")  # the 12th: nearer the 20th
    assert f"{pick['date']:%Y-%m-%d}" == "2026-03-20" and "2026-03-12 had no trade" in note
    pick, note = market.pick_session(sessions, "2026-03-19")  # the next trading day traded
    assert f"{pick['date']:%Y-%m-%d}" == "2026-03-20" and note == ""
    quiet = sessions.assign(trades=0)
    pick, note = market.pick_session(quiet, "2026-03-05")
    assert f"{pick['date']:%Y-%m-%d}" == "2026-03-05"
    assert note == "No recorded day has a trade: showing 2026-03-05, which had none."


def test_dashboard_lesson_argument_is_checked(lesson: Path, tmp_path: Path, capsys) -> None:
    assert main(["dashboard", "--lesson", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    run = tmp_path / "a-run"
    run.mkdir()
    for name in lessons.NEEDED:
        (run / name).write_bytes((lesson / name).read_bytes())
    record = json.loads((run / "run.json").read_text())
    del record["classroom"]
    (run / "run.json").write_text(json.dumps(record))
    assert main(["dashboard", "--lesson", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no 'classroom' section" in err and err.count("\n") == 1
    (lesson.parent / "half").mkdir()
    assert main(["dashboard", "--lesson", str(lesson.parent / "half")]) == 2
    assert "run.json is missing" in capsys.readouterr().err


def test_lessons_in_runs_are_offered(lesson: Path, tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "not-a-lesson").mkdir()
    copy = tmp_path / "runs" / "lesson-copy"
    copy.mkdir()
    for path in lesson.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    values = [o["value"] for o in lessons.lesson_options(tmp_path)]
    assert values == ["", str(copy)]


@pytest.fixture
def lesson_dashboard(lesson: Path, tmp_path: Path) -> Iterator[str]:
    """``etsim dashboard --lesson DIR`` on a free loopback port, once it answers."""
    port = _free_port()
    log_path = tmp_path / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "etsim", "dashboard", "--port", str(port), "--lesson",
         str(lesson)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, ETSIM_DASHBOARD_CACHE=str(tmp_path / "cache"),
                 PYTHONUNBUFFERED="1"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a bound on the wait for start-up, not a budget
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=2):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the dashboard did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_market_page_replays_a_lesson(lesson_dashboard: str, browser: Any  # noqa: F811
                                          ) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(lesson_dashboard + "/market")
    page.wait_for_function("() => document.querySelector('#market-run-label') && "
                           "document.querySelector('#market-run-label').innerText"
                           ".includes('Lesson lesson-classroom')")
    page.wait_for_function("() => document.querySelector('#market-session').innerText"
                           ".includes('students traded')")
    page.wait_for_function("() => document.querySelector('#market-status').innerText"
                           ".startsWith('Step 0')")
    # on through the day, order by order, until a student's order arrives
    for _ in range(200):
        page.click("#market-next-order")
        page.wait_for_function("(n) => !document.querySelector('#market-status').innerText"
                               ".startsWith('Step ' + n + ' ')",
                               arg=page.inner_text("#market-status").split(" ")[1])
        if page.inner_text("#market-event").startswith("Student"):
            break
    assert page.inner_text("#market-event").startswith("Student ")
    assert "Students' orders so far 1" in page.inner_text("#market-status")
    page.click("#market-next-trade")  # a student's trade is named on the tape
    for _ in range(50):
        if "student" in page.inner_text("#market-tape"):
            break
        page.click("#market-next-trade")
        page.wait_for_timeout(300)
    assert "student" in page.inner_text("#market-tape")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "market-lesson.png"), full_page=True)
    assert errors == []
    context.close()


def test_book_describes_a_named_trade() -> None:
    text = book.describe_event({"event": "trade", "buyer_id": 3, "seller_id": 7,
                                "quantity": 40, "price": 95.5,
                                "buyer_label": "student Ada (firm 3)",
                                "seller_label": "agent (firm 7)"})
    assert text == ("Trade: student Ada (firm 3) buys 40 t from agent (firm 7) at 95.50 "
                    "CNY/t, the resting order's price.")
