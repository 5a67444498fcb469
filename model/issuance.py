"""Issuance: free quota into the firms' accounts under the allocation policy.

- Intensity and verified-emissions rules: pre-allocation in the pre-allocation month
  of the next year (on the previous year's verified data), and the true-up in the
  true-up month, which issues or withdraws the difference to the final free quota
  (``AllocationPolicy.final_free_quota``) computed from verified output and emissions.
- Absolute caps: the year's quota is issued in full in January (``cap_quota``). Its
  true-up only withdraws what was counted as issued beyond it: the advance of a loan
  from that vintage (``Compliance.borrow``), paid back as under a benchmark.
- A firm's pending penalty deduction (a shortfall carried from an earlier deadline)
  is taken from its next issuance; the reserve pool's set-aside share of the rule
  quota goes to the pool, and a bank-based pool's pending intake is withheld.
- The bank carried into the first year is issued as vintage ``start_year - 1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from etsim.model.allocation import round_quota

if TYPE_CHECKING:  # annotations only
    from etsim.agents.population import FirmState
    from etsim.model.allocation import AllocationPolicy
    from etsim.model.records import FirmYears
    from etsim.model.registry import Registry
    from etsim.model.reserve import ReservePool
    from etsim.model.scenario import Scenario, SectorConfig


class Issuance:
    """Issues and withdraws free quota.

    Args:
        scenario: The resolved scenario.
        firms: The firms' state (``pending_deduction`` changes).
        records: The firm-year records (free quota entitled, issued, deducted, ...).
        registry: The quota registry.
        allocation: The allocation policy (rules, caps, shares).
        reserve: The reserve pool (set-aside and withheld quota go there).
    """

    def __init__(self, scenario: Scenario, firms: FirmState, records: FirmYears,
                 registry: Registry, allocation: AllocationPolicy,
                 reserve: ReservePool) -> None:
        self.start_year = scenario.start_year
        self.set_aside_share = scenario.reserve_pool.set_aside_share
        self.n_sectors = len(allocation.sector_names)
        self.firms = firms
        self.records = records
        self.registry = registry
        self.allocation = allocation
        self.reserve = reserve

    def endow_initial_bank(self, configs: list[SectorConfig]) -> None:
        """Firms of sectors already in the market carry a bank into the first year:
        ``initial_bank_share`` of a year of their baseline emissions."""
        firms = self.firms
        share = np.array([configs[s].initial_bank_share for s in firms.sector])
        bank = round_quota(share * firms.base_output * firms.baseline_intensity)
        bank[firms.entry_year >= self.start_year] = 0
        self.registry.issue(np.arange(firms.n), bank, self.start_year - 1, "issued_free")

    def issue_free(self, rows: np.ndarray, amounts: np.ndarray, year: int) -> None:
        """Issue free quota of vintage ``year``, net of penalty deductions."""
        amounts = round_quota(amounts)
        records = self.records
        col = records.col(year)
        firms = self.firms
        deducted = np.minimum(firms.pending_deduction[rows], amounts)
        firms.pending_deduction[rows] -= deducted
        issued = amounts - deducted
        self.registry.issue(rows, issued, year, "issued_free")
        records["free_entitled"][rows, col] += amounts
        records["free_allocation"][rows, col] += issued
        records["deducted"][rows, col] += deducted

    def withhold_for_reserve(self, amounts: np.ndarray, year: int) -> np.ndarray:
        """Take the pool's pending intake (bank-based rule) out of an issuance, pro rata.

        The issuance in whole tonnes gives up exactly the pending intake (all of it if
        less), shared pro rata by largest remainder (ties to the first rows), so no tonne
        is gained or lost by rounding. Returns what is left to issue (whole tonnes)."""
        pool = self.reserve
        whole = round_quota(amounts)
        total = int(whole.sum())
        if pool.withhold_pending <= 0 or total <= 0:
            return amounts
        tonnes = min(pool.withhold_pending, total)
        share = whole * (tonnes / total)
        withheld = np.minimum(np.floor(share).astype(np.int64), whole)
        short = tonnes - int(withheld.sum())  # the tonnes the rounding down left out
        if short:
            room = withheld < whole
            order = np.argsort(-np.where(room, share - withheld, -np.inf), kind="stable")
            withheld[order[:short]] += 1
        pool.withhold_pending -= tonnes
        pool.add(year, tonnes)
        return (whole - withheld).astype(float)

    def set_aside(self, rule_quota: np.ndarray, year: int) -> None:
        """The reserve pool's set-aside share of a rule quota goes to the pool."""
        if self.set_aside_share > 0:
            self.reserve.add(year, int(round_quota(rule_quota * self.set_aside_share).sum()))

    def previous_basis(self, year: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Verified emissions and output of the year before ``year`` (estimated when the
        year before was not simulated or the firm was not covered)."""
        firms = self.firms
        estimate_output = firms.base_output[rows]
        estimate_emissions = estimate_output * firms.baseline_intensity[rows]
        prev = year - 1
        if prev < self.start_year:
            return estimate_emissions, estimate_output
        col = self.records.col(prev)
        verified = self.records["verified_emissions"][rows, col]
        output = self.records["output"][rows, col]
        known = ~np.isnan(verified) & (output > 0)
        return (np.where(known, verified, estimate_emissions),
                np.where(known, output, estimate_output))

    def pre_allocate(self, year: int) -> None:
        """Preliminary free quota of a compliance year, on the year before's data."""
        for sector in range(self.n_sectors):
            rows = self.firms.sector_rows(sector, year)
            if not len(rows):
                continue
            verified, output = self.previous_basis(year, rows)
            amounts = self.allocation.pre_allocation(sector, year, verified, output)
            if amounts.any():
                self.issue_free(rows, amounts, year)
                self.records["pre_allocated"][rows, self.records.col(year)] += round_quota(
                    amounts)

    def true_up(self, year: int) -> None:
        """Final free quota from verified data; the difference to what was issued."""
        records = self.records
        col = records.col(year)
        allocation = self.allocation
        for sector in range(self.n_sectors):
            rows = self.firms.sector_rows(sector, year)
            if not len(rows):
                continue
            if allocation.rule(sector, year).issued_at_year_start:
                self.recover_advance(rows, year)
                continue
            output = records["output"][rows, col]
            verified = records["verified_emissions"][rows, col]
            self.set_aside(allocation.rule_quota(sector, year, output, verified), year)
            final = allocation.final_free_quota(sector, year, output, verified)
            final = self.withhold_for_reserve(final, year)
            delta = round_quota(final) - records["free_entitled"][rows, col]
            more = delta > 0
            if more.any():
                self.issue_free(rows[more], delta[more].astype(float), year)
            less = delta < 0
            if less.any():
                self.withdraw(rows[less], -delta[less], year)

    def recover_advance(self, rows: np.ndarray, year: int) -> None:
        """The true-up under an absolute cap: the January quota is final, so what was
        counted as issued beyond it (a loan advanced from vintage ``year`` at an earlier
        deadline, ``Compliance.borrow``) is withdrawn, and owed where not held, as a
        benchmark's true-up withdraws it from the final free quota."""
        col = self.records.col(year)
        excess = self.records["free_entitled"][rows, col] - self.records["cap_quota"][rows, col]
        over = excess > 0
        if over.any():
            self.withdraw(rows[over], excess[over], year)

    def withdraw(self, rows: np.ndarray, amounts: np.ndarray, year: int) -> None:
        """Recover over-issued pre-allocation; what the firm no longer holds is owed.

        When the final entitlement falls below the penalty deduction already taken from
        it (output collapsed), the part of the deduction not covered goes back to
        pending, to be taken from the next issuance, instead of being withdrawn from
        quota the firm holds for other reasons."""
        records = self.records
        col = records.col(year)
        uncovered = np.minimum(np.maximum(amounts - records["free_allocation"][rows, col], 0),
                               records["deducted"][rows, col])
        if uncovered.any():
            self.firms.pending_deduction[rows] += uncovered
            records["deducted"][rows, col] -= uncovered
            records["free_entitled"][rows, col] -= uncovered
            amounts = amounts - uncovered
        taken = self.registry.take(rows, amounts, self.registry.vintages[-1], "cancelled")
        got = taken.sum(axis=1)
        records["withdrawn"][rows, col] += got
        records["owed"][rows, col] += amounts - got
        records["free_entitled"][rows, col] -= amounts
        records["free_allocation"][rows, col] -= got

    def issue_absolute_caps(self, year: int) -> None:
        """In January, sectors under an absolute cap get their year's quota in full."""
        allocation = self.allocation
        for sector in range(self.n_sectors):
            rule = allocation.rule(sector, year)
            rows = self.firms.sector_rows(sector, year)
            if not rule.issued_at_year_start or not len(rows):
                continue
            if not allocation.has_cap_basis(sector):
                self.fix_cap_basis(sector, year, rows)
            cap, shares = allocation.sector_cap(sector, year)
            members = np.flatnonzero(self.firms.sector == sector)
            share_of = dict(zip(members.tolist(), shares, strict=True))
            rule_quota = cap * np.array([share_of[r] for r in rows])
            self.set_aside(rule_quota, year)
            final = self.withhold_for_reserve(rule_quota * allocation.free_share(sector, year),
                                              year)
            self.issue_free(rows, final, year)
            self.records["cap_quota"][rows, self.records.col(year)] += round_quota(final)

    def fix_cap_basis(self, sector: int, year: int, rows: np.ndarray) -> None:
        """The cap starts at the sector's latest full-year emissions; shares follow
        historical output x benchmark (mean output of the simulated years before)."""
        firms = self.firms
        records = self.records
        members = np.flatnonzero(firms.sector == sector)
        prev = year - 1
        if prev >= self.start_year:
            cols = slice(0, records.col(prev) + 1)
            history = records["output"][members, cols]
            years_covered = np.maximum((history > 0).sum(axis=1), 1)
            mean_output = history.sum(axis=1) / years_covered
            mean_output = np.where(mean_output > 0, mean_output, firms.base_output[members])
            base = float(records["reported_emissions"][members, records.col(prev)].sum())
        else:
            mean_output = firms.base_output[members]
            base = 0.0
        if base <= 0:
            base = float((firms.base_output * firms.intensity)[members].sum())
        shares = mean_output * self.allocation.benchmark(sector, year)
        self.allocation.set_cap_basis(sector, year, base, shares)
