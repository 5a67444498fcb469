"""A sweep's LocalCluster: its workers start from the sweep's process with the model
loaded, a failing run is recorded as in process, a worker that dies is replaced and its
run done again, and Dask's own configuration is left as it was."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import dask
import distributed  # noqa: F401 (loads the distributed settings read here)
import pandas as pd
import pytest
from sweep_doubles import FAILURE, FailingAtOneMultiple

import etsim.experiments.sweep as sweep
from etsim.experiments.sweep import connect, disconnect, run_sweep

SMALL = Path(__file__).resolve().parent / "experiments" / "small-grid.toml"

# Workers are forked on Linux only (elsewhere they are spawned, as Dask does by default,
# and a class patched in this process would not reach them).
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="LocalCluster workers are forked on Linux only")


def _summary(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "summary.parquet").drop(columns="wall_time_s")


def _worker_state() -> tuple[int, object, str | None, bool]:
    """What a worker reports: its parent, a value this process set in the sweep module
    at run time (a worker holds it only if it is a copy of this process), its malloc
    setting, whether Dask's profiler samples it."""
    return (os.getppid(), getattr(sys.modules["etsim.experiments.sweep"], "_probe", None),
            os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            bool(dask.config.get("distributed.worker.profile.enabled")))


def test_workers_start_as_copies_of_this_process(monkeypatch) -> None:
    method = dask.config.get("distributed.worker.multiprocessing-method")
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    probe = f"set by {os.getpid()}"
    monkeypatch.setattr(sweep, "_probe", probe, raising=False)
    client, cluster = connect(2, None)
    try:
        states = client.run(_worker_state)
    finally:
        disconnect(client, cluster)
    assert len(states) == 2
    # forked by this process, so what it has loaded (the model, the compiled kernels)
    # is in a worker's memory before any run reaches it
    assert set(states.values()) == {(os.getpid(), probe, None, False)}
    # the settings held while the cluster started only
    assert dask.config.get("distributed.worker.multiprocessing-method") == method
    assert dict(dask.config.get("distributed.nanny.pre-spawn-environ")) == environ


def test_failed_run_on_a_local_cluster_is_recorded_as_in_process(tmp_path: Path,
                                                                  monkeypatch) -> None:
    monkeypatch.setattr(sweep, "CarbonMarketModel", FailingAtOneMultiple)
    results = {workers: run_sweep(SMALL, tmp_path / f"workers-{workers}", workers=workers,
                                  progress=False) for workers in (1, 2)}
    for result in results.values():
        assert result.failed == 6 and result.computed == 6 and not result.ok
    assert sorted(results[1].failed_ids) == sorted(results[2].failed_ids)
    pd.testing.assert_frame_equal(_summary(tmp_path / "workers-1"),
                                  _summary(tmp_path / "workers-2"))
    for run in results[1].failed_ids:
        records = [json.loads((tmp_path / f"workers-{w}" / "errors" / f"{run}.json")
                              .read_text()) for w in (1, 2)]
        for record in records:
            assert record["type"] == "RuntimeError"
            assert record["message"] == FAILURE
            assert FAILURE in record["traceback"]
            del record["traceback"], record["row"]["wall_time_s"]
        assert records[0] == records[1]


def test_a_worker_that_dies_is_replaced_and_its_run_done_again(tmp_path: Path,
                                                               monkeypatch) -> None:
    reference = run_sweep(SMALL, tmp_path / "in-process", workers=1, progress=False)
    assert reference.ok
    marker = tmp_path / "died"

    class Dying(sweep.CarbonMarketModel):
        def run(self):  # noqa: ANN202
            if not marker.exists():
                marker.touch()
                os._exit(1)  # the worker process dies, as on a crash or the OOM killer
            return super().run()

    monkeypatch.setattr(sweep, "CarbonMarketModel", Dying)
    result = run_sweep(SMALL, tmp_path / "cluster", workers=2, progress=False)
    assert marker.exists()  # a worker did die
    assert result.ok and result.computed == 12
    pd.testing.assert_frame_equal(_summary(tmp_path / "cluster"),
                                  _summary(tmp_path / "in-process"))


@pytest.mark.parametrize("chosen", ["spawn", "forkserver", "fork"])
def test_the_workers_start_method_can_be_chosen(monkeypatch, chosen: str) -> None:
    """ETSIM_SWEEP_START picks how a LocalCluster's workers start (spawn where forking
    this process is not wanted); an unknown value keeps the platform's default."""
    monkeypatch.setenv("ETSIM_SWEEP_START", chosen)
    assert sweep.start_method() == chosen
    monkeypatch.setenv("ETSIM_SWEEP_START", "teleport")
    default = "fork" if sys.platform.startswith("linux") else dask.config.get(
        "distributed.worker.multiprocessing-method")
    assert sweep.start_method() == default


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_fork_waits_for_a_log_record_being_written() -> None:
    """A thread writing a log record while the sweep's process forks a worker: the child
    can still write through that handler (the fork waited for the record; forked in the
    middle of it, the child found the stream locked for ever, as a Dask worker did)."""
    sweep.hold_logging_at_fork()
    writing = threading.Event()

    class SlowHandler(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.stream_lock = threading.Lock()  # as a file buffer's own lock

        def emit(self, record: logging.LogRecord) -> None:
            with self.stream_lock:
                writing.set()
                time.sleep(0.5)

    handler = SlowHandler()
    logger = logging.getLogger("etsim.tests.fork")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    writer = threading.Thread(target=logger.info, args=("a record",))
    try:
        writer.start()
        writing.wait()
        pid = os.fork()
        if pid == 0:  # the child: can it take the stream?
            os._exit(0 if handler.stream_lock.acquire(timeout=3) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        writer.join()
        logger.removeHandler(handler)
