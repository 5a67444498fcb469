"""Issuance on hand-built state: free quota net of deductions, the reserve's set-aside and
withheld intake, pre-allocation, true-up and withdrawal, absolute caps and the initial
bank (model/issuance.py), and the final free quota they issue (model/allocation.py).

Steel firms of the classroom scenario (intensity rule, benchmark 2.0 t/unit in 2025,
1.94 in 2026, pre-allocation 70% of the previous year's verified emissions); every
expected number is worked out in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest
from institutions import (
    STEEL,
    hand_built_market,
    holding,
    ledger_balances,
    make_firms,
)


def test_issue_free_is_net_of_the_pending_deduction() -> None:
    """A pending penalty deduction is taken from the next free quota, up to all of it."""
    market = hand_built_market(make_firms(3))
    market.firms.pending_deduction[:] = [0, 30, 150]
    market.issuance().issue_free(np.arange(3), np.array([100.0, 100.0, 100.0]), 2025)
    records, col = market.records, market.records.col(2025)
    # issued 100 - min(pending, 100): 100 / 70 / 0; firm 2 still owes 150 - 100 = 50
    np.testing.assert_array_equal(records["free_allocation"][:, col], [100, 70, 0])
    np.testing.assert_array_equal(records["deducted"][:, col], [0, 30, 100])
    np.testing.assert_array_equal(records["free_entitled"][:, col], [100, 100, 100])
    np.testing.assert_array_equal(market.firms.pending_deduction, [0, 0, 50])
    assert market.registry.total().tolist() == [100, 70, 0]
    assert market.registry.ledger()[1]["issued_free"] == 170  # vintage 2025
    assert ledger_balances(market.registry)


def test_issue_free_rounds_to_whole_tonnes_half_up() -> None:
    """Free quota is issued in whole tonnes, rounded half up, never negative."""
    market = hand_built_market(make_firms(3))
    market.issuance().issue_free(np.arange(3), np.array([99.5, 99.49, -5.0]), 2025)
    assert market.registry.total().tolist() == [100, 99, 0]


def test_withheld_intake_is_taken_pro_rata_into_the_pool() -> None:
    """A bank-based pool's pending intake is withheld from an issuance pro rata."""
    market = hand_built_market(make_firms(2))
    issuance, pool = market.issuance(), market.reserve
    pool.withhold_pending = 30
    # 30 of 300 t: each keeps 90% -> 90 and 180
    kept = issuance.withhold_for_reserve(np.array([100.0, 200.0]), 2026)
    np.testing.assert_array_equal(kept, [90.0, 180.0])
    assert (pool.holdings, pool.intake[2026], pool.withhold_pending) == (30, 30, 0)
    # more pending than issued: all 300 t withheld, 200 t left pending
    pool.withhold_pending = 500
    kept = issuance.withhold_for_reserve(np.array([100.0, 200.0]), 2027)
    np.testing.assert_array_equal(kept, [0.0, 0.0])
    assert (pool.holdings, pool.intake[2027], pool.withhold_pending) == (330, 300, 200)
    assert pool.balance() == 0
    # nothing pending: the issuance is untouched
    pool.withhold_pending = 0
    np.testing.assert_array_equal(issuance.withhold_for_reserve(np.array([7.0]), 2027), [7.0])


def test_set_aside_share_of_the_rule_quota_goes_to_the_pool() -> None:
    """The reserve's set-aside share of a rule quota, in whole tonnes, goes to the pool."""
    market = hand_built_market(make_firms(2), {"reserve_pool.set_aside_share": 0.1})
    market.issuance().set_aside(np.array([100.0, 255.0]), 2025)
    # round(10.0) + round(25.5) = 10 + 26 = 36 t
    assert market.reserve.holdings == 36
    assert market.reserve.intake[2025] == 36


