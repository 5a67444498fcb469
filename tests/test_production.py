"""Short-run output response: hand-computed sectors and the rules' marginal quota."""

from __future__ import annotations

import numpy as np
import pytest

from etsim.agents.production import CAPACITY_HEADROOM, sector_output_response
from etsim.model.allocation import AllocationPolicy
from etsim.model.scenario import load_scenario


def test_no_carbon_cost_keeps_the_plan() -> None:
    factor, rise = sector_output_response(
        np.array([100.0, 50.0]), np.zeros(2), np.array([10.0, 10.0]), 200.0, 0.5)
    assert rise == 0.0
    np.testing.assert_allclose(factor, [1.0, 1.0])


def test_equal_costs_pass_through_and_demand_falls_by_the_elasticity() -> None:
    # both pay 40 CNY/unit on a 200 CNY product: price +20%, demand x 1.2^-0.5
    factor, rise = sector_output_response(
        np.array([100.0, 100.0]), np.array([40.0, 40.0]), np.array([30.0, 30.0]), 200.0, 0.5)
    assert rise == pytest.approx(40.0)
    np.testing.assert_allclose(factor, [1.2**-0.5] * 2)


def test_a_dirty_firm_losing_its_margin_cuts_and_a_clean_one_takes_over() -> None:
    # costs 60 and 0, equal plans: rise 30; dirty profit = 20 + 30 - 60 = -10 -> half
    # its margin lost, it runs at 0.5; inelastic demand (0) wants 200 units, so the
    # clean firm takes over up to its headroom
    factor, rise = sector_output_response(
        np.array([100.0, 100.0]), np.array([60.0, 0.0]), np.array([20.0, 20.0]), 300.0, 0.0)
    assert rise == pytest.approx(30.0)
    assert factor[0] == pytest.approx(0.5)
    assert factor[1] == pytest.approx(1.0 + CAPACITY_HEADROOM)


def test_a_firm_losing_more_than_its_margin_stops() -> None:
    factor, _ = sector_output_response(
        np.array([10.0, 1000.0]), np.array([500.0, 0.0]), np.array([20.0, 20.0]), 300.0, 0.0)
    assert factor[0] == 0.0


def _policy(rule: str) -> AllocationPolicy:
    scenario = load_scenario("classroom", {
        "sectors.*.allocation.rule": rule,
        "sectors.*.allocation.adjustment_factor": 0.9,
        "sectors.*.allocation.paid_share": 0.1,
    })
    return AllocationPolicy(scenario, scenario.simulated_sectors())


def test_marginal_free_quota_differs_by_rule() -> None:
    intensity = np.array([0.9, 1.1])
    year = 2028
    policy = _policy("intensity")
    free_share = policy.free_share(0, year)
    assert free_share == pytest.approx(0.9)  # paid share 0.1, no set-aside
    # intensity rule: one more unit earns the benchmark (the output subsidy)
    per_unit = policy.benchmark(0, year) * 0.9 * free_share
    np.testing.assert_allclose(policy.marginal_free_quota(0, year, intensity), [per_unit] * 2)
    # absolute cap: nothing at the margin
    np.testing.assert_allclose(
        _policy("absolute_cap").marginal_free_quota(0, year, intensity), [0.0, 0.0])
    # verified emissions: the unit's own emissions, less the paid share
    np.testing.assert_allclose(
        _policy("verified_emissions").marginal_free_quota(0, year, intensity),
        intensity * free_share)
