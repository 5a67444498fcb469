"""Figure builders for comparing runs: pure functions from several runs' tables to one
figure, each run in its own colour on the same axes.

``runs`` arguments map a label ("A: china-2024") to that run's results tables.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from etsim.dashboard import analysis
from etsim.dashboard.figures.run import _layout, empty_figure

RUN_COLOURS = ("#1f3b8f", "#e8590c", "#2b8a3e", "#ae3ec9")
Runs = dict[str, dict[str, pd.DataFrame]]


def _colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def compare_price(runs: Runs, observed: pd.DataFrame | None = None) -> go.Figure:
    """Daily closes of each run, with each run's annual equilibrium price as steps.

    Args:
        runs: Label -> tables (market_daily, market_years).
        observed: Observed closes (date, close) already cut to the runs' years; drawn
            in black with their attribution.

    Returns:
        One line per run (CNY/t) and dotted equilibrium steps in the same colour.
    """
    title = "Price: market close and equilibrium with banking"
    if not runs or all(t["market_daily"].empty for t in runs.values()):
        return empty_figure("Run both scenarios to compare them", title)
    fig = go.Figure()
    for index, (label, tables) in enumerate(runs.items()):
        daily = tables["market_daily"].sort_values("date")
        # a day without listed trades has no close: a gap, not a carried price
        close = analysis.price_name("close")
        fig.add_trace(go.Scatter(x=daily["date"], y=daily["close"], name=f"{label} {close}",
                                 line={"color": _colour(index), "width": 1.5},
                                 connectgaps=False))
        years = tables["market_years"]
        xs: list = []
        ys: list = []
        for year, value in zip(years["year"], years["equilibrium_price"], strict=True):
            if pd.notna(value):
                xs += [f"{int(year)}-01-01", f"{int(year)}-12-31", None]
                ys += [float(value), float(value), None]
        if xs:
            name = f"{label} {analysis.price_name('equilibrium_price')}"
            fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines",
                                     line={"color": _colour(index), "width": 3, "dash": "dot"}))
    if observed is not None and len(observed):
        fig.add_trace(go.Scatter(x=observed["date"], y=observed["close"],
                                 name="observed CEA close",
                                 line={"color": "#212529", "width": 1.2}))
        fig.add_annotation(text=f"Observed closes: {analysis.OBSERVED_ATTRIBUTION} "
                           "(CC BY-NC-SA 4.0)", x=0, y=-0.3, xref="paper", yref="paper",
                           showarrow=False, xanchor="left",
                           font={"size": 10, "color": "#495057"})
    fig = _layout(fig, title, "date", "CNY/t")
    fig.update_xaxes(title=None)
    if observed is not None and len(observed):  # room for the attribution under the legend
        fig.update_layout(legend={"orientation": "h", "y": -0.12},
                          margin={"l": 60, "r": 20, "t": 50, "b": 90})
    return fig


def compare_yearly(runs: Runs, column: str, title: str, y_title: str, scale: float = 1.0,
                   compliance_only: bool = True) -> go.Figure:
    """One ``market_years`` column per run over the years, as lines with markers.

    Args:
        runs: Label -> tables (market_years).
        column: The column to draw (``scarcity_ratio`` is computed from the table).
        title: Chart title.
        y_title: Axis title.
        scale: Divides the values (1e6 for Mt).
        compliance_only: Leave out the settlement years (no verified emissions).

    Returns:
        A line chart by year.
    """
    if not runs:
        return empty_figure("Run both scenarios to compare them", title)
    fig = go.Figure()
    for index, (label, tables) in enumerate(runs.items()):
        years = tables["market_years"]
        if column == "scarcity_ratio":
            data = analysis.scarcity_table(years)
        else:
            data = years[years["verified_emissions"].notna()] if compliance_only else years
        if data.empty or column not in data:
            continue
        fig.add_trace(go.Scatter(x=data["year"], y=data[column] / scale, name=label,
                                 mode="lines+markers", line={"color": _colour(index)}))
    if not fig.data:
        return empty_figure("No data for this chart", title)
    fig.update_xaxes(dtick=1)
    return _layout(fig, title, "", y_title)


def compare_volume(runs: Runs) -> go.Figure:
    """Monthly volume of each run, as grouped bars.

    Args:
        runs: Label -> tables (market_daily).

    Returns:
        Bars per month in Mt, one colour per run.
    """
    title = "Monthly volume"
    if not runs:
        return empty_figure("Run both scenarios to compare them", title)
    fig = go.Figure()
    for index, (label, tables) in enumerate(runs.items()):
        months = analysis.monthly_volume(tables["market_daily"])
        if months.empty:
            continue
        fig.add_trace(go.Bar(x=months["month"], y=months["volume"] / 1e6, name=label,
                             marker={"color": _colour(index)}))
    if not fig.data:
        return empty_figure("No trading in these runs", title)
    fig.update_layout(barmode="group")
    fig = _layout(fig, title, "month", "Mt CO2 traded")
    fig.update_xaxes(title=None)
    return fig


def compare_who_pays(runs: Runs) -> go.Figure:
    """Who pays in each run: each sector's total cost per tonne emitted, side by side.

    Args:
        runs: Label -> tables (firm_years, trades).

    Returns:
        Grouped bars per sector (and all sectors), CNY per tonne of verified emissions,
        one colour per run; the hover gives the parts (abatement, net quota purchases,
        auctions, reserve, penalties).
    """
    title = "Who pays: total cost per tonne emitted, by sector"
    if not runs:
        return empty_figure("Run both scenarios to compare them", title)
    fig = go.Figure()
    for index, (label, tables) in enumerate(runs.items()):
        table = analysis.who_pays(tables["firm_years"], tables.get("trades"))
        if table.empty:
            continue
        parts = table[[f"{c}_per_t" for c in ("abatement_cost", "net_quota_spend",
                                                "auction_payments", "reserve_payments",
                                                "penalties")]].to_numpy()
        fig.add_trace(go.Bar(
            x=table["sector"], y=table["total_cost_per_t"], name=label,
            marker={"color": _colour(index)}, customdata=parts,
            hovertemplate="%{y:.2f} CNY/t: abatement %{customdata[0]:.2f}, quota "
                          "%{customdata[1]:.2f}, auctions %{customdata[2]:.2f}, reserve "
                          "%{customdata[3]:.2f}, penalties %{customdata[4]:.2f}"
                          f"<extra>{label}</extra>"))
    if not fig.data:
        return empty_figure("No firm years in these runs", title)
    fig.update_layout(barmode="group")
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    return _layout(fig, title, "", "CNY per tonne of verified emissions")


def compare_auctions(runs: Runs) -> go.Figure:
    """Auction clearing prices by year in each run (volume-weighted), as lines.

    Args:
        runs: Label -> tables (trades).
    """
    title = "Auctions: clearing price"
    if not runs:
        return empty_figure("Run both scenarios to compare them", title)
    fig = go.Figure()
    for index, (label, tables) in enumerate(runs.items()):
        auctions = analysis.auction_results(tables.get("trades"))
        if auctions.empty:
            continue
        fig.add_trace(go.Scatter(x=auctions["year"], y=auctions["clearing_price"], name=label,
                                 mode="lines+markers", line={"color": _colour(index)},
                                 customdata=auctions["volume"] / 1e6,
                                 hovertemplate="%{y:.2f} CNY/t, %{customdata:.2f} Mt sold"))
    if not fig.data:
        return empty_figure("Neither run auctioned quota", title)
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "", "CNY/t")
