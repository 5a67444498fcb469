"""What each firm knows of its position, and the ``TradingState`` its strategy reads.

A firm trades for its next compliance deadline (all the years of a multi-year period
due at it, ``compliance.deadlines``). For every compliance year whose
deadline has not passed, its expected balance is the free quota still to come (the
final free quota at its projected output and emissions, less what was issued) plus
the offsets it counts on, less its obligation (verified emissions once known, else the
year's reports so far scaled to a year; before any report, its planned output at its
current intensity). Its position for the nearest deadline is its
usable holdings plus that year's balance; quota of later years comes after it, so a
firm short for it buys even when later years promise a surplus (``short_later`` then
sets the price at which a surplus is sold).

What a firm may spend on quota in a year is its carbon budget: ``credit_years`` of its
emissions at its expected price, plus what it has earned (or minus what it has spent)
on carbon since 1 January. Orders resting on the exchange (GTC) count as if filled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from etsim.agents.abatement import own_marginal_cost
from etsim.agents.strategies import TradingState
from etsim.model._numba import njit

if TYPE_CHECKING:  # annotations only
    from etsim.agents.population import FirmState
    from etsim.agents.production import Production
    from etsim.model.allocation import AllocationPolicy
    from etsim.model.calendar import TradingCalendar
    from etsim.model.compliance import Compliance
    from etsim.model.records import FirmYears
    from etsim.model.registry import Registry
    from etsim.model.scenario import Scenario
    from etsim.model.session import TradingSession


@njit(cache=True)
def budget_of(credit_years, annual_emissions, expected_price, cash, cash_year_start
              ):  # pragma: no cover (compiled)
    """A firm's carbon budget (``Positions.carbon_budget``), in the order it was always
    computed: ``(credit_years x emissions) x expected price + (cash - cash on 1 January)``."""
    return credit_years * annual_emissions * expected_price + (cash - cash_year_start)


@njit(cache=True)
def _budgets(credit_years, annual_emissions, expected_price, cash, cash_year_start
             ):  # pragma: no cover (compiled)
    budget = np.empty(len(cash))
    for i in range(len(cash)):
        budget[i] = budget_of(credit_years, annual_emissions[i], expected_price[i], cash[i],
                              cash_year_start[i])
    return budget


@njit(cache=True)
def _day_positions(holdings, usable, expected_nearest, expected_net, credit_years,
                   annual_emissions, expected_price, cash, cash_year_start
                   ):  # pragma: no cover (compiled)
    """Per firm, in one pass: its position for the next deadline (usable holdings plus
    the expected balance due then), what it may sell (its holdings), whether it is
    short over all open years together, and its carbon budget (:func:`budget_of`)."""
    n = len(holdings)
    position, sellable, budget = np.empty(n), np.empty(n), np.empty(n)
    short_later = np.empty(n, dtype=np.bool_)
    for i in range(n):
        position[i] = usable[i] + expected_nearest[i]
        sellable[i] = holdings[i]
        short_later[i] = holdings[i] + expected_net[i] < 0
        budget[i] = budget_of(credit_years, annual_emissions[i], expected_price[i], cash[i],
                              cash_year_start[i])
    return position, sellable, short_later, budget


def warm_up() -> None:
    """Compile (or load from the cache) the positions' kernels on two firms."""
    held, two = np.ones(2, dtype=np.int64), np.ones(2)
    _day_positions(held, held, two, two, 1.0, two, two, two, two)
    _budgets(1.0, two, two, two, two)


