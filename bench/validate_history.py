"""Validate china-history against the observed market, year by year.

    python bench/validate_history.py                  # seeds 1-3, full scale
    python bench/validate_history.py --seeds 10       # seeds 1-10
    python bench/validate_history.py --from /tmp/tables-main   # runs saved already
    python bench/validate_history.py --scale 0.1      # a quick look at a tenth

Runs ``china-history`` for each seed (or reads saved run folders, e.g. those of
``bench/snapshot_tables.py``: every ``china-history-seed*`` folder with a
``market_daily.parquet``), computes the market moments of ``experiments.moments`` from
the national market's opening (16 July 2021) and prints, per year 2021-2025, the
observed value beside the mean over seeds: mean close, volume, block share of volume,
daily volatility and the share of volume in the two months before a year-end deadline
(November-December), and the simulated mean fundamental price (the equilibrium price
that anchors firms' expectations: where the price level comes from). Then the moments a
peer model reports over the whole period (mean close, annualised volatility, maximum
drawdown). Below them,
issue 11's targets for the shipped defaults, each marked met or not met:

- every annual mean price 2021-2025 within 15% of observed, and their mean absolute
  error below 7.5%;
- every annual volume within 30%;
- block share 70-90% (observed 2023: 177 of 212 Mt);
- daily volatility within 25% of observed (each year);
- the 2025 mean below the 2024 mean.

Observed values: mean close and volatility from the daily closes shipped with the
package (``dashboard/data/cea_daily_close.csv``; Data: ICAP via World Carbon Pricing
Database, CC BY-NC-SA 4.0), volumes and shares from the calibration sheet
(``experiments.observed``). Not part of the test suite: a measurement (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from etsim.experiments.moments import observed_targets, yearly_moments  # noqa: E402
from etsim.experiments.observed import MARKET_OPEN, observed_daily  # noqa: E402

YEARS = range(2021, 2026)
COLUMNS = ("mean_price", "volume", "block_share", "volatility", "deadline_share")


def run_seed(seed: int, scale: float) -> tuple[pd.DataFrame, float]:
    """One china-history run's daily market table and its scale."""
    from etsim import CarbonMarketModel

    model = CarbonMarketModel("china-history", seed=seed, overrides={"scale": scale})
    model.run()
    return model.results()["market_daily"], scale


def saved_runs(folder: Path) -> list[tuple[pd.DataFrame, float]]:
    """The daily tables and scales of saved china-history runs under ``folder``."""
    runs = []
    for run in sorted(folder.glob("china-history*")):
        daily = run / "market_daily.parquet"
        if not daily.exists():
            continue
        scale = json.loads((run / "run.json").read_text())["scenario"].get("scale", 1.0)
        runs.append((pd.read_parquet(daily), float(scale)))
    return runs


def simulated_table(runs: list[tuple[pd.DataFrame, float]]) -> pd.DataFrame:
    """Mean over runs of each moment per year (rows year, columns moment), and the mean
    fundamental price (the equilibrium anchor of firms' expectations) from the opening."""
    frames = [yearly_moments(daily, scale) for daily, scale in runs]
    moments = pd.concat(frames, ignore_index=True)
    table = moments.groupby(["year", "moment"])["value"].mean().unstack("moment")
    fundamentals = []
    for daily, _ in runs:
        days = daily[pd.to_datetime(daily["date"]) >= pd.Timestamp(MARKET_OPEN)]
        fundamentals.append(days.groupby("year")["fundamental_price"].mean())
    table["fundamental"] = pd.concat(fundamentals, axis=1).mean(axis=1)
    return table


def observed_table() -> pd.DataFrame:
    """Observed moments per year (point targets; a bound pair as text)."""
    targets = observed_targets()
    table: dict[tuple[int, str], object] = {}
    for row in targets.itertuples():
        if math.isfinite(row.target):
            table[(row.year, row.moment)] = row.target
        else:
            table[(row.year, row.moment)] = (row.low, row.high)
    return pd.Series(table).unstack()


def _fmt(value: object, moment: str) -> str:
    if isinstance(value, tuple):
        low, high = value
        return f"{low:.0%}-{high:.0%}"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if moment in ("block_share", "deadline_share"):
        return f"{value:.0%}"
    if moment == "volatility":
        return f"{value:.3f}"
    return f"{value:.1f}"


