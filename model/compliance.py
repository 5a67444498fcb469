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
After the deadline, quota of vintages up to Y that may not be banked is cancelled: all
of it without banking, else what exceeds the carry-over limit in force (a basic
allowance plus a multiple of the firm's net sales, ``compliance.carry_over``).

A deadline may settle a compliance period of several years (``compliance.deadlines``:
China's 2021 and 2022 were both due at the end of 2023). The years are settled oldest
first at the same reference price, each with quota of vintages up to the period's last
year, borrowing (where ``compliance.borrowing`` allows it for the year) from the vintage
after the period; the banking rules of the period's last year then apply once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from etsim.model.scenario import CarryOverRule, schedule_value

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
        self.start_year = scenario.start_year
        self.end_year = scenario.end_year
        self.sector_names = sector_names
        self.deficit_caps = [scenario.sectors[name].allocation.deficit_cap
                             for name in sector_names]
        self.firms = firms
        self.records = records
        self.registry = registry
        self.payments = payments
        self.financial = financial
        # the opening cycle (compliance.opening_cycle): what each firm still owes for it
        self.opening = scenario.compliance.opening_cycle
        self.opening_owed: np.ndarray | None = None
        self.opening_result: dict[str, int] | None = None  # set at its deadline
        self.opening_benchmark = [self.opening.benchmark.get(name) for name in sector_names]
        self.sector_benchmark = [scenario.sectors[name].benchmark for name in sector_names]

    def open_cycle(self) -> None:
        """Start the run inside the opening cycle (``compliance.opening_cycle``): each firm
        of a sector in it that entered before the first year is issued the cycle's free
        quota (vintage ``start_year - 1``) and owes its verified emissions at the cycle's
        deadline. Nothing happens without a cycle."""
        cycle = self.opening
        if not cycle.years:
            return
        firms = self.firms
        in_cycle = np.array([b is not None for b in self.opening_benchmark])[firms.sector]
        in_cycle &= firms.entry_year < self.start_year
        benchmark = np.array([b or 0.0 for b in self.opening_benchmark])[firms.sector]
        # a firm's intensity in the cycle stands to the cycle's benchmark as its intensity
        # at the start stands to the sector's benchmark (the sector in balance at 1.0)
        relative = firms.baseline_intensity / np.array(self.sector_benchmark)[firms.sector]
        output = cycle.years * firms.base_output
        quota = np.where(in_cycle, np.round(output * benchmark), 0).astype(np.int64)
        owed = np.round(output * benchmark * relative / cycle.quota_ratio)
        self.opening_owed = np.where(in_cycle, owed, 0).astype(np.int64)
        self.registry.issue(np.arange(firms.n), quota, self.start_year - 1, "issued_free")

    def opening_due(self, calendar_year: int, month: int) -> bool:
        """Whether the opening cycle is due at the end of ``month`` of ``calendar_year``."""
        return self.opening_owed is not None and self.opening.due() == (calendar_year, month)

    def opening_month_before(self) -> tuple[int, int]:
        """The month before the opening cycle's deadline (its penalty's reference)."""
        year, month = self.opening.due()
        return (year - 1, 12) if month == 1 else (year, month - 1)

    def settle_opening(self, reference_price: float) -> dict[str, int]:
        """Surrender for the opening cycle at its deadline: quota of vintages up to
        ``start_year - 1`` (no offsets, no borrowing), a penalty and a deduction for a
        shortfall as at any deadline, then the banking rules for that vintage.

        Args:
            reference_price: The mean close of the month before the deadline (CNY/t).

        Returns:
            Tonnes owed, surrendered and short over all firms.
        """
        owed = self.opening_owed
        rows = np.flatnonzero(owed > 0)
        vintage = self.start_year - 1
        surrendered = self.registry.take(rows, owed[rows], vintage, "surrendered").sum(axis=1)
        short = owed[rows] - surrendered
        penalty = self.penalty_price(reference_price) * short
        self.firms.cash[rows] -= penalty
        self.payments["penalties"] += float(penalty.sum())
        if self.penalty.deduct_shortfall:
            self.firms.pending_deduction[rows] += short
        self.opening_owed = np.zeros_like(owed)
        self.apply_banking_rules(vintage)
        self.opening_result = {"owed": int(owed.sum()), "surrendered": int(surrendered.sum()),
                               "short": int(short.sum())}
        return self.opening_result

    def deadline(self, year: int) -> tuple[int, int]:
        """The calendar year and month whose last trading day is ``year``'s deadline
        (``compliance.deadlines``, else deadline_year_offset and deadline_month)."""
        return self.config.deadline_of(year)

    def due(self, calendar_year: int, month: int) -> list[int]:
        """The compliance years of the scenario whose deadline is the end of ``month`` of
        ``calendar_year``, oldest first (several for a multi-year period)."""
        return [year for year in range(self.start_year, self.end_year + 1)
                if self.deadline(year) == (calendar_year, month)]

    def period(self, year: int) -> list[int]:
        """The compliance years settled at ``year``'s deadline (``year`` among them)."""
        return [y for y in range(self.start_year, self.end_year + 1)
                if self.deadline(y) == self.deadline(year)] or [year]

    def borrowing_allowed(self, year: int) -> bool:
        """Whether firms may borrow at ``year``'s deadline (``compliance.borrowing``)."""
        return bool(schedule_value(self.config.borrowing, year))

    def carry_over_rule(self, year: int) -> CarryOverRule | None:
        """The carry-over rule in force after ``year``'s deadline: the latest of
        ``compliance.carry_over`` at or before ``year``; None before the first listed year
        (then ``banking_limit_t`` applies)."""
        listed = [int(y) for y in self.config.carry_over if int(y) <= year]
        return self.config.carry_over[str(max(listed))] if listed else None

    def month_before_deadline(self, year: int) -> tuple[int, int]:
        """The calendar year and month before ``year``'s deadline: its mean close is the
        reference price of the penalty."""
        deadline_year, month = self.deadline(year)
        return (deadline_year - 1, 12) if month == 1 else (deadline_year, month - 1)

    def penalty_price(self, price: float | np.ndarray) -> float | np.ndarray:
        """What a tonne short at the deadline costs at a given quota price (CNY/t)."""
        return self.penalty.multiple * price

    def settle(self, years: int | Sequence[int], reference_price: float) -> None:
        """Surrender at a deadline: offsets, quota, borrowing, penalties for each
        compliance year due, then the banking rules.

        Args:
            years: The compliance year, or the years of a period due at this deadline
                (see :meth:`due`), settled oldest first.
            reference_price: The mean close of the month before the deadline (CNY/t).
        """
        period = sorted([int(years)] if np.ndim(years) == 0 else map(int, years))
        last = period[-1]
        for year in period:
            self.surrender(year, reference_price, up_to_vintage=last)
        self.apply_banking_rules(last)

    def surrender(self, year: int, reference_price: float, up_to_vintage: int) -> None:
        """One compliance year's obligation at its deadline: offsets, quota of vintages
        up to ``up_to_vintage``, borrowing from the vintage after it, the penalty and
        the deduction of the shortfall (no banking rules)."""
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
        surrendered = self.registry.take(rows, need, up_to_vintage, "surrendered").sum(axis=1)
        short = need - surrendered
        if self.borrowing_allowed(year) and short.any() and up_to_vintage < self.end_year:
            borrowed = self.borrow(rows, short, obligation, year, up_to_vintage + 1)
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

    def borrow(self, rows: np.ndarray, short: np.ndarray, obligation: np.ndarray,
               year: int, next_vintage: int | None = None) -> np.ndarray:
        """Cover part of a gap with next year's quota (China 2021-22): held quota of the
        next vintage first, the rest advanced from the firm's next free allocation (it
        counts as already issued there, so the true-up pays the loan back; where that
        vintage's true-up has run already, the advance is owed with its obligation).

        Args:
            rows: The firms settling.
            short: Each firm's gap after surrender (t).
            obligation: Each firm's obligation (t).
            year: The compliance year settled.
            next_vintage: The vintage borrowed from (default ``year + 1``; the year after
                a multi-year period).

        Returns:
            The tonnes borrowed per firm of ``rows``.
        """
        c = self.config
        eligible = short >= c.borrowing_threshold * np.maximum(obligation, 1)
        wanted = np.where(eligible, np.floor(c.borrowing_share * short), 0).astype(np.int64)
        nxt = year + 1 if next_vintage is None else next_vintage
        held = self.registry.take(rows, wanted, nxt, "surrendered", from_vintage=nxt)
        advance = wanted - held.sum(axis=1)
        if advance.any():
            self.registry.issue(rows, advance, nxt, "issued_free")
            self.registry.take(rows, advance, nxt, "surrendered", from_vintage=nxt)
            col = self.records.col(nxt)
            self.records["free_entitled"][rows, col] += advance
            self.records["free_allocation"][rows, col] += advance
            if (nxt + 1, self.config.true_up_month) <= self.deadline(year):
                # that vintage's true-up has run already (a deadline more than a year
                # after its year): the loan is owed with that year's obligation instead
                self.records["owed"][rows, col] += advance
        return wanted

    def carry_over_limit(self, year: int) -> np.ndarray | None:
        """The tonnes of vintages up to ``year`` each firm may carry past ``year``'s
        deadline, or None when there is no limit.

        With a carry-over rule in force (``compliance.carry_over``): the firm's basic
        allowance (its sector's, else ``basic_t``) plus ``net_sales_multiple`` x its net
        sales when positive, over the ``net_sales_years`` calendar years up to the
        deadline's (0: since the market opened). Before the first rule:
        ``banking_limit_t`` plus ``banking_net_sales_multiple`` x net sales since the
        market opened, if ``banking_limit_t`` is set. Rounded down to whole tonnes.
        """
        c = self.config
        firms = self.firms
        rule = self.carry_over_rule(year)
        if rule is None:
            if c.banking_limit_t is None:
                return None
            return np.floor(c.banking_limit_t + c.banking_net_sales_multiple
                            * np.maximum(firms.net_sales, 0))
        basic = np.array([rule.sector_basic_t.get(name, rule.basic_t)
                          for name in self.sector_names])[firms.sector]
        return np.floor(basic + rule.net_sales_multiple
                        * np.maximum(self.net_sales(year, rule.net_sales_years), 0))

    def carry_over_multiple(self, year: int) -> float:
        """Tonnes a firm may carry past ``year``'s deadline per tonne of net sales (the
        rule in force, else ``banking_net_sales_multiple``)."""
        rule = self.carry_over_rule(year)
        if rule is None:
            return self.config.banking_net_sales_multiple
        return rule.net_sales_multiple

    def must_sell(self, year: int, surplus: np.ndarray) -> np.ndarray | None:
        """Per firm, what it must sell before ``year``'s deadline so as not to have
        quota cancelled, expecting ``surplus`` (t) of vintages up to ``year`` left after
        surrendering; None when nothing limits carrying.

        Each tonne sold lowers the surplus by one and raises the carry-over limit by the
        net-sales multiple m, so a firm whose surplus exceeds its limit L today by E
        must sell E / (1 + m), rounded up (0 when within it). Without banking it must
        sell all its surplus.
        """
        if not self.config.banking:
            return np.maximum(surplus, 0.0)
        limit = self.carry_over_limit(year)
        if limit is None:
            return None
        excess = np.maximum(surplus - limit, 0.0)
        return np.ceil(excess / (1.0 + self.carry_over_multiple(year)))

    def net_sales(self, year: int, years: int) -> np.ndarray:
        """Each firm's tonnes sold minus bought (exchange and reserve pool): since the
        market opened (``years`` 0), else over the ``years`` calendar years up to the year
        of ``year``'s deadline."""
        if years == 0:
            return self.firms.net_sales.astype(float)
        until = self.deadline(year)[0]
        first = max(until - years + 1, self.start_year)
        return self.records.net_sales(first, until).astype(float)

    def apply_banking_rules(self, year: int) -> None:
        """After a deadline: cancel quota of vintages up to ``year`` that may not be banked
        (all of it without banking; above :meth:`carry_over_limit` with a limit)."""
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
        else:
            allowed = self.carry_over_limit(year)
            if allowed is not None:
                excess = np.maximum(registry.usable(year) - allowed, 0)
                registry.take(everyone, excess.astype(np.int64), year, "cancelled")
