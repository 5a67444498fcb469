"""The chart cards in a real browser: a chart's CSV button downloads its data, the
baseline appears as a ghost line after a change, and the projector switch enlarges type.

Uses the server, browser and tab of ``test_dashboard_e2e`` (Debian's Chromium under
Playwright; skipped without it unless $ETSIM_REQUIRE_BROWSER is set).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import test_dashboard_e2e as e2e
from test_dashboard_e2e import Page, _run_explore

# the fixtures of the e2e tests (a server and a browser for this module)
server, browser, tab = e2e.server, e2e.browser, e2e.tab

FIRMS = "30"  # a small run: the browser test checks the page, not the model


def _small_run(tab: Page, tightening: str | None = None) -> Any:
    page = tab.page
    page.evaluate("() => document.querySelectorAll('#explore-levers details')"
                  ".forEach(d => { d.open = true; })")
    page.fill("#explore-firms", FIRMS)
    page.press("#explore-firms", "Tab")
    if tightening is not None:  # steel's tightening, set through the sector selector
        page.click("#explore-sector-pick input[value=steel]")
        page.fill("#explore-steel-tightening-pct", tightening)
        page.press("#explore-steel-tightening-pct", "Tab")
    _run_explore(tab)
    return page


def test_chart_csv_download_has_the_charts_data(tab: Page) -> None:
    page = tab.goto("/explore")
    page.wait_for_selector("#explore-run")
    _small_run(tab)
    tab.wait_for_data("explore-who-pays")
    with page.expect_download() as info:
        page.click("#explore-compliance-csv")
    download = info.value
    assert download.suggested_filename == "etsim-explore-compliance.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    drawn = page.evaluate("""() => document.querySelector('#explore-compliance .js-plotly-plot')
                               ._fullData.map(t => [t.name, Array.from(t.y)])""")
    assert [(r["series"], float(r["y"])) for r in rows] == [
        (name, float(y)) for name, ys in drawn for y in ys]
    # the toolbar has no cloud button, and the PNG is named after the chart
    config = page.evaluate("() => document.querySelector('#explore-price .js-plotly-plot')"
                           "._context")
    assert config["displaylogo"] is False and config["showSendToCloud"] is False
    assert config["toImageButtonOptions"]["filename"] == "etsim-explore-price"
    assert page.query_selector("#explore-price [data-title*='Cloud']") is None
    assert tab.errors == []


def test_baseline_ghost_after_a_change_and_projector_layout(tab: Page) -> None:
    page = tab.goto("/explore")
    page.wait_for_selector("#explore-run")
    _small_run(tab)  # the scenario unchanged: the baseline
    names = page.evaluate("() => document.querySelector('#explore-price .js-plotly-plot')"
                          "._fullData.map(t => t.name)")
    assert not any(name.startswith("baseline") for name in names)
    _small_run(tab, tightening="5")
    page.wait_for_function("""() => document.querySelector('#explore-price .js-plotly-plot')
                               ._fullData.some(t => t.name === 'baseline: market close')""")
    before = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.click("#app-projector input")
    page.wait_for_function("() => document.body.classList.contains('et-projector')")
    after = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    assert after > before
    tab.shot("explore-projector-1280x720")
    assert tab.errors == []
