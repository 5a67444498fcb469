"""Figure builders for one run: pure functions from results tables to plotly figures.

Each takes the results tables (the README's "Results" section) as pandas DataFrames
and returns a ``go.Figure``; none reads files or touches a model. The dashboard and the
HTML report (``experiments/report.py``) both use them.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from etsim.dashboard import analysis

SECTOR_COLOURS = {
    "power": "#636efa",
    "steel": "#ef553b",
    "cement": "#00cc96",
    "aluminium": "#ab63fa",
    "chemicals": "#ffa15a",
    "petrochemicals": "#19d3f3",
    "aviation": "#ff6692",
    "paper": "#b6e880",
}


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        template="plotly_white",
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )
    return fig


def daily_close(market_daily: pd.DataFrame) -> go.Figure:
    """Daily close with the day's price limit band.

    Args:
        market_daily: The ``market_daily`` table (date, close, limit_down, limit_up).

    Returns:
        A line chart of the close inside a shaded band from limit_down to limit_up; a
        day without listed trades has no close (NaN) and is a gap in the line.
    """
    daily = market_daily.sort_values("date")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=daily["date"], y=daily["limit_up"], name="limit up",
                             line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=daily["date"], y=daily["limit_down"], name="price limits",
                             line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(99,110,250,0.15)", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=daily["date"], y=daily["close"], name="close",
                             line={"color": "#1f3b8f", "width": 1.5}, connectgaps=False))
    return _layout(fig, "Daily close and price limits", "date", "CNY/t")


def quota_vs_emissions(market_years: pd.DataFrame) -> go.Figure:
    """Quota issued (free and auctioned) against verified emissions, by compliance year.

    Args:
        market_years: The ``market_years`` table.

    Returns:
        Stacked bars of free allocation and auctioned quota with verified emissions as
        a line; years without verified emissions (the settlement period) are left out.
    """
    years = market_years[market_years["verified_emissions"].notna()]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=years["year"], y=years["free_allocation"] / 1e6,
                         name="free allocation"))
    fig.add_trace(go.Bar(x=years["year"], y=years["auctioned"] / 1e6, name="auctioned"))
    fig.add_trace(go.Scatter(x=years["year"], y=years["verified_emissions"] / 1e6,
                             name="verified emissions", mode="lines+markers",
                             line={"color": "black"}))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(dtick=1)
    return _layout(fig, "Quota issued and verified emissions", "compliance year", "Mt CO2")


def bank(market_years: pd.DataFrame) -> go.Figure:
    """Quota banked by firms and held by the reserve pool at each year's end.

    Args:
        market_years: The ``market_years`` table (bank_total, reserve_holdings).

    Returns:
        Bars of the firms' bank with the reserve pool's holdings as a line.
    """
    fig = go.Figure()
    fig.add_trace(go.Bar(x=market_years["year"], y=market_years["bank_total"] / 1e6,
                         name="firms' bank"))
    if "reserve_holdings" in market_years and market_years["reserve_holdings"].any():
        fig.add_trace(go.Scatter(x=market_years["year"],
                                 y=market_years["reserve_holdings"] / 1e6,
                                 name="reserve pool", mode="lines+markers"))
    fig.update_xaxes(dtick=1)
    return _layout(fig, "Bank at year end", "year", "Mt CO2")


def monthly_volume(market_daily: pd.DataFrame) -> go.Figure:
    """Traded volume per month (listed and block sessions).

    Args:
        market_daily: The ``market_daily`` table (date, year, month, volume).

    Returns:
        Bars of each month's volume, which show trading bunching before deadlines.
    """
    months = market_daily.groupby(["year", "month"], as_index=False)["volume"].sum()
    label = pd.to_datetime(dict(year=months["year"], month=months["month"], day=1))
    fig = go.Figure(go.Bar(x=label, y=months["volume"] / 1e6, name="volume"))
    return _layout(fig, "Monthly traded volume", "month", "Mt CO2")


def surplus_vs_intensity(firm_years: pd.DataFrame) -> go.Figure:
    """Each firm's surplus ratio against its intensity relative to the benchmark.

    Args:
        firm_years: The ``firm_years`` table (firm_id, sector, year, intensity,
            benchmark, surplus_ratio).

    Returns:
        A scatter, one point per firm and compliance year, coloured by sector: the lower
        the intensity against the benchmark, the higher the surplus.
    """
    data = firm_years[firm_years["surplus_ratio"].notna() & (firm_years["benchmark"] > 0)]
    fig = go.Figure()
    for sector, group in data.groupby("sector", sort=True):
        ratio = group["intensity"] / group["benchmark"]
        fig.add_trace(go.Scattergl(
            x=ratio, y=group["surplus_ratio"], mode="markers", name=str(sector),
            marker={"size": 5, "opacity": 0.6, "color": SECTOR_COLOURS.get(str(sector))},
            customdata=np.stack([group["firm_id"], group["year"]], axis=-1),
            hovertemplate="firm %{customdata[0]}, %{customdata[1]}<br>"
                          "intensity / benchmark %{x:.3f}<br>surplus ratio %{y:.3f}"
                          "<extra></extra>",
        ))
    fig.add_hline(y=0, line={"color": "grey", "width": 1})
    fig.add_vline(x=1, line={"color": "grey", "width": 1, "dash": "dot"})
    fig = _layout(fig, "Surplus ratio against intensity", "intensity / benchmark",
                  "surplus ratio (free - verified) / free")
    fig.update_layout(hovermode="closest")
    return fig


# --- dashboard builders ------------------------------------------------------------------
# The functions below serve the dashboard's pages (dashboard/pages/). Like the ones above
# they are pure: results tables in, a figure out; an empty input gives a figure with an
# empty-state message instead of an error.

EMPTY_MESSAGE = "No data for this chart"
OPTION_COLOURS = px.colors.qualitative.Dark24
LINE_COLOUR = "#1f3b8f"
BID_COLOUR = "#2b8a3e"
ASK_COLOUR = "#c92a2a"


def empty_figure(message: str = EMPTY_MESSAGE, title: str = "") -> go.Figure:
    """A blank chart that says why it is blank.

    Args:
        message: The text shown in the middle of the chart.
        title: The chart's title.

    Returns:
        A figure with no traces, hidden axes and ``message`` as an annotation.
    """
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper",
                       showarrow=False, font={"size": 15, "color": "#666"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, template="plotly_white",
                      margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig


def _is_empty(*frames: pd.DataFrame | None) -> bool:
    return any(frame is None or len(frame) == 0 for frame in frames)


def _deadline_lines(fig: go.Figure, deadlines: list[str] | tuple[str, ...],
                    label: bool = True) -> None:
    # shapes and annotations rather than add_vline (which cannot annotate dates), all
    # set in one update: plotly validates each add_shape call on its own, slowly
    shapes = [{"type": "line", "x0": d, "x1": d, "xref": "x", "y0": 0, "y1": 1,
               "yref": "paper", "layer": "below",
               "line": {"color": "#868e96", "width": 1, "dash": "dot"}} for d in deadlines]
    notes = [{"x": d, "y": 1, "xref": "x", "yref": "paper", "text": "deadline",
              "showarrow": False, "yanchor": "bottom",
              "font": {"size": 10, "color": "#495057"}} for d in deadlines] if label else []
    fig.update_layout(shapes=list(fig.layout.shapes) + shapes,
                      annotations=list(fig.layout.annotations) + notes)


def _year_steps(market_years: pd.DataFrame, column: str) -> tuple[list, list]:
    # one flat segment per year, from 1 January to 31 December, gaps between years
    xs: list = []
    ys: list = []
    for year, value in zip(market_years["year"], market_years[column], strict=True):
        if pd.notna(value):
            xs += [f"{int(year)}-01-01", f"{int(year)}-12-31", None]
            ys += [float(value), float(value), None]
    return xs, ys


def _ghost(fig: go.Figure, x: Any, y: Any, name: str = "baseline") -> None:
    """The baseline run as a grey ghost line behind the chart's own traces."""
    fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", connectgaps=False,
                             line={"color": "rgba(134,142,150,0.55)", "width": 2.5},
                             hoverinfo="skip"))


