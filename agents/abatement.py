"""Abatement options of each firm, drawn from its sector's technology table.

Each firm gets every option of its sector's table with its own cost per tonne, drawn
from a triangular distribution over the documented ``cost_range`` with the table's
``cost_per_t`` as mode. Options are stored cheapest first, padded to the largest table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the model imports this module: no import back at run time
    from model.scenario import SectorConfig


@dataclass
class FirmOptions:
    """Abatement options of all firms: arrays of shape (firms, options)."""

    names: list[list[str]]
    reduction: np.ndarray
    cost: np.ndarray
    lead_time: np.ndarray
    adopted_year: np.ndarray
    valid: np.ndarray

    def effective(self, year: int) -> np.ndarray:
        """Mask of options in effect in ``year`` (adopted and past their lead time)."""
        return self.valid & (self.adopted_year >= 0) & (self.adopted_year + self.lead_time <= year)

    def intensity_factor_and_cost(self, year: int) -> tuple[np.ndarray, np.ndarray]:
        """Per firm: the intensity multiplier in ``year`` and the abatement cost per
        tonne of baseline intensity per unit output (CNY per tCO2 of baseline).

        Options act one after another, so option k abates r_k of what is left after the
        options before it: its tonnes are baseline x prod_{j<k}(1 - r_j) x r_k.
        """
        in_effect = self.effective(year)
        cuts = np.where(in_effect, self.reduction, 0.0)
        remaining_before = np.cumprod(
            np.concatenate([np.ones((len(cuts), 1)), 1.0 - cuts[:, :-1]], axis=1), axis=1
        )
        cost_share = (remaining_before * cuts * np.where(in_effect, self.cost, 0.0)).sum(axis=1)
        return np.prod(1.0 - cuts, axis=1), cost_share


def draw_options(
    sectors: list[SectorConfig], sector_of_firm: np.ndarray, rng: np.random.Generator
) -> FirmOptions:
    """Give each firm its sector's abatement options with a firm-specific cost.

    Args:
        sectors: Sector configurations, indexed like ``sector_of_firm``.
        sector_of_firm: Sector index of each firm.
        rng: The model's random generator.
    """
    n_firms = len(sector_of_firm)
    width = max([len(s.abatement) for s in sectors] + [1])
    reduction = np.zeros((n_firms, width))
    cost = np.full((n_firms, width), np.inf)
    lead_time = np.zeros((n_firms, width), dtype=np.int64)
    valid = np.zeros((n_firms, width), dtype=bool)
    names: list[list[str]] = [[] for _ in range(n_firms)]
    for index, sector in enumerate(sectors):
        rows = np.flatnonzero(sector_of_firm == index)
        if not len(rows) or not sector.abatement:
            continue
        table = sector.abatement
        low = np.array([o.cost_range[0] for o in table])
        mode = np.array([o.cost_per_t for o in table])
        high = np.array([o.cost_range[1] for o in table])
        draws = rng.triangular(
            low, mode, np.maximum(high, low + 1e-9), size=(len(rows), len(table))
        )
        order = np.argsort(draws, axis=1, kind="stable")  # cheapest first per firm
        for pos, row in enumerate(rows):
            picked = order[pos]
            names[row] = [table[k].name for k in picked]
            reduction[row, : len(table)] = [table[k].intensity_reduction for k in picked]
            lead_time[row, : len(table)] = [table[k].lead_time_years for k in picked]
            cost[row, : len(table)] = draws[pos, picked]
            valid[row, : len(table)] = True
    adopted = np.full((n_firms, width), -1, dtype=np.int64)
    return FirmOptions(names, reduction, cost, lead_time, adopted, valid)
