"""Firms: one Mesa agent per covered installation.

The hot numeric state (output, emissions, holdings, positions, expectations) lives in
numpy arrays (``agents.population.FirmState``, docs/ODD.md section 2); a Firm
reads and writes its own row. Decisions taken rarely (abatement once a year) are
agent methods called through the model's AgentSet.

A firm's other decisions are taken for all firms at once, on arrays:

- what to buy or sell each day: ``agents.positions.Positions`` works out what each firm
  knows (its expected position for the next deadline, its budget, the urgency) as a
  ``TradingState``; the firm's strategy (``agents.strategies``, drawn per sector) turns
  it into orders;
- the price it expects: its expectation model (``agents.expectations``);
- how much it produces: ``agents.production``;
- whether it misreports: ``model.mrv``.
"""

from __future__ import annotations

import itertools
import weakref
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from etsim.agents.abatement import npv_per_tonne

if TYPE_CHECKING:  # annotations only
    from mesa.agent import AgentSet

    from etsim.model.records import MarketState


class _IdCounters:
    """Each model's counter of agent ids (``unique_id`` 1, 2, ...), as Mesa's
    ``Agent._ids`` keeps them, but held by the model, not for it: Mesa 3.3's class-level
    dict keyed by the model keeps every model that made an agent alive until the
    process ends (a sweep worker or the dashboard, run after run)."""

    def __init__(self) -> None:
        self._counters: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def __getitem__(self, model: Any) -> Any:
        counter = self._counters.get(model)
        if counter is None:
            counter = self._counters[model] = itertools.count(1)
        return counter


class Firm(mesa.Agent):
    """A covered installation: a compliance account that produces, emits, abates and trades.

    Args:
        model: The market model that owns the state arrays.
        row: This firm's row in the model's arrays.
        sector: Name of the firm's sector.
    """

    _ids = _IdCounters()  # read by mesa.Agent.__init__: next(self._ids[model])

    def __init__(self, model: MarketState, row: int, sector: str) -> None:
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

    @property
    def strategy(self) -> str:
        """The name of the firm's trading strategy (``trading.strategy_mix``)."""
        mix = self.model.strategy_mix
        return mix.names[int(mix.firm_strategy[self.row])]

    @property
    def expectation_model(self) -> str:
        """The name of the firm's price expectation model (``trading.expectation_mix``)."""
        expectations = self.model.expectations
        return expectations.names[int(expectations.firm_model[self.row])]

    def capital_budget(self) -> float:
        """Most the firm spends on abatement capital in a year (CNY):
        ``investment.capital_budget_share`` x its revenue, product price x base output."""
        return float(capital_budgets(self.model, np.array([self.row]))[0])

    def review_abatement(self, year: int) -> None:
        """Adopt the options whose net present value is positive, within the capital
        budget of each year the option is paid in (``review_abatement`` for this firm
        alone; the model's January review runs it for all firms at once)."""
        review_abatement(self.model, np.array([self.row]), year)


def review_firms(agents: AgentSet, year: int, reviewing: np.ndarray | None = None) -> None:
    """The January review of the firms in ``agents`` (an AgentSet of ``Firm``), as
    ``agents.shuffle_do("review_abatement", year)`` would do it, in one array
    computation: one ``review_abatement`` of all of them at once, except a firm whose own
    ``review_abatement`` replaces the agent's (a classroom seat a student runs), which is
    called on its own.

    The firms are shuffled with the AgentSet's random generator, as ``shuffle_do``
    shuffles them, so the model's random stream is the same; what the firms decide does
    not depend on their order (each reads and writes its own row).

    Args:
        agents: The model's firms.
        year: The calendar year of the review.
        reviewing: Which rows review (firms that have entered the market), or None for
            all: a filter here rather than an ``AgentSet.select``, which at 50,000 firms
            took longer than the review itself.
    """
    if reviewing is None:
        order = list(agents)
    else:
        flags = reviewing.tolist()  # a list is read faster than an array, firm by firm
        order = [a for a in agents if flags[a.row]]
    agents.random.shuffle(order)
    rows: list[int] = []
    plain = Firm.review_abatement
    for agent in order:
        if "review_abatement" in agent.__dict__ or type(agent).review_abatement is not plain:
            agent.review_abatement(year)
        else:
            rows.append(agent.row)
    if rows:
        review_abatement(order[0].model, np.array(rows, dtype=np.int64), year)


