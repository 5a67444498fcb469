"""Compliance: surrender at the deadline, offsets, borrowing, penalties, the deduction
of a shortfall from the next quota, and the banking rules.

At the deadline of compliance year Y each covered firm owes its verified emissions
(plus quota it owes from a withdrawal it could not cover), at most its free
entitlement plus the sector's ``deficit_cap`` x its verified emissions where a sector
has one. It may cover ``offset_share`` of the obligation with CCER offsets when they
are cheaper than the reference price (the scarce national supply shared pro rata), and
surrenders quota of vintages up to Y for the rest. Where borrowing is allowed, part of
a large gap is covered from next year's quota. What is still missing is the shortfall:

    penalty = penalty.multiple x reference price x shortfall

where the reference price is the mean close of the month before the deadline, and the
shortfall is deducted from the firm's next free quota (``penalty.deduct_shortfall``).
After the deadline, quota of vintages up to Y that may not be banked is cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only
    from etsim.agents.financial import FinancialTraders
    from etsim.agents.population import FirmState
    from etsim.model.records import FirmYears
    from etsim.model.registry import Registry
    from etsim.model.scenario import Scenario


class Compliance:
    """The deadline's rules for every covered firm.

    Args:
        scenario: The resolved scenario (``compliance``, ``penalty``, the sectors'
            ``deficit_cap``).
        sector_names: Sector name per sector index.
        firms: The firms' state (``cash`` and ``pending_deduction`` change).
        records: The firm-year records (surrender, offsets, shortfall, penalty, ...).
        registry: The quota registry (quota is surrendered and cancelled there).
        payments: The run's money flows (penalties and offsets are added).
        financial: The financial accounts (their expired vintages are cancelled too).
    """

    def __init__(self, scenario: Scenario, sector_names: list[str], firms: FirmState,
                 records: FirmYears, registry: Registry, payments: dict[str, float],
                 financial: FinancialTraders) -> None:
        self.config = scenario.compliance
        self.penalty = scenario.penalty
        self.end_year = scenario.end_year
        self.deficit_caps = [scenario.sectors[name].allocation.deficit_cap
                             for name in sector_names]
        self.firms = firms
        self.records = records
        self.registry = registry
        self.payments = payments
        self.financial = financial

    def deadline(self, year: int) -> tuple[int, int]:
        """The calendar year and month whose last trading day is ``year``'s deadline."""
        return year + self.config.deadline_year_offset, self.config.deadline_month

    def month_before_deadline(self, year: int) -> tuple[int, int]:
        """The calendar year and month before ``year``'s deadline: its mean close is the
        reference price of the penalty."""
        deadline_year, month = self.deadline(year)
        return (deadline_year - 1, 12) if month == 1 else (deadline_year, month - 1)

    def penalty_price(self, price: float | np.ndarray) -> float | np.ndarray:
        """What a tonne short at the deadline costs at a given quota price (CNY/t)."""
        return self.penalty.multiple * price

    def settle(self, year: int, reference_price: float) -> None:
        """Surrender at ``year``'s deadline: offsets, quota, borrowing, penalties, then
        the banking rules.

        Args:
            year: The compliance year.
            reference_price: The mean close of the month before the deadline (CNY/t).
        """
        c = self.config
        records = self.records
        col = records.col(year)
        rows = np.flatnonzero(self.firms.covered(year))
        verified = np.nan_to_num(records["verified_emissions"][rows, col])
        obligation = np.round(verified).astype(np.int64) + records["owed"][rows, col]
        caps = np.array([self.deficit_caps[s] for s in self.firms.sector[rows]], dtype=object)
        capped = np.array([cap is not None for cap in caps])
        if capped.any():
            # on the entitlement, so a deduction of last year's shortfall still bites
            limit = records["free_entitled"][rows, col] + np.round(
                np.array([cap or 0.0 for cap in caps], dtype=float) * verified
            ).astype(np.int64)
            obligation = np.where(capped, np.minimum(obligation, limit), obligation)

        offsets = np.zeros(len(rows), dtype=np.int64)
        if c.offset_share > 0 and c.offset_price < reference_price:
            wanted = np.floor(c.offset_share * obligation).astype(np.int64)
            supply = int(c.offset_supply_share * verified.sum())
            if wanted.sum() > supply:
                wanted = np.floor(wanted * (supply / wanted.sum())).astype(np.int64)
            offsets = wanted
            self.firms.cash[rows] -= offsets * c.offset_price
            records["offset_cost"][rows, col] = offsets * c.offset_price
            self.payments["offsets"] += float((offsets * c.offset_price).sum())
        need = obligation - offsets
        surrendered = self.registry.take(rows, need, year, "surrendered").sum(axis=1)
        short = need - surrendered
        if c.borrowing and short.any() and year < self.end_year:
            borrowed = self.borrow(rows, short, obligation, year)
            surrendered += borrowed
            short -= borrowed
            records["borrowed"][rows, col] = borrowed
        penalty = self.penalty_price(reference_price) * short
        self.firms.cash[rows] -= penalty
        self.payments["penalties"] += float(penalty.sum())
        if self.penalty.deduct_shortfall:
            self.firms.pending_deduction[rows] += short
        records["surrendered"][rows, col] = surrendered
        records["offsets_used"][rows, col] = offsets
        records["shortfall"][rows, col] = short
        records["penalty"][rows, col] = penalty
        self.apply_banking_rules(year)

    def borrow(self, rows: np.ndarray, short: np.ndarray, obligation: np.ndarray,
               year: int) -> np.ndarray:
        """Cover part of a gap with next year's quota (China 2021-22): held quota of the
        next vintage first, the rest advanced from the firm's next free allocation (it
        counts as already issued there, so the true-up pays the loan back).

        Returns:
            The tonnes borrowed per firm of ``rows``.
        """
        c = self.config
        eligible = short >= c.borrowing_threshold * np.maximum(obligation, 1)
        wanted = np.where(eligible, np.floor(c.borrowing_share * short), 0).astype(np.int64)
        nxt = year + 1
        held = self.registry.take(rows, wanted, nxt, "surrendered", from_vintage=nxt)
        advance = wanted - held.sum(axis=1)
        if advance.any():
            self.registry.issue(rows, advance, nxt, "issued_free")
            self.registry.take(rows, advance, nxt, "surrendered", from_vintage=nxt)
            col = self.records.col(nxt)
            self.records["free_entitled"][rows, col] += advance
            self.records["free_allocation"][rows, col] += advance
        return wanted

    def apply_banking_rules(self, year: int) -> None:
        """After a deadline: cancel quota of vintages up to ``year`` that may not be banked
        (all of it without banking; above the limit of ``banking_limit_t`` plus
        ``banking_net_sales_multiple`` x the firm's net sales with one)."""
        c = self.config
        registry = self.registry
        everyone = np.arange(self.firms.n)
        if not c.banking:
            registry.take(everyone, registry.usable(year), year, "cancelled")
            if self.financial.n:  # expired vintages are worthless in any account
                rows = self.financial.rows
                held = registry.holdings[rows, : registry.column(year) + 1]
                taken = registry.take(rows, held.sum(axis=1), year, "cancelled")
                self.financial.holdings -= taken.sum(axis=1)
        elif c.banking_limit_t is not None:
            allowed = c.banking_limit_t + c.banking_net_sales_multiple * np.maximum(
                self.firms.net_sales, 0
            )
            excess = np.maximum(registry.usable(year) - np.floor(allowed), 0)
            registry.take(everyone, excess.astype(np.int64), year, "cancelled")
