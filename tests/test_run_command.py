"""``etsim run`` / ``etsim scenarios`` / ``etsim validate`` as a user runs them: in a
separate process, checking exit status, output and what lands on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

# The columns each results table guarantees (the README's "Results" section describes
# the tables); new columns may be added.
COLUMNS = {
    "market_daily": ["date", "year", "month", "open", "high", "low", "close", "vwap", "volume",
                     "trades", "best_bid", "best_ask", "limit_down", "limit_up"],
    "firm_years": ["firm_id", "sector", "year", "output", "intensity", "emissions",
                   "reported_emissions", "benchmark", "free_allocation", "auction_purchased",
                   "bought", "sold", "surrendered", "offsets_used", "bank_end", "shortfall",
                   "penalty", "abatement", "abatement_cost", "surplus_ratio"],
    "firms": ["firm_id", "sector", "entry_year", "capacity", "baseline_intensity"],
    "abatement_options": ["firm_id", "option", "intensity_reduction", "cost_per_t",
                          "lead_time_years", "adopted_year"],
    "market_years": ["year", "free_allocation", "auctioned", "reserve_in", "reserve_out",
                     "reserve_holdings", "verified_emissions", "bank_total", "mean_price",
                     "volume", "compliance_rate", "equilibrium_price", "abatement",
                     "abatement_cost", "least_cost_abatement_cost"],
    "trades": ["date", "buyer_id", "seller_id", "price", "quantity", "kind"],
    # beyond that contract: the recorded order books, for replaying a trading day
    "book_events": ["date", "session", "seq", "event", "order_id", "trader_id", "side",
                    "quantity", "price", "buyer_id", "seller_id", "limit_down", "limit_up"],
    "trade_network": ["year", "traders", "links", "density", "volume_t", "hhi_sellers",
                      "hhi_buyers", "top4_seller_share", "most_connected"],
}
SHIPPED = {"absolute-cap-2027", "china-2024", "china-history", "classroom", "paid-allocation",
           "reserve-pool"}


def etsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # this checkout's etsim, also from another folder (not the editable install's)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "etsim", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b""
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    cwd = tmp_path_factory.mktemp("quiet")
    done = etsim("run", "classroom", "--out", "results-dir", "--quiet", cwd=cwd)
    return cwd / "results-dir", done


def test_run_writes_the_tables_and_run_json(quiet_run) -> None:
    out, done = quiet_run
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.parquet" for name in COLUMNS] + ["run.json"]
    )
    # nothing else beside it (the staging folder is renamed into place)
    assert sorted(p.name for p in out.parent.iterdir()) == ["results-dir"]


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_each_table_has_the_design_columns(quiet_run, table: str) -> None:
    out, _ = quiet_run
    frame = pd.read_parquet(out / f"{table}.parquet")
    missing = [c for c in COLUMNS[table] if c not in frame.columns]
    assert missing == []
    assert len(frame) > 0


def test_tables_have_the_classroom_shape(quiet_run) -> None:
    out, _ = quiet_run
    daily = pd.read_parquet(out / "market_daily.parquet")
    assert len(daily) == 3 * 12 * 20  # 2025-2027, 240 trading days a year
    assert sorted(daily["year"].unique().tolist()) == [2025, 2026, 2027]
    assert len(pd.read_parquet(out / "firms.parquet")) == 20
    assert len(pd.read_parquet(out / "firm_years.parquet")) == 40
    years = pd.read_parquet(out / "market_years.parquet")
    assert years["year"].tolist() == [2025, 2026, 2027]
    options = pd.read_parquet(out / "abatement_options.parquet")
    assert str(options["adopted_year"].dtype) == "Int64"  # null if never adopted


def test_run_json_records_scenario_seed_versions_and_ledger(quiet_run) -> None:
    out, _ = quiet_run
    record = json.loads((out / "run.json").read_text())
    assert record["scenario"]["name"] == "classroom"
    assert record["scenario"]["start_year"] == 2025 and record["scenario"]["end_year"] == 2026
    assert record["seed"] == 1  # the classroom scenario's own seed
    for package in ("etsim", "mesa", "numpy", "pandas", "pyarrow"):
        assert record["versions"][package] not in ("", None), package
    assert record["versions"]["mesa"].startswith("3.3")
    assert isinstance(record["wall_time_s"], int | float) and record["wall_time_s"] >= 0
    invariants = record["invariants"]
    assert invariants["ok"] is True
    assert invariants["violations"] == []
    assert [row["balance"] for row in invariants["ledger"]] == [0] * len(invariants["ledger"])
    assert [row["vintage"] for row in invariants["ledger"]] == [2024, 2025, 2026, 2027, 2028]


def test_run_prints_a_summary_naming_each_year(tmp_path: Path) -> None:
    done = etsim("run", "classroom", "--out", "loud", "--seed", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "20 firms" in lines[0] and "loud" in lines[0]
    for year in ("2025", "2026", "2027"):
        assert any(line.startswith(year) for line in lines), year
    assert any(line.startswith("steel") for line in lines)
    assert (tmp_path / "loud" / "run.json").is_file()


def test_run_to_an_existing_folder_exits_2_and_leaves_it_untouched(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    (out / "market_daily.parquet").write_bytes(b"not a table")
    before = _tree(tmp_path)
    done = etsim("run", "classroom", "--out", "taken", "--quiet", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "taken" in done.stderr and "Traceback" not in done.stderr
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("setting", "named"),
    [("penalty.multiple=-1", "penalty.multiple"),
     ("nonsense.key=1", "nonsense"),
     ("penalty.multiple", "--set"),
     ("sectors.steel.allocation.rule=grandfathering", "sectors.steel.allocation.rule")],
)
def test_bad_set_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, setting: str, named: str
) -> None:
    done = etsim("run", "classroom", "--set", setting, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert named in lines[0]
    assert lines[0].startswith("etsim: error:")
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no runs/ folder


def test_negative_seed_exits_2(tmp_path: Path) -> None:
    done = etsim("run", "classroom", "--seed", "-1", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "--seed" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_scenario_exits_2_and_lists_the_shipped_ones(tmp_path: Path) -> None:
    done = etsim("run", "no-such-market", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no-such-market" in lines[0] and "classroom" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_scenarios_lists_the_six_shipped_scenarios(tmp_path: Path) -> None:
    done = etsim("scenarios", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    assert names == SHIPPED
    classroom = next(line for line in done.stdout.splitlines() if line.startswith("classroom"))
    assert "2025-2026" in classroom


def test_validate_a_shipped_file_exits_0() -> None:
    done = etsim("validate", "scenarios/classroom.toml", cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout and "20 firms" in done.stdout


def test_validate_counts_the_firms_a_run_has(tmp_path: Path) -> None:
    # chemicals is switched on but enters in 2027, after classroom's last year: no firms
    later = tmp_path / "later.toml"
    later.write_text((REPO / "scenarios" / "classroom.toml").read_text()
                     + "\n[sectors.chemicals]\nenabled = true\n")
    done = etsim("validate", str(later), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "20 firms in steel, cement, aluminium)" in done.stdout


def test_validate_a_broken_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[penalty]\nmultiple = "five"\n')
    done = etsim("validate", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "bad.toml" in done.stderr and "penalty.multiple" in done.stderr


def test_the_default_results_folder_stays_inside_runs_whatever_the_scenario_name() -> None:
    """A scenario named with separators or dots cannot send results outside runs/."""
    from etsim.experiments.cli import _default_out

    for name, expected in (("china-2024", "china-2024-seed3"), ("../elsewhere", "_elsewhere-seed3"),
                           ("a/b", "a_b-seed3"), ("..", "scenario-seed3")):
        out = _default_out(name, 3)
        assert out.parent == Path("runs") and out.name == expected
