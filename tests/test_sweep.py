"""Batch sweeps: experiment files, sampling, the sweep folder, failures, resume after a
kill, and the same results in process, on a LocalCluster and on a Dask scheduler with
two worker processes started here on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sweep_doubles import FAILING_MULTIPLE, FAILURE, FailingAtOneMultiple

import etsim.experiments.sweep as sweep
from etsim.experiments.experiment import (
    ExperimentError,
    factors,
    plan_runs,
    read_experiment,
    sample_points,
)
from etsim.experiments.sweep import SweepError, assemble_summary, finished_runs, run_sweep
from etsim.model.scenario import ScenarioError

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = Path(__file__).resolve().parent / "experiments"
SMALL = EXPERIMENTS / "small-grid.toml"
BAD = EXPERIMENTS / "bad"

# Each bad file -> fragments its one-line message must contain (after the file name).
BAD_FILES: dict[str, tuple[str, ...]] = {
    "unknown_top_level_key": ("unknown key 'replicate'", "allowed keys here", "replicates"),
    "unknown_lever_key": ("point 0", "penalty.multipel = 5", "scenario classroom",
                          "unknown key 'penalty.multipel'", "deduct_shortfall, multiple"),
    "lever_value_out_of_range": ("point 1", "sectors.*.allocation.tightening = 1.5",
                                 "'sectors.power.allocation.tightening'", "below 1"),
    "unknown_factor_key": ("unknown key 'levers.\"penalty.multiple\".step'", "steps"),
    "grid_range_without_steps": ("'levers.\"penalty.multiple\".steps'", "grid sampling"),
    "lhs_without_samples": ("'samples'", "latin_hypercube sampling needs samples"),
    "values_and_range": ("'levers.\"penalty.multiple\".values'", "either values"),
    "replicates_as_string": ("'replicates'", "valid integer", "'3'"),
    "missing_scenario": ("key 'scenario' is required",),
    "unknown_scenario": ("key 'scenario'", "'atlantis' not found", "classroom"),
    "not_toml": ("not valid TOML",),
    "table_values_without_labels": ("'levers.\"sectors.steel.allocation.rule\".labels'",
                                    "need labels"),
    "unknown_output_table": ("'outputs.tables'", "market_daily", "\"all\""),
    "empty_range": ("'levers.\"penalty.multiple\".range'", "low < high"),
    "sobol_samples_not_power_of_two": ("'samples'", "power of 2"),
    "bad_sampling_method": ("'sampling'", "latin_hypercube", "'monte_carlo'"),
    "lever_is_a_section": ("penalty.multiple.value", "'multiple' is not a table"),
}


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).drop(columns="wall_time_s")


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, sweep.SweepResult]:
    out = tmp_path_factory.mktemp("in-process") / "sweep"
    return out, run_sweep(SMALL, out, workers=1, progress=False)


# --- experiment files -----------------------------------------------------------------------


def test_every_bad_file_is_listed() -> None:
    assert sorted(p.stem for p in BAD.glob("*.toml")) == sorted(BAD_FILES)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_experiment_gives_one_clear_line_and_writes_nothing(name: str,
                                                                tmp_path: Path) -> None:
    path = BAD / f"{name}.toml"
    out = tmp_path / "out"
    with pytest.raises(ExperimentError) as caught:
        run_sweep(path, out, workers=1, progress=False)
    message = str(caught.value)
    assert isinstance(caught.value, ScenarioError)  # the CLI prints it and exits with 2
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in BAD_FILES[name]:
        assert fragment in message
    assert not out.exists()


@pytest.mark.parametrize("name", ["unknown_lever_key", "not_toml"])
def test_cli_exits_2_on_a_bad_experiment(name: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(  # this checkout's etsim
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-m", "etsim", "sweep",
                           str(BAD / f"{name}.toml"), "--out", str(tmp_path / "out")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert BAD_FILES[name][0] in done.stderr
    assert not (tmp_path / "out").exists()


def test_shipped_experiments_plan() -> None:
    for name in ("tightening", "cap-vs-intensity", "paid-share", "reserve-pool"):
        plan = plan_runs(REPO / "experiments" / f"{name}.toml")
        assert 10 <= len(plan.runs) <= 40, name  # minutes on 2 cores
        assert all(run.scenario["scale"] <= 0.2 for run in plan.runs)


# --- sampling --------------------------------------------------------------------------------


def test_same_experiment_same_runs_and_seeds() -> None:
    first, second = plan_runs(EXPERIMENTS / "lhs.toml"), plan_runs(EXPERIMENTS / "lhs.toml")
    assert [(r.run_id, r.seed, r.parameters) for r in first.runs] == [
        (r.run_id, r.seed, r.parameters) for r in second.runs]
    assert len({r.run_id for r in first.runs}) == len(first.runs) == 20
    assert len({r.seed for r in first.runs}) == len(first.runs)


def test_seeds_follow_the_experiment_seed_not_the_run_count() -> None:
    experiment = read_experiment(SMALL)
    plan = plan_runs(SMALL)
    more = experiment.model_copy(update={"replicates": 4})
    from etsim.experiments.experiment import run_seed

    for run in plan.runs:
        assert run.seed == run_seed(more, run.point, run.replicate)
    other = experiment.model_copy(update={"seed": experiment.seed + 1})
    assert all(run.seed != run_seed(other, run.point, run.replicate) for run in plan.runs)


def test_common_random_numbers_share_seeds_across_points(tmp_path: Path) -> None:
    path = tmp_path / "crn.toml"
    path.write_text(SMALL.read_text().replace(
        "sampling = \"grid\"", "sampling = \"grid\"\ncommon_random_numbers = true"))
    plan = plan_runs(path)
    by_replicate: dict[int, set[int]] = {}
    for run in plan.runs:
        by_replicate.setdefault(run.replicate, set()).add(run.seed)
    assert all(len(seeds) == 1 for seeds in by_replicate.values())
    assert len(by_replicate) == 2


def test_grid_is_the_product_in_file_order() -> None:
    plan = plan_runs(SMALL)
    assert [tuple(p.values()) for p in plan.points] == [
        (0.0, 5), (0.0, 10), (0.03, 5), (0.03, 10), (0.06, 5), (0.06, 10)]
    assert [(r.point, r.replicate) for r in plan.runs[:3]] == [(0, 0), (0, 1), (1, 0)]
    run = plan.runs[2]
    assert run.overrides == {"sectors.*.allocation.tightening": 0.0, "penalty.multiple": 10}
    assert run.scenario["penalty"]["multiple"] == 10
    assert run.scenario["sectors"]["cement"]["allocation"]["tightening"] == 0.0


def test_latin_hypercube_covers_each_stratum() -> None:
    experiment = read_experiment(EXPERIMENTS / "lhs.toml")
    points = sample_points(experiment)
    n = experiment.samples
    assert len(points) == n
    tightening = np.array([p["sectors.*.allocation.tightening"] for p in points])
    strata = np.floor((tightening - 0.0) / 0.05 * n).astype(int)
    assert sorted(strata) == list(range(n))
    foresight = [p["trading.foresight_years"] for p in points]
    assert all(isinstance(v, int) and 1 <= v <= 10 for v in foresight)
    assert sorted(foresight) == list(range(1, 11))  # 10 whole numbers in 10 strata
    prices = [p["market.initial_price"] for p in points]
    assert prices.count(60.0) == prices.count(95.0) == n // 2  # a list is stratified too


def test_random_sampling_stays_in_range_and_is_repeatable(tmp_path: Path) -> None:
    path = tmp_path / "random.toml"
    path.write_text((EXPERIMENTS / "lhs.toml").read_text().replace(
        "latin_hypercube", "random"))
    first = sample_points(read_experiment(path))
    assert first == sample_points(read_experiment(path))
    values = [p["sectors.*.allocation.tightening"] for p in first]
    assert all(0.0 <= v <= 0.05 for v in values)
    assert len(set(values)) == len(values)


def test_sobol_sampling_gives_n_times_d_plus_2_points() -> None:
    experiment = read_experiment(EXPERIMENTS / "sobol.toml")
    points = sample_points(experiment)
    assert len(points) == 4 * (2 + 2)
    assert points == sample_points(experiment)
    assert [f.column for f in factors(experiment)] == ["tightening", "penalty"]


def test_nested_and_shorthand_lever_tables(tmp_path: Path) -> None:
    path = tmp_path / "nested.toml"
    path.write_text('scenario = "classroom"\n[levers.penalty]\nmultiple = [5, 7]\n'
                    '[levers.sectors."*".allocation]\ntightening = { values = [0.01, 0.02] }\n'
                    '[overrides.market]\ninitial_price = 80.0\n')
    plan = plan_runs(path)
    assert [f.key for f in plan.factors] == ["penalty.multiple",
                                             "sectors.*.allocation.tightening"]
    assert plan.experiment.overrides == {"market.initial_price": 80.0}
    assert len(plan.runs) == 4


# --- the sweep folder --------------------------------------------------------------------------


def test_in_process_sweep_writes_the_layout(in_process) -> None:
    out, result = in_process
    plan = plan_runs(SMALL)
    ids = {run.run_id for run in plan.runs}
    assert result.total == result.computed == 12 and result.failed == result.skipped == 0
    assert result.ok
    assert (out / "experiment.toml").read_text() == SMALL.read_text()
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["runs"] == 12 and [f["column"] for f in meta["factors"]] == [
        "tightening", "penalty.multiple"]
    assert {p.name for p in (out / "runs").iterdir()} == {f"{i}.parquet" for i in ids}
    assert {p.name for p in (out / "tables").iterdir()} == ids
    for folder in (out / "tables").iterdir():
        assert sorted(p.name for p in folder.iterdir()) == [
            "market_daily.parquet", "market_years.parquet", "run.json"]
    assert list((out / "errors").iterdir()) == []
    assert _temporaries(out) == []
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) == 12 and set(summary["run_id"]) == ids
    assert (summary["status"] == "ok").all()
    for column in ("run_id", "point", "replicate", "seed", "tightening", "penalty.multiple",
                   "mean_price_2025", "mean_price_2026", "mean_price", "emissions",
                   "abatement", "abatement_cost", "compliance_rate", "price_volatility",
                   "penalties", "efficiency", "output_steel", "wall_time_s"):
        assert column in summary, column
    assert "mean_price_2027" not in summary  # the settlement year is no compliance year
    assert summary["seed"].tolist() == [run.seed for run in plan.runs]
    # the headline figures are the run's own tables, summarised
    row = summary.iloc[0]
    years = pd.read_parquet(out / "tables" / row["run_id"] / "market_years.parquet")
    assert row["mean_price_2026"] == years.loc[years["year"] == 2026, "mean_price"].item()
    assert row["abatement_cost"] == pytest.approx(years["abatement_cost"].sum())
    cost = years.loc[years["year"] <= 2026]
    defined = cost.dropna(subset=["allocative_efficiency"])
    assert row["efficiency"] == pytest.approx(np.average(
        defined["allocative_efficiency"], weights=defined["abatement"]))
    assert pd.testing.assert_frame_equal(assemble_summary(out), summary) is None


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sweep, "CarbonMarketModel", FailingAtOneMultiple)
    out = tmp_path / "sweep"
    result = run_sweep(SMALL, out, workers=1, progress=False)
    assert result.failed == 6 and result.computed == 6 and not result.ok
    assert len(finished_runs(out)) == 6
    errors = sorted((out / "errors").glob("*.json"))
    assert {p.stem for p in errors} == set(result.failed_ids)
    record = json.loads(errors[0].read_text())
    assert record["type"] == "RuntimeError" and FAILURE in record["traceback"]
    assert record["parameters"]["penalty.multiple"] == FAILING_MULTIPLE
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) == 12
    failed = summary[summary["status"] == "failed"]
    assert len(failed) == 6 and (failed["penalty.multiple"] == FAILING_MULTIPLE).all()
    assert (failed["error"] == f"RuntimeError: {FAILURE}").all()
    assert failed["mean_price"].isna().all()
    # a later run retries failed runs only; the error records go once they succeed
    monkeypatch.undo()
    again = run_sweep(SMALL, out, workers=1, progress=False)
    assert again.skipped == 6 and again.computed == 6 and again.ok
    assert list((out / "errors").iterdir()) == []
    assert (pd.read_parquet(out / "summary.parquet")["status"] == "ok").all()


def _count_models(monkeypatch) -> list[int]:
    seeds: list[int] = []

    class Counting(sweep.CarbonMarketModel):
        def __init__(self, *args, **kwargs) -> None:
            seeds.append(kwargs["seed"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sweep, "CarbonMarketModel", Counting)
    return seeds


def test_resume_skips_finished_runs(in_process, tmp_path: Path, monkeypatch) -> None:
    source, _ = in_process
    out = tmp_path / "sweep"
    shutil.copytree(source, out)
    constructed = _count_models(monkeypatch)
    result = run_sweep(SMALL, out, workers=1, resume=True, progress=False)
    assert constructed == [] and result.skipped == 12 and result.computed == 0
    # lose two runs and leave stale temporary files, as a kill could
    removed = sorted(finished_runs(out))[:2]
    for run in removed:
        (out / "runs" / f"{run}.parquet").unlink()
    (out / "runs" / ".x.parquet.ab12cd34.tmp").write_bytes(b"half a file")
    (out / "tables" / ".y.ab12cd34.tmp").mkdir()
    result = run_sweep(SMALL, out, workers=1, progress=False)  # a plain re-run resumes too
    assert result.computed == 2 and result.skipped == 10
    seeds = {run.run_id: run.seed for run in plan_runs(SMALL).runs}
    assert sorted(constructed) == sorted(seeds[run] for run in removed)
    assert _temporaries(out) == []
    pd.testing.assert_frame_equal(_frame(out / "summary.parquet"),
                                  _frame(source / "summary.parquet"))


def test_more_replicates_extend_a_sweep(in_process, tmp_path: Path, monkeypatch) -> None:
    source, _ = in_process
    out = tmp_path / "sweep"
    shutil.copytree(source, out)
    path = tmp_path / "small-grid.toml"
    path.write_text(SMALL.read_text().replace("replicates = 2", "replicates = 3"))
    constructed = _count_models(monkeypatch)
    result = run_sweep(path, out, workers=1, progress=False)
    assert result.skipped == 12 and result.computed == 6 and len(constructed) == 6
    assert len(pd.read_parquet(out / "summary.parquet")) == 18


def test_resume_refuses_another_experiment(in_process, tmp_path: Path) -> None:
    source, _ = in_process
    path = tmp_path / "small-grid.toml"
    path.write_text(SMALL.read_text().replace("[0.0, 0.03, 0.06]", "[0.0, 0.03, 0.09]"))
    with pytest.raises(SweepError, match="holds a sweep of another experiment"):
        run_sweep(path, source, workers=1, progress=False)
    with pytest.raises(SweepError, match="does not exist"):
        run_sweep(SMALL, tmp_path / "nowhere", workers=1, resume=True, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="not a sweep folder"):
        run_sweep(SMALL, tmp_path / "other", workers=1, progress=False)
    with pytest.raises(SweepError, match="--workers must be at least 1"):
        run_sweep(SMALL, tmp_path / "x", workers=0, progress=False)
    assert not (tmp_path / "x").exists()


# --- killed part way ---------------------------------------------------------------------------

KILLED_SWEEP = """
import sys
from pathlib import Path
import etsim.experiments.sweep as sweep

