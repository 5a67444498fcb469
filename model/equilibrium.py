"""The competitive equilibrium beside the market: the prices that explain it.

``banking_equilibrium`` is the solver: the competitive price path of a horizon of
compliance years with banking, no borrowing and discounting (Hotelling: while firms
hold a bank the price rises at the discount rate; the bank is never negative and is
used up at the end of the horizon unless prices are 0). It works on plain arrays.

Three views of the model use it, so each rule lives in one place:

- ``market_equilibrium`` (ex post, ``market_years.equilibrium_price``): the run's
  realised output, quota and offsets over the compliance years, then projected years
  after end_year (the market goes on), from the initial bank;
- ``horizon_path`` / ``horizon_price`` (in the run, each month): the projected years of
  foresight from the current bank, the anchor of firms' price expectations;
- ``static_equilibrium`` (``market_years.static_equilibrium_price``): one year alone,
  without banking.

In ``market_equilibrium`` and ``static_equilibrium`` firms under the
``verified_emissions`` rule are left out (their quota equals their emissions whatever
they do), and all options count whatever their lead time: the long-run price of the
targets. ``allocative_efficiency`` measures how much of the possible saving from trade
a run realised.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from etsim.agents.abatement import option_tonnes
from etsim.model._blas import single_threaded
from etsim.model.matching import engine, kernels
from etsim.model.mrv import accounting_factor

if TYPE_CHECKING:  # annotations only
    from etsim.model.allocation import AllocationPolicy
    from etsim.model.records import MarketState


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
    tonnes = option_tonnes(output * baseline, reduction, valid)
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


class PricePath(NamedTuple):
    """A competitive path over a horizon of compliance years, one entry per year."""

    price: np.ndarray
    """Equilibrium price (CNY/t)."""
    abatement: np.ndarray
    """Tonnes abated in the year (t)."""
    abatement_cost: np.ndarray
    """Least cost of that abatement: the area under the year's MAC curve up to it (CNY)."""
    bank: np.ndarray
    """Quota held at the end of the year, after its obligation (t)."""


