"""Compare: two scenarios side by side on the same charts, with a table of the
differences in the headline figures.

Run both queues the two runs as one job (:mod:`etsim.dashboard.jobs`), followed as on
Explore: the job's id in the session store ``compare-job``, polled by ``compare-poll``.
"""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import (
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
    html,
    no_update,
)

from etsim.dashboard import analysis, runs
from etsim.dashboard.components import (
    chart_card,
    chart_row,
    data_table,
    error_text,
    job_callback_io,
    job_progress,
    job_step,
    job_stores,
    message_box,
    register_csv_downloads,
    table_payload,
)
from etsim.dashboard.figures import compare as compare_figures
from etsim.dashboard.figures import run as figures
from etsim.dashboard.levers import (
    lever_id,
    lever_panel,
    lever_states,
    levers_from_query,
    levers_from_values,
    register_lever_callbacks,
)

dash.register_page(__name__, path="/compare", name="Compare", title="etsim: Compare",
                   order=2)

GRAPHS = ["compare-price", "compare-annual", "compare-scarcity", "compare-bank",
          "compare-abatement", "compare-volume", "compare-compliance", "compare-who-pays",
          "compare-auctions", "compare-reserve"]
TABLES = ["market_daily", "market_years", "firm_years", "trades"]
DEFAULT_B = "absolute-cap-2027"