def _price_trace(column: str, x: Any, y: Any, **kwargs: Any) -> go.Scatter:
    # every price has one name and one definition (analysis.PRICE_DEFINITIONS)
    name = kwargs.pop("name", analysis.price_name(column))
    return go.Scatter(x=x, y=y, name=name,
                      hovertemplate="%{y:.2f} CNY/t<extra>" + name + "</extra>",
                      meta=analysis.price_definition(column), **kwargs)


def price_chart(market_daily: pd.DataFrame, market_years: pd.DataFrame | None = None,
                observed: pd.DataFrame | None = None,
                deadlines: list[str] | tuple[str, ...] = (),
                attribution: str = "Data: ICAP via World Carbon Pricing Database",
                baseline: pd.DataFrame | None = None,
                reserve: dict[str, Any] | None = None,
                releases: pd.DataFrame | None = None) -> go.Figure:
    """The price: market close in its limit band, the equilibrium with banking and the
    fundamental price, deadlines, the reserve's triggers and releases, observed closes.

    Args:
        market_daily: ``market_daily`` (date, close, limit_down, limit_up,
            fundamental_price). A day without a listed trade has no close: a gap.
        market_years: ``market_years`` (year, equilibrium_price); None leaves it out.
        observed: Observed closes (date, close) already cut to the run's years.
        deadlines: Compliance deadline dates ("YYYY-MM-DD").
        attribution: Source line shown when observed closes are drawn.
        baseline: The baseline run's ``market_daily``: its close as a grey ghost line.
        reserve: The reserve pool's policy (policy, release_price, absorb_price): under
            ``price_trigger`` both prices are drawn as horizontal lines.
        releases: The pool's releases (``analysis.reserve_releases``), marked on the
            chart at their prices.

    Returns:
        A line chart in CNY/t over dates.
    """
    title = "Price: market close, equilibrium with banking, fundamental"
    if _is_empty(market_daily):
        return empty_figure("Run a scenario to see its prices", title)
    fig = daily_close(market_daily)
    fig.data[-1].update(name=analysis.price_name("close"),
                        meta=analysis.price_definition("close"))
    daily = market_daily.sort_values("date")
    if baseline is not None and len(baseline):
        base = baseline.sort_values("date")
        _ghost(fig, base["date"], base["close"], "baseline: market close")
    if "fundamental_price" in daily:
        fig.add_trace(_price_trace("fundamental_price", daily["date"],
                                   daily["fundamental_price"],
                                   line={"color": "#e8590c", "dash": "dash", "width": 1.2}))
    if market_years is not None and len(market_years):
        xs, ys = _year_steps(market_years, "equilibrium_price")
        if xs:
            fig.add_trace(_price_trace("equilibrium_price", xs, ys, mode="lines",
                                       line={"color": "#2b8a3e", "width": 3}, opacity=0.8))
    if reserve and reserve.get("policy", reserve.get("reserve_policy")) == "price_trigger":
        for key, label, colour in (("release_price", "reserve releases above", "#ae3ec9"),
                                   ("absorb_price", "reserve buys back below", "#1098ad")):
            value = reserve.get(key)
            if value is not None and np.isfinite(float(value)):
                fig.add_trace(go.Scatter(
                    x=[daily["date"].iloc[0], daily["date"].iloc[-1]],
                    y=[float(value)] * 2, mode="lines", name=f"{label} {float(value):g}",
                    line={"color": colour, "dash": "dashdot", "width": 1.2}))
    if releases is not None and len(releases):
        fig.add_trace(go.Scatter(
            x=releases["date"], y=releases["price"], mode="markers", name="reserve release",
            marker={"symbol": "triangle-down", "size": 11, "color": "#ae3ec9"},
            customdata=releases["volume"] / 1e6,
            hovertemplate="released %{customdata:.2f} Mt at %{y:.2f} CNY/t<extra></extra>"))
    if observed is not None and len(observed):
        fig.add_trace(go.Scatter(x=observed["date"], y=observed["close"],
                                 name="observed CEA close", line={"color": "#495057",
                                                                  "width": 1}))
        fig.add_annotation(text=f"Observed closes. {attribution}", x=0, y=-0.32,
                           xref="paper", yref="paper", showarrow=False, xanchor="left",
                           font={"size": 10, "color": "#495057"})
    _deadline_lines(fig, deadlines)
    fig.update_layout(title=title, legend={"orientation": "h", "y": -0.15},
                      margin={"l": 60, "r": 20, "t": 50, "b": 90})
    fig.update_xaxes(title=None)
    return fig