def targets_met(sim: pd.DataFrame, obs: pd.DataFrame) -> list[tuple[str, bool, str]]:
    """Issue 11's targets: (description, met, figures)."""
    def get(frame: pd.DataFrame, year: int, moment: str) -> float:
        try:
            value = frame.loc[year, moment]
        except KeyError:
            return math.nan
        return float(value) if not isinstance(value, tuple) else math.nan

    out = []
    price_errors = [get(sim, y, "mean_price") / get(obs, y, "mean_price") - 1 for y in YEARS]
    worst = max((abs(e) for e in price_errors), default=math.nan)
    mae = sum(abs(e) for e in price_errors) / len(price_errors)
    out.append(("every mean price 2021-25 within 15%", worst <= 0.15,
                "errors " + " ".join(f"{e:+.0%}" for e in price_errors)))
    out.append(("mean absolute price error below 7.5%", mae < 0.075, f"MAE {mae:.1%}"))
    volume_errors = [get(sim, y, "volume") / get(obs, y, "volume") - 1 for y in YEARS]
    out.append(("every annual volume within 30%",
                all(abs(e) <= 0.30 for e in volume_errors),
                "errors " + " ".join(f"{e:+.0%}" for e in volume_errors)))
    shares = [get(sim, y, "block_share") for y in YEARS]
    out.append(("block share 70-90% (each year)",
                all(0.70 <= s <= 0.90 for s in shares),
                "shares " + " ".join(f"{s:.0%}" for s in shares)))
    vol_errors = [get(sim, y, "volatility") / get(obs, y, "volatility") - 1 for y in YEARS]
    out.append(("daily volatility within 25% (each year)",
                all(abs(e) <= 0.25 for e in vol_errors),
                "errors " + " ".join(f"{e:+.0%}" for e in vol_errors)))
    fall = get(sim, 2025, "mean_price") < get(sim, 2024, "mean_price")
    out.append(("2025 mean below 2024 mean", fall,
                f"{get(sim, 2024, 'mean_price'):.1f} -> {get(sim, 2025, 'mean_price'):.1f}"))
    return out


def whole_period(daily: pd.DataFrame) -> tuple[float, float, float]:
    """Over 16 July 2021 - 31 December 2025, the moments a peer model reports: the mean
    of the daily closes (CNY/t), the annualised volatility of their daily log returns
    (sd x sqrt(242 trading days)) and the maximum drawdown (the largest fall of the close
    from its running maximum, a share)."""
    dates = pd.to_datetime(daily["date"])
    days = daily[(dates >= pd.Timestamp(MARKET_OPEN)) & (dates <= pd.Timestamp("2025-12-31"))]
    closes = days["close"].dropna().to_numpy(dtype=float)
    returns = np.diff(np.log(closes))
    drawdown = (closes / np.maximum.accumulate(closes) - 1.0).min()
    return float(closes.mean()), float(returns.std(ddof=1) * math.sqrt(242)), float(drawdown)


def report(runs: list[tuple[pd.DataFrame, float]]) -> str:
    """The observed vs simulated table and the targets, as Markdown."""
    sim = simulated_table(runs)
    obs = observed_table()
    head = ("| year | mean close obs / sim (CNY/t) | volume obs / sim (Mt) | block share obs / "
            "sim | volatility obs / sim | Nov-Dec share obs / sim | fundamental sim |")
    lines = [f"china-history, {len(runs)} run(s), moments from 16 July 2021", "", head,
             "|---|---|---|---|---|---|---|"]
    for year in YEARS:
        cells = []
        for moment in COLUMNS:
            o = obs.loc[year, moment] if (year in obs.index and moment in obs) else None
            s = sim.loc[year, moment] if (year in sim.index and moment in sim) else None
            o = None if isinstance(o, float) and not math.isfinite(o) else o
            cells.append(f"{_fmt(o, moment)} / {_fmt(s, moment)}")
        fundamental = sim.loc[year, "fundamental"] if year in sim.index else None
        cells.append(_fmt(fundamental, "mean_price"))
        lines.append(f"| {year} | " + " | ".join(cells) + " |")
    observed = whole_period(observed_daily())
    simulated = np.array([whole_period(daily) for daily, _ in runs]).mean(axis=0)
    lines += ["", "| 16 Jul 2021 - 2025 | observed | simulated (mean over runs) | error |",
              "|---|---|---|---|"]
    for name, obs_value, sim_value, fmt in (
            ("mean close (CNY/t)", observed[0], simulated[0], "{:.1f}"),
            ("annualised volatility", observed[1], simulated[1], "{:.1%}"),
            ("maximum drawdown", observed[2], simulated[2], "{:.1%}")):
        lines.append(f"| {name} | {fmt.format(obs_value)} | {fmt.format(sim_value)} | "
                     f"{sim_value / obs_value - 1:+.1%} |")
    lines += ["", "| target | met | figures |", "|---|---|---|"]
    for text, met, figures in targets_met(sim, obs):
        lines.append(f"| {text} | {'met' if met else 'not met'} | {figures} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run or read the runs and print the validation table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N (default 3)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="scenario scale (volumes are divided by it; default 1.0)")
    parser.add_argument("--from", dest="folder", type=Path, default=None,
                        help="read saved china-history-seed* run folders instead of running")
    args = parser.parse_args(argv)
    if args.seeds < 1 or not 0 < args.scale <= 1:
        parser.error("--seeds must be at least 1 and --scale in (0, 1]")
    if args.folder is not None:
        runs = saved_runs(args.folder)
        if not runs:
            parser.error(f"--from: no china-history run folders in {args.folder}")
    else:
        runs = []
        for seed in range(1, args.seeds + 1):
            runs.append(run_seed(seed, args.scale))
            print(f"seed {seed} done", file=sys.stderr, flush=True)
    print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
