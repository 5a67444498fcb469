"""Firms: every firm of the session's run in a sortable table, with a drill-down into one
firm's position, trades and abatement over time."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, html

from etsim.dashboard import analysis, runs
from etsim.dashboard.components import (
    chart_card,
    chart_row,
    data_table,
    explain,
    register_csv_downloads,
    table_payload,
)
from etsim.dashboard.figures import run as figures

dash.register_page(__name__, path="/firms", name="Firms", title="etsim: Firms", order=4)

SUMMARY_FORMATS = {"capacity": ",.0f", "baseline_intensity": ".3f", "last_intensity": ".3f",
                   "emissions_mt": ",.2f", "free_allocation_mt": ",.2f", "bought_mt": ",.3f",
                   "sold_mt": ",.3f", "abatement_mt": ",.3f", "abatement_cost_m": ",.1f",
                   "penalty_m": ",.2f", "mean_surplus_ratio": ".3f", "bank_end_t": ",.0f"}
TRADE_FORMATS = {"price": ".2f", "quantity": ",.0f", "signed_quantity": ",.0f"}


def layout(**_: Any) -> html.Div:
    """The Firms page."""
    return html.Div([
        html.H2("Firms"),
        html.P("One row per firm of the session's run (the default run if you have not run "
               "one on Explore). Sort by any column, filter with the row under the header, "
               "click a row to see that firm over time. Export downloads the table as CSV.",
               className="et-page-intro"),
        html.Div(id="firms-run-label", className="et-run-label"),
        data_table("firms-table", page_size=12, filter_action="native",
                   row_selectable=False, style_data_conditional=[
                       {"if": {"state": "active"}, "backgroundColor": "#e7f5ff"}]),
        html.H3(id="firms-title", style={"marginTop": "14px"}),
        explain("**Position**: quota received free against verified emissions; a firm "
                "below its quota sells or banks the surplus, one above it buys or abates. "
                "**Trades**: each dot is a trade (green buys, red sells). **Abatement**: "
                "tonnes cut by the options the firm adopted, and its intensity against "
                "the benchmark."),
        chart_row(chart_card("firms-position"), chart_card("firms-trades")),
        chart_row(chart_card("firms-abatement"), html.Div([
            html.H3("Abatement options"),
            data_table("firms-options", page_size=8),
            html.H3("Trades"),
            data_table("firms-trade-table", page_size=8),
        ])),
    ])


@callback(Output("firms-table", "data"), Output("firms-table", "columns"),
          Output("firms-run-label", "children"), Output("firms-table", "active_cell"),
          Input("app-run", "data"))
def render_table(run: dict[str, Any] | None) -> tuple[Any, Any, str, Any]:
    """The firm table of the session's run (the default run before any)."""
    try:
        tables, meta = runs.load_session_tables(run, ["firms", "firm_years"])
    except Exception as err:  # noqa: BLE001 - shown instead of a dead table
        return [], [], runs.lever_error_message(err), None
    summary = analysis.firm_summary(tables["firms"], tables["firm_years"])
    summary.insert(0, "id", summary["firm_id"])  # row ids: the drill-down survives sorting
    data, columns = table_payload(summary, SUMMARY_FORMATS)
    columns = [c for c in columns if c["id"] != "id"]
    label = run.get("label") if run else "Default run: " + runs.run_label(
        runs.default_levers(), meta)
    first = {"row": 0, "column": 0, "column_id": "firm_id", "row_id": int(summary["id"].iloc[0])
             } if len(summary) else None
    return data, columns, label, first


@callback(Output("firms-title", "children"), Output("firms-position", "figure"),
          Output("firms-trades", "figure"), Output("firms-abatement", "figure"),
          Output("firms-options", "data"), Output("firms-options", "columns"),
          Output("firms-trade-table", "data"), Output("firms-trade-table", "columns"),
          Input("firms-table", "active_cell"), Input("app-run", "data"))
def render_firm(active_cell: dict[str, Any] | None, run: dict[str, Any] | None) -> list[Any]:
    """The drill-down for the firm whose row is selected."""
    firm_id = int(active_cell["row_id"]) if active_cell and active_cell.get("row_id") \
        is not None else None
    if firm_id is None:
        empty = figures.empty_figure("Click a firm in the table")
        return ["Pick a firm", empty, empty, empty, [], [], [], []]
    try:
        tables, _ = runs.load_session_tables(run, ["firms", "firm_years", "trades",
                                                   "abatement_options"])
    except Exception as err:  # noqa: BLE001
        empty = figures.empty_figure(runs.lever_error_message(err))
        return ["Pick a firm", empty, empty, empty, [], [], [], []]
    fy = tables["firm_years"][tables["firm_years"]["firm_id"] == firm_id]
    info = tables["firms"][tables["firms"]["firm_id"] == firm_id]
    trades = analysis.firm_trades(tables["trades"], firm_id)
    options = analysis.firm_abatement(tables["abatement_options"], firm_id)
    title = f"Firm {firm_id}"
    if len(info):
        row = info.iloc[0]
        title += (f": {row['sector']}, baseline intensity {row['baseline_intensity']:.3f} "
                  f"t CO2 per {row.get('unit', 'unit')}")
    option_data, option_cols = table_payload(
        options[["option", "intensity_reduction", "cost_per_t", "lead_time_years",
                 "adopted_year", "effective_year"]],
        {"intensity_reduction": ".3f", "cost_per_t": ",.1f"})
    trade_data, trade_cols = table_payload(trades, TRADE_FORMATS)
    label = (run or {}).get("label", "")
    charts = [figures.caption(fig, label) for fig in (
        figures.firm_position_chart(fy, firm_id), figures.firm_trades_chart(trades, firm_id),
        figures.firm_abatement_chart(fy, firm_id))]
    return [title, *charts, option_data, option_cols, trade_data, trade_cols]


register_csv_downloads(["firms-position", "firms-trades", "firms-abatement"])