@single_threaded()
def banking_equilibrium(
    unabated: np.ndarray, available: np.ndarray, costs: np.ndarray, tonnes: np.ndarray,
    bank: float = 0.0, rate: float = 0.0, banking: bool = True,
) -> PricePath:
    """Competitive price path with banking, no borrowing and discounting.

    Firms meet each year's gap (unabated emissions minus quota available) by abating
    along the year's MAC curve or by drawing on the bank. Hotelling: while a bank is
    held the price rises at ``rate`` (p_t = p_s (1 + r)^(t - s)); the bank is never
    negative; at the end of the horizon it is used up unless the price is 0. The
    standard algorithm: from the first year s of a phase (bank B), for each candidate
    end year k, p_s(k) is the first-year price whose rising path makes abatement over
    s..k close the cumulative gap over s..k minus B (0 if that gap is not positive). The
    phase ends at the k with the highest p_s(k), the year where the no-borrowing
    constraint binds (the earliest such k on a tie); prices of s..k are fixed, and the
    next phase starts at k + 1 with the bank left (0 after a phase with a positive
    price). On the curve, a step's price is its cost, as in ``clearing_price``; abatement
    that ties in present value is taken in the earlier year.

    If abatement cannot close a phase's gap, its first-year price is the backstop, the
    cost of its dearest option in present value (with one curve for all years and
    r >= 0: the dearest option's cost), every option of the phase is used, and the gap
    left is unmet (in the model it would be penalised): the bank is floored at 0. With
    no option at all the price is NaN.

    Args:
        unabated: Unabated emissions of each year (t).
        available: Quota available in each year: free, auctioned, released from a
            reserve, offsets (t).
        costs: Cost of each step of the MAC curve (CNY/t), one curve for all years
            (steps,) or one per year (years x steps).
        tonnes: Tonnes each step abates in a year, (steps,) or (years x steps).
        bank: Quota held before the first year (t); a negative bank is quota owed
            for earlier years, due with the first year's.
        rate: Discount rate (share per year).
        banking: False: each year clears alone and nothing is carried out of it (the
            static problem; ``bank`` counts towards the first year only).

    Returns:
        The path: price, abatement, least abatement cost and end-of-year bank per year.
    """
    gap = np.asarray(unabated, dtype=float) - np.asarray(available, dtype=float)
    n_years = len(gap)
    tonnes = np.asarray(tonnes, dtype=float)
    if tonnes.ndim == 1:
        tonnes = np.broadcast_to(tonnes, (n_years, len(tonnes)))
    costs = np.asarray(costs, dtype=float)
    if costs.ndim == 1:  # one order for all years
        if (np.diff(costs) < 0).any():
            order = np.argsort(costs, kind="stable")
            costs, tonnes = costs[order], tonnes[:, order]
        costs = np.broadcast_to(costs, tonnes.shape)
    else:
        order = np.argsort(costs, axis=1, kind="stable")
        costs = np.take_along_axis(costs, order, axis=1)
        tonnes = np.take_along_axis(tonnes, order, axis=1)
    if not np.isfinite(costs).all():
        tonnes = np.where(np.isfinite(costs), tonnes, 0.0)  # padding, not options
    growth = (1.0 + rate) ** np.arange(n_years)
    # a tonne abated in year t, in money of the first year: each row ascending
    value = costs / growth[:, None]
    # the backstop: the dearest option of each year, in present value
    finite = np.where(np.isfinite(costs), costs, -np.inf)
    dearest = (finite.max(axis=1) if costs.shape[1] else np.full(n_years, -np.inf)) / growth
    # supply[t, n]: tonnes of year t's n cheapest steps
    supply = np.zeros((n_years, value.shape[1] + 1))
    np.cumsum(tonnes, axis=1, out=supply[:, 1:])

    price, abated, spent, banked = (np.zeros(n_years) for _ in range(4))
    start, held = 0, float(bank)
    while start < n_years:
        last = n_years if banking else start + 1
        need = np.cumsum(gap[start:last]) - held  # to close over start..end, per end
        present = _phase_values(value, supply, start, need)
        backstop = np.maximum.accumulate(dearest[start:last])
        first = np.where(need <= 0, 0.0, np.where(np.isnan(present), backstop, present))
        first = np.where(np.isfinite(first), first * growth[start], np.nan)
        # the bank constraint binds where the first-year price is highest
        end = start + int(np.argmax(np.where(np.isnan(first), np.inf, first)))
        phase = slice(start, end + 1)
        gap_left = need[end - start]
        price[phase] = first[end - start] * growth[phase] / growth[start]
        if gap_left <= 0:
            pass  # nothing to abate
        elif np.isnan(present[end - start]):  # every option, and a gap left unmet
            _allocate(value, supply, tonnes, costs, phase, np.inf, np.inf, abated, spent)
        else:
            _allocate(value, supply, tonnes, costs, phase, present[end - start], gap_left,
                      abated, spent)
        # floored: a gap no option closes is left unmet
        banked[phase] = np.maximum(held + np.cumsum(abated[phase] - gap[phase]), 0.0)
        if gap_left > 0 and not np.isnan(present[end - start]):
            banked[end] = 0.0  # the bank is used up where the price path ends (no rounding)
        held = float(banked[end])
        if not banking:
            banked[phase], held = 0.0, 0.0  # what is left is cancelled at the deadline
        start = end + 1
    return PricePath(price, abated, spent, banked)


def _supply_at(value: np.ndarray, supply: np.ndarray, start: int, ends: np.ndarray,
               at: np.ndarray) -> np.ndarray:
    """Tonnes of all steps of years start..end with present value <= ``at``, per entry."""
    total = np.zeros(at.shape)
    for year in range(start, int(ends.max()) + 1):
        tonnes = supply[year, np.searchsorted(value[year], at, side="right")]
        total += np.where(ends >= year, tonnes, 0.0)
    return total