def annual_price_chart(market_years: pd.DataFrame,
                       baseline: pd.DataFrame | None = None) -> go.Figure:
    """Each year's mean market close beside the equilibrium and fundamental prices.

    Args:
        market_years: ``market_years`` (year, mean_price, equilibrium_price,
            static_equilibrium_price, fundamental_price).
        baseline: The baseline run's ``market_years``: its mean close as a ghost line.

    Returns:
        Lines with markers per year, CNY/t; the market's mean is over days with a
        close, and a year without any listed trade is a gap.
    """
    title = "Annual prices: market close, equilibria, fundamental"
    if _is_empty(market_years):
        return empty_figure("Run a scenario to see its annual prices", title)
    fig = go.Figure()
    if baseline is not None and len(baseline):
        _ghost(fig, baseline["year"], baseline["mean_price"], "baseline: mean market close")
    series = [("mean_price", "close", "mean market close", LINE_COLOUR, "solid"),
              ("equilibrium_price", "equilibrium_price", None, "#2b8a3e", "solid"),
              ("static_equilibrium_price", "static_equilibrium_price", None, "#2b8a3e",
               "dot"),
              ("fundamental_price", "fundamental_price", None, "#e8590c", "dash")]
    for column, kind, name, colour, dash in series:
        if column in market_years:
            kwargs = {"name": name} if name else {}
            fig.add_trace(_price_trace(kind, market_years["year"], market_years[column],
                                       mode="lines+markers", connectgaps=False,
                                       line={"color": colour, "dash": dash}, **kwargs))
    fig.update_xaxes(dtick=1)
    return _layout(fig, title, "", "CNY/t")


def scarcity_chart(market_years: pd.DataFrame) -> go.Figure:
    """Quota issued against verified emissions, with the scarcity ratio.

    Args:
        market_years: ``market_years``.

    Returns:
        The bars of :func:`quota_vs_emissions` and the ratio verified emissions /
        quota issued on a second axis (above 1: short of quota).
    """
    title = "Scarcity: quota issued vs verified emissions"
    scarcity = analysis.scarcity_table(market_years) if len(market_years) else None
    if scarcity is None or scarcity.empty:
        return empty_figure("No compliance years in this run", title)
    fig = quota_vs_emissions(market_years)
    fig.add_trace(go.Scatter(x=scarcity["year"], y=scarcity["scarcity_ratio"], yaxis="y2",
                             name="scarcity ratio (emissions / quota)", mode="lines+markers",
                             line={"color": "#c92a2a", "width": 2}))
    fig.add_shape(type="line", xref="paper", x0=0, x1=1, yref="y2", y0=1, y1=1,
                  line={"color": "#c92a2a", "width": 1, "dash": "dot"})
    low = float(np.nanmin(scarcity["scarcity_ratio"])) if scarcity["scarcity_ratio"].notna(
    ).any() else 1.0
    high = float(np.nanmax(scarcity["scarcity_ratio"])) if scarcity["scarcity_ratio"].notna(
    ).any() else 1.0
    pad = max(0.01, (high - low) * 0.2)
    fig.update_xaxes(title=None)
    fig.update_layout(title=title, yaxis2={"overlaying": "y", "side": "right",
                                           "title": "scarcity ratio", "showgrid": False,
                                           "tickformat": ".3f",
                                           "range": [min(low, 1.0) - pad, max(high, 1.0) + pad]},
                      margin={"l": 60, "r": 60, "t": 50, "b": 40})
    return fig


def bank_chart(market_years: pd.DataFrame, baseline: pd.DataFrame | None = None) -> go.Figure:
    """The surplus banked, the quota held in accounts and the reserve pool at year ends.

    Args:
        market_years: ``market_years`` (year, free_allocation, auctioned, reserve_out,
            verified_emissions, bank_total, reserve_holdings).
        baseline: The baseline run's ``market_years``: its surplus as a grey ghost line.

    Returns:
        Bars of the surplus banked (cumulative quota issued - verified emissions, see
        ``analysis.bank_table``), the holdings in accounts as a line (they include quota
        issued for obligations not yet surrendered, which under an absolute cap is about
        a year's cap), and the reserve pool's holdings.
    """
    title = "Bank: surplus banked and quota held at year end"
    if _is_empty(market_years):
        return empty_figure("Run a scenario to see the bank", title)
    table = analysis.bank_table(market_years)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=table["year"], y=table["surplus_banked"] / 1e6,
                         name="surplus banked (issued - verified, cumulative)",
                         marker={"color": LINE_COLOUR}))
    fig.add_trace(go.Scatter(x=table["year"], y=table["holdings"] / 1e6,
                             name="held in accounts (incl. quota not yet surrendered)",
                             mode="lines+markers", line={"color": "#868e96", "dash": "dot"}))
    if table["reserve_holdings"].any():
        fig.add_trace(go.Scatter(x=table["year"], y=table["reserve_holdings"] / 1e6,
                                 name="reserve pool", mode="lines+markers",
                                 line={"color": "#ae3ec9"}))
    if baseline is not None and len(baseline):
        ghost = analysis.bank_table(baseline)
        _ghost(fig, ghost["year"], ghost["surplus_banked"] / 1e6, "baseline: surplus banked")
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig.update_xaxes(dtick=1)
    return _layout(fig, title, "", "Mt CO2")