def test_pre_allocation_is_70_percent_of_last_years_verified_emissions() -> None:
    """Pre-allocation is 70% of last year's verified emissions, estimated where unknown."""
    market = hand_built_market(make_firms(3, base_output=100.0, baseline_intensity=2.0))
    col = market.records.col(2025)
    market.records["verified_emissions"][:, col] = [1000.0, np.nan, 800.0]
    market.records["output"][:, col] = [500.0, 400.0, 0.0]
    market.issuance().pre_allocate(2026)
    # firm 0: 0.7 x 1000 = 700; firms 1 (not verified) and 2 (no output): 0.7 x 100 x 2.0
    # = 140 each
    col_2026 = market.records.col(2026)
    np.testing.assert_array_equal(market.records["pre_allocated"][:, col_2026],
                                  [700, 140, 140])
    np.testing.assert_array_equal(market.records["free_entitled"][:, col_2026],
                                  [700, 140, 140])
    assert [holding(market.registry, firm, 2026) for firm in range(3)] == [700, 140, 140]


def test_pre_allocation_on_previous_output_uses_this_years_benchmark() -> None:
    """With basis previous_output, pre-allocation is last year's output x this year's benchmark."""
    market = hand_built_market(
        make_firms(1), {"sectors.steel.allocation.pre_allocation_basis": "previous_output"})
    col = market.records.col(2025)
    market.records["verified_emissions"][0, col] = 1000.0
    market.records["output"][0, col] = 500.0
    market.issuance().pre_allocate(2026)
    # 0.7 x 500 x (2.0 x 0.97) = 679 t
    assert market.records["pre_allocated"][0, market.records.col(2026)] == 679


def test_true_up_issues_or_withdraws_the_difference_to_the_final_quota() -> None:
    """The true-up issues or withdraws the difference between final and pre-allocated quota."""
    market = hand_built_market(make_firms(2))
    issuance = market.issuance()
    issuance.issue_free(np.arange(2), np.array([700.0, 350.0]), 2025)  # pre-allocation
    col = market.records.col(2025)
    market.records["output"][:, col] = [500.0, 100.0]
    market.records["verified_emissions"][:, col] = [1100.0, 190.0]
    final = market.allocation.final_free_quota(STEEL, 2025, market.records["output"][:, col],
                                               market.records["verified_emissions"][:, col])
    np.testing.assert_allclose(final, [1000.0, 200.0])  # output x 2.0 x free share 1
    issuance.true_up(2025)
    # firm 0: +300 issued; firm 1: 150 withdrawn from the 350 it holds
    np.testing.assert_array_equal(market.records["free_entitled"][:, col], [1000, 200])
    np.testing.assert_array_equal(market.records["free_allocation"][:, col], [1000, 200])
    np.testing.assert_array_equal(market.records["withdrawn"][:, col], [0, 150])
    assert market.registry.total().tolist() == [1000, 200]
    assert market.registry.ledger()[1]["cancelled"] == 150
    assert ledger_balances(market.registry)


def test_final_free_quota_is_net_of_paid_share_and_set_aside() -> None:
    """The final free quota is the rule quota x (1 - paid share - set-aside share)."""
    market = hand_built_market(make_firms(1), {"sectors.steel.allocation.paid_share": 0.2,
                                               "reserve_pool.set_aside_share": 0.05})
    final = market.allocation.final_free_quota(STEEL, 2026, np.array([100.0]),
                                               np.array([210.0]))
    # 100 units x 1.94 t/unit x (1 - 0.2 - 0.05) = 145.5 t
    assert final[0] == pytest.approx(145.5)


def test_withdrawal_beyond_holdings_is_owed() -> None:
    """Over-issued quota a firm no longer holds is owed at the deadline."""
    market = hand_built_market(make_firms(1))
    issuance = market.issuance()
    issuance.issue_free(np.array([0]), np.array([350.0]), 2025)
    market.registry.take(np.array([0]), np.array([310]), 2025, "surrendered")  # sold on
    issuance.withdraw(np.array([0]), np.array([150]), 2025)
    records, col = market.records, market.records.col(2025)
    # it holds 40 of the 150: 40 withdrawn, 110 owed; entitled 350 - 150 = 200
    assert records["withdrawn"][0, col] == 40
    assert records["owed"][0, col] == 110
    assert records["free_entitled"][0, col] == 200
    assert records["free_allocation"][0, col] == 310  # 350 received, 40 given back
    assert market.registry.total()[0] == 0
    assert ledger_balances(market.registry)


