"""Network: who traded with whom in a year, how concentrated the market is, and which
traders are central."""

from __future__ import annotations

from typing import Any

import dash
import numpy as np
from dash import Input, Output, State, callback, dcc, html

from etsim.dashboard import network, runs
from etsim.dashboard.components import (
    card,
    chart_card,
    data_table,
    explain,
    register_csv_downloads,
    table_payload,
)
from etsim.dashboard.figures import run as figures

dash.register_page(__name__, path="/network", name="Network", title="etsim: Network",
                   order=3)

METRIC_CARDS = [("traders", "Traders", "{:,.0f}"), ("links", "Trading pairs", "{:,.0f}"),
                ("density", "Density", "{:.4f}"), ("hhi_sellers", "HHI of sellers", "{:,.0f}"),
                ("hhi_buyers", "HHI of buyers", "{:,.0f}"),
                ("top4_seller_share", "Top 4 sellers' share (%)", "{:.1f}")]


def layout(**_: Any) -> html.Div:
    """The Network page."""
    return html.Div([
        html.H2("Trade network"),
        html.P("Each dot is a firm, each line a pair of firms that traded with each other in "
               "the year (the 150 busiest traders are drawn; the figures count them all).",
               className="et-page-intro"),
        html.Div(id="network-run-label", className="et-run-label"),
        html.Div([html.Div([html.Label("Year"), dcc.Dropdown(id="network-year",
                                                              clearable=False)],
                           className="et-field")], className="et-controls"),
        html.Div([card(f"network-card-{key}", label) for key, label, _ in METRIC_CARDS],
                 className="et-cards"),
        html.Div([
            html.Div(chart_card("network-graph", 560), className="et-chart"),
            html.Div(explain(
                "**Concentration.** The Herfindahl-Hirschman index (HHI) adds up the squared "
                "market shares (in %) of the sellers (or buyers): 10,000 is a single seller, "
                "below 1,500 an unconcentrated market, above 2,500 a highly concentrated one. "
                "**Density** is the share of all possible pairs of firms that traded. "
                "**Central traders** have the most counterparties; **betweenness** measures "
                "how often a firm sits on the shortest path between two others, like a "
                "broker."), className="et-side"),
        ], className="et-teach"),
        html.H3("Most central traders"),
        data_table("network-central", page_size=10),
    ])


@callback(Output("network-year", "options"), Output("network-year", "value"),
          Output("network-run-label", "children"), Input("app-run", "data"),
          State("network-year", "value"))
def year_choices(run: dict[str, Any] | None, year: int | None) -> tuple[Any, Any, str]:
    """The years with trades in the session's run; the busiest year first chosen."""
    try:
        tables, meta = runs.load_session_tables(run, ["market_years"])
    except Exception as err:  # noqa: BLE001 - shown instead of a dead page
        return [], None, runs.lever_error_message(err)
    years = tables["market_years"]
    traded = years[years["volume"] > 0]
    options = [{"label": str(int(y)), "value": int(y)} for y in traded["year"]]
    if year not in traded["year"].tolist():
        year = int(traded.loc[traded["volume"].idxmax(), "year"]) if len(traded) else None
    label = run.get("label") if run else "Default run: " + runs.run_label(
        runs.default_levers(), meta)
    return options, year, label


def network_view(tables: dict[str, Any], year: int | None) -> dict[str, Any]:
    """Graph metrics, central traders and the drawing's frames for one year."""
    graph_ = network.trade_graph(tables["trades"], year)
    nodes, edges = network.layout_frames(graph_, tables["firms"])
    return {"metrics": network.network_metrics(graph_),
            "central": network.central_traders(graph_, tables["firms"]),
            "nodes": nodes, "edges": edges}


@callback(Output("network-graph", "figure"),
          *[Output(f"network-card-{key}", "children") for key, _, _ in METRIC_CARDS],
          Output("network-central", "data"), Output("network-central", "columns"),
          Input("network-year", "value"), State("app-run", "data"))
def render(year: int | None, run: dict[str, Any] | None) -> list[Any]:
    """The network drawing, its metrics and the central traders of the chosen year."""
    blank = ["-"] * len(METRIC_CARDS)
    if year is None:
        return [figures.empty_figure("No trades between firms in this run",
                                     "Trade network")] + blank + [[], []]
    try:
        tables, meta = runs.load_session_tables(run, ["trades", "firms"])
        key = (run or {}).get("key") or f"{meta.get('digest')}-{meta.get('seed')}"
        view = runs.memo(f"{key}/network/{year}", lambda: network_view(tables, year))
    except Exception as err:  # noqa: BLE001
        return [figures.empty_figure(runs.lever_error_message(err))] + blank + [[], []]
    metrics = view["metrics"]
    cards = ["-" if not np.isfinite(metrics[key]) else fmt.format(metrics[key])
             for key, _, fmt in METRIC_CARDS]
    data, columns = table_payload(view["central"], {
        "bought_t": ",.0f", "sold_t": ",.0f", "volume_t": ",.0f",
        "degree_centrality": ".3f", "betweenness": ".4f"})
    fig = figures.caption(figures.trade_network_chart(view["nodes"], view["edges"],
                                                      f"Trade network, {year}"),
                          (run or {}).get("label", ""))
    return [fig] + cards + [data, columns]


register_csv_downloads(["network-graph"])