def sector_balance_chart(firm_years: pd.DataFrame) -> go.Figure:
    """Surplus and deficit of quota (free allocation - verified emissions) by sector.

    Args:
        firm_years: ``firm_years``.

    Returns:
        Relative bars per year: each sector's surplus above zero (solid) and deficit
        below (hatched), in Mt.
    """
    title = "Surplus and deficit by sector (quota received - verified emissions)"
    balance = analysis.sector_balance(firm_years) if not _is_empty(firm_years) else None
    if balance is None or balance.empty:
        return empty_figure("No firm years in this run", title)
    fig = go.Figure()
    for sector, group in balance.groupby("sector", sort=True):
        colour = SECTOR_COLOURS.get(str(sector))
        fig.add_trace(go.Bar(x=group["year"], y=group["surplus"] / 1e6, name=f"{sector} surplus",
                             marker={"color": colour}, legendgroup=str(sector)))
        fig.add_trace(go.Bar(x=group["year"], y=group["deficit"] / 1e6, name=f"{sector} deficit",
                             marker={"color": colour, "pattern": {"shape": "/"},
                                     "opacity": 0.6}, legendgroup=str(sector)))
    fig.update_layout(barmode="relative")
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig.update_xaxes(dtick=1)
    return _layout(fig, title, "", "Mt CO2 (free + auctioned - verified)")


def incentive_chart(firm_years: pd.DataFrame, year: int | None = None) -> go.Figure:
    """The incentive: each firm's surplus ratio against its intensity / benchmark.

    Args:
        firm_years: ``firm_years``.
        year: The compliance year to show (None: every year).

    Returns:
        The scatter of :func:`surplus_vs_intensity` for that year.
    """
    title = "Incentive: surplus ratio against intensity"
    data = firm_years if year is None or _is_empty(firm_years) else \
        firm_years[firm_years["year"] == year]
    if _is_empty(data):
        return empty_figure("No firms in this year", title)
    fig = surplus_vs_intensity(data)
    # SVG markers instead of WebGL: a browser without a GPU draws WebGL slowly, and a
    # few thousand points need none
    # and the largest sector first, so the smaller ones stay visible on top of it: the
    # ratio is the same function of intensity / benchmark in every sector
    traces = sorted(fig.data, key=lambda trace: -len(trace.x))
    symbols = ["circle", "square", "diamond", "triangle-up", "x", "cross"]
    fig = go.Figure(data=[go.Scatter({k: v for k, v in trace.to_plotly_json().items()
                                      if k != "type"}) for trace in traces],
                    layout=fig.layout)
    for index, trace in enumerate(fig.data):
        trace.marker.symbol = symbols[index % len(symbols)]
    if year is not None:
        fig.update_layout(title=f"{title}, {year}")
    if not (data["surplus_ratio"].fillna(0).abs() > 1e-12).any():
        fig.add_annotation(text="Quota equals verified emissions this year: no surplus, "
                                "no deficit", x=0.5, y=0.9, xref="paper", yref="paper",
                           showarrow=False, font={"size": 12, "color": "#495057"})
    return fig


def abatement_chart(firm_years: pd.DataFrame, firms: pd.DataFrame,
                    abatement_options: pd.DataFrame) -> go.Figure:
    """Abatement by technology per year, and its cost.

    Args:
        firm_years: ``firm_years`` (output per firm and year).
        firms: ``firms`` (baseline_intensity).
        abatement_options: ``abatement_options`` (adopted_year, lead_time_years, ...).

    Returns:
        Stacked bars of Mt abated by each technology and the year's total abatement
        cost (billion CNY) as a line on a second axis.
    """
    title = "Abatement by technology and its cost"
    if _is_empty(firm_years, firms, abatement_options):
        return empty_figure("No abatement options in this run", title)
    tech = analysis.abatement_by_technology(firm_years, firms, abatement_options)
    if tech.empty:
        return empty_figure("No firm adopted an abatement option", title)
    fig = go.Figure()
    for index, (option, group) in enumerate(tech.groupby("option", sort=True)):
        fig.add_trace(go.Bar(
            x=group["year"], y=group["tonnes"] / 1e6, name=str(option).replace("_", " "),
            marker={"color": OPTION_COLOURS[index % len(OPTION_COLOURS)]},
            customdata=group["cost_per_t"],
            hovertemplate="%{y:.2f} Mt at %{customdata:.0f} CNY/t<extra>%{fullData.name}"
                          "</extra>"))
    cost = tech.groupby("year", as_index=False)["cost"].sum()
    # billions for a national market, millions for a classroom one
    scale, unit = (1e9, "bn CNY") if cost["cost"].max() >= 1e9 else (1e6, "m CNY")
    fig.add_trace(go.Scatter(x=cost["year"], y=cost["cost"] / scale, yaxis="y2",
                             name=f"total cost ({unit})", mode="lines+markers",
                             line={"color": "black", "width": 2}))
    fig.update_layout(barmode="stack", yaxis2={"overlaying": "y", "side": "right",
                                               "title": unit, "showgrid": False,
                                               "rangemode": "tozero"})
    fig.update_xaxes(dtick=1)
    fig = _layout(fig, title, "", "Mt CO2 abated")
    fig.update_layout(margin={"l": 60, "r": 60, "t": 50, "b": 40})
    return fig


def volume_chart(market_daily: pd.DataFrame,
                 deadlines: list[str] | tuple[str, ...] = ()) -> go.Figure:
    """Monthly volume, listed and block, with the compliance deadlines marked.

    Args:
        market_daily: ``market_daily`` (year, month, volume, block_volume).
        deadlines: Compliance deadline dates.

    Returns:
        Stacked monthly bars in Mt: the run-up to each deadline stands out.
    """
    title = "Monthly volume: the run-up to the deadline"
    months = analysis.monthly_volume(market_daily) if not _is_empty(market_daily) else None
    if months is None or months.empty:
        return empty_figure("Run a scenario to see its volume", title)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=months["month"], y=months["listed_volume"] / 1e6, name="listed",
                         marker={"color": LINE_COLOUR}))
    if months["block_volume"].any():
        fig.add_trace(go.Bar(x=months["month"], y=months["block_volume"] / 1e6, name="block",
                             marker={"color": "#74c0fc"}))
    fig.update_layout(barmode="stack")
    _deadline_lines(fig, deadlines, label=False)
    fig = _layout(fig, title, "month", "Mt CO2 traded")
    fig.update_xaxes(title=None)
    return fig


