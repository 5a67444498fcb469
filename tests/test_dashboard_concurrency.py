"""Many browser sessions on one dashboard at once: the run queue seen from the browser.

Eight separate browser contexts (each its own session storage, as eight people) open
Explore on one server, choose the small ``classroom`` scenario with their own seed and
firm count, and press Run at about the same moment. The server runs two jobs at a time
(``$ETSIM_DASHBOARD_WORKERS=2``), so most wait in line. Each session must see its place in
line or its progress, then get its own run's charts (its seed and firm count, not
another session's); a session reloaded while waiting picks its run up again; Cancel says
the run was cancelled; a tab closed while its run waits has its job ended (dropped
once no page has asked about it for ``ABANDON_S``, or finished) as the server's log
shows; and afterwards the server has no job process left, zombie or alive.

Same server start and Chromium rules as tests/test_dashboard_e2e.py (skipped without
Debian's chromium unless $ETSIM_REQUIRE_BROWSER is set).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_dashboard_e2e import (  # noqa: F401 - browser is a fixture used by the tests
    HAS_DATA,
    TIMEOUT_MS,
    browser,
    running_dashboard,
)

SESSIONS = 8
WORKERS = 2
WAIT_S = 300.0  # a bound on waiting for something that should happen, not a budget
ABANDON_S = 30  # the server drops a job no page has asked about for this long

# Keeps every text the progress line shows (reset by a reload, installed before the
# page's scripts on every load), so a short-lived "Queued: ..." is not missed.
WATCH = """
window.__seen = [];
new MutationObserver(() => {
  const el = document.getElementById('explore-progress-label');
  const text = el ? el.innerText : '';
  if (text && window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
SEEN = "() => window.__seen || []"
ACTIVE = re.compile(r"^(Queued: \d+(st|nd|rd|th) in line, \d+ runs? ahead|Running: )")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """The dashboard on a free port with two workers and its own empty results cache."""
    folder = tmp_path_factory.mktemp("dashboard-concurrency")
    with running_dashboard(folder, stop_wait=30, ETSIM_DASHBOARD_WORKERS=str(WORKERS),
                           ETSIM_DASHBOARD_ABANDON_AFTER=str(ABANDON_S)) as proc:
        yield proc.url, proc.pid, folder / "server.log"


class Session:
    """One person: a browser context of their own, on Explore with classroom chosen."""

    def __init__(self, chromium: Any, url: str, seed: int, n_firms: int) -> None:
        self.seed, self.n_firms = seed, n_firms
        self.context = chromium.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url + "/explore")
        self.page.wait_for_selector("#explore-run")
        self.choose(seed, n_firms)

    def choose(self, seed: int, n_firms: int) -> None:
        page = self.page
        if page.inner_text("#explore-scenario").strip() != "classroom":
            page.click("#explore-scenario")
            page.click("[role=option]:has-text('classroom')")
            # the scenario's levers arrive: classroom's own firm count
            page.wait_for_function("() => document.querySelector('#explore-firms').value"
                                   " === '20'")
        self.seed, self.n_firms = seed, n_firms
        page.evaluate("() => document.querySelectorAll('#explore-levers details')"
                      ".forEach(d => { d.open = true; })")  # firm count and seed are inside
        for lever, value in (("#explore-seed", seed), ("#explore-firms", n_firms)):
            page.fill(lever, str(value))
            page.press(lever, "Tab")

    def seen(self) -> list[str]:
        return list(self.page.evaluate(SEEN))

    def wait_until_active(self) -> str:
        """The first queued or running line this page showed (since it was loaded)."""
        self.page.wait_for_function(
            "() => (window.__seen || []).some(t => /^(Queued|Running):/.test(t))")
        return next(t for t in self.seen() if ACTIVE.match(t))

    def own_run_drawn(self) -> bool:
        label = self.page.inner_text("#explore-run-label")
        return (f"seed {self.seed}" in label and f"{self.n_firms:,} firms" in label
                and bool(self.page.evaluate(HAS_DATA, "explore-price")))


def job_processes(server_pid: int) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(the server's job processes - children of its fork server -, zombies among all its
    descendants)."""
    jobs, zombies = [], []
    try:
        server = psutil.Process(server_pid)
        descendants = server.children(recursive=True)
    except psutil.NoSuchProcess:
        return [], []
    for proc in descendants:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                zombies.append(proc)
            elif proc.ppid() != server_pid:  # forked by the fork server: a job
                jobs.append(proc)
        except psutil.NoSuchProcess:
            pass
    return jobs, zombies


def test_eight_sessions_run_at_once_each_queued_then_drawn_with_its_own_run(
        browser: Any, server: tuple[str, int, Path]) -> None:  # noqa: F811 - a fixture
    url, server_pid, server_log = server
    sessions = [Session(browser, url, seed=101 + i, n_firms=(20, 40)[i % 2])
                for i in range(SESSIONS - 1)]
    # the last one runs the most firms, so it is still waiting when it is reloaded
    sessions.append(Session(browser, url, seed=101 + SESSIONS - 1, n_firms=200))
    leaver = Session(browser, url, seed=555, n_firms=200)  # closes its tab mid-queue
    try:
        for session in sessions + [leaver]:  # Run at about the same moment
            session.page.click("#explore-run")
        leaver.page.wait_for_function("() => sessionStorage.getItem('explore-job')")
        left_job = json.loads(leaver.page.evaluate(
            "() => sessionStorage.getItem('explore-job')"))["id"]
        leaver.context.close()

        last = sessions[-1]
        assert ACTIVE.match(last.wait_until_active())
        last.page.reload()  # a reload mid-run: the page must pick its job up again
        last.page.wait_for_selector("#explore-run")

        busiest = 0
        deadline = time.monotonic() + WAIT_S
        pending = list(sessions)
        while pending and time.monotonic() < deadline:
            running, zombies = job_processes(server_pid)
            busiest = max(busiest, len(running))
            pending = [s for s in pending if not s.own_run_drawn()]
            time.sleep(0.1)
        assert not pending, [(s.seed, s.page.inner_text("#explore-progress-label"),
                              s.page.inner_text("#explore-message")) for s in pending]
        assert busiest <= WORKERS  # never more job processes than workers

        for session in sessions:
            seen = session.seen()
            # every session saw where its run stood: in line or running
            assert any(ACTIVE.match(text) for text in seen), (session.seed, seen)
            label = session.page.inner_text("#explore-run-label")
            assert label.startswith("classroom (steel, cement, aluminium), "
                                    f"{session.n_firms:,} firms, seed {session.seed}"), label
            others = [s.seed for s in sessions if s is not session]
            assert not any(f"seed {seed}" in label for seed in others)
            assert "Ran in" in session.page.inner_text("#explore-message")
            assert session.errors == []
        # most waited in line: with 8 runs and 2 workers someone was 2nd or later
        places = [int(m.group(1)) for s in sessions for t in s.seen()
                  if (m := re.match(r"Queued: (\d+)", t))]
        assert places and max(places) >= 2, places
        # the reloaded session showed its run's place or progress again after the reload
        # without pressing Run (its seen lines are those since the reload)
        assert any(ACTIVE.match(text) for text in last.seen()), last.seen()

        # Cancel: a new, larger run cancelled while it waits or runs says so, and the
        # session keeps its last finished run on screen
        first = sessions[0]
        before = first.page.inner_text("#explore-run-label")
        first.choose(999, 200)
        first.page.click("#explore-run")
        first.wait_until_active()
        first.page.click("#explore-cancel")
        first.page.wait_for_function(
            "() => document.querySelector('#explore-message').innerText"
            ".startsWith('Cancelled')")
        assert "Cancelled: the run was stopped at your request" in \
            first.page.inner_text("#explore-message")
        assert first.page.inner_text("#explore-run-label") == before
        assert first.page.is_enabled("#explore-run") and not \
            first.page.is_enabled("#explore-cancel")
    finally:
        for session in sessions:
            session.context.close()

    # the closed tab's job ended: dropped as abandoned, or finished and cached
    def left_job_ended() -> str | None:
        for line in server_log.read_text().splitlines():
            if f"job {left_job[:8]} " in line:
                return line
        return None

    deadline = time.monotonic() + WAIT_S
    while left_job_ended() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    ended = left_job_ended()
    assert ended is not None and (" done after " in ended or (
        " cancelled after " in ended and "its tab was closed" in ended)), ended

    # no job process left behind, and no zombie among the server's children
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        running, zombies = job_processes(server_pid)
        if not running and not zombies:
            break
        time.sleep(0.2)
    assert (running, zombies) == ([], [])
