"""How run time and memory grow with the number of firms and of trading days.

Each case runs china-2024 in a fresh process (``python -m etsim`` is not used: the case
builds ``CarbonMarketModel`` itself) and reports the model's time (construct + run +
results) and the process's peak RSS:

* firms x 1, 4 and 14 (``scale``, which goes up to 10; x14 is scale 10 with each
  sector's firm count x 1.4: 50,960 firms) to 2030;
* end years 2030, 2035 and 2040 at scale 1 (8, 13 and 18 calendar years);
* 50,960 firms (x14) for 10 compliance years (to 2033), the issue's large case.

CPU time (``time.process_time``) is printed beside the wall time: on a machine shared
with other work it is the steadier figure. The cost exponents are the slopes of
log(time) against log(firms) and log(trading days), fitted by least squares over the
cases of each series (1 = linear).

    python bench/bench_scaling.py                 # every case, one repeat
    python bench/bench_scaling.py --repeat 3      # median of three
    python bench/bench_scaling.py --only firms    # the firms series only

The compiled kernels are loaded from numba's cache (a warm-up in each process, not
counted); the first process on a machine compiles them (see bench/bench_china.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASE = r"""
import json, resource, sys, time
from etsim.model import _kernels
_kernels.warm_up()
from etsim import CarbonMarketModel
from etsim import load_scenario
factor, end_year = float(sys.argv[1]), int(sys.argv[2])
# scale goes up to 10; beyond, each simulated sector's firm count grows instead
overrides = {"scale": min(factor, 10.0), "end_year": end_year}
if factor > 10:
    base = load_scenario("china-2024")
    for name in base.simulated_sectors():
        overrides[f"sectors.{name}.firms"] = round(base.sectors[name].firms * factor / 10)
began, cpu = time.perf_counter(), time.process_time()
model = CarbonMarketModel(scenario="china-2024", seed=1, overrides=overrides)
built = time.perf_counter()
model.run()
ran = time.perf_counter()
tables = model.results()
done = time.perf_counter()
daily = tables["market_daily"]
print(json.dumps({
    "firms": int(model.n_firms), "days": int(model.calendar.n_days),
    "orders": int(daily["orders"].sum()), "trades": int(daily["trades"].sum()),
    "construct": built - began, "run": ran - built, "results": done - ran,
    "model": done - began, "cpu": time.process_time() - cpu,
    "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

SERIES = {
    "firms": [(1.0, 2030), (4.0, 2030), (14.0, 2030)],
    "days": [(1.0, 2030), (1.0, 2035), (1.0, 2040)],
    "large": [(14.0, 2033)],
}


def run_case(scale: float, end_year: int) -> dict:
    """One case in a fresh process; its figures."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CASE, str(scale), str(end_year)],
                         capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) on log(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return (sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
            / sum((a - mx) ** 2 for a in lx))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (median)")
    parser.add_argument("--only", choices=sorted(SERIES), action="append",
                        help="only these series (default: all)")
    args = parser.parse_args(argv)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[tuple[float, int], dict] = {}
    for name in args.only or list(SERIES):
        for case in SERIES[name]:
            if case in results:
                continue
            runs = [run_case(*case) for _ in range(args.repeat)]
            figures = dict(runs[0])
            for key in ("construct", "run", "results", "model", "cpu", "rss_mib"):
                figures[key] = statistics.median(r[key] for r in runs)
            results[case] = figures
            print(f"scale {case[0]:>4} to {case[1]}: {figures['firms']:>6,} firms, "
                  f"{figures['days']:>5,} days, {figures['orders']:>9,} orders: model "
                  f"{figures['model']:6.2f} s (construct {figures['construct']:.2f}, run "
                  f"{figures['run']:.2f}, results {figures['results']:.2f}; CPU "
                  f"{figures['cpu']:.2f} s), max RSS "
                  f"{figures['rss_mib']:,.0f} MiB", flush=True)
    for name, key in (("firms", "firms"), ("days", "days")):
        cases = [results[c] for c in SERIES[name] if c in results]
        if len(cases) >= 2:
            xs = [c[key] for c in cases]
            model = slope(xs, [c["model"] for c in cases])
            cpu = slope(xs, [c["cpu"] for c in cases])
            print(f"cost exponent in {name}: model time {model:.2f}, model CPU time "
                  f"{cpu:.2f} (1 = linear)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
