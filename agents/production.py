"""Short-run output response: how the carbon cost of output moves production.

Each January every covered firm weighs the carbon cost of one more unit of output,
``expected price x (intensity - free quota that unit earns)``, against its operating
margin. The free quota per unit is where allocation rules differ: an intensity rule
gives the benchmark for each unit produced (an output subsidy), an absolute cap gives
nothing at the margin, and verified-emissions allocation gives the unit's own
emissions (no carbon cost at all). See ``AllocationPolicy.marginal_free_quota``.

Within a sector:

1. Pass-through: the product price rises by the output-weighted mean net carbon cost
   of the sector's firms (competitive firms pass on the average cost; a negative mean
   under a generous benchmark lowers the price).
2. Demand: the sector's demand is ``plan x (1 + rise / product_price) ^ -elasticity``.
3. Firms: a firm whose net carbon cost exceeds its margin plus the rise makes a loss
   on its marginal output and cuts it: its output factor is ``1 + profit / margin``
   per unit, between 0 and 1 (a firm losing its whole margin stops).
4. If demand fell by more than the firms cut, every firm scales down alike; if less,
   the profitable firms take over the rest in proportion to their plans, each at most
   ``1 + CAPACITY_HEADROOM`` times its plan (within-sector shifting to cleaner firms).
"""

from __future__ import annotations

import numpy as np

CAPACITY_HEADROOM = 0.15  # firms can run this share above plan (spare capacity)


def sector_output_response(
    planned_output: np.ndarray,
    net_carbon_cost: np.ndarray,
    margin: np.ndarray,
    product_price: float,
    demand_elasticity: float,
) -> tuple[np.ndarray, float]:
    """Output factors of one sector's firms for a year.

    Args:
        planned_output: Each firm's planned output (units), the weights of the mean.
        net_carbon_cost: Carbon cost of one more unit of output (CNY/unit); negative
            when the unit earns more free quota than it emits.
        margin: Each firm's operating margin before carbon costs (CNY/unit).
        product_price: The sector's product price before carbon costs (CNY/unit).
        demand_elasticity: Price elasticity of the sector's demand (positive).

    Returns:
        Each firm's output as a multiple of its plan, and the rise of the product
        price passed through to buyers (CNY/unit).
    """
    total = float(planned_output.sum())
    if total <= 0:
        return np.ones(len(planned_output)), 0.0
    rise = float((planned_output * net_carbon_cost).sum() / total)
    # a subsidy cannot push the price below a tenth of its level: keeps the power finite
    relative = max(1.0 + rise / product_price, 0.1)
    demand = total * relative ** -demand_elasticity
    profit = margin + rise - net_carbon_cost
    with np.errstate(divide="ignore", invalid="ignore"):
        cut = np.where(margin > 0, np.clip(1.0 + profit / margin, 0.0, 1.0), 0.0)
    factor = np.where(profit >= 0, 1.0, cut)
    produced = float((planned_output * factor).sum())
    if produced <= 0:
        return factor, rise
    if demand <= produced:  # demand fell more than the losses cut: all scale down
        return factor * (demand / produced), rise
    # profitable firms take over what loss-making ones gave up, up to their capacity
    profitable = profit >= 0
    spare = float(planned_output[profitable].sum())
    if spare > 0:
        factor[profitable] += min((demand - produced) / spare, CAPACITY_HEADROOM)
    return factor, rise
