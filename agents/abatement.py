"""Abatement options of each firm, drawn from its sector's technology table, and the
finance of an investment in one.

Each firm gets every option of its sector's table with its own intensity reduction,
capital cost and operating cost, each drawn from a triangular distribution over the
documented ``*_range`` with the table's value as mode. Its levelised cost per tonne
(``levelised_cost`` at the scenario's hurdle rate: the steady price at which the
option breaks even) orders the firm's options cheapest first: the firm's marginal
abatement cost curve. Options are padded to the largest table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the model imports this module: no import back at run time
    from etsim.model.scenario import SectorConfig


@dataclass
class FirmOptions:
    """Abatement options of all firms: arrays of shape (firms, options), cheapest first.

    ``cost`` is the levelised cost (CNY per tonne abated), ``capital_cost`` the
    investment per tonne of yearly capacity (CNY per t/yr), ``operating_cost`` CNY per
    tonne abated, ``lifetime`` and ``lead_time`` years. ``table_index`` is the option's
    row in its sector's table, so that the same technology can be found across the
    firms of a sector (their orders differ). ``appraisal`` caches the January
    appraisal of all firms: (year, day), the values, and which firms have an option
    worth adopting (see ``agents.firm.option_values``). ``curve`` caches what the
    monthly fundamental price reads of the options that does not change in a run
    (``model.equilibrium.horizon_path``), ``projection`` its last projection of the
    years ahead (kept while its inputs stay the same).
    """

    names: list[list[str]]
    reduction: np.ndarray
    cost: np.ndarray
    capital_cost: np.ndarray
    operating_cost: np.ndarray
    lifetime: np.ndarray
    lead_time: np.ndarray
    table_index: np.ndarray
    adopted_year: np.ndarray
    valid: np.ndarray
    appraisal: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None
    curve: Any = None
    projection: Any = None

    def effective(self, year: int) -> np.ndarray:
        """Mask of options in effect in ``year`` (adopted and past their lead time).

        An option stays in effect after its lifetime: the firm is taken to replace the
        plant like for like, whose capital the levelised cost charged each year pays.
        """
        return self.valid & (self.adopted_year >= 0) & (self.adopted_year + self.lead_time <= year)

    def adopted_before(self, year: int) -> np.ndarray:
        """Mask of options adopted in a year before ``year`` (in effect or not yet)."""
        return self.valid & (self.adopted_year >= 0) & (self.adopted_year < year)

    def in_table_order(self, mask: np.ndarray) -> np.ndarray:
        """A (firms, options) mask rearranged from each firm's order to its sector's
        table order, so that column j is the same technology for a sector's firms."""
        out = np.zeros_like(mask)
        np.put_along_axis(out, self.table_index, mask, axis=1)
        return out

    def intensity_factor_and_cost(self, year: int) -> tuple[np.ndarray, np.ndarray]:
        """Per firm: the intensity multiplier in ``year`` and the abatement cost per
        tonne of baseline intensity per unit output (CNY per tCO2 of baseline).

        Options act one after another, so option k abates r_k of what is left after the
        options before it: its tonnes are baseline x prod_{j<k}(1 - r_j) x r_k. The cost
        is the levelised cost of those tonnes.
        """
        in_effect = self.effective(year)
        share = option_tonnes(np.ones(len(in_effect)), self.reduction, in_effect)
        cost_share = (share * np.where(in_effect, self.cost, 0.0)).sum(axis=1)
        return np.prod(1.0 - np.where(in_effect, self.reduction, 0.0), axis=1), cost_share


