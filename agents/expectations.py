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

from etsim.model.plugins import lookup

if TYPE_CHECKING:  # annotations only
    from etsim.agents.population import FirmState
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


    return lookup(EXPECTATIONS, name, "expectation model")(config)


class PriceExpectations:
    """Each firm's expected price and expected price growth, kept by its expectation
    model, and the fundamental price path that anchors them.

    Args:
        names: The expectation models in use (``trading.expectations`` and the mix).
        firm_model: Per firm, the index of its model in ``names``.
        config: The scenario's ``[trading]`` section.
        initial_price: The fundamental price before the first computation (CNY/t).
    """

    def __init__(self, names: list[str], firm_model: np.ndarray, config: TradingConfig,
                 initial_price: float) -> None:
        self.names = names
        self.firm_model = firm_model
        self._rows: tuple[np.ndarray, list[np.ndarray]] | None = None
        self.models = [make_expectations(name, config) for name in names]
        self.timing = config.fundamental_timing
        self.fundamental_price = initial_price
        self.fundamental_growth = 0.0  # p_{t+1} / p_t - 1 on the fundamental path

    def set_fundamental_path(self, path: np.ndarray, month: int = 1) -> None:
        """The fundamental path from this year on (CNY/t), as known in ``month`` of its
        first year: the fundamental price, and the growth firms expect from this year
        to the next (Hotelling while banked).

        With ``trading.fundamental_timing = "january"`` the fundamental price is the
        path's first price all year. With ``"smooth"`` it moves through the year towards
        the next year's price, geometrically (linearly when either price is 0): in
        month m, p0 x (p1 / p0)^((m - 1) / 12). A change already known is then priced
        in month by month, and January brings a step only if the path itself changed.
        """
        first = float(path[0])
        after = float(path[1]) if len(path) > 1 else first
        self.fundamental_growth = after / first - 1 if len(path) > 1 and first > 0 else 0.0
        self.fundamental_price = first
        if self.timing == "smooth" and np.isfinite(first) and np.isfinite(after):
            elapsed = (month - 1) / 12
            if first > 0 and after > 0:
                self.fundamental_price = first * (after / first) ** elapsed
            else:
                self.fundamental_price = first + (after - first) * elapsed

    def update(self, firms: FirmState, close: float, month_ago: float) -> None:
        """After the close: each model updates its firms' expected prices and growth.

        Args:
            firms: The firms' state (``expected_price`` and ``expected_growth`` change).
            close: Today's close (CNY/t).
            month_ago: The close a month of trading days ago (CNY/t).
        """
        if len(self.models) == 1:
            model = self.models[0]
            firms.expected_price = model.update(
                firms.expected_price, close, month_ago, self.fundamental_price)
            firms.expected_growth[:] = model.growth(close, month_ago, self.fundamental_growth)
            return
        expected = firms.expected_price
        for model, rows in zip(self.models, self._model_rows(), strict=True):
            expected[rows] = model.update(expected[rows], close, month_ago,
                                          self.fundamental_price)
            firms.expected_growth[rows] = model.growth(close, month_ago,
                                                       self.fundamental_growth)

    def _model_rows(self) -> list[np.ndarray]:
        """Each model's firms (rows), found once: the mix is drawn when the model is
        built (found again if ``firm_model`` is replaced)."""
        if self._rows is None or self._rows[0] is not self.firm_model:
            self._rows = (self.firm_model, [np.flatnonzero(self.firm_model == index)
                                            for index in range(len(self.models))])
        return self._rows[1]
