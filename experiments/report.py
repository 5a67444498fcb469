"""Self-contained HTML reports (plotly) for a sweep folder or a single run's results.

``write_report(DIR)`` writes ``DIR/report.html``: one file with plotly.js inlined once,
no external scripts, readable offline. For a sweep: each factor (lever or uncertainty)
against each headline figure, mean and min-max band over replicates, the mean price of
each year per factor value, failed runs, and Sobol indices for a ``sobol`` experiment.
For a run: the dashboard's main charts. The figures come from ``dashboard.figures``.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from etsim.dashboard import analysis
from etsim.dashboard.figures import run as run_figures
from etsim.dashboard.figures import sweep as sweep_figures
from etsim.dashboard.runs import deadline_dates
from etsim.experiments.experiment import Factor, sobol_problem
from etsim.experiments.sweep import SUMMARY_FILE, SWEEP_FILE, assemble_summary, headline_columns
from etsim.model.messages import shown_name
from etsim.model.results import (
    cannot_write,
    check_output_folder,
    read_json_file,
    read_results,
    read_table,
    write_file_atomic,
)
from etsim.model.scenario import Scenario, ScenarioError

REPORT_FILE = "report.html"
CHART_HEIGHT = "430px"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
        gap: 1rem; }
.chart { border: 1px solid #eee; border-radius: 4px; }
table { border-collapse: collapse; font-size: 0.9rem; }
td, th { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; }
.note { color: #666; font-size: 0.9rem; }
"""


# The columns the report reads, per results table (a table it does not read, or one a
# sweep did not keep, may be absent); other columns may be missing or added.
REPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "market_daily": ("date", "year", "month", "close", "volume", "limit_down", "limit_up"),
    "firm_years": ("firm_id", "sector", "year", "intensity", "verified_emissions",
                   "benchmark", "penalty", "abatement_cost", "surplus_ratio"),
    "market_years": ("year", "free_allocation", "auctioned", "reserve_out",
                     "reserve_holdings", "verified_emissions", "bank_total",
                     "equilibrium_price"),
    "trades": ("date", "buyer_id", "seller_id", "price", "quantity", "kind"),
}
# A sweep's summary.parquet: the columns of every run's row.
SUMMARY_COLUMNS = ("run_id", "point", "replicate", "seed", "status")


class ReportError(ScenarioError):
    """A folder that cannot be reported on: one line, exit status 2."""


def check_columns(table: pd.DataFrame, needed: tuple[str, ...], path: Path) -> None:
    """Refuse a table without columns the report reads.

    Raises:
        ReportError: One line naming the file and the missing columns.
    """
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise ReportError(f"{shown_name(path)}: missing the column{'s' * (len(missing) > 1)} "
                          f"{', '.join(missing)}, which the report reads")


