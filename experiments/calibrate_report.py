"""The outputs of ``etsim calibrate``: fitted values, the candidates and the validation
report (one self-contained HTML file, plotly.js inlined once, as ``etsim report``'s).

The report shows the observed market beside the fitted model's runs (the best candidate
with ``final_replicates`` seeds): every moment per year with the min-max band over the
seeds, the monthly mean close and volume, the moment error table in and out of sample,
and the objective of every candidate the search tried.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from etsim.experiments.moments import UNITS, moment_errors, monthly_moments
from etsim.experiments.observed import OBSERVED_ATTRIBUTION, observed_daily
from etsim.experiments.report import _Page, _table
from etsim.model.results import read_table, write_file_atomic, write_json_atomic

if TYPE_CHECKING:
    from etsim.experiments.calibrate import CalibrationResult, RoundResult, Setup

REPORT_FILE = "report.html"
OBSERVED_COLOUR = "#222222"
SIMULATED_COLOUR = "#1f77b4"
TITLES = {"mean_price": "Mean close (CNY/t)", "volatility": "Daily volatility (sd of log "
          "returns)", "volume": "Volume (Mt, whole market)", "block_share": "Block share "
          "of volume", "deadline_share": "Share of volume in Nov-Dec", "q4_share":
          "Share of volume in Q4", "price_ratio": "Mean price / previous year's"}


def error_table(setup: Setup, final: RoundResult) -> pd.DataFrame:
    """The moment error table of the fitted candidate: each target, in or out of sample,
    observed value or bounds, simulated mean and min-max over seeds, relative error."""
    errors = moment_errors(setup.targets, final.moments)
    fit = setup.calibration.fit
    errors["sample"] = np.where(errors["year"].isin(fit.in_sample), "in",
                                np.where(errors["year"].isin(fit.out_of_sample), "out", "-"))
    errors["weight"] = errors["moment"].map(lambda m: setup.weights.get(m, 0.0))
    errors["unit"] = errors["moment"].map(UNITS)
    order = {"in": 0, "out": 1, "-": 2}
    errors = errors.sort_values(["sample", "moment", "year"],
                                key=lambda c: c.map(order) if c.name == "sample" else c,
                                ignore_index=True)
    return errors[["sample", "moment", "year", "unit", "weight", "target", "low", "high",
                   "simulated", "simulated_low", "simulated_high", "replicates", "error"]]


def summary_figures(errors: pd.DataFrame) -> dict[str, float]:
    """Headline accuracy figures: mean absolute relative error of the annual mean price
    and of all targets, in and out of sample."""
    figures: dict[str, float] = {}
    for sample in ("in", "out"):
        part = errors[errors["sample"] == sample]
        price = part[part["moment"] == "mean_price"]["error"].abs()
        figures[f"price_mae_{sample}"] = float(price.mean()) if len(price) else math.nan
        figures[f"all_mae_{sample}"] = (float(part["error"].abs().mean()) if len(part)
                                        else math.nan)
    return figures


def _final_monthly(final: RoundResult, scale: float) -> pd.DataFrame:
    frames = []
    summary = final.folder / "summary.parquet"
    runs = read_table(summary) if summary.is_file() else pd.DataFrame()
    for row in runs[runs["status"] == "ok"].itertuples() if len(runs) else []:
        daily = read_table(final.folder / "tables" / str(row.run_id) / "market_daily.parquet")
        frame = monthly_moments(daily, scale)
        frame["replicate"] = int(row.replicate)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["year", "month", "mean_price", "volume", "replicate"])


def _shade(fig: go.Figure, years: list[int], colour: str, label: str) -> None:
    for year in years:
        fig.add_vrect(x0=year - 0.5, x1=year + 0.5, fillcolor=colour, opacity=0.08,
                      line_width=0, annotation_text=label if year == years[0] else None,
                      annotation_position="top left")


def yearly_figure(errors: pd.DataFrame, simulated: pd.DataFrame, moment: str,
                  in_sample: list[int], out_of_sample: list[int]) -> go.Figure:
    """Observed (point or bounds) and simulated (mean, min-max over seeds) per year."""
    fig = go.Figure()
    sim = simulated[simulated["moment"] == moment].groupby("year")["value"]
    stats = pd.DataFrame({"mean": sim.mean(), "low": sim.min(), "high": sim.max()})
    if len(stats):
        fig.add_trace(go.Scatter(
            x=stats.index, y=stats["mean"], mode="lines+markers", name="simulated (mean)",
            line={"color": SIMULATED_COLOUR},
            error_y={"type": "data", "symmetric": False,
                     "array": stats["high"] - stats["mean"],
                     "arrayminus": stats["mean"] - stats["low"]}))
    observed = errors[errors["moment"] == moment]
    points = observed[observed["low"] == observed["high"]]
    bounds = observed[observed["low"] != observed["high"]]
    if len(points):
        fig.add_trace(go.Scatter(x=points["year"], y=points["target"], mode="markers",
                                 name="observed", marker={"color": OBSERVED_COLOUR,
                                                          "size": 10, "symbol": "diamond"}))
    if len(bounds):
        middle = (bounds["low"] + bounds["high"]) / 2
        fig.add_trace(go.Scatter(
            x=bounds["year"], y=middle, mode="markers", name="observed bounds",
            marker={"color": OBSERVED_COLOUR, "size": 1},
            error_y={"type": "data", "symmetric": False, "array": bounds["high"] - middle,
                     "arrayminus": middle - bounds["low"], "width": 8}))
    _shade(fig, in_sample, "#2ca02c", "fitted")
    _shade(fig, out_of_sample, "#d62728", "out of sample")
    fig.update_layout(title=TITLES.get(moment, moment), xaxis={"dtick": 1},
                      margin={"t": 50, "l": 50, "r": 20, "b": 40}, legend={"orientation": "h"})
    return fig


def monthly_figure(monthly: pd.DataFrame, observed: pd.DataFrame | None,
                   column: str, title: str) -> go.Figure:
    """A monthly series: simulated mean with its min-max band over seeds, and observed."""
    fig = go.Figure()
    if len(monthly):
        grouped = monthly.groupby(["year", "month"])[column]
        stats = pd.DataFrame({"mean": grouped.mean(), "low": grouped.min(),
                              "high": grouped.max()}).reset_index()
        x = pd.to_datetime(dict(year=stats["year"], month=stats["month"], day=15))
        fig.add_trace(go.Scatter(x=x, y=stats["high"], mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=stats["low"], mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor="rgba(31,119,180,0.2)",
                                 name="simulated min-max"))
        fig.add_trace(go.Scatter(x=x, y=stats["mean"], mode="lines", name="simulated mean",
                                 line={"color": SIMULATED_COLOUR}))
    if observed is not None and len(observed):
        x = pd.to_datetime(dict(year=observed["year"], month=observed["month"], day=15))
        fig.add_trace(go.Scatter(x=x, y=observed[column], mode="lines+markers",
                                 name="observed", line={"color": OBSERVED_COLOUR}))
    fig.update_layout(title=title, margin={"t": 50, "l": 50, "r": 20, "b": 40},
                      legend={"orientation": "h"})
    return fig


def candidates_figure(candidates: pd.DataFrame) -> go.Figure:
    """The objective of every candidate, in and out of sample, by round."""
    fig = go.Figure()
    for label, rows in candidates.groupby("round", sort=False):
        fig.add_trace(go.Scatter(x=rows["objective"], y=rows["objective_out_of_sample"],
                                 mode="markers", name=str(label)))
    fig.update_layout(title="Candidates: objective in sample (x) and out of sample (y)",
                      xaxis={"type": "log", "title": "in sample"},
                      yaxis={"type": "log", "title": "out of sample"},
                      margin={"t": 50, "l": 50, "r": 20, "b": 40})
    return fig


def _percent(value: Any, signed: bool = True) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"


def build_report(setup: Setup, candidates: pd.DataFrame, final: RoundResult,
                 result: CalibrationResult, errors: pd.DataFrame) -> str:
    """The validation report's HTML."""
    cal = setup.calibration
    scale = float(setup.base.scale)
    page = _Page(f"etsim calibration: {cal.name}")
    figures = summary_figures(errors)
    values = "".join(f"<li><code>{html.escape(k)}</code> = {v:.6g}</li>"
                     for k, v in result.best.items())
    runs = len(candidates) * cal.replicates
    page.text(
        f"<h1>Calibration {html.escape(cal.name)}</h1>"
        f"<p>{html.escape(cal.description)}</p>"
        f"<p>Scenario <code>{html.escape(cal.scenario)}</code> (scale {scale:g}). Simulated "
        f"method of moments: {len(candidates)} candidates x {cal.replicates} seeds "
        f"({runs} runs) in {candidates['round'].nunique()} rounds, then the best with "
        f"{cal.search.final_replicates} seeds. Fitted on "
        f"{', '.join(map(str, cal.fit.in_sample))}; held out: "
        f"{', '.join(map(str, cal.fit.out_of_sample)) or 'none'}.</p>"
        f"<h2>Fitted values</h2><ul>{values}</ul>"
        f"<p>Objective (weighted mean squared relative error) in sample "
        f"<b>{result.objective:.4g}</b>, out of sample "
        f"<b>{result.objective_out_of_sample:.4g}</b>. Mean absolute error of the annual "
        f"mean price: in sample {_percent(figures['price_mae_in'], False)}, out of sample "
        f"{_percent(figures['price_mae_out'], False)}; of every target: in sample "
        f"{_percent(figures['all_mae_in'], False)}, out of sample "
        f"{_percent(figures['all_mae_out'], False)}.</p>"
        f"<p class=\"note\">Observed prices: {html.escape(OBSERVED_ATTRIBUTION)} (CC "
        "BY-NC-SA 4.0). Volumes, block share and the timing of trading: the calibration "
        "sheet (docs/calibration-facts.md, sections 4 and 7). Bands: min-max over the "
        "seeds of the fitted candidate.</p>")
    simulated = final.moments
    shown_moments = [m for m in TITLES if m in set(errors["moment"]) or
                     m in set(simulated["moment"])]
    page.text("<h2>Observed and simulated, per year</h2>")
    page.grid([(yearly_figure(errors, simulated, m, cal.fit.in_sample, cal.fit.out_of_sample),
                f"calibrate-year-{m}") for m in shown_moments])
    page.text("<h2>Per month</h2>")
    monthly = _final_monthly(final, scale)
    observed = monthly_moments(observed_daily())
    page.grid([(monthly_figure(monthly, observed, "mean_price", "Monthly mean close (CNY/t)"),
                "calibrate-month-price"),
               (monthly_figure(monthly, None, "volume", "Monthly volume (Mt, whole market; "
                               "no observed monthly volumes)"), "calibrate-month-volume")])
    page.text("<h2>Moment errors</h2><p class=\"note\">sample: in = fitted, out = held out. "
              "target: the observed value; low-high: its bounds where only bounds are "
              "known. error: (simulated mean - observed) / observed, or the distance "
              "outside the bounds.</p>")
    shown_errors = errors.assign(error=errors["error"].map(_percent))
    page.text(_table(shown_errors))
    page.text("<h2>Search</h2>")
    page.grid([(candidates_figure(candidates), "calibrate-candidates")])
    best = candidates.sort_values("objective").head(10)
    page.text("<p>The ten best candidates:</p>" + _table(best))
    return page.html()


