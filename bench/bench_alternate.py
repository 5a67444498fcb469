"""Compare the model run time of two checkouts in alternating fresh processes.

On a shared machine the speed of the host drifts by 10-30% within minutes, so two
benchmarks taken one after the other compare the host as much as the code. This runs
the same scenario from two checkouts in turn, each in a fresh Python (imports and
kernels loaded before the clock starts), and reports each checkout's CPU time of the
run (``time.process_time``, the least of ``--inner`` runs per process):

    git worktree add /tmp/before <commit>          # the code to compare against
    python bench/bench_alternate.py /tmp/before    # this checkout against it

Both checkouts must have their compiled kernels in numba's cache (one run of each
beforehand), or the first process of each compiles them before its clock starts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

TIMED = """
import sys, time
from etsim import CarbonMarketModel
best = float("inf")
for _ in range({inner}):
    model = CarbonMarketModel({scenario!r}, seed={seed})
    start = time.process_time()
    model.run()
    best = min(best, time.process_time() - start)
print(best)
"""


def run_once(checkout: Path, scenario: str, seed: int, inner: int) -> float:
    """The least CPU time of ``inner`` runs in one fresh process of ``checkout``.

    Raises:
        RuntimeError: The process failed (its standard error is in the message).
    """
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run(
        [sys.executable, "-c", TIMED.format(inner=inner, scenario=scenario, seed=seed)],
        cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{checkout}: {done.stderr.strip()[-2000:]}")
    return float(done.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the checkout to compare against")
    parser.add_argument("--rounds", type=int, default=6,
                        help="processes per checkout, taken in turn (default: 6)")
    parser.add_argument("--inner", type=int, default=3,
                        help="runs per process; the least counts (default: 3)")
    parser.add_argument("--scenario", default="china-2024")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for name, value in (("--rounds", args.rounds), ("--inner", args.inner)):
        if value < 1:
            parser.error(f"{name} must be at least 1, got {value}")
    other = args.other.resolve()
    if not (other / "model" / "market.py").is_file():
        parser.error(f"{other} is not an etsim checkout (no model/market.py)")
    checkouts = {"other": other, "this": HERE}
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, checkout in checkouts.items():
            times[name].append(run_once(checkout, args.scenario, args.seed, args.inner))
    print(f"{args.scenario}, seed {args.seed}: CPU time of the run (s), least of "
          f"{args.inner} runs per process, {args.rounds} processes each, in turn")
    for name, checkout in checkouts.items():
        series = times[name]
        print(f"  {name:5s} {checkout}: " + " ".join(f"{t:.3f}" for t in series)
              + f"  min {min(series):.3f}  median {statistics.median(series):.3f}")
    ratio = statistics.median(times["this"]) / statistics.median(times["other"])
    print(f"this / other, medians: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
