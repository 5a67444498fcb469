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

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only
    from etsim.agents.population import FirmState
    from etsim.model.allocation import AllocationPolicy
    from etsim.model.records import FirmYears
    from etsim.model.scenario import SectorConfig

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


class Production:
    """Each covered firm's output and emissions: its plan (the sector's trend growth),
    January's response to the carbon cost, and monthly output with sector and firm
    shocks.

    Args:
        configs: The simulated sectors' configurations, in sector order.
        firms: The firms' state (``output_factor`` changes each January).
        records: The firm-year records (output, emissions, abatement are written).
        rng: The model's random generator.
        include_indirect: Whether obligations cover indirect emissions (``scope``).
    """

    def __init__(self, configs: list[SectorConfig], firms: FirmState, records: FirmYears,
                 rng: np.random.Generator, include_indirect: bool) -> None:
        self.configs = configs
        self.firms = firms
        self.records = records
        self.rng = rng
        self.include_indirect = include_indirect

    def demand_growth_factor(self, year: int) -> np.ndarray:
        """Each sector's output plan in ``year`` relative to start_year (trend growth)."""
        return np.array([(1 + c.demand_growth) ** (year - self.records.start_year)
                         for c in self.configs])

    def planned_output(self, year: int) -> np.ndarray:
        """Each firm's output plan for ``year`` before carbon costs (trend growth)."""
        return self.firms.base_output * self.demand_growth_factor(year)[self.firms.sector]

    def projected_output(self, year: int, months_done: int) -> np.ndarray:
        """Expected annual output in ``year``: the year so far scaled up, or the plan
        times this year's output response before any month is done."""
        if months_done == 0:
            return self.planned_output(year) * self.firms.output_factor
        return self.records["output"][:, self.records.col(year)] * 12 / months_done

    def decide_output(self, year: int, allocation: AllocationPolicy) -> None:
        """January: each sector's output response to the carbon cost of output at the
        firms' expected prices (``sector_output_response``)."""
        firms = self.firms
        plan = self.planned_output(year)
        for sector, config in enumerate(self.configs):
            rows = firms.sector_rows(sector, year)
            if not len(rows):
                continue
            free = allocation.marginal_free_quota(sector, year, firms.intensity[rows])
            net_cost = firms.expected_price[rows] * (firms.intensity[rows] - free)
            factor, _ = sector_output_response(
                plan[rows], net_cost, firms.margin[rows], config.product_price,
                config.demand_elasticity)
            firms.output_factor[rows] = factor

    def produce_month(self, year: int) -> np.ndarray:
        """A month's output and emissions of each covered firm, added to the year's
        records; returns the month's emissions under the scope (t), for MRV."""
        firms = self.firms
        rng = self.rng
        sector_shock = np.array([rng.normal(0, c.sector_shock_sd) for c in self.configs])
        idio_sd = np.array([c.output_shock_sd for c in self.configs])[firms.sector]
        idio = rng.normal(0.0, 1.0, firms.n) * idio_sd
        factor = np.clip((1 + sector_shock[firms.sector]) * (1 + idio), 0.1, 3.0)
        output = np.where(firms.covered(year),
                          self.planned_output(year) / 12 * firms.output_factor * factor, 0.0)
        direct = output * firms.intensity
        indirect = output * firms.indirect_intensity
        emissions = direct + indirect if self.include_indirect else direct
        records = self.records
        col = records.col(year)
        records["output"][:, col] += output
        records["direct_emissions"][:, col] += direct
        records["indirect_emissions"][:, col] += indirect
        records["emissions"][:, col] += emissions
        records["abatement"][:, col] += output * (firms.baseline_intensity - firms.intensity)
        records["abatement_cost"][:, col] += output * firms.abatement_cost_rate
        return emissions
