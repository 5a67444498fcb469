"""Hand-built state for the institution tests (a plain helper module, not a test file).

Each institution holds references to the arrays it changes, so it can be tested without a
``CarbonMarketModel``: these helpers build a few firms (no abatement options), an empty
registry and firm-year records, the daily record and trade log, and wire the institutions
to them as ``model/market.py`` does. Configuration sections come from the classroom
scenario with overrides: compliance years 2025 and 2026, the calendar from January 2025 to
December 2027, sectors steel (index 0, benchmark 2.0 t/unit in 2025), cement (1) and
aluminium (2), all on the intensity rule tightening 3% a year from 2025.

Tests import it as ``from institutions import ...``: pytest puts ``tests/`` (no
``__init__.py``) on ``sys.path``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from etsim import load_scenario
from etsim.agents.abatement import draw_options
from etsim.agents.financial import FinancialTraders
from etsim.agents.population import FirmState
from etsim.agents.positions import Positions
from etsim.agents.production import Production
from etsim.model.allocation import AllocationPolicy
from etsim.model.calendar import TradingCalendar
from etsim.model.compliance import Compliance
from etsim.model.issuance import Issuance
from etsim.model.mrv import MRV
from etsim.model.primary import PrimaryMarket
from etsim.model.records import FirmYears, new_payments
from etsim.model.registry import Registry
from etsim.model.reserve import ReservePool
from etsim.model.scenario import Scenario
from etsim.model.session import DailyRecord, TradingSession
from etsim.model.settlement import Settlement, TradeLog

START_YEAR = 2025  # classroom: first compliance year
END_YEAR = 2026  # classroom: last compliance year
LAST_CALENDAR_YEAR = 2027  # the deadline year of 2026 (deadline_year_offset = 1)
FIRST_VINTAGE = START_YEAR - 1  # the bank carried into the first year
LAST_VINTAGE = LAST_CALENDAR_YEAR + 1
SECTOR_NAMES = ["steel", "cement", "aluminium"]  # classroom's simulated sectors, in order
STEEL, CEMENT, ALUMINIUM = 0, 1, 2
STEEL_BENCHMARK_2025 = 2.0  # t/unit; base year 2025, so 2026's is 2.0 x (1 - 0.03)


def scenario(overrides: dict[str, Any] | None = None) -> Scenario:
    """The classroom scenario with dotted-key overrides (``{"penalty.multiple": 3}``)."""
    return load_scenario("classroom", overrides)


def _column(value: Any, n: int, dtype: Any = float) -> np.ndarray:
    """A per-firm array from a scalar or a sequence."""
    array = np.asarray(value, dtype=dtype)
    return np.full(n, array, dtype=dtype) if array.ndim == 0 else array.copy()


def make_firms(
    n: int,
    *,
    sector: Any = STEEL,
    entry_year: Any = 2024,
    base_output: Any = 100.0,
    baseline_intensity: Any = STEEL_BENCHMARK_2025,
    expected_price: Any = 95.0,
    annual_emissions: Any = None,
    risk_factor: Any = 1.0,
    misreports: Any = False,
    cash: Any = 0.0,
) -> FirmState:
    """``n`` firms with the given attributes (scalars are shared by all), no abatement
    options (intensity stays at its baseline), output factor 1 and margin 100 CNY/unit."""
    sector_of_firm = _column(sector, n, np.int64)
    output = _column(base_output, n)
    baseline = _column(baseline_intensity, n)
    emissions = output * baseline if annual_emissions is None else _column(annual_emissions, n)
    # draw_options with no sector tables: one padding column, no valid option
    options = draw_options([], sector_of_firm, np.random.default_rng(0), 0.08)
    return FirmState(
        firm_id=np.arange(n, dtype=np.int64),
        sector=sector_of_firm,
        entry_year=_column(entry_year, n, np.int64),
        base_output=output,
        baseline_intensity=baseline,
        intensity=baseline.copy(),
        abatement_cost_rate=np.zeros(n),
        indirect_intensity=np.zeros(n),
        misreports=_column(misreports, n, bool),
        risk_factor=_column(risk_factor, n),
        expected_price=_column(expected_price, n),
        cash=_column(cash, n),
        annual_emissions=emissions,
        cash_year_start=np.zeros(n),
        net_sales=np.zeros(n, dtype=np.int64),
        pending_deduction=np.zeros(n, dtype=np.int64),
        discount_rate=np.full(n, 0.08),
        expected_growth=np.zeros(n),
        options=options,
        margin=np.full(n, 100.0),
        output_factor=np.ones(n),
    )


def make_registry(n_firms: int, n_accounts: int | None = None) -> Registry:
    """An empty registry with the model's vintages (2024, the initial bank, to 2028)."""
    accounts = n_firms if n_accounts is None else n_accounts
    return Registry(accounts, FIRST_VINTAGE, LAST_VINTAGE, n_firms=n_firms)


