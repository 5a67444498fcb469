"""CarbonMarketModel: China's national carbon market as a Mesa model.

The model wires the institutions together and calls them on their schedule (the ODD
protocol's section 3, docs/ODD.md); each rule lives in the module named for it:

- ``model.issuance``: pre-allocation, true-up and absolute caps (``model.allocation``
  holds the rules and the one ``final_free_quota``);
- ``model.mrv``: monthly reports, misreporting, inspections, verification;
- ``model.compliance``: surrender, offsets, borrowing, penalties, banking rules;
- ``model.primary``: paid-share auctions, the reserve pool's sales and buy-backs,
  carrying out what a ``model.reserve`` policy decides;
- ``model.session``: one trading day on the exchange (bands, block then listed
  session, GTC carry, the close); ``model.settlement`` delivers and pays;
- ``agents.production``, ``agents.positions``, ``agents.expectations``,
  ``agents.strategies``, ``agents.firm``: what firms produce, know, expect and do.

One step is one trading day. Month start: January's decisions (misreporting,
abatement, intensity, absolute-cap issuance, output), verification, pre-allocation and
true-up of the previous compliance year, paid-share auctions, the reserve pool's
monthly check, firms' expected positions and the fundamental price (also on the day
an allocation plan is announced, ``[[announcements]]``). Every day: the
trading session, then firms update their expected prices. Month end: production and
emission reports; at a deadline, compliance and the pool's check; at year end, the
bank is recorded.

The hot numeric state lives in numpy arrays (``self.firms``, the records, the
registry); each firm is a ``mesa.Agent`` that reads its row.
"""

from __future__ import annotations

import numbers
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import mesa
import numpy as np

from etsim.agents.expectations import PriceExpectations
from etsim.agents.financial import FinancialDayState, FinancialTraders
from etsim.agents.firm import Firm, review_firms
from etsim.agents.population import draw_firms, draw_mix
from etsim.agents.positions import Positions
from etsim.agents.production import Production
from etsim.agents.strategies import Orders, StrategyMix, TradingState
from etsim.model.allocation import AllocationPolicy, KnownAllocation, PublishedPlans
from etsim.model.calendar import TradingCalendar
from etsim.model.compliance import Compliance
from etsim.model.equilibrium import horizon_path
from etsim.model.invariants import InvariantError, check_invariants
from etsim.model.issuance import Issuance
from etsim.model.mrv import MRV
from etsim.model.primary import PrimaryMarket
from etsim.model.records import FirmYears, new_payments
from etsim.model.registry import Registry
from etsim.model.reserve import ReservePool, ReserveSignals, make_reserve_policy
from etsim.model.results import build_tables
from etsim.model.scenario import Scenario, load_scenario
from etsim.model.session import (
    DailyRecord,
    TradingSession,
    default_recorded_days,
    recorded_days,
)
from etsim.model.settlement import Settlement, TradeLog


