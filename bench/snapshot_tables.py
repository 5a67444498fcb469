"""Save every shipped scenario's results tables, or compare them with a saved set.

A refactor must leave every shipped scenario's tables identical for fixed seeds.
Save the tables before the first move, then compare after each step:

    python bench/snapshot_tables.py save /tmp/tables-before
    python bench/snapshot_tables.py compare /tmp/tables-before

It runs ``python -m etsim run`` from this checkout in a subprocess and compares the
Parquet tables with ``pandas.testing`` (exact: no tolerance). The exit status of
``compare`` is 1 if any table differs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

SCENARIOS = ["classroom", "china-2024", "absolute-cap-2027", "paid-allocation", "reserve-pool",
             "china-history"]
SEEDS = [1, 2]


def run_all(out: Path, scenarios: list[str], seeds: list[int]) -> None:
    """Run each scenario and seed with ``etsim run`` into ``out/NAME-seedN``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in scenarios:
        for seed in seeds:
            target = out / f"{name}-seed{seed}"
            if target.exists():
                continue
            subprocess.run(
                [sys.executable, "-m", "etsim", "run", name, "--seed", str(seed),
                 "--out", str(target), "--quiet"],
                check=True, cwd=Path(__file__).resolve().parents[1],
            )
            print(f"saved {target}", flush=True)


def compare(before: Path, after: Path) -> list[str]:
    """Return one line per table that differs between two snapshot folders."""
    differences: list[str] = []
    for run_dir in sorted(p for p in before.iterdir() if (after / p.name).is_dir()):
        for table in sorted(run_dir.glob("*.parquet")):
            other = after / run_dir.name / table.name
            if not other.exists():
                differences.append(f"{run_dir.name}/{table.name}: missing after")
                continue
            try:
                pd.testing.assert_frame_equal(
                    pd.read_parquet(table), pd.read_parquet(other), check_exact=True
                )
            except AssertionError as error:
                first = str(error).strip().splitlines()[:3]
                differences.append(f"{run_dir.name}/{table.name}: {' '.join(first)}")
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "compare"])
    parser.add_argument("folder", type=Path, help="the saved snapshot")
    parser.add_argument("--scenario", action="append", help="only these scenarios")
    parser.add_argument("--seed", type=int, action="append", help="only these seeds")
    args = parser.parse_args()
    scenarios = args.scenario or SCENARIOS
    seeds = args.seed or SEEDS
    if args.action == "save":
        run_all(args.folder, scenarios, seeds)
        return 0
    with tempfile.TemporaryDirectory(prefix="etsim-after-") as scratch:
        after = Path(scratch)
        run_all(after, scenarios, seeds)
        differences = compare(args.folder, after)
    for line in differences:
        print(line)
    print("identical" if not differences else f"{len(differences)} tables differ")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
