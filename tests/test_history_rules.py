"""China's historical compliance rules on hand-built state (model/compliance.py): a
multi-year compliance period (2021-22 due together at the end of 2023), borrowing by
compliance year, and the carry-over rules (a basic allowance per sector plus a multiple
of net sales).

Steel and cement firms of the classroom scenario (compliance years 2025 and 2026, here
sometimes to 2027); verified emissions and holdings are set by hand and the deadlines
are settled directly. Expected numbers are worked out in the comments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from institutions import CEMENT, STEEL, hand_built_market, holding, ledger_balances, make_firms

from etsim import load_scenario
from etsim.model.scenario import ScenarioError

NO_OFFSETS = {"compliance.offset_share": 0.0}
# 2025 and 2026 due together at the end of 2027; compliance years to 2027
PERIOD = {"end_year": 2027,
          "compliance.deadlines": {"2025": "2027-12", "2026": "2027-12"}}


def market_with(n: int, overrides: dict[str, Any] | None = None, **firm_attributes: Any):
    """``n`` firms under the classroom scenario with ``overrides`` and no offsets."""
    return hand_built_market(make_firms(n, **firm_attributes), {**NO_OFFSETS, **(overrides or {})})


# --- a compliance period of two years ---------------------------------------------------------


def test_a_period_shares_one_deadline_and_the_calendar_ends_at_the_last() -> None:
    """Years listed with the same deadline are due together; others keep the offset."""
    compliance = market_with(1, PERIOD).compliance()
    assert compliance.deadline(2025) == compliance.deadline(2026) == (2027, 12)
    assert compliance.deadline(2027) == (2028, 12)  # offset 1, December
    assert compliance.due(2027, 12) == [2025, 2026]
    assert compliance.due(2026, 12) == []  # nothing due at the end of 2026 any more
    assert compliance.period(2025) == [2025, 2026]
    assert compliance.period(2027) == [2027]
    assert load_scenario("classroom", {"compliance.deadlines": {"2026": "2028-06"}}
                         ).last_calendar_year == 2028


def test_a_period_surrenders_quota_of_both_vintages_for_each_year() -> None:
    """In a period, 2026 quota may cover 2025's emissions; due alone it could not."""
    def settle(overrides: dict[str, Any], due: list[int]) -> Any:
        market = market_with(1, overrides)
        records = market.records
        records["verified_emissions"][0, records.col(2025)] = 100
        records["verified_emissions"][0, records.col(2026)] = 100
        market.registry.issue(np.array([0]), np.array([60]), 2025, "issued_free")
        market.registry.issue(np.array([0]), np.array([140]), 2026, "issued_free")
        market.compliance().settle(due, reference_price=80.0)
        return market

    together = settle(PERIOD, [2025, 2026])
    records = together.records
    # 2025: its 60 t of vintage 2025 and 40 t of 2026; 2026: the other 100 t of 2026
    assert records["surrendered"][0, records.col(2025)] == 100
    assert records["surrendered"][0, records.col(2026)] == 100
    assert records["shortfall"][0, records.col(2025)] == 0
    assert together.registry.total()[0] == 0
    assert ledger_balances(together.registry)

    alone = settle({"end_year": 2027}, [2025])  # 2025 due alone: vintages up to 2025 only
    assert alone.records["shortfall"][0, alone.records.col(2025)] == 40


def test_a_period_borrows_from_the_vintage_after_it() -> None:
    """Borrowing at a period's deadline takes next year's quota after the period (2027)."""
    market = market_with(1, {**PERIOD, "compliance.borrowing": True,
                             "compliance.borrowing_share": 0.5,
                             "compliance.borrowing_threshold": 0.1})
    records = market.records
    records["verified_emissions"][0, records.col(2025)] = 100
    records["verified_emissions"][0, records.col(2026)] = 100
    market.registry.issue(np.array([0]), np.array([100]), 2025, "issued_free")
    market.registry.issue(np.array([0]), np.array([60]), 2026, "issued_free")
    market.compliance().settle([2025, 2026], reference_price=80.0)
    # 2025 is covered; 2026 is 40 t short (>= 10% of 100): it borrows floor(0.5 x 40) = 20 t
    # of vintage 2027, advanced from the firm's 2027 free quota
    assert records["borrowed"][0, records.col(2026)] == 20
    assert records["shortfall"][0, records.col(2026)] == 20
    assert records["free_entitled"][0, records.col(2027)] == 20
    assert holding(market.registry, 0, 2027) == 0
    assert ledger_balances(market.registry)


def test_borrowing_follows_its_schedule_of_compliance_years() -> None:
    """borrowing = { 2025 = true, 2026 = false }: a gap is partly borrowed in 2025 only."""
    overrides = {"end_year": 2027, "compliance.borrowing": {"2025": True, "2026": False},
                 "compliance.borrowing_threshold": 0.0}
    borrowed = {}
    for year in (2025, 2026):
        market = market_with(1, overrides)
        market.records["verified_emissions"][0, market.records.col(year)] = 100
        market.registry.issue(np.array([0]), np.array([60]), year, "issued_free")
        market.compliance().settle(year, reference_price=80.0)
        borrowed[year] = int(market.records["borrowed"][0, market.records.col(year)])
    assert borrowed == {2025: 20, 2026: 0}  # floor(0.5 x 40) in 2025, nothing in 2026


