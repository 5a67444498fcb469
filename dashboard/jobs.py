"""The dashboard's run queue: a fixed number of worker processes, first in first out.

A page submits a run (:meth:`JobQueue.submit`) and gets back a job id, a random token the
browser session keeps (in a session-scoped ``dcc.Store``); it then polls
:meth:`JobQueue.status` with that id. A job is only seen or cancelled with its own id, so
no session can act on another's run. Job state lives here, in the server process, in
memory (no SQLite, so nothing to lock up); the runs' results go to the on-disk results
cache of :mod:`etsim.dashboard.runs`.

Each job runs in its own process, at most ``workers`` at a time (by default one per
core). A job moves through the states:

- ``queued``: waiting, with its place in line; it times out if it cannot start within
  ``queue_timeout`` seconds;
- ``running``: with its progress; it is stopped and times out if it does not finish
  within ``run_timeout`` seconds;
- ``done`` (with its result), ``failed`` (with a message), ``cancelled`` (Cancel, or no
  page asked about it for ``abandon_after`` seconds: the tab was closed) or
  ``timed_out``.

A scheduler thread starts queued jobs, reads their progress from a pipe, enforces the
time limits and joins every finished or stopped process, so none is left a zombie.
Processes start from a fork server (``multiprocessing`` "forkserver") that has imported
the model once: starting a job is a fork of a clean single-threaded process, never of
the web server with its threads and open files.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import secrets
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

WORKERS_ENV = "ETSIM_DASHBOARD_WORKERS"
QUEUE_TIMEOUT_ENV = "ETSIM_DASHBOARD_QUEUE_TIMEOUT"
RUN_TIMEOUT_ENV = "ETSIM_DASHBOARD_RUN_TIMEOUT"
ABANDON_ENV = "ETSIM_DASHBOARD_ABANDON_AFTER"

QUEUE_TIMEOUT_S = 900.0  # a run that cannot start within 15 min is dropped
RUN_TIMEOUT_S = 900.0  # a run still going after 15 min is stopped
# A job no page has asked about for this long is cancelled: its tab was closed. Browsers
# slow a hidden tab's timers to about once a minute, so this is well above a minute.
ABANDON_AFTER_S = 180.0
KEEP_FINISHED_S = 900.0  # a finished job's result stays readable (a reload) this long
MAX_WAITING = 200  # queued jobs at most; more is refused with a message
STOP_GRACE_S = 5.0  # after SIGTERM, SIGKILL
TICK_S = 0.1  # scheduler period

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled", "timed_out")

Report = Callable[..., None]
# Modules the fork server imports once, so that each job starts without importing them.
PRELOAD = ["etsim.dashboard.runs"]


class JobError(Exception):
    """A job's failure whose message is meant for the user as it stands."""


class QueueFull(RuntimeError):
    """The queue holds its maximum of waiting jobs."""


@dataclass
class _Job:
    id: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    submitted: float
    last_seen: float
    state: str = "queued"
    started: float | None = None
    finished: float | None = None
    done: int = 0
    total: int = 0
    note: str = ""
    result: Any = None
    message: str = ""
    process: Any = None
    conn: Connection | None = None
    outcome: tuple[Any, ...] | None = field(default=None, repr=False)


def minutes(seconds: float) -> str:
    """A time limit as people say it: ``15 min``, ``90 s``."""
    if seconds >= 120 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"${name} must be a number of seconds above 0 (got {raw[:40]!r})"
                         ) from None
    if not 0 < value < float("inf"):
        raise ValueError(f"${name} must be a number of seconds above 0 (got {raw[:40]!r})")
    return value