class CarbonMarketModel(mesa.Model):
    """China's national carbon market with its institutions and firms.

    Args:
        scenario: A shipped scenario name, a path to a TOML file, or a Scenario.
        seed: Random seed; None (and no ``rng``) takes the scenario's ``seed``, so
            ``CarbonMarketModel()`` and ``etsim run`` reproduce a run, except in
            ``mesa.batch_run``, where each run without ``seed`` or ``rng`` draws a fresh
            seed from the OS's entropy (as any Mesa model given no seed), so that
            ``iterations`` are independent replications; the seed a run used is
            ``seed_value`` and the ``seed`` column of batch_run's rows.
        overrides: Dotted-key overrides of scenario values,
            e.g. ``{"penalty.multiple": 7}``.
        book_days: Dates (``"YYYY-MM-DD"``) whose order books are recorded event by
            event for the ``book_events`` table (a date that is no trading day means the
            next trading day); None records one day per compliance year, the 10th
            trading day of the month before its deadline.
        rng: Instead of ``seed``, as for ``mesa.Model``: an integer is the seed; a numpy
            ``SeedSequence`` or ``Generator`` gives the seed, drawn from it, so that the
            run's ``seed`` (``seed_value``, in ``run.json``) still reproduces it.
        **flat_overrides: The same overrides as keywords with ``__`` for dots
            (``penalty__multiple=7``), so ``mesa.batch_run`` can vary them.

    ``mesa.batch_run`` (Mesa 3.3) passes the model only its ``parameters``: with ``seed``
    (or ``rng``) among them every run is reproducible; without, ``iterations=N`` gives N
    runs of different seeds (each row's ``seed`` reproduces it).

    Raises:
        ValueError: Both ``seed`` and ``rng`` given.
    """

    def __init__(
        self,
        scenario: str | Scenario = "china-2024",
        seed: int | None = None,
        overrides: dict[str, Any] | None = None,
        book_days: list[str] | None = None,
        *,
        rng: int | np.random.SeedSequence | np.random.Generator | None = None,
        **flat_overrides: Any,
    ) -> None:
        if seed is not None and rng is not None:
            raise ValueError("give seed or rng, not both")
        merged = dict(overrides or {})
        merged.update(flat_overrides)
        self.scenario = sc = load_scenario(scenario, merged or None)
        if isinstance(rng, numbers.Integral):
            seed = int(rng)
        elif rng is not None:  # an int seed, so that run.json's seed reproduces the run
            seed = int(np.random.default_rng(rng).integers(np.iinfo(np.int32).max))
        elif seed is None:
            # Made by mesa.batch_run (Mesa's batch runner among the callers)? Then each
            # iteration gets its own seed from the OS's entropy, as any Mesa model given
            # no seed; its rows report it ("seed").
            frame = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__") != "mesa.batchrunner":
                frame = frame.f_back
            if frame is not None:
                seed = int(np.random.default_rng().integers(np.iinfo(np.int32).max))
        seed = sc.seed if seed is None else seed
        super().__init__(seed=seed)
        self.seed_value = seed
        self.started = time.perf_counter()
        self.calendar = TradingCalendar(
            sc.start_year, sc.last_calendar_year, sc.market.trading_days_per_month)
        self.years = np.arange(sc.start_year, sc.last_calendar_year + 1)
        self.day = 0
        # firms: their state arrays and one Mesa agent each (draws in a fixed order)
        self.sector_names = sc.simulated_sectors()
        self.sector_configs = [sc.sectors[name] for name in self.sector_names]
        population = draw_firms(sc, self.sector_configs, self.rng)
        self.firms = firms = population.firms
        self.n_firms = firms.n
        self.province, self.province_names = population.province, population.province_names
        self.peers = population.peers
        Firm.create_agents(self, firms.n, row=list(range(firms.n)),
                           sector=[self.sector_names[s] for s in firms.sector])
        firms.firm_id = np.array([agent.unique_id for agent in self.agents], dtype=np.int64)
        # Financial accounts (none by default: then nothing is drawn from the rng) are
        # registry rows after the firms; account_id maps every row to its id in results.
        self.financial = FinancialTraders.from_config(sc.financial, self.rng, offset=firms.n)
        self.n_accounts = firms.n + self.financial.n
        self.account_id = np.concatenate([
            firms.firm_id,
            int(firms.firm_id.max(initial=0)) + 1 + np.arange(self.financial.n),
        ]).astype(np.int64)
        self.registry = Registry(self.n_accounts, sc.start_year - 1,
                                 sc.last_calendar_year + 1, n_firms=firms.n)
        self.allocation = AllocationPolicy(sc, self.sector_names)
        # what firms know of the plans: all of them unless [[announcements]] says when
        self.plans = PublishedPlans(sc, self.sector_names, self.calendar)
        self.known_allocation = (KnownAllocation(self.allocation, self.plans)
                                 if self.plans.any else self.allocation)
        self.reserve = ReservePool()
        self.reserve_policy = make_reserve_policy(sc.reserve_pool)
        trading = sc.trading
        names, firm_strategy = draw_mix(trading.strategy, trading.strategy_mix,
                                        self.sector_names, firms.sector, self.rng)
        self.strategy_mix = StrategyMix(names, firm_strategy, trading, self.rng)
        names, firm_expectations = draw_mix(trading.expectations, trading.expectation_mix,
                                            self.sector_names, firms.sector, self.rng)
        self.expectations = PriceExpectations(names, firm_expectations, trading,
                                              sc.market.initial_price)
        # what the run records, and the institutions that write it
        self.fy = FirmYears(firms.n, sc.start_year, len(self.years))
        # abatement capital each firm pays in each calendar year, also past the calendar
        # (an option adopted late is still being built); the schema caps lead times at 20
        self.capital_due = np.zeros((firms.n, len(self.years) + 21))
        self.daily = DailyRecord(self.calendar, sc.market.initial_price)
        self.payments = new_payments()
        self.trade_log = TradeLog(self.payments)
        self.reserve_holdings_end: dict[int, int] = {}
        self.production = Production(self.sector_configs, firms, self.fy, self.rng,
                                     sc.scope.include_indirect)
        self.mrv = MRV(sc.mrv, firms, self.fy, self.allocation, self.rng, self.payments)
        self.issuance = Issuance(sc, firms, self.fy, self.registry, self.allocation,
                                 self.reserve)
        self.compliance = Compliance(sc, self.sector_names, firms, self.fy, self.registry,
                                     self.payments, self.financial)
        self.book_days = (recorded_days(self.calendar, book_days) if book_days is not None
                          else default_recorded_days(self.calendar, self.compliance,
                                                     range(sc.start_year, sc.end_year + 1)))
        self.session = TradingSession(
            sc.market, self.registry, self.daily,
            Settlement(self.registry, firms, self.fy, self.financial, self.trade_log),
            self.account_id, firms.n, self.book_days)
        self.positions = Positions(sc, firms, self.fy, self.registry, self.known_allocation,
                                   self.production, self.compliance, self.session,
                                   self.calendar, self.strategy_mix.needs_own_mac)
        self.primary = PrimaryMarket(sc, firms, self.fy, self.registry, self.allocation,
                                     self.reserve, self.positions, self.daily,
                                     self.trade_log, self.payments)
        self.issuance.endow_initial_bank(self.sector_configs)
        self.compliance.open_cycle()  # a cycle before the run, due in it (if any)
        firms.refresh_intensity(sc.start_year)
        self.reserve.endow(int(sc.reserve_pool.initial_holdings_share
                               * self.annual_quota_estimate()))
        self.invariants: dict[str, Any] | None = None
        # Traders outside the model (a classroom's students, dashboard/classroom): an
        # object with ``firms`` (bool mask of the firms it trades for, which the
        # strategies then skip), ``orders(day, orders, placed_by)`` returning the day's
        # orders with its own merged in, and ``traded(day, books)`` after the session.
        self.external: Any = None
        # Daily model-level series for mesa.batch_run; attribute names pickle cleanly.
        # Collected after each trading day only (not here): batch_run reads entry s as
        # Step s, so entry s must be the close of day s and the last one the run's end.
        self.datacollector = mesa.DataCollector(model_reporters={
            "seed": "seed_value",  # the seed that reproduces the run
            "close": "day_close",  # NaN on a day without listed trades
            "last_close": "prev_close",  # the last close, on which the price band rests
            "fundamental_price": "fundamental_price",
            "bank_total": "bank_total",
            "reserve_holdings": "reserve_holdings",
        })

    # --- what the data collector, policies and views read ---------------------------

    @property
    def prev_close(self) -> float:
        """The last close (CNY/t)."""
        return self.daily.last_close

    @property
    def day_close(self) -> float:
        """The close of the last trading day run (CNY/t): NaN if it had no listed trade,
        as in ``market_daily``; NaN before the first day."""
        return float(self.daily["close"][self.day - 1]) if self.day > 0 else float("nan")

    @property
    def fundamental_price(self) -> float:
        """The fundamental price anchoring firms' expectations (CNY/t)."""
        return self.expectations.fundamental_price

    @property
    def bank_total(self) -> int:
        """Quota held by all firms (t); financial accounts' holdings are left out."""
        return self.registry.firm_total()

    @property
    def reserve_holdings(self) -> int:
        """Quota in the reserve pool (t)."""
        return self.reserve.holdings

    def year_index(self, year: int) -> int:
        """Column of a calendar year in the firm-year arrays."""
        return self.fy.col(year)

    def covered(self, year: int) -> np.ndarray:
        """Mask of firms whose sector is covered in compliance ``year``."""
        return self.firms.covered(year)

    def demand_growth_factor(self, year: int) -> np.ndarray:
        """Each sector's output plan in ``year`` relative to start_year (trend growth)."""
        return self.production.demand_growth_factor(year)

    def annual_quota_estimate(self) -> float:
        """Quota needed for a year of covered emissions at current intensities (t)."""
        today = self.calendar.year[min(self.day, self.calendar.n_days - 1)]
        mask = self.covered(min(int(today), self.scenario.end_year))
        return float((self.firms.base_output * self.firms.intensity)[mask].sum())

    def _reserve_signals(self, compliance_year: int | None = None) -> ReserveSignals:
        return ReserveSignals(
            recent_price=self.daily.recent_mean_price(
                self.scenario.reserve_pool.window_days, self.day),
            holdings=self.reserve.holdings,
            annual_quota=self.annual_quota_estimate(),
            bank=self.bank_total,
            verified_emissions=(0.0 if compliance_year is None
                                else self.fy.verified_total(compliance_year)),
        )

    # --- the schedule -----------------------------------------------------------------

    def step(self) -> None:
        """One trading day, with the month's and year's events at their boundaries."""
        cal = self.calendar
        day = self.day
        year, month = int(cal.year[day]), int(cal.month[day])
        if day % cal.days_per_month == 0:
            self._month_start(year, month)
        elif day in self.plans.days:  # a plan published today: firms revise at once
            self._refresh_expectations(year)
        self._trade_day(day, year)
        if day % cal.days_per_month == cal.days_per_month - 1:
            self._month_end(year, month)
        self.day += 1
        self.datacollector.collect(self)
        if self.day >= cal.n_days:
            self.running = False
            self._finish()

    def run(self, progress: Callable[[int, int], None] | None = None) -> CarbonMarketModel:
        """Run to the end of the calendar; returns the model.

        Args:
            progress: Called after each trading day with the days done and the days in
                the run (a progress bar, a dashboard's job status).
        """
        while self.running:
            self.step()
            if progress is not None:
                progress(self.day, self.calendar.n_days)
        return self

    def _month_start(self, year: int, month: int) -> None:
        sc = self.scenario
        c = sc.compliance
        day = self.day
        if month == 1:
            self.firms.cash_year_start = self.firms.cash.copy()
            if year <= sc.end_year:
                self.mrv.change_accounting(year)
                self.mrv.decide_misreporting(year)
                review_firms(self.agents, year, reviewing=self.firms.entry_year <= year)
                self.firms.refresh_intensity(year)
                self.issuance.issue_absolute_caps(year)
                self.production.decide_output(year, self.allocation)
        previous = year - 1
        if sc.start_year <= previous <= sc.end_year:
            if month == c.verification_month:
                self.mrv.verify(previous, self.daily.year_mean_close(previous, day))
            if month == c.pre_allocation_month:
                self.issuance.pre_allocate(previous)
            if month == c.true_up_month:
                self.issuance.true_up(previous)
        if month in sc.auction.months and year <= sc.end_year:
            self.primary.paid_share_auction(day, year, month)
        self.primary.carry_out(self.reserve_policy.monthly(self._reserve_signals()),
                               day, year)
        self._refresh_expectations(year)

    def _refresh_expectations(self, year: int) -> None:
        """Firms' expected positions, and the fundamental price from the bank they imply.
        In the settlement period nothing is produced any more: the fundamental price
        stays where the last compliance year left it."""
        if isinstance(self.known_allocation, KnownAllocation):
            self.known_allocation.day = self.day
        earlier = self.positions.refresh(year, self.day, self.daily.last_close)
        if year <= self.scenario.end_year:
            bank = float(self.registry.total().sum() + earlier.sum())
            _, path = horizon_path(self, year, bank, self.known_allocation)
            self.expectations.set_fundamental_path(path, int(self.calendar.month[self.day]))

    def _trade_day(self, day: int, year: int) -> None:
        # GTC: the listed book opens with the orders resting since the last close, before
        # the strategies see what those orders still tie up
        book = self.session.open(day)
        state = self.positions.trading_state(day)
        external = self.external
        if external is not None:  # its firms' orders come from outside, not the strategies
            state.can_trade = state.can_trade & ~external.firms
        financial = partial(self._financial_orders, state) if self.financial.n else None
        orders, placed_by = self.strategy_mix.orders(state, financial)
        if external is not None:
            orders, placed_by = external.orders(day, orders, placed_by)
        books = self.session.trade(day, year, orders, book)
        if external is not None:
            external.traded(day, books)
        close = self.daily.last_close
        if self.strategy_mix.learns:
            self.strategy_mix.observe(orders, placed_by, books.traders(), close)
        self.expectations.update(self.firms, close, self.daily.month_ago_close(day))
        self.daily["fundamental_price"][day] = self.expectations.fundamental_price

    def _financial_orders(self, state: TradingState) -> Orders:
        """The financial accounts' orders, from what they know at the open: the previous
        close and its closing quotes, the day's band and the fundamental price."""
        before = self.day - 1
        return self.financial.orders(FinancialDayState(
            previous_close=self.daily.last_close,
            limit_down=state.limit_down,
            limit_up=state.limit_up,
            fundamental_price=self.expectations.fundamental_price,
            tick=self.scenario.market.tick,
            best_bid=float(self.daily["best_bid"][before]) if before >= 0 else np.nan,
            best_ask=float(self.daily["best_ask"][before]) if before >= 0 else np.nan,
        ))

    def _month_end(self, year: int, month: int) -> None:
        sc = self.scenario
        if year <= sc.end_year:
            self.mrv.report_month(year, self.production.produce_month(year))
        if self.compliance.opening_due(year, month):  # the cycle before the run
            self.compliance.settle_opening(self.daily.month_mean_close(
                *self.compliance.opening_month_before(), self.day))
        due = self.compliance.due(year, month)  # several years for a multi-year period
        if due:
            compliance_year = due[-1]
            reference_month = self.compliance.month_before_deadline(compliance_year)
            self.compliance.settle(
                due, self.daily.month_mean_close(*reference_month, self.day))
            self.primary.carry_out(
                self.reserve_policy.after_deadline(self._reserve_signals(compliance_year)),
                self.day, year)
        if month == 12:
            self.reserve_holdings_end[year] = self.reserve.holdings
            self.fy["bank_end"][:, self.year_index(year)] = self.registry.total()

    # --- end of run ---------------------------------------------------------------------

    def _finish(self) -> None:
        self.wall_time = time.perf_counter() - self.started
        self.invariants = check_invariants(self)
        if not self.invariants["ok"]:
            raise InvariantError("; ".join(self.invariants["violations"]))

    def results(self) -> dict[str, Any]:
        """The results tables (see the README's Results section) as pandas DataFrames."""
        if self.running:
            raise RuntimeError("the run has not finished: call run() first")
        return build_tables(self)
