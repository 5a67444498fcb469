"""Monitoring, reporting and verification (MRV): monthly reports, misreporting,
inspections and the verified emissions that set each compliance year's obligation.

Each month a covered firm reports its emissions; a firm that misreports under-reports
them by ``mrv.misreporting_bias``. In the verification month of the next year the
year's reports are verified: an inspected report (at random, or risk-based with the
same budget) that hides emissions is found with ``mrv.detection_probability``; the
firm then owes its true emissions and a fine of ``fine_multiple`` x the year's mean
price x the hidden tonnes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only
    from etsim.agents.population import FirmState
    from etsim.model.allocation import AllocationPolicy
    from etsim.model.records import FirmYears
    from etsim.model.scenario import MRVConfig


def accounting_factor(changes: dict[str, float], after: int, through: int) -> float:
    """How much a sector's measured intensity falls between two years through changes of
    accounting (``sectors.NAME.accounting_change``).

    Args:
        changes: The sector's accounting changes, year (text) to share.
        after: The last year whose changes are already counted.
        through: The year asked for.

    Returns:
        The product over the listed years Y with after < Y <= through of (1 - share):
        1.0 when none falls in between.
    """
    factor = 1.0
    for year, share in sorted(changes.items()):
        if after < int(year) <= through:
            factor *= 1.0 - share
    return factor


class MRV:
    """Reports, inspections and verification of the firms' emissions.

    Args:
        config: The scenario's ``[mrv]`` section.
        firms: The firms' state (``misreports`` and ``cash`` change).
        records: The firm-year records (reported and verified emissions, fines, the
            benchmark of the verified year and the ``misreported`` flag are written).
        allocation: The allocation policy (the benchmark recorded with verification).
        rng: The model's random generator.
        payments: The run's money flows (fines are added).
    """

    def __init__(self, config: MRVConfig, firms: FirmState, records: FirmYears,
                 allocation: AllocationPolicy, rng: np.random.Generator,
                 payments: dict[str, float]) -> None:
        self.config = config
        self.firms = firms
        self.records = records
        self.allocation = allocation
        self.rng = rng
        self.payments = payments
        # the last year whose accounting changes are in the firms' intensities
        self.accounting_year = allocation.scenario.start_year - 1

    def change_accounting(self, year: int) -> None:
        """Apply the accounting changes of ``year`` (``sectors.NAME.accounting_change``):
        every firm of a sector with a change that year has its measured direct intensity
        cut by the share from January on. The baseline intensity is cut, so the options
        in effect, those still open and the firms' projections all follow it."""
        firms = self.firms
        self.accounting_year = year
        for sector in range(len(self.allocation.sector_names)):
            factor = accounting_factor(self.allocation.config(sector).accounting_change,
                                       year - 1, year)
            if factor != 1.0:
                # a new array, not an update in place: what is cached from the old
                # intensities (the fundamental price's abatement curve) sees the change
                firms.baseline_intensity = np.where(firms.sector == sector,
                                                    firms.baseline_intensity * factor,
                                                    firms.baseline_intensity)

    def decide_misreporting(self, year: int) -> None:
        """Who under-reports this year: a fixed share, or each firm's own weighing of the
        gain (the quota it need not surrender) against the expected fine and the hidden
        quota it must surrender when found (Becker's crime-and-punishment rule)."""
        mrv = self.config
        if mrv.misreporting_mode == "decision":
            caught = mrv.inspection_probability * mrv.detection_probability
            expected_cost = caught * (mrv.fine_multiple + 1.0) * self.firms.risk_factor
            self.firms.misreports = expected_cost < 1.0
        self.records["misreported"][:, self.records.col(year)] = self.firms.misreports

    def report_month(self, year: int, emissions: np.ndarray) -> None:
        """Add a month's reported emissions: true ones, or under-reported by the bias."""
        reported = np.where(self.firms.misreports,
                            emissions * (1 - self.config.misreporting_bias), emissions)
        self.records["reported_emissions"][:, self.records.col(year)] += reported

    def inspected(self, year: int, covered: np.ndarray) -> np.ndarray:
        """Firms inspected for a year's report: at random, or risk-based with the same
        budget (the covered firms whose reported intensity fell most since their last
        verified year)."""
        mrv = self.config
        n = len(covered)
        if mrv.inspection_selection == "random":
            return self.rng.random(n) < mrv.inspection_probability
        col = self.records.col(year)
        records = self.records
        with np.errstate(divide="ignore", invalid="ignore"):
            reported = records["reported_emissions"][:, col] / records["output"][:, col]
            score = np.full(n, np.inf)
            if col > 0:
                before = (records["verified_emissions"][:, col - 1]
                          / records["output"][:, col - 1])
                score = reported / before
        score = np.where(np.isfinite(score), score, 1.0 + self.rng.random(n))
        budget = int(round(mrv.inspection_probability * covered.sum()))
        order = np.lexsort((self.rng.random(n), np.where(covered, score, np.inf)))
        inspected = np.zeros(n, dtype=bool)
        inspected[order[:budget]] = True
        return inspected

    def verify(self, year: int, mean_price: float) -> None:
        """Verified emissions of a compliance year, with inspections of the reports.

        Args:
            year: The compliance year.
            mean_price: The year's mean price (CNY/t), which prices the fines.
        """
        mrv = self.config
        records = self.records
        col = records.col(year)
        covered = self.firms.covered(year)
        n = len(covered)
        reported = records["reported_emissions"][:, col]
        true = records["emissions"][:, col]
        inspected = self.inspected(year, covered)
        found = inspected & (self.rng.random(n) < mrv.detection_probability)
        detected = covered & found & records["misreported"][:, col].astype(bool)
        verified = np.where(detected, true, reported)
        hidden = true - reported
        fine = np.where(detected, mrv.fine_multiple * mean_price * hidden, 0.0)
        records["verified_emissions"][:, col] = np.where(covered, np.round(verified), np.nan)
        records["misreporting_fine"][:, col] = fine
        records["benchmark"][:, col] = [
            self.allocation.benchmark(s, year) for s in self.firms.sector
        ]
        self.firms.cash -= fine
        self.payments["fines"] += float(fine.sum())
        records.verified_known[col] = True