def _phase_values(value: np.ndarray, supply: np.ndarray, start: int,
                  need: np.ndarray) -> np.ndarray:
    """Per end year, the least present value at which the steps of start..end close
    ``need`` (NaN when they cannot).

    The answer is one of the steps' values: for every (end, year) pair a binary search
    finds the cheapest step of that year that closes the gap, and the least of those
    over the years is the answer (exact, with the floats of ``value`` compared as they
    are).
    """
    n_ends, n_steps = len(need), value.shape[1]
    ends = start + np.repeat(np.arange(n_ends), n_ends)  # pairs (end, year of the step)
    rows = start + np.tile(np.arange(n_ends), n_ends)
    target = np.repeat(need, n_ends)
    low, high = np.zeros(len(ends), dtype=np.int64), np.full(len(ends), n_steps)
    while (low < high).any():
        mid = (low + high) // 2
        at = value[rows, np.minimum(mid, n_steps - 1)]
        enough = _supply_at(value, supply, start, ends, at) >= target
        searching = low < high
        high = np.where(searching & enough, mid, high)
        low = np.where(searching & ~enough, mid + 1, low)
    found = np.where(low < n_steps, value[rows, np.minimum(low, n_steps - 1)], np.inf) \
        if n_steps else np.full(len(ends), np.inf)
    best = found.reshape(n_ends, n_ends).min(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


def _allocate(value: np.ndarray, supply: np.ndarray, tonnes: np.ndarray, costs: np.ndarray,
              phase: slice, at: float, need: float, abated: np.ndarray,
              spent: np.ndarray) -> None:
    """Abatement and its cost per year of a phase whose steps up to present value ``at``
    close ``need``: every cheaper step, then the steps at ``at``, earlier years first
    (``at`` infinite: every step)."""
    rest = need
    below = {}
    for year in range(phase.start, phase.stop):
        below[year] = n = int(np.searchsorted(value[year], at, side="left"))
        abated[year] = supply[year, n]
        spent[year] = float(tonnes[year, :n] @ costs[year, :n]) if n else 0.0
        rest -= abated[year]
    for year in range(phase.start, phase.stop):
        tied = int(np.searchsorted(value[year], at, side="right"))
        take = min(max(rest, 0.0), supply[year, tied] - supply[year, below[year]])
        if take > 0:
            abated[year] += take
            spent[year] += take * costs[year, below[year]]
            rest -= take


class YearMarket(NamedTuple):
    """A compliance year's market as the equilibrium sees it, from the run's records."""

    in_scope: np.ndarray
    """Firms whose abatement lowers their need for quota (not under verified_emissions)."""
    unabated: np.ndarray
    """Unabated emissions per firm: output x baseline intensity (+ indirect if in scope);
    0 outside the scope (t)."""
    available: float
    """Quota available to the firms in scope: their free allocation, all auctioned quota
    of the year, reserve releases of its vintage, their offsets used (t)."""
    tonnes: np.ndarray
    """Tonnes each option abates in the year (firms x options), every option whatever
    its lead time or adoption; 0 outside the scope and for padding (t)."""


def year_market(model: MarketState, year: int) -> YearMarket | None:
    """The realised market of a compliance year, or None when no firm is in scope."""
    col = model.year_index(year)
    firms = model.firms
    fy = model.fy
    in_scope = model.covered(year).copy()
    for sector in range(len(model.sector_names)):
        if model.allocation.rule(sector, year).name == "verified_emissions":
            in_scope &= firms.sector != sector
    if not in_scope.any():
        return None
    direct = np.where(in_scope, fy["output"][:, col] * firms.baseline_intensity, 0.0)
    unabated = direct
    if model.scenario.scope.include_indirect:
        unabated = unabated + np.where(in_scope, fy["indirect_emissions"][:, col], 0.0)
    available = float(
        fy["free_allocation"][in_scope, col].sum() + fy["auction_purchased"][:, col].sum()
        + model.registry.flows["reserve_out"][model.registry.column(year)]
        + fy["offsets_used"][in_scope, col].sum()
    )
    options = firms.options
    return YearMarket(in_scope, unabated, available,
                      option_tonnes(direct, options.reduction, options.valid))


def year_markets(model: MarketState, years: Iterable[int]) -> dict[int, YearMarket | None]:
    """``year_market`` of each of ``years``, for the views of a finished run that read
    the same years (``market_equilibrium``, ``static_equilibrium``, ``year_efficiency``)."""
    return {int(year): year_market(model, int(year)) for year in years}


def _market_of(model: MarketState, year: int,
               markets: dict[int, YearMarket | None] | None) -> YearMarket | None:
    if markets is not None and year in markets:
        return markets[year]
    return year_market(model, year)


def static_equilibrium(model: MarketState, year: int,
                       markets: dict[int, YearMarket | None] | None = None
                       ) -> tuple[float, float]:
    """Equilibrium price (CNY/t) and least-cost abatement cost (CNY) of a compliance year
    alone, without banking (``clearing_price``: NaN price when abatement cannot close
    the gap; NaN and NaN when no firm is in scope). ``markets``: the years' markets
    already built (``year_markets``)."""
    market = _market_of(model, year, markets)
    if market is None:
        return float("nan"), float("nan")
    options = model.firms.options
    costs, tonnes = options.cost[options.valid], market.tonnes[options.valid]
    order = _cheapest_first(costs)
    return clearing_price(costs[order], tonnes[order],
                          float(market.unabated.sum() - market.available))


@single_threaded()
def market_equilibrium(model: MarketState, tail_years: int | None = None,
                       markets: dict[int, YearMarket | None] | None = None
                       ) -> tuple[np.ndarray, PricePath]:
    """The intertemporal equilibrium of a finished run, ex post.

    ``banking_equilibrium`` over the compliance years (start_year to end_year) with each
    year's ``year_market`` (realised output, quota issued, auctioned and released,
    offsets used; all options, whatever their lead time), then a tail of projected years
    after end_year: the market goes on, as firms expect, so the bank left at end_year
    keeps its value instead of being used up. The tail is ``_projected_years`` (the last
    year's rules carried on, output at the plan times the firms' last output response)
    with all options and the offsets as quota; by default it runs to the end of the
    horizon firms looked at in the last compliance year, end_year + foresight_years - 1.
    From the initial bank (quota of vintage start_year - 1) and at
    ``trading.discount_rate``. Without banking (``compliance.banking`` false) there is
    no tail and each year clears alone, the initial bank counting towards the first.
    Years with no firm in scope have NaN price and cost.

    Where the equilibrium bank runs out inside the horizon, a longer tail changes
    nothing before that year (the no-borrowing constraint binds there); otherwise the
    prices rise with the tail's length.

    Args:
        model: The finished run.
        tail_years: Projected years after end_year; None: ``trading.foresight_years - 1``.
        markets: The compliance years' markets already built (``year_markets``).

    Returns:
        The compliance years and their path (the tail left out).
    """
    sc = model.scenario
    years = np.arange(sc.start_year, sc.end_year + 1)
    if tail_years is None:
        tail_years = sc.trading.foresight_years - 1
    tail = np.arange(sc.end_year + 1, sc.end_year + 1 + max(tail_years, 0))
    firms = model.firms
    options = firms.options
    n = len(years) + len(tail)
    unabated, available = np.zeros(n), np.zeros(n)
    tonnes = np.zeros((n, int(options.valid.sum())))
    markets = [_market_of(model, int(year), markets) for year in years]
    for j, market in enumerate(markets):
        if market is not None:
            unabated[j], available[j] = market.unabated.sum(), market.available
            tonnes[j] = market.tonnes[options.valid]
    if len(tail) and sc.compliance.banking:
        projected, quota, weight = _projected_years(model, tail, None)
        c = sc.compliance
        base = firms.base_output * firms.baseline_intensity
        offsets = min(c.offset_share, c.offset_supply_share) * (base @ weight)
        unabated[len(years):], available[len(years):] = projected, quota + offsets
        per_year = option_tonnes(base, options.reduction, options.valid)
        tonnes[len(years):] = (per_year[:, :, None] * weight[:, None, :])[options.valid].T
    else:
        n = len(years)
        unabated, available, tonnes = unabated[:n], available[:n], tonnes[:n]
    registry = model.registry
    initial_bank = float(registry.flows["issued_free"][registry.column(sc.start_year - 1)])
    path = banking_equilibrium(unabated, available, options.cost[options.valid], tonnes,
                               bank=initial_bank, rate=sc.trading.discount_rate,
                               banking=sc.compliance.banking)
    path = PricePath(*(np.asarray(field)[: len(years)] for field in (
        path.price, path.abatement, path.abatement_cost, path.bank)))
    empty = np.array([market is None for market in markets])
    path.price[empty] = np.nan
    path.abatement_cost[empty] = np.nan
    return years, path


@single_threaded()
def horizon_path(model: MarketState, year: int, bank: float,
                 allocation: AllocationPolicy | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The fundamental price path over the years of foresight from ``year``.

    ``banking_equilibrium`` over the horizon at ``trading.discount_rate``, from ``bank``:
    each year's projected unabated emissions against its projected quota, abatement
    counting each option from the year it can take effect, CCER offsets as one more step
    at ``offset_price``. The horizon runs to the scenario's end_year, and at least
    ``trading.foresight_years`` ahead: firms expect the last year's rules to go on
    after it. Without banking each year clears alone, the bank counting towards the
    first. The first year's price anchors firms' price expectations.

    Args:
        model: The running model.
        year: First compliance year still to be produced.
        bank: Quota already held or due for earlier years, net of their obligations (t).
        allocation: The allocation plans as firms know them today
            (``model.allocation.KnownAllocation``); default the model's policy.

    Returns:
        The horizon's years and their prices (CNY/t): 0 in years without a shortage;
        when the options that can take effect in time cannot close the gap, the
        long-run path that counts every option from ``year`` (as the ex post
        equilibrium does); only if even that cannot, the dearest option's cost.
    """
    sc = model.scenario
    firms = model.firms
    options = firms.options
    first = max(year, sc.start_year)
    last = max(sc.end_year, first + sc.trading.foresight_years - 1)
    horizon = np.arange(first, last + 1)
    unabated_by_year, quota_by_year, weight = _projected_years(model, horizon, year,
                                                               allocation)
    c = sc.compliance
    curve = _fixed_curve(model)
    costs, firm, per_year = curve.costs, curve.firm, curve.per_year
    # the options cheapest first (so the solver need not sort), offsets in their place
    adopted = options.adopted_year.ravel()[curve.flat]
    effective = np.where(adopted >= 0, adopted, year) + curve.lead_time
    offsets = min(c.offset_share, c.offset_supply_share) * (curve.base @ weight)
    at = int(np.searchsorted(costs, c.offset_price, side="right"))
    with_offsets = np.insert(costs, at, c.offset_price)
    if engine() == "compiled":  # numba imported on first use, not with this module
        compiled = kernels()
        # the same arithmetic compiled: each year's running tonnes built and the path
        # solved in one call, without the solver's costs (only the prices anchor
        # expectations)
        gap = unabated_by_year - quota_by_year
        growth = (1.0 + sc.trading.discount_rate) ** np.arange(len(horizon))
        firm64, effective64 = curve.firm64, effective.astype(np.int64)

        def solve(in_time: bool) -> np.ndarray:
            return compiled.horizon_prices(per_year, firm64, weight, effective64,
                                           horizon.astype(np.int64), at, offsets, in_time,
                                           gap, with_offsets, growth, float(bank),
                                           bool(c.banking))
    else:
        capacity = per_year * np.ascontiguousarray(weight.T)[:, firm]

        def solve(in_time: bool) -> np.ndarray:
            tonnes = capacity * (effective[None, :] <= horizon[:, None]) if in_time \
                else capacity
            return banking_equilibrium(
                unabated_by_year, quota_by_year, with_offsets,
                np.insert(tonnes, at, offsets, axis=1),
                bank=bank, rate=sc.trading.discount_rate, banking=c.banking).price

    prices = solve(True)
    if len(with_offsets) and prices[0] >= with_offsets.max() * (1 - 1e-12):
        # What can take effect in time cannot close the gap: the shortfall is carried
        # (penalised and deducted from later quota) until long-lead options arrive, so
        # firms anchor on the long-run price that counts every option from now, not on
        # the dearest option's cost.
        prices = solve(False)
    return horizon, prices


class _Curve(NamedTuple):
    """What ``horizon_path`` reads of the firms' options that does not change in a run:
    the options cheapest first (their positions in the flattened (firms, options)
    arrays, costs, firms, lead times, tonnes a year at base output), each firm's
    baseline emissions, and each sector's firms with their entry year, base output and
    baseline intensity."""

    source: tuple
    flat: np.ndarray
    costs: np.ndarray
    firm: np.ndarray
    firm64: np.ndarray
    lead_time: np.ndarray
    per_year: np.ndarray
    base: np.ndarray
    members: list[np.ndarray]
    entry_year: list[np.ndarray]
    base_output: list[np.ndarray]
    baseline_intensity: list[np.ndarray]


def _fixed_curve(model: MarketState) -> _Curve:
    """The options' ``_Curve``, built on the first call and kept on the options (built
    again if the firms' arrays are replaced)."""
    firms = model.firms
    options = firms.options
    source = (options.valid, options.cost, options.reduction, options.lead_time,
              firms.base_output, firms.baseline_intensity, firms.sector, firms.entry_year)
    curve = options.curve
    if curve is not None and all(a is b for a, b in zip(curve.source, source, strict=True)):
        return curve
    valid = options.valid
    order = _cheapest_first(options.cost[valid])
    firm = valid.nonzero()[0][order]
    base = firms.base_output * firms.baseline_intensity
    members = [np.flatnonzero(firms.sector == sector) for sector in range(len(model.sector_names))]
    curve = _Curve(
        source=source,
        flat=np.flatnonzero(valid)[order],
        costs=options.cost[valid][order],
        firm=firm,
        firm64=firm.astype(np.int64),
        lead_time=options.lead_time[valid][order],
        per_year=option_tonnes(base, options.reduction, valid)[valid][order],
        base=base,
        members=members,
        entry_year=[firms.entry_year[rows] for rows in members],
        base_output=[firms.base_output[rows] for rows in members],
        baseline_intensity=[firms.baseline_intensity[rows] for rows in members],
    )
    options.curve = curve
    return curve


def _projected_years(model: MarketState, horizon: np.ndarray, issued_year: int | None,
                     allocation: AllocationPolicy | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected unabated emissions and quota of future years, under each year's rules
    (the last year's carried on after end_year), with output at the plan times the
    firms' current output response.

    Args:
        model: The running (or finished) model.
        horizon: The years to project.
        issued_year: A year whose quota already issued is in the bank (left out of its
            projected quota), or None.
        allocation: The allocation plans used (default the model's policy).

    Returns:
        Unabated emissions and quota per year (t), and each firm's output relative to
        its base output in each year (firms x years), which scales its options' tonnes
        (shared with later calls: not to be written to).
    """
    allocation = model.allocation if allocation is None else allocation
    unabated_by_year, weight, quotas = _projection(model, horizon, allocation)
    quota_by_year = np.zeros(len(horizon))
    for j, rows, quota in quotas:  # sector by sector, year by year, as they were made
        if horizon[j] == issued_year:  # what is already issued for this year is in the bank
            col = model.year_index(int(horizon[j]))
            quota -= float(model.fy["free_entitled"][rows, col].sum()
                           + model.fy["auction_purchased"][rows, col].sum())
        quota_by_year[j] += quota
    return unabated_by_year.copy(), quota_by_year, weight


class _Projection(NamedTuple):
    """What ``_projected_years`` computed, and what it was computed from: the same inputs
    give the same projection (most months of a year)."""

    key: tuple
    sources: tuple
    output_factor: np.ndarray
    intensity: np.ndarray
    unabated_by_year: np.ndarray
    weight: np.ndarray
    quotas: list[tuple[int, np.ndarray, float]]


def _projection_key(model: MarketState, horizon: np.ndarray, allocation: AllocationPolicy
                    ) -> tuple[tuple, tuple]:
    """What a projection reads besides the firms' output response and intensities: as
    values, the horizon, the accounting year, the plan each year's rules come from as
    firms know them today and any absolute cap's first year and base; as objects (the
    same ones, compared by identity), the fixed curve, the allocation policy and the
    caps' shares."""
    years = tuple(horizon.tolist())
    basis = getattr(allocation, "basis", None)
    known = () if basis is None else tuple(
        basis(sector, year) for sector in range(len(model.sector_names)) for year in years)
    caps = sorted(allocation._first_cap.items())
    key = (years, model.mrv.accounting_year, known,
           tuple((sector, first, base) for sector, (first, base, _) in caps))
    sources = (_fixed_curve(model), allocation, *(shares for _, (_, _, shares) in caps))
    return key, sources


def _projection(model: MarketState, horizon: np.ndarray, allocation: AllocationPolicy
                ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray, float]]]:
    """Each year's unabated emissions, the firms' output weights, and each sector's and
    year's projected quota (with its firms) before what is already issued: kept on the
    firms' options while nothing it reads changes (``_projection_key``, the output
    response and the intensities)."""
    firms = model.firms
    key, sources = _projection_key(model, horizon, allocation)
    kept = firms.options.projection
    if (kept is not None and kept.key == key and len(kept.sources) == len(sources)
            and all(a is b for a, b in zip(kept.sources, sources, strict=True))
            and np.array_equal(kept.output_factor, firms.output_factor)
            and np.array_equal(kept.intensity, firms.intensity)):
        return kept.unabated_by_year, kept.weight, kept.quotas
    growth = np.array([model.demand_growth_factor(int(y)) for y in horizon]).T
    curve = sources[0]
    unabated_by_year = np.zeros(len(horizon))
    weight = np.zeros((model.n_firms, len(horizon)))
    quotas: list[tuple[int, np.ndarray, float]] = []
    response = firms.output_factor
    for sector in range(len(model.sector_names)):
        members, entry = curve.members[sector], curve.entry_year[sector]
        all_entered = int(entry.max(initial=0))
        sector_response = response[members]
        for j, y in enumerate(horizon.tolist()):
            if allocation.rule(sector, y).name == "verified_emissions":
                continue  # quota follows emissions: no shortage, no reason to abate
            # the sector's firms that have entered by then (all of them, mostly)
            entered = slice(None) if y >= all_entered else entry <= y
            rows = members[entered]
            if not len(rows):
                continue
            relative = growth[sector, j] * sector_response[entered]
            output = curve.base_output[sector][entered] * relative
            unabated = output * curve.baseline_intensity[sector][entered]
            # accounting changes still to come cut the measured emissions (and what the
            # options abate), not the output
            measured = accounting_factor(model.sector_configs[sector].accounting_change,
                                         model.mrv.accounting_year, y)
            if measured != 1.0:
                unabated = unabated * measured
                relative = relative * measured
            quotas.append((j, rows, _projected_quota(model, sector, y, rows, output,
                                                     unabated, allocation)))
            unabated_by_year[j] += float(unabated.sum())
            weight[rows, j] = relative
    firms.options.projection = _Projection(key, sources, firms.output_factor.copy(),
                                           firms.intensity.copy(), unabated_by_year, weight,
                                           quotas)
    return unabated_by_year, weight, quotas


_last_order: list[tuple[np.ndarray, np.ndarray]] = []


def _cheapest_first(costs: np.ndarray) -> np.ndarray:
    """Stable order of ``costs``, ascending; remembered, as the options' costs rarely
    change from one month's call to the next."""
    if _last_order and np.array_equal(_last_order[0][0], costs):
        return _last_order[0][1]
    order = np.argsort(costs, kind="stable")
    _last_order[:] = [(costs.copy(), order)]
    return order


def horizon_price(model: MarketState, year: int, bank: float) -> float:
    """The fundamental price of ``year``: the first price of ``horizon_path`` (CNY/t)."""
    return float(horizon_path(model, year, bank)[1][0])


def _projected_quota(model: MarketState, sector: int, year: int, rows: np.ndarray,
                     output: np.ndarray, emissions: np.ndarray,
                     allocation: AllocationPolicy | None = None) -> float:
    """Quota (free and auctioned) a sector's firms are expected to get in a future year."""
    allocation = model.allocation if allocation is None else allocation
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


# --- allocative efficiency ---------------------------------------------------------------


class Efficiency(NamedTuple):
    """Allocative efficiency of a year's abatement and the costs it compares (CNY)."""

    efficiency: float
    autarky_cost: float
    least_cost: float


def cheapest_first_cost(costs: np.ndarray, tonnes: np.ndarray, amounts: np.ndarray,
                        backstop: float) -> np.ndarray:
    """Cost of abating ``amounts`` along each row's own options, cheapest first; tonnes
    the options cannot abate cost ``backstop`` each.

    Args:
        costs: Cost per tonne (rows x options); anything where ``tonnes`` is 0.
        tonnes: Tonnes each option can abate (rows x options).
        amounts: Tonnes to abate per row.
        backstop: Cost of a tonne no option abates (CNY/t).

    Returns:
        Cost per row (CNY).
    """
    order = np.argsort(np.where(tonnes > 0, costs, np.inf), axis=1, kind="stable")
    costs = np.take_along_axis(costs, order, axis=1)
    tonnes = np.take_along_axis(tonnes, order, axis=1)
    before = np.cumsum(tonnes, axis=1) - tonnes
    used = np.clip(amounts[:, None] - before, 0.0, tonnes)
    spent = np.where(used > 0, used * costs, 0.0).sum(axis=1)
    return spent + backstop * np.maximum(amounts - tonnes.sum(axis=1), 0.0)


def allocative_efficiency(own_shortage: np.ndarray, costs: np.ndarray, tonnes: np.ndarray,
                          abatement: float, abatement_cost: float,
                          backstop: float) -> Efficiency:
    """Share of the possible saving from trade that a year's abatement realised.

    All three costs are of the same total abatement A, the tonnes the firms actually
    abated, so that abatement deferred through the bank or not needed under a slack cap
    is not counted as a gain from trade:

    - C_act = ``abatement_cost``, what the firms' abatement cost;
    - C_min = the least cost of A: the market's MAC curve (all firms' options, cheapest
      first) up to A;
    - C_aut = the cost of A if no firm could trade: each firm short of quota on its own
      (``own_shortage`` > 0) abates its share of A in proportion to its shortage, with
      its own options cheapest first (exactly its shortage when A is the sum of the
      shortages); firms with a surplus abate nothing.

    Tonnes beyond what the options can abate cost ``backstop``.
    Efficiency = (C_aut - C_act) / (C_aut - C_min): 1 when the abatement was done at
    least cost, 0 when it cost what autarky would, below 0 when it cost more. It is NaN
    when nothing was abated or no firm was short (nothing to compare) and when
    C_aut - C_min is not above 1e-9 of C_aut (trade could save nothing).

    Args:
        own_shortage: Per firm, its obligation minus the quota it got without trading
            with other firms (t).
        costs: Cost per tonne of each firm's options (firms x options).
        tonnes: Tonnes each option abates in the year (firms x options; 0 for padding).
        abatement: Tonnes the firms abated (A).
        abatement_cost: What that abatement cost (C_act, CNY).
        backstop: Cost of a tonne no option abates (CNY/t).
    """
    short = np.maximum(np.asarray(own_shortage, dtype=float), 0.0)
    if abatement <= 0 or short.sum() <= 0:
        return Efficiency(float("nan"), float("nan"), float("nan"))
    autarky = float(cheapest_first_cost(costs, tonnes, short * (abatement / short.sum()),
                                        backstop).sum())
    pooled = tonnes > 0
    least = float(cheapest_first_cost(costs[pooled][None, :], tonnes[pooled][None, :],
                                      np.array([abatement]), backstop)[0])
    gain = autarky - least
    if gain <= 1e-9 * max(abs(autarky), 1.0):
        return Efficiency(float("nan"), autarky, least)
    return Efficiency((autarky - abatement_cost) / gain, autarky, least)


def year_efficiency(model: MarketState, year: int,
                    markets: dict[int, YearMarket | None] | None = None
                    ) -> tuple[Efficiency, float]:
    """``allocative_efficiency`` of a finished compliance year, with its abatement (t).

    The firms in scope of ``year_market``; a firm's own quota is what it got without
    trading: its free allocation, its auction purchases and its offsets used (quota
    bought from the reserve pool is not traced to firms); its obligation is its unabated
    emissions. Offsets count as quota, so their cost is in none of the three costs. The
    backstop is the dearest option's cost in scope. ``markets``: the years' markets
    already built (``year_markets``).
    """
    market = _market_of(model, year, markets)
    nothing = Efficiency(float("nan"), float("nan"), float("nan"))
    if market is None:
        return nothing, 0.0
    col = model.year_index(year)
    fy = model.fy
    rows = market.in_scope
    own = (fy["free_allocation"][rows, col] + fy["auction_purchased"][rows, col]
           + fy["offsets_used"][rows, col])
    options = model.firms.options
    costs = np.where(options.valid, options.cost, 0.0)[rows]
    abated = float(fy["abatement"][rows, col].sum())
    real = options.valid[rows]
    if not real.any():
        return nothing, abated
    return allocative_efficiency(
        market.unabated[rows] - own, costs, market.tonnes[rows], abated,
        float(fy["abatement_cost"][rows, col].sum()), float(costs[real].max()),
    ), abated


def run_efficiency(model: MarketState) -> float:
    """Allocative efficiency of a whole run: each compliance year's, weighted by its
    abatement (over the years where it is defined); NaN when no year's is."""
    sc = model.scenario
    values, weights = [], []
    for year in range(sc.start_year, sc.end_year + 1):
        result, abated = year_efficiency(model, year)
        if not np.isnan(result.efficiency):
            values.append(result.efficiency)
            weights.append(abated)
    if not values or sum(weights) <= 0:
        return float("nan")
    return float(np.average(values, weights=weights))