def compliance_chart(market_years: pd.DataFrame) -> go.Figure:
    """Compliance per year: share of the obligation surrendered, share of firms on time.

    Args:
        market_years: ``market_years`` (compliance_rate, firms_compliant_share).

    Returns:
        Grouped bars in percent on an axis from 0 to 100%.
    """
    title = "Compliance rate"
    comp = market_years[market_years["compliance_rate"].notna()] if not _is_empty(
        market_years) else None
    if comp is None or comp.empty:
        return empty_figure("No compliance deadline in this run", title)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=comp["year"], y=comp["compliance_rate"] * 100,
                         name="obligation surrendered", marker={"color": LINE_COLOUR},
                         hovertemplate="%{y:.3f}%"))
    if "firms_compliant_share" in comp:
        fig.add_trace(go.Bar(x=comp["year"], y=comp["firms_compliant_share"] * 100,
                             name="firms with no shortfall", marker={"color": "#74c0fc"},
                             hovertemplate="%{y:.2f}%"))
    # bars start at zero: a zoomed axis makes 97% look like a failure
    fig.update_yaxes(range=[0, 102], rangemode="tozero")
    fig.update_layout(barmode="group")
    fig.update_xaxes(dtick=1)
    return _layout(fig, title, "", "%")


def quota_supply_demand(curves: dict[str, Any], year: int | None = None,
                        x_range: tuple[float, float] | None = None,
                        y_max: float | None = None) -> go.Figure:
    """The year's demand for and supply of quota, crossing at the one-year equilibrium.

    Args:
        curves: The result of ``dashboard.analysis.quota_curves``.
        year: The compliance year (for the title).
        x_range: Fixed x axis (Mt), e.g. ``analysis.curve_axes`` over every year, so
            that tightening visibly moves supply; None fits this year.
        y_max: Fixed top of the price axis (CNY/t); None fits this year.

    Returns:
        The demand curve (quota firms need at each price, falling as abatement pays),
        the fixed supply, their crossing and the year's mean market price.
    """
    title = f"Supply and demand of quota{f', {year}' if year else ''}"
    curve = curves.get("curve")
    if curve is None or curve.empty or not curves.get("unabated"):
        return empty_figure("No firm under an intensity or cap rule this year", title)
    price, mean_price = curves.get("price"), curves.get("mean_price")
    available = curves["available"] / 1e6
    top_candidates = [v for v in (price, mean_price, curves.get("model_price"))
                      if v is not None and np.isfinite(v)]
    y_max = y_max or max([100.0] + [v * 1.6 for v in top_candidates])
    demanded = curve["quota_demanded"] / 1e6
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=demanded, y=curve["price"], name="demand for quota",
                             line={"color": LINE_COLOUR, "width": 2.5, "shape": "vh"},
                             hovertemplate="%{x:,.1f} Mt needed at %{y:.0f} CNY/t"
                                           "<extra></extra>"))
    fig.add_trace(go.Scatter(x=[available, available], y=[0, y_max], name="supply of quota",
                             line={"color": "#c92a2a", "width": 2.5},
                             hovertemplate="%{x:,.1f} Mt available<extra></extra>"))
    if price is not None and np.isfinite(price):
        fig.add_trace(go.Scatter(x=[available], y=[price], mode="markers+text",
                                 name=analysis.price_name("static_equilibrium_price"),
                                 marker={"size": 13, "color": "#2b8a3e"},
                                 text=[f"  {price:.0f} CNY/t"], textposition="middle right",
                                 textfont={"size": 13}))
    if mean_price is not None and np.isfinite(mean_price):
        fig.add_shape(type="line", xref="paper", x0=0, x1=1, y0=mean_price, y1=mean_price,
                      line={"color": "#868e96", "dash": "dot"})
        fig.add_annotation(x=0, y=mean_price, xref="paper", text="market's mean price",
                           showarrow=False, yanchor="bottom", xanchor="left",
                           font={"size": 11, "color": "#495057"})
    # zoom on the region where the curves meet: from the quota needed at the top price
    at_top = curve.loc[curve["price"] <= y_max, "quota_demanded"].min() / 1e6
    unabated = curves["unabated"] / 1e6
    low = min(at_top, available)
    span = max(unabated - low, unabated * 0.01)
    fig.update_xaxes(range=list(x_range) if x_range else
                     [low - span * 0.15, unabated + span * 0.1])
    fig.update_yaxes(range=[0, y_max])
    fig = _layout(fig, title, "Mt CO2 of quota", "price (CNY/t)")
    fig.update_layout(hovermode="closest")
    return fig


def order_ladder(bids: pd.DataFrame, asks: pd.DataFrame, limit_down: float, limit_up: float,
                 incoming: dict[str, Any] | None = None, levels: int = 10) -> go.Figure:
    """The order book's ladder: the best price levels of each side.

    Args:
        bids: Resting buy quantity per level (price, quantity, orders), best first.
        asks: Resting sell quantity per level, best first.
        limit_down: The day's lowest admissible price.
        limit_up: The day's highest admissible price.
        incoming: The order being matched (side, price, remaining), if any.
        levels: Price levels shown per side.

    Returns:
        Horizontal bars: asks (red) above, bids (green) below, one row per price.
    """
    title = f"Order book ladder (limits {limit_down:.2f} to {limit_up:.2f} CNY/t)"
    if _is_empty(bids) and _is_empty(asks) and not incoming:
        return empty_figure("The book is empty: no resting orders yet", title)
    top_bids = bids.head(levels) if bids is not None else pd.DataFrame()
    top_asks = asks.head(levels).iloc[::-1] if asks is not None else pd.DataFrame()
    fig = go.Figure()
    labels_a = [f"{p:.2f}" for p in top_asks.get("price", [])]
    labels_b = [f"{p:.2f}" for p in top_bids.get("price", [])]
    fig.add_trace(go.Bar(y=labels_a, x=top_asks.get("quantity", []), orientation="h",
                         name="asks (sell orders)", marker={"color": ASK_COLOUR},
                         customdata=top_asks.get("orders", []),
                         hovertemplate="ask %{y}: %{x:,} t in %{customdata} orders"
                                       "<extra></extra>"))
    fig.add_trace(go.Bar(y=labels_b, x=top_bids.get("quantity", []), orientation="h",
                         name="bids (buy orders)", marker={"color": BID_COLOUR},
                         customdata=top_bids.get("orders", []),
                         hovertemplate="bid %{y}: %{x:,} t in %{customdata} orders"
                                       "<extra></extra>"))
    order = labels_a + labels_b
    if incoming:
        side = "buy" if incoming["side"] > 0 else "sell"
        at = "market" if incoming.get("price") is None else f"{incoming['price']:.2f}"
        fig.add_annotation(text=f"incoming {side} order: {incoming['remaining']:,} t at {at}",
                           x=1, y=1.0, xref="paper", yref="paper", xanchor="right",
                           showarrow=False, bgcolor="#fff3bf", font={"size": 12})
    fig.update_yaxes(categoryorder="array", categoryarray=order[::-1], type="category",
                     title="price (CNY/t)")
    fig = _layout(fig, title, "tonnes resting", "price (CNY/t)")
    fig.update_layout(hovermode="closest", bargap=0.15)
    return fig


