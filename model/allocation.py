"""Allocation rules: how much quota each firm gets for a compliance year.

Rules are a registry keyed by the names used in scenario files
(``sectors.NAME.allocation.rule``), selectable per sector and per year:

- ``verified_emissions``: quota equals verified emissions (China's 2024 rule);
- ``intensity``: quota = output x benchmark x adjustment factor, the benchmark
  tightening by a yearly rate (China's rule from 2025; no absolute cap);
- ``absolute_cap``: a sector cap declining by a yearly factor, shared among firms by
  historical output x benchmark.

The paid share, the reserve set-aside and the timing (pre-allocation, true-up,
auctions) are applied by :class:`AllocationPolicy` on top of whichever rule is in
force, so each rule is only its formula.

What firms *expect* may differ from the policy: with ``[[announcements]]``, a sector's
plan of a year is known only from the day it is published (:class:`PublishedPlans`);
:class:`KnownAllocation` answers as the policy would, with the plans known on a given
day and, for years not yet announced, the latest known plan carried on and tightened by
``trading.unpublished_tightening``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from etsim.model.mrv import accounting_factor
from etsim.model.plugins import lookup
from etsim.model.scenario import Scenario, SectorConfig, schedule_value

if TYPE_CHECKING:  # annotations only
    from etsim.model.calendar import TradingCalendar


@dataclass
class AllocationInputs:
    """What a rule may use for one sector's firms in one compliance year."""

    output: np.ndarray
    verified_emissions: np.ndarray
    benchmark: float
    adjustment_factor: float
    sector_cap: float
    cap_shares: np.ndarray


class VerifiedEmissionsRule:
    """Quota equals verified emissions: no surplus, no deficit."""

    name = "verified_emissions"
    pre_allocated = False
    issued_at_year_start = False

    def quota(self, inputs: AllocationInputs) -> np.ndarray:
        """Quota per firm (t)."""
        return inputs.verified_emissions.astype(float)

    def quota_per_unit(self, benchmark: float, adjustment_factor: float,
                       intensity: np.ndarray) -> np.ndarray:
        """Quota one more unit of output earns (t/unit): its own emissions."""
        return intensity


class IntensityRule:
    """Quota = actual output x benchmark x adjustment factor."""

    name = "intensity"
    pre_allocated = True
    issued_at_year_start = False

    def quota(self, inputs: AllocationInputs) -> np.ndarray:
        """Quota per firm (t)."""
        return inputs.output * inputs.benchmark * inputs.adjustment_factor

    def quota_per_unit(self, benchmark: float, adjustment_factor: float,
                       intensity: np.ndarray) -> np.ndarray:
        """Quota one more unit of output earns (t/unit): the benchmark. This is the
        output subsidy of intensity rules (Fischer 2001)."""
        return np.full_like(intensity, benchmark * adjustment_factor)


class AbsoluteCapRule:
    """A sector cap shared among firms by historical output x benchmark."""

    name = "absolute_cap"
    pre_allocated = False
    issued_at_year_start = True

    def quota(self, inputs: AllocationInputs) -> np.ndarray:
        """Quota per firm (t)."""
        return inputs.sector_cap * inputs.cap_shares

    def quota_per_unit(self, benchmark: float, adjustment_factor: float,
                       intensity: np.ndarray) -> np.ndarray:
        """Quota one more unit of output earns (t/unit): none, the cap is fixed."""
        return np.zeros_like(intensity)


ALLOCATION_RULES: dict[str, type] = {
    rule.name: rule for rule in (VerifiedEmissionsRule, IntensityRule, AbsoluteCapRule)
}


def allocation_rule(name: str):
    """The rule object registered under ``name``."""
    return lookup(ALLOCATION_RULES, name, "allocation rule")()


def benchmark_in_year(sector: SectorConfig, year: int) -> float:
    """The sector's benchmark (tCO2/unit) in ``year``, tightened from its base year.

    Benchmark of year Y = benchmark x product over the years after the base year up
    to Y of (1 - tightening of that year). Years before the base year keep the base.
    """
    value = sector.benchmark
    for later in range(sector.benchmark_base_year + 1, year + 1):
        value *= 1.0 - schedule_value(sector.allocation.tightening, later)
    return value


def round_quota(amounts: np.ndarray) -> np.ndarray:
    """Quota is issued in whole tonnes (rounded half up, never negative)."""
    return np.floor(np.maximum(amounts, 0.0) + 0.5).astype(np.int64)


