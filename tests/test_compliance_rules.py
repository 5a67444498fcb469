"""Compliance rules on hand-built state: surrender, penalty, deduction of the shortfall,
offsets, borrowing, deficit caps and banking (model/compliance.py).

Three steel firms of the classroom scenario, covered since 2024; their verified 2025
emissions and their holdings are set by hand and ``Compliance.settle`` runs the 2025
deadline. Expected numbers are worked out in the comments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from institutions import (
    END_YEAR,
    START_YEAR,
    HandBuiltMarket,
    hand_built_market,
    holding,
    ledger_balances,
    make_firms,
)

NO_OFFSETS = {"compliance.offset_share": 0.0}


def deadline_market(verified: list[float], vintage_2025: list[int],
                    overrides: dict[str, Any] | None = None,
                    **firm_attributes: Any) -> HandBuiltMarket:
    """Steel firms with verified 2025 emissions and free 2025 quota held, before the
    2025 deadline."""
    market = hand_built_market(make_firms(len(verified), **firm_attributes),
                               {**NO_OFFSETS, **(overrides or {})})
    market.records["verified_emissions"][:, market.records.col(2025)] = verified
    everyone = np.arange(len(verified))
    market.registry.issue(everyone, np.array(vintage_2025), 2025, "issued_free")
    return market


def test_reference_price_month_is_the_month_before_the_deadline() -> None:
    """The penalty's reference month is the month before the deadline, across a year end too."""
    december = hand_built_market(make_firms(1)).compliance()
    # classroom: deadline of 2025 at the end of December 2026; reference month November
    assert december.deadline(2025) == (2026, 12)
    assert december.month_before_deadline(2025) == (2026, 11)
    january = hand_built_market(make_firms(1), {"compliance.deadline_month": 1,
                                                "compliance.verification_month": 1,
                                                "compliance.pre_allocation_month": 1,
                                                "compliance.true_up_month": 1}).compliance()
    # deadline at the end of January 2026: the month before is December 2025
    assert january.month_before_deadline(2025) == (2025, 12)


def test_penalty_price_is_the_multiple_times_the_price() -> None:
    """A tonne short costs penalty.multiple times the quota price."""
    compliance = hand_built_market(make_firms(1), {"penalty.multiple": 3}).compliance()
    assert compliance.penalty_price(80.0) == pytest.approx(240.0)  # 3 x 80
    np.testing.assert_allclose(compliance.penalty_price(np.array([50.0, 95.0])),
                               [150.0, 285.0])


def test_shortfall_is_penalised_and_deducted_from_the_next_issuance() -> None:
    """A shortfall costs multiple x reference price x tonnes and comes off the next free quota."""
    market = deadline_market([100, 50, 80], [120, 20, 80], {"penalty.multiple": 3})
    market.compliance().settle(2025, reference_price=80.0)
    records, col = market.records, market.records.col(2025)
    # obligations 100/50/80 against holdings 120/20/80: firm 1 surrenders its 20
    np.testing.assert_array_equal(records["surrendered"][:, col], [100, 20, 80])
    np.testing.assert_array_equal(records["shortfall"][:, col], [0, 30, 0])
    # penalty = 3 x 80 CNY/t x 30 t = 7,200 CNY
    np.testing.assert_allclose(records["penalty"][:, col], [0.0, 7200.0, 0.0])
    np.testing.assert_allclose(market.firms.cash, [0.0, -7200.0, 0.0])
    assert market.payments["penalties"] == pytest.approx(7200.0)
    np.testing.assert_array_equal(market.firms.pending_deduction, [0, 30, 0])
    # firm 0 banks its 20 t surplus; the ledger still balances (120 + 20 + 80 issued =
    # 200 surrendered + 20 held)
    assert market.registry.total().tolist() == [20, 0, 0]
    assert ledger_balances(market.registry)
    # the next issuance of 100 t each gives firm 1 only 70 t and records 30 t deducted
    market.issuance().issue_free(np.arange(3), np.array([100.0, 100.0, 100.0]), 2026)
    col_2026 = market.records.col(2026)
    np.testing.assert_array_equal(records["free_allocation"][:, col_2026], [100, 70, 100])
    np.testing.assert_array_equal(records["deducted"][:, col_2026], [0, 30, 0])
    np.testing.assert_array_equal(market.firms.pending_deduction, [0, 0, 0])
    assert ledger_balances(market.registry)