def depth_chart(bids: pd.DataFrame, asks: pd.DataFrame, limit_down: float,
                limit_up: float) -> go.Figure:
    """Market depth: tonnes that could trade at each price or better, per side.

    Args:
        bids: Buy levels (price, quantity), best first.
        asks: Sell levels (price, quantity), best first.
        limit_down: The day's lowest admissible price.
        limit_up: The day's highest admissible price.

    Returns:
        Cumulative steps, bids falling to the left of the spread and asks rising to
        the right, with the price limits as dashed lines.
    """
    title = "Depth: cumulative tonnes at each price"
    if _is_empty(bids) and _is_empty(asks):
        return empty_figure("No resting orders: no depth yet", title)
    fig = go.Figure()
    if not _is_empty(bids):
        fig.add_trace(go.Scatter(x=bids["price"], y=bids["quantity"].cumsum(), name="bids",
                                 line={"color": BID_COLOUR, "shape": "vh"}, fill="tozeroy",
                                 fillcolor="rgba(43,138,62,0.2)"))
    if not _is_empty(asks):
        fig.add_trace(go.Scatter(x=asks["price"], y=asks["quantity"].cumsum(), name="asks",
                                 line={"color": ASK_COLOUR, "shape": "vh"}, fill="tozeroy",
                                 fillcolor="rgba(201,42,42,0.2)"))
    for value, name in ((limit_down, "limit down"), (limit_up, "limit up")):
        if value is not None and np.isfinite(value):
            fig.add_vline(x=value, line={"color": "#495057", "dash": "dash", "width": 1})
            fig.add_annotation(x=value, y=1, yref="paper", text=name, showarrow=False,
                               yanchor="bottom", font={"size": 10})
    fig = _layout(fig, title, "price (CNY/t)", "cumulative tonnes")
    fig.update_layout(hovermode="closest")
    return fig


def trade_network_chart(nodes: pd.DataFrame, edges: pd.DataFrame,
                        title: str = "Trade network") -> go.Figure:
    """A trade network drawn from a layout.

    Args:
        nodes: One row per trader: firm_id, x, y, sector, volume (t bought + sold),
            counterparties.
        edges: One row per trading pair: x0, y0, x1, y1, quantity.
        title: Chart title.

    Returns:
        Edges as thin lines (wider for larger volumes), traders as dots sized by
        volume and coloured by sector.
    """
    if _is_empty(nodes):
        return empty_figure("No trades between firms in this year", title)
    fig = go.Figure()
    if not _is_empty(edges):
        # three widths instead of one trace per edge keeps the figure light
        cuts = edges["quantity"].quantile([0.5, 0.9]).to_numpy()
        for lo, hi, width, alpha in ((-np.inf, cuts[0], 0.5, 0.25), (cuts[0], cuts[1], 1.0, 0.35),
                                     (cuts[1], np.inf, 2.0, 0.5)):
            part = edges[(edges["quantity"] > lo) & (edges["quantity"] <= hi)]
            if part.empty:
                continue
            xs = np.column_stack([part["x0"], part["x1"], np.full(len(part), np.nan)]).ravel()
            ys = np.column_stack([part["y0"], part["y1"], np.full(len(part), np.nan)]).ravel()
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip",
                                       line={"width": width, "color": f"rgba(73,80,87,{alpha})"},
                                       showlegend=False))
    size = 6 + 24 * np.sqrt(nodes["volume"] / max(float(nodes["volume"].max()), 1.0))
    for sector, group in nodes.assign(size=size).groupby("sector", sort=True):
        fig.add_trace(go.Scatter(
            x=group["x"], y=group["y"], mode="markers", name=str(sector),
            marker={"size": group["size"], "color": SECTOR_COLOURS.get(str(sector)),
                    "line": {"width": 0.5, "color": "white"}},
            customdata=np.stack([group["firm_id"], group["volume"] / 1e3,
                                 group["counterparties"]], axis=-1),
            hovertemplate="firm %{customdata[0]}<br>%{customdata[1]:,.0f} kt traded<br>"
                          "%{customdata[2]} counterparties<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(title=title, template="plotly_white", hovermode="closest",
                      legend={"orientation": "h", "y": -0.05},
                      margin={"l": 10, "r": 10, "t": 50, "b": 30})
    return fig


def firm_position_chart(firm_years: pd.DataFrame, firm_id: int | None = None) -> go.Figure:
    """A firm's position per year: quota received, emissions, trades and bank.

    Args:
        firm_years: The firm's rows of ``firm_years``.
        firm_id: For the title.

    Returns:
        Bars of free allocation, verified emissions and net purchases, and the bank at
        year end as a line, in kt.
    """
    title = f"Firm {firm_id}: position" if firm_id is not None else "Position"
    if _is_empty(firm_years):
        return empty_figure("Pick a firm in the table", title)
    fy = firm_years.sort_values("year")
    fig = go.Figure()
    fig.add_trace(go.Bar(x=fy["year"], y=fy["free_allocation"] / 1e3, name="free allocation",
                         marker={"color": "#74c0fc"}))
    fig.add_trace(go.Bar(x=fy["year"], y=fy["verified_emissions"] / 1e3,
                         name="verified emissions", marker={"color": "#495057"}))
    fig.add_trace(go.Bar(x=fy["year"], y=(fy["bought"] - fy["sold"]) / 1e3,
                         name="bought - sold", marker={"color": "#fab005"}))
    fig.add_trace(go.Scatter(x=fy["year"], y=fy["bank_end"] / 1e3, name="bank at year end",
                             mode="lines+markers", line={"color": "#c92a2a"}))
    fig.update_layout(barmode="group")
    fig.update_xaxes(dtick=1)
    return _layout(fig, title, "", "kt CO2")


def firm_trades_chart(trades: pd.DataFrame, firm_id: int | None = None) -> go.Figure:
    """A firm's trades over time: price, size and side.

    Args:
        trades: The firm's trades (``dashboard.analysis.firm_trades``: date, side,
            price, quantity).
        firm_id: For the title.

    Returns:
        A scatter of trade prices over dates, buys and sells apart, marker area by
        quantity.
    """
    title = f"Firm {firm_id}: trades" if firm_id is not None else "Trades"
    if _is_empty(trades):
        return empty_figure("This firm made no trades", title)
    fig = go.Figure()
    biggest = max(float(trades["quantity"].max()), 1.0)
    for side, colour in (("buy", BID_COLOUR), ("sell", ASK_COLOUR)):
        part = trades[trades["side"] == side]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["date"], y=part["price"], mode="markers", name=f"{side}s",
            marker={"color": colour, "size": 5 + 20 * np.sqrt(part["quantity"] / biggest),
                    "opacity": 0.7},
            customdata=np.stack([part["quantity"], part["counterparty"]], axis=-1),
            hovertemplate="%{x|%Y-%m-%d}: %{customdata[0]:,} t at %{y:.2f} CNY/t with firm "
                          "%{customdata[1]}<extra></extra>"))
    fig = _layout(fig, title, "date", "CNY/t")
    fig.update_layout(hovermode="closest")
    return fig


