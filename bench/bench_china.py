"""Time a full-scale run of etsim end to end: construction, the run, the results tables.

    python bench/bench_china.py                       # china-2024, seed 1, one repeat
    python bench/bench_china.py --repeat 5            # min and median of five runs
    python bench/bench_china.py --scenario classroom --seed 7

Each repeat builds a fresh ``CarbonMarketModel``, runs it to the end of its calendar
(``run()`` includes the end-of-run invariant checks) and builds the results tables
(``results()``, including the static equilibrium of every compliance year). The three
phases are timed separately with ``time.perf_counter``.

Memory: tracing allocations with ``tracemalloc`` slows Python down several-fold, so the
timed repeats run untraced; one more run, traced, gives the tracemalloc peak of each
phase (skip it with ``--no-tracemalloc``). The process's max RSS (``resource.getrusage``)
is read after the timed repeats, before the traced run, and again at the end.

Not part of the test suite (see bench/README.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

_began = time.perf_counter()
# etsim first, as a user's script
from etsim import CarbonMarketModel  # noqa: E402, I001
from etsim.agents import positions, strategies  # noqa: E402
from etsim.model import matching  # noqa: E402

import mesa  # noqa: E402
import numpy as np  # noqa: E402

# A user's whole process, timed inside at each step (time.time, comparable with the
# parent's clock for the interpreter's start and exit); wrapping etsim._process's kernel
# loader only reads the clock around it.
PROCESS = """
import time
began, cpu = time.time(), time.process_time()
import json
import etsim._process as _process
_load = _process.load_kernels
def _timed_load():
    global kernels
    start = time.time()
    _load()
    kernels = time.time() - start
_process.load_kernels = _timed_load
kernels = 0.0
from etsim import CarbonMarketModel
imported = time.time()
model = CarbonMarketModel(scenario={scenario!r}, seed={seed})
built = time.time()
model.run()
ran = time.time()
model.results()
done = time.time()
print(json.dumps(dict(began=began, imported=imported, kernels=kernels, built=built, ran=ran,
                      done=done, cpu=time.process_time() - cpu)))
"""

KERNELS = """
import time
import scipy.linalg  # the model imports it anyway; numba loads it with its first kernel
began = time.perf_counter()
from etsim.agents import positions, strategies
from etsim.model import _kernels
imported, cpu = time.perf_counter(), time.process_time()
_kernels.warm_up()
strategies.warm_up()
positions.warm_up()
print(imported - began, time.perf_counter() - imported, time.process_time() - cpu)
"""


def child(code: str, env: dict | None = None) -> tuple[float, str]:
    """Run ``code`` in a fresh Python; its wall time (s) and its last output line."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env=env)
    return time.perf_counter() - began, out.stdout.strip().splitlines()[-1]


PROCESS_STEPS = ("interpreter start", "imports", "of which kernels", "build", "run", "results",
                 "interpreter exit", "whole process", "CPU of the process")


