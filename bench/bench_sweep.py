"""Sweep throughput with 1 and N workers: runs per minute and parallel efficiency.

The same experiment (china-2024 at scale 0.5 by default, runs of about a second each:
4 tightening rates x 10 replicates = 40 runs) is swept twice into fresh folders: once
in process (``workers=1``, the sequential baseline) and once on a Dask LocalCluster of N
single-threaded worker processes (``workers=N``), each in a fresh process as
``etsim sweep`` runs it. Times are wall-clock times of ``run_sweep`` as a user sees
them (after the process's imports), the cluster's start and stop included.

    python bench/bench_sweep.py                    # 40 runs, scale 0.5, 1 and 2 workers
    python bench/bench_sweep.py --runs 40 --scale 1 --workers 2

Parallel efficiency = (time with 1 worker) / (N x time with N workers); the target is
90% or more on 2 cores. The script also checks that both
sweeps give the same summary (wall times aside). To tell Dask's overhead from cores
that slow each other down (other work on a shared machine), it also prints how busy the
workers were, how much longer a run took than in process, and the CPU time of each
sweep over all its processes (this one and the workers): on a shared machine the wall
times measure the other work too, the CPU times much less. Exit status 1 if the
summaries differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
# the Dask workers too
os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")

import pandas as pd  # noqa: E402

from etsim.experiments.sweep import available_cores  # noqa: E402

RATES = (0.01, 0.02, 0.03, 0.04)

EXPERIMENT = """
name = "bench-sweep"
scenario = "{scenario}"
seed = 42
replicates = {replicates}

[overrides]
scale = {scale}

[levers."sectors.*.allocation.tightening"]
values = [{rates}]
"""


# One sweep in a fresh process, as `etsim sweep` runs it: the serial sweep's first run
# and a parallel sweep's workers start cold alike (a LocalCluster's workers are forked
# from the sweep's process, so a process that has already run the model would hand
# them its warm state).
SWEEP_ONE = """
import json, resource, sys, time
from etsim.experiments.sweep import run_sweep


def cpu():  # this process and its finished children (the workers, once stopped)
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                     resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


path, out, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
used, started = cpu(), time.perf_counter()
result = run_sweep(path, out, workers=workers, progress=False)
elapsed = time.perf_counter() - started
print(json.dumps({"elapsed": elapsed, "cpu": cpu() - used, "failed": result.failed,
                  "ok": result.ok}))
"""


def _sweep(path: Path, out: Path, workers: int) -> tuple[float, float, pd.DataFrame]:
    """Wall and CPU seconds of one sweep (``run_sweep`` in a fresh process, after its
    imports), and its summary. CPU time counts the sweep's process and its workers:
    unlike wall time, other work on the machine changes it little."""
    done = subprocess.run([sys.executable, "-c", SWEEP_ONE, str(path), str(out),
                           str(workers)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                          check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if not figures["ok"]:
        raise SystemExit(f"{figures['failed']} runs failed: see {out / 'errors'}")
    return figures["elapsed"], figures["cpu"], pd.read_parquet(out / "summary.parquet")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="china-2024")
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=40,
                        help=f"runs per sweep, a multiple of {len(RATES)}")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel sweep")
    args = parser.parse_args(argv)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    replicates = max(1, args.runs // len(RATES))
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        base = Path(folder)
        path = base / "bench.toml"
        path.write_text(EXPERIMENT.format(scenario=args.scenario, replicates=replicates,
                                          scale=args.scale,
                                          rates=", ".join(map(str, RATES))))
        runs = replicates * len(RATES)
        print(f"{runs} runs of {args.scenario} at scale {args.scale}; "
              f"{available_cores()} cores available")
        serial, serial_cpu, first = _sweep(path, base / "serial", 1)
        per_run = first["wall_time_s"]
        print(f"  run time: mean {per_run.mean():.2f} s, min {per_run.min():.2f} s, "
              f"max {per_run.max():.2f} s (in process)")
        parallel, parallel_cpu, second = _sweep(path, base / "parallel", args.workers)
    # busy share of the workers' time: low means scheduling gaps, start-up or a tail;
    # a slower run time than in process means the cores slow each other down
    utilisation = second["wall_time_s"].sum() / (args.workers * parallel)
    slowdown = second["wall_time_s"].mean() / first["wall_time_s"].mean()
    speedup = serial / parallel
    efficiency = speedup / args.workers
    print(f"{'workers':>8} {'wall time (s)':>14} {'runs/min':>9}")
    print(f"{1:>8} {serial:>14.1f} {60 * runs / serial:>9.1f}")
    print(f"{args.workers:>8} {parallel:>14.1f} {60 * runs / parallel:>9.1f}")
    print(f"speed-up {speedup:.2f} x on {args.workers} workers; parallel efficiency "
          f"{100 * efficiency:.0f}% (target >= 90%)")
    print(f"workers busy {100 * utilisation:.0f}% of the parallel sweep's wall time "
          f"(cluster start-up and stop included); a run took {slowdown:.2f} x as long as in "
          "process")
    print(f"CPU time of the sweep, all its processes: {serial_cpu:.1f} s with 1 worker, "
          f"{parallel_cpu:.1f} s with {args.workers} ({parallel_cpu / serial_cpu:.2f} x); "
          f"CPU-bound efficiency {100 * serial_cpu / parallel_cpu:.0f}% (what the parallel "
          "efficiency would be on cores nothing else uses, tail and idle start-up aside)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    same = first.drop(columns="wall_time_s").equals(second.drop(columns="wall_time_s"))
    print(f"same summary with 1 and {args.workers} workers: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