class AllocationPolicy:
    """The quota amounts of a scenario: rules, caps, paid shares, pre-allocation.

    Args:
        scenario: The resolved scenario.
        sector_names: Sector name per sector index, in the model's order.
    """

    def __init__(self, scenario: Scenario, sector_names: list[str]) -> None:
        self.scenario = scenario
        self.sector_names = sector_names
        self._first_cap: dict[int, tuple[int, float, np.ndarray]] = {}
        # the scenario does not change in a run: each sector's rule and benchmark of a
        # year are worked out once (the monthly fundamental price asks for them often)
        self._rules: dict[tuple[int, int], object] = {}
        self._benchmarks: dict[tuple[int, int], float] = {}

    def config(self, sector: int) -> SectorConfig:
        """The sector's configuration."""
        return self.scenario.sectors[self.sector_names[sector]]

    def rule(self, sector: int, year: int):
        """The allocation rule in force for a sector in a compliance year."""
        key = (sector, year)
        rule = self._rules.get(key)
        if rule is None:
            rule = self._rules[key] = allocation_rule(
                schedule_value(self.config(sector).allocation.rule, year))
        return rule

    def benchmark(self, sector: int, year: int) -> float:
        """The sector's benchmark in a year (tCO2/unit)."""
        key = (sector, year)
        value = self._benchmarks.get(key)
        if value is None:
            value = self._benchmarks[key] = benchmark_in_year(self.config(sector), year)
        return value

    def paid_share(self, sector: int, year: int) -> float:
        """Share of the year's quota sold at auction."""
        return float(schedule_value(self.config(sector).allocation.paid_share, year))

    def adjustment_factor(self, sector: int, year: int) -> float:
        """The factor multiplying intensity quotas in a year."""
        return float(schedule_value(self.config(sector).allocation.adjustment_factor, year))

    def set_cap_basis(
        self, sector: int, first_year: int, base_emissions: float, shares: np.ndarray
    ) -> None:
        """Fix a sector's cap in its first capped year and the firms' shares of it."""
        config = self.config(sector).allocation
        if config.cap_base_t is not None:
            base_emissions = config.cap_base_t * self.scenario.scale
        total = shares.sum()
        normalised = shares / total if total > 0 else np.full(len(shares), 1.0 / len(shares))
        self._first_cap[sector] = (first_year, base_emissions, normalised)

    def has_cap_basis(self, sector: int) -> bool:
        """Whether the sector's cap has been fixed."""
        return sector in self._first_cap

    def sector_cap(self, sector: int, year: int) -> tuple[float, np.ndarray]:
        """The sector's absolute cap in a year (t) and the firms' shares of it."""
        first_year, base, shares = self._first_cap[sector]
        decline = self.config(sector).allocation.cap_decline
        return base * (1.0 - decline) ** (year - first_year), shares

    def rule_quota(
        self, sector: int, year: int, output: np.ndarray, verified: np.ndarray
    ) -> np.ndarray:
        """The quota (t, before paid share and set-aside) the rule in force gives."""
        rule = self.rule(sector, year)
        cap, shares = (0.0, np.zeros(len(output)))
        if rule.name == "absolute_cap":
            cap, shares = self.sector_cap(sector, year)
        inputs = AllocationInputs(
            output=output,
            verified_emissions=verified,
            benchmark=self.benchmark(sector, year),
            adjustment_factor=self.adjustment_factor(sector, year),
            sector_cap=cap,
            cap_shares=shares,
        )
        return rule.quota(inputs)

    def final_free_quota(
        self, sector: int, year: int, output: np.ndarray, verified: np.ndarray
    ) -> np.ndarray:
        """The final free quota (t) of a sector's firms in a compliance year: the rule's
        quota from output and verified emissions x the free share. The true-up issues
        it; firms expect it before (from their projected output and emissions)."""
        return self.rule_quota(sector, year, output, verified) * self.free_share(sector, year)

    def marginal_free_quota(self, sector: int, year: int, intensity: np.ndarray) -> np.ndarray:
        """Free quota (t) that one more unit of output earns each firm of a sector in a
        year: what makes the carbon cost of output differ between the rules."""
        adjustment = self.adjustment_factor(sector, year)
        per_unit = self.rule(sector, year).quota_per_unit(
            self.benchmark(sector, year), adjustment, intensity)
        return per_unit * self.free_share(sector, year)

    def free_share(self, sector: int, year: int) -> float:
        """Share of the rule quota given free (after paid share and reserve set-aside)."""
        set_aside = self.scenario.reserve_pool.set_aside_share
        return max(0.0, 1.0 - self.paid_share(sector, year) - set_aside)

    def pre_allocation(
        self,
        sector: int,
        year: int,
        previous_verified: np.ndarray,
        previous_output: np.ndarray,
    ) -> np.ndarray:
        """The preliminary free quota (t) for a compliance year, before the true-up."""
        rule = self.rule(sector, year)
        if not rule.pre_allocated:
            return np.zeros(len(previous_verified))
        config = self.config(sector).allocation
        if config.pre_allocation_basis == "previous_verified":
            basis = previous_verified
        else:
            basis = previous_output * self.benchmark(sector, year)
        return config.pre_allocation_share * basis * self.free_share(sector, year)