def firm_abatement_chart(firm_years: pd.DataFrame, firm_id: int | None = None) -> go.Figure:
    """A firm's abatement per year and its intensity against the benchmark.

    Args:
        firm_years: The firm's rows of ``firm_years``.
        firm_id: For the title.

    Returns:
        Bars of kt abated and lines of intensity and benchmark on a second axis.
    """
    title = f"Firm {firm_id}: abatement" if firm_id is not None else "Abatement"
    if _is_empty(firm_years):
        return empty_figure("Pick a firm in the table", title)
    fy = firm_years.sort_values("year")
    fig = go.Figure()
    fig.add_trace(go.Bar(x=fy["year"], y=fy["abatement"] / 1e3, name="abatement (kt)",
                         marker={"color": "#2b8a3e"},
                         customdata=fy["abatement_cost"] / 1e6,
                         hovertemplate="%{y:,.1f} kt for %{customdata:,.1f} m CNY"))
    fig.add_trace(go.Scatter(x=fy["year"], y=fy["intensity"], yaxis="y2", name="intensity",
                             mode="lines+markers", line={"color": "#495057"}))
    fig.add_trace(go.Scatter(x=fy["year"], y=fy["benchmark"], yaxis="y2", name="benchmark",
                             mode="lines", line={"color": "#e8590c", "dash": "dash"}))
    fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "showgrid": False,
                              "title": "tCO2 per unit", "tickformat": ".2f"})
    fig.update_xaxes(dtick=1)
    fig = _layout(fig, title, "", "kt CO2 abated")
    fig.update_layout(margin={"l": 60, "r": 60, "t": 50, "b": 40})
    return fig


# --- who pays, auctions, reserve; captions and CSV for every chart ------------------------

WHO_PAYS_PARTS = (("abatement_cost", "abatement", "#2b8a3e"),
                  ("net_quota_spend", "quota bought - sold (trade prices)", "#fab005"),
                  ("auction_payments", "auction payments", LINE_COLOUR),
                  ("reserve_payments", "reserve pool purchases", "#ae3ec9"),
                  ("penalties", "penalties", "#c92a2a"))


def who_pays_chart(who_pays: pd.DataFrame, baseline: pd.DataFrame | None = None
                   ) -> go.Figure:
    """Who pays: each sector's cost per tonne emitted, by kind of payment.

    Args:
        who_pays: ``analysis.who_pays`` (the ``*_per_t`` columns).
        baseline: The baseline run's ``analysis.who_pays``: its total per tonne as grey
            ghost markers.

    Returns:
        Relative bars per sector in CNY per tonne of verified emissions: costs above
        zero, net sales of quota below, and a black marker at the total.
    """
    title = "Who pays: cost per tonne emitted, by sector"
    if _is_empty(who_pays):
        return empty_figure("Run a scenario to see who pays", title)
    fig = go.Figure()
    for column, name, colour in WHO_PAYS_PARTS:
        values = who_pays[f"{column}_per_t"]
        if not values.fillna(0).any():
            continue
        fig.add_trace(go.Bar(x=who_pays["sector"], y=values, name=name,
                             marker={"color": colour},
                             customdata=who_pays[column] / 1e6,
                             hovertemplate="%{y:.2f} CNY/t (%{customdata:,.1f} m CNY)"
                                           f"<extra>{name}</extra>"))
    fig.add_trace(go.Scatter(x=who_pays["sector"], y=who_pays["total_cost_per_t"],
                             mode="markers", name="total",
                             marker={"symbol": "diamond", "size": 12, "color": "black"},
                             hovertemplate="total %{y:.2f} CNY/t<extra></extra>"))
    if baseline is not None and len(baseline):
        fig.add_trace(go.Scatter(x=baseline["sector"], y=baseline["total_cost_per_t"],
                                 mode="markers", name="baseline: total",
                                 marker={"symbol": "diamond-open", "size": 14,
                                         "color": "rgba(134,142,150,0.9)"}))
    fig.update_layout(barmode="relative")
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig = _layout(fig, title, "", "CNY per tonne of verified emissions")
    fig.update_layout(hovermode="closest")
    return fig