marker, experiment, out = map(Path, sys.argv[1:4])
compute = sweep.run_one

def marked(spec):
    outcome = compute(spec)
    with open(marker, "a") as handle:  # computed (it may still be killed before writing)
        handle.write(spec.run_id + "\\n")
    return outcome

sweep.run_one = marked
sweep.run_sweep(experiment, out, workers=1, progress=False)
"""


def test_killed_sweep_resumes_without_losing_or_repeating_a_run(tmp_path: Path,
                                                                 monkeypatch) -> None:
    experiment = EXPERIMENTS / "kill.toml"
    plan = plan_runs(experiment)
    assert len(plan.runs) == 30
    out, marker = tmp_path / "sweep", tmp_path / "computed.txt"
    process = subprocess.Popen([sys.executable, "-c", KILLED_SWEEP, str(marker),
                                str(experiment), str(out)], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while len(finished_runs(out)) < 5:
            assert process.poll() is None, "the sweep ended before it was killed"
            assert time.monotonic() < deadline, "no runs written within 60 s"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    finished = finished_runs(out)
    assert len(finished) < 30, "killed too late to test anything"
    computed_before = marker.read_text().split()
    assert len(computed_before) == len(set(computed_before))
    assert finished <= set(computed_before)
    # every finished run is whole
    for run in finished:
        assert len(pd.read_parquet(out / "runs" / f"{run}.parquet")) == 1

    computed_now: list[str] = []
    compute = sweep.run_one

    def counted(spec):  # noqa: ANN001, ANN202
        computed_now.append(spec.run_id)
        return compute(spec)

    monkeypatch.setattr(sweep, "run_one", counted)
    result = run_sweep(experiment, out, workers=1, resume=True, progress=False)
    assert result.skipped == len(finished) and result.computed == 30 - len(finished)
    assert not set(computed_now) & finished  # no finished run recomputed
    assert len(computed_now) == len(set(computed_now))
    all_ids = {run.run_id for run in plan.runs}
    assert finished | set(computed_now) == all_ids  # none lost
    assert finished_runs(out) == all_ids
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) == 30 and summary["run_id"].is_unique  # none duplicated
    assert _temporaries(out) == []  # no partial file


# --- Dask ------------------------------------------------------------------------------------


def test_local_cluster_gives_the_same_summary(in_process, tmp_path: Path) -> None:
    source, _ = in_process
    out = tmp_path / "sweep"
    result = run_sweep(SMALL, out, workers=2, progress=False)
    assert result.computed == 12 and result.ok
    pd.testing.assert_frame_equal(_frame(out / "summary.parquet"),
                                  _frame(source / "summary.parquet"))


def _dask_command() -> list[str]:
    beside = Path(sys.executable).with_name("dask")
    return [str(beside)] if beside.exists() else [shutil.which("dask") or "dask"]


def _stop(process: subprocess.Popen) -> None:
    """End a process the test started, with the group it leads (a nanny and its worker)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def test_scheduler_with_two_workers_gives_the_same_summary(in_process, tmp_path: Path) -> None:
    from dask.distributed import Client

    source, _ = in_process
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    dask = _dask_command()
    started: list[subprocess.Popen] = []
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115
    try:
        started.append(subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert started[0].poll() is None, (tmp_path / "dask.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start within 30 s"
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for number in range(2):
            started.append(subprocess.Popen(
                [*dask, "worker", "--scheduler-file", str(scheduler_file), "--nworkers", "1",
                 "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                 "--local-directory", str(tmp_path / f"worker-{number}")],
                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            assert len(client.scheduler_info()["workers"]) == 2
        out = tmp_path / "sweep"
        result = run_sweep(SMALL, out, scheduler=address, progress=False)
        assert result.computed == 12 and result.ok
        pd.testing.assert_frame_equal(_frame(out / "summary.parquet"),
                                      _frame(source / "summary.parquet"))
        assert sorted(p.name for p in (out / "tables").iterdir()) == sorted(
            p.name for p in (source / "tables").iterdir())
    finally:
        for process in reversed(started):
            _stop(process)
        log.close()


def test_summary_keeps_columns_only_some_runs_have(tmp_path: Path) -> None:
    # e.g. output_chemicals when a lever switches the sector on in some runs only
    first = pd.DataFrame({"run_id": ["a"], "point": [0], "replicate": [0], "seed": [1],
                          "status": ["ok"], "output_steel": [1.0]})
    second = first.assign(run_id="b", point=1, output_chemicals=2.0)
    for frame in (first, second):
        frame.to_parquet(tmp_path / f"{frame['run_id'][0]}.parquet", index=False)
    rows = sweep._read_rows([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    assert rows.sort_values("run_id")["output_chemicals"].tolist()[1] == 2.0
    assert np.isnan(rows.sort_values("run_id")["output_chemicals"].tolist()[0])


@pytest.mark.parametrize(("command", "module", "runner"), [
    ("sweep", "sweep", "run_sweep"),
    ("calibrate", "calibrate", "run_calibration"),
])
def test_interrupted_batch_command_says_where_finished_runs_are(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        command: str, module: str, runner: str) -> None:
    """Ctrl-C during `etsim sweep` or `etsim calibrate` exits 130 and names the folder
    that keeps the finished runs, and how to resume them."""
    from importlib import import_module

    from etsim.experiments.cli import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(import_module(f"etsim.experiments.{module}"), runner, interrupted)
    out = tmp_path / "study"
    assert main([command, str(tmp_path / "study.toml"), "--out", str(out), "--workers", "1"]) == 130
    err = capsys.readouterr().err
    assert f"finished runs are kept in {out}" in err
    assert "running the same command again resumes" in err