class PublishedPlans:
    """When firms learn each sector's allocation plan of each year (``[[announcements]]``).

    Args:
        scenario: The resolved scenario.
        sector_names: Sector name per sector index, in the model's order.
        calendar: The run's trading calendar (an announcement takes effect on the first
            trading day on or after its date).
    """

    def __init__(self, scenario: Scenario, sector_names: list[str],
                 calendar: TradingCalendar) -> None:
        self.first_day: dict[tuple[int, int], int] = {}  # (sector, year) -> day known
        self.days: set[int] = set()  # trading days on which something is announced
        index = {name: i for i, name in enumerate(sector_names)}
        announced: set[int] = set()
        for announcement in scenario.announcements:
            day = calendar.day_of(announcement.date)
            self.days.add(day)
            for name in announcement.sectors:
                if name not in index:  # a sector without firms in this run
                    continue
                announced.add(index[name])
                for year in announcement.years:
                    key = (index[name], year)
                    self.first_day[key] = min(self.first_day.get(key, day), day)
        self.announced_sectors = frozenset(announced)
        # the terms a sector starts the run on are known from the start
        self.first_year = [max(scenario.sectors[name].entry_year, scenario.start_year)
                           for name in sector_names]

    @property
    def any(self) -> bool:
        """Whether any simulated sector's plans are announced (else all are known)."""
        return bool(self.announced_sectors)

    def known(self, sector: int, year: int, day: int) -> bool:
        """Whether firms know a sector's plan of ``year`` on trading day ``day``."""
        if sector not in self.announced_sectors or year <= self.first_year[sector]:
            return True
        return self.first_day.get((sector, year), day + 1) <= day

    def basis_year(self, sector: int, year: int, day: int) -> int:
        """The year whose plan firms use for ``year`` on ``day``: ``year`` itself when
        known, else the latest known year before it (the sector's first year at worst)."""
        for candidate in range(year, self.first_year[sector], -1):
            if self.known(sector, candidate, day):
                return candidate
        return min(year, self.first_year[sector])


class KnownAllocation(AllocationPolicy):
    """The allocation policy as firms know it on a day: the plans announced so far, and
    for a year not yet announced the latest known plan (its rule, adjustment factor and
    paid share) with its benchmark, or absolute cap, tightened by
    ``trading.unpublished_tightening`` for each year after it.

    It shares the policy's absolute-cap basis (fixed by the issuance in the first capped
    year) and never sets it. ``day`` is the trading day whose knowledge it answers with.

    Args:
        policy: The allocation policy in force.
        plans: When each plan is published.
    """

    def __init__(self, policy: AllocationPolicy, plans: PublishedPlans) -> None:
        super().__init__(policy.scenario, policy.sector_names)
        self._first_cap = policy._first_cap  # the same dict: the cap basis once fixed
        self.plans = plans
        self.tightening = policy.scenario.trading.unpublished_tightening
        self.day = 0

    def basis(self, sector: int, year: int) -> int:
        """The year whose published plan stands for ``year`` today."""
        return self.plans.basis_year(sector, year, self.day)

    def expected_cut(self, sector: int, year: int) -> float:
        """The factor firms apply to the basis year's benchmark or cap for ``year``."""
        return (1.0 - self.tightening) ** (year - self.basis(sector, year))

    def rule(self, sector: int, year: int):
        """The rule firms expect for a sector in a compliance year."""
        return super().rule(sector, self.basis(sector, year))

    def benchmark(self, sector: int, year: int) -> float:
        """The benchmark firms expect in a year (tCO2/unit): the basis year's, tightened
        by ``unpublished_tightening``, and falling with the sector's accounting changes
        in between (a benchmark is set on the balance value of measured intensities)."""
        basis = self.basis(sector, year)
        measured = accounting_factor(self.config(sector).accounting_change, basis, year)
        return super().benchmark(sector, basis) * self.expected_cut(sector, year) * measured

    def paid_share(self, sector: int, year: int) -> float:
        """The paid share firms expect in a year."""
        return super().paid_share(sector, self.basis(sector, year))

    def adjustment_factor(self, sector: int, year: int) -> float:
        """The adjustment factor firms expect in a year."""
        return super().adjustment_factor(sector, self.basis(sector, year))

    def sector_cap(self, sector: int, year: int) -> tuple[float, np.ndarray]:
        """The absolute cap firms expect in a year (t) and the firms' shares of it."""
        cap, shares = super().sector_cap(sector, self.basis(sector, year))
        return cap * self.expected_cut(sector, year), shares

    def set_cap_basis(self, sector: int, first_year: int, base_emissions: float,
                      shares: np.ndarray) -> None:
        """Firms' knowledge never fixes a cap: only the issuance does."""
        raise RuntimeError("the cap basis is fixed by the allocation policy, not by "
                           "what firms know")
