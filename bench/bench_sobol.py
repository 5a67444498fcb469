"""Plan a Sobol study: sweep a fraction of one on Dask and report runs per minute.

etsim's Sobol sampling (first-order and total indices, Saltelli's scheme without
second order) makes N x (D + 2) runs for D factors at N base samples: 10 factors at
N = 256 is 3,072 runs (5,632 with second-order indices, N x (2D + 2)). This script
builds such an experiment on china-2024 (10 factors: the four sectors' benchmark
tightening, the penalty multiple, the price limit, the offset share, the initial price,
the firms' credit years and the urgency exponent), runs ``--samples`` base samples of it
(N = 2 by default: 24 runs, 1/128 of the study) with ``etsim sweep``'s own code
(``run_sweep``) on a Dask LocalCluster of ``--workers`` processes, or on an existing
cluster (``--scheduler ADDRESS``), and prints the runs per minute and what the whole
study would take at that rate.

    python bench/bench_sobol.py                          # N = 2, scale 1, 2 workers
    python bench/bench_sobol.py --samples 4 --scale 0.5
    python bench/bench_sobol.py --scheduler tcp://10.0.0.5:8786   # an existing cluster

Times are wall-clock times of the sweep as a user sees it (cluster start and stop,
writing every run's summary row included).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")

from etsim.experiments.sweep import run_sweep  # noqa: E402

FACTORS = {
    "sectors.power.allocation.tightening": (0.0, 0.03),
    "sectors.steel.allocation.tightening": (0.0, 0.04),
    "sectors.cement.allocation.tightening": (0.0, 0.04),
    "sectors.aluminium.allocation.tightening": (0.0, 0.04),
    "penalty.multiple": (1.0, 5.0),
    "market.price_limit": (0.05, 0.2),
    "compliance.offset_share": (0.0, 0.1),
    "market.initial_price": (60.0, 120.0),
    "trading.credit_years": (0.5, 2.0),
    "trading.urgency_exponent": (1.0, 3.0),
}
STUDY_SAMPLES = 256  # the study being planned: 10 factors at N = 256


def experiment(samples: int, scale: float) -> str:
    """The experiment file's text."""
    lines = ['name = "bench-sobol"', 'scenario = "china-2024"', "seed = 7",
             "replicates = 1", 'sampling = "sobol"', f"samples = {samples}", "",
             "[overrides]", f"scale = {scale}", ""]
    for key, (low, high) in FACTORS.items():
        lines += [f'[uncertainties."{key}"]', f"range = [{low}, {high}]", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2,
                        help="Sobol base samples N, a power of 2 (default: 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="china-2024 scale")
    parser.add_argument("--workers", type=int, default=2,
                        help="LocalCluster worker processes (default: 2)")
    parser.add_argument("--scheduler", default=None,
                        help="address of an existing Dask scheduler instead of a LocalCluster")
    args = parser.parse_args(argv)
    d = len(FACTORS)
    runs = args.samples * (d + 2)
    study = STUDY_SAMPLES * (d + 2)
    where = args.scheduler or f"a LocalCluster of {args.workers} workers"
    print(f"Sobol: {d} factors, N = {args.samples}: {runs} runs of china-2024 at scale "
          f"{args.scale} ({runs / study:.2%} of N = {STUDY_SAMPLES}, {study:,} runs) on {where}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-sobol-") as folder:
        path = Path(folder) / "sobol.toml"
        path.write_text(experiment(args.samples, args.scale))
        began = time.perf_counter()
        result = run_sweep(path, Path(folder) / "out",
                           workers=None if args.scheduler else args.workers,
                           scheduler=args.scheduler, progress=False)
        elapsed = time.perf_counter() - began
    if not result.ok:
        print(f"{result.failed} runs failed")
        return 1
    rate = 60 * runs / elapsed
    print(f"{runs} runs in {elapsed:.1f} s: {rate:.1f} runs per minute")
    for total in (study, 5_000, STUDY_SAMPLES * (2 * d + 2)):
        print(f"  {total:,} runs at this rate: {total / rate / 60:.1f} h")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
