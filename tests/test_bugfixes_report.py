"""Fixed bug: ``etsim report`` on a readable Parquet table without the columns the report
reads printed a traceback. Now: one line naming the file and the missing columns, exit
status 2, nothing written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from etsim.experiments.report import REPORT_COLUMNS, REPORT_FILE, ReportError, write_report
from etsim.model.market import CarbonMarketModel
from etsim.model.results import run_record, write_results

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = CarbonMarketModel(scenario="classroom", seed=4)
    model.run()
    out = tmp_path_factory.mktemp("report") / "run"
    return write_results(model.results(), run_record(model), out)


def _report(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "etsim", "report", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    return folder


@pytest.mark.parametrize("table", sorted(REPORT_COLUMNS))
def test_a_table_with_the_wrong_columns_is_one_clear_message(run_dir: Path, tmp_path: Path,
                                                              table: str) -> None:
    """A valid Parquet file with other columns: exit 2, the file and the missing columns
    named on one line, no traceback, no report written."""
    folder = _copy(run_dir, tmp_path)
    pd.DataFrame({"a": [1, 2]}).to_parquet(folder / f"{table}.parquet")
    done = _report(folder)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{table}.parquet" in lines[0]
    for column in REPORT_COLUMNS[table]:
        assert column in lines[0]
    assert not (folder / REPORT_FILE).exists()


def test_only_the_missing_columns_are_named(run_dir: Path, tmp_path: Path) -> None:
    """Two columns dropped from market_daily: the message names those two and no other."""
    folder = _copy(run_dir, tmp_path)
    daily = pd.read_parquet(folder / "market_daily.parquet")
    daily.drop(columns=["close", "limit_up"]).to_parquet(folder / "market_daily.parquet")
    with pytest.raises(ReportError) as caught:
        write_report(folder)
    message = str(caught.value)
    assert "market_daily.parquet" in message and "close, limit_up" in message
    assert "volume" not in message
    assert not (folder / REPORT_FILE).exists()


def test_the_report_needs_no_column_outside_its_list(run_dir: Path, tmp_path: Path) -> None:
    """Tables cut to the listed columns (and the tables it does not read left out) still
    make the whole run report: the list names every column the report reads."""
    folder = _copy(run_dir, tmp_path)
    for path in folder.glob("*.parquet"):
        if path.stem in REPORT_COLUMNS:
            table = pd.read_parquet(path)
            table[list(REPORT_COLUMNS[path.stem])].to_parquet(path)
        else:
            path.unlink()
    assert write_report(folder).is_file()


def test_a_sweep_summary_with_the_wrong_columns_is_one_clear_message(tmp_path: Path) -> None:
    """A sweep folder's summary.parquet without the run columns: exit 2, named, no report."""
    folder = tmp_path / "sweep"
    folder.mkdir()
    pd.DataFrame({"a": [1, 2]}).to_parquet(folder / "summary.parquet")
    done = _report(folder)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "summary.parquet" in done.stderr and "status" in done.stderr
    assert list(folder.iterdir()) == [folder / "summary.parquet"]


def test_a_sweep_summary_of_run_columns_only_still_reports(tmp_path: Path) -> None:
    """A summary with every run column but no headline figure: a report, not a crash."""
    folder = tmp_path / "sweep"
    folder.mkdir()
    pd.DataFrame({"run_id": ["p0-r0"], "point": [0], "replicate": [0], "seed": [1],
                  "status": ["ok"]}).to_parquet(folder / "summary.parquet")
    assert write_report(folder) == folder / REPORT_FILE