def test_withdrawal_below_the_deduction_sends_it_back_to_pending() -> None:
    """A withdrawal below the deduction already taken sends the rest of it back to pending."""
    market = hand_built_market(make_firms(1))
    issuance = market.issuance()
    market.firms.pending_deduction[0] = 80
    issuance.issue_free(np.array([0]), np.array([100.0]), 2025)  # 20 issued, 80 deducted
    issuance.withdraw(np.array([0]), np.array([90]), 2025)  # final entitlement 10
    records, col = market.records, market.records.col(2025)
    # 90 to recover, 20 of it issued: min(90 - 20, 80) = 70 of the deduction goes back
    # to pending; the 20 issued are withdrawn; the entitlement of 10 is all deducted
    assert market.firms.pending_deduction[0] == 70
    assert records["deducted"][0, col] == 10
    assert records["withdrawn"][0, col] == 20
    assert records["owed"][0, col] == 0
    assert records["free_entitled"][0, col] == 10
    assert records["free_allocation"][0, col] == 0
    # nothing of the 80 t deduction is lost: 10 taken now + 70 still pending
    assert records["deducted"][0, col] + market.firms.pending_deduction[0] == 80
    assert ledger_balances(market.registry)


def test_absolute_cap_is_issued_in_january_by_historical_shares() -> None:
    """An absolute cap is issued in January by historical shares, less set-aside, declining."""
    market = hand_built_market(
        make_firms(2, base_output=[100.0, 300.0], baseline_intensity=2.0),
        {"sectors.steel.allocation.rule": "absolute_cap",
         "sectors.steel.allocation.cap_decline": 0.02,
         "reserve_pool.set_aside_share": 0.1})
    issuance = market.issuance()
    issuance.issue_absolute_caps(2025)
    # cap 100 x 2 + 300 x 2 = 800 t, shares 1/4 and 3/4: rule quota 200 / 600;
    # set-aside 10% = 80 t to the pool, free 90% = 180 / 540
    col = market.records.col(2025)
    np.testing.assert_array_equal(market.records["free_allocation"][:, col], [180, 540])
    assert market.reserve.holdings == 80
    issuance.true_up(2025)  # nothing more under a cap issued at the year's start
    np.testing.assert_array_equal(market.records["free_allocation"][:, col], [180, 540])
    issuance.issue_absolute_caps(2026)
    # cap 800 x 0.98 = 784: rule quota 196 / 588, set-aside round(19.6) + round(58.8) = 79,
    # free round(176.4) / round(529.2) = 176 / 529
    col = market.records.col(2026)
    np.testing.assert_array_equal(market.records["free_allocation"][:, col], [176, 529])
    assert market.reserve.holdings == 80 + 79
    assert ledger_balances(market.registry)


def test_initial_bank_only_for_firms_already_in_the_market() -> None:
    """Firms in the market before the start year carry an initial bank; entrants carry none."""
    market = hand_built_market(
        make_firms(3, base_output=[100.0, 123.0, 250.0], baseline_intensity=[2.0, 2.0, 2.2],
                   entry_year=[2024, 2024, 2025]),
        {"sectors.steel.initial_bank_share": 0.1})
    market.issuance().endow_initial_bank([market.scenario.sectors["steel"]])
    # 0.1 x 100 x 2.0 = 20; 0.1 x 123 x 2.0 = 24.6 -> 25; the 2025 entrant: 0
    assert [holding(market.registry, firm, 2024) for firm in range(3)] == [20, 25, 0]
    assert market.registry.ledger()[0]["issued_free"] == 45
