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


def horizon_price(model: CarbonMarketModel, year: int, bank: float) -> float:
    """The fundamental price over the years of foresight from ``year``.

    With banking and no discounting, one price rules the whole horizon: the marginal
    abatement cost at which abatement over the horizon (each option counting from the
    year it can take effect) plus offsets closes the cumulative shortage of quota
    (projected unabated emissions minus projected quota minus the bank). The horizon
    runs to the scenario's end_year, and at least ``trading.foresight_years`` ahead:
    firms expect the last year's rules to go on after it. Firms use this price as the
    anchor of their price expectations.

    Args:
        model: The running model.
        year: First compliance year still to be produced.
        bank: Quota already held or due for earlier years, net of their obligations (t).

    Returns:
        CNY/t; 0 when the horizon has no shortage; the dearest option's cost when
        abatement cannot close the gap.
    """
    sc = model.scenario
    firms = model.firms
    options = firms.options
    first = max(year, sc.start_year)
    last = max(sc.end_year, first + sc.trading.foresight_years - 1)
    horizon = list(range(first, last + 1))
    n_sectors = len(model.sector_names)
    growth = np.array([[(1 + config.demand_growth) ** (y - sc.start_year) for y in horizon]
                       for config in model.sector_configs])
    shortage = -bank
    weight = np.zeros((model.n_firms, len(horizon)))
    for sector in range(n_sectors):
        members = np.flatnonzero(firms.sector == sector)
        for j, y in enumerate(horizon):
            if model.allocation.rule(sector, y).name == "verified_emissions":
                continue  # quota follows emissions: no shortage, no reason to abate
            rows = members[firms.entry_year[members] <= y]
            if not len(rows):
                continue
            output = firms.base_output[rows] * growth[sector, j]
            unabated = output * firms.baseline_intensity[rows]
            quota = _projected_quota(model, sector, y, rows, output, unabated)
            if y == year:  # what is already issued for this year is in the bank
                col = model.year_index(y)
                quota -= float(model.fy["free_entitled"][rows, col].sum()
                               + model.fy["auction_purchased"][rows, col].sum())
            shortage += float(unabated.sum() - quota)
            weight[rows, j] = growth[sector, j]
    if shortage <= 0:
        return 0.0
    effective = np.where(options.adopted_year >= 0, options.adopted_year, year) + options.lead_time
    years = np.array(horizon)
    multiplier = np.zeros(options.reduction.shape)
    for j, y in enumerate(years):
        multiplier += weight[:, j][:, None] * (effective <= y)
    # the market's MAC curve, with each option's tonnes over the years it can work
    cuts = np.where(options.valid, options.reduction, 0.0)
    left_before = np.cumprod(
        np.concatenate([np.ones((len(cuts), 1)), 1.0 - cuts[:, :-1]], axis=1), axis=1
    )
    per_year = (firms.base_output * firms.baseline_intensity)[:, None] * left_before * cuts
    over_horizon = (per_year * multiplier)[options.valid]
    option_costs = options.cost[options.valid]
    c = sc.compliance
    offsets = min(c.offset_share, c.offset_supply_share) * float(
        (firms.base_output * firms.baseline_intensity * weight.sum(axis=1)).sum()
    )
    option_costs = np.append(option_costs, c.offset_price)
    over_horizon = np.append(over_horizon, offsets)
    order = np.argsort(option_costs, kind="stable")
    price, _ = clearing_price(option_costs[order], over_horizon[order], shortage)
    if np.isnan(price):  # abatement cannot close the gap: the dearest option sets it
        return float(option_costs.max())
    return price


def _projected_quota(model: CarbonMarketModel, sector: int, year: int, rows: np.ndarray,
                     output: np.ndarray, emissions: np.ndarray) -> float:
    """Quota (free and auctioned) a sector's firms are expected to get in a future year."""
    allocation = model.allocation
    set_aside = model.scenario.reserve_pool.set_aside_share
    if allocation.rule(sector, year).name == "absolute_cap":
        if allocation.has_cap_basis(sector):
            cap, _ = allocation.sector_cap(sector, year)
        else:
            first = year
            while allocation.rule(sector, first - 1).name == "absolute_cap" and (
                first - 1 >= model.scenario.start_year
            ):
                first -= 1
            decline = allocation.config(sector).allocation.cap_decline
            current = model.firms.base_output[rows] * model.firms.intensity[rows]
            cap = float(current.sum()) * (1 - decline) ** (year - first)
        return cap * (1 - set_aside)
    quota = allocation.rule_quota(sector, year, output, emissions)
    return float(quota.sum()) * (1 - set_aside)
