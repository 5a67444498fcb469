"""The competitive equilibrium beside the market: the price that explains it.

``static_equilibrium`` solves one compliance year without banking: the price p* at
which the abatement firms would undertake at marginal cost below p* closes the gap
between unabated emissions and the quota available for the year (free, auctioned,
released from the reserve, plus offsets used). Firms under the ``verified_emissions``
rule are left out: their quota equals their emissions whatever they do. All options
count, whatever their lead time, so this is the long-run price of the year's target.
The least-cost abatement cost is the area under the marginal abatement cost curve up
to the target. The intertemporal version with banking comes with the price-discovery
work (issue 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from model.market import CarbonMarketModel


def marginal_abatement_curve(
    output: np.ndarray, baseline: np.ndarray, reduction: np.ndarray, cost: np.ndarray,
    valid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The market's marginal abatement cost curve.

    Args:
        output: Annual output per firm.
        baseline: Baseline direct intensity per firm (tCO2/unit).
        reduction: Intensity reduction of each option (firms x options), cheapest first.
        cost: Cost per tonne of each option (CNY/t).
        valid: Which entries are real options.

    Returns:
        Option costs sorted ascending, and the tonnes each abates (same order).
    """
    cuts = np.where(valid, reduction, 0.0)
    left_before = np.cumprod(
        np.concatenate([np.ones((len(cuts), 1)), 1.0 - cuts[:, :-1]], axis=1), axis=1
    )
    tonnes = (output * baseline)[:, None] * left_before * cuts
    costs, amounts = cost[valid], tonnes[valid]
    order = np.argsort(costs, kind="stable")
    return costs[order], amounts[order]


def clearing_price(costs: np.ndarray, tonnes: np.ndarray, shortage: float) -> tuple[float, float]:
    """Price and least cost of abating ``shortage`` tonnes along a MAC curve.

    Returns:
        (price, cost): 0 and 0 when nothing needs abating; NaN price (and the cost of
        all options) when the curve cannot close the gap.
    """
    if shortage <= 0:
        return 0.0, 0.0
    cumulative = np.cumsum(tonnes)
    if not len(cumulative) or cumulative[-1] < shortage:
        return float("nan"), float((costs * tonnes).sum())
    marginal = int(np.searchsorted(cumulative, shortage))
    before = cumulative[marginal - 1] if marginal else 0.0
    least_cost = float((costs[:marginal] * tonnes[:marginal]).sum()
                       + costs[marginal] * (shortage - before))
    return float(costs[marginal]), least_cost


def static_equilibrium(model: CarbonMarketModel, year: int) -> tuple[float, float]:
    """Equilibrium price (CNY/t) and least-cost abatement cost (CNY) of a compliance year."""
    col = model.year_index(year)
    firms = model.firms
    fy = model.fy
    in_scope = model.covered(year).copy()
    for sector in range(len(model.sector_names)):
        if model.allocation.rule(sector, year).name == "verified_emissions":
            in_scope &= firms.sector != sector
    if not in_scope.any():
        return float("nan"), float("nan")
    output = fy["output"][in_scope, col]
    unabated = output * firms.baseline_intensity[in_scope]
    if model.scenario.scope.include_indirect:
        unabated = unabated + fy["indirect_emissions"][in_scope, col]
    available = (
        fy["free_allocation"][in_scope, col].sum() + fy["auction_purchased"][:, col].sum()
        + model.registry.flows["reserve_out"][model.registry.column(year)]
        + fy["offsets_used"][in_scope, col].sum()
    )
    options = firms.options
    costs, tonnes = marginal_abatement_curve(
        output, firms.baseline_intensity[in_scope], options.reduction[in_scope],
        options.cost[in_scope], options.valid[in_scope],
    )
    return clearing_price(costs, tonnes, float(unabated.sum() - available))
