"""Compare: two scenarios side by side on the same charts, with a table of the
differences in the headline figures."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html, no_update

from etsim import ScenarioError
from etsim.dashboard import analysis, runs
from etsim.dashboard.components import (
    chart_row,
    data_table,
    error_text,
    graph,
    lever_panel,
    lever_states,
    levers_from_values,
    message_box,
    register_lever_callbacks,
    table_payload,
)
from etsim.dashboard.figures import compare as compare_figures
from etsim.dashboard.figures import run as figures

dash.register_page(__name__, path="/compare", name="Compare", title="etsim: Compare",
                   order=1)

GRAPHS = ["compare-price", "compare-annual", "compare-scarcity", "compare-bank",
          "compare-abatement", "compare-volume", "compare-compliance"]
TABLES = ["market_daily", "market_years", "firm_years"]
DEFAULT_B = "absolute-cap-2027"


def layout(**_: Any) -> html.Div:
    """The Compare page."""
    return html.Div([
        dcc.Store(id="compare-runs", storage_type="session"),
        html.H2("Compare two scenarios"),
        html.P("Set up scenario A and scenario B, press Run both, and read the charts and "
               "the table of differences. By default B moves steel, cement and aluminium "
               "to absolute caps from 2027.", className="et-page-intro"),
        html.Div([lever_panel("compare-a", runs.default_levers(), "Scenario A"),
                  lever_panel("compare-b", runs.default_levers(DEFAULT_B), "Scenario B")],
                 className="et-compare-panels"),
        html.Div([html.Button("Run both", id="compare-run", n_clicks=0),
                  html.Button("Cancel", id="compare-cancel", className="et-secondary",
                              disabled=True)], className="et-buttons"),
        html.Div([html.Progress(id="compare-progress", value="0", max="1"),
                  html.Div(id="compare-progress-label", className="et-progress-label")],
                 id="compare-progress-box", style={"display": "none", "maxWidth": "400px"}),
        message_box("compare-message"),
        html.Div(id="compare-labels", className="et-run-label"),
        html.H3("Headline figures"),
        data_table("compare-table", page_size=20),
        chart_row(graph("compare-price", 420)),
        chart_row(graph("compare-annual"), graph("compare-scarcity")),
        chart_row(graph("compare-bank"), graph("compare-abatement")),
        chart_row(graph("compare-volume"), graph("compare-compliance")),
    ])


register_lever_callbacks("compare-a", "compare-runs",
                         lambda data: (data.get("a") or {}).get("levers"))
register_lever_callbacks("compare-b", "compare-runs",
                         lambda data: (data.get("b") or {}).get("levers"))


@callback(
    Output("compare-runs", "data"),
    Output("compare-message", "children"),
    Input("compare-run", "n_clicks"),
    *lever_states("compare-a"),
    *lever_states("compare-b"),
    background=True,
    running=[(Output("compare-run", "disabled"), True, False),
             (Output("compare-cancel", "disabled"), False, True),
             (Output("compare-progress-box", "style"), {"display": "block",
                                                        "maxWidth": "400px"},
              {"display": "none"})],
    progress=[Output("compare-progress", "value"), Output("compare-progress", "max"),
              Output("compare-progress-label", "children")],
    cancel=[Input("compare-cancel", "n_clicks")],
    interval=100,  # ms between polls: the charts follow the run closely
    prevent_initial_call=True,
)
def run_both(set_progress: Any, n_clicks: int, *values: Any) -> tuple[Any, Any]:
    """Run scenarios A and B (each from the cache when it can).

    Returns:
        The session's compare record ``{"a": run, "b": run}`` and a message; on bad levers
        no new record and the error's text, naming the scenario at fault.
    """
    if not n_clicks:
        return no_update, no_update
    half = len(values) // 2
    records = {}
    for index, (name, part) in enumerate((("a", values[:half]), ("b", values[half:]))):
        levers = levers_from_values(part)

        def report(done: int, total: int, index: int = index, name: str = name) -> None:
            set_progress((str(index * total + done), str(2 * total),
                          f"Scenario {name.upper()}: {done:,} of {total:,} trading days"))

        try:
            result = runs.run_tables(levers, progress=report)
        except (runs.LeverError, ScenarioError) as err:
            return no_update, error_text(f"Scenario {name.upper()}: {err}")
        except Exception as err:  # a failed run must leave a message, not a dead page
            return no_update, error_text(f"Scenario {name.upper()}: "
                                         f"{runs.lever_error_message(err)}")
        records[name] = runs.session_run(levers, result)
    return records, ""


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
    ]
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
