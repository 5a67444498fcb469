"""Figure builders for sweeps: pure functions from a sweep's summary table to figures.

The summary has one row per run: the factor columns (levers and uncertainties), the
headline figures (``experiments.sweep.headline_figures``) and ``status``. Only runs with
``status == "ok"`` are drawn. The HTML report (``experiments/report.py``) and the
dashboard share these builders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# axis titles of the headline figures; output_SECTOR columns get a generic one
HEADLINE_LABELS = {
    "mean_price": "mean price over compliance years (CNY/t)",
    "emissions": "verified emissions, all compliance years (t)",
    "abatement": "abatement, all compliance years (t)",
    "abatement_cost": "abatement cost, all compliance years (CNY)",
    "compliance_rate": "compliance rate (mean over years)",
    "price_volatility": "price volatility (sd of daily log returns)",
    "penalties": "penalties, all compliance years (CNY)",
    "efficiency": "allocative efficiency (share of the possible saving from trade)",
    "volume": "traded volume (t)",
    "bank_end": "bank at the last compliance year's end (t)",
}
# beyond this many distinct values a numeric factor is drawn as a cloud with bins
MAX_LEVELS = 12
BAND = "rgba(99,110,250,0.18)"
LINE = "#1f3b8f"


def headline_label(headline: str) -> str:
    """Axis title of a headline figure column."""
    if headline.startswith("output_"):
        return f"{headline.removeprefix('output_')} output, all compliance years"
    if headline.startswith("mean_price_"):
        return f"mean price {headline.removeprefix('mean_price_')} (CNY/t)"
    return HEADLINE_LABELS.get(headline, headline)


def _ok(summary: pd.DataFrame) -> pd.DataFrame:
    if "status" in summary:
        return summary[summary["status"] == "ok"]
    return summary


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title,
                      template="plotly_white", showlegend=True,
                      legend={"orientation": "h", "y": -0.25},
                      margin={"l": 70, "r": 20, "t": 50, "b": 40})
    return fig


def lever_effect(summary: pd.DataFrame, factor: str, headline: str,
                 categorical: bool | None = None) -> go.Figure:
    """One factor against one headline figure, with the spread over replicates.

    Runs are grouped by the factor's value: the line (or marker) is the mean over the
    runs of a value and the band (or error bar) spans their minimum to maximum, over
    replicates and over the other factors' values. A numeric factor with more than
    ``MAX_LEVELS`` distinct values (random or Latin hypercube samples) is drawn as a
    cloud of runs with the mean and range in quantile bins.

    Args:
        summary: The sweep's summary table.
        factor: The factor's column.
        headline: The headline figure's column.
        categorical: Draw values as categories; None decides from the column's type.

    Returns:
        The figure.
    """
    data = _ok(summary)[[factor, headline]].dropna(subset=[headline])
    if categorical is None:
        categorical = not _numeric(data[factor])
    title = f"{headline} by {factor}"
    fig = go.Figure()
    if categorical:
        stats = data.groupby(data[factor].astype(str), sort=False)[headline].agg(
            ["mean", "min", "max", "count"])
        fig.add_trace(go.Scatter(
            x=stats.index, y=stats["mean"], mode="markers", name="mean over runs",
            marker={"size": 10, "color": LINE},
            error_y={"type": "data", "symmetric": False,
                     "array": stats["max"] - stats["mean"],
                     "arrayminus": stats["mean"] - stats["min"]},
            customdata=stats["count"],
            hovertemplate="%{x}: mean %{y:.4g} over %{customdata} runs<extra></extra>",
        ))
        fig.update_xaxes(type="category")
        return _layout(fig, title, factor, headline_label(headline))
    if data[factor].nunique() > MAX_LEVELS:
        fig.add_trace(go.Scatter(x=data[factor], y=data[headline], mode="markers",
                                 name="runs", marker={"size": 5, "opacity": 0.45,
                                                      "color": "#888"}))
        bins = pd.qcut(data[factor], q=min(10, data[factor].nunique()), duplicates="drop")
        grouped = data.groupby(bins, observed=True)
        stats = grouped[headline].agg(["mean", "min", "max"])
        stats["x"] = grouped[factor].mean()
    else:
        stats = data.groupby(factor)[headline].agg(["mean", "min", "max"])
        stats["x"] = stats.index
    stats = stats.sort_values("x")
    x = stats["x"].to_numpy(dtype=float)
    fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]),
                             y=np.concatenate([stats["max"], stats["min"][::-1]]),
                             fill="toself", fillcolor=BAND, line={"width": 0}, mode="lines",
                             name="min-max over runs", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=stats["mean"], mode="lines+markers", name="mean over runs",
                             line={"color": LINE}))
    return _layout(fig, title, factor, headline_label(headline))


def price_paths(summary: pd.DataFrame, factor: str) -> go.Figure:
    """Mean price of each compliance year, one line per value of a factor.

    Uses the ``mean_price_YYYY`` columns; a numeric factor with many values is split
    into five quantile bins.

    Args:
        summary: The sweep's summary table.
        factor: The factor's column.

    Returns:
        Lines of the mean over runs of each year's mean price.
    """
    data = _ok(summary)
    years = sorted(c for c in data if str(c).startswith("mean_price_"))
    groups = data[factor]
    if _numeric(groups) and groups.nunique() > MAX_LEVELS:
        groups = pd.qcut(groups, q=5, duplicates="drop").astype(str)
    fig = go.Figure()
    for value, rows in data.groupby(groups, sort=True):
        means = rows[years].mean()
        fig.add_trace(go.Scatter(x=[int(c.removeprefix("mean_price_")) for c in years],
                                 y=means.to_numpy(), mode="lines+markers",
                                 name=f"{factor} = {value}"))
    fig.update_xaxes(dtick=1)
    return _layout(fig, f"Mean price by year and {factor}", "compliance year", "CNY/t")


def sobol_indices(indices: pd.DataFrame, headline: str) -> go.Figure:
    """First-order and total Sobol indices of each factor for one headline figure.

    Args:
        indices: One row per factor: ``factor``, ``S1``, ``S1_conf``, ``ST``,
            ``ST_conf`` (as from ``SALib.analyze.sobol``).
        headline: The headline figure they belong to (for the title).

    Returns:
        Grouped bars with confidence intervals.
    """
    fig = go.Figure()
    fig.add_trace(go.Bar(x=indices["factor"], y=indices["S1"], name="first order (S1)",
                         error_y={"type": "data", "array": indices["S1_conf"]}))
    fig.add_trace(go.Bar(x=indices["factor"], y=indices["ST"], name="total (ST)",
                         error_y={"type": "data", "array": indices["ST_conf"]}))
    fig.update_layout(barmode="group")
    return _layout(fig, f"Sobol indices: {headline}", "factor", "share of variance")