def holding(registry: Registry, firm: int, vintage: int) -> int:
    """Tonnes of one vintage in one account."""
    return int(registry.holdings[firm, registry.column(vintage)])


def ledger_balances(registry: Registry) -> bool:
    """Whether every vintage's ledger balances (no quota created or lost)."""
    return all(row["balance"] == 0 for row in registry.ledger())


@dataclass
class HandBuiltMarket:
    """The state arrays a run shares between its institutions, built by hand, and the
    institutions wired to them as ``CarbonMarketModel`` wires them."""

    scenario: Scenario
    firms: FirmState
    records: FirmYears
    registry: Registry
    financial: FinancialTraders
    allocation: AllocationPolicy
    reserve: ReservePool
    calendar: TradingCalendar
    daily: DailyRecord
    payments: dict[str, float]
    trade_log: TradeLog
    rng: np.random.Generator
    book_days: set[int] = field(default_factory=set)
    _session: TradingSession | None = None
    _positions: Positions | None = None

    @property
    def account_id(self) -> np.ndarray:
        """Account id per registry row (firms 101, 102, ... so ids differ from rows)."""
        return 101 + np.arange(self.registry.holdings.shape[0], dtype=np.int64)

    def compliance(self) -> Compliance:
        """The deadline's rules on this state."""
        return Compliance(self.scenario, SECTOR_NAMES, self.firms, self.records,
                          self.registry, self.payments, self.financial)

    def issuance(self) -> Issuance:
        """Free quota issuance on this state."""
        return Issuance(self.scenario, self.firms, self.records, self.registry,
                        self.allocation, self.reserve)

    def mrv(self) -> MRV:
        """Reports, inspections and verification on this state."""
        return MRV(self.scenario.mrv, self.firms, self.records, self.allocation, self.rng,
                   self.payments)

    def settlement(self) -> Settlement:
        """Settlement of exchange trades on this state."""
        return Settlement(self.registry, self.firms, self.records, self.financial,
                          self.trade_log)

    def session(self) -> TradingSession:
        """The exchange's trading day on this state (one per market, as in a run)."""
        if self._session is None:
            self._session = TradingSession(self.scenario.market, self.registry, self.daily,
                                           self.settlement(), self.account_id,
                                           self.firms.n, self.book_days)
        return self._session

    def production(self) -> Production:
        """Output plans and projections on this state."""
        configs = [self.scenario.sectors[name] for name in SECTOR_NAMES]
        return Production(configs, self.firms, self.records, self.rng,
                          self.scenario.scope.include_indirect)

    def positions(self) -> Positions:
        """The firms' positions and trading state (one per market, as in a run)."""
        if self._positions is None:
            self._positions = Positions(self.scenario, self.firms, self.records,
                                        self.registry, self.allocation, self.production(),
                                        self.compliance(), self.session(), self.calendar,
                                        needs_own_mac=False)
        return self._positions

    def primary(self) -> PrimaryMarket:
        """Auctions and the reserve pool's operations on this state."""
        return PrimaryMarket(self.scenario, self.firms, self.records, self.registry,
                             self.allocation, self.reserve, self.positions(), self.daily,
                             self.trade_log, self.payments)


def hand_built_market(
    firms: FirmState,
    overrides: dict[str, Any] | None = None,
    *,
    n_accounts: int | None = None,
    book_days: set[int] | None = None,
    seed: int = 0,
) -> HandBuiltMarket:
    """Empty registry and records for ``firms`` under the classroom scenario with
    ``overrides``; financial accounts as the scenario's ``[financial]`` says (none by
    default), as registry rows after the firms."""
    sc = scenario(overrides)
    rng = np.random.default_rng(seed)
    financial = FinancialTraders.from_config(sc.financial, rng, offset=firms.n)
    accounts = firms.n + financial.n if n_accounts is None else n_accounts
    calendar = TradingCalendar(sc.start_year, sc.last_calendar_year,
                               sc.market.trading_days_per_month)
    payments = new_payments()
    return HandBuiltMarket(
        scenario=sc,
        firms=firms,
        records=FirmYears(firms.n, sc.start_year, sc.last_calendar_year - sc.start_year + 1),
        registry=make_registry(firms.n, accounts),
        financial=financial,
        allocation=AllocationPolicy(sc, SECTOR_NAMES),
        reserve=ReservePool(),
        calendar=calendar,
        daily=DailyRecord(calendar, sc.market.initial_price),
        payments=payments,
        trade_log=TradeLog(payments),
        rng=rng,
        book_days=set() if book_days is None else set(book_days),
    )
