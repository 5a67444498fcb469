"""A day without listed trades has no close of its own (model/session.py,
model/results.py): ``market_daily.close`` is null on such a day, its
``reference_price`` (the base of the next day's bands) is the last close, and
``market_years.mean_price`` is the mean close over the days with listed trades only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etsim import CarbonMarketModel


@pytest.fixture(scope="module")
def classroom() -> dict[str, pd.DataFrame]:
    """The classroom market (few firms: many days without a listed trade)."""
    return CarbonMarketModel("classroom", seed=1).run().results()


def test_a_day_without_listed_trades_has_a_null_close(classroom) -> None:
    """Null close, open, high and low exactly on the days without listed trades."""
    daily = classroom["market_daily"]
    listed = daily["volume"] - daily["block_volume"]
    quiet = listed == 0
    assert quiet.any() and (~quiet).any()  # the run has both kinds of day
    for column in ("close", "open", "high", "low"):
        assert daily.loc[quiet, column].isna().all()
        assert daily.loc[~quiet, column].notna().all()
    # the reference price is the close where there is one, else the last close before
    initial = CarbonMarketModel("classroom", seed=1).scenario.market.initial_price
    expected = daily["close"].ffill().fillna(initial)
    np.testing.assert_array_equal(daily["reference_price"], expected)


def test_the_mean_price_leaves_out_days_without_a_close(classroom) -> None:
    """market_years.mean_price is the mean over days with a close, not over carried
    closes; a year without any listed trade has no mean price."""
    daily, years = classroom["market_daily"], classroom["market_years"]
    for year, in_year in daily.groupby("year"):
        mean_price = float(years.loc[years["year"] == year, "mean_price"].iloc[0])
        closes = in_year["close"].dropna()
        if len(closes):
            assert mean_price == pytest.approx(closes.mean())
        else:
            assert np.isnan(mean_price)
    # the carried reference prices would give another mean: the choice matters here
    carried = daily.groupby("year")["reference_price"].mean()
    with_close = years.set_index("year")["mean_price"].dropna()
    assert not np.allclose(carried.loc[with_close.index], with_close)
