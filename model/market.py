"""CarbonMarketModel: China's national carbon market as a Mesa model.

One step is one trading day. Monthly and annual events fire on calendar boundaries:

- month start: abatement decisions and absolute-cap issuance (January), verification,
  pre-allocation and true-up of the previous compliance year (scenario months),
  paid-share auctions, the reserve pool's monthly check;
- every day: firms place orders on the exchange (listed session, then block session);
  the close is the volume-weighted mean price of the listed trades;
- month end: production and monthly emission reports; at the compliance deadline,
  surrender, offsets, penalties and banking rules; at year end, the bank is recorded.

The hot numeric state lives in numpy arrays owned by the model (``self.firms``, the
registry); each firm is a ``mesa.Agent`` that reads its row (see DESIGN.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np

from etsim.agents.abatement import FirmOptions, draw_options, own_marginal_cost
from etsim.agents.expectations import make_expectations
from etsim.agents.financial import FinancialDayState, FinancialTraders
from etsim.agents.firm import Firm
from etsim.agents.networks import draw_provinces, peer_network
from etsim.agents.production import sector_output_response
from etsim.agents.strategies import BudgetConstrainedStrategy, Orders, TradingState, make_strategy
from etsim.model.allocation import AllocationPolicy, round_quota
from etsim.model.auction import clear_reverse_auction, clear_uniform_price
from etsim.model.calendar import TradingCalendar
from etsim.model.equilibrium import horizon_path
from etsim.model.exchange import OrderBook, RestingOrders
from etsim.model.registry import Registry
from etsim.model.reserve import ReservePool, make_reserve_policy
from etsim.model.scenario import Scenario, load_scenario

AUCTIONEER_ID = -1  # seller id of primary-market (paid share) auctions
RESERVE_POOL_ID = -2  # counterparty id of reserve pool sales and purchases

# Per firm and calendar-year quantities kept by the model (firms x years).
FIRM_YEAR_FLOAT = (
    "output", "emissions", "direct_emissions", "indirect_emissions", "reported_emissions",
    "verified_emissions", "abatement", "abatement_cost", "penalty", "misreporting_fine",
    "auction_cost", "offset_cost", "benchmark", "investment",
)
FIRM_YEAR_INT = (
    "free_allocation", "free_entitled", "pre_allocated", "auction_purchased", "bought", "sold",
    "surrendered", "offsets_used", "bank_end", "shortfall", "deducted", "owed", "withdrawn",
    "borrowed", "misreported",
)


@dataclass
class FirmState:
    """Static attributes and current state of all firms, one entry per firm."""

    firm_id: np.ndarray
    sector: np.ndarray  # sector index
    entry_year: np.ndarray
    base_output: np.ndarray  # expected annual output at the start year (unit/yr)
    baseline_intensity: np.ndarray  # direct tCO2 per unit before abatement
    intensity: np.ndarray  # direct tCO2 per unit this year, after abatement
    abatement_cost_rate: np.ndarray  # CNY per unit of output this year
    indirect_intensity: np.ndarray
    misreports: np.ndarray  # bool: under-reports its emissions this year
    risk_factor: np.ndarray  # weight on the expected fine (misreporting decisions)
    expected_price: np.ndarray  # CNY/t, adaptive towards closes and the fundamental price
    cash: np.ndarray  # CNY, from trades, auctions, penalties, fines, offsets
    annual_emissions: np.ndarray  # t, expected at the start (sizes the carbon budget)
    cash_year_start: np.ndarray  # CNY, cash on 1 January (the year's spending is the change)
    net_sales: np.ndarray  # t sold minus t bought so far (for banking limits)
    pending_deduction: np.ndarray  # t to deduct from the next issuance (penalty rule)
    discount_rate: np.ndarray  # the firm's own yearly discount rate (banking, investment)
    expected_growth: np.ndarray  # expected yearly rate of change of the price
    options: FirmOptions
    margin: np.ndarray | None = None  # operating margin before carbon (CNY/unit)
    output_factor: np.ndarray | None = None  # this year's output as a multiple of plan


class InvariantError(RuntimeError):
    """A run broke one of the invariants of DESIGN.md (quota created or lost, ...)."""


class CarbonMarketModel(mesa.Model):
    """China's national carbon market with its institutions and firms.

    Args:
        scenario: A shipped scenario name, a path to a TOML file, or a Scenario.
        seed: Random seed; None takes the scenario's ``seed``.
        overrides: Dotted-key overrides of scenario values,
            e.g. ``{"penalty.multiple": 7}``.
        book_days: Dates (``"YYYY-MM-DD"``) whose order books are recorded event by
            event for the ``book_events`` table (a date that is no trading day means the
            next trading day); None records one day per compliance year, the 10th
            trading day of the month before its deadline.
        **flat_overrides: The same overrides as keywords with ``__`` for dots
            (``penalty__multiple=7``), so ``mesa.batch_run`` can vary them.
    """

    def __init__(
        self,
        scenario: str | Scenario = "china-2024",
        seed: int | None = None,
        overrides: dict[str, Any] | None = None,
        book_days: list[str] | None = None,
        **flat_overrides: Any,
    ) -> None:
        merged = dict(overrides or {})
        merged.update(flat_overrides)
        self.scenario = load_scenario(scenario, merged or None)
        seed = self.scenario.seed if seed is None else seed
        super().__init__(seed=seed)
        self.seed_value = seed
        self.started = time.perf_counter()
        sc = self.scenario
        self.calendar = TradingCalendar(
            sc.start_year, sc.last_calendar_year, sc.market.trading_days_per_month
        )
        self.years = np.arange(sc.start_year, sc.last_calendar_year + 1)
        self.book_days = self._choose_book_days(book_days)
        self._book_log: list[dict[str, Any]] = []
        self.day = 0
        self._build_sectors()
        self._create_firms()
        self._draw_margins()
        # Financial accounts (none by default: then nothing is drawn from the rng) are
        # registry rows after the firms; account_id maps every row to its id in results.
        self.financial = FinancialTraders.from_config(sc.financial, self.rng,
                                                      offset=self.n_firms)
        self.n_accounts = self.n_firms + self.financial.n
        self.account_id = np.concatenate([
            self.firms.firm_id,
            int(self.firms.firm_id.max(initial=0)) + 1 + np.arange(self.financial.n),
        ]).astype(np.int64)
        self.registry = Registry(self.n_accounts, sc.start_year - 1,
                                 sc.last_calendar_year + 1, n_firms=self.n_firms)
        # GTC orders resting in the listed book since the last close (market.order_expiry)
        self._gtc = sc.market.order_expiry == "gtc"
        self._resting = RestingOrders.empty()
        self.allocation = AllocationPolicy(sc, self.sector_names)
        self.reserve = ReservePool()
        self.reserve_policy = make_reserve_policy(sc.reserve_pool)
        self._assign_strategies()
        self._init_records()
        self._endow_initial_bank()
        self._refresh_intensity(sc.start_year)
        first_quota = self.annual_quota_estimate()
        self.reserve.endow(int(sc.reserve_pool.initial_holdings_share * first_quota))
        self.prev_close = sc.market.initial_price
        self.fundamental_price = sc.market.initial_price
        self.fundamental_growth = 0.0  # p_{t+1} / p_t - 1 on the fundamental path
        self._next_deadline: int | None = None
        self._next_compliance_year = sc.start_year
        self.invariants: dict[str, Any] | None = None
        self._expected_net = np.zeros(self.n_firms)
        self._expected_nearest = np.zeros(self.n_firms)
        # Daily model-level series for mesa.batch_run; attribute names pickle cleanly.
        self.datacollector = mesa.DataCollector(model_reporters={
            "close": "prev_close",
            "fundamental_price": "fundamental_price",
            "bank_total": "bank_total",
            "reserve_holdings": "reserve_holdings",
        })
        self.datacollector.collect(self)

    # --- set-up ------------------------------------------------------------------

    def _choose_book_days(self, book_days: list[str] | None) -> set[int]:
        cal = self.calendar
        if book_days is None:
            c = self.scenario.compliance
            days = set()
            for year in range(self.scenario.start_year, self.scenario.end_year + 1):
                deadline_year, month = year + c.deadline_year_offset, c.deadline_month - 1
                if month == 0:
                    deadline_year, month = deadline_year - 1, 12
                days.add(min(cal.first_day(deadline_year, month) + 9, cal.n_days - 1))
            return days
        chosen = set()
        for text in book_days:
            try:
                wanted = np.datetime64(text, "D")
            except ValueError:
                raise ValueError(f"book_days: '{text}' is not a date YYYY-MM-DD") from None
            index = int(np.searchsorted(cal.date, wanted))
            if index >= cal.n_days:
                raise ValueError(f"book_days: {text} is after the last trading day")
            chosen.add(index)
        return chosen

    def _build_sectors(self) -> None:
        sc = self.scenario
        self.sector_names = sc.simulated_sectors()
        self.sector_configs = [sc.sectors[name] for name in self.sector_names]

    def _create_firms(self) -> None:
        sc = self.scenario
        rng = self.rng
        counts = list(sc.firm_counts().values())
        sector = np.repeat(np.arange(len(counts)), counts)
        n = len(sector)
        self.n_firms = n
        base_output = np.empty(n)
        baseline = np.empty(n)
        for index, config in enumerate(self.sector_configs):
            rows = sector == index
            k = int(rows.sum())
            sigma = config.output_dispersion
            base_output[rows] = config.output_per_firm * np.exp(
                sigma * rng.standard_normal(k) - sigma**2 / 2
            )
            ratio = rng.normal(config.intensity_ratio_mean, config.intensity_ratio_sd, k)
            baseline[rows] = config.benchmark * np.clip(ratio, 0.5, 2.0)
        configs = self.sector_configs
        entry = np.array([configs[s].entry_year for s in sector])
        indirect = np.array([configs[s].indirect_intensity for s in sector])
        misreports = rng.random(n) < sc.mrv.misreporting_share
        risk_factor = np.ones(n)
        if sc.mrv.misreporting_mode == "decision":
            risk_factor = sc.mrv.risk_aversion * np.exp(0.5 * rng.standard_normal(n) - 0.125)
        options = draw_options(configs, sector, rng, sc.investment.hurdle_rate)
        # peers: firms of the same sector and province (agents/networks.py)
        self.province, self.province_names = draw_provinces(
            [c.provinces for c in configs], sector, rng)
        investment = sc.investment
        self.peers = peer_network(sector * len(self.province_names) + self.province,
                                  investment.peer_degree, investment.peer_rewiring, rng)
        trading = sc.trading
        discount_rate = np.clip(
            rng.normal(trading.discount_rate, trading.discount_rate_sd, n), 0.0, 0.5)
        annual_emissions = base_output * baseline
        Firm.create_agents(
            self, n, row=list(range(n)), sector=[self.sector_names[s] for s in sector]
        )
        firm_id = np.array([agent.unique_id for agent in self.agents], dtype=np.int64)
        self.firm_agents = list(self.agents)
        self.firms = FirmState(
            firm_id=firm_id,
            sector=sector,
            entry_year=entry,
            base_output=base_output,
            baseline_intensity=baseline,
            intensity=baseline.copy(),
            abatement_cost_rate=np.zeros(n),
            indirect_intensity=indirect,
            misreports=misreports,
            risk_factor=risk_factor,
            expected_price=np.full(n, sc.market.initial_price),
            cash=np.zeros(n),
            annual_emissions=annual_emissions,
            cash_year_start=np.zeros(n),
            net_sales=np.zeros(n, dtype=np.int64),
            pending_deduction=np.zeros(n, dtype=np.int64),
            discount_rate=discount_rate,
            expected_growth=np.zeros(n),
            options=options,
        )

    def _draw_margins(self) -> None:
        """Each firm's operating margin: its sector's margin share of the product price,
        spread lognormally across firms (sigma 0.5, mean kept)."""
        firms = self.firms
        configs = self.sector_configs
        typical = np.array([c.product_price * c.margin_share for c in configs])[firms.sector]
        firms.margin = typical * np.exp(0.5 * self.rng.standard_normal(self.n_firms) - 0.125)
        firms.output_factor = np.ones(self.n_firms)
        self.product_price_rise = np.zeros((len(configs), len(self.years)))

    def _draw_mix(self, default: str, mix: dict[str, dict[str, float]]
                  ) -> tuple[list[str], np.ndarray]:
        """Names in use and, per firm, the index of its own: its sector's mix (drawn per
        firm by the shares), else ``default``."""
        names = [default]
        chosen = np.zeros(self.n_firms, dtype=np.int64)
        for sector, shares in mix.items():
            if sector not in self.sector_names:
                continue
            for name in shares:
                if name not in names:
                    names.append(name)
            rows = np.flatnonzero(self.firms.sector == self.sector_names.index(sector))
            picks = self.rng.choice(list(shares), size=len(rows), p=list(shares.values()))
            chosen[rows] = [names.index(name) for name in picks]
        return names, chosen

    def _assign_strategies(self) -> None:
        """Each firm's trading strategy and price expectation model."""
        trading = self.scenario.trading
        self.strategy_names, self.firm_strategy = self._draw_mix(
            trading.strategy, trading.strategy_mix)
        self.strategies = [make_strategy(name, trading, self.rng)
                           for name in self.strategy_names]
        self._needs_own_mac = any(s.needs_own_mac for s in self.strategies)
        # only adaptive strategies need each day's fills (a per-day cost otherwise)
        self._strategies_learn = any(
            type(s).observe is not BudgetConstrainedStrategy.observe for s in self.strategies)
        self.expectation_names, self.firm_expectations = self._draw_mix(
            trading.expectations, trading.expectation_mix)
        self.expectation_models = [make_expectations(name, trading)
                                   for name in self.expectation_names]

    def _orders(self, state: TradingState) -> tuple[Orders, np.ndarray]:
        """The day's orders of all strategies in random arrival order, and which
        strategy placed each (financial accounts' orders: ``len(self.strategies)``)."""
        if len(self.strategies) == 1:
            parts = [self.strategies[0].orders(state)]
        else:
            parts = [strategy.orders(state, self.firm_strategy == index)
                     for index, strategy in enumerate(self.strategies)]
        if self.financial.n:
            parts.append(self.financial.orders(self._financial_state(state)))
        placed_by = np.concatenate([np.full(len(p.trader), i) for i, p in enumerate(parts)])
        arrival = self.rng.permutation(len(placed_by))
        orders = Orders(*(np.concatenate([getattr(p, f) for p in parts])[arrival]
                          for f in ("trader", "side", "quantity", "limit_price")))
        return orders, placed_by[arrival]

    def _financial_state(self, state: TradingState) -> FinancialDayState:
        """What the financial accounts know at the open: the previous close and its
        closing quotes, the day's band and the fundamental price."""
        before = self.day - 1
        return FinancialDayState(
            previous_close=self.prev_close,
            limit_down=state.limit_down,
            limit_up=state.limit_up,
            fundamental_price=self.fundamental_price,
            tick=self.scenario.market.tick,
            best_bid=float(self.daily["best_bid"][before]) if before >= 0 else np.nan,
            best_ask=float(self.daily["best_ask"][before]) if before >= 0 else np.nan,
        )

    def _init_records(self) -> None:
        n, n_years, n_days = self.n_firms, len(self.years), self.calendar.n_days
        # abatement capital each firm pays in each calendar year, also past the calendar
        # (an option adopted late is still being built); the schema caps lead times at 20
        self.capital_due = np.zeros((n, n_years + 21))
        self.fy = {name: np.zeros((n, n_years)) for name in FIRM_YEAR_FLOAT}
        self.fy.update({name: np.zeros((n, n_years), dtype=np.int64) for name in FIRM_YEAR_INT})
        self.fy["verified_emissions"][:] = np.nan
        self.verified_known = np.zeros(n_years, dtype=bool)
        self.daily = {
            name: np.full(n_days, np.nan)
            for name in ("open", "high", "low", "close", "vwap", "best_bid", "best_ask",
                         "limit_down", "limit_up", "fundamental_price", "primary_price")
        }
        for name in ("volume", "trades", "block_volume", "orders"):
            self.daily[name] = np.zeros(n_days, dtype=np.int64)
        self._trade_log: list[dict[str, np.ndarray]] = []
        self.payments = {"auctions": 0.0, "reserve_sales": 0.0, "reserve_purchases": 0.0,
                         "penalties": 0.0, "fines": 0.0, "offsets": 0.0}
        self.unsold_carried = 0
        self.reserve_holdings_end: dict[int, int] = {}

    def _endow_initial_bank(self) -> None:
        """Firms of sectors already in the market carry a bank into the first year."""
        sc = self.scenario
        firms = self.firms
        share = np.array([self.sector_configs[s].initial_bank_share for s in firms.sector])
        bank = round_quota(share * firms.base_output * firms.baseline_intensity)
        bank[firms.entry_year >= sc.start_year] = 0
        self.registry.issue(np.arange(self.n_firms), bank, sc.start_year - 1, "issued_free")

    # --- helpers used by policies ---------------------------------------------------

    def year_index(self, year: int) -> int:
        """Column of a calendar year in the firm-year arrays."""
        return year - self.scenario.start_year

    def covered(self, year: int) -> np.ndarray:
        """Mask of firms whose sector is covered in compliance ``year``."""
        return self.firms.entry_year <= year

    def recent_mean_close(self, window_days: int) -> float | None:
        """Mean market price over the last ``window_days`` trading days (None before any):
        the close, or the primary auction's price on a day when one cleared, so that a
        pool selling by auction sees the price its sales make."""
        if self.day == 0:
            return None
        window = slice(max(0, self.day - window_days), self.day)
        primary = self.daily["primary_price"][window]
        prices = np.where(np.isnan(primary), self.daily["close"][window], primary)
        return float(np.mean(prices))

    def month_mean_close(self, year: int, month: int) -> float:
        """Mean close of a month (the initial price before the first day)."""
        if year < self.scenario.start_year:
            return self.scenario.market.initial_price
        first = self.calendar.first_day(year, month)
        closes = self.daily["close"][first: min(first + self.calendar.days_per_month, self.day)]
        return float(np.mean(closes)) if len(closes) else self.prev_close

    def annual_quota_estimate(self) -> float:
        """Quota needed for a year of covered emissions at current intensities (t)."""
        today = self.calendar.year[min(self.day, self.calendar.n_days - 1)]
        mask = self.covered(min(int(today), self.scenario.end_year))
        return float((self.firms.base_output * self.firms.intensity)[mask].sum())

    def total_bank(self) -> int:
        """Quota held by all firms (t); financial accounts' holdings are left out."""
        return self.registry.firm_total()

    @property
    def bank_total(self) -> int:
        """Quota held by all firms (t), for the data collector."""
        return self.total_bank()

    @property
    def reserve_holdings(self) -> int:
        """Quota in the reserve pool (t)."""
        return self.reserve.holdings

    def verified_total(self, year: int) -> float:
        """Verified emissions of all firms in a compliance year (t)."""
        return float(np.nansum(self.fy["verified_emissions"][:, self.year_index(year)]))

    def _deadline_day(self, compliance_year: int) -> int:
        c = self.scenario.compliance
        return self.calendar.last_day(compliance_year + c.deadline_year_offset, c.deadline_month)

    # --- the step --------------------------------------------------------------------

    def step(self) -> None:
        """One trading day, with the month's and year's events at their boundaries."""
        cal = self.calendar
        day = self.day
        year, month = int(cal.year[day]), int(cal.month[day])
        first_of_month = day % cal.days_per_month == 0
        if first_of_month:
            self._month_start(year, month)
        self._trade_day(day)
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

    # --- monthly and annual events --------------------------------------------------------

    def _month_start(self, year: int, month: int) -> None:
        sc = self.scenario
        c = sc.compliance
        if month == 1:
            self.firms.cash_year_start = self.firms.cash.copy()
        if month == 1 and year <= sc.end_year:
            self._decide_misreporting(year)
            self.agents.select(lambda a: a.model.firms.entry_year[a.row] <= year).shuffle_do(
                "review_abatement", year
            )
            self._refresh_intensity(year)
            self._issue_absolute_caps(year)
            self._decide_output(year)
        previous = year - 1
        if sc.start_year <= previous <= sc.end_year:
            if month == c.verification_month:
                self._verify(previous)
            if month == c.pre_allocation_month:
                self._pre_allocate(previous)
            if month == c.true_up_month:
                self._true_up(previous)
        if month in sc.auction.months and year <= sc.end_year:
            self._paid_share_auction(year, month)
        self.reserve_policy.monthly(self, year, month)
        self._refresh_expectations(year, month)

    def _month_end(self, year: int, month: int) -> None:
        sc = self.scenario
        if year <= sc.end_year:
            self._produce(year, month)
        compliance_year = year - sc.compliance.deadline_year_offset
        if month == sc.compliance.deadline_month and sc.start_year <= compliance_year:
            if compliance_year <= sc.end_year:
                self._comply(compliance_year)
                self.reserve_policy.after_deadline(self, compliance_year)
        if month == 12:
            self.reserve_holdings_end[year] = self.reserve.holdings
            self.fy["bank_end"][:, self.year_index(year)] = self.registry.total()

    def _refresh_intensity(self, year: int) -> None:
        factor, cost_share = self.firms.options.intensity_factor_and_cost(year)
        self.firms.intensity = self.firms.baseline_intensity * factor
        self.firms.abatement_cost_rate = self.firms.baseline_intensity * cost_share

    def _decide_output(self, year: int) -> None:
        """January: each sector's output response to the carbon cost of output at the
        firms' expected prices (see agents.production)."""
        firms = self.firms
        plan = self._planned_output(year)
        covered = self.covered(year)
        for sector, config in enumerate(self.sector_configs):
            rows = np.flatnonzero((firms.sector == sector) & covered)
            if not len(rows):
                continue
            free = self.allocation.marginal_free_quota(sector, year, firms.intensity[rows])
            net_cost = firms.expected_price[rows] * (firms.intensity[rows] - free)
            factor, rise = sector_output_response(
                plan[rows], net_cost, firms.margin[rows], config.product_price,
                config.demand_elasticity)
            firms.output_factor[rows] = factor
            self.product_price_rise[sector, self.year_index(year)] = rise

    def demand_growth_factor(self, year: int) -> np.ndarray:
        """Each sector's output plan in ``year`` relative to start_year (trend growth)."""
        return np.array([(1 + c.demand_growth) ** (year - self.scenario.start_year)
                         for c in self.sector_configs])

    def _planned_output(self, year: int) -> np.ndarray:
        """Each firm's output plan for ``year`` before carbon costs (trend growth)."""
        return self.firms.base_output * self.demand_growth_factor(year)[self.firms.sector]

    def _produce(self, year: int, month: int) -> None:
        """Monthly output, emissions and the MRV report of each covered firm."""
        sc = self.scenario
        firms = self.firms
        rng = self.rng
        col = self.year_index(year)
        configs = self.sector_configs
        sector_shock = np.array([rng.normal(0, c.sector_shock_sd) for c in configs])
        idio_sd = np.array([c.output_shock_sd for c in configs])[firms.sector]
        idio = rng.normal(0.0, 1.0, self.n_firms) * idio_sd
        factor = np.clip((1 + sector_shock[firms.sector]) * (1 + idio), 0.1, 3.0)
        covered = self.covered(year)
        output = np.where(
            covered, self._planned_output(year) / 12 * firms.output_factor * factor, 0.0)
        direct = output * firms.intensity
        indirect = output * firms.indirect_intensity
        emissions = direct + indirect if sc.scope.include_indirect else direct
        reported = np.where(firms.misreports, emissions * (1 - sc.mrv.misreporting_bias), emissions)
        fy = self.fy
        fy["output"][:, col] += output
        fy["direct_emissions"][:, col] += direct
        fy["indirect_emissions"][:, col] += indirect
        fy["emissions"][:, col] += emissions
        fy["reported_emissions"][:, col] += reported
        fy["abatement"][:, col] += output * (firms.baseline_intensity - firms.intensity)
        fy["abatement_cost"][:, col] += output * firms.abatement_cost_rate

    def _decide_misreporting(self, year: int) -> None:
        """Who under-reports this year: a fixed share, or each firm's own weighing of the
        gain (the quota it need not surrender) against the expected fine and the hidden
        quota it must surrender when found (Becker's crime-and-punishment rule)."""
        mrv = self.scenario.mrv
        if mrv.misreporting_mode == "decision":
            caught = mrv.inspection_probability * mrv.detection_probability
            expected_cost = caught * (mrv.fine_multiple + 1.0) * self.firms.risk_factor
            self.firms.misreports = expected_cost < 1.0
        self.fy["misreported"][:, self.year_index(year)] = self.firms.misreports

    def _inspected(self, year: int, covered: np.ndarray) -> np.ndarray:
        """Firms inspected for a year's report: at random, or risk-based with the same
        budget (the covered firms whose reported intensity fell most since their last
        verified year)."""
        mrv = self.scenario.mrv
        if mrv.inspection_selection == "random":
            return self.rng.random(self.n_firms) < mrv.inspection_probability
        col = self.year_index(year)
        fy = self.fy
        with np.errstate(divide="ignore", invalid="ignore"):
            reported = fy["reported_emissions"][:, col] / fy["output"][:, col]
            score = np.full(self.n_firms, np.inf)
            if col > 0:
                before = fy["verified_emissions"][:, col - 1] / fy["output"][:, col - 1]
                score = reported / before
        score = np.where(np.isfinite(score), score, 1.0 + self.rng.random(self.n_firms))
        budget = int(round(mrv.inspection_probability * covered.sum()))
        order = np.lexsort((self.rng.random(self.n_firms), np.where(covered, score, np.inf)))
        inspected = np.zeros(self.n_firms, dtype=bool)
        inspected[order[:budget]] = True
        return inspected

    def _verify(self, year: int) -> None:
        """Verified emissions of a compliance year, with inspections of the reports."""
        mrv = self.scenario.mrv
        col = self.year_index(year)
        covered = self.covered(year)
        reported = self.fy["reported_emissions"][:, col]
        true = self.fy["emissions"][:, col]
        inspected = self._inspected(year, covered)
        found = inspected & (self.rng.random(self.n_firms) < mrv.detection_probability)
        detected = covered & found & self.fy["misreported"][:, col].astype(bool)
        verified = np.where(detected, true, reported)
        hidden = true - reported
        fine = np.where(detected, mrv.fine_multiple * self._year_mean_close(year) * hidden, 0.0)
        self.fy["verified_emissions"][:, col] = np.where(covered, np.round(verified), np.nan)
        self.fy["misreporting_fine"][:, col] = fine
        self.fy["benchmark"][:, col] = [
            self.allocation.benchmark(s, year) for s in self.firms.sector
        ]
        self.firms.cash -= fine
        self.payments["fines"] += float(fine.sum())
        self.verified_known[col] = True

    def _year_mean_close(self, year: int) -> float:
        first = self.calendar.first_day(year, 1)
        closes = self.daily["close"][first: min(first + self.calendar.days_per_year, self.day)]
        return float(np.mean(closes)) if len(closes) else self.prev_close

    def _issue_free(self, rows: np.ndarray, amounts: np.ndarray, year: int) -> None:
        """Issue free quota of vintage ``year``, net of penalty deductions."""
        amounts = round_quota(amounts)
        col = self.year_index(year)
        firms = self.firms
        deducted = np.minimum(firms.pending_deduction[rows], amounts)
        firms.pending_deduction[rows] -= deducted
        issued = amounts - deducted
        self.registry.issue(rows, issued, year, "issued_free")
        self.fy["free_entitled"][rows, col] += amounts
        self.fy["free_allocation"][rows, col] += issued
        self.fy["deducted"][rows, col] += deducted

    def _withhold_for_reserve(self, amounts: np.ndarray, year: int) -> np.ndarray:
        """Take the bank-based rule's pending intake out of an issuance, pro rata."""
        pool = self.reserve
        total = float(amounts.sum())
        if pool.withhold_pending <= 0 or total <= 0:
            return amounts
        kept = round_quota(amounts * (1 - min(pool.withhold_pending, total) / total))
        withheld = int(round_quota(amounts).sum() - kept.sum())
        pool.withhold_pending = max(0, pool.withhold_pending - withheld)
        pool.add(year, withheld)
        return kept.astype(float)

    def _previous_basis(self, year: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Verified emissions and output of the year before ``year`` (estimated when the
        year before was not simulated or the firm was not covered)."""
        firms = self.firms
        estimate_output = firms.base_output[rows]
        estimate_emissions = estimate_output * firms.baseline_intensity[rows]
        prev = year - 1
        if prev < self.scenario.start_year:
            return estimate_emissions, estimate_output
        col = self.year_index(prev)
        verified = self.fy["verified_emissions"][rows, col]
        output = self.fy["output"][rows, col]
        known = ~np.isnan(verified) & (output > 0)
        return (np.where(known, verified, estimate_emissions),
                np.where(known, output, estimate_output))

    def _sector_rows(self, sector: int, year: int) -> np.ndarray:
        return np.flatnonzero((self.firms.sector == sector) & self.covered(year))

    def _pre_allocate(self, year: int) -> None:
        for sector in range(len(self.sector_names)):
            rows = self._sector_rows(sector, year)
            if not len(rows):
                continue
            verified, output = self._previous_basis(year, rows)
            amounts = self.allocation.pre_allocation(sector, year, verified, output)
            if amounts.any():
                self._issue_free(rows, amounts, year)
                self.fy["pre_allocated"][rows, self.year_index(year)] += round_quota(amounts)

    def _true_up(self, year: int) -> None:
        """Final free quota from verified data; the difference to what was issued."""
        col = self.year_index(year)
        for sector in range(len(self.sector_names)):
            rows = self._sector_rows(sector, year)
            if not len(rows) or self.allocation.rule(sector, year).issued_at_year_start:
                continue
            output = self.fy["output"][rows, col]
            verified = self.fy["verified_emissions"][rows, col]
            rule_quota = self.allocation.rule_quota(sector, year, output, verified)
            self._set_aside(rule_quota, year)
            final = rule_quota * self.allocation.free_share(sector, year)
            final = self._withhold_for_reserve(final, year)
            delta = round_quota(final) - self.fy["free_entitled"][rows, col]
            more = delta > 0
            if more.any():
                self._issue_free(rows[more], delta[more].astype(float), year)
            less = delta < 0
            if less.any():
                self._withdraw(rows[less], -delta[less], year)

    def _withdraw(self, rows: np.ndarray, amounts: np.ndarray, year: int) -> None:
        """Recover over-issued pre-allocation; what the firm no longer holds is owed.

        When the final entitlement falls below the penalty deduction already taken from
        it (output collapsed), the part of the deduction not covered goes back to
        pending, to be taken from the next issuance, instead of being withdrawn from
        quota the firm holds for other reasons."""
        col = self.year_index(year)
        fy = self.fy
        uncovered = np.minimum(np.maximum(amounts - fy["free_allocation"][rows, col], 0),
                               fy["deducted"][rows, col])
        if uncovered.any():
            self.firms.pending_deduction[rows] += uncovered
            fy["deducted"][rows, col] -= uncovered
            fy["free_entitled"][rows, col] -= uncovered
            amounts = amounts - uncovered
        taken = self.registry.take(rows, amounts, self.registry.vintages[-1], "cancelled")
        got = taken.sum(axis=1)
        self.fy["withdrawn"][rows, col] += got
        self.fy["owed"][rows, col] += amounts - got
        self.fy["free_entitled"][rows, col] -= amounts
        self.fy["free_allocation"][rows, col] -= got

    def _set_aside(self, rule_quota: np.ndarray, year: int) -> None:
        share = self.scenario.reserve_pool.set_aside_share
        if share > 0:
            self.reserve.add(year, int(round_quota(rule_quota * share).sum()))

    def _issue_absolute_caps(self, year: int) -> None:
        """In January, sectors under an absolute cap get their year's quota in full."""
        for sector in range(len(self.sector_names)):
            rule = self.allocation.rule(sector, year)
            rows = self._sector_rows(sector, year)
            if not rule.issued_at_year_start or not len(rows):
                continue
            if not self.allocation.has_cap_basis(sector):
                self._fix_cap_basis(sector, year, rows)
            cap, shares = self.allocation.sector_cap(sector, year)
            members = np.flatnonzero(self.firms.sector == sector)
            share_of = dict(zip(members.tolist(), shares, strict=True))
            rule_quota = cap * np.array([share_of[r] for r in rows])
            self._set_aside(rule_quota, year)
            final = rule_quota * self.allocation.free_share(sector, year)
            self._issue_free(rows, self._withhold_for_reserve(final, year), year)

    def _fix_cap_basis(self, sector: int, year: int, rows: np.ndarray) -> None:
        """The cap starts at the sector's latest full-year emissions; shares follow
        historical output x benchmark (mean output of the simulated years before)."""
        members = np.flatnonzero(self.firms.sector == sector)
        prev = year - 1
        if prev >= self.scenario.start_year:
            cols = slice(0, self.year_index(prev) + 1)
            history = self.fy["output"][members, cols]
            years_covered = np.maximum((history > 0).sum(axis=1), 1)
            mean_output = history.sum(axis=1) / years_covered
            mean_output = np.where(mean_output > 0, mean_output, self.firms.base_output[members])
            base = float(self.fy["reported_emissions"][members, self.year_index(prev)].sum())
        else:
            mean_output = self.firms.base_output[members]
            base = 0.0
        if base <= 0:
            base = float((self.firms.base_output * self.firms.intensity)[members].sum())
        shares = mean_output * self.allocation.benchmark(sector, year)
        self.allocation.set_cap_basis(sector, year, base, shares)

    # --- auctions and the reserve pool ------------------------------------------------

    def _bids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sealed bids of firms short of quota over all open compliance years (auctioned
        quota is of the current vintage, so it serves this year's obligation and later
        ones): their deficit at what they expect to pay on the exchange instead, plus the
        urgency premium."""
        state = self._trading_state(self.day)
        state.position = self.registry.total() + self._expected_net
        committed = self._resting_commitments()
        if committed is not None:  # bids and asks resting on the exchange count as filled
            state.position = state.position + committed[0] - committed[1]
        premium = self.scenario.trading.buyer_premium
        value = np.minimum(state.expected_price * (1 + premium * state.urgency),
                           state.penalty_price)
        wanted = np.floor(np.maximum(-state.position, 0.0))
        affordable = np.floor(np.maximum(state.budget, 0.0) / np.maximum(value, 0.01))
        quantity = np.minimum(wanted, affordable).astype(np.int64)
        bidders = np.flatnonzero(state.can_trade & (quantity > 0))
        return bidders, quantity[bidders], np.round(value[bidders], 2)

    def _sell_primary(self, volume: int, reserve_price: float, vintage: int, flow: str,
                      counterparty: int) -> int:
        """Sell newly issued quota in a uniform-price auction; returns tonnes unsold."""
        bidders, quantity, prices = self._bids()
        max_share = self.scenario.auction.max_bid_share
        cap = None if max_share is None else max(1, int(max_share * volume))
        result = clear_uniform_price(quantity, prices, volume, reserve_price,
                                     max_per_bidder=cap, bidders=bidders)
        won = result.filled > 0
        winners, filled = bidders[won], result.filled[won]
        if len(winners):
            self.registry.issue(winners, filled, vintage, flow)
            if flow == "auctioned":
                self.fy["auction_purchased"][winners, self.year_index(vintage)] += filled
            paid = filled * result.price
            self.firms.cash[winners] -= paid
            self._log_trades(winners, np.full(len(winners), counterparty), result.price, filled,
                             "auction" if counterparty == AUCTIONEER_ID else "reserve")
        if result.sold:
            self.daily["primary_price"][self.day] = result.price
        return result.unsold

    def _paid_share_auction(self, year: int, month: int) -> None:
        """Sell this auction's part of the year's paid share of quota."""
        n_auctions = len(self.scenario.auction.months)
        volume = 0.0
        for sector in range(len(self.sector_names)):
            share = self.allocation.paid_share(sector, year)
            rows = self._sector_rows(sector, year)
            if share <= 0 or not len(rows):
                continue
            output = self._projected_output(year)[rows]
            projected = output * self.firms.intensity[rows]
            volume += share * self.allocation.rule_quota(sector, year, output, projected).sum()
        volume = int(volume / n_auctions) + self.unsold_carried
        self.unsold_carried = 0
        if volume <= 0:
            return
        unsold = self._sell_primary(volume, self.scenario.auction.reserve_price, year,
                                    "auctioned", AUCTIONEER_ID)
        if unsold:
            auction = self.scenario.auction
            last_auction = year == self.scenario.end_year and month == auction.months[-1]
            rule = auction.unsold
            if rule == "carry" and not last_auction:
                self.unsold_carried = unsold
            elif rule == "reserve":
                self.reserve.add(year, unsold)
            # cancelled otherwise: it was never issued, so nothing is booked

    def auction_from_reserve(self, volume: int, reserve_price: float) -> None:
        """Release quota from the reserve pool by auction (vintage of the current year)."""
        year = int(self.calendar.year[self.day])
        vintage = min(year, self.scenario.end_year)
        volume = min(volume, self.reserve.holdings)
        if volume <= 0:
            return
        unsold = self._sell_primary(volume, reserve_price, vintage, "reserve_out",
                                    RESERVE_POOL_ID)
        self.reserve.release(year, volume - unsold)

    def buy_back_into_reserve(self, volume: int, ceiling_price: float) -> None:
        """The pool buys quota back from firms in a reverse auction."""
        state = self._trading_state(self.day)
        year = int(self.calendar.year[self.day])
        offered = np.minimum(np.floor(np.maximum(state.position, 0)), state.sellable)
        sellers = np.flatnonzero(state.can_trade & (offered >= 1))
        if not len(sellers):
            return
        asks = np.round(state.expected_price[sellers] * (1 - self.scenario.trading.seller_discount),
                        2)
        result = clear_reverse_auction(offered[sellers].astype(np.int64), asks, volume,
                                       ceiling_price)
        won = result.filled > 0
        rows, filled = sellers[won], result.filled[won]
        if not len(rows):
            return
        self.registry.take(rows, filled, self.registry.vintages[-1], "reserve_in")
        self.firms.cash[rows] += filled * result.price
        self.payments["reserve_purchases"] += float((filled * result.price).sum())
        self.reserve.add_bought_back(year, int(filled.sum()))
        self._log_trades(np.full(len(rows), RESERVE_POOL_ID), rows, result.price, filled,
                         "reserve")

    # --- compliance ----------------------------------------------------------------------

    def _comply(self, year: int) -> None:
        """Surrender at the deadline: offsets, quota, borrowing, penalties, banking."""
        sc = self.scenario
        c = sc.compliance
        col = self.year_index(year)
        rows = np.flatnonzero(self.covered(year))
        fy = self.fy
        verified = np.nan_to_num(fy["verified_emissions"][rows, col])
        obligation = np.round(verified).astype(np.int64) + fy["owed"][rows, col]
        caps = np.array([self.sector_configs[s].allocation.deficit_cap
                         for s in self.firms.sector[rows]], dtype=object)
        capped = np.array([cap is not None for cap in caps])
        if capped.any():
            # on the entitlement, so a deduction of last year's shortfall still bites
            limit = fy["free_entitled"][rows, col] + np.round(
                np.array([cap or 0.0 for cap in caps], dtype=float) * verified
            ).astype(np.int64)
            obligation = np.where(capped, np.minimum(obligation, limit), obligation)
        month_before = (c.deadline_month - 2) % 12 + 1
        year_before = year + c.deadline_year_offset - (1 if c.deadline_month == 1 else 0)
        reference_price = self.month_mean_close(year_before, month_before)

        offsets = np.zeros(len(rows), dtype=np.int64)
        if c.offset_share > 0 and c.offset_price < reference_price:
            wanted = np.floor(c.offset_share * obligation).astype(np.int64)
            supply = int(c.offset_supply_share * verified.sum())
            if wanted.sum() > supply:
                wanted = np.floor(wanted * (supply / wanted.sum())).astype(np.int64)
            offsets = wanted
            self.firms.cash[rows] -= offsets * c.offset_price
            fy["offset_cost"][rows, col] = offsets * c.offset_price
            self.payments["offsets"] += float((offsets * c.offset_price).sum())
        need = obligation - offsets
        surrendered = self.registry.take(rows, need, year, "surrendered").sum(axis=1)
        short = need - surrendered
        if c.borrowing and short.any() and year < sc.end_year:
            borrowed = self._borrow(rows, short, obligation, year)
            surrendered += borrowed
            short -= borrowed
            fy["borrowed"][rows, col] = borrowed
        penalty = sc.penalty.multiple * reference_price * short
        self.firms.cash[rows] -= penalty
        self.payments["penalties"] += float(penalty.sum())
        if sc.penalty.deduct_shortfall:
            self.firms.pending_deduction[rows] += short
        fy["surrendered"][rows, col] = surrendered
        fy["offsets_used"][rows, col] = offsets
        fy["shortfall"][rows, col] = short
        fy["penalty"][rows, col] = penalty
        self._apply_banking_rules(year)

    def _borrow(self, rows: np.ndarray, short: np.ndarray, obligation: np.ndarray,
                year: int) -> np.ndarray:
        """Cover part of a gap with next year's quota (China 2021-22): held quota of the
        next vintage first, the rest advanced from the firm's next free allocation (it
        counts as already issued there, so the true-up pays the loan back)."""
        c = self.scenario.compliance
        eligible = short >= c.borrowing_threshold * np.maximum(obligation, 1)
        wanted = np.where(eligible, np.floor(c.borrowing_share * short), 0).astype(np.int64)
        nxt = year + 1
        held = self.registry.take(rows, wanted, nxt, "surrendered", from_vintage=nxt)
        advance = wanted - held.sum(axis=1)
        if advance.any():
            self.registry.issue(rows, advance, nxt, "issued_free")
            self.registry.take(rows, advance, nxt, "surrendered", from_vintage=nxt)
            col = self.year_index(nxt)
            self.fy["free_entitled"][rows, col] += advance
            self.fy["free_allocation"][rows, col] += advance
        return wanted

    def _apply_banking_rules(self, year: int) -> None:
        """After a deadline: cancel quota of vintages up to ``year`` that may not be banked."""
        c = self.scenario.compliance
        everyone = np.arange(self.n_firms)
        if not c.banking:
            self.registry.take(everyone, self.registry.usable(year), year, "cancelled")
            if self.financial.n:  # expired vintages are worthless in any account
                rows = self.financial.rows
                held = self.registry.holdings[rows, : self.registry.column(year) + 1]
                taken = self.registry.take(rows, held.sum(axis=1), year, "cancelled")
                self.financial.holdings -= taken.sum(axis=1)
        elif c.banking_limit_t is not None:
            allowed = c.banking_limit_t + c.banking_net_sales_multiple * np.maximum(
                self.firms.net_sales, 0
            )
            excess = np.maximum(self.registry.usable(year) - np.floor(allowed), 0)
            self.registry.take(everyone, excess.astype(np.int64), year, "cancelled")

    # --- trading ------------------------------------------------------------------------

    def _projected_output(self, year: int) -> np.ndarray:
        """Expected annual output in ``year``: the year so far scaled up, or the plan."""
        plan = self._planned_output(year) * self.firms.output_factor
        col = self.year_index(year)
        months_done = self._months_done(year)
        if months_done == 0:
            return plan
        return self.fy["output"][:, col] * 12 / months_done

    def _months_done(self, year: int) -> int:
        current = self.calendar.year[min(self.day, self.calendar.n_days - 1)]
        if year < current:
            return 12
        if year > current:
            return 0
        return (self.day % self.calendar.days_per_year) // self.calendar.days_per_month

    def _refresh_expectations(self, year: int, month: int) -> None:
        """Each firm's expected net position excluding holdings, for every compliance
        year whose deadline has not passed (quota still to come minus obligations), and
        the fundamental price that anchors price expectations."""
        sc = self.scenario
        net = np.zeros(self.n_firms)
        earlier = np.zeros(self.n_firms)
        nearest = None
        self._next_deadline = None
        for compliance_year in range(sc.start_year, min(year, sc.end_year) + 1):
            deadline = self._deadline_day(compliance_year)
            if deadline < self.day:
                continue
            balance = self._expected_balance(compliance_year)
            if self._next_deadline is None:
                self._next_deadline, self._next_compliance_year = deadline, compliance_year
                nearest = balance
            net += balance
            if compliance_year < year:
                earlier += balance
        # Firms trade for the nearest deadline: quota of later years comes after it, so
        # a firm short for it buys even when later years promise a surplus. Later years
        # set the price at which a surplus is sold (see TradingState.short_later).
        self._expected_net = net
        self._expected_nearest = net if nearest is None else nearest
        # In the settlement period nothing is produced any more: the fundamental price
        # stays where the last compliance year left it.
        if year <= sc.end_year:
            bank = float(self.registry.total().sum() + earlier.sum())
            _, path = horizon_path(self, year, bank)
            self.fundamental_price = float(path[0])
            # the growth firms expect from this year to the next (Hotelling while banked)
            self.fundamental_growth = (float(path[1] / path[0] - 1)
                                       if len(path) > 1 and path[0] > 0 else 0.0)

    def _update_expected_price(self) -> None:
        """Each expectation model updates its firms' expected prices after the close."""
        month_ago = float(self.daily["close"][max(self.day - self.calendar.days_per_month, 0)])
        if np.isnan(month_ago):
            month_ago = self.prev_close
        expected = self.firms.expected_price
        fundamental_growth = self.fundamental_growth
        if len(self.expectation_models) == 1:
            model = self.expectation_models[0]
            self.firms.expected_price = model.update(
                expected, self.prev_close, month_ago, self.fundamental_price)
            self.firms.expected_growth[:] = model.growth(
                self.prev_close, month_ago, fundamental_growth)
            return
        for index, model in enumerate(self.expectation_models):
            rows = self.firm_expectations == index
            expected[rows] = model.update(expected[rows], self.prev_close, month_ago,
                                          self.fundamental_price)
            self.firms.expected_growth[rows] = model.growth(
                self.prev_close, month_ago, fundamental_growth)

    def _expected_balance(self, year: int) -> np.ndarray:
        """Quota still to be issued for ``year`` minus its obligation (t)."""
        col = self.year_index(year)
        covered = self.covered(year)
        fy = self.fy
        if self.verified_known[col]:
            obligation = np.nan_to_num(fy["verified_emissions"][:, col]) + fy["owed"][:, col]
        else:
            months = max(self._months_done(year), 1)
            so_far = fy["reported_emissions"][:, col]
            projected = self.firms.base_output * self.firms.intensity
            obligation = np.where(so_far > 0, so_far * 12 / months, projected)
        output = self._projected_output(year)
        to_come = np.zeros(self.n_firms)
        for sector in range(len(self.sector_names)):
            rows = self._sector_rows(sector, year)
            if not len(rows) or self.allocation.rule(sector, year).issued_at_year_start:
                continue
            if self.scenario.compliance.true_up_month <= self._month_of(year + 1):
                continue  # trued up already: all of it has come
            final = self.allocation.rule_quota(sector, year, output[rows], obligation[rows])
            final *= self.allocation.free_share(sector, year)
            to_come[rows] = final - fy["free_entitled"][rows, col]
        offsets = self._offset_plan_for(obligation)
        return np.where(covered, to_come + offsets - obligation, 0.0)

    def _offset_plan_for(self, obligation: np.ndarray) -> np.ndarray:
        """Offsets a firm counts on: its share of the scarce CCER supply, when cheaper."""
        c = self.scenario.compliance
        if c.offset_price >= self.prev_close:
            return np.zeros_like(obligation)
        # rounded down at the deadline, so count on a little less
        return np.floor(0.99 * min(c.offset_share, c.offset_supply_share) * obligation)

    def _month_of(self, year: int) -> int:
        """Months of ``year`` that have begun (0 before it, 13 after it)."""
        current = int(self.calendar.year[min(self.day, self.calendar.n_days - 1)])
        if year > current:
            return 0
        if year < current:
            return 13
        return int(self.calendar.month[self.day])

    def _resting_commitments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Per firm, what its GTC orders resting in the listed book tie up: tonnes bid,
        tonnes offered and the cash the bids may cost; None when nothing rests."""
        if not len(self._resting):
            return None
        buy_t, sell_t, value = self._resting.committed(self.n_accounts)
        n = self.n_firms
        return buy_t[:n], sell_t[:n], value[:n]

    def _trading_state(self, day: int) -> TradingState:
        sc = self.scenario
        firms = self.firms
        holdings = self.registry.total()
        # only vintages up to the nearest compliance year count for its deadline
        usable = self.registry.usable(min(self._next_compliance_year, sc.end_year))
        position = usable + self._expected_nearest
        sellable = holdings.astype(float)
        budget = self._carbon_budget()
        committed = self._resting_commitments()
        if committed is not None:
            # resting GTC orders count as if filled: what they offer cannot be offered
            # again, and what they bid for is no longer wanted nor spendable
            buy_t, sell_t, value = committed
            holdings = holdings + buy_t - sell_t
            position = position + buy_t - sell_t
            sellable = sellable - sell_t
            budget = budget - value
        if self._next_deadline is None:
            urgency = 0.0
        else:
            days_left = max(self._next_deadline - day, 0)
            urgency = max(0.0, 1.0 - days_left / self.calendar.days_per_year)
            urgency = urgency ** sc.trading.urgency_exponent
        year = int(self.calendar.year[day])
        limit_down, limit_up = self._listed_band()
        return TradingState(
            position=position,
            short_later=holdings + self._expected_net < 0,
            sellable=sellable,
            urgency=np.full(self.n_firms, urgency),
            expected_price=firms.expected_price,
            expected_growth=firms.expected_growth,
            discount_rate=firms.discount_rate,
            penalty_price=sc.penalty.multiple * firms.expected_price,
            budget=budget,
            can_trade=firms.entry_year <= min(year, sc.end_year),
            limit_down=limit_down,
            limit_up=limit_up,
            # firms expect the market to go on after the scenario's last deadline (see
            # trading.foresight_years), so a bank keeps its value to the end
            banking=sc.compliance.banking,
            own_mac=(own_marginal_cost(
                firms.options, firms.annual_emissions, -position)
                if self._needs_own_mac else None),
        )

    def _listed_band(self) -> tuple[float, float]:
        """Today's price limits of the listed session: the previous close -/+ the limit."""
        limit = self.scenario.market.price_limit
        return (round(self.prev_close * (1 - limit), 2),
                round(self.prev_close * (1 + limit), 2))

    def _carbon_budget(self) -> np.ndarray:
        """What each firm may still spend on quota this year (CNY): ``credit_years`` of
        its emissions at its expected price, plus what it has earned (or minus what it
        has spent) on carbon since 1 January. Production revenue is not modelled, so the
        budget renews each year instead of draining."""
        firms = self.firms
        allowance = self.scenario.trading.credit_years * firms.annual_emissions
        return allowance * firms.expected_price + (firms.cash - firms.cash_year_start)

    def _trade_day(self, day: int) -> None:
        sc = self.scenario
        market = sc.market
        record = day in self.book_days
        # GTC: the listed book opens with the orders resting since the last close, before
        # the strategies see what those orders still tie up
        book = self._open_listed_book(record) if self._gtc else None
        state = self._trading_state(day)
        orders, placed_by = self._orders(state)
        # Orders of block size go to the block session first (+/-30%); what they leave
        # unfilled goes on to the listed session in an order below block size.
        large = orders.quantity >= market.block_min_t
        listed_quantity = orders.quantity.copy()
        block = None
        if large.any():
            block = OrderBook(round(self.prev_close * (1 - market.block_price_limit), 2),
                              round(self.prev_close * (1 + market.block_price_limit), 2),
                              market.tick, kind="block", record=record)
            ids = block.submit_many(orders.trader[large], orders.side[large],
                                    orders.quantity[large], orders.limit_price[large])
            left = np.array([block.remaining(i) if i >= 0 else q
                             for i, q in zip(ids.tolist(), orders.quantity[large].tolist(),
                                             strict=True)], dtype=np.int64)
            listed_quantity[large] = np.minimum(left, market.block_min_t - 1)
        send = listed_quantity >= 1
        if book is None:
            book = OrderBook(state.limit_down, state.limit_up, market.tick, kind="continuous",
                             record=record)
            book.submit_many(orders.trader[send], orders.side[send], listed_quantity[send],
                             orders.limit_price[send])
        else:
            # firms' listed orders are GTC; financial accounts' are day orders
            book.submit_many(orders.trader[send], orders.side[send], listed_quantity[send],
                             orders.limit_price[send], gtc=orders.trader[send] < self.n_firms,
                             max_age=market.gtc_max_age_days or None)
            self._resting = book.resting_gtc()
        daily = self.daily
        trades = book.trades()
        qty = trades["quantity"]
        daily["limit_down"][day], daily["limit_up"][day] = state.limit_down, state.limit_up
        daily["orders"][day] = len(orders.trader)
        if len(qty):
            prices = trades["price"]
            vwap = float(np.round((prices * qty).sum() / qty.sum(), 2))
            daily["open"][day], daily["high"][day] = prices[0], prices.max()
            daily["low"][day], daily["vwap"][day] = prices.min(), vwap
            self.prev_close = vwap
        else:
            for name in ("open", "high", "low"):
                daily[name][day] = self.prev_close
        daily["close"][day] = self.prev_close
        daily["volume"][day] = int(qty.sum())
        daily["trades"][day] = len(qty)
        bid, ask = book.best_bid(), book.best_ask()
        daily["best_bid"][day] = np.nan if bid is None else bid
        daily["best_ask"][day] = np.nan if ask is None else ask
        self._settle(trades, "continuous")
        if block is not None:
            block_trades = block.trades()
            daily["block_volume"][day] = int(block_trades["quantity"].sum())
            daily["volume"][day] += daily["block_volume"][day]
            self._settle(block_trades, "block")
        if record:
            for session in (block, book):  # the block session runs first
                if session is not None:
                    self._keep_book_events(day, session)
        if self._strategies_learn:
            self._let_strategies_learn(orders, placed_by, [book, block])
        self._update_expected_price()
        daily["fundamental_price"][day] = self.fundamental_price

    def _open_listed_book(self, record: bool) -> OrderBook:
        """Today's listed book with the GTC orders resting since the last close: those
        outside today's band or too old expire at the open (``OrderBook``), and a firm's
        carried asks beyond what it holds now (after a surrender, a withdrawal or a sale
        to the reserve pool) are cancelled: its asks are kept in time priority while they
        fit in its holdings, and the others cancelled."""
        market = self.scenario.market
        down, up = self._listed_band()
        carried = self._resting
        book = OrderBook(down, up, market.tick, kind="continuous", record=record,
                         carried=carried)
        if not len(carried):
            return book
        # the k-th carried order, in order_id order, has id k in the new book
        order = np.argsort(carried.order_id, kind="stable")
        side, trader = carried.side[order], carried.trader[order]
        left = carried.quantity[order].copy()
        left[book.expired.order_id] = 0
        asks = np.flatnonzero((side < 0) & (left > 0))
        held = self.registry.holdings.sum(axis=1)
        offered = np.bincount(trader[asks], weights=left[asks], minlength=len(held))
        short = offered > held
        if short.any():  # rare: walk those firms' asks in time priority
            room = held.copy()
            for k in asks[short[trader[asks]]].tolist():
                if left[k] <= room[trader[k]]:
                    room[trader[k]] -= left[k]
                else:
                    book.cancel(k)
                    left[k] = 0
        # what still rests at the open (the book's own resting_gtc(), built cheaper)
        live = np.flatnonzero(left > 0)
        self._resting = RestingOrders(
            live, carried.first_id[order][live], trader[live], side[live], left[live],
            carried.limit_price[order][live], carried.age[order][live] + 1,
            carried.max_age[order][live])
        return book

    def _let_strategies_learn(self, orders: Orders, placed_by: np.ndarray,
                              books: list[OrderBook | None]) -> None:
        """Tell each strategy which of its orders traded today, and the close."""
        traded = set()
        for session in books:
            if session is not None:
                traded.update(session.trade_buyer)
                traded.update(session.trade_seller)
        filled = np.fromiter((t in traded for t in orders.trader.tolist()), dtype=bool,
                             count=len(orders.trader))
        for index, strategy in enumerate(self.strategies):
            mine = placed_by == index
            part = Orders(orders.trader[mine], orders.side[mine], orders.quantity[mine],
                          orders.limit_price[mine])
            strategy.observe(part, filled[mine], self.prev_close)

    def _keep_book_events(self, day: int, book: OrderBook) -> None:
        """Keep a recorded session's orders, cancels and trades for ``book_events``; a
        carried GTC order (``carry``) is kept like an order, its expiry at the open
        (``expire``) like a cancel."""
        ids = self.account_id
        for event in book.events:
            row: dict[str, Any] = {"day": day, "session": book.kind, "event": event[0],
                                   "limit_down": book.limit_down, "limit_up": book.limit_up}
            if event[0] in ("order", "carry"):
                _, seq, trader, side, qty, price = event[:6]
                row.update(order_id=seq, trader_id=int(ids[trader]), side=side, quantity=qty,
                           price=np.nan if price is None else price)
            elif event[0] in ("cancel", "expire"):
                row.update(order_id=event[1])
            else:
                _, buyer, seller, price, qty = event
                row.update(buyer_id=int(ids[buyer]), seller_id=int(ids[seller]), price=price,
                           quantity=qty)
            self._book_log.append(row)

    def _settle(self, trades: dict[str, np.ndarray], kind: str) -> None:
        """Deliver quota and pay for each trade of a session."""
        buyers, sellers = trades["buyer"], trades["seller"]
        if not len(buyers):
            return
        qty, prices = trades["quantity"], trades["price"]
        for buyer, seller, quantity in zip(buyers.tolist(), sellers.tolist(), qty.tolist(),
                                           strict=True):
            self.registry.transfer(seller, buyer, quantity)
        value = prices * qty
        firms = self.firms
        buying, bought, paid = buyers, qty, value
        selling, sold, received = sellers, qty, value
        if self.financial.n:
            # financial accounts keep their own cash; firm records are for firm rows
            self.financial.settle_trades(trades)
            firm_buys, firm_sells = buyers < self.n_firms, sellers < self.n_firms
            buying, bought, paid = buyers[firm_buys], qty[firm_buys], value[firm_buys]
            selling, sold, received = sellers[firm_sells], qty[firm_sells], value[firm_sells]
        np.add.at(firms.cash, buying, -paid)
        np.add.at(firms.cash, selling, received)
        np.add.at(firms.net_sales, buying, -bought)
        np.add.at(firms.net_sales, selling, sold)
        col = self.year_index(int(self.calendar.year[self.day]))
        np.add.at(self.fy["bought"][:, col], buying, bought)
        np.add.at(self.fy["sold"][:, col], selling, sold)
        self._log_trades(buyers, sellers, prices, qty, kind)

    def _log_trades(self, buyer_rows: np.ndarray, seller_rows: np.ndarray, price: Any,
                    quantity: np.ndarray, kind: str) -> None:
        n = len(quantity)
        self._trade_log.append({
            "day": np.full(n, self.day, dtype=np.int64),
            "buyer_row": np.asarray(buyer_rows, dtype=np.int64),
            "seller_row": np.asarray(seller_rows, dtype=np.int64),
            "price": np.broadcast_to(np.asarray(price, dtype=float), (n,)).copy(),
            "quantity": np.asarray(quantity, dtype=np.int64),
            "kind": kind,
            "year": int(self.calendar.year[self.day]),
        })
        if kind == "auction":
            self.payments["auctions"] += float((np.asarray(price) * quantity).sum())
        elif kind == "reserve" and buyer_rows[0] >= 0:
            self.payments["reserve_sales"] += float((np.asarray(price) * quantity).sum())

    # --- end of run --------------------------------------------------------------------

    def _finish(self) -> None:
        from etsim.model.results import check_invariants

        self.wall_time = time.perf_counter() - self.started
        self.invariants = check_invariants(self)
        if not self.invariants["ok"]:
            raise InvariantError("; ".join(self.invariants["violations"]))

    def results(self) -> dict[str, Any]:
        """The results tables of DESIGN.md as pandas DataFrames (after the run)."""
        from etsim.model.results import build_tables

        if self.running:
            raise RuntimeError("the run has not finished: call run() first")
        return build_tables(self)