def test_no_deduction_when_deduct_shortfall_is_off() -> None:
    """With penalty.deduct_shortfall off a shortfall is fined but never deducted."""
    market = deadline_market([100], [60], {"penalty.deduct_shortfall": False,
                                           "penalty.multiple": 5})
    market.compliance().settle(2025, reference_price=95.0)
    assert market.records["shortfall"][0, market.records.col(2025)] == 40
    assert market.firms.cash[0] == pytest.approx(-5 * 95.0 * 40)  # -19,000 CNY
    assert market.firms.pending_deduction[0] == 0


def test_quota_owed_from_a_withdrawal_adds_to_the_obligation() -> None:
    """Quota owed from an uncovered withdrawal is surrendered with the verified emissions."""
    market = deadline_market([100], [130])
    market.records["owed"][0, market.records.col(2025)] = 15
    market.compliance().settle(2025, reference_price=80.0)
    # obligation 100 + 15 = 115 of the 130 held
    assert market.records["surrendered"][0, market.records.col(2025)] == 115
    assert market.registry.total()[0] == 15


def test_offsets_cover_their_share_when_cheaper_than_the_reference_price() -> None:
    """CCER offsets cover offset_share of the obligation when cheaper than quota, else none."""
    cheap = deadline_market([1000, 500, 800], [1000, 500, 800],
                            {"compliance.offset_share": 0.05,
                             "compliance.offset_supply_share": 1.0})
    cheap.compliance().settle(2025, reference_price=80.0)  # 70.76 < 80: offsets used
    col = cheap.records.col(2025)
    # floor(0.05 x 1000/500/800) = 50/25/40 t at 70.76 CNY/t
    np.testing.assert_array_equal(cheap.records["offsets_used"][:, col], [50, 25, 40])
    np.testing.assert_array_equal(cheap.records["surrendered"][:, col], [950, 475, 760])
    np.testing.assert_allclose(cheap.firms.cash, [-3538.0, -1769.0, -2830.4])
    assert cheap.payments["offsets"] == pytest.approx(115 * 70.76)  # 8,137.40 CNY
    # the offsets leave the surplus quota in the accounts: 50/25/40 t banked
    assert cheap.registry.total().tolist() == [50, 25, 40]

    dear = deadline_market([1000], [1000], {"compliance.offset_share": 0.05})
    dear.compliance().settle(2025, reference_price=70.0)  # 70.76 >= 70: no offsets
    assert dear.records["offsets_used"][0, dear.records.col(2025)] == 0
    assert dear.payments["offsets"] == 0.0


def test_scarce_offsets_are_shared_pro_rata() -> None:
    """When the CCER supply is short of what firms want, each gets the same share of it."""
    market = deadline_market([1000, 500, 800], [1000, 500, 800],
                             {"compliance.offset_share": 0.05,
                              "compliance.offset_supply_share": 0.01})
    market.compliance().settle(2025, reference_price=80.0)
    # wanted 50/25/40 = 115 t; supply int(0.01 x 2,300) = 23 t, so each gets 23/115 = 1/5:
    # floor(10.0, 5.0, 8.0) = 10/5/8 t
    offsets = market.records["offsets_used"][:, market.records.col(2025)]
    np.testing.assert_array_equal(offsets, [10, 5, 8])


def test_deficit_cap_limits_the_obligation_to_entitlement_plus_a_share() -> None:
    """A deficit_cap limits the obligation to the entitlement plus cap x verified emissions."""
    market = deadline_market([100, 100], [70, 70],
                             {"sectors.steel.allocation.deficit_cap": 0.1})
    col = market.records.col(2025)
    market.records["free_entitled"][:, col] = [70, 95]
    market.compliance().settle(2025, reference_price=80.0)
    # limits 70 + round(0.1 x 100) = 80 and 95 + 10 = 105: obligations 80 and 100
    np.testing.assert_array_equal(market.records["shortfall"][:, col], [10, 30])


