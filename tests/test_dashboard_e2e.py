"""End-to-end tests of the dashboard in a real browser.

A server started by the test on a free local port (127.0.0.1), Debian's Chromium driven
by Playwright for Python. Screenshots of every page go to ``screenshots/`` (git-ignored)
for a person to look at: a chart that renders empty passes no review.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

# Debian's chromium; `make test CHROMIUM=...` passes another path on as $ETSIM_CHROMIUM.
CHROMIUM = os.environ.get("ETSIM_CHROMIUM") or "/usr/bin/chromium"
# Set (CI does): no Chromium, or one Playwright cannot launch, fails the browser tests
# instead of skipping them.
REQUIRE_BROWSER = bool(os.environ.get("ETSIM_REQUIRE_BROWSER"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "screenshots"
# How long the charts take to draw is measured in bench/bench_dashboard.py, not here: a
# test must pass on a busy machine. This only bounds a wait for something that never comes.
TIMEOUT_MS = 60_000

HAS_DATA = """(id) => {
  const el = document.querySelector(`#${id} .js-plotly-plot`);
  // _fullData: plotly's decoded traces (numpy arrays arrive base64-encoded in .data)
  return !!(el && el._fullData && el._fullData.some(
    t => (t.x && t.x.length > 0) || (t.y && t.y.length > 0)));
}"""

# Dash runs a page's initial callbacks (levers filled from the address, the sector
# picker's options) after its layout appears: a click made before they finish can be
# undone by them (seen once on a loaded machine). Settled: no callback of any of the
# page's stores is requested, waiting or running (Dash's own test helper checks the same).
CALLBACKS_SETTLED = """() => {
  const stores = window.dash_stores || [];
  return stores.length > 0 && stores.every(store => {
    const callbacks = store.getState().callbacks || {};
    return Object.keys(callbacks).filter(k => k !== 'stored' && k !== 'completed')
      .every(k => !(callbacks[k] || []).length);
  });
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_dashboard(folder: Path, stop_wait: float = 10, **env: str
                      ) -> Iterator[subprocess.Popen]:
    """``etsim dashboard`` on a free loopback port with its own results cache in
    ``folder``, once it answers; stopped on exit. Yields the process, whose ``url``
    attribute is the server's address; ``env`` adds environment variables."""
    port = _free_port()
    env = dict(os.environ, ETSIM_DASHBOARD_CACHE=str(folder / "cache"),
               PYTHONUNBUFFERED="1", **env)
    log_path = folder / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "etsim", "dashboard", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a bound on the wait for start-up, not a budget
        while True:
            try:
                with urllib.request.urlopen(proc.url + "/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the dashboard server did not start:\n"
                            + log_path.read_text()[-3000:])
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _no_browser(reason: str) -> None:
    """Skip the browser tests (fail them where a browser is required, as in CI)."""
    if REQUIRE_BROWSER:
        pytest.fail(reason + " ($ETSIM_REQUIRE_BROWSER is set)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (never Playwright's own browser download)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _no_browser(f"Chromium is not installed at {CHROMIUM}: the browser tests need "
                    "Debian's chromium, install it with `sudo apt-get install chromium`")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: pip install playwright "
                    "(and apt-get install chromium; never `playwright install`)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                                  args=CHROMIUM_ARGS, headless=True)
        except PlaywrightError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            _no_browser(f"Playwright cannot launch Chromium at {CHROMIUM}: {first_line}")
        yield chromium
        chromium.close()


class Page:
    """A fresh browser tab (own session storage) that records console errors."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.url = url
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text)
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def goto(self, path: str) -> Any:
        """Open ``path`` and wait until the page's initial callbacks have run."""
        self.page.goto(self.url + path)
        self.page.wait_for_selector("#_pages_content")
        self.page.wait_for_function(CALLBACKS_SETTLED)
        return self.page

    def wait_for_data(self, graph_id: str, timeout_ms: int = TIMEOUT_MS) -> None:
        self.page.wait_for_function(HAS_DATA, arg=graph_id, timeout=timeout_ms)

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.wait_for_timeout(400)  # let plotly finish its transitions
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def page_fixtures(name: str) -> tuple[Any, Any]:
    """The ``server`` and ``tab`` fixtures of a browser test module (it assigns them:
    ``server, tab = page_fixtures("history")``): the dashboard on a free port with its
    own empty results cache, once per module (``url``, ``cache``), and a fresh tab on it
    for each test."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
        folder = tmp_path_factory.mktemp(name)
        with running_dashboard(folder) as proc:
            yield SimpleNamespace(url=proc.url, cache=folder / "cache")

    @pytest.fixture()
    def tab(browser: Any, server: SimpleNamespace) -> Iterator[Page]:
        page = Page(browser, server.url)
        yield page
        page.close()

    return server, tab


server, tab = page_fixtures("dashboard")


def _mean_price(page: Any) -> float:
    text = page.inner_text("#explore-card-mean-price")
    return float(text.replace(",", ""))


def _run_explore(tab: Page) -> None:
    """Press Run on Explore and wait for the price chart of the new run."""
    page = tab.page
    # the page's first callbacks have run once the run label says something
    page.wait_for_function("() => document.querySelector('#explore-run-label')"
                           " && document.querySelector('#explore-run-label').innerText")
    label_before = page.inner_text("#explore-run-label")
    page.click("#explore-run")
    page.wait_for_function(
        """([id, before]) => {
             const el = document.querySelector(`#${id} .js-plotly-plot`);
             const label = document.querySelector('#explore-run-label');
             return !!(el && el._fullData && el._fullData.some(t => t.x && t.x.length > 0)
                       && label && label.innerText !== before);
           }""", arg=["explore-price", label_before], timeout=TIMEOUT_MS)


def test_explore_loads_without_console_errors(tab: Page) -> None:
    page = tab.goto("/explore")
    page.wait_for_selector("#explore-run")
    page.wait_for_selector("#explore-price .js-plotly-plot")
    page.wait_for_timeout(1000)  # late callback errors show up in the console
    assert page.inner_text("#explore-run-label") == "No run yet."
    assert tab.errors == []


def test_default_run_draws_the_price_chart(tab: Page) -> None:
    page = tab.goto("/explore")
    page.wait_for_selector("#explore-run")
    _run_explore(tab)
    points = page.evaluate("""() => document.querySelector('#explore-price .js-plotly-plot')
                               ._fullData.find(t => t.name === 'market close').y.length""")
    assert points > 1000  # 1,920 trading days 2024-2031
    for graph_id in ("explore-annual", "explore-scarcity", "explore-bank", "explore-sector-balance",
                     "explore-abatement", "explore-volume", "explore-compliance",
                     "explore-incentive"):
        tab.wait_for_data(graph_id)
    assert _mean_price(page) > 0
    assert "china-2024 (steel, cement, aluminium)" in page.inner_text("#explore-run-label")
    tab.shot("explore")
    assert tab.errors == []
    ran = re.search(r"Ran in ([\d.]+) s", page.inner_text("#explore-message"))
    assert ran, page.inner_text("#explore-message")  # a fresh run, not the cache


def test_raising_tightening_raises_the_mean_price(tab: Page) -> None:
    page = tab.goto("/explore")
    page.wait_for_selector("#explore-run")
    _run_explore(tab)
    base = _mean_price(page)
    for sector in ("steel", "cement", "aluminium"):  # one sector's levers shown at a time
        page.click(f"#explore-sector-pick input[value={sector}]")
        page.fill(f"#explore-{sector}-tightening-pct", "5")
        page.press(f"#explore-{sector}-tightening-pct", "Tab")
    _run_explore(tab)
    tighter = _mean_price(page)
    assert tighter > base, (base, tighter)
    tab.shot("explore-tightening-5pct")
    # a bad lever gives a message on the page, not a traceback or a dead page
    page.fill("#explore-aluminium-paid-share", "lots")
    page.press("#explore-aluminium-paid-share", "Tab")
    page.click("#explore-run")
    page.wait_for_selector("#explore-message .et-message-error")
    assert "aluminium: paid share" in page.inner_text("#explore-message")
    assert _mean_price(page) == tighter  # the last good run stays on screen
    assert tab.errors == []


def test_every_page_renders(tab: Page) -> None:
    page = tab.goto("/firms")
    page.wait_for_selector("#firms-table td", timeout=TIMEOUT_MS)
    tab.wait_for_data("firms-position")
    tab.wait_for_data("firms-abatement")
    assert re.search(r"Firm \d+", page.inner_text("#firms-title"))
    tab.shot("firms")

    page = tab.goto("/network")
    tab.wait_for_data("network-graph")
    assert page.inner_text("#network-card-hhi_sellers") != "-"
    page.wait_for_selector("#network-central td")
    tab.shot("network")

    page = tab.goto("/compare")
    page.click("#compare-run")
    tab.wait_for_data("compare-price")
    page.wait_for_selector("#compare-table td")
    tab.wait_for_data("compare-volume")
    assert "Mean price" in page.inner_text("#compare-table")
    tab.shot("compare")

    page = tab.goto("/market")
    tab.wait_for_data("market-curves")
    tab.shot("market-start")
    assert tab.errors == []


def test_market_page_steps_through_the_book(tab: Page) -> None:
    page = tab.goto("/market")
    page.wait_for_function(
        "() => document.querySelector('#market-status') && "
        "document.querySelector('#market-status').innerText.startsWith('Step 0')")
    steps = 0
    for _ in range(25):  # one order at a time, each with the trades it makes
        page.click("#market-next-order")
        page.wait_for_function(
            "(n) => { const m = /^Step (\\d+)/.exec("
            "document.querySelector('#market-status').innerText); "
            "return m && Number(m[1]) > n; }", arg=steps)
        steps = int(re.match(r"Step (\d+)", page.inner_text("#market-status")).group(1))
    assert steps >= 25
    tab.wait_for_data("market-ladder")
    tab.wait_for_data("market-depth")
    before = page.inner_text("#market-event")
    page.click("#market-next")
    page.wait_for_function(
        "(before) => document.querySelector('#market-event').innerText !== before",
        arg=before)
    tab.shot("market")
    assert tab.errors == []


def test_market_records_a_day_through_the_queue(tab: Page) -> None:
    page = tab.goto("/market")
    page.wait_for_function(  # the session's (default) run is loaded
        "() => document.querySelector('#market-status') && "
        "document.querySelector('#market-status').innerText.startsWith('Step 0')")
    page.click("details.et-record summary")
    page.fill("#market-record-date", "2027-06-15")
    page.keyboard.press("Enter")
    page.click("#market-record")
    # the run waits in the job queue like Explore's: its line, Record off, Cancel on
    page.wait_for_function(
        "() => /^(Queued|Running):/.test("
        "document.querySelector('#market-record-progress-label').innerText)")
    assert page.is_disabled("#market-record") and page.is_enabled("#market-record-cancel")
    page.wait_for_function(
        "() => document.querySelector('#market-record-message').innerText"
        ".includes('Recorded 2027-06-15')", timeout=4 * TIMEOUT_MS)
    page.wait_for_function(  # the page moves to the recorded day (or the next trading day)
        "() => { const t = document.querySelector('#market-session').innerText.slice(0, 10);"
        " return t >= '2027-06-15' && t <= '2027-06-22'; }")
    assert page.is_enabled("#market-record") and page.is_disabled("#market-record-cancel")
    assert not page.is_visible("#market-record-progress-box")
    assert tab.errors == []

