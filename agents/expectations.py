"""Price expectation models: how a firm forms the quota price it expects.

Models are a registry keyed by the names used in scenario files
(``trading.expectations`` and, per sector, ``trading.expectation_mix``), so firms may
differ. Each model updates the expected prices of its firms once a day, after the close,
from the day's close, the close a month earlier and the fundamental price (the banking
equilibrium of ``model.equilibrium.horizon_price``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the model imports this module: no import back at run time
    from etsim.model.scenario import TradingConfig


class AdaptiveExpectations:
    """Exponential smoothing towards a blend of the close and the fundamental price:
    ``e <- (1 - a) e + a ((1 - w) close + w fundamental)``, a = expectation_smoothing,
    w = fundamental_weight."""

    name = "adaptive"

    def __init__(self, config: TradingConfig) -> None:
        self.config = config

    def target(self, close: float, month_ago: float, fundamental: float) -> float:
        """The price the expectations move towards today (CNY/t)."""
        weight = self.config.fundamental_weight
        return (1 - weight) * close + weight * fundamental

    def update(self, expected: np.ndarray, close: float, month_ago: float,
               fundamental: float) -> np.ndarray:
        """Tomorrow's expected prices of this model's firms."""
        alpha = self.config.expectation_smoothing
        return (1 - alpha) * expected + alpha * self.target(close, month_ago, fundamental)

    def growth(self, close: float, month_ago: float, fundamental_growth: float) -> float:
        """Expected yearly rate of change of the price (share per year): the level is
        expected to stay, except for the part anchored on the fundamental path."""
        return self.config.fundamental_weight * fundamental_growth


class TrendFollowingExpectations(AdaptiveExpectations):
    """Adaptive, but the close part is extrapolated: ``close + trend_weight x (close -
    close a month ago)``, so a rising price is expected to go on rising."""

    name = "trend_following"

    def target(self, close: float, month_ago: float, fundamental: float) -> float:
        """The blend with the trend-extrapolated close (never below zero)."""
        trend = max(close + self.config.trend_weight * (close - month_ago), 0.0)
        return super().target(trend, month_ago, fundamental)

    def growth(self, close: float, month_ago: float, fundamental_growth: float) -> float:
        """The last month's change of the close, made yearly (between -50% and +100%),
        blended with the fundamental path's growth."""
        weight = self.config.fundamental_weight
        monthly = close / month_ago - 1.0 if month_ago > 0 else 0.0
        trend = float(np.clip((1.0 + self.config.trend_weight * monthly) ** 12 - 1.0, -0.5, 1.0))
        return (1 - weight) * trend + weight * fundamental_growth


class FundamentalExpectations(AdaptiveExpectations):
    """The benchmark of full information: firms expect the fundamental price itself,
    the banking equilibrium of the market's abatement costs and quota (not a true
    perfect foresight of the simulated path)."""

    name = "fundamental"

    def update(self, expected: np.ndarray, close: float, month_ago: float,
               fundamental: float) -> np.ndarray:
        """The fundamental price, whatever the market did."""
        return np.full_like(expected, fundamental)

    def growth(self, close: float, month_ago: float, fundamental_growth: float) -> float:
        """The growth of the fundamental path."""
        return fundamental_growth


EXPECTATIONS: dict[str, type] = {
    model.name: model
    for model in (AdaptiveExpectations, TrendFollowingExpectations, FundamentalExpectations)
}


def make_expectations(name: str, config: TradingConfig):
    """The expectation model registered under ``name``."""
    from etsim.model.plugins import lookup  # here: the model package imports this module

    return lookup(EXPECTATIONS, name, "expectation model")(config)
