"""Figure builders for the History page: the observed market beside a simulated run.

Pure functions: observed closes (``analysis.observed_prices``), a run's ``market_daily``
and the year table of ``analysis.history_years`` in, a ``go.Figure`` out. The observed
closes are always drawn with their attribution; the simulated run is split where the
observed data end: the years it can be checked against, then its projection.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from etsim.dashboard import analysis
from etsim.dashboard.figures.run import _layout, empty_figure

OBSERVED_COLOUR = "#212529"
SIMULATED_COLOUR = "#1f3b8f"
PROJECTION_COLOUR = "#748ffc"
# The licence of the observed closes asks for this wherever they are plotted.
OBSERVED_SOURCE = f"{analysis.OBSERVED_ATTRIBUTION} (CC BY-NC-SA 4.0)"


def _observed_end(observed: pd.DataFrame) -> pd.Timestamp | None:
    return pd.Timestamp(observed["date"].max()) if len(observed) else None


def history_price_chart(observed: pd.DataFrame, simulated: pd.DataFrame | None = None,
                        status: str = "") -> go.Figure:
    """Observed daily closes, the simulated close over the same days, then its projection.

    Args:
        observed: Observed closes (date, close).
        simulated: The run's ``market_daily`` (date, close); None before a run. A day
            without a listed trade has no close: a gap.
        status: Shown on the chart when there is no simulated run yet (e.g. "the
            simulated run is computing").

    Returns:
        A line chart in CNY/t over dates: "observed CEA close", "simulated close" (to
        the last observed day), "projection" (after it) and a line where the observed
        data end.
    """
    title = "CEA price: observed closes and the simulated market"
    if observed.empty and (simulated is None or simulated.empty):
        return empty_figure("No observed or simulated prices", title)
    fig = go.Figure()
    close = analysis.price_name("close")
    fig.add_trace(go.Scatter(x=observed["date"], y=observed["close"],
                             name=f"observed CEA {close}",
                             line={"color": OBSERVED_COLOUR, "width": 1.4},
                             hovertemplate="%{y:.2f} CNY/t<extra>observed</extra>"))
    end = _observed_end(observed)
    if simulated is not None and len(simulated):
        daily = simulated.sort_values("date")
        dates = pd.to_datetime(daily["date"])
        past = daily[dates <= end] if end is not None else daily
        future = daily[dates > end] if end is not None else daily.iloc[0:0]
        fig.add_trace(go.Scatter(x=past["date"], y=past["close"], name=f"simulated {close}",
                                 line={"color": SIMULATED_COLOUR, "width": 1.2},
                                 connectgaps=False,
                                 hovertemplate="%{y:.2f} CNY/t<extra>simulated</extra>"))
        if len(future):
            fig.add_trace(go.Scatter(x=future["date"], y=future["close"],
                                     name=f"projection ({close})",
                                     line={"color": PROJECTION_COLOUR, "width": 1.2},
                                     connectgaps=False,
                                     hovertemplate="%{y:.2f} CNY/t<extra>projection</extra>"))
    elif status:
        fig.add_annotation(text=status, x=0.5, y=0.92, xref="paper", yref="paper",
                           showarrow=False, font={"size": 13, "color": "#495057"})
    if end is not None:
        fig.add_vline(x=end.timestamp() * 1000, line={"color": "#adb5bd", "dash": "dot"})
        fig.add_annotation(text="observed data end", x=end, y=1, yref="paper",
                           xanchor="right", yanchor="top", showarrow=False,
                           font={"size": 10, "color": "#868e96"})
    fig.add_annotation(text=f"Observed closes: {OBSERVED_SOURCE}", x=0, y=-0.27,
                       xref="paper", yref="paper", showarrow=False, xanchor="left",
                       font={"size": 10, "color": "#495057"})
    fig = _layout(fig, title, "", "CNY/t")
    fig.update_layout(legend={"orientation": "h", "y": -0.12},
                      margin={"l": 60, "r": 20, "t": 50, "b": 110})
    return fig


def _year_bars(years: pd.DataFrame, observed: str, simulated: str, title: str,
               y_title: str, empty: str) -> go.Figure:
    if years.empty:
        return empty_figure(empty, title)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=years["year"], y=years[observed], name="observed",
                         marker_color=OBSERVED_COLOUR))
    past = years[~years["projection"]]
    future = years[years["projection"]]
    fig.add_trace(go.Bar(x=past["year"], y=past[simulated], name="simulated",
                         marker_color=SIMULATED_COLOUR))
    if len(future):
        fig.add_trace(go.Bar(x=future["year"], y=future[simulated], name="projection",
                             marker_color=PROJECTION_COLOUR))
    fig.update_layout(barmode="group")
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "", y_title)


def history_annual_price_chart(years: pd.DataFrame) -> go.Figure:
    """Annual mean close, observed and simulated, then the projected years.

    Args:
        years: ``analysis.history_years``.

    Returns:
        Grouped bars in CNY/t per year, from zero.
    """
    return _year_bars(years, "observed_price", "simulated_price",
                      "Annual mean close (days with a close)", "CNY/t",
                      "Run a scenario to compare its annual prices")


def history_volume_chart(years: pd.DataFrame) -> go.Figure:
    """Annual traded volume, observed (calibration sheet) and simulated (at full scale).

    Args:
        years: ``analysis.history_years``.

    Returns:
        Grouped bars in Mt per year, from zero.
    """
    return _year_bars(years, "observed_volume_mt", "simulated_volume_mt",
                      "Annual volume traded (2021 from 16 July)", "Mt CO2",
                      "Run a scenario to compare its volumes")

