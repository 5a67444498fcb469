"""Price expectation models: hand-computed updates, the registry and the sector mix."""

from __future__ import annotations

import numpy as np
import pytest

from etsim import CarbonMarketModel
from etsim.agents.expectations import (
    EXPECTATIONS,
    AdaptiveExpectations,
    FundamentalExpectations,
    TrendFollowingExpectations,
    make_expectations,
)
from etsim.model.scenario import EXPECTATION_NAMES, TradingConfig

CONFIG = TradingConfig(expectation_smoothing=0.1, fundamental_weight=0.7, trend_weight=0.5)


def test_registry_matches_the_schema() -> None:
    assert tuple(EXPECTATIONS) == EXPECTATION_NAMES
    with pytest.raises(KeyError, match="adaptive, fundamental, trend_following"):
        make_expectations("astrology", CONFIG)


def test_adaptive_update_by_hand() -> None:
    # target = 0.3 x 100 + 0.7 x 80 = 86; e = 0.9 x 90 + 0.1 x 86 = 89.6
    updated = AdaptiveExpectations(CONFIG).update(np.array([90.0]), 100.0, 95.0, 80.0)
    assert updated[0] == pytest.approx(89.6)


def test_trend_following_extrapolates_last_months_change() -> None:
    # close 100, a month ago 90: trend close = 100 + 0.5 x 10 = 105
    # target = 0.3 x 105 + 0.7 x 80 = 87.5; e = 0.9 x 90 + 0.1 x 87.5 = 89.75
    updated = TrendFollowingExpectations(CONFIG).update(np.array([90.0]), 100.0, 90.0, 80.0)
    assert updated[0] == pytest.approx(89.75)
    falling = TrendFollowingExpectations(CONFIG).update(np.array([90.0]), 90.0, 100.0, 80.0)
    rising = TrendFollowingExpectations(CONFIG).update(np.array([90.0]), 100.0, 90.0, 80.0)
    assert falling[0] < rising[0]


def test_fundamental_expectations_are_the_fundamental_price() -> None:
    updated = FundamentalExpectations(CONFIG).update(np.array([90.0, 50.0]), 100.0, 90.0, 77.0)
    assert updated.tolist() == [77.0, 77.0]


def test_sector_mix_gives_firms_different_expectations() -> None:
    mix = {"steel": {"adaptive": 0.5, "fundamental": 0.5}}
    model = CarbonMarketModel("classroom", seed=3, overrides={"trading.expectation_mix": mix})
    for _ in range(model.calendar.first_day(2026, 6)):
        model.step()
    steel = model.firms.sector == model.sector_names.index("steel")
    fundamental = model.expectations.firm_model == model.expectations.names.index("fundamental")
    assert (steel & fundamental).any() and (steel & ~fundamental).any()
    assert not (~steel & fundamental).any()
    expected = model.firms.expected_price
    assert np.allclose(expected[fundamental], model.fundamental_price)
    assert not np.allclose(expected[steel & ~fundamental], model.fundamental_price)