def option_tonnes(emissions: np.ndarray, reduction: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Tonnes each option abates in a year: the emissions left by the firm's cheaper
    options (stored first) times the option's intensity reduction.

    Args:
        emissions: Unabated (baseline) emissions per firm (t).
        reduction: Intensity reduction of each option (firms x options), cheapest first.
        valid: Which entries are real options.

    Returns:
        Firms x options (t); 0 for padding.
    """
    cuts = np.where(valid, reduction, 0.0)
    left_before = np.cumprod(
        np.concatenate([np.ones((len(cuts), 1)), 1.0 - cuts[:, :-1]], axis=1), axis=1
    )
    return emissions[:, None] * left_before * cuts


def capital_recovery_factor(rate: float | np.ndarray, years: float | np.ndarray) -> np.ndarray:
    """The yearly payment over ``years`` that repays one CNY invested today at ``rate``:
    ``rate / (1 - (1 + rate)^-years)``, and ``1 / years`` at a rate of 0."""
    rate = np.asarray(rate, dtype=float)
    years = np.asarray(years, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = rate / (1.0 - (1.0 + rate) ** -years)
    return np.where(rate > 0, factor, 1.0 / years)


def levelised_cost(capital_cost: np.ndarray, operating_cost: np.ndarray,
                   lifetime: np.ndarray, lead_time: np.ndarray, rate: float) -> np.ndarray:
    """Levelised cost per tonne abated (CNY/t): the capital, with the return it forgoes
    while the option is built (``(1 + rate)^lead_time``), recovered over the lifetime at
    ``rate``, plus the operating cost::

        levelised = capital x (1 + rate)^lead x CRF(rate, lifetime) + operating

    It is the constant expected price at which ``npv_per_tonne`` at hurdle ``rate`` is
    0: an option is worth adopting at a steady price above it, so the marginal
    abatement cost curve built from it is the firms' own break-even curve.
    """
    return (capital_cost * (1.0 + rate) ** np.asarray(lead_time, dtype=float)
            * capital_recovery_factor(rate, lifetime) + operating_cost)


def npv_per_tonne(
    price: np.ndarray,
    growth: np.ndarray,
    hurdle: np.ndarray,
    foresight_years: int,
    capital_cost: np.ndarray,
    operating_cost: np.ndarray,
    lead_time: np.ndarray,
    lifetime: np.ndarray,
    earns: np.ndarray | None = None,
) -> np.ndarray:
    """Net present value of one tonne a year of abatement capacity (CNY per t/yr).

    Decided at the start of year 0, the capital is spent at once; the option abates
    from year ``lead_time`` for ``lifetime`` years, each year's margin of the expected
    price over the operating cost counted at the year's end::

        NPV = -capital + sum_{s = lead}^{lead + life - 1}
                         (earns_s x P_s - operating) / (1 + hurdle)^(s + 1)
        P_s = price x (1 + growth)^min(s, foresight_years - 1)

    The expected price grows over the years of foresight and stays level after them.

    Args:
        price: Expected price now, per firm (CNY/t), shape (firms,).
        growth: Expected yearly growth of the price, per firm.
        hurdle: Discount rate of the investment, per firm.
        foresight_years: Years over which the growth is extrapolated.
        capital_cost: Capital cost of each option, (firms, options) (CNY per t/yr).
        operating_cost: Operating cost of each option, (firms, options) (CNY/t).
        lead_time: Years before each option works, (firms, options).
        lifetime: Years each option works, (firms, options).
        earns: Whether a tonne abated in year s earns the price, (firms, years); None:
            every year. False where quota follows verified emissions.

    Returns:
        NPV per tonne of yearly capacity, (firms, options).
    """
    price = np.asarray(price, dtype=float)
    lead_time = np.asarray(lead_time, dtype=np.int64)
    stop = lead_time + np.asarray(lifetime, dtype=np.int64)
    years = int(stop.max()) if stop.size else 0
    s = np.arange(years)
    discount = (1.0 + np.asarray(hurdle, dtype=float))[:, None] ** -(s + 1.0)
    factor = np.maximum(1.0 + np.asarray(growth, dtype=float), 0.0)[:, None]
    path = price[:, None] * factor ** np.minimum(s, max(foresight_years - 1, 0))
    if earns is not None:
        path = path * earns[:, :years]
    zero = np.zeros((len(price), 1))
    # discounted sums from year 0 to each year: a window is a difference of two
    value = np.concatenate([zero, np.cumsum(path * discount, axis=1)], axis=1)
    unit = np.concatenate([zero, np.cumsum(discount, axis=1)], axis=1)

    def window(cumulative: np.ndarray) -> np.ndarray:
        return (np.take_along_axis(cumulative, stop, axis=1)
                - np.take_along_axis(cumulative, lead_time, axis=1))

    return window(value) - operating_cost * window(unit) - capital_cost


def _draw(rng: np.random.Generator, table: list, key: str, firms: int) -> np.ndarray:
    """Each firm's value of ``key`` for every option of a table, (firms, options):
    triangular over the option's ``key_range`` with its ``key`` as mode, or the value
    itself without a range (drawn all the same, so that adding a range to one option
    leaves the other draws alone)."""
    mode = np.array([getattr(option, key) for option in table], dtype=float)
    bands = [getattr(option, f"{key}_range") for option in table]
    low = np.array([b[0] if b else m for b, m in zip(bands, mode, strict=True)])
    high = np.array([b[1] if b else m for b, m in zip(bands, mode, strict=True)])
    draws = rng.triangular(low, mode, np.maximum(high, low + 1e-9), size=(firms, len(table)))
    return np.where(high > low, draws, mode)


def draw_options(
    sectors: list[SectorConfig], sector_of_firm: np.ndarray, rng: np.random.Generator,
    rate: float,
) -> FirmOptions:
    """Give each firm its sector's abatement options with firm-specific values.

    Args:
        sectors: Sector configurations, indexed like ``sector_of_firm``.
        sector_of_firm: Sector index of each firm.
        rng: The model's random generator.
        rate: Rate of the levelised cost: the scenario's ``investment.hurdle_rate``, so
            that the cost is the firms' break-even price.
    """
    n_firms = len(sector_of_firm)
    width = max([len(s.abatement) for s in sectors] + [1])
    reduction = np.zeros((n_firms, width))
    cost = np.full((n_firms, width), np.inf)
    capital = np.zeros((n_firms, width))
    operating = np.zeros((n_firms, width))
    lifetime = np.zeros((n_firms, width), dtype=np.int64)
    lead_time = np.zeros((n_firms, width), dtype=np.int64)
    table_index = np.tile(np.arange(width), (n_firms, 1))
    valid = np.zeros((n_firms, width), dtype=bool)
    names: list[list[str]] = [[] for _ in range(n_firms)]
    for index, sector in enumerate(sectors):
        rows = np.flatnonzero(sector_of_firm == index)
        if not len(rows) or not sector.abatement:
            continue
        table = sector.abatement
        k = len(table)
        drawn = {key: _draw(rng, table, key, len(rows))
                 for key in ("intensity_reduction", "capital_cost", "operating_cost")}
        life = np.array([o.lifetime_years for o in table])
        lead = np.array([o.lead_time_years for o in table])
        levelised = levelised_cost(drawn["capital_cost"], drawn["operating_cost"], life, lead,
                                   rate)
        order = np.argsort(levelised, axis=1, kind="stable")  # cheapest first per firm
        reduction[rows, :k] = np.take_along_axis(drawn["intensity_reduction"], order, axis=1)
        capital[rows, :k] = np.take_along_axis(drawn["capital_cost"], order, axis=1)
        operating[rows, :k] = np.take_along_axis(drawn["operating_cost"], order, axis=1)
        cost[rows, :k] = np.take_along_axis(levelised, order, axis=1)
        lifetime[rows, :k] = life[order]
        lead_time[rows, :k] = lead[order]
        table_index[rows, :k] = order
        valid[rows, :k] = True
        for pos, row in enumerate(rows.tolist()):
            names[row] = [table[j].name for j in order[pos].tolist()]
    adopted = np.full((n_firms, width), -1, dtype=np.int64)
    return FirmOptions(names, reduction, cost, capital, operating, lifetime, lead_time,
                       table_index, adopted, valid)


def own_marginal_cost(options: FirmOptions, base_emissions: np.ndarray,
                      shortage: np.ndarray) -> np.ndarray:
    """Each firm's own marginal abatement cost at a yearly shortage (CNY/t).

    Among the options a firm has not adopted yet (cheapest first: its own MAC curve),
    the levelised cost of the one whose cumulative yearly tonnes first reach
    ``shortage``; the cheapest one's cost when it is not short; inf when its options
    cannot close the gap. An option's tonnes are ``base_emissions x`` the share of the
    baseline it cuts after the options before it.

    Args:
        options: All firms' options.
        base_emissions: Each firm's yearly emissions before abatement (t).
        shortage: Each firm's expected shortage (t, 0 or less when not short).
    """
    open_options = options.valid & (options.adopted_year < 0)
    tonnes = np.where(open_options,
                      option_tonnes(base_emissions, options.reduction, options.valid), 0.0)
    reaches = open_options & (np.cumsum(tonnes, axis=1) >= np.maximum(shortage, 0.0)[:, None])
    first = np.argmax(reaches, axis=1)
    cost = np.take_along_axis(options.cost, first[:, None], axis=1)[:, 0]
    return np.where(reaches.any(axis=1), cost, np.inf)