# --- carry-over rules -------------------------------------------------------------------------

CARRY_OVER_2026 = {"compliance.carry_over": {"2026": {
    "basic_t": 10_000, "sector_basic_t": {"steel": 100_000}, "net_sales_multiple": 1.5}}}


def surplus_market(overrides: dict[str, Any], held: list[int], **firm_attributes: Any):
    """Firms with no 2026 emissions holding ``held`` t of vintage 2026 and 5 t of 2027."""
    market = market_with(len(held), overrides, **firm_attributes)
    market.records["verified_emissions"][:, market.records.col(2026)] = 0
    everyone = np.arange(len(held))
    market.registry.issue(everyone, np.array(held), 2026, "issued_free")
    market.registry.issue(everyone, np.full(len(held), 5), 2027, "issued_free")
    return market


def test_carry_over_is_the_basic_allowance_plus_a_multiple_of_net_sales() -> None:
    """A cement firm that sold 20,000 t net carries 10,000 + 1.5 x 20,000 = 40,000 t; one
    that bought carries its 10,000 t basic allowance; the rest is cancelled."""
    market = surplus_market({"end_year": 2027, **CARRY_OVER_2026}, [100_000, 100_000, 5_000],
                            sector=CEMENT)
    market.firms.net_sales[:] = [20_000, -30_000, 20_000]
    market.compliance().settle(2026, reference_price=80.0)
    # allowed 40,000 / 10,000 / 40,000: cancelled 60,000 / 90,000 / 0 of vintage 2026
    assert market.registry.usable(2026).tolist() == [40_000, 10_000, 5_000]
    assert sum(row["cancelled"] for row in market.registry.ledger()) == 150_000
    # later vintages are not touched
    assert [holding(market.registry, firm, 2027) for firm in range(3)] == [5, 5, 5]
    assert ledger_balances(market.registry)


def test_a_sector_has_its_own_basic_allowance() -> None:
    """Steel's basic allowance is 100,000 t, cement's the basic_t of 10,000 t."""
    market = surplus_market({"end_year": 2027, **CARRY_OVER_2026}, [150_000, 150_000],
                            sector=[STEEL, CEMENT])
    market.compliance().settle(2026, reference_price=80.0)
    assert market.registry.usable(2026).tolist() == [100_000, 10_000]


def test_years_before_the_first_carry_over_rule_use_the_banking_limit() -> None:
    """Before the first listed year the old keys apply: here no limit at all."""
    market = surplus_market({"end_year": 2027, **CARRY_OVER_2026}, [150_000])
    market.records["verified_emissions"][:, market.records.col(2025)] = 0
    market.compliance().settle(2025, reference_price=80.0)
    assert market.registry.usable(2026).tolist() == [150_000]  # nothing cancelled
    assert market.compliance().carry_over_limit(2025) is None
    # the rule of 2026 goes on in 2027 (a step function over the listed years)
    assert market.compliance().carry_over_rule(2027).basic_t == 10_000


def test_net_sales_can_be_counted_over_recent_years_only() -> None:
    """net_sales_years = 1 counts the sales of the deadline's calendar year only."""
    rule = {"basic_t": 0, "net_sales_multiple": 1.0, "net_sales_years": 1}
    market = surplus_market({"end_year": 2027, "compliance.carry_over": {"2026": rule}},
                            [50_000, 50_000])
    records = market.records
    # firm 0 sold 30,000 t in 2025 and 2,000 in 2027; firm 1 sold 10,000 and bought 4,000
    # in 2027 (the deadline of 2026 is at the end of 2027)
    records["sold"][:, records.col(2025)] = [30_000, 0]
    records["sold"][:, records.col(2027)] = [2_000, 10_000]
    records["bought"][:, records.col(2027)] = [0, 4_000]
    market.firms.net_sales[:] = [32_000, 6_000]
    assert market.compliance().carry_over_limit(2026).tolist() == [2_000, 6_000]
    market.compliance().settle(2026, reference_price=80.0)
    assert market.registry.usable(2026).tolist() == [2_000, 6_000]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"compliance.deadlines": {"2025": "2026-13"}}, "key 'compliance.deadlines': 2025: a "
     "deadline is written \"YYYY-MM\""),
    ({"compliance.deadlines": {"2025": "2030-12"}}, "must fall 1 to 3 years after"),
    ({"compliance.deadlines": {"2025": "2026-03"}}, "must not come before true_up_month"),
    ({"compliance.deadlines": {"2025": "2028-12"}}, "compliance year 2026 would be due "
     "before compliance year 2025"),
    ({"compliance.carry_over": {"2025": {"sector_basic_t": {"stel": 1}}}},
     "unknown sector 'stel'"),
    ({"compliance.carry_over": {"2025": {"net_sales_multiple": -1}}},
     "key 'compliance.carry_over.2025.net_sales_multiple'"),
    ({"compliance.borrowing": {"2025": "yes"}}, "key 'compliance.borrowing"),
])
def test_bad_history_rules_name_the_key(overrides: dict[str, Any], message: str) -> None:
    """A bad deadline, carry-over rule or borrowing schedule is one message naming its key."""
    with pytest.raises(ScenarioError, match=None) as caught:
        load_scenario("classroom", overrides)
    assert message in str(caught.value)
