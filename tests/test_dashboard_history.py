"""The History page, Compare's shareable URL and Explore's baseline, in a real browser.

- History (the landing page): observed closes and the simulated path on one chart, the
  error table of the observed years, the projection after them; another scenario put
  beside the observed years it covers; a second visitor gets the run from the cache.
- Compare: the address holds both panels' levers and reopens them; the observed closes
  are drawn on its price chart for the years the runs cover.
- Explore: after a lever change the scenario's baseline is queued by itself, so the
  ghost line appears without anyone having run the baseline.

china-history's behaviour is being recalibrated: these tests check structure and
direction, never its numbers. Debian's Chromium under Playwright, as in
``test_dashboard_e2e.py``; no wall-clock budgets (waits are bounds only).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from test_dashboard_e2e import (  # noqa: F401 - browser is a fixture used by the tests
    TIMEOUT_MS,
    Page,
    browser,
    page_fixtures,
    running_dashboard,
)

# A tenth of china-history is 2,640 trading days of 364 firms: slow on a loaded machine.
RUN_TIMEOUT_MS = 900_000
TRACES = """(id) => {
  const el = document.querySelector(`#${id} .js-plotly-plot`);
  if (!el || !el._fullData) return null;
  return el._fullData.map(t => ({name: t.name, n: t.x ? t.x.length : 0,
                                 first: t.x && t.x.length ? String(t.x[0]) : null,
                                 last: t.x && t.x.length ? String(t.x[t.x.length - 1]) : null}));
}"""
HAS_TRACE = """([id, name]) => {
  const el = document.querySelector(`#${id} .js-plotly-plot`);
  return !!(el && el._fullData && el._fullData.some(t => t.name === name && t.x
                                                    && t.x.length > 0));
}"""


server, tab = page_fixtures("history")


def _traces(page: Any, graph_id: str) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in page.evaluate(TRACES, graph_id) or []}


def _wait_trace(page: Any, graph_id: str, name: str, timeout: int = RUN_TIMEOUT_MS) -> None:
    page.wait_for_function(HAS_TRACE, arg=[graph_id, name], timeout=timeout)


def _error_years(page: Any) -> list[int]:
    page.wait_for_selector("#history-errors td")
    cells = page.locator("#history-errors td[data-dash-column=year]").all_inner_texts()
    return [int(c) for c in cells]


def test_history_opens_with_observed_and_simulated_prices_and_errors(
        tab: Page, browser: Any, server: SimpleNamespace) -> None:  # noqa: F811
    """The landing page runs china-history by itself: observed closes, the simulated close
    over the same years, its projection after them, and an error per observed year."""
    page = tab.goto("/")
    assert page.inner_text("#app-nav-history") == "History"
    # the observed closes are there before any run, with their source
    _wait_trace(page, "history-price", "observed CEA market close", TIMEOUT_MS)
    assert "ICAP via World Carbon Pricing Database" in page.inner_text("#history-caption")
    _wait_trace(page, "history-price", "simulated market close")
    traces = _traces(page, "history-price")
    observed = traces["observed CEA market close"]
    simulated = traces["simulated market close"]
    projection = traces["projection (market close)"]
    assert observed["n"] > 1000 and observed["first"].startswith("2021-07-16")
    assert observed["last"].startswith("2025-12-31")
    # the simulated path covers the observed years, the projection the years after
    assert simulated["first"] < "2021-12-31" and simulated["last"] <= "2025-12-31 99"
    assert projection["first"] > "2025-12-31" and projection["last"] >= "2030-12-31"
    assert _error_years(page) == [2021, 2022, 2023, 2024, 2025]
    header = page.inner_text("#history-errors")
    for column in ("observed mean close (CNY/t)", "simulated mean close (CNY/t)",
                   "price error (%)", "observed volume (Mt)", "volume error (%)"):
        assert column in header
    assert page.inner_text("#history-error-summary").startswith("Simulated against observed")
    assert "china-history" in page.inner_text("#history-run-label")
    tab.shot("history")
    assert tab.errors == []

    # another visitor: the same scenario, size and seed come from the results cache
    other = Page(browser, server.url)
    try:
        second = other.goto("/")
        _wait_trace(second, "history-price", "simulated market close", TIMEOUT_MS)
        second.wait_for_function("() => document.querySelector('#history-message')"
                                 ".innerText.includes('Taken from the cache')")
        assert other.errors == []
    finally:
        other.close()


def test_history_puts_another_scenario_beside_the_observed_years(tab: Page) -> None:
    """china-2024 starts in 2024: its error table has 2024 and 2025 only."""
    page = tab.goto("/?scenario=china-2024")
    page.wait_for_selector("#history-run")
    page.wait_for_function("() => document.querySelector('#history-run-label')"
                           ".innerText.includes('china-2024')", timeout=RUN_TIMEOUT_MS)
    _wait_trace(page, "history-price", "simulated market close")
    assert _error_years(page) == [2024, 2025]
    assert _traces(page, "history-price")["simulated market close"]["first"] >= "2024"
    assert tab.errors == []


def test_compare_url_reopens_both_panels(tab: Page, browser: Any,  # noqa: F811
                                         server: SimpleNamespace) -> None:
    """Levers set on A and B go into the address; opening it sets both panels again.
    Run both draws the observed closes on the price chart (2024-2025 overlap)."""
    page = tab.goto("/compare")
    page.wait_for_selector("#compare-run")
    page.click("#compare-a-sector-pick input[value=cement]")
    page.fill("#compare-a-cement-tightening-pct", "3")
    page.press("#compare-a-cement-tightening-pct", "Tab")
    page.click("#compare-b-levers summary:has-text('Market and run')")
    page.fill("#compare-b-seed", "7")
    page.press("#compare-b-seed", "Tab")
    page.wait_for_function("() => window.location.search.includes('b.seed=7')"
                           " && window.location.search.includes('a.cement.tightening_pct=3')")
    query = dict(parse_qsl(urlsplit(page.url).query))
    assert query["a.scenario"] == "china-2024"
    assert query["b.scenario"] == "absolute-cap-2027"

    other = Page(browser, server.url)
    try:
        reopened = other.goto(urlsplit(page.url).path + "?" + urlsplit(page.url).query)
        reopened.wait_for_selector("#compare-run")
        reopened.click("#compare-a-sector-pick input[value=cement]")
        assert reopened.input_value("#compare-a-cement-tightening-pct") == "3"
        reopened.click("#compare-b-levers summary:has-text('Market and run')")
        assert reopened.input_value("#compare-b-seed") == "7"
        assert reopened.input_value("#compare-a-seed") == "1"
        assert other.errors == []
    finally:
        other.close()

    # small runs (60 firms each) so that Run both is quick: the overlay is structure
    page = tab.goto("/compare?a.scenario=china-2024&a.sectors=steel,cement,aluminium"
                    "&a.n_firms=60&b.scenario=china-2024&b.sectors=steel,cement,aluminium"
                    "&b.n_firms=60&b.steel.tightening_pct=4")
    page.wait_for_selector("#compare-run")
    page.click("#compare-run")
    _wait_trace(page, "compare-price", "observed CEA close")
    observed = _traces(page, "compare-price")["observed CEA close"]
    assert observed["first"].startswith("2024") and observed["last"].startswith("2025-12-31")
    assert tab.errors == []


def test_explore_ghost_line_appears_after_a_lever_change(tab: Page) -> None:
    """Nobody has run the baseline: changing a lever queues it, and once it is done the
    ghost line is on the price chart of the changed run."""
    page = tab.goto("/explore?scenario=china-2024&sectors=steel,cement,aluminium"
                    "&n_firms=60&seed=11")
    page.wait_for_selector("#explore-run")
    page.click("#explore-sector-pick input[value=steel]")
    page.fill("#explore-steel-tightening-pct", "5")
    page.press("#explore-steel-tightening-pct", "Tab")
    page.click("#explore-run")
    _wait_trace(page, "explore-price", "market close")
    _wait_trace(page, "explore-price", "baseline: market close")
    page.wait_for_function("() => !document.querySelector('#explore-baseline-note')")
    assert "steel: tightening 5% a year" in page.inner_text("#explore-run-label")
    tab.shot("explore-ghost-baseline")
    assert tab.errors == []