def _finite(data: Any) -> Any:
    """NaN as null: JSON has no NaN."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def write_outputs(setup: Setup, out: Path, candidates: pd.DataFrame, final: RoundResult,
                  result: CalibrationResult) -> None:
    """Write candidates (Parquet, CSV), fitted values (TOML, JSON) and report.html."""
    from etsim.experiments.calibrate import CANDIDATES_FILE, FITTED_JSON, FITTED_TOML, fitted_toml

    errors = error_table(setup, final)
    write_file_atomic(out / CANDIDATES_FILE, lambda p: candidates.to_parquet(p, index=False))
    write_file_atomic(out / "candidates.csv", lambda p: candidates.to_csv(p, index=False))
    snippet = fitted_toml(setup, result.best, result.objective, result.objective_out_of_sample)
    write_file_atomic(out / FITTED_TOML, lambda p: p.write_text(snippet, encoding="utf-8"))
    records = json.loads(errors.to_json(orient="records"))
    write_json_atomic(out / FITTED_JSON, _finite({
        "calibration": setup.calibration.name, "scenario": setup.calibration.scenario,
        "parameters": result.best, "objective": result.objective,
        "objective_out_of_sample": result.objective_out_of_sample,
        "in_sample": setup.calibration.fit.in_sample,
        "out_of_sample": setup.calibration.fit.out_of_sample,
        "final_replicates": setup.calibration.search.final_replicates,
        "weights": setup.weights, **summary_figures(errors), "moments": records,
    }))
    text = build_report(setup, candidates, final, result, errors)
    write_file_atomic(out / REPORT_FILE, lambda p: p.write_text(text, encoding="utf-8"))