def test_borrowing_covers_a_share_of_a_large_gap_from_next_years_quota() -> None:
    """A large gap is partly covered from next year's quota: vintage held first, then advanced."""
    market = deadline_market([100, 100], [60, 95], {"compliance.borrowing": True,
                                                    "compliance.borrowing_share": 0.5,
                                                    "compliance.borrowing_threshold": 0.1,
                                                    "penalty.multiple": 5})
    market.registry.issue(np.array([0]), np.array([10]), 2026, "issued_free")
    market.compliance().settle(2025, reference_price=80.0)
    records, col, nxt = market.records, market.records.col(2025), market.records.col(2026)
    # firm 0: gap 40 >= 0.1 x 100, borrows floor(0.5 x 40) = 20: its 10 t of vintage 2026
    # and 10 t advanced; firm 1: gap 5 < 10, no borrowing
    np.testing.assert_array_equal(records["borrowed"][:, col], [20, 0])
    np.testing.assert_array_equal(records["surrendered"][:, col], [80, 95])
    np.testing.assert_array_equal(records["shortfall"][:, col], [20, 5])
    np.testing.assert_allclose(records["penalty"][:, col], [5 * 80.0 * 20, 5 * 80.0 * 5])
    # the advance counts as 2026 quota already issued (the true-up pays it back)
    np.testing.assert_array_equal(records["free_entitled"][:, nxt], [10, 0])
    np.testing.assert_array_equal(records["free_allocation"][:, nxt], [10, 0])
    assert holding(market.registry, 0, 2026) == 0
    assert ledger_balances(market.registry)


def test_no_borrowing_at_the_last_compliance_year() -> None:
    """There is no borrowing at the last compliance year's deadline."""
    market = deadline_market([100], [60], {"compliance.borrowing": True})
    market.records["verified_emissions"][0, market.records.col(END_YEAR)] = 100
    market.compliance().settle(END_YEAR, reference_price=80.0)
    col = market.records.col(END_YEAR)
    assert market.records["borrowed"][0, col] == 0
    assert market.records["shortfall"][0, col] == 40


def test_firms_not_yet_covered_owe_nothing() -> None:
    """A firm whose sector enters later has no obligation and keeps its quota."""
    market = deadline_market([100, 100], [50, 50], entry_year=[2024, 2026])
    market.compliance().settle(START_YEAR, reference_price=80.0)
    col = market.records.col(START_YEAR)
    np.testing.assert_array_equal(market.records["shortfall"][:, col], [50, 0])
    assert market.registry.total().tolist() == [0, 50]
    assert market.firms.cash[1] == 0.0


def test_without_banking_quota_up_to_the_year_is_cancelled_in_every_account() -> None:
    """Without banking, quota up to the year left after surrender is cancelled in every account."""
    market = deadline_market([100, 50], [130, 50], {"compliance.banking": False,
                                                    "financial.market_makers": 1})
    account = int(market.financial.rows[0])  # registry row 2, after the firms
    market.registry.issue(np.array([0, 1]), np.array([10, 20]), 2024, "issued_free")
    market.registry.issue(np.array([0, 1, account]), np.array([7, 8, 5]), 2026, "auctioned")
    market.registry.transfer(0, account, 15)  # the account bought 10 (2024) + 5 (2025)
    market.financial.holdings[0] += 5 + 15  # the accounts' mirror of the registry
    market.compliance().settle(2025, reference_price=80.0)
    # firm 0 surrenders 100 of its 125 t up to 2025: 25 left, cancelled; firm 1
    # surrenders 50 of 20 + 50: 20 left, cancelled; the account's 15 t are cancelled
    cancelled = sum(row["cancelled"] for row in market.registry.ledger())
    assert cancelled == 25 + 20 + 15
    assert market.registry.usable(2025).tolist() == [0, 0]
    assert market.registry.total().tolist() == [7, 8]  # vintage 2026 kept
    assert holding(market.registry, account, 2026) == 5
    assert market.financial.holdings.tolist() == [5]
    assert ledger_balances(market.registry)


def test_banking_limit_is_the_limit_plus_a_multiple_of_net_sales() -> None:
    """A firm banks at most banking_limit_t + multiple x its net sales; the rest is cancelled."""
    market = deadline_market([100, 100, 100], [150, 150, 150],
                             {"compliance.banking_limit_t": 10.5,
                              "compliance.banking_net_sales_multiple": 2.0})
    market.firms.net_sales[:] = [0, 5, -20]
    market.registry.issue(np.arange(3), np.array([30, 30, 30]), 2026, "issued_free")
    market.compliance().settle(2025, reference_price=80.0)
    # 50 t of vintage 2025 left each; allowed floor(10.5 + 2 x max(net sales, 0)) =
    # 10 / 20 / 10, so 40 / 30 / 40 t are cancelled; vintage 2026 is untouched
    assert market.registry.usable(2025).tolist() == [10, 20, 10]
    assert [holding(market.registry, firm, 2026) for firm in range(3)] == [30, 30, 30]
    assert sum(row["cancelled"] for row in market.registry.ledger()) == 110
    assert ledger_balances(market.registry)