def default_workers() -> int:
    """Worker processes: ``$ETSIM_DASHBOARD_WORKERS`` or the cores this process may use."""
    raw = os.environ.get(WORKERS_ENV)
    if raw is not None and raw.strip():
        if not raw.strip().isdigit() or not 1 <= int(raw) <= 256:
            raise ValueError(f"${WORKERS_ENV} must be a whole number from 1 to 256 "
                             f"(got {raw[:40]!r})")
        return int(raw)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _work(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """A job's process: run ``fn(report, *args)`` and send what happened down ``conn``."""
    # Ctrl-C in the server's terminal reaches the whole process group: the server stops
    # its jobs itself, so a job does not print a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def report(done: int, total: int, note: str = "") -> None:
        # A closed pipe (the server has gone) raises here and ends the job.
        conn.send(("progress", int(done), int(total), str(note)))

    try:
        result = fn(report, *args)
    except JobError as err:
        conn.send(("failed", str(err)))
    except Exception as err:  # noqa: BLE001 - every failure becomes the job's message
        text = f"{type(err).__name__}: {err}"
        conn.send(("failed", f"The run failed: {text[:300]}"))
    else:
        conn.send(("done", result))
    conn.close()


class JobQueue:
    """A FIFO queue of jobs run by at most ``workers`` processes at a time.

    Args:
        workers: Processes running at once (None: ``$ETSIM_DASHBOARD_WORKERS`` or one per
            core).
        queue_timeout: Seconds a job may wait for a worker before it times out.
        run_timeout: Seconds a job may run before it is stopped and times out.
        abandon_after: Seconds without a :meth:`status` call after which a job is
            cancelled (its page was closed).
        keep_finished: Seconds a finished job stays readable.
        max_waiting: Jobs that may wait at once; :meth:`submit` refuses more.
        preload: Modules the fork server imports once for all jobs.
        log: Called with one line when a job ends (its id's first 8 characters, its
            state, how long it waited and ran, its message); None: no log.
    """

    def __init__(self, workers: int | None = None, *, queue_timeout: float = QUEUE_TIMEOUT_S,
                 run_timeout: float = RUN_TIMEOUT_S, abandon_after: float = ABANDON_AFTER_S,
                 keep_finished: float = KEEP_FINISHED_S, max_waiting: int = MAX_WAITING,
                 preload: list[str] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.workers = default_workers() if workers is None else int(workers)
        if self.workers < 1:
            raise ValueError(f"workers must be 1 or more (got {workers})")
        self.queue_timeout = float(queue_timeout)
        self.run_timeout = float(run_timeout)
        self.abandon_after = float(abandon_after)
        self.keep_finished = float(keep_finished)
        self.max_waiting = int(max_waiting)
        self._log = log
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(list(PRELOAD if preload is None else preload))
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._waiting: deque[str] = deque()
        self._stopping: list[tuple[Any, float]] = []  # (process, when SIGTERM was sent)
        self._started_count = 0
        self._peak_running = 0
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the API the pages use --------------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any) -> str:
        """Queue ``fn(report, *args)``; ``report(done, total, note="")`` gives progress.

        ``fn`` and ``args`` must pickle (a module-level function); the result must pickle
        and should be small (results themselves go to the results cache).

        Returns:
            The job's id: a random token, the only handle on the job.

        Raises:
            QueueFull: ``max_waiting`` jobs are waiting already.
        """
        now = time.monotonic()
        with self._lock:
            if self._closed:
                raise RuntimeError("the job queue has been shut down")
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"The queue is full ({self.max_waiting} runs waiting); "
                                f"try again in a few minutes.")
            job_id = secrets.token_urlsafe(16)
            self._jobs[job_id] = _Job(job_id, fn, tuple(args), submitted=now, last_seen=now)
            self._waiting.append(job_id)
            self._ensure_thread()
        self._wake.set()
        return job_id

    def status(self, job_id: str | None) -> dict[str, Any] | None:
        """What a job is doing; None for an id the queue does not know.

        Returns:
            ``{"id", "state", "position", "ahead", "running", "workers", "done", "total",
            "note", "message", "result", "queue_timeout", "run_timeout"}``: ``position``
            (1 = next) and ``ahead`` only while queued, ``result`` only when done.
        """
        if not job_id:
            return None
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            job.last_seen = time.monotonic()
            return self._describe(job)

    def cancel(self, job_id: str | None) -> dict[str, Any] | None:
        """Cancel a queued or running job (a finished one stays as it is).

        Returns:
            Its status afterwards; None for an unknown id.
        """
        if not job_id:
            return None
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            job.last_seen = time.monotonic()
            if job.state in ACTIVE:
                self._finish(job, "cancelled", "Cancelled: the run was stopped at your "
                             "request and nothing was kept.")
            return self._describe(job)

    def counts(self) -> dict[str, int]:
        """Jobs by state, worker processes alive and the most that ever ran at once."""
        with self._lock:
            out = {state: 0 for state in ACTIVE + FINISHED}
            for job in self._jobs.values():
                out[job.state] += 1
            out["processes"] = sum(1 for job in self._jobs.values()
                                   if job.process is not None) + len(self._stopping)
            out["peak_running"] = self._peak_running
            out["started"] = self._started_count
            return out

    def shutdown(self, wait: float = STOP_GRACE_S) -> None:
        """Cancel every job, stop and join their processes, stop the scheduler."""
        with self._lock:
            self._closed = True
            for job in list(self._jobs.values()):
                if job.state in ACTIVE:
                    self._finish(job, "cancelled", "Cancelled: the dashboard was stopped.")
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=wait + 5)
        self._reap(force_after=0.0 if wait <= 0 else wait, block=True)

    # --- internals --------------------------------------------------------------------

    def _describe(self, job: _Job) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": job.id, "state": job.state, "done": job.done, "total": job.total,
            "note": job.note, "message": job.message, "workers": self.workers,
            "running": sum(1 for j in self._jobs.values() if j.state == "running"),
            "queue_timeout": self.queue_timeout, "run_timeout": self.run_timeout,
            "position": None, "ahead": None, "result": None,
        }
        if job.state == "queued":
            position = self._waiting.index(job.id) + 1
            out.update(position=position, ahead=position - 1)
        if job.state == "done":
            out["result"] = job.result
        return out

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="etsim-job-scheduler",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(TICK_S)
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the scheduler must keep going
                import traceback

                traceback.print_exc()
            with self._lock:
                if self._closed and not any(j.state in ACTIVE for j in self._jobs.values()):
                    return

    def _finish(self, job: _Job, state: str, message: str = "", stop: bool = True) -> None:
        """Move a job to a finished state (lock held); stop its process if it has one
        (``stop=False``: it has sent its outcome and is exiting by itself)."""
        if job.state == "queued":
            with contextlib.suppress(ValueError):
                self._waiting.remove(job.id)
        job.state, job.message, job.finished = state, message, time.monotonic()
        if self._log is not None:
            started = job.started if job.started is not None else job.finished
            with contextlib.suppress(Exception):  # a log that fails must not stop the queue
                self._log(f"job {job.id[:8]} {state} after {started - job.submitted:.1f} s "
                          f"queued, {job.finished - started:.1f} s running"
                          + (f": {message}" if message else ""))
        if job.process is not None:
            if stop and job.process.exitcode is None:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    job.process.terminate()
            self._stopping.append((job.process, time.monotonic()))
            job.process = None
        if job.conn is not None:
            with contextlib.suppress(OSError):
                job.conn.close()
            job.conn = None
        job.fn, job.args = _finished_fn, ()  # let go of the arguments

    def tick(self) -> None:
        """One round of scheduling: read progress, enforce limits, start jobs, reap."""
        now = time.monotonic()
        with self._lock:
            for job in [j for j in self._jobs.values() if j.state == "running"]:
                self._follow(job, now)
            for job_id in list(self._waiting):
                job = self._jobs[job_id]
                if now - job.last_seen > self.abandon_after:
                    self._finish(job, "cancelled", self._abandoned_text())
                elif now - job.submitted > self.queue_timeout:
                    ahead = self._waiting.index(job_id)
                    self._finish(job, "timed_out", (
                        f"Timed out: the run could not start within "
                        f"{minutes(self.queue_timeout)} ({ahead} runs were ahead of it and "
                        f"{self.workers} run at a time). Press Run to try again."))
            to_start = []
            free = self.workers - sum(1 for j in self._jobs.values() if j.state == "running")
            while free > 0 and self._waiting and not self._closed:
                job = self._jobs[self._waiting.popleft()]
                job.state, job.started = "running", now
                to_start.append((job, job.fn, job.args))
                free -= 1
            self._peak_running = max(self._peak_running, sum(
                1 for j in self._jobs.values() if j.state == "running"))
            for job_id in [i for i, j in self._jobs.items() if j.state in FINISHED
                           and j.finished is not None and now - j.finished > self.keep_finished]:
                del self._jobs[job_id]
        for job, fn, args in to_start:
            self._start(job, fn, args)
        self._reap()

    def _abandoned_text(self) -> str:
        return (f"Cancelled: no page asked about this run for {minutes(self.abandon_after)} "
                f"(its tab was closed), so it was stopped.")

    def _start(self, job: _Job, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Start a job's process (outside the lock: the first start launches the fork
        server, which imports the model)."""
        try:
            reader, writer = self._ctx.Pipe(duplex=False)
            process = self._ctx.Process(target=_work, args=(writer, fn, args),
                                        name=f"etsim-job-{job.id[:8]}", daemon=False)
            process.start()
            writer.close()  # the child has its own copy; ours would hide its end
        except Exception as err:  # noqa: BLE001 - a job that cannot start says so
            with self._lock:
                if job.state == "running":
                    self._finish(job, "failed", f"The run could not start: "
                                 f"{type(err).__name__}: {err}"[:300])
            return
        with self._lock:
            self._started_count += 1
            job.process, job.conn = process, reader
            if job.state != "running":  # cancelled while it was starting
                job.process, job.conn = None, None
                process.terminate()
                self._stopping.append((process, time.monotonic()))
                reader.close()

    def _follow(self, job: _Job, now: float) -> None:
        """Read a running job's messages; finish it when its process has ended or a limit
        is reached (lock held)."""
        if job.process is None:  # still starting
            if now - (job.started or now) > self.run_timeout:
                self._finish(job, "timed_out", self._run_timeout_text())
            return
        ended = job.process.exitcode is not None or not job.process.is_alive()
        self._drain(job)
        if job.outcome is not None:
            kind, payload = job.outcome
            if kind == "done":
                job.result = payload
                self._finish(job, "done", "", stop=False)
            else:
                self._finish(job, "failed", str(payload), stop=False)
        elif ended:
            code = job.process.exitcode
            self._finish(job, "failed", f"The run failed: its process stopped unexpectedly "
                         f"(exit code {code}; out of memory?). Press Run to try again.")
        elif now - (job.started or now) > self.run_timeout:
            self._finish(job, "timed_out", self._run_timeout_text())
        elif now - job.last_seen > self.abandon_after:
            self._finish(job, "cancelled", self._abandoned_text())

    def _run_timeout_text(self) -> str:
        return (f"Timed out: the run did not finish within {minutes(self.run_timeout)} and "
                f"was stopped. Try fewer firms or a shorter scenario.")

    def _drain(self, job: _Job) -> None:
        conn = job.conn
        if conn is None:
            return
        try:
            while conn.poll():
                message = conn.recv()
                if message[0] == "progress":
                    job.done, job.total, job.note = message[1], message[2], message[3]
                else:
                    job.outcome = (message[0], message[1])
                    return
        except (EOFError, OSError):
            return
        except Exception as err:  # noqa: BLE001 - an unreadable result is a failure
            job.outcome = ("failed", f"The run failed: its result could not be read "
                           f"({type(err).__name__}: {err})"[:300])

    def _reap(self, force_after: float = STOP_GRACE_S, block: bool = False) -> None:
        """Join stopped processes; SIGKILL one that ignores SIGTERM for ``force_after``."""
        with self._lock:
            stopping, self._stopping = self._stopping, []
        keep = []
        for process, since in stopping:
            if block:
                process.join(force_after)
            if process.is_alive():  # is_alive() also collects an exited child
                if time.monotonic() - since >= force_after:
                    process.kill()
                    process.join(STOP_GRACE_S)
                if process.is_alive():
                    keep.append((process, since))
                    continue
            process.join(0)
            with contextlib.suppress(ValueError):
                process.close()
        if keep:
            with self._lock:
                self._stopping.extend(keep)


def _finished_fn(*_: Any) -> None:  # placeholder for a finished job's function
    return None


_QUEUE: JobQueue | None = None
_QUEUE_LOCK = threading.Lock()


def job_queue() -> JobQueue:
    """The dashboard server's one queue, made on first use from the environment:
    ``$ETSIM_DASHBOARD_WORKERS``, ``$ETSIM_DASHBOARD_QUEUE_TIMEOUT``,
    ``$ETSIM_DASHBOARD_RUN_TIMEOUT``, ``$ETSIM_DASHBOARD_ABANDON_AFTER`` (seconds)."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = JobQueue(
                queue_timeout=_env_seconds(QUEUE_TIMEOUT_ENV, QUEUE_TIMEOUT_S),
                run_timeout=_env_seconds(RUN_TIMEOUT_ENV, RUN_TIMEOUT_S),
                abandon_after=_env_seconds(ABANDON_ENV, ABANDON_AFTER_S),
                log=_log_to_stderr)
        return _QUEUE


