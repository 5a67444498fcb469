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


def compare_price(runs: Runs) -> go.Figure:
    """Daily closes of each run, with each run's annual equilibrium price as steps.

    Args:
        runs: Label -> tables (market_daily, market_years).

    Returns:
        One line per run (CNY/t) and dotted equilibrium steps in the same colour.
    """
    title = "Price: daily close and equilibrium"
    if not runs or all(t["market_daily"].empty for t in runs.values()):
        return empty_figure("Run both scenarios to compare them", title)
    fig = go.Figure()
    for index, (label, tables) in enumerate(runs.items()):
        daily = tables["market_daily"].sort_values("date")
        # a day without listed trades has no close: a gap, not a carried price
        fig.add_trace(go.Scatter(x=daily["date"], y=daily["close"], name=f"{label} close",
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
            fig.add_trace(go.Scatter(x=xs, y=ys, name=f"{label} equilibrium", mode="lines",
                                     line={"color": _colour(index), "width": 3, "dash": "dot"}))
    fig = _layout(fig, title, "date", "CNY/t")
    fig.update_xaxes(title=None)
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
