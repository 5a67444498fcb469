"""Compare: two scenarios side by side on the same charts, with a table of the
differences in the headline figures.

Run both queues the two runs as one job (:mod:`etsim.dashboard.jobs`), followed as on
Explore: the job's id in the session store ``compare-job``, polled by ``compare-poll``.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, ctx, dcc, html, no_update, set_props

from etsim.dashboard import analysis, runs
from etsim.dashboard.components import (
    chart_card,
    chart_row,
    data_table,
    error_text,
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
    levers_from_values,
    register_lever_callbacks,
)

dash.register_page(__name__, path="/compare", name="Compare", title="etsim: Compare",
                   order=1)

GRAPHS = ["compare-price", "compare-annual", "compare-scarcity", "compare-bank",
          "compare-abatement", "compare-volume", "compare-compliance", "compare-who-pays",
          "compare-auctions", "compare-reserve"]
TABLES = ["market_daily", "market_years", "firm_years", "trades"]
DEFAULT_B = "absolute-cap-2027"
POLL_MS = 250  # how often the page asks about its queued or running job
BOX = {"display": "block", "maxWidth": "400px"}


def layout(**_: Any) -> html.Div:
    progress_and_message = html.Div([
        html.Div([html.Progress(id="compare-progress", value="0", max="1"),
                  html.Div(id="compare-progress-label", className="et-progress-label")],
                 id="compare-progress-box", style={"display": "none", "maxWidth": "400px"}),
        message_box("compare-message")])
    """The Compare page."""
    return html.Div([
        dcc.Store(id="compare-runs", storage_type="session"),
        # The session's queued or running job ({"id": token}): survives a reload.
        dcc.Store(id="compare-job", storage_type="session"),
        dcc.Interval(id="compare-poll", interval=POLL_MS, disabled=True,
                     max_intervals=0),
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
        html.Div([lever_panel("compare-a", runs.default_levers(), "Scenario A"),
                  lever_panel("compare-b", runs.default_levers(DEFAULT_B), "Scenario B")],
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


def _controls(job: Any, view: dict[str, Any] | None, message: Any, polls: int | None
              ) -> tuple[Any, ...]:
    active = bool(view and view["active"])
    # One poll at a time: the next is allowed only once this answer is in (max_intervals
    # one above the polls so far). A fixed-rate poll would, on a busy server, supersede
    # each slow answer with the next request, and the page would never update.
    return (job, not active, (polls or 0) + 1 if active else no_update, active, not active,
            BOX if active else {"display": "none"},
            view["value"] if view else "0", view["max"] if view else "1",
            view["label"] if active and view else "", message)


@callback(
    Output("compare-job", "data"), Output("compare-poll", "disabled"),
    Output("compare-poll", "max_intervals"),
    Output("compare-run", "disabled"), Output("compare-cancel", "disabled"),
    Output("compare-progress-box", "style"), Output("compare-progress", "value"),
    Output("compare-progress", "max"), Output("compare-progress-label", "children"),
    Output("compare-message", "children"),
    Input("compare-run", "n_clicks"), Input("compare-cancel", "n_clicks"),
    Input("compare-poll", "n_intervals"), Input("compare-job", "data"),
    *lever_states("compare-a"),
    *lever_states("compare-b"),
)
def run_both(n_clicks: int | None, _cancels: int | None, polls: int | None,
             job: dict[str, Any] | None, *values: Any) -> tuple[Any, ...]:
    """Run both, Cancel and the page's polls: queue A and B, follow them, publish them
    (the session's compare record) when done."""
    trigger = ctx.triggered_id
    known = bool(job and job.get("id"))
    if trigger == "compare-run" and n_clicks and not known:
        half = len(values) // 2
        job, record, message = start_both(values[:half], values[half:])
        if record is not None:
            set_props("compare-runs", {"data": record})
        if job is None:
            return _controls(no_update, None, message, polls)
    elif not known:  # nothing to follow; the store is left alone (it may be loading)
        return _controls(no_update, None, no_update, polls)
    assert job is not None
    kept, view, record, message = follow_both(job, cancel=trigger == "compare-cancel")
    if record is not None:
        set_props("compare-runs", {"data": record})
    unchanged = kept is not None and trigger != "compare-run"
    return _controls(no_update if unchanged else kept, view, message, polls)


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
        compare_figures.compare_price(both),
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