class Positions:
    """Each firm's expected balances, its position for the next deadline, its budget and
    the day's ``TradingState``.

    Args:
        scenario: The resolved scenario.
        firms: The firms' state.
        records: The firm-year records (emissions reported and verified, quota issued).
        registry: The quota registry (holdings by vintage).
        allocation: The allocation policy (the final free quota to come).
        production: Output plans and projections.
        compliance: Deadlines and the penalty price.
        session: The trading session (the day's price band, resting GTC orders).
        calendar: The run's trading calendar.
        needs_own_mac: Whether a strategy reads the firms' own marginal abatement cost.
    """

    def __init__(self, scenario: Scenario, firms: FirmState, records: FirmYears,
                 registry: Registry, allocation: AllocationPolicy, production: Production,
                 compliance: Compliance, session: TradingSession, calendar: TradingCalendar,
                 needs_own_mac: bool) -> None:
        self.scenario = scenario
        self.firms = firms
        self.records = records
        self.registry = registry
        self.allocation = allocation
        self.production = production
        self.compliance = compliance
        self.session = session
        self.calendar = calendar
        self.needs_own_mac = needs_own_mac
        n = firms.n
        self.expected_net = np.zeros(n)  # expected balance over all open compliance years
        self.expected_nearest = np.zeros(n)  # the same for the nearest deadline
        self.next_deadline: int | None = None  # trading day of the nearest deadline
        self.next_compliance_year = scenario.start_year
        opening = scenario.market.opening_date
        # the first trading day of the exchange (market.opening_date): no orders before it
        self.opening_day = 0 if opening is None else calendar.day_of(opening)
        # which firms may trade changes only with the year and the exchange's opening
        self._can_trade: tuple[np.ndarray, int, bool, np.ndarray] | None = None

    def deadline_day(self, compliance_year: int) -> int:
        """The trading day of a compliance year's deadline."""
        return self.calendar.last_day(*self.compliance.deadline(compliance_year))

    def months_done(self, year: int, day: int) -> int:
        """Months of ``year`` completed by ``day`` (12 after it, 0 before it)."""
        current = self.calendar.year[min(day, self.calendar.n_days - 1)]
        if year < current:
            return 12
        if year > current:
            return 0
        return (day % self.calendar.days_per_year) // self.calendar.days_per_month

    def month_of(self, year: int, day: int) -> int:
        """Months of ``year`` that have begun by ``day`` (0 before it, 13 after it)."""
        current = int(self.calendar.year[min(day, self.calendar.n_days - 1)])
        if year > current:
            return 0
        if year < current:
            return 13
        return int(self.calendar.month[day])

    def projected_output(self, year: int, day: int) -> np.ndarray:
        """Expected annual output in ``year``, as known on ``day``."""
        return self.production.projected_output(year, self.months_done(year, day))

    def expected_balance(self, year: int, day: int, last_close: float) -> np.ndarray:
        """Quota still to be issued for ``year`` plus offsets counted on, minus its
        obligation (t), per firm."""
        records = self.records
        col = records.col(year)
        firms = self.firms
        output = self.projected_output(year, day)
        if records.verified_known[col]:
            obligation = (np.nan_to_num(records["verified_emissions"][:, col])
                          + records["owed"][:, col])
        else:
            months = max(self.months_done(year, day), 1)
            so_far = records["reported_emissions"][:, col]
            # before any report: the output plan the quota to come is computed from
            projected = output * firms.intensity
            obligation = np.where(so_far > 0, so_far * 12 / months, projected)
        to_come = np.zeros(firms.n)
        allocation = self.allocation
        trued_up = self.scenario.compliance.true_up_month <= self.month_of(year + 1, day)
        for sector in range(len(allocation.sector_names)):
            rows = firms.sector_rows(sector, year)
            if not len(rows) or allocation.rule(sector, year).issued_at_year_start:
                continue
            if trued_up:
                continue  # all of it has come
            final = allocation.final_free_quota(sector, year, output[rows], obligation[rows])
            to_come[rows] = final - records["free_entitled"][rows, col]
        offsets = self.offset_plan(obligation, last_close)
        return np.where(firms.covered(year), to_come + offsets - obligation, 0.0)

    def offset_plan(self, obligation: np.ndarray, last_close: float) -> np.ndarray:
        """Offsets a firm counts on: its share of the scarce CCER supply, when cheaper."""
        c = self.scenario.compliance
        if c.offset_price >= last_close:
            return np.zeros_like(obligation)
        # rounded down at the deadline, so count on a little less
        return np.floor(0.99 * min(c.offset_share, c.offset_supply_share) * obligation)

    def refresh(self, year: int, day: int, last_close: float) -> np.ndarray:
        """Each firm's expected balances for every compliance year whose deadline has not
        passed, and which deadline is the nearest (each month).

        Returns:
            The expected balance of compliance years before ``year`` (quota still due or
            owed for them), per firm: with holdings, the bank carried into ``year``.
        """
        sc = self.scenario
        net = np.zeros(self.firms.n)
        earlier = np.zeros(self.firms.n)
        nearest = None
        self.next_deadline = None
        opening = self.compliance.opening_owed
        if opening is not None and opening.any():
            # the cycle before the run: its quota is held, its obligation known
            deadline = self.calendar.last_day(*self.compliance.opening.due())
            if deadline >= day:
                self.next_deadline, self.next_compliance_year = deadline, sc.start_year - 1
                nearest = -opening.astype(float)
                net -= opening
                earlier -= opening
        for compliance_year in range(sc.start_year, min(year, sc.end_year) + 1):
            deadline = self.deadline_day(compliance_year)
            if deadline < day:
                continue
            balance = self.expected_balance(compliance_year, day, last_close)
            if self.next_deadline is None:
                self.next_deadline, self.next_compliance_year = deadline, compliance_year
                nearest = balance
            elif deadline == self.next_deadline:  # a multi-year period: due together
                self.next_compliance_year = compliance_year
                nearest = nearest + balance
            net += balance
            if compliance_year < year:
                earlier += balance
        # Firms trade for the nearest deadline: quota of later years comes after it, so
        # a firm short for it buys even when later years promise a surplus. Later years
        # set the price at which a surplus is sold (see TradingState.short_later).
        self.expected_net = net
        self.expected_nearest = net if nearest is None else nearest
        return earlier

    def carbon_budget(self) -> np.ndarray:
        """What each firm may still spend on quota this year (CNY): ``credit_years`` of
        its emissions at its expected price, plus what it has earned (or minus what it
        has spent) on carbon since 1 January. Production revenue is not modelled, so the
        budget renews each year instead of draining."""
        firms = self.firms
        return _budgets(float(self.scenario.trading.credit_years), *(
            np.ascontiguousarray(a, dtype=np.float64) for a in (
                firms.annual_emissions, firms.expected_price, firms.cash,
                firms.cash_year_start)))

    def trading_state(self, day: int) -> TradingState:
        """What the firms know on a trading day, for their strategies."""
        sc = self.scenario
        firms = self.firms
        # only vintages up to the nearest compliance year count for its deadline
        holdings, usable = self.registry.totals(min(self.next_compliance_year, sc.end_year))
        committed = self.session.committed()
        if committed is None:
            position, sellable, short_later, budget = _day_positions(
                holdings, usable, *(np.ascontiguousarray(a, dtype=np.float64) for a in (
                    self.expected_nearest, self.expected_net)),
                float(sc.trading.credit_years), *(
                    np.ascontiguousarray(a, dtype=np.float64) for a in (
                        firms.annual_emissions, firms.expected_price, firms.cash,
                        firms.cash_year_start)))
        else:
            # resting GTC orders count as if filled: what they offer cannot be offered
            # again, and what they bid for is no longer wanted nor spendable
            buy_t, sell_t, value = committed
            position = usable + self.expected_nearest + buy_t - sell_t
            sellable = holdings.astype(float) - sell_t
            holdings = holdings + buy_t - sell_t
            short_later = holdings + self.expected_net < 0
            budget = self.carbon_budget() - value
        if self.next_deadline is None:
            urgency = 0.0
        else:
            days_left = max(self.next_deadline - day, 0)
            urgency = max(0.0, 1.0 - days_left / self.calendar.days_per_year)
            urgency = urgency ** sc.trading.urgency_exponent
        year = int(self.calendar.year[day])
        limit_down, limit_up = self.session.listed_band()
        must_sell = None
        if sc.compliance.banking and self.next_deadline is not None:
            # the carry-over limit at the next deadline, with the surplus expected then
            must_sell = self.compliance.must_sell(self.next_compliance_year, position)
        return TradingState(
            position=position,
            short_later=short_later,
            sellable=sellable,
            urgency=np.full(firms.n, urgency),
            expected_price=firms.expected_price,
            expected_growth=firms.expected_growth,
            discount_rate=firms.discount_rate,
            penalty_price=self.compliance.penalty_price(firms.expected_price),
            budget=budget,
            can_trade=self._firms_trading(min(year, sc.end_year), day >= self.opening_day),
            limit_down=limit_down,
            limit_up=limit_up,
            # firms expect the market to go on after the scenario's last deadline (see
            # trading.foresight_years), so a bank keeps its value to the end
            banking=sc.compliance.banking,
            own_mac=(own_marginal_cost(
                firms.options, firms.annual_emissions, -position)
                if self.needs_own_mac else None),
            # microstructure: patient quotes around the last close, block orders
            reference_price=self.session.record.last_close,
            annual_need=firms.annual_emissions,
            block_min_t=sc.market.block_min_t,
            must_sell=must_sell,
            shared_urgency=True,
        )

    def _firms_trading(self, year: int, open_: bool) -> np.ndarray:
        """Which firms may trade in ``year`` (they have entered; ``open_``: the exchange
        has opened), kept while the year and the firms' entry years stay the same."""
        entry_year = self.firms.entry_year
        kept = self._can_trade
        if kept is None or kept[0] is not entry_year or kept[1:3] != (year, open_):
            kept = self._can_trade = (entry_year, year, open_, (entry_year <= year) & open_)
        return kept[3]

    def position_all_years(self) -> np.ndarray:
        """Each firm's holdings plus its expected balance over all open compliance years
        (auctioned quota is of the current vintage, so it serves them all), with its
        resting GTC orders counted as filled."""
        position = self.registry.total() + self.expected_net
        committed = self.session.committed()
        if committed is not None:
            position = position + committed[0] - committed[1]
        return position
