"""Firms: one Mesa agent per covered installation.

The hot numeric state (output, emissions, holdings, positions, expectations) lives in
numpy arrays owned by the model (see DESIGN.md, performance architecture); a Firm
reads and writes its own row. Decisions taken rarely (abatement once a year) are
agent methods called through the model's AgentSet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

if TYPE_CHECKING:
    from model.market import CarbonMarketModel


class Firm(mesa.Agent):
    """A covered installation: a compliance account that produces, emits, abates and trades.

    Args:
        model: The market model that owns the state arrays.
        row: This firm's row in the model's arrays.
        sector: Name of the firm's sector.
    """

    def __init__(self, model: CarbonMarketModel, row: int, sector: str) -> None:
        super().__init__(model)
        self.row = row
        self.sector = sector

    @property
    def holdings(self) -> int:
        """Quota held, all vintages (t)."""
        return int(self.model.registry.holdings[self.row].sum())

    @property
    def intensity(self) -> float:
        """Current direct emission intensity (tCO2 per unit of output)."""
        return float(self.model.firms.intensity[self.row])

    @property
    def expected_price(self) -> float:
        """The firm's expected quota price (CNY/t)."""
        return float(self.model.firms.expected_price[self.row])

    def review_abatement(self, year: int) -> None:
        """Adopt every abatement option that costs less than the expected price.

        Options are reviewed cheapest first; an adopted option takes effect after its
        lead time. (The full net-present-value decision comes with the firm-behaviour
        work; this is the minimal rule.)
        """
        options = self.model.firms.options
        row = self.row
        price = self.expected_price
        for k in np.flatnonzero(options.valid[row]):
            if options.adopted_year[row, k] < 0 and options.cost[row, k] < price:
                options.adopted_year[row, k] = year
