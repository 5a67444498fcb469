"""What a run records per firm and calendar year, and the money flows of the market.

Each institution holds a reference to these records and writes its own columns (MRV the
emissions, issuance the free quota, compliance the surrender and penalties, the trading
session what was bought and sold); the results tables are built from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # annotations only
    from etsim.agents.expectations import PriceExpectations
    from etsim.agents.financial import FinancialTraders
    from etsim.agents.networks import PeerNetwork
    from etsim.agents.population import FirmState
    from etsim.agents.strategies import StrategyMix
    from etsim.model.allocation import AllocationPolicy
    from etsim.model.calendar import TradingCalendar
    from etsim.model.mrv import MRV
    from etsim.model.registry import Registry
    from etsim.model.reserve import ReservePool
    from etsim.model.scenario import Scenario, SectorConfig
    from etsim.model.session import DailyRecord, TradingSession
    from etsim.model.settlement import TradeLog

# Per firm and calendar-year quantities (firms x years).
FIRM_YEAR_FLOAT = (
    "output", "emissions", "direct_emissions", "indirect_emissions", "reported_emissions",
    "verified_emissions", "abatement", "abatement_cost", "penalty", "misreporting_fine",
    "offset_cost", "benchmark", "investment",
)
FIRM_YEAR_INT = (
    "free_allocation", "free_entitled", "pre_allocated", "auction_purchased", "bought", "sold",
    "surrendered", "offsets_used", "bank_end", "shortfall", "deducted", "owed", "withdrawn",
    "borrowed", "misreported", "reserve_bought", "reserve_sold", "cap_quota",
)
# Money paid to or by the state over the run (CNY), by kind.
PAYMENT_KINDS = ("auctions", "reserve_sales", "reserve_purchases", "penalties", "fines",
                 "offsets")


class FirmYears(dict):
    """Firm-year arrays by name (``records["output"][firm, col]``), with their columns.

    Args:
        n_firms: Rows.
        start_year: The calendar year of column 0.
        n_years: Columns (calendar years of the run).
    """

    def __init__(self, n_firms: int, start_year: int, n_years: int) -> None:
        super().__init__()
        self.start_year = start_year
        self.update({name: np.zeros((n_firms, n_years)) for name in FIRM_YEAR_FLOAT})
        self.update({name: np.zeros((n_firms, n_years), dtype=np.int64)
                     for name in FIRM_YEAR_INT})
        self["verified_emissions"][:] = np.nan
        # whether a year's emissions have been verified (its obligations are then known)
        self.verified_known = np.zeros(n_years, dtype=bool)

    def col(self, year: int) -> int:
        """Column of a calendar year."""
        return year - self.start_year

    def net_sales(self, first_year: int, last_year: int) -> np.ndarray:
        """Each firm's tonnes sold minus bought over calendar years ``first_year`` to
        ``last_year``: on the exchange (``sold``, ``bought``) and with the reserve pool (a
        release bought is a purchase, a buy-back a sale), as ``FirmState.net_sales``
        counts them since the market opened."""
        cols = slice(self.col(first_year), self.col(last_year) + 1)
        return (self["sold"][:, cols].sum(axis=1) + self["reserve_sold"][:, cols].sum(axis=1)
                - self["bought"][:, cols].sum(axis=1)
                - self["reserve_bought"][:, cols].sum(axis=1))

    def verified_total(self, year: int) -> float:
        """Verified emissions of all firms in a compliance year (t)."""
        return float(np.nansum(self["verified_emissions"][:, self.col(year)]))


def new_payments() -> dict[str, float]:
    """Money flows of the run, all zero (CNY)."""
    return dict.fromkeys(PAYMENT_KINDS, 0.0)


class MarketState(Protocol):
    """What a run exposes to the modules that read it whole: the equilibrium solvers,
    the results tables, the invariant checks and the firms' yearly reviews.
    ``CarbonMarketModel`` provides it; those modules never import the model."""

    scenario: Scenario
    seed_value: int
    calendar: TradingCalendar
    years: np.ndarray
    day: int
    sector_names: list[str]
    sector_configs: list[SectorConfig]
    n_firms: int
    firms: FirmState
    province: np.ndarray
    province_names: list[str]
    peers: PeerNetwork
    strategy_mix: StrategyMix
    expectations: PriceExpectations
    fy: FirmYears
    capital_due: np.ndarray
    daily: DailyRecord
    registry: Registry
    allocation: AllocationPolicy
    reserve: ReservePool
    mrv: MRV
    reserve_holdings_end: dict[int, int]
    financial: FinancialTraders
    account_id: np.ndarray
    payments: dict[str, float]
    trade_log: TradeLog
    session: TradingSession
    invariants: dict[str, Any] | None
    wall_time: float

    def year_index(self, year: int) -> int: ...

    def covered(self, year: int) -> np.ndarray: ...

    def demand_growth_factor(self, year: int) -> np.ndarray: ...