def _log_to_stderr(line: str) -> None:
    print(f"etsim dashboard: {line}", file=sys.stderr, flush=True)


def check_settings() -> None:
    """Read the queue's settings from the environment now (a bad value stops start-up
    with its message instead of failing the first run)."""
    default_workers()
    for name, default in ((QUEUE_TIMEOUT_ENV, QUEUE_TIMEOUT_S), (RUN_TIMEOUT_ENV, RUN_TIMEOUT_S),
                          (ABANDON_ENV, ABANDON_AFTER_S)):
        _env_seconds(name, default)


def describe(status: dict[str, Any] | None, unit: str = "trading days") -> str:
    """The line a page shows for a job's status.

    Args:
        status: What :meth:`JobQueue.status` returned (None: an unknown job).
        unit: What progress counts.
    """
    if status is None:
        return ("This run is no longer known to the server (it was restarted, or the run "
                "ended long ago). Press Run to run it again.")
    state = status["state"]
    if state == "queued":
        ahead = status["ahead"]
        return (f"Queued: {ordinal(status['position'])} in line, {ahead} "
                f"run{'' if ahead == 1 else 's'} ahead ({status['running']} running, "
                f"{status['workers']} at a time). A run that cannot start within "
                f"{minutes(status['queue_timeout'])} is dropped.")
    if state == "running":
        if not status["total"]:
            return "Running: starting the model ..."
        note = f"{status['note']}: " if status["note"] else ""
        return f"Running: {note}{status['done']:,} of {status['total']:,} {unit}."
    if state == "done":
        return "Done."
    return str(status["message"])


def shutdown_queue() -> None:
    """Stop the server's queue if it was made (at exit: no job outlives the server)."""
    with _QUEUE_LOCK:
        queue = _QUEUE
    if queue is not None:
        queue.shutdown()


def progress_view(status: dict[str, Any] | None, unit: str = "trading days"
                  ) -> dict[str, Any]:
    """What a page's Run controls show for a job.

    Returns:
        ``{"active", "value", "max", "label", "error"}``: ``active`` while the job is
        queued or running (Run disabled, Cancel enabled, the progress bar shown and
        polled), the bar's value and maximum as strings, the line of :func:`describe`,
        and whether that line reports a failure (failed, timed out, unknown job) rather
        than news (queued, running, done, cancelled).
    """
    active = bool(status and status["state"] in ACTIVE)
    done, total = (status["done"], status["total"]) if status else (0, 0)
    if not status or status["state"] != "running" or not total:
        done, total = 0, 1
    return {"active": active, "value": str(done), "max": str(total),
            "label": describe(status, unit),
            "error": status is None or status["state"] in ("failed", "timed_out")}