def whole_process(scenario: str, seed: int) -> dict[str, float]:
    """One whole process (import, build, run, results) in a fresh Python: seconds per
    step, its wall time and its CPU time (user + system, from the kernel's accounts)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-c", PROCESS.format(scenario=scenario, seed=seed)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.time()
    proc.stdout.close()
    if status:
        raise RuntimeError(f"the whole-process run failed (status {status})")
    t = json.loads(out.strip().splitlines()[-1])
    return {
        "interpreter start": t["began"] - start,
        "imports": t["imported"] - t["began"],
        "of which kernels": t["kernels"],
        "build": t["built"] - t["imported"],
        "run": t["ran"] - t["built"],
        "results": t["done"] - t["ran"],
        "interpreter exit": end - t["done"],
        "whole process": end - start,
        "CPU of the process": usage.ru_utime + usage.ru_stime,
    }


def bytecode_cached() -> bool:
    """Whether a fresh process reads etsim's own modules from cached bytecode (.pyc), or
    compiles them from source (``PYTHONDONTWRITEBYTECODE`` set and no cache yet)."""
    return (ROOT / "model" / "__pycache__"
            / f"market.{sys.implementation.cache_tag}.pyc").is_file()


def kernel_times() -> None:
    """First-run compile time and warm (cached) load time of the compiled kernels, each
    in a fresh process with a fresh numba cache folder."""
    with tempfile.TemporaryDirectory(prefix="etsim-numba-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("first run (compiles)", "second run (cache)"):
            _, line = child(KERNELS, env)
            imported, ready, cpu = map(float, line.split())
            print(f"kernels, {label:<21} import numba {imported:.2f} s, "
                  f"compile or load {ready:.2f} s ({cpu:.2f} s CPU)")

PHASES = ("construct", "run", "results")


def max_rss_mib() -> float:
    """The process's peak resident set size so far (MiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def one_run(scenario: str, seed: int, traced: bool = False) -> dict:
    """Construct, run and tabulate once; seconds (and tracemalloc peaks) per phase."""
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}

    cpu: dict[str, float] = {}
    clock = {"cpu": 0.0}

    def start() -> float:
        if traced:
            tracemalloc.reset_peak()
        clock["cpu"] = time.process_time()
        return time.perf_counter()

    def stop(phase: str, began: float) -> None:
        seconds[phase] = time.perf_counter() - began
        cpu[phase] = time.process_time() - clock["cpu"]
        if traced:
            peaks[phase] = tracemalloc.get_traced_memory()[1] / 2**20

    began = start()
    model = CarbonMarketModel(scenario=scenario, seed=seed)
    stop("construct", began)

    began = start()
    model.run()
    stop("run", began)

    began = start()
    tables = model.results()
    stop("results", began)

    daily = tables["market_daily"]
    trades = tables["trades"]
    counts = {
        "firms": int(model.n_firms),
        "trading_days": int(model.calendar.n_days),
        "years": f"{int(model.calendar.year[0])}-{int(model.calendar.year[-1])}",
        "orders": int(daily["orders"].sum()),
        "trades": int(daily["trades"].sum()),
        "volume_t": int(daily["volume"].sum()),
        "trades_by_kind": trades["kind"].value_counts().to_dict(),
        "ledger_ok": bool(model.invariants and model.invariants["ok"]),
        # the last close there was (a day without a listed trade has none)
        "last_close": float(daily["close"].dropna().iloc[-1]),
    }
    del tables, daily, trades, model
    gc.collect()
    return {"seconds": seconds, "cpu": cpu, "peaks": peaks, "counts": counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="china-2024",
                        help="shipped scenario name or TOML path (default: china-2024)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed repeats; min and median are reported (default: 1)")
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="skip the extra traced run that measures the tracemalloc peak")
    parser.add_argument("--process", type=int, default=0, metavar="N",
                        help="also time N whole processes (import, build, run, results) "
                             "and the kernels' first-run compile and cached load")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    print(f"etsim benchmark: scenario {args.scenario}, seed {args.seed}, "
          f"{args.repeat} repeat(s), engine {matching.engine()}")
    print(f"python {platform.python_version()}, mesa {mesa.__version__}, "
          f"numpy {np.__version__}, {platform.machine()} {platform.system()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"imports {time.perf_counter() - _began:.2f} s (the kernels' load included: "
          "etsim/_process.py); ", end="")
    began = time.perf_counter()
    if matching.engine() == "compiled":
        matching.kernels().warm_up()
    strategies.warm_up()  # the order formation kernels: compiled whatever the engine
    positions.warm_up()
    print(f"kernels ready (loaded or compiled) {time.perf_counter() - began:.2f} s")

    runs = []
    for index in range(args.repeat):
        result = one_run(args.scenario, args.seed)
        runs.append(result)
        s = result["seconds"]
        print(f"  repeat {index + 1}: construct {s['construct']:.2f} s, run {s['run']:.2f} s, "
              f"results {s['results']:.2f} s (CPU {sum(result['cpu'].values()):.2f} s)")
    rss_untraced = max_rss_mib()

    counts = runs[0]["counts"]
    if any(r["counts"] != counts for r in runs[1:]):
        print("WARNING: repeats with the same scenario and seed gave different counts")

    print()
    print(f"firms           {counts['firms']:,}")
    print(f"trading days    {counts['trading_days']:,} ({counts['years']})")
    print(f"orders          {counts['orders']:,}")
    print(f"trades          {counts['trades']:,} (listed session, market_daily.trades)")
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(counts["trades_by_kind"].items()))
    print(f"trades table    {kinds or 'empty'}")
    print(f"volume          {counts['volume_t'] / 1e6:,.1f} Mt")
    print(f"last close      {counts['last_close']:.2f} CNY/t")
    print(f"ledger check    {'ok' if counts['ledger_ok'] else 'FAILED'}")

    print()
    print(f"{'phase':<12}{'min s':>10}{'median s':>11}")
    totals = [sum(r["seconds"].values()) for r in runs]
    for phase in PHASES:
        values = [r["seconds"][phase] for r in runs]
        print(f"{phase:<12}{min(values):>10.2f}{statistics.median(values):>11.2f}")
    print(f"{'total':<12}{min(totals):>10.2f}{statistics.median(totals):>11.2f}")
    cpus = [sum(r["cpu"].values()) for r in runs]
    runs_cpu = [r["cpu"]["run"] for r in runs]
    print(f"{'CPU total':<12}{min(cpus):>10.2f}{statistics.median(cpus):>11.2f}"
          "  (process time: steadier than wall time on a shared machine)")
    print(f"{'CPU run':<12}{min(runs_cpu):>10.2f}{statistics.median(runs_cpu):>11.2f}")

    run_times = [r["seconds"]["run"] for r in runs]
    best, median = min(run_times), statistics.median(run_times)
    print()
    print(f"orders/s of run time   {counts['orders'] / best:>12,.0f} (min)"
          f"  {counts['orders'] / median:>12,.0f} (median)")
    print(f"trades/s of run time   {counts['trades'] / best:>12,.0f} (min)"
          f"  {counts['trades'] / median:>12,.0f} (median)")
    print(f"trading days/s         {counts['trading_days'] / best:>12,.0f} (min)"
          f"  {counts['trading_days'] / median:>12,.0f} (median)")

    print()
    print(f"max RSS                {rss_untraced:,.0f} MiB (after the timed repeats)")
    if not args.no_tracemalloc:
        tracemalloc.start()
        traced = one_run(args.scenario, args.seed, traced=True)
        tracemalloc.stop()
        peaks = traced["peaks"]
        print("tracemalloc peak       " + ", ".join(
            f"{phase} {peaks[phase]:,.1f} MiB" for phase in PHASES))
        print(f"                       overall {max(peaks.values()):,.1f} MiB "
              f"(separate traced run; its times are not counted: "
              f"{sum(traced['seconds'].values()):.1f} s traced)")
        print(f"max RSS                {max_rss_mib():,.0f} MiB (after the traced run)")
    if args.process:
        print()
        kernel_times()
        whole = [whole_process(args.scenario, args.seed) for _ in range(args.process)]
        print(f"whole process, {args.process} fresh Pythons (`from etsim import "
              "CarbonMarketModel`, build, run, results); etsim's bytecode "
              + ("cached (.pyc)" if bytecode_cached() else "compiled from source in each"))
        print(f"  {'step':<21}{'min s':>8}{'median s':>10}")
        for step in PROCESS_STEPS:
            values = [w[step] for w in whole]
            print(f"  {step:<21}{min(values):>8.2f}{statistics.median(values):>10.2f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if counts["ledger_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
