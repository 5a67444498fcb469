"""``write_report``: self-contained HTML for a sweep folder and for one run's results."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from etsim.dashboard.figures import run as run_figures
from etsim.dashboard.figures import sweep as sweep_figures
from etsim.experiments.report import ReportError, write_report
from etsim.experiments.sweep import headline_columns, run_sweep
from etsim.model.market import CarbonMarketModel
from etsim.model.results import run_record, write_results
from etsim.model.scenario import ScenarioError

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "sweep"
    run_sweep(EXPERIMENTS / "small-grid.toml", out, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = CarbonMarketModel(scenario="classroom", seed=4)
    model.run()
    out = tmp_path_factory.mktemp("report") / "run"
    return write_results(model.results(), run_record(model), out)


def _self_contained(text: str) -> None:
    # booleans, so that a failure does not print five megabytes of page
    once = text.count("* plotly.js v") == 1  # the bundle's header, inlined once
    assert once, "plotly.js is not inlined exactly once"
    external = re.findall(r"<script[^>]*\bsrc=[^>]*>|<link[^>]*>", text)
    assert external == []  # no external scripts or style sheets


def _chart_ids(text: str) -> list[str]:
    return re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', text)


def test_sweep_report_has_one_chart_per_lever_and_headline(sweep_dir: Path) -> None:
    path = write_report(sweep_dir)
    assert path == sweep_dir / "report.html"
    text = path.read_text(encoding="utf-8")
    _self_contained(text)
    summary = pd.read_parquet(sweep_dir / "summary.parquet")
    headlines = headline_columns(summary.columns)
    assert {"mean_price", "emissions", "abatement_cost", "compliance_rate", "efficiency",
            "price_volatility"} <= set(headlines)
    levers = [i for i in _chart_ids(text) if i.startswith("lever-")]
    assert sorted(levers) == sorted(f"lever-{i}-{j}" for i in range(2)
                                    for j in range(len(headlines)))
    assert [i for i in _chart_ids(text) if i.startswith("prices-")] == ["prices-0", "prices-1"]
    assert "small-grid" in text and "tightening" in text


def test_report_of_a_sweep_still_running_reads_only_whole_runs(sweep_dir: Path,
                                                              tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(sweep_dir, copy)
    (copy / "summary.parquet").unlink()
    (copy / "runs" / ".abc.parquet.12345678.tmp").write_bytes(b"partial")
    text = write_report(copy).read_text(encoding="utf-8")
    assert re.search(r"<td>runs finished</td>\s*<td>12</td>", text)


def test_single_run_report_has_the_main_charts(run_dir: Path) -> None:
    text = write_report(run_dir).read_text(encoding="utf-8")
    _self_contained(text)
    assert _chart_ids(text)[:6] == ["run-price", "run-scarcity", "run-bank", "run-volume",
                                    "run-incentive", "run-who-pays"]
    assert "classroom" in text


class _Cells(HTMLParser):
    """The cells of an HTML table, row by row (no lxml needed)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _first_table(markup: str) -> pd.DataFrame:
    parser = _Cells()
    parser.feed(markup[:markup.index("</table>")])
    header, *rows = parser.rows
    frame = pd.DataFrame(rows, columns=header)
    return frame.apply(lambda c: pd.to_numeric(c) if c.name != "sector" else c)


def test_single_run_report_says_who_pays(run_dir: Path) -> None:
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "<h2>Who pays</h2>" in text
    section = text[text.index("<h2>Who pays</h2>"):text.index("<h2>Charts</h2>")]
    table = _first_table(section).set_index("sector")
    firm_years = pd.read_parquet(run_dir / "firm_years.parquet")
    trades = pd.read_parquet(run_dir / "trades.parquet")
    assert list(table.index) == sorted(firm_years["sector"].unique()) + ["all sectors"]
    everything = table.loc["all sectors"]
    # the totals read straight from the tables: abatement, penalties, auction payments
    assert everything["abatement (m CNY)"] == pytest.approx(
        firm_years["abatement_cost"].sum() / 1e6, rel=1e-3, abs=1e-3)
    assert everything["penalties (m CNY)"] == pytest.approx(
        firm_years["penalty"].sum() / 1e6, rel=1e-3, abs=1e-3)
    auction = trades[trades["kind"] == "auction"]
    assert everything["auctions (m CNY)"] == pytest.approx(
        (auction["price"] * auction["quantity"]).sum() / 1e6, rel=1e-3, abs=1e-3)
    # per tonne: the total divided by the verified emissions
    assert everything["total (CNY/t)"] == pytest.approx(
        everything["total (m CNY)"] / everything["verified emissions (Mt)"], rel=1e-2)


def test_a_sweep_runs_tables_folder_is_a_run_report(sweep_dir: Path) -> None:
    folder = next((sweep_dir / "tables").iterdir())
    text = write_report(folder).read_text(encoding="utf-8")
    _self_contained(text)
    # market_years and market_daily kept: every chart but the firms' incentive
    assert _chart_ids(text) == ["run-price", "run-scarcity", "run-bank", "run-volume"]


def test_sobol_sweep_report_has_sensitivity_indices(tmp_path: Path) -> None:
    out = tmp_path / "sobol"
    run_sweep(EXPERIMENTS / "sobol.toml", out, workers=1, progress=False)
    text = write_report(out).read_text(encoding="utf-8")
    _self_contained(text)
    assert any(i.startswith("sobol-") for i in _chart_ids(text))
    # 16 distinct values per factor: drawn as a cloud of runs with binned means
    assert len([i for i in _chart_ids(text) if i.startswith("lever-")]) == 2 * len(
        headline_columns(pd.read_parquet(out / "summary.parquet").columns))


def test_not_a_results_folder(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="neither a run's results folder") as caught:
        write_report(tmp_path)
    assert isinstance(caught.value, ScenarioError)  # exit status 2 from the CLI
    with pytest.raises(ReportError, match="no such folder"):
        write_report(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_figure_builders_are_pure(sweep_dir: Path, run_dir: Path) -> None:
    summary = pd.read_parquet(sweep_dir / "summary.parquet")
    before = summary.copy()
    fig = sweep_figures.lever_effect(summary, "tightening", "mean_price")
    assert isinstance(fig, go.Figure)
    pd.testing.assert_frame_equal(summary, before)
    means = summary.groupby("tightening")["mean_price"].mean()
    line = next(t for t in fig.data if t.name == "mean over runs")
    assert list(line.y) == pytest.approx(list(means))
    daily = pd.read_parquet(run_dir / "market_daily.parquet")
    assert isinstance(run_figures.daily_close(daily), go.Figure)
