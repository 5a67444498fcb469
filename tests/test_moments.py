"""Market moments on hand-built tables, with hand-computed values; the observed targets;
the relative errors and the objective the calibration minimises."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from etsim.experiments.moments import (
    MISSING_ERROR,
    moment_errors,
    monthly_moments,
    objective,
    observed_targets,
    relative_error,
    replace_targets,
    run_moments,
    yearly_moments,
)
from etsim.experiments.observed import VOLUME_MT, observed_daily


def _daily(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    """A market_daily-like table from (date, close, volume, block_volume) rows."""
    frame = pd.DataFrame(rows, columns=["date", "close", "volume", "block_volume"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["year"] = frame["date"].dt.year
    frame["month"] = frame["date"].dt.month
    return frame


def _value(moments: pd.DataFrame, moment: str, year: int) -> float:
    row = moments[(moments["moment"] == moment) & (moments["year"] == year)]
    assert len(row) == 1, (moment, year)
    return float(row["value"].iloc[0])


@pytest.fixture
def two_years() -> pd.DataFrame:
    # 2022: closes 50, 55, 60 (NaN day skipped); volume 1, 3 (Oct), 4 (Nov), 2 (Dec) Mt
    # 2023: closes 40, 40: ratio 40 / 55; one day before the opening of 2021 is left out
    return _daily([
        ("2021-07-15", 999.0, 5e6, 0.0),  # before the market opened: not counted
        ("2022-03-01", 50.0, 1e6, 0.0),
        ("2022-10-10", 55.0, 3e6, 1e6),
        ("2022-11-10", float("nan"), 4e6, 4e6),  # no close of its own
        ("2022-12-10", 60.0, 2e6, 0.0),
        ("2023-01-05", 40.0, 0.0, 0.0),
        ("2023-01-06", 40.0, 0.0, 0.0),
    ])


def test_yearly_moments_by_hand(two_years: pd.DataFrame) -> None:
    m = yearly_moments(two_years, scale=0.5)
    assert _value(m, "mean_price", 2022) == pytest.approx(55.0)
    sd = np.std([math.log(55 / 50), math.log(60 / 55)], ddof=1)
    assert _value(m, "volatility", 2022) == pytest.approx(sd)
    # 10 Mt traded at scale 0.5 stands for 20 Mt in the whole market
    assert _value(m, "volume", 2022) == pytest.approx(20.0)
    assert _value(m, "block_share", 2022) == pytest.approx(5 / 10)
    assert _value(m, "deadline_share", 2022) == pytest.approx(6 / 10)
    assert _value(m, "q4_share", 2022) == pytest.approx(9 / 10)
    assert _value(m, "price_ratio", 2023) == pytest.approx(40 / 55)
    assert math.isnan(_value(m, "volatility", 2023))  # one return: no sd
    # no volume in 2023: the shares are undefined, not zero
    assert math.isnan(_value(m, "block_share", 2023))
    assert math.isnan(_value(m, "deadline_share", 2023))
    assert 2021 not in set(m["year"])  # the day before the opening is left out
    assert not ((m["moment"] == "price_ratio") & (m["year"] == 2022)).any()


def test_run_moments_reads_market_daily(two_years: pd.DataFrame) -> None:
    tables = {"market_daily": two_years, "market_years": pd.DataFrame()}
    pd.testing.assert_frame_equal(run_moments(tables, 0.5), yearly_moments(two_years, 0.5))


def test_monthly_moments_by_hand(two_years: pd.DataFrame) -> None:
    m = monthly_moments(two_years).set_index(["year", "month"])
    assert m.loc[(2022, 10), "mean_price"] == 55.0
    assert math.isnan(m.loc[(2022, 11), "mean_price"])  # its only day has no close
    assert m.loc[(2022, 11), "volume"] == pytest.approx(4.0)
    assert (2021, 7) not in m.index


def test_observed_targets_from_the_shipped_data() -> None:
    targets = observed_targets().set_index(["moment", "year"])
    daily = observed_daily()
    # the mean close of 2024 from the file (calibration.md: 92.5) and the 2025 fall
    assert targets.loc[("mean_price", 2024), "target"] == pytest.approx(
        daily.loc[daily["year"] == 2024, "close"].mean())
    assert targets.loc[("mean_price", 2024), "target"] == pytest.approx(92.46, abs=0.01)
    assert targets.loc[("price_ratio", 2025), "target"] == pytest.approx(72.0 / 92.5, abs=0.002)
    assert targets.loc[("volume", 2023), "target"] == VOLUME_MT[2023] == 212
    assert targets.loc[("block_share", 2023), "target"] == pytest.approx(0.835, abs=0.001)
    low, high = targets.loc[("deadline_share", 2021), ["low", "high"]]
    assert (low, high) == (pytest.approx(1 - 23 / 179), 1.0)
    assert set(targets.index.get_level_values("year")) == {2021, 2022, 2023, 2024, 2025}


def test_replace_targets_sets_and_adds_points() -> None:
    targets = replace_targets(observed_targets(), {"mean_price": {2024: 80.0},
                                                   "volume": {2026: 3.0}})
    t = targets.set_index(["moment", "year"])
    assert tuple(t.loc[("mean_price", 2024), ["target", "low", "high"]]) == (80.0, 80.0, 80.0)
    assert t.loc[("volume", 2026), "target"] == 3.0


def test_relative_error_points_and_bounds() -> None:
    assert relative_error(110.0, 100.0, 100.0, 100.0) == pytest.approx(0.1)
    assert relative_error(90.0, 100.0, 100.0, 100.0) == pytest.approx(-0.1)
    # bounds: inside is no error, outside is the distance to the nearer bound over it
    assert relative_error(0.9, math.nan, 0.8, 1.0) == 0.0
    assert relative_error(0.6, math.nan, 0.8, 1.0) == pytest.approx(-0.25)
    assert relative_error(0.95, math.nan, 0.0, 0.79) == pytest.approx(0.16 / 0.79)
    assert math.isnan(relative_error(math.nan, 1.0, 1.0, 1.0))
    # a target of 0 (no block trades) has no relative error: the difference counts
    assert relative_error(0.25, 0.0, 0.0, 0.0) == 0.25


def _targets() -> pd.DataFrame:
    return pd.DataFrame([("mean_price", 2021, 50.0, 50.0, 50.0),
                         ("mean_price", 2022, 100.0, 100.0, 100.0),
                         ("volume", 2021, 200.0, 200.0, 200.0),
                         ("mean_price", 2024, 80.0, 80.0, 80.0)],
                        columns=["moment", "year", "target", "low", "high"])


def test_errors_average_the_replicates_first() -> None:
    simulated = pd.DataFrame([(0, "mean_price", 2021, 40.0), (1, "mean_price", 2021, 70.0)],
                             columns=["replicate", "moment", "year", "value"])
    errors = moment_errors(_targets(), simulated).set_index(["moment", "year"])
    row = errors.loc[("mean_price", 2021)]
    assert row["simulated"] == 55.0 and row["error"] == pytest.approx(0.1)
    assert (row["simulated_low"], row["simulated_high"], row["replicates"]) == (40.0, 70.0, 2)
    assert math.isnan(errors.loc[("volume", 2021), "error"])  # never simulated


def test_objective_by_hand() -> None:
    simulated = pd.DataFrame([("mean_price", 2021, 55.0), ("mean_price", 2022, 80.0),
                              ("volume", 2021, 100.0), ("mean_price", 2024, 160.0)],
                             columns=["moment", "year", "value"])
    errors = moment_errors(_targets(), simulated)
    # price errors 0.1 and -0.2: family term (0.01 + 0.04) / 2 = 0.025; volume -0.5: 0.25
    weights = {"mean_price": 1.0, "volume": 0.5}
    assert objective(errors, weights, [2021, 2022]) == pytest.approx(
        (1.0 * 0.025 + 0.5 * 0.25) / 1.5)
    # a family counts by its weight, not by its number of years
    assert objective(errors, {"mean_price": 1.0}, [2021, 2022]) == pytest.approx(0.025)
    # out of sample: only 2024 counts (error +1.0)
    assert objective(errors, weights, [2024]) == pytest.approx(1.0)
    assert math.isnan(objective(errors, weights, [2030]))
    # a family of weight 0 does not count
    assert objective(errors, {"mean_price": 1.0, "volume": 0.0}, [2021]) == pytest.approx(0.01)


def test_objective_missing_moment_counts_as_full_error() -> None:
    simulated = pd.DataFrame([("mean_price", 2021, 50.0)], columns=["moment", "year", "value"])
    errors = moment_errors(_targets(), simulated)
    assert objective(errors, {"volume": 1.0}, [2021]) == MISSING_ERROR ** 2


def test_objective_lower_for_a_closer_candidate() -> None:
    near = pd.DataFrame([("mean_price", 2021, 52.0), ("volume", 2021, 190.0)],
                        columns=["moment", "year", "value"])
    far = near.assign(value=[70.0, 120.0])
    weights = {"mean_price": 1.0, "volume": 1.0}
    assert objective(moment_errors(_targets(), near), weights, [2021]) < objective(
        moment_errors(_targets(), far), weights, [2021])