class _Page:
    """An HTML page of figures; plotly.js goes in with the first figure only."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.bundled = False

    def text(self, markup: str) -> None:
        self.parts.append(markup)

    def figure(self, fig: go.Figure, div_id: str) -> str:
        include: Any = "inline" if not self.bundled else False
        self.bundled = True
        return ('<div class="chart">' + pio.to_html(
            fig, include_plotlyjs=include, full_html=False, div_id=div_id,
            default_height=CHART_HEIGHT, config={"displaylogo": False}) + "</div>")

    def grid(self, figures: list[tuple[go.Figure, str]]) -> None:
        self.parts.append('<div class="grid">' + "".join(
            self.figure(fig, div_id) for fig, div_id in figures) + "</div>")

    def html(self) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
                f"<body>{''.join(self.parts)}</body></html>\n")


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, na_rep="-", float_format=lambda v: f"{v:.4g}")


def write_report(directory: str | Path) -> Path:
    """Write ``report.html`` into a sweep folder or a single run's results folder.

    Args:
        directory: A sweep folder (with ``runs/``, ``summary.parquet`` or
            ``sweep.json``) or a results folder with ``run.json`` (from ``etsim run``,
            or a sweep's ``tables/RUN_ID``).

    Returns:
        The report's path.

    Raises:
        ReportError: The folder is missing or neither kind (exit status 2).
        ResultsError: A file in it is corrupt, or the report cannot be written there
            (exit status 2); nothing is written.
    """
    folder = Path(directory)
    name = shown_name(folder)
    if not folder.is_dir():
        raise ReportError(f"{name}: a file, not a folder" if os.path.lexists(folder) else
                          f"{name}: no such folder")
    if (folder / "run.json").is_file():
        build = _run_page
    elif any((folder / part).exists() for part in (SWEEP_FILE, SUMMARY_FILE, "runs")):
        build = _sweep_page
    else:
        raise ReportError(f"{name}: neither a run's results folder (no run.json) nor a sweep "
                          f"folder (no {SWEEP_FILE}, {SUMMARY_FILE} or runs/)")
    check_output_folder(folder)  # before the work of reading and drawing
    text = build(folder).html()
    target = folder / REPORT_FILE
    try:
        return write_file_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))
    except OSError as err:  # a full disk: the staging copy is gone
        raise cannot_write(shown_name(target), err) from None


# --- a single run ---------------------------------------------------------------------------


def _deadlines(record: dict[str, Any], tables: dict[str, pd.DataFrame]) -> list[str]:
    if "market_daily" not in tables:
        return []
    try:
        scenario = Scenario.model_validate(record.get("scenario", {}))
    except ValueError:  # a record written under an older schema: no deadline marks
        return []
    return deadline_dates(scenario, tables["market_daily"])


def run_charts(tables: dict[str, pd.DataFrame],
               record: dict[str, Any] | None = None) -> list[tuple[go.Figure, str]]:
    """The dashboard's main charts of one run that its tables allow, with element ids.

    Price (daily close in its limit band, with the equilibrium and fundamental prices),
    scarcity (quota issued against verified emissions), bank, monthly volume, the
    incentive (surplus ratio against intensity), who pays per tonne by sector, auctions
    and the reserve pool; deadlines are marked when ``record``
    (``run.json``) gives the scenario.
    """
    deadlines = _deadlines(record or {}, tables)
    daily, years = tables.get("market_daily"), tables.get("market_years")
    charts = []
    if daily is not None:
        charts.append((run_figures.price_chart(daily, years, deadlines=deadlines),
                       "run-price"))
    if years is not None:
        charts.append((run_figures.scarcity_chart(years), "run-scarcity"))
        charts.append((run_figures.bank_chart(years), "run-bank"))
    if daily is not None:
        charts.append((run_figures.volume_chart(daily, deadlines=deadlines), "run-volume"))
    if "firm_years" in tables:
        charts.append((run_figures.incentive_chart(tables["firm_years"]), "run-incentive"))
        charts.append((run_figures.who_pays_chart(
            analysis.who_pays(tables["firm_years"], tables.get("trades"))), "run-who-pays"))
    auctions = analysis.auction_results(tables.get("trades"))
    if len(auctions):  # a run without auctions or reserve activity has no such chart
        charts.append((run_figures.auction_chart(auctions), "run-auctions"))
    if years is not None and "reserve_in" in years and (
            years["reserve_in"].any() or years["reserve_out"].any()):
        charts.append((run_figures.reserve_chart(years), "run-reserve"))
    return charts


WHO_PAYS_SHOWN = (("sector", "sector"), ("verified_emissions", "verified emissions (Mt)"),
                  ("abatement_cost", "abatement"), ("net_quota_spend", "quota bought - sold"),
                  ("auction_payments", "auctions"), ("reserve_payments", "reserve pool"),
                  ("penalties", "penalties"), ("total_cost", "total"))


def who_pays_section(tables: dict[str, pd.DataFrame]) -> str:
    """The report's "Who pays" section: each sector's payments in million CNY and per
    tonne of verified emissions (``dashboard.analysis.who_pays``); "" without firm_years.
    """
    if "firm_years" not in tables:
        return ""
    table = analysis.who_pays(tables["firm_years"], tables.get("trades"))
    if table.empty:
        return ""
    shown = pd.DataFrame({"sector": table["sector"],
                          "verified emissions (Mt)": table["verified_emissions"] / 1e6})
    for column, label in WHO_PAYS_SHOWN[2:]:
        shown[f"{label} (m CNY)"] = table[column] / 1e6
    for column, label in WHO_PAYS_SHOWN[2:]:
        shown[f"{label} (CNY/t)"] = table[f"{column}_per_t"]
    auctions = analysis.auction_results(tables.get("trades"))
    parts = ["<h2>Who pays</h2>", _table(shown.round(3)),
             '<p class="note">Over the whole run. Quota bought and sold between firms at '
             "their trade prices (listed and block); a net seller's is negative. Per "
             "tonne: divided by the sector's verified emissions.</p>"]
    if len(auctions):
        parts += ["<h3>Auctions</h3>", _table(auctions.round(3))]
    years = tables.get("market_years")
    if years is not None and {"reserve_in", "reserve_out"} <= set(years.columns) and (
            years["reserve_in"].any() or years["reserve_out"].any()):
        parts += ["<h3>Reserve pool</h3>",
                  _table(years[["year", "reserve_in", "reserve_out", "reserve_holdings"]])]
    return "".join(parts)


def _run_page(folder: Path) -> _Page:
    tables, record = read_results(folder)
    for table, needed in REPORT_COLUMNS.items():
        if table in tables:
            check_columns(tables[table], needed, folder / f"{table}.parquet")
    scenario = _table_at(record, "scenario")
    name = scenario.get("name", folder.name)
    page = _Page(f"etsim run: {name}")
    page.text(f"<h1>Run of {html.escape(str(name))}, seed {html.escape(str(record.get('seed')))}"
              "</h1>")
    invariants = _table_at(record, "invariants")
    facts = pd.DataFrame([
        ("scenario", name),
        ("compliance years", f"{scenario.get('start_year')}-{scenario.get('end_year')}"),
        ("firms", record.get("firms")),
        ("trading days", record.get("trading_days")),
        ("wall time (s)", record.get("wall_time_s")),
        ("ledger check", "ok" if invariants.get("ok") is True else "; ".join(
            map(str, invariants.get("violations") or [])) or "-"),
    ], columns=["", "value"])
    page.text(_table(facts))
    if scenario.get("description"):
        page.text(f'<p class="note">{html.escape(str(scenario["description"]))}</p>')
    if "market_years" in tables:
        years = tables["market_years"]
        columns = [c for c in ("year", "mean_price", "equilibrium_price", "volume",
                               "compliance_rate", "verified_emissions", "bank_total")
                   if c in years]
        page.text("<h2>Years</h2>" + _table(years[columns])
                  + '<p class="note">mean_price: mean close over the days with listed '
                  "trades (a day without has no close); - where no day of the year "
                  "had one.</p>")
    page.text(who_pays_section(tables))
    page.text("<h2>Charts</h2>")
    page.grid(run_charts(tables, record))
    return page


def _table_at(record: dict[str, Any], key: str) -> dict[str, Any]:
    """A table in a record, or an empty one if it is missing or not a table."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


# --- a sweep ---------------------------------------------------------------------------------


def _factor_columns(summary: pd.DataFrame, meta: dict[str, Any]) -> list[dict[str, Any]]:
    if meta.get("factors"):
        return [f for f in meta["factors"] if f["column"] in summary]
    # no sweep.json: the columns between seed and status are the factors
    columns = list(summary.columns)
    if "seed" in columns and "status" in columns:
        names = columns[columns.index("seed") + 1:columns.index("status")]
        return [{"column": c, "key": c, "kind": "lever", "categorical": None} for c in names]
    return []


def sweep_charts(summary: pd.DataFrame,
                 factor_list: list[dict[str, Any]]) -> list[tuple[go.Figure, str]]:
    """Each factor against each headline figure, ids ``lever-I-J`` (factor I, headline J)."""
    charts = []
    for i, factor in enumerate(factor_list):
        # labelled values are categories; numeric lists and ranges get a line and band
        categorical = True if factor.get("labels") else None
        for j, headline in enumerate(headline_columns(summary.columns)):
            fig = sweep_figures.lever_effect(summary, factor["column"], headline,
                                             categorical=categorical)
            charts.append((fig, f"lever-{i}-{j}"))
    return charts


def sobol_table(summary: pd.DataFrame, meta: dict[str, Any], headline: str) -> pd.DataFrame | None:
    """Sobol indices of a headline figure from a ``sobol`` sweep, or None if incomplete.

    The figure is averaged over replicates at each point; every point must have a
    finite value, in SALib's sample order.
    """
    try:
        from SALib.analyze import sobol
    except ImportError:
        return None
    factor_list = [Factor(key=f["key"], column=f["column"], kind=f["kind"], keys=tuple(f["keys"]),
                          low=f["low"], high=f["high"], integer=f["integer"])
                   for f in meta["factors"]]
    ok = summary[summary["status"] == "ok"]
    means = ok.groupby("point")[headline].mean().reindex(range(meta["points"]))
    values = means.to_numpy(dtype=float)
    if not np.isfinite(values).all() or np.std(values) == 0:
        return None
    result = sobol.analyze(sobol_problem(factor_list), values, calc_second_order=False,
                           seed=meta.get("seed", 0))
    return pd.DataFrame({"factor": [f.column for f in factor_list], "S1": result["S1"],
                         "S1_conf": result["S1_conf"], "ST": result["ST"],
                         "ST_conf": result["ST_conf"]})


def _sweep_page(folder: Path) -> _Page:
    meta = read_json_file(folder / SWEEP_FILE) if (folder / SWEEP_FILE).is_file() else {}
    if (folder / "runs").is_dir():
        summary = assemble_summary(folder)  # reads only whole files: fine mid-sweep too
    else:
        summary = read_table(folder / SUMMARY_FILE)
        check_columns(summary, SUMMARY_COLUMNS, folder / SUMMARY_FILE)
    name = meta.get("experiment", folder.name)
    page = _Page(f"etsim sweep: {name}")
    page.text(f"<h1>Sweep: {html.escape(str(name))}</h1>")
    if meta.get("description"):
        page.text(f'<p class="note">{html.escape(meta["description"])}</p>')
    ok = summary[summary["status"] == "ok"] if "status" in summary else summary
    failed = summary[summary["status"] == "failed"] if "status" in summary else summary[:0]
    factor_list = _factor_columns(summary, meta)
    facts = pd.DataFrame([
        ("base scenario", meta.get("scenario", "-")),
        ("sampling", meta.get("sampling", "-")),
        ("parameter points", meta.get("points", "-")),
        ("replicates", meta.get("replicates", "-")),
        ("runs planned", meta.get("runs", "-")),
        ("runs finished", len(ok)),
        ("runs failed", len(failed)),
        ("factors", ", ".join(f"{f['column']} ({f['kind']})" for f in factor_list) or "-"),
    ], columns=["", "value"])
    page.text(_table(facts))
    if failed.size:
        columns = [c for c in ("run_id", "point", "replicate", "seed",
                               *(f["column"] for f in factor_list), "error") if c in failed]
        page.text("<h2>Failed runs</h2>" + _table(failed[columns]))
    if ok.empty:
        page.text('<p class="note">No finished runs yet.</p>')
        return page
    if not factor_list:
        page.text('<p class="note">No levers or uncertainties: replicates only.</p>')
        columns = headline_columns(summary.columns)
        if columns:  # a summary of run columns only has nothing to describe
            page.text("<h2>Headline figures over replicates</h2>"
                      + _table(ok[columns].describe().reset_index()))
        return page
    page.text("<h2>Levers and uncertainties against headline figures</h2>"
              '<p class="note">Line or marker: mean over the runs with that value; band or '
              "bar: minimum to maximum over replicates (and the other factors' values).</p>")
    page.grid(sweep_charts(summary, factor_list))
    if any(str(c).startswith("mean_price_") for c in summary):
        page.text("<h2>Price paths</h2>")
        page.grid([(sweep_figures.price_paths(summary, f["column"]), f"prices-{i}")
                   for i, f in enumerate(factor_list)])
    if meta.get("sampling") == "sobol":
        charts = []
        for j, headline in enumerate(headline_columns(summary.columns)):
            indices = sobol_table(summary, meta, headline)
            if indices is not None:
                charts.append((sweep_figures.sobol_indices(indices, headline), f"sobol-{j}"))
        page.text("<h2>Sobol sensitivity indices</h2>")
        if charts:
            page.grid(charts)
        else:
            page.text('<p class="note">Not available: needs SALib and every point finished '
                      "with a finite value.</p>")
    return page
