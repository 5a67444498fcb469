"""Batch sweeps: many runs of an experiment, in process or on Dask, resumable.

Layout of a sweep folder::

    experiment.toml          a copy of the experiment file
    sweep.json               what the sweep is: experiment digest, factors, run count
    runs/RUN_ID.parquet      one summary row per finished run (the run's commit record)
    tables/RUN_ID/           the run's kept tables and run.json (if [outputs] asks)
    errors/RUN_ID.json       a run that raised: its parameters, error and traceback
    summary.parquet          every run's row, assembled at the end (or by assemble_summary)

Every file is written to a temporary name in its own folder and renamed into place
(``os.replace``; a tables folder with ``os.rename``), and a run's tables are in place
before its row: a sweep killed at any moment leaves only whole files, and a run counts
as finished exactly when ``runs/RUN_ID.parquet`` exists. Re-running into the same folder
(with or without ``resume``) skips finished runs, retries failed ones and removes stale
temporary files. Results are written by the client as each run arrives, and do not
depend on the number of workers or on the scheduler: seeds come from the experiment.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from etsim import CarbonMarketModel  # for a run: kernels loaded, imports frozen
from etsim.experiments.experiment import (
    HEADLINE_COLUMNS,
    HEADLINE_PREFIXES,
    RUN_COLUMNS,
    ExperimentError,
    Plan,
    RunSpec,
    plan_runs,
    read_experiment,
)
from etsim.model.messages import shown, shown_name
from etsim.model.results import (
    ResultsError,
    build_tables,
    cannot_write,
    check_output_folder,
    is_temporary,
    make_folders,
    read_json_file,
    read_table,
    remove_temporaries,
    run_record,
    write_file_atomic,
    write_json_atomic,
    write_results,
)
from etsim.model.scenario import Scenario

SWEEP_FILE = "sweep.json"
SUMMARY_FILE = "summary.parquet"
CONNECT_TIMEOUT_S = 15


class SweepError(ExperimentError):
    """A sweep that cannot start (output folder, arguments): one line, exit status 2."""


# --- one run (executed on a worker) ------------------------------------------------------


@dataclass
class RunOutcome:
    """What a worker sends back for one run.

    Attributes:
        run_id: The run's id.
        row: The summary row: run columns, parameters and headline figures.
        tables: The kept results tables, or None.
        record: The run record (``run.json``) when tables are kept, else None.
        error: For a run that raised: type, message and traceback; else None.
    """

    run_id: str
    row: dict[str, Any]
    tables: dict[str, pd.DataFrame] | None = None
    record: dict[str, Any] | None = None
    error: dict[str, str] | None = None


HEADLINE_TABLES = ("market_daily", "firm_years", "market_years")
"""The results tables ``headline_figures`` reads."""


def headline_figures(tables: dict[str, pd.DataFrame], end_year: int) -> dict[str, float]:
    """The headline figures of one run, from its results tables.

    Args:
        tables: ``CarbonMarketModel.results()`` (or ``read_results``) tables.
        end_year: The scenario's last compliance year; later years are the settlement
            period and count only for volume and volatility.

    Returns:
        ``mean_price_YYYY`` for each compliance year and ``mean_price`` (their mean,
        CNY/t); ``emissions`` (verified, t), ``abatement`` (t), ``abatement_cost``
        (CNY), ``penalties`` (CNY), summed over compliance years; ``compliance_rate``
        (mean over compliance years); ``price_volatility`` (standard deviation of daily
        log returns of the close, whole calendar); ``efficiency`` (the run's allocative
        efficiency, the compliance years' ``allocative_efficiency`` weighted by
        abatement: 1 means trade realised all the saving possible; NaN if undefined);
        ``volume`` (t traded, whole calendar); ``bank_end``
        (t banked at the end of the last compliance year); ``output_SECTOR`` (output
        summed over compliance years, in the sector's unit).
    """
    years = tables["market_years"]
    compliance = years[years["year"] <= end_year].sort_values("year")
    firm_years = tables["firm_years"]
    firm_years = firm_years[firm_years["year"] <= end_year]
    row: dict[str, float] = {}
    for year, price in zip(compliance["year"], compliance["mean_price"], strict=True):
        row[f"mean_price_{int(year)}"] = float(price)
    row["mean_price"] = float(compliance["mean_price"].mean())
    row["emissions"] = float(compliance["verified_emissions"].sum())
    row["abatement"] = float(compliance["abatement"].sum())
    cost = float(compliance["abatement_cost"].sum())
    row["abatement_cost"] = cost
    rates = compliance["compliance_rate"].dropna()
    row["compliance_rate"] = float(rates.mean()) if len(rates) else math.nan
    close = tables["market_daily"].sort_values("date")["close"].to_numpy(dtype=float)
    close = close[np.isfinite(close) & (close > 0)]
    returns = np.diff(np.log(close))
    row["price_volatility"] = float(np.std(returns, ddof=1)) if len(returns) > 1 else math.nan
    row["penalties"] = float(firm_years["penalty"].sum())
    row["efficiency"] = _run_efficiency(compliance)
    row["volume"] = float(years["volume"].sum())
    row["bank_end"] = float(compliance["bank_total"].iloc[-1]) if len(compliance) else math.nan
    for sector, output in firm_years.groupby("sector", sort=True)["output"].sum().items():
        row[f"output_{sector}"] = float(output)
    return row


def _run_efficiency(compliance: pd.DataFrame) -> float:
    """The run's allocative efficiency: the years' values weighted by abatement (as in
    run.json; model.equilibrium defines the yearly figure)."""
    if "allocative_efficiency" not in compliance:
        return math.nan
    defined = compliance.dropna(subset=["allocative_efficiency"])
    weights = defined["abatement"].to_numpy(dtype=float)
    if not len(defined) or weights.sum() <= 0:
        return math.nan
    return float(np.average(defined["allocative_efficiency"], weights=weights))


def headline_columns(columns: list[str] | pd.Index) -> list[str]:
    """The headline figure columns among a summary's columns, in display order.

    ``mean_price_YYYY`` columns are left out (``mean_price`` stands for them);
    ``output_SECTOR`` columns follow the fixed headline figures.
    """
    present = [c for c in HEADLINE_COLUMNS if c in columns]
    return present + sorted(c for c in columns if str(c).startswith("output_"))


def _run_columns(spec: RunSpec) -> dict[str, Any]:
    return {"run_id": spec.run_id, "point": spec.point, "replicate": spec.replicate,
            "seed": spec.seed, **spec.parameters}


def run_one(spec: RunSpec) -> RunOutcome:
    """Run one model and summarise it (the function each worker executes).

    Never raises for a failing model: the error comes back in the outcome, so one bad
    run does not stop the sweep.

    Args:
        spec: The run, with its resolved scenario (workers need no scenario files).

    Returns:
        The run's summary row, and its kept tables if the experiment asks for them.
    """
    started = time.perf_counter()
    try:
        model = CarbonMarketModel(scenario=Scenario.model_validate(spec.scenario),
                                  seed=spec.seed)
        model.run()
        # only the tables the headline figures and the experiment's outputs need (the
        # trades' network and the book's events are most of the rest)
        tables = build_tables(model, HEADLINE_TABLES + tuple(spec.tables))
        figures = headline_figures(tables, spec.end_year)
        kept = {name: tables[name] for name in spec.tables} or None
        record = run_record(model) if kept else None
    except Exception as err:  # recorded, not raised: the sweep goes on
        return _failure(spec, err, traceback.format_exc(), time.perf_counter() - started)
    row = {**_run_columns(spec), "status": "ok", **figures,
           "wall_time_s": time.perf_counter() - started}
    return RunOutcome(spec.run_id, row, kept, record)


def _failure(spec: RunSpec, err: BaseException, trace: str, wall_time: float) -> RunOutcome:
    error = {"type": type(err).__name__, "message": str(err) or type(err).__name__,
             "traceback": trace}
    row = {**_run_columns(spec), "status": "failed",
           "error": f"{error['type']}: {error['message']}", "wall_time_s": wall_time}
    return RunOutcome(spec.run_id, row, error=error)


# --- the folder ----------------------------------------------------------------------------


def _clean_temporaries(out: Path) -> None:
    for folder in (out, out / "runs", out / "errors", out / "tables"):
        remove_temporaries(folder)


def finished_runs(out_dir: str | Path) -> set[str]:
    """Ids of the runs of a sweep folder that finished (their summary row is written)."""
    runs = Path(out_dir) / "runs"
    if not runs.is_dir():
        return set()
    return {p.stem for p in runs.glob("*.parquet") if not p.name.startswith(".")}


# --- the summary ----------------------------------------------------------------------------


def assemble_summary(out_dir: str | Path, write: bool = False) -> pd.DataFrame:
    """The summary table of a sweep folder, from ``runs/`` and ``errors/``.

    Works at any time, also while a sweep runs or after it was killed: it reads only
    whole files. Failed runs appear with ``status = "failed"`` and their error; runs
    of replicates beyond the experiment's current count are left out.

    Args:
        out_dir: The sweep folder.
        write: Also write it to ``summary.parquet`` (atomically).

    Returns:
        One row per run, ordered by point and replicate.
    """
    out = Path(out_dir)
    meta = _read_meta(out)
    done = finished_runs(out)
    frames = [_read_rows([out / "runs" / f"{run}.parquet" for run in sorted(done)])]
    failed = []
    errors = out / "errors"
    if errors.is_dir():
        for path in sorted(errors.glob("*.json")):
            if path.name.startswith(".") or path.stem in done:
                continue
            row = read_json_file(path).get("row")
            if not isinstance(row, dict):
                raise ResultsError(f"{shown_name(path)}: not a failed run's record (no row)")
            failed.append(row)
    if failed:
        frames.append(pd.DataFrame(failed))
    frames = [f for f in frames if len(f)]
    if not frames:  # no run finished or failed yet
        summary = pd.DataFrame(columns=[c for c in RUN_COLUMNS if c != "error"])
    else:
        summary = pd.concat(frames, ignore_index=True)
    if meta and "replicate" in summary:
        summary = summary[summary["replicate"] < meta["replicates"]]
    summary = _order_columns(summary, [f["column"] for f in meta.get("factors", [])])
    if len(summary):
        summary = summary.sort_values(["point", "replicate"], kind="stable")
    summary = summary.reset_index(drop=True)
    if write:
        write_file_atomic(out / SUMMARY_FILE, lambda p: summary.to_parquet(p, index=False))
    return summary


def _read_rows(files: list[Path]) -> pd.DataFrame:
    """The one-row files of finished runs as one table."""
    if not files:
        return pd.DataFrame()
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    try:
        # one threaded scan, a few times faster than a file at a time; the schemas are
        # unified so that a column only some runs have (a sector switched on) is kept
        schema = pa.unify_schemas([pq.read_schema(f) for f in files])
        return ds.dataset(files, schema=schema, format="parquet").to_table().to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError):
        # one at a time: a corrupt file is named (ResultsError)
        return pd.concat([read_table(f) for f in files], ignore_index=True)


def _order_columns(summary: pd.DataFrame, factor_columns: list[str]) -> pd.DataFrame:
    if "error" not in summary:
        summary = summary.assign(error=pd.Series([None] * len(summary), dtype=object))
    first = ["run_id", "point", "replicate", "seed", *factor_columns, "status", "error"]
    prices = sorted(c for c in summary if str(c).startswith(HEADLINE_PREFIXES[0]))
    figures = [*prices, *headline_columns(summary.columns)]
    ordered = [c for c in [*first, *figures] if c in summary]
    rest = [c for c in summary if c not in ordered and c != "wall_time_s"]
    tail = ["wall_time_s"] if "wall_time_s" in summary else []
    return summary[ordered + rest + tail]


def _read_meta(out: Path) -> dict[str, Any]:
    path = out / SWEEP_FILE
    return read_json_file(path) if path.is_file() else {}


def _meta(plan: Plan) -> dict[str, Any]:
    try:
        version = metadata.version("etsim")
    except metadata.PackageNotFoundError:
        version = "unknown"
    exp = plan.experiment
    return {
        "experiment": exp.name,
        "description": exp.description,
        "source": str(plan.source),
        "digest": plan.digest(),
        "scenario": exp.scenario,
        "sampling": exp.sampling,
        "samples": exp.samples,
        "replicates": exp.replicates,
        "seed": exp.seed,
        "common_random_numbers": exp.common_random_numbers,
        "points": len(plan.points),
        "runs": len(plan.runs),
        "tables": list(exp.outputs.resolved()),
        "factors": [{"key": f.key, "column": f.column, "kind": f.kind, "keys": list(f.keys),
                     "categorical": f.categorical, "low": f.low, "high": f.high,
                     "integer": f.integer, "labels": list(f.labels) if f.labels else None}
                    for f in plan.factors],
        "etsim": version,
    }


# --- the sweep ------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a sweep did.

    Attributes:
        out_dir: The sweep folder.
        total: Runs in the experiment.
        skipped: Runs already finished before this call (not recomputed).
        computed: Runs finished by this call.
        failed: Runs that raised in this call (recorded in ``errors/``).
        failed_ids: Their ids.
        summary_path: ``summary.parquet``.
        wall_time_s: Seconds this call took.
    """

    out_dir: Path
    total: int
    skipped: int = 0
    computed: int = 0
    failed: int = 0
    failed_ids: list[str] = field(default_factory=list)
    summary_path: Path | None = None
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every run of the experiment has finished without error."""
        return self.failed == 0 and self.skipped + self.computed == self.total

    def describe(self) -> str:
        """One line for the command line."""
        text = (f"{self.total} runs: {self.computed} computed, {self.skipped} already done, "
                f"{self.failed} failed in {self.wall_time_s:.1f} s; summary in "
                f"{self.summary_path}")
        if self.failed:
            text += f"; errors in {self.out_dir / 'errors'}"
        return text


def default_out_dir(experiment_path: str | Path) -> Path:
    """The default sweep folder: ``sweeps/NAME`` (re-running into it resumes)."""
    return Path("sweeps") / read_experiment(experiment_path).name


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One sweep at a time per folder; the kernel drops the lock if the process dies."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    handle = open(out / ".lock", "a+")  # noqa: SIM115 (held for the whole sweep)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SweepError(f"{shown_name(out)}: another sweep is writing into this "
                             "folder") from None
        yield
    finally:
        handle.close()


def _prepare(plan: Plan, out: Path, resume: bool) -> None:
    """Check the folder fits the experiment and can be written; nothing is written if
    it does not."""
    if not os.path.lexists(out):  # lexists: a name too long is not there
        if resume:
            raise SweepError(f"--resume: {shown_name(out)} does not exist (nothing to resume)")
        check_output_folder(out)
        return
    if not out.is_dir():
        raise SweepError(f"{shown_name(out)}: exists and is not a folder")
    check_output_folder(out)
    meta = _read_meta(out)
    if not meta:
        # a sweep killed before its sweep.json leaves at most the lock and its folders
        ours = {".lock", "runs", "errors", "tables", "experiment.toml"}
        if any(e.name not in ours and not is_temporary(e) for e in out.iterdir()):
            raise SweepError(f"{shown_name(out)}: exists and is not a sweep folder; choose "
                             "another --out")
        return
    if meta.get("digest") != plan.digest():
        raise SweepError(
            f"{shown_name(out)}: holds a sweep of another experiment "
            f"({shown_name(meta.get('source'))}, {shown_name(meta.get('experiment'))}); "
            f"{shown_name(plan.source)} differs in more than its replicates: "
            "choose another --out")


def available_cores() -> int:
    """Cores this process may run on (the default number of local workers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    # the workers' event loop wakes on these timers and takes the GIL from the run each
    # time: 50 ticks a second, 10 memory checks and 2 system readings by default
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "2s",
    "distributed.admin.system-monitor.interval": "2s",
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
    # mmap threshold: every array over 128 KiB is mapped and unmapped afresh (4 x the
    # page faults of a run in process, 0.09 s more system time a run)
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}
"""Dask settings of a LocalCluster's workers (an existing cluster keeps its own)."""


def start_method() -> str:
    """How a LocalCluster's worker processes are started.

    On Linux they are forked from this process, which has imported etsim and loaded the
    compiled kernels: a worker starts in about 0.1 s with the model in memory (shared
    with this process until written), where a spawned one starts a fresh interpreter
    and imports Dask, etsim and the kernels again (2-3 s of CPU each), and it exits
    without Python's shutdown (a spawned worker's took 0.5-1 s). Elsewhere (macOS,
    Windows: fork is unsafe or missing) Dask's own setting is kept. The environment
    variable ``ETSIM_SWEEP_START`` (``fork``, ``forkserver`` or ``spawn``) overrides both.
    """
    import dask

    chosen = os.environ.get("ETSIM_SWEEP_START", "")
    if chosen in ("fork", "forkserver", "spawn"):  # the user's choice wins
        return chosen
    if sys.platform.startswith("linux"):
        return "fork"
    return str(dask.config.get("distributed.worker.multiprocessing-method"))


# Logging handlers' locks this process holds while it forks (``hold_logging_at_fork``).
_HELD_AT_FORK: list[Any] = []
_FORK_HOOKS = {"registered": False}
HANDLER_WAIT_S = 1.0  # the longest a fork waits for one handler to finish a record


def _hold_handlers() -> None:
    # Every handler a logger has, each taken once: while this thread holds a handler's
    # lock, no other thread is writing a record through it (Handler.handle holds it).
    loggers = [logging.getLogger(), *(logger for logger in
                                      logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    handlers = {id(handler): handler for logger in loggers for handler in logger.handlers}
    for handler in handlers.values():
        lock = handler.lock
        if lock is not None and lock.acquire(timeout=HANDLER_WAIT_S):
            _HELD_AT_FORK.append(lock)


def _release_handlers() -> None:
    while _HELD_AT_FORK:
        _HELD_AT_FORK.pop().release()


def _forget_handlers() -> None:
    _HELD_AT_FORK.clear()  # in the child: logging has made every handler's lock anew


def hold_logging_at_fork() -> None:
    """Make this process's forks wait until no other thread is writing a log record.

    A thread writing a record holds its handler's stream (the file buffer's own lock)
    for the moment of the write. A fork at that moment copies the buffer locked, and
    the child's first record through that handler waits for ever: a forked Dask worker
    hung so at its start ("Start worker at"), while the sweep's process logged from
    Dask's threads. Python re-creates the handlers' locks in the child but not their
    streams', so before each fork the forking thread takes every handler's lock (waiting
    at most ``HANDLER_WAIT_S`` for each), and gives them back after. Registered once
    per process (``os.register_at_fork``); a no-op where fork does not exist."""
    if _FORK_HOOKS["registered"] or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(before=_hold_handlers, after_in_parent=_release_handlers,
                        after_in_child=_forget_handlers)
    _FORK_HOOKS["registered"] = True


def connect(workers: int | None, scheduler: str | None) -> tuple[Any, Any]:
    """A Dask client and the LocalCluster it owns (None for an existing scheduler).

    A LocalCluster's workers are single-threaded processes on loopback, started as
    :func:`start_method` says, with :data:`WORKER_CONFIG`. Only the first workers are
    started that way: a worker Dask restarts later (after its process died) is spawned
    as Dask's configuration says, since by then this process runs the client's threads.

    Args:
        workers: Local worker processes (None: one per core).
        scheduler: An existing scheduler's address or scheduler file, or None.

    Raises:
        SweepError: The scheduler cannot be reached.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            if Path(scheduler).is_file():  # a scheduler file, as `dask scheduler` writes
                return Client(scheduler_file=scheduler, timeout=CONNECT_TIMEOUT_S), None
            return Client(scheduler, timeout=CONNECT_TIMEOUT_S), None
        except (OSError, TimeoutError, ValueError) as err:
            raise SweepError(f"--scheduler {shown_name(scheduler)}: cannot connect "
                             f"({shown(err, quote=False)}); give "
                             "tcp://HOST:PORT of a running dask scheduler or its scheduler "
                             "file") from None
    import dask

    # The workers' statistical profiler samples every thread's stack 100 times a second
    # and competes with the run for the GIL: a run took 1.15 x as long in a worker as
    # in process. Nobody reads those profiles here (no dashboard), so it is off. The
    # nannies keep the settings for a worker they restart (config=). The start method
    # holds while the cluster starts only: then this process runs nothing but Dask's
    # start-up and has imported all a worker needs; a worker restarted later, when the
    # client's threads run, is spawned (forking a busy threaded process is unsafe).
    method = start_method()
    if method == "fork":
        hold_logging_at_fork()
    config = {**WORKER_CONFIG, "distributed.worker.multiprocessing-method": method}
    with dask.config.set(config):
        cluster = LocalCluster(n_workers=workers or available_cores(), threads_per_worker=1,
                               processes=True, host="127.0.0.1", dashboard_address=None,
                               silence_logs=logging.ERROR, config=WORKER_CONFIG)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def _start_folder(plan: Plan, out: Path, text: str) -> None:
    """Clean what a killed sweep left half-written; write the experiment's copy and meta."""
    _clean_temporaries(out)
    for folder in ("runs", "errors", *(("tables",) if plan.experiment.outputs.tables else ())):
        (out / folder).mkdir(exist_ok=True)
    write_file_atomic(out / "experiment.toml", lambda p: p.write_text(text, encoding="utf-8"))
    write_json_atomic(out / SWEEP_FILE, _meta(plan))


def disconnect(client: Any, cluster: Any) -> None:
    """Close a client and the LocalCluster it owns (from :func:`connect`)."""
    client.close()
    if cluster is not None:
        cluster.close()


def _run_distributed(client: Any, todo: list[RunSpec],
                     record: Callable[[RunSpec, RunOutcome], None]) -> None:
    """Run on Dask; each result is written here, by the client, as it arrives."""
    from dask.distributed import as_completed

    threads = sum(client.nthreads().values()) or 1
    # a bounded window of runs in flight keeps memory flat for long sweeps
    window = max(8, 3 * threads)
    session = uuid.uuid4().hex[:8]  # keys unique to this sweep on a shared scheduler
    by_key: dict[str, RunSpec] = {}
    pending = iter(todo)

    def submit(spec: RunSpec) -> Any:
        key = f"etsim-run-{spec.run_id}-{session}"
        by_key[key] = spec
        return client.submit(run_one, spec, key=key, pure=False, retries=0)

    futures = as_completed([submit(spec) for spec in islice(pending, window)])
    for future in futures:
        spec = by_key.pop(future.key)
        try:
            outcome = future.result()
        except Exception as err:  # the worker died, or the result did not come back
            outcome = _failure(spec, err, traceback.format_exc(), math.nan)
        future.release()
        record(spec, outcome)
        following = next(pending, None)
        if following is not None:
            futures.add(submit(following))


def run_sweep(experiment_path: str | Path, out_dir: str | Path, workers: int | None = None,
              scheduler: str | None = None, resume: bool = False,
              progress: bool = True) -> SweepResult:
    """Run an experiment's runs and write them into a sweep folder.

    Everything is checked before anything runs or is written: the experiment file, every
    run's scenario, the folder (a folder of another experiment is refused).

    Args:
        experiment_path: The experiment TOML file.
        out_dir: The sweep folder; created if missing. A folder of the same experiment
            (replicates may differ) is resumed: finished runs are skipped, failed ones
            retried.
        workers: 1 runs in this process (for debugging); N > 1 starts a Dask
            LocalCluster of N single-threaded worker processes on loopback; None uses
            one worker per core.
        scheduler: Address of an existing Dask scheduler (``tcp://HOST:PORT``) or the
            path of its scheduler file; its workers must be able to import etsim.
        resume: Require ``out_dir`` to exist (a plain re-run resumes too).
        progress: Show a progress bar (runs done, failed, remaining, time left).

    Returns:
        Counts of skipped, computed and failed runs and the summary's path.

    Raises:
        ExperimentError: A bad experiment file or run scenario (exit status 2).
        SweepError: Bad arguments or an output folder that does not fit (exit status 2).
    """
    started = time.perf_counter()
    check_workers(workers, scheduler)
    plan = plan_runs(experiment_path)
    text = Path(experiment_path).read_text(encoding="utf-8")
    result = run_plan(plan, out_dir, text, workers=workers, scheduler=scheduler,
                      resume=resume, progress=progress)
    result.wall_time_s = time.perf_counter() - started
    return result


def check_workers(workers: int | None, scheduler: str | None) -> None:
    """Refuse --workers below 1, and --workers with --scheduler."""
    if workers is not None and workers < 1:
        raise SweepError(f"--workers must be at least 1, got {shown(workers)}")
    if workers is not None and scheduler is not None:
        raise SweepError("give --workers or --scheduler, not both (the scheduler's workers run "
                         "the sweep)")


def run_plan(plan: Plan, out_dir: str | Path, experiment_text: str,
             workers: int | None = None, scheduler: str | None = None,
             resume: bool = False, progress: bool = True,
             dask: tuple[Any, Any] | None = None) -> SweepResult:
    """Run a planned experiment's runs into a sweep folder (the body of :func:`run_sweep`).

    Args:
        plan: The runs (``plan_runs``, or ``build_plan`` for points chosen by a caller
            such as a calibration round).
        out_dir: The sweep folder; created if missing, resumed if it holds the same plan.
        experiment_text: The text saved as the folder's ``experiment.toml``.
        workers: As in :func:`run_sweep`.
        scheduler: As in :func:`run_sweep`.
        resume: Require ``out_dir`` to exist.
        progress: Show a progress bar.
        dask: A (client, cluster) from :func:`connect` to use and leave open (several
            plans on one cluster); None connects here and disconnects at the end.

    Returns:
        Counts of skipped, computed and failed runs and the summary's path.

    Raises:
        SweepError: Bad arguments or an output folder that does not fit (exit status 2).
    """
    started = time.perf_counter()
    check_workers(workers, scheduler)
    out = Path(out_dir)
    _prepare(plan, out, resume)
    made: list[Path] = []
    done = finished_runs(out)
    todo = [spec for spec in plan.runs if spec.run_id not in done]
    # connect before writing anything: an unreachable scheduler leaves no folder behind
    own = dask is None
    if own:
        dask = connect(workers, scheduler) if todo and (workers != 1 or scheduler) else None
    try:
        result = SweepResult(out_dir=out, total=len(plan.runs), skipped=len(plan.runs) - len(todo))
        try:
            made = make_folders(out)
            with _lock(out):
                summary_path = _sweep_into(plan, out, experiment_text, todo, dask,
                                           result, progress)
        except OSError as err:  # a full disk: files written atomically, so only whole ones
            raise _write_failure(out, err, made) from None
    finally:
        if own and dask is not None:
            disconnect(*dask)
    result.summary_path = summary_path
    result.wall_time_s = time.perf_counter() - started
    return result


def _write_failure(out: Path, err: OSError, made: list[Path]) -> ResultsError:
    """The error of a sweep whose writing failed; a folder this call made and no run
    finished in is removed, else the finished runs are kept for a resume."""
    finished = len(finished_runs(out))
    if made and not finished:
        shutil.rmtree(out, ignore_errors=True)
        for folder in reversed(made[:-1]):  # its parents this call made
            with contextlib.suppress(OSError):
                folder.rmdir()
        return cannot_write(shown_name(out), err)
    _clean_temporaries(out)
    return cannot_write(shown_name(out), err, f"finished runs are kept ({finished}), and "
                        "running the same command again resumes")


def _sweep_into(plan: Plan, out: Path, experiment_text: str, todo: list[RunSpec],
                dask: tuple[Any, Any] | None, result: SweepResult, progress: bool) -> Path:
    """Run the sweep's remaining runs into its (locked) folder; the summary's path."""
    _start_folder(plan, out, experiment_text)
    bar = _progress_bar(plan, result, progress)

    def record(spec: RunSpec, outcome: RunOutcome) -> None:
        _save(out, spec, outcome)
        if outcome.error is None:
            result.computed += 1
        else:
            result.failed += 1
            result.failed_ids.append(spec.run_id)
        left = len(todo) - result.computed - result.failed
        bar.set_postfix_str(f"done {result.skipped + result.computed}, failed "
                            f"{result.failed}, left {left}", refresh=False)
        bar.update(1)

    try:
        if dask is not None:
            _run_distributed(dask[0], todo, record)
        else:
            for spec in todo:
                record(spec, run_one(spec))
    finally:
        bar.close()
        # also on interruption: the summary of what has finished
        assemble_summary(out, write=True)
    return out / SUMMARY_FILE


def _save(out: Path, spec: RunSpec, outcome: RunOutcome) -> None:
    """Write one run's files: its tables first, then its row (the commit record)."""
    if outcome.error is None:
        if outcome.tables:
            assert outcome.record is not None  # run_one keeps it with the tables
            # a folder left by a killed sweep (no row written) is replaced
            write_results(outcome.tables, outcome.record, out / "tables" / spec.run_id,
                          replace=True)
        frame = pd.DataFrame([outcome.row])
        write_file_atomic(out / "runs" / f"{spec.run_id}.parquet",
                          lambda p: frame.to_parquet(p, index=False))
        (out / "errors" / f"{spec.run_id}.json").unlink(missing_ok=True)
    else:
        write_json_atomic(out / "errors" / f"{spec.run_id}.json", {
            "run_id": spec.run_id, "point": spec.point, "replicate": spec.replicate,
            "seed": spec.seed, "parameters": spec.parameters, "overrides": spec.overrides,
            **outcome.error, "row": outcome.row,
        })


def _progress_bar(plan: Plan, result: SweepResult, show: bool) -> Any:
    from tqdm import tqdm

    # tqdm's rate (and so the time left) counts only runs done in this call
    return tqdm(total=result.total, initial=result.skipped, disable=not show, unit="run",
                desc=plan.experiment.name, dynamic_ncols=True, smoothing=0.1)
