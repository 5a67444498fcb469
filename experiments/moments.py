"""Market moments: the same functions for the observed market and for a run's tables.

A moment is a number per (moment, year) that describes the market as an observer sees
it. :func:`yearly_moments` computes them from a ``market_daily``-like table (date, year,
month, close and, for a run, volume and block_volume); :func:`observed_targets` gives
the observed values (the daily closes shipped with the package, and the yearly facts of
``experiments.observed``); :func:`moment_errors` and :func:`objective` compare the two.

Moments (``MOMENTS``):

- ``mean_price``: mean of the year's daily closes (CNY/t), days with a close only;
- ``volatility``: standard deviation of the daily log returns of the close within the
  year (consecutive days with a close);
- ``volume``: the year's traded volume (Mt), a run's divided by its scenario's
  ``scale`` so that a run at a tenth of the market compares with the whole market;
- ``block_share``: block (negotiated) trades' share of the year's volume;
- ``deadline_share``: share of the year's volume traded in November and December, the
  two months before a year-end compliance deadline;
- ``q4_share``: share of the year's volume traded in October-December;
- ``price_ratio``: the year's mean price over the previous year's (the 2025 fall is
  ``price_ratio`` of 2025 below 1).

Everything is measured from the national market's first trading day (16 July 2021) on,
for observed and simulated markets alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date

import numpy as np
import pandas as pd

from etsim.experiments.observed import (
    BLOCK_SHARE,
    DEADLINE_SHARE_BOUNDS,
    MARKET_OPEN,
    Q4_SHARE,
    VOLUME_MT,
    observed_daily,
)

MOMENTS = ("mean_price", "volatility", "volume", "block_share", "deadline_share", "q4_share",
           "price_ratio")
UNITS = {"mean_price": "CNY/t", "volatility": "daily log return sd", "volume": "Mt",
         "block_share": "share", "deadline_share": "share", "q4_share": "share",
         "price_ratio": "ratio"}
# Default weights of the moment families in the objective (a judgement, documented in
# docs/calibration.md): prices first, then volume and its composition and timing.
DEFAULT_WEIGHTS = {"mean_price": 1.0, "volatility": 0.5, "volume": 0.5, "block_share": 0.5,
                   "deadline_share": 0.25, "q4_share": 0.25, "price_ratio": 1.0}
# The year whose price_ratio is a target: the 2025 fall (calibration 7).
FALL_YEAR = 2025
# A moment a run cannot produce (no volume, so no block share) counts as this relative
# error: as bad as being off by 100%.
MISSING_ERROR = 1.0
COLUMNS = ["moment", "year", "value"]


def _closes(daily: pd.DataFrame) -> pd.DataFrame:
    """Days with a close of their own (a day without listed trades may have none)."""
    close = pd.to_numeric(daily["close"], errors="coerce")
    return daily[np.isfinite(close) & (close > 0)]


def yearly_moments(daily: pd.DataFrame, scale: float = 1.0,
                   start: date | None = MARKET_OPEN) -> pd.DataFrame:
    """Every moment of every year of a daily market table.

    Args:
        daily: Columns date, year, close; volume and block_volume if the table has
            volumes (a run's ``market_daily``). Days with no close (NaN) are left out
            of the price moments.
        scale: The run's scenario ``scale``: volumes are divided by it.
        start: Days before it are left out (default: the market's opening day).

    Returns:
        Columns moment, year, value; a moment that is undefined in a year (no volume,
        fewer than two daily returns) is NaN; ``price_ratio`` only for years after the first.
    """
    if start is not None:
        daily = daily[pd.to_datetime(daily["date"]) >= pd.Timestamp(start)]
    daily = daily.sort_values("date")
    rows: list[tuple[str, int, float]] = []
    means: dict[int, float] = {}
    has_volume = "volume" in daily
    for year, days in daily.groupby("year", sort=True):
        year = int(year)
        priced = _closes(days)
        close = priced["close"].to_numpy(dtype=float)
        mean = float(close.mean()) if len(close) else math.nan
        means[year] = mean
        rows.append(("mean_price", year, mean))
        returns = np.diff(np.log(close))
        rows.append(("volatility", year,
                     float(np.std(returns, ddof=1)) if len(returns) > 1 else math.nan))
        if has_volume:
            volume = days["volume"].to_numpy(dtype=float)
            total = float(volume.sum())
            month = days["month"].to_numpy()
            rows.append(("volume", year, total / scale / 1e6))
            if "block_volume" in days:
                block = float(days["block_volume"].to_numpy(dtype=float).sum())
                rows.append(("block_share", year, block / total if total > 0 else math.nan))
            late = float(volume[month >= 11].sum())
            quarter = float(volume[month >= 10].sum())
            rows.append(("deadline_share", year, late / total if total > 0 else math.nan))
            rows.append(("q4_share", year, quarter / total if total > 0 else math.nan))
    for year, mean in means.items():
        previous = means.get(year - 1)
        if previous is not None and previous > 0:
            rows.append(("price_ratio", year, mean / previous))
    return pd.DataFrame(rows, columns=COLUMNS)


def monthly_moments(daily: pd.DataFrame, scale: float = 1.0,
                    start: date | None = MARKET_OPEN) -> pd.DataFrame:
    """The mean close and the volume of each month.

    Args:
        daily: As for :func:`yearly_moments`.
        scale: The run's scenario ``scale``: volumes are divided by it.
        start: Days before it are left out.

    Returns:
        Columns year, month, mean_price (CNY/t; NaN in a month without a close) and
        volume (Mt; NaN if the table has no volumes).
    """
    if start is not None:
        daily = daily[pd.to_datetime(daily["date"]) >= pd.Timestamp(start)]
    keys = ["year", "month"]
    price = _closes(daily).groupby(keys)["close"].mean().rename("mean_price")
    frame = daily[keys].drop_duplicates().set_index(keys).join(price)
    if "volume" in daily:
        frame = frame.join((daily.groupby(keys)["volume"].sum() / scale / 1e6).rename("volume"))
    else:
        frame["volume"] = math.nan
    return frame.reset_index().sort_values(keys, ignore_index=True)


def run_moments(tables: Mapping[str, pd.DataFrame], scale: float = 1.0) -> pd.DataFrame:
    """The yearly moments of one run.

    Args:
        tables: The run's results tables; ``market_daily`` is used (``market_years``'
            volumes are its sums).
        scale: The run's scenario ``scale``.

    Returns:
        As :func:`yearly_moments`.
    """
    return yearly_moments(tables["market_daily"], scale)


def observed_targets() -> pd.DataFrame:
    """The observed moments the fit aims at.

    Returns:
        Columns moment, year, target, low, high: ``target`` is the observed value, or
        NaN for a moment known only within bounds; ``low`` and ``high`` are the bounds
        (both equal to ``target`` for a point). Prices and volatility come from the daily
        closes (2021 from 16 July), volumes and shares from the calibration sheet.
    """
    prices = yearly_moments(observed_daily())
    rows = []
    for row in prices.itertuples():
        if row.moment in ("mean_price", "volatility") or (
                row.moment == "price_ratio" and row.year == FALL_YEAR):
            rows.append((row.moment, row.year, row.value, row.value, row.value))
    for moment, table in (("volume", VOLUME_MT), ("block_share", BLOCK_SHARE),
                          ("q4_share", Q4_SHARE)):
        rows += [(moment, year, value, value, value) for year, value in table.items()]
    rows += [("deadline_share", year, math.nan, low, high)
             for year, (low, high) in DEADLINE_SHARE_BOUNDS.items()]
    return pd.DataFrame(rows, columns=["moment", "year", "target", "low", "high"])


def replace_targets(targets: pd.DataFrame,
                    replacements: Mapping[str, Mapping[int, float]]) -> pd.DataFrame:
    """Targets with some values replaced (or added) as points: {moment: {year: value}}."""
    frame = targets.set_index(["moment", "year"])
    for moment, years in replacements.items():
        for year, value in years.items():
            frame.loc[(moment, int(year)), ["target", "low", "high"]] = float(value)
    return frame.reset_index().sort_values(["moment", "year"], ignore_index=True)


def relative_error(value: float, target: float, low: float, high: float) -> float:
    """The relative error of a simulated moment against a point target or bounds.

    A point (``low == high``): (value - target) / |target|. Bounds: 0 inside them, else
    the distance to the nearer bound over that bound. NaN if the value is NaN. A target
    or bound of 0 (a share) has no relative error: the plain difference is used.
    """
    if not math.isfinite(value):
        return math.nan
    if low == high:
        return (value - target) / (abs(target) or 1.0)
    if value < low:
        return (value - low) / (abs(low) or 1.0)
    if value > high:
        return (value - high) / (abs(high) or 1.0)
    return 0.0


def moment_errors(targets: pd.DataFrame, simulated: pd.DataFrame) -> pd.DataFrame:
    """Each target beside the simulated moment, averaged over replicates, and its error.

    Args:
        targets: From :func:`observed_targets`.
        simulated: Columns moment, year, value, and replicate when there are several
            (one row per replicate); the mean over replicates is compared, the min and
            max over replicates are kept for the report.

    Returns:
        The targets with columns simulated (mean), simulated_low, simulated_high (min
        and max over replicates), replicates and error (relative; NaN where the run
        could not produce the moment).
    """
    grouped = simulated.groupby(["moment", "year"])["value"]
    stats = pd.DataFrame({"simulated": grouped.mean(), "simulated_low": grouped.min(),
                          "simulated_high": grouped.max(), "replicates": grouped.count()})
    frame = targets.merge(stats.reset_index(), on=["moment", "year"], how="left")
    frame["replicates"] = frame["replicates"].fillna(0).astype(int)
    frame["error"] = [relative_error(float(s), float(t), float(lo), float(hi))
                      for s, t, lo, hi in zip(frame["simulated"], frame["target"],
                                              frame["low"], frame["high"], strict=True)]
    return frame


def objective(errors: pd.DataFrame, weights: Mapping[str, float],
              years: Iterable[int]) -> float:
    """The weighted mean squared relative error over the targets of some years.

    Each moment family counts with its weight however many years it has: the family's
    term is the mean of its squared errors over its targets in ``years``, and the
    objective is the weighted mean of the families' terms. A missing simulated moment
    counts as an error of ``MISSING_ERROR``.

    Args:
        errors: From :func:`moment_errors`.
        weights: Weight of each moment family (families not named weigh 0).
        years: The years whose targets count (the in-sample years for the fit).

    Returns:
        The objective (0 is a perfect fit); NaN if no weighted target falls in ``years``.
    """
    chosen = errors[errors["year"].isin(list(years))]
    total, weight_sum = 0.0, 0.0
    for moment, rows in chosen.groupby("moment"):
        weight = float(weights.get(str(moment), 0.0))
        if weight <= 0:
            continue
        error = rows["error"].to_numpy(dtype=float)
        error = np.where(np.isfinite(error), error, MISSING_ERROR)
        total += weight * float(np.mean(error ** 2))
        weight_sum += weight
    return total / weight_sum if weight_sum > 0 else math.nan
