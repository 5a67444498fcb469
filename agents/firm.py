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

from typing import TYPE_CHECKING

import mesa
import numpy as np

from etsim.agents.abatement import npv_per_tonne

if TYPE_CHECKING:  # annotations only
    from etsim.model.records import MarketState


class Firm(mesa.Agent):
    """A covered installation: a compliance account that produces, emits, abates and trades.

    Args:
        model: The market model that owns the state arrays.
        row: This firm's row in the model's arrays.
        sector: Name of the firm's sector.
    """

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
        model = self.model
        config = model.sector_configs[model.firms.sector[self.row]]
        share = model.scenario.investment.capital_budget_share
        return share * config.product_price * float(model.firms.base_output[self.row])

    def review_abatement(self, year: int) -> None:
        """Adopt the options whose net present value is positive, within the capital
        budget of each year the option is paid in.

        The options not yet adopted are reviewed along the firm's marginal abatement
        cost curve, cheapest levelised cost first. An option's value is its NPV per
        tonne of yearly capacity (``option_values``); its tonnes are the firm's base
        output x its intensity after the options already adopted x the option's
        reduction, and its capital is capital cost x tonnes, paid in equal parts over
        its build years (its lead time, at least one year). An option with a positive
        value is adopted when each of those parts fits what is left of that year's
        budget after the parts of options adopted before (a dearer one may still fit
        after a cheaper one did not). It takes effect after its lead time. The capital
        paid in each year is recorded as that year's ``investment``.
        """
        model = self.model
        row = self.row
        values, worth = _appraisal(model, year)
        if not worth[row]:  # most firms in most years: nothing pays
            return
        firms = model.firms
        options = firms.options
        open_ = options.valid[row] & (options.adopted_year[row] < 0)
        reduction = options.reduction[row]
        # intensity after every option already decided, in effect or still to come
        adopted = options.valid[row] & ~open_
        intensity = float(firms.baseline_intensity[row] * np.prod(1.0 - reduction[adopted]))
        output = float(firms.base_output[row])
        budget = self.capital_budget()
        # capital of options adopted earlier still being paid, by calendar year
        due = model.capital_due[row]
        col = model.year_index(year)
        for k in np.flatnonzero(open_ & (values[row] > 0)).tolist():
            tonnes = output * intensity * float(reduction[k])
            capital = float(options.capital_cost[row, k]) * tonnes
            # paid in equal parts over the build years (the lead time, at least one)
            build = max(int(options.lead_time[row, k]), 1)
            instalment = capital / build
            if (due[col: col + build] + instalment > budget * (1 + 1e-12)).any():
                continue
            due[col: col + build] += instalment
            options.adopted_year[row, k] = year
            intensity *= 1.0 - float(reduction[k])
        n_years = model.fy["investment"].shape[1]
        model.fy["investment"][row, col:] = due[col:n_years]


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
