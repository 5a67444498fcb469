"""Allocation rules and policy on hand-computed cases, then the rules inside a classroom run.

Each unit test works the numbers out by hand in a comment and asserts them exactly (or to
floating-point precision); the run tests read output, benchmark and allocation back from
the ``firm_years`` table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from etsim import CarbonMarketModel, load_scenario
from etsim.model.allocation import (
    ALLOCATION_RULES,
    AbsoluteCapRule,
    AllocationInputs,
    AllocationPolicy,
    IntensityRule,
    VerifiedEmissionsRule,
    allocation_rule,
    benchmark_in_year,
    round_quota,
)
from etsim.model.scenario import schedule_value

# --- schedules and benchmarks --------------------------------------------------------------


def test_schedule_value_is_a_step_function() -> None:
    schedule = {"2024": 0.0, "2027": 0.1, "2030": 0.25}
    assert schedule_value(schedule, 2020) == 0.0  # before the first listed year: the first
    assert schedule_value(schedule, 2024) == 0.0
    assert schedule_value(schedule, 2026) == 0.0  # holds until the next listed year
    assert schedule_value(schedule, 2027) == 0.1
    assert schedule_value(schedule, 2029) == 0.1
    assert schedule_value(schedule, 2030) == 0.25
    assert schedule_value(schedule, 2090) == 0.25
    # listed out of order: still read by year, not by position
    unordered = {"2030": 3.0, "2026": 1.0, "2028": 2.0}
    assert [schedule_value(unordered, y) for y in (2025, 2026, 2027, 2028, 2031)] == [
        1.0, 1.0, 1.0, 2.0, 3.0,
    ]
    # one value: every year; rule names work the same way
    assert schedule_value(0.07, 1999) == 0.07
    rules = {"2024": "verified_emissions", "2025": "intensity"}
    assert schedule_value(rules, 2024) == "verified_emissions"
    assert schedule_value(rules, 2031) == "intensity"


def _steel(tightening, benchmark: float = 2.0, base_year: int = 2025):
    scenario = load_scenario("classroom", {
        "sectors.steel.benchmark": benchmark,
        "sectors.steel.benchmark_base_year": base_year,
        "sectors.steel.allocation.tightening": tightening,
    })
    return scenario.sectors["steel"]


def test_benchmark_tightens_by_the_schedule_of_each_year() -> None:
    # benchmark 2.0 in 2025; tightening 2% a year, 5% from 2028:
    #   2026: 2.0 x 0.98                   = 1.96
    #   2027: 2.0 x 0.98 x 0.98            = 1.9208
    #   2028: 1.9208 x 0.95                = 1.82476
    #   2029: 1.9208 x 0.95 x 0.95         = 1.733522
    steel = _steel({"2025": 0.02, "2028": 0.05})
    assert benchmark_in_year(steel, 2025) == 2.0
    assert benchmark_in_year(steel, 2026) == pytest.approx(1.96, rel=1e-12)
    assert benchmark_in_year(steel, 2027) == pytest.approx(1.9208, rel=1e-12)
    assert benchmark_in_year(steel, 2028) == pytest.approx(1.82476, rel=1e-12)
    assert benchmark_in_year(steel, 2029) == pytest.approx(1.733522, rel=1e-12)
    # years before the base year keep the base benchmark
    assert benchmark_in_year(steel, 2023) == 2.0


def test_benchmark_tightening_counts_only_years_after_the_base_year() -> None:
    # base year 2027: the 2026 rate (0.5) never applies; 2028 = 3 x 0.9, 2029 = 3 x 0.9^2
    steel = _steel({"2026": 0.5, "2028": 0.1}, benchmark=3.0, base_year=2027)
    assert benchmark_in_year(steel, 2027) == 3.0
    assert benchmark_in_year(steel, 2028) == pytest.approx(2.7, rel=1e-12)
    assert benchmark_in_year(steel, 2029) == pytest.approx(2.43, rel=1e-12)
    flat = _steel(0.0, benchmark=1.25)
    assert benchmark_in_year(flat, 2035) == 1.25


# --- the three rules on three hand-built firms ---------------------------------------------

INPUTS = AllocationInputs(
    output=np.array([100.0, 200.0, 50.0]),
    verified_emissions=np.array([150.0, 180.0, 60.0]),
    benchmark=1.2,
    adjustment_factor=0.9,
    sector_cap=1000.0,
    cap_shares=np.array([0.5, 0.3, 0.2]),
)


def test_intensity_rule_is_output_times_benchmark_times_adjustment() -> None:
    # 100 x 1.2 x 0.9 = 108; 200 x 1.2 x 0.9 = 216; 50 x 1.2 x 0.9 = 54
    quota = IntensityRule().quota(INPUTS)
    np.testing.assert_allclose(quota, [108.0, 216.0, 54.0], rtol=1e-12)


def test_verified_emissions_rule_is_verified_emissions() -> None:
    quota = VerifiedEmissionsRule().quota(INPUTS)
    assert quota.tolist() == [150.0, 180.0, 60.0]
    assert quota.dtype == float


def test_absolute_cap_rule_shares_the_cap() -> None:
    # 1000 x (0.5, 0.3, 0.2)
    np.testing.assert_allclose(AbsoluteCapRule().quota(INPUTS), [500.0, 300.0, 200.0])


def test_rule_registry_and_timing_flags() -> None:
    assert set(ALLOCATION_RULES) == {"verified_emissions", "intensity", "absolute_cap"}
    assert isinstance(allocation_rule("intensity"), IntensityRule)
    # only the intensity rule is pre-allocated; only the cap is issued in January
    assert [allocation_rule(n).pre_allocated for n in ALLOCATION_RULES] == [False, True, False]
    assert [allocation_rule(n).issued_at_year_start for n in ALLOCATION_RULES] == [
        False, False, True,
    ]
    with pytest.raises(KeyError, match="absolute_cap"):
        allocation_rule("grandfathering")


def test_round_quota_rounds_half_up_to_whole_non_negative_tonnes() -> None:
    amounts = np.array([0.4, 0.5, 1.5, 2.4999, 2.5, -3.0, -0.2, 1e9 + 0.5])
    rounded = round_quota(amounts)
    assert rounded.dtype == np.int64
    assert rounded.tolist() == [0, 1, 2, 2, 3, 0, 0, 1_000_000_001]


# --- the policy: paid share, set-aside, pre-allocation, caps --------------------------------


def _policy(**overrides) -> AllocationPolicy:
    scenario = load_scenario("classroom", overrides)
    return AllocationPolicy(scenario, ["steel", "cement", "aluminium"])


def test_free_share_is_what_paid_share_and_set_aside_leave() -> None:
    policy = _policy(**{"sectors.*.allocation.paid_share": {"2025": 0.0, "2027": 0.1},
                        "reserve_pool.set_aside_share": 0.05})
    # 2026: 1 - 0 - 0.05 = 0.95; 2027 on: 1 - 0.1 - 0.05 = 0.85
    assert policy.paid_share(0, 2026) == 0.0
    assert policy.paid_share(0, 2027) == 0.1
    assert policy.free_share(0, 2026) == pytest.approx(0.95, abs=1e-12)
    assert policy.free_share(1, 2027) == pytest.approx(0.85, abs=1e-12)
    assert policy.free_share(2, 2030) == pytest.approx(0.85, abs=1e-12)
    assert _policy().free_share(0, 2025) == 1.0


def test_pre_allocation_is_70_percent_of_previous_verified_times_free_share() -> None:
    policy = _policy(**{"sectors.*.allocation.paid_share": 0.1,
                        "reserve_pool.set_aside_share": 0.05})
    verified = np.array([1000.0, 2000.0, 0.0])
    output = np.array([10.0, 20.0, 30.0])
    # 0.7 x verified x (1 - 0.1 - 0.05) = 0.595 x verified
    np.testing.assert_allclose(policy.pre_allocation(0, 2026, verified, output),
                               [595.0, 1190.0, 0.0], rtol=1e-12)


def test_pre_allocation_on_previous_output_uses_this_years_benchmark() -> None:
    policy = _policy(**{"sectors.steel.allocation.pre_allocation_basis": "previous_output",
                        "sectors.steel.allocation.pre_allocation_share": 0.5})
    # steel: benchmark 2.0 in 2025, tightening 3%: 2027 benchmark = 2 x 0.97^2 = 1.8818
    # 0.5 x 100 x 1.8818 = 94.09 (free share 1)
    amounts = policy.pre_allocation(0, 2027, np.array([999.0]), np.array([100.0]))
    np.testing.assert_allclose(amounts, [94.09], rtol=1e-12)


def test_no_pre_allocation_under_verified_emissions_or_cap_rules() -> None:
    policy = _policy(**{"sectors.steel.allocation.rule": "verified_emissions",
                        "sectors.cement.allocation.rule": "absolute_cap"})
    verified = np.array([500.0, 700.0])
    assert policy.pre_allocation(0, 2026, verified, verified).tolist() == [0.0, 0.0]
    assert policy.pre_allocation(1, 2026, verified, verified).tolist() == [0.0, 0.0]
    np.testing.assert_allclose(policy.pre_allocation(2, 2026, verified, verified),
                               [350.0, 490.0], rtol=1e-12)


def test_sector_cap_declines_from_its_first_year() -> None:
    policy = _policy(**{"sectors.*.allocation.rule": {"2025": "intensity",
                                                       "2027": "absolute_cap"},
                        "sectors.*.allocation.cap_decline": 0.1})
    assert policy.rule(0, 2026).name == "intensity"
    assert policy.rule(0, 2027).name == "absolute_cap"
    assert not policy.has_cap_basis(0)
    policy.set_cap_basis(0, 2027, 1_000_000.0, np.array([1.0, 3.0]))
    assert policy.has_cap_basis(0)
    # 2027: 1e6; 2028: 1e6 x 0.9 = 900,000; 2030: 1e6 x 0.9^3 = 729,000
    cap, shares = policy.sector_cap(0, 2027)
    assert cap == pytest.approx(1_000_000.0)
    np.testing.assert_allclose(shares, [0.25, 0.75])
    assert policy.sector_cap(0, 2028)[0] == pytest.approx(900_000.0, rel=1e-12)
    assert policy.sector_cap(0, 2030)[0] == pytest.approx(729_000.0, rel=1e-12)
    # the rule quota in 2028 is the cap shared out: 900,000 x (0.25, 0.75)
    quota = policy.rule_quota(0, 2028, np.array([5.0, 5.0]), np.array([1.0, 1.0]))
    np.testing.assert_allclose(quota, [225_000.0, 675_000.0], rtol=1e-12)
    # all-zero shares split the cap equally
    policy.set_cap_basis(1, 2027, 600.0, np.zeros(3))
    np.testing.assert_allclose(policy.sector_cap(1, 2027)[1], [1 / 3, 1 / 3, 1 / 3])


def test_cap_base_t_overrides_the_emissions_basis_and_scales() -> None:
    policy = _policy(**{"sectors.steel.allocation.cap_base_t": 4_000_000.0, "scale": 0.5,
                        "sectors.steel.allocation.cap_decline": 0.02})
    policy.set_cap_basis(0, 2026, 123.0, np.array([1.0]))
    # 4e6 x 0.5 = 2e6 in 2026; 2e6 x 0.98^2 = 1,920,800 in 2028
    assert policy.sector_cap(0, 2026)[0] == pytest.approx(2_000_000.0)
    assert policy.sector_cap(0, 2028)[0] == pytest.approx(1_920_800.0, rel=1e-12)


def test_rule_quota_uses_benchmark_and_adjustment_factor_of_the_year() -> None:
    policy = _policy(**{"sectors.cement.allocation.adjustment_factor": {"2025": 1.0,
                                                                        "2026": 0.8}})
    # cement benchmark 0.8534 in 2025, tightening 3%: 2026 = 0.827798
    # 1000 x 0.827798 x 0.8 = 662.2384
    quota = policy.rule_quota(1, 2026, np.array([1000.0]), np.array([1.0]))
    np.testing.assert_allclose(quota, [662.2384], rtol=1e-12)
    quota = policy.rule_quota(1, 2025, np.array([1000.0]), np.array([1.0]))
    np.testing.assert_allclose(quota, [853.4], rtol=1e-12)


# --- the rules inside a run -------------------------------------------------------------------


@pytest.fixture(scope="module")
def classroom_tables() -> dict[str, pd.DataFrame]:
    model = CarbonMarketModel(scenario="classroom", seed=7)
    model.run()
    return model.results()


@pytest.fixture(scope="module")
def classroom_years(classroom_tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return classroom_tables["firm_years"]


def test_run_benchmarks_follow_the_tightening(classroom_years: pd.DataFrame) -> None:
    base = {"steel": 2.0, "cement": 0.8534, "aluminium": 1.57}
    for row in classroom_years.itertuples():
        expected = base[row.sector] * 0.97 ** (row.year - 2025)
        assert row.benchmark == pytest.approx(expected, rel=1e-12), row


def test_run_free_allocation_is_output_times_benchmark(classroom_years: pd.DataFrame) -> None:
    fy = classroom_years
    entitled = np.floor(fy["output"] * fy["benchmark"] + 0.5)
    # whatever a shortfall deduction took off is the only difference
    gross = fy["free_allocation"] + fy["deducted"]
    assert (gross - entitled).abs().max() <= 1
    clean = fy[fy["deducted"] == 0]
    assert len(clean) >= len(fy) // 2
    diff = (clean["free_allocation"] - np.floor(clean["output"] * clean["benchmark"] + 0.5)).abs()
    assert diff.max() <= 1


def test_run_pre_allocation_is_70_percent_of_previous_verified(
    classroom_tables: dict[str, pd.DataFrame],
) -> None:
    fy, firms = classroom_tables["firm_years"], classroom_tables["firms"]
    # 2026: 0.7 x verified 2025 (free share 1), rounded half up
    before = fy[fy["year"] == 2025].set_index("firm_id")["verified_emissions"]
    now = fy[fy["year"] == 2026].set_index("firm_id")
    expected = np.floor(0.7 * before + 0.5)
    assert (now["pre_allocated"] - expected.loc[now.index]).abs().max() == 0
    # 2025, the first year: no verified year before, so capacity x baseline intensity
    first = fy[fy["year"] == 2025].set_index("firm_id")
    static = firms.set_index("firm_id").loc[first.index]
    expected = np.floor(0.7 * static["capacity"] * static["baseline_intensity"] + 0.5)
    assert (first["pre_allocated"] - expected).abs().max() == 0


def test_run_surplus_ratio_is_one_minus_intensity_over_benchmark(
    classroom_years: pd.DataFrame,
) -> None:
    fy = classroom_years[classroom_years["deducted"] == 0]
    expected = 1.0 - fy["intensity"] / fy["benchmark"]
    assert (fy["surplus_ratio"] - expected).abs().max() < 1e-5
    # the definition of the column itself
    by_definition = (fy["free_allocation"] - fy["verified_emissions"]) / fy["free_allocation"]
    np.testing.assert_allclose(fy["surplus_ratio"], by_definition, rtol=1e-12)
    # both signs occur: low-intensity firms earn a surplus, high-intensity a deficit
    assert (fy["surplus_ratio"] > 0).any() and (fy["surplus_ratio"] < 0).any()


def test_run_surplus_falls_as_intensity_rises_within_each_sector(
    classroom_years: pd.DataFrame,
) -> None:
    groups = list(classroom_years.groupby(["sector", "year"]))
    assert len(groups) == 6
    for key, group in groups:
        rho = group["surplus_ratio"].corr(group["intensity"], method="spearman")
        assert not math.isnan(rho), key
        assert rho < -0.9, (key, rho)