def split_query(query: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Compare URL's query parameters for panel A and panel B (``a.scenario=...``,
    ``b.steel.cap_year=2027``), without their ``a.``/``b.`` prefix; other keys ignored."""
    parts: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    for key, value in query.items():
        side, _, rest = key.partition(".")
        if side in ("a", "b") and rest:
            parts[side == "b"][rest] = value
    return parts


def layout(**query: Any) -> html.Div:
    """The Compare page; a URL query string (``?a.scenario=china-2024&b.scenario=
    absolute-cap-2027&b.steel.cap_year=2028``) sets both panels, so a comparison can be
    shared and reopened."""
    query_a, query_b = split_query(query)
    from_url = bool(query_a or query_b)
    levers_a = levers_from_query(query_a, runs.default_levers())
    levers_b = levers_from_query(query_b, runs.default_levers(DEFAULT_B))
    progress_and_message = html.Div([
        html.Div(job_progress("compare"), style={"maxWidth": "400px"}),
        message_box("compare-message")])
    return html.Div([
        dcc.Store(id="compare-runs", storage_type="session"),
        dcc.Store(id="compare-url-done"),
        # The session's queued or running job ({"id": token}) and its poll.
        *job_stores("compare"),
        html.H2("Compare two scenarios"),
        html.P("Set up scenario A and scenario B, press Run both, and read the charts and "
               "the table of differences. By default B moves steel, cement and aluminium "
               "to absolute caps from 2027.", className="et-page-intro"),
        html.Div([html.Button("Run both", id="compare-run", n_clicks=0),
                  html.Button("Cancel", id="compare-cancel", className="et-secondary",
                              disabled=True)], className="et-buttons"),
        html.Div([html.Div(id="compare-coverage-text"),
                  html.Button("Align B with A's sectors", id="compare-align",
                              className="et-secondary")],
                 id="compare-coverage", className="et-message-warning",
                 style={"display": "none"}),
        # the lever checks and the run's messages above the panels: in view at 1366x768
        message_box("compare-a-lever-message"),
        message_box("compare-b-lever-message"),
        progress_and_message,
        html.Div([lever_panel("compare-a", levers_a, "Scenario A", from_url=from_url),
                  lever_panel("compare-b", levers_b, "Scenario B", from_url=from_url)],
                 className="et-compare-panels"),
        html.Div(id="compare-labels", className="et-run-label"),
        html.H3("Headline figures"),
        data_table("compare-table", page_size=20),
        chart_row(chart_card("compare-price", 420)),
        chart_row(chart_card("compare-annual"), chart_card("compare-scarcity")),
        chart_row(chart_card("compare-who-pays", 420)),
        chart_row(chart_card("compare-bank"), chart_card("compare-abatement")),
        chart_row(chart_card("compare-volume"), chart_card("compare-compliance")),
        chart_row(chart_card("compare-auctions"), chart_card("compare-reserve")),
    ])


register_lever_callbacks("compare-a", "compare-runs",
                         lambda data: (data.get("a") or {}).get("levers"),
                         message_id="compare-a-lever-message", name="Scenario A")
register_lever_callbacks("compare-b", "compare-runs",
                         lambda data: (data.get("b") or {}).get("levers"),
                         message_id="compare-b-lever-message", name="Scenario B")
register_csv_downloads(GRAPHS)

# Both panels' levers go into the address bar (a.KEY and b.KEY) without a page load, so a
# comparison can be copied and reopened; each panel's own query comes from its lever check.
clientside_callback(
    """function(queryA, queryB) {
        const params = new URLSearchParams();
        for (const [side, query] of [['a', queryA], ['b', queryB]]) {
            for (const [key, value] of new URLSearchParams(query || '')) {
                params.append(side + '.' + key, value);
            }
        }
        const search = '?' + params.toString();
        if ((queryA || queryB) && window.location.search !== search) {
            window.history.replaceState(window.history.state, '',
                                        window.location.pathname + search);
        }
        return search;
    }""",
    Output("compare-url-done", "data"), Input("compare-a-query", "data"),
    Input("compare-b-query", "data"))


def coverage_warning(sectors_a: list[str] | None, firms_a: Any, sectors_b: list[str] | None,
                     firms_b: Any) -> str:
    """The warning when A and B cover different sectors or firm counts ("" when alike):
    their difference would then mix coverage with policy."""
    same_sectors = sorted(sectors_a or []) == sorted(sectors_b or [])
    if same_sectors and firms_a == firms_b:
        return ""

    def cover(sectors: list[str] | None, firms: Any) -> str:
        shown = f"{int(firms):,}" if isinstance(firms, int | float) else "?"
        return f"{', '.join(sectors or []) or 'no sector'} ({shown} firms)"

    return (f"A and B cover different markets: A {cover(sectors_a, firms_a)}, B "
            f"{cover(sectors_b, firms_b)}. Their differences would mix coverage with policy.")


@callback(Output("compare-coverage", "style"), Output("compare-coverage-text", "children"),
          Input(lever_id("compare-a", "sectors"), "value"),
          Input(lever_id("compare-a", "n_firms"), "value"),
          Input(lever_id("compare-b", "sectors"), "value"),
          Input(lever_id("compare-b", "n_firms"), "value"))
def on_coverage(sectors_a: list[str] | None, firms_a: Any, sectors_b: list[str] | None,
                firms_b: Any) -> tuple[dict[str, str], str]:
    """Warn (with an Align button) while A and B differ in coverage."""
    text = coverage_warning(sectors_a, firms_a, sectors_b, firms_b)
    return ({"display": "block"} if text else {"display": "none"}), text


@callback(Output(lever_id("compare-b", "sectors"), "value", allow_duplicate=True),
          Input("compare-align", "n_clicks"),
          State(lever_id("compare-a", "sectors"), "value"),
          State(lever_id("compare-b", "scenario"), "value"),
          prevent_initial_call=True)
def align(_clicks: int | None, sectors_a: list[str] | None, scenario_b: str | None) -> Any:
    """B takes A's sectors (those B's scenario has); its firm count follows them."""
    try:
        known = set(runs.load_scenario(scenario_b or runs.DEFAULT_SCENARIO).sectors)
    except Exception:  # noqa: BLE001 - a bad scenario is reported by the lever check
        return no_update
    return [s for s in (sectors_a or []) if s in known]


def start_both(values_a: Any, values_b: Any) -> tuple[dict[str, Any] | None,
                                                     dict[str, Any] | None, Any]:
    """Run both: runs the cache has are shown at once; otherwise both are queued.

    Returns:
        (the job to follow or None, the session's compare record ``{"a": run, "b": run}``
        or None, the message: a bad lever's text naming the scenario at fault, or "").
    """
    out = runs.queue_runs([("Scenario A", levers_from_values(values_a)),
                           ("Scenario B", levers_from_values(values_b))])
    if out["error"]:
        return None, None, error_text(out["error"])
    if out["records"]:
        return None, dict(zip("ab", out["records"], strict=True)), \
            html.Div("Taken from the cache.", className="et-message-info")
    return out["job"], None, ""


def follow_both(job: dict[str, Any], cancel: bool = False
                ) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any] | None, Any]:
    """Where the session's job stands (after cancelling it if asked).

    Returns:
        (the job while queued or running, else None; the progress view; the compare
        record when done, else None; the message).
    """
    view = runs.follow_runs(job, cancel)
    if view["active"]:
        return view["job"], view, None, ""
    if view["records"]:
        return None, view, dict(zip("ab", view["records"], strict=True)), ""
    text = view["label"]
    return None, view, None, (error_text(text) if view["error"] else
                              html.Div(text, className="et-message-info"))


@callback(*job_callback_io("compare", "compare-run"), *lever_states("compare-a"),
          *lever_states("compare-b"))
def run_both(n_clicks: int | None, _cancels: int | None, polls: int | None,
             job: dict[str, Any] | None, *values: Any) -> tuple[Any, ...]:
    """Run both, Cancel and the page's polls (components.job_step): queue A and B,
    follow them, publish them (the session's compare record) when done."""
    trigger = ctx.triggered_id
    half = len(values) // 2
    return job_step(trigger == "compare-run" and bool(n_clicks),
                    trigger == "compare-cancel", polls, job,
                    lambda: start_both(values[:half], values[half:]), follow_both,
                    store_id="compare-runs")


@callback(
    *[Output(graph_id, "figure") for graph_id in GRAPHS],
    Output("compare-table", "data"), Output("compare-table", "columns"),
    Output("compare-labels", "children"),
    Input("compare-runs", "data"),
)
def render(data: dict[str, Any] | None) -> list[Any]:
    """The comparison charts and the table of headline differences."""
    if not data or not data.get("a") or not data.get("b"):
        empty = figures.empty_figure("Press Run both to compare the scenarios")
        return [empty] * len(GRAPHS) + [[], [], "No comparison yet."]
    try:
        tables_a, _ = runs.load_session_tables(data["a"], TABLES)
        tables_b, _ = runs.load_session_tables(data["b"], TABLES)
    except Exception as err:  # noqa: BLE001 - shown instead of dead charts
        empty = figures.empty_figure(runs.lever_error_message(err))
        return [empty] * len(GRAPHS) + [[], [], runs.lever_error_message(err)]
    both = {"A": tables_a, "B": tables_b}
    figs = [
        compare_figures.compare_price(both, analysis.observed_overlap(
            analysis.observed_prices(),
            pd.concat([tables_a["market_daily"], tables_b["market_daily"]]))),
        compare_figures.compare_yearly(both, "mean_price", "Annual mean price", "CNY/t"),
        compare_figures.compare_yearly(both, "scarcity_ratio",
                                       "Scarcity ratio (verified emissions / quota issued)",
                                       "ratio"),
        compare_figures.compare_yearly(both, "bank_total", "Bank at year end", "Mt CO2",
                                       1e6, compliance_only=False),
        compare_figures.compare_yearly(both, "abatement", "Abatement", "Mt CO2", 1e6),
        compare_figures.compare_volume(both),
        compare_figures.compare_yearly(both, "firms_compliant_share",
                                       "Compliance: firms with no shortfall", "%", 0.01),
        compare_figures.compare_who_pays(both),
        compare_figures.compare_auctions(both),
        compare_figures.compare_yearly(both, "reserve_holdings",
                                       "Reserve pool holdings at year end", "Mt CO2", 1e6,
                                       compliance_only=False),
    ]
    figs[-4].update_yaxes(rangemode="tozero")  # compliance from zero
    label = f"A: {data['a'].get('label', '')} / B: {data['b'].get('label', '')}"
    figs = [figures.caption(fig, label) for fig in figs]
    table = analysis.headline_difference(analysis.headline(tables_a),
                                         analysis.headline(tables_b))
    rows, columns = table_payload(table, {"A": ",.2f", "B": ",.2f", "difference": ",.2f",
                                          "change_pct": "+.1f"})
    for column in columns:
        if column["id"] == "change_pct":
            column["name"] = "change (%)"
        if column["id"] == "difference":
            column["name"] = "B - A"
    labels = html.Div([html.Div(f"A: {data['a'].get('label', '')}"),
                       html.Div(f"B: {data['b'].get('label', '')}")])
    return figs + [rows, columns, labels]
