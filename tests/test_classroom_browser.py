"""Classroom mode in a real browser: a teacher and three students, each in their own
browser context, on a server started with ``python -m etsim classroom``.

The students join with the code, two trade with each other, one with the agents, and
the teacher's leaderboard shows it. Debian's Chromium under Playwright, as in
test_dashboard_e2e.py (skipped without it, failed when $ETSIM_REQUIRE_BROWSER is set).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_dashboard_e2e import SCREENSHOTS, _free_port, browser  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 60_000  # bounds a wait for something that never comes; not a budget
TRADING_DAY = 401  # 2 September 2026: firms hold quota (tests/test_classroom.py)


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``etsim classroom`` on a free loopback port, 4 seats, stepped by the teacher."""
    folder = tmp_path_factory.mktemp("classroom")
    port = _free_port()
    log_path = folder / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "etsim", "classroom", "--port", str(port), "--seats", "4",
         "--pace", "0", "--out", str(folder / "lesson")],
        cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=log,
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120  # a bound on a wait, not a budget
    found = None
    while found is None:
        text = log_path.read_text()
        token = re.search(r"teacher\?token=(\S+)", text)
        code = re.search(r"code ([A-Z0-9]{6})", text)
        if token and code:
            found = {"url": f"http://127.0.0.1:{port}", "token": token.group(1),
                     "code": code.group(1), "out": str(folder / "lesson")}
        elif proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("the classroom server did not start:\n" + text[-3000:])
        else:
            time.sleep(0.2)
    while True:  # the announcement comes just before the server listens
        try:
            with urllib.request.urlopen(found["url"] + "/join", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the classroom server does not answer")
            time.sleep(0.2)
    yield found
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _tab(browser: Any, url: str) -> tuple[Any, Any, list[str]]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return context, page, errors


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _order(page: Any, side: str, quantity: int, price: float, keep: bool = True) -> str:
    page.select_option("#st-side", side)
    page.fill("#st-qty", str(quantity))
    page.fill("#st-price", f"{price:.2f}")
    if page.is_checked("#st-keep") != keep:
        page.click("#st-keep")
    page.click("#st-submit")
    page.wait_for_function("() => document.getElementById('st-message').textContent !== ''")
    message = page.text_content("#st-message")
    page.evaluate("() => { document.getElementById('st-message').textContent = ''; }")
    return message


def _step(teacher: Any, days: int, expected_day: int) -> None:
    teacher.fill("#te-step-days", str(days))
    teacher.click("#te-step")
    teacher.wait_for_function(
        "(day) => document.getElementById('te-date').textContent.includes(`day ${day} `)",
        arg=expected_day + 1)


def test_a_class_trades_with_each_other_and_with_agents(classroom, browser) -> None:  # noqa: F811
    url = classroom["url"]
    t_context, teacher, t_errors = _tab(browser, f"{url}/teacher?token={classroom['token']}")
    teacher.wait_for_function(
        "(code) => document.getElementById('te-code').textContent === code",
        arg=classroom["code"])
    students = []
    for name in ("Ada", "Ben", "Cai"):
        context, page, errors = _tab(browser, f"{url}/join?code={classroom['code']}")
        page.fill("#join-name", name)
        page.click("#join-submit")
        page.wait_for_url(f"{url}/student")
        page.wait_for_function(
            "(name) => document.getElementById('st-title').textContent.startsWith(name)",
            arg=name)
        students.append((context, page, errors))
    # the teacher sees the three students in their seats
    teacher.wait_for_function("() => document.querySelectorAll('#te-seats tr').length === 4")
    for name in ("Ada", "Ben", "Cai"):
        teacher.wait_for_selector(f"#te-seats td:text-is('{name}')")
    # a student cannot use the teacher's page with their own token
    _, intruder, _ = _tab(browser, f"{url}/teacher?token=not-the-teacher")
    intruder.wait_for_function(
        "() => document.getElementById('te-message').textContent.includes('teacher')")

    _step(teacher, TRADING_DAY, TRADING_DAY)
    ada, ben, cai = (s[1] for s in students)
    ben.wait_for_function("() => document.getElementById('st-date').textContent"
                          f".includes('day {TRADING_DAY + 1} ')")
    low, high = (_number(x) for x in ben.text_content("#st-band").split(" - "))
    # a bad order gets a message naming the field
    assert "must be within today's band" in _order(ben, "buy", 10, high + 5)
    # Ada offers at the bottom of the band, Ben bids at the top: they trade at once (the
    # clock is stopped, so no agent order has come yet today)
    assert "rests in the book" in _order(ada, "sell", 99_999, low, keep=False)
    assert "99,999 t traded at once" in _order(ben, "buy", 99_999, high, keep=False)
    ben.wait_for_selector("#st-trades td:text-is('student')")
    _step(teacher, 1, TRADING_DAY + 1)
    # Cai bids at the top of the day's band (it moved with Ada's and Ben's trade) and
    # keeps the bid: agents' offers fill it over the next days
    cai.wait_for_function("() => document.getElementById('st-date').textContent"
                          f".includes('day {TRADING_DAY + 2} ')")
    high = _number(cai.text_content("#st-band").split(" - ")[1])
    assert "accepted" in _order(cai, "buy", 500, high, keep=True)
    cai.wait_for_selector("#st-orders button[data-cancel]")
    for day in range(TRADING_DAY + 2, TRADING_DAY + 22):
        _step(teacher, 1, day)
        if cai.query_selector("#st-trades td:text-is('agent')"):
            break
    cai.wait_for_selector("#st-trades td:text-is('agent')")
    # the leaderboard shows what Ben bought and what Ada sold
    teacher.wait_for_function("""() => {
        const rows = Array.from(document.querySelectorAll('#te-leaderboard tr'));
        const get = (name, col) => {
            const row = rows.find(r => r.cells[0].textContent === name);
            return row ? Number(row.cells[col].textContent.replace(/,/g, '')) : 0; };
        return get('Ben', 2) > 0 && get('Ada', 3) > 0 && get('Cai', 2) > 0; }""")
    SCREENSHOTS.mkdir(exist_ok=True)
    teacher.screenshot(path=str(SCREENSHOTS / "classroom-teacher.png"), full_page=True)
    ben.screenshot(path=str(SCREENSHOTS / "classroom-student.png"), full_page=True)
    # a reload keeps the firm (the token is in the browser's local storage)
    ben_firm = ben.text_content("#st-title")
    ben.reload()
    ben.wait_for_function(
        "(title) => document.getElementById('st-title').textContent === title",
        arg=ben_firm)
    # the teacher ends the lesson: the debrief and the export
    teacher.click("#te-finish")
    teacher.wait_for_selector("#te-debrief table", timeout=180_000)
    teacher.click("#te-export")
    teacher.wait_for_function(
        "() => document.getElementById('te-message').textContent.includes('exported')")
    assert (Path(classroom["out"]) / "order_log.csv").is_file()
    state = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{url}/api/teacher/state",
        headers={"X-Classroom-Token": classroom["token"]})).read())
    assert state["status"] == "finished"
    assert all(not errors for _, _, errors in students) and not t_errors
    for context, _, _ in students:
        context.close()
    t_context.close()