def review_abatement(model: MarketState, rows: np.ndarray, year: int) -> None:
    """The January investment review of the firms in ``rows``, all at once.

    Each firm reviews the options it has not yet adopted along its marginal abatement
    cost curve, cheapest levelised cost first. An option's value is its NPV per tonne
    of yearly capacity (``option_values``); its tonnes are the firm's base output x its
    intensity after the options already adopted x the option's reduction, and its
    capital is capital cost x tonnes, paid in equal parts over its build years (its lead
    time, at least one year). An option with a positive value is adopted when each of
    those parts fits what is left of that year's budget after the parts of options
    adopted before (a dearer one may still fit after a cheaper one did not). It takes
    effect after its lead time. The capital paid in each year is recorded as that
    year's ``investment``.

    A firm's review reads and writes its own row only, so the firms are reviewed
    together, one option column at a time (the same arithmetic, in the same order, as
    one firm after another: the results do not depend on the order of the firms).

    Args:
        model: The running model.
        rows: The reviewing firms' rows.
        year: The calendar year of the review (its January).
    """
    values, worth = _appraisal(model, year)
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[worth[rows]]  # most firms in most years: nothing pays
    if not len(rows):
        return
    firms = model.firms
    options = firms.options
    valid = options.valid[rows]
    open_ = valid & (options.adopted_year[rows] < 0)
    reduction = options.reduction[rows]
    # intensity after every option already decided, in effect or still to come (the
    # factors multiplied in column order, as np.prod over the adopted ones does)
    adopted = valid & ~open_
    left = np.ones(len(rows))
    for k in range(reduction.shape[1]):
        left = np.where(adopted[:, k], left * (1.0 - reduction[:, k]), left)
    intensity = firms.baseline_intensity[rows] * left
    output = firms.base_output[rows].astype(float)
    budget = capital_budgets(model, rows)
    limit = budget * (1 + 1e-12)
    # capital of options adopted earlier still being paid, by calendar year
    due = model.capital_due[rows]
    col = model.year_index(year)
    candidate = open_ & (values[rows] > 0)
    for k in np.flatnonzero(candidate.any(axis=0)).tolist():
        tonnes = output * intensity * reduction[:, k]
        capital = options.capital_cost[rows, k] * tonnes
        # paid in equal parts over the build years (the lead time, at least one)
        build = np.maximum(options.lead_time[rows, k].astype(np.int64), 1)
        instalment = capital / build
        window = due[:, col: col + int(build.max())]  # a view: adding to it adds to due
        paying = np.arange(window.shape[1])[None, :] < build[:, None]  # (firms, years)
        over = (window + instalment[:, None] > limit[:, None]) & paying
        adopt = candidate[:, k] & ~over.any(axis=1)
        if not adopt.any():
            continue
        add = paying & adopt[:, None]
        window += np.where(add, instalment[:, None], 0.0)
        options.adopted_year[rows[adopt], k] = year
        intensity = np.where(adopt, intensity * (1.0 - reduction[:, k]), intensity)
    model.capital_due[rows] = due
    n_years = model.fy["investment"].shape[1]
    model.fy["investment"][rows, col:] = due[:, col:n_years]


def capital_budgets(model: MarketState, rows: np.ndarray) -> np.ndarray:
    """Most each firm in ``rows`` spends on abatement capital in a year (CNY):
    ``investment.capital_budget_share`` x its revenue, product price x base output."""
    firms = model.firms
    price = np.array([config.product_price for config in model.sector_configs])
    share = model.scenario.investment.capital_budget_share
    return share * price[firms.sector[rows]] * firms.base_output[rows].astype(float)


def option_values(model: MarketState, year: int) -> np.ndarray:
    """Every firm's NPV per tonne of yearly capacity of each of its options in ``year``,
    (firms, options), as it perceives it (``agents.abatement.npv_per_tonne``).

    - Price path: the firm's expected price growing at its expected growth over
      ``trading.foresight_years``, level after them.
    - Hurdle rate: ``investment.hurdle_rate`` + the firm's own discount rate -
      ``trading.discount_rate`` (firms that discount the future more demand more of an
      investment), at least 0.
    - A tonne earns the price only in years whose allocation rule is not
      ``verified_emissions`` (under it quota follows emissions). Years after
      ``end_year`` keep the last year's rules.
    - Peer effect: the capital cost is perceived as capital x (1 - peer_discount x the
      share of the firm's peers that adopted the option in an earlier year).

    Appraised for all firms at once when the first firm reviews in a January, and
    cached for the others of that day: nothing it reads changes while they review.
    """
    return _appraisal(model, year)[0]


def _appraisal(model: MarketState, year: int) -> tuple[np.ndarray, np.ndarray]:
    """``option_values`` and, per firm, whether any option it has not adopted has a
    positive value: computed once per January for all firms (see ``option_values``)."""
    options = model.firms.options
    key = (year, model.day)
    if options.appraisal is not None and options.appraisal[0] == key:
        return options.appraisal[1], options.appraisal[2]
    sc = model.scenario
    firms = model.firms
    investment = sc.investment
    hurdle = np.maximum(
        investment.hurdle_rate + firms.discount_rate - sc.trading.discount_rate, 0.0)
    horizon = int((options.lead_time + options.lifetime).max())
    earns = np.array([
        [model.allocation.rule(sector, year + s).name != "verified_emissions"
         for s in range(horizon)]
        for sector in range(len(model.sector_names))
    ]).reshape(len(model.sector_names), horizon)[firms.sector]
    capital = options.capital_cost
    if investment.peer_discount > 0:
        adopted = options.in_table_order(options.adopted_before(year))
        share = np.take_along_axis(model.peers.share(adopted), options.table_index, axis=1)
        capital = capital * (1.0 - investment.peer_discount * share)
    values = npv_per_tonne(
        firms.expected_price, firms.expected_growth, hurdle, sc.trading.foresight_years,
        capital, options.operating_cost, options.lead_time, options.lifetime, earns)
    values = np.where(options.valid, values, -np.inf)
    worth = ((values > 0) & (options.adopted_year < 0)).any(axis=1)
    options.appraisal = (key, values, worth)
    return values, worth