def auction_chart(auctions: pd.DataFrame) -> go.Figure:
    """Auctions by year: tonnes sold (bars) and the clearing price (line).

    Args:
        auctions: ``analysis.auction_results``.

    Returns:
        Bars of Mt sold from zero and the volume-weighted clearing price on a second
        axis, CNY/t.
    """
    title = "Auctions: volume and clearing price"
    if _is_empty(auctions):
        return empty_figure("No quota was auctioned in this run", title)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=auctions["year"], y=auctions["volume"] / 1e6, name="Mt sold",
                         marker={"color": "#74c0fc"}, customdata=auctions["revenue"] / 1e6,
                         hovertemplate="%{y:.2f} Mt for %{customdata:,.1f} m CNY"))
    fig.add_trace(go.Scatter(x=auctions["year"], y=auctions["clearing_price"], yaxis="y2",
                             name="clearing price", mode="lines+markers",
                             line={"color": LINE_COLOUR}))
    fig.update_layout(yaxis={"rangemode": "tozero"},
                      yaxis2={"overlaying": "y", "side": "right", "title": "CNY/t",
                              "showgrid": False, "rangemode": "tozero"})
    fig.update_xaxes(dtick=1)
    fig = _layout(fig, title, "", "Mt CO2 sold")
    fig.update_layout(margin={"l": 60, "r": 60, "t": 50, "b": 40})
    return fig


def reserve_chart(market_years: pd.DataFrame) -> go.Figure:
    """The reserve pool by year: intake, releases and holdings at year end.

    Args:
        market_years: ``market_years`` (reserve_in, reserve_out, reserve_holdings).

    Returns:
        Bars of intake (up) and releases (down) in Mt, holdings as a line.
    """
    title = "Reserve pool: intake, releases, holdings"
    if _is_empty(market_years) or "reserve_in" not in market_years:
        return empty_figure("No reserve pool in this run", title)
    years = market_years
    if not (years["reserve_in"].any() or years["reserve_out"].any()
            or years["reserve_holdings"].any()):
        return empty_figure("The reserve pool took in and released nothing", title)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=years["year"], y=years["reserve_in"] / 1e6, name="intake",
                         marker={"color": "#1098ad"}))
    fig.add_trace(go.Bar(x=years["year"], y=-years["reserve_out"] / 1e6, name="releases",
                         marker={"color": "#ae3ec9"}))
    fig.add_trace(go.Scatter(x=years["year"], y=years["reserve_holdings"] / 1e6,
                             name="holdings at year end", mode="lines+markers",
                             line={"color": "black"}))
    fig.update_layout(barmode="relative")
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig.update_xaxes(dtick=1)
    return _layout(fig, title, "", "Mt CO2")


DATA_SOURCE = "etsim simulation"


def caption(fig: go.Figure, label: str, source: str = DATA_SOURCE) -> go.Figure:
    """Stamp a chart with its run and data source, so a downloaded PNG says what it is.

    Args:
        fig: The chart (its title stays).
        label: The run's label (scenario, levers, seed).
        source: Where the data comes from.

    Returns:
        The same figure with a small caption in its top right corner: on one line
        when short, else the label and the source (split at "; ") on lines of their
        own, with the top margin grown to hold them, so that a half-width chart's PNG
        carries all of it.
    """
    lines = caption_lines(label, source)
    # above the deadline labels, which sit on the plot's top edge too
    labelled = any(a.text == "deadline" for a in fig.layout.annotations)
    if len(lines) > 1:
        top = fig.layout.margin.t if fig.layout.margin.t is not None else 100
        fig.update_layout(margin={"t": top + _CAPTION_LINE_PX * (len(lines) - 1)})
    fig.add_annotation(text="<br>".join(lines), x=1, y=1.0, xref="paper",
                       yref="paper", xanchor="right", yanchor="bottom", showarrow=False,
                       yshift=14 if labelled else 0, align="right",
                       font={"size": 9, "color": "#868e96"}, name="caption")
    return fig


_CAPTION_CHARS = 70  # about 350 px at 9 px: fits a half-width chart at 1280 px
_CAPTION_LINE_PX = 12


def caption_lines(label: str, source: str) -> list[str]:
    """The caption's lines: ``label | Source: source`` if it fits on one, else the label,
    then the source split at its "; " parts.

    Args:
        label: The run's label.
        source: Where the data comes from.

    Returns:
        One or more lines, none broken inside the label or a part of the source.
    """
    one_line = f"{label} | Source: {source}"
    if len(one_line) <= _CAPTION_CHARS:
        return [one_line]
    return [label] + [("Source: " if i == 0 else "") + part
                      for i, part in enumerate(source.split("; "))]


def _values(values: Any) -> Any:
    # plotly sends numeric arrays as base64 typed arrays ({"dtype", "bdata", "shape"})
    if isinstance(values, dict) and "bdata" in values:
        array = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
        return array.ravel()
    return values


def figure_csv(figure: dict[str, Any] | go.Figure) -> pd.DataFrame:
    """The data of a chart as a long table: one row per point of each trace.

    Args:
        figure: A figure or its JSON (as a ``dcc.Graph`` holds it).

    Returns:
        Columns series, x, y (and text where a trace has it); gaps stay empty.
    """
    traces = (figure.to_plotly_json() if isinstance(figure, go.Figure) else figure).get(
        "data", [])
    parts = []
    for index, trace in enumerate(traces):
        x = _values(trace.get("x"))
        y = _values(trace.get("y"))
        if x is None and y is None:
            continue
        part = pd.DataFrame({"x": pd.Series(list(x) if x is not None else [], dtype=object),
                             "y": pd.Series(list(y) if y is not None else [], dtype=object)})
        part.insert(0, "series", trace.get("name") or f"trace {index}")
        parts.append(part[part["x"].notna() | part["y"].notna()])
    if not parts:
        return pd.DataFrame(columns=["series", "x", "y"])
    return pd.concat(parts, ignore_index=True)
