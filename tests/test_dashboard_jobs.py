"""The dashboard's run queue on its own (dashboard/jobs.py): places in line, first in first
out, at most ``workers`` processes, cancel, time limits, failures, and no process left
behind.

Jobs here are small functions that wait for a "gate" file, so a test decides when they
may finish; waits are bounded generously (a busy machine is slow, not wrong).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from etsim.dashboard import jobs

WAIT_S = 120.0  # a bound on waiting for something that should happen, not a budget


# --- job functions (module level: they run in the job processes) -------------------------


def wait_for_gate(report: Any, gate: str, log: str, name: str) -> str:
    """Note the start in ``log``, report progress, wait until ``gate`` exists."""
    with open(log, "a") as f:
        f.write(f"{name} {os.getpid()}\n")
    report(3, 10, name)
    while not os.path.exists(gate):
        time.sleep(0.01)
    report(10, 10, name)
    return f"result of {name}"


def raise_value_error(report: Any) -> None:
    raise ValueError("bad value")


def raise_job_error(report: Any) -> None:
    raise jobs.JobError("Seed: must be 0 or more (got -1)")


def exit_hard(report: Any) -> None:
    os._exit(3)


# --- helpers -----------------------------------------------------------------------------


def wait_until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"waited {WAIT_S:g} s for {what}")


def state_of(queue: jobs.JobQueue, job_id: str, state: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = queue.status(job_id)
        return status if status and status["state"] == state else None

    return wait_until(check, f"job {job_id[:6]} to be {state}")


def job_processes() -> list[psutil.Process]:
    """Processes started for jobs: the children of the fork server (a child of ours)."""
    out = []
    for child in psutil.Process().children():
        try:
            if "forkserver" in " ".join(child.cmdline()):
                out.extend(child.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return out


def zombies() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture()
def make_queue() -> Iterator[Callable[..., jobs.JobQueue]]:
    made: list[jobs.JobQueue] = []

    def make(**kwargs: Any) -> jobs.JobQueue:
        kwargs.setdefault("preload", [])
        queue = jobs.JobQueue(**kwargs)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.shutdown()


@pytest.fixture()
def gate(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "gate", tmp_path / "log"


def started(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


# --- tests -------------------------------------------------------------------------------


def test_jobs_wait_in_line_with_their_places_and_run_first_in_first_out(make_queue, gate):
    open_gate, log = gate
    queue = make_queue(workers=1)
    ids = [queue.submit(wait_for_gate, str(open_gate), str(log), name)
           for name in ("a", "b", "c", "d")]
    first = state_of(queue, ids[0], "running")
    assert first["position"] is None
    wait_until(lambda: queue.status(ids[0])["total"] == 10, "progress of the first job")
    running = queue.status(ids[0])
    assert (running["done"], running["total"], running["note"]) == (3, 10, "a")
    assert jobs.describe(running) == "Running: a: 3 of 10 trading days."
    places = [queue.status(i) for i in ids[1:]]
    assert [(s["state"], s["position"], s["ahead"]) for s in places] == [
        ("queued", 1, 0), ("queued", 2, 1), ("queued", 3, 2)]
    text = jobs.describe(places[2])
    assert text.startswith("Queued: 3rd in line, 2 runs ahead (1 running, 1 at a time).")
    assert "cannot start within 15 min" in text
    assert jobs.describe(places[1]).startswith("Queued: 2nd in line, 1 run ahead")
    open_gate.touch()
    for job_id, name in zip(ids, "abcd", strict=True):
        done = state_of(queue, job_id, "done")
        assert done["result"] == f"result of {name}"
    assert started(log) == ["a", "b", "c", "d"]


def test_no_more_than_workers_processes_run_at_once(make_queue, gate):
    open_gate, log = gate
    queue = make_queue(workers=2)
    ids = [queue.submit(wait_for_gate, str(open_gate), str(log), f"j{i}") for i in range(6)]
    wait_until(lambda: len(started(log)) == 2, "two jobs to start")
    time.sleep(0.5)  # give a third job the chance to start wrongly
    assert len(started(log)) == 2
    assert len(job_processes()) == 2
    assert [queue.status(i)["state"] for i in ids].count("running") == 2
    open_gate.touch()
    for job_id in ids:
        state_of(queue, job_id, "done")
    counts = queue.counts()
    assert counts["peak_running"] == 2 and counts["started"] == 6 and counts["done"] == 6
    wait_until(lambda: queue.counts()["processes"] == 0, "the processes to be joined")
    assert job_processes() == [] and zombies() == []


def test_cancel_a_queued_and_a_running_job(make_queue, gate):
    open_gate, log = gate
    lines: list[str] = []
    queue = make_queue(workers=1, log=lines.append)
    ids = [queue.submit(wait_for_gate, str(open_gate), str(log), name) for name in "abc"]
    state_of(queue, ids[0], "running")
    wait_until(lambda: started(log) == ["a"], "the first job to start")
    pid = int(log.read_text().split()[1])
    cancelled = queue.cancel(ids[1])
    assert cancelled["state"] == "cancelled" and "Cancelled" in jobs.describe(cancelled)
    assert queue.status(ids[2])["position"] == 1  # moved up
    stopped = queue.cancel(ids[0])
    assert stopped["state"] == "cancelled"
    assert jobs.describe(stopped).startswith("Cancelled: the run was stopped at your request")
    wait_until(lambda: not psutil.pid_exists(pid), "the cancelled job's process to go")
    state_of(queue, ids[2], "running")  # its worker is free again
    open_gate.touch()
    assert state_of(queue, ids[2], "done")["result"] == "result of c"
    assert started(log) == ["a", "c"]
    assert queue.cancel(ids[2])["state"] == "done"  # a finished job stays finished
    # the server's log has a line per job that ended
    assert [line.split()[:3] for line in lines] == [
        ["job", ids[1][:8], "cancelled"], ["job", ids[0][:8], "cancelled"],
        ["job", ids[2][:8], "done"]]
    assert lines[0].endswith("Cancelled: the run was stopped at your request and nothing "
                             "was kept.")
    wait_until(lambda: queue.counts()["processes"] == 0, "the processes to be joined")
    assert zombies() == []


def test_a_run_that_does_not_finish_in_time_is_stopped_with_a_message(make_queue, gate):
    open_gate, log = gate
    queue = make_queue(workers=1, run_timeout=1.0, queue_timeout=600)
    job_id = queue.submit(wait_for_gate, str(open_gate), str(log), "slow")
    status = state_of(queue, job_id, "timed_out")
    assert status["message"].startswith("Timed out: the run did not finish within 1 s and "
                                        "was stopped")
    assert jobs.describe(status) == status["message"]
    wait_until(lambda: not job_processes(), "the stopped job's process to go")
    assert zombies() == []


def test_a_run_that_cannot_start_in_time_says_so(make_queue, gate):
    open_gate, log = gate
    queue = make_queue(workers=1, queue_timeout=1.0, run_timeout=600)
    first = queue.submit(wait_for_gate, str(open_gate), str(log), "first")
    second = queue.submit(wait_for_gate, str(open_gate), str(log), "second")
    status = state_of(queue, second, "timed_out")
    assert status["message"].startswith("Timed out: the run could not start within 1 s "
                                        "(0 runs were ahead of it and 1 run at a time)")
    assert queue.status(first)["state"] == "running"
    open_gate.touch()
    state_of(queue, first, "done")
    assert started(log) == ["first"]


def test_failures_give_a_message(make_queue):
    queue = make_queue(workers=2)
    plain = queue.submit(raise_value_error)
    meant = queue.submit(raise_job_error)
    hard = queue.submit(exit_hard)
    assert state_of(queue, plain, "failed")["message"] == \
        "The run failed: ValueError: bad value"
    assert state_of(queue, meant, "failed")["message"] == "Seed: must be 0 or more (got -1)"
    died = state_of(queue, hard, "failed")["message"]
    assert "stopped unexpectedly (exit code 3" in died
    wait_until(lambda: queue.counts()["processes"] == 0, "the processes to be joined")
    assert zombies() == []


def test_a_job_nobody_asks_about_is_cancelled(make_queue, gate):
    open_gate, log = gate
    queue = make_queue(workers=1, abandon_after=1.0)
    running = queue.submit(wait_for_gate, str(open_gate), str(log), "a")
    waiting = queue.submit(wait_for_gate, str(open_gate), str(log), "b")
    # nobody polls: both are dropped (read the outcome through the private table, as a
    # status call would count as a page asking)
    wait_until(lambda: queue._jobs[running].state == "cancelled"
               and queue._jobs[waiting].state == "cancelled", "both jobs to be dropped")
    assert "its tab was closed" in queue.status(running)["message"]
    assert "its tab was closed" in queue.status(waiting)["message"]
    wait_until(lambda: not job_processes(), "the abandoned job's process to go")
    assert "b" not in started(log)  # the queued one never started


def test_a_job_is_only_reached_by_its_own_id(make_queue, gate):
    open_gate, log = gate
    queue = make_queue(workers=1)
    job_id = queue.submit(wait_for_gate, str(open_gate), str(log), "a")
    assert len(job_id) >= 20  # a random token, not a counter
    other = queue.submit(wait_for_gate, str(open_gate), str(log), "b")
    assert job_id != other
    assert queue.status("1") is None and queue.cancel("1") is None
    assert queue.status(None) is None and queue.cancel("") is None
    assert jobs.describe(None).startswith("This run is no longer known to the server")
    assert queue.status(job_id)["state"] in ("queued", "running")
    open_gate.touch()
    state_of(queue, other, "done")


def test_a_full_queue_refuses_with_a_message(make_queue, gate):
    open_gate, log = gate
    queue = make_queue(workers=1, max_waiting=2)
    queue.submit(wait_for_gate, str(open_gate), str(log), "a")
    wait_until(lambda: queue.counts()["running"] == 1, "the first job to start")
    for name in "bc":  # two wait
        queue.submit(wait_for_gate, str(open_gate), str(log), name)
    with pytest.raises(jobs.QueueFull, match="The queue is full"):
        queue.submit(wait_for_gate, str(open_gate), str(log), "d")
    open_gate.touch()


def test_shutdown_stops_every_job_and_leaves_no_process(make_queue, gate):
    open_gate, log = gate
    queue = make_queue(workers=2)
    ids = [queue.submit(wait_for_gate, str(open_gate), str(log), n) for n in "abcd"]
    wait_until(lambda: len(started(log)) == 2, "two jobs to start")
    queue.shutdown()
    assert {queue.status(i)["state"] for i in ids} == {"cancelled"}
    assert job_processes() == [] and zombies() == []


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv(jobs.WORKERS_ENV, "3")
    assert jobs.default_workers() == 3
    monkeypatch.setenv(jobs.WORKERS_ENV, "0")
    with pytest.raises(ValueError, match="ETSIM_DASHBOARD_WORKERS must be a whole number"):
        jobs.check_settings()
    monkeypatch.delenv(jobs.WORKERS_ENV)
    assert jobs.default_workers() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(jobs.RUN_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="ETSIM_DASHBOARD_RUN_TIMEOUT must be a number"):
        jobs.check_settings()


def test_words():
    assert [jobs.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert jobs.minutes(900) == "15 min" and jobs.minutes(90) == "90 s"
