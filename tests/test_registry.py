"""The quota registry on hand-built accounts, and banking by vintage inside a run."""

from __future__ import annotations

import numpy as np
import pytest

from etsim import CarbonMarketModel
from etsim.model.registry import LEDGER_FLOWS, Registry

# Vintages 2024, 2025, 2026, 2027 -> columns 0, 1, 2, 3.


def _registry(rows: list[list[int]]) -> Registry:
    """A registry whose holdings are ``rows`` (firms x vintages 2024-2027), issued free."""
    registry = Registry(len(rows), 2024, 2027)
    for col, vintage in enumerate(registry.vintages.tolist()):
        amounts = np.array([row[col] for row in rows], dtype=np.int64)
        registry.issue(np.arange(len(rows)), amounts, vintage, "issued_free")
    return registry


def test_new_registry_is_empty_int64_with_one_column_per_vintage() -> None:
    registry = Registry(3, 2024, 2027)
    assert registry.vintages.tolist() == [2024, 2025, 2026, 2027]
    assert registry.holdings.shape == (3, 4)
    assert registry.holdings.dtype == np.int64
    assert registry.column(2024) == 0 and registry.column(2027) == 3
    assert set(registry.flows) == set(LEDGER_FLOWS)
    assert all(row["balance"] == 0 for row in registry.ledger())


def test_issue_credits_the_vintage_and_its_flow() -> None:
    registry = Registry(3, 2024, 2027)
    registry.issue(np.array([0, 2]), np.array([10, 5]), 2025, "issued_free")
    registry.issue(np.array([0, 0]), np.array([1, 2]), 2026, "auctioned")  # repeated account
    registry.issue(np.array([1]), np.array([7]), 2026, "reserve_out")
    assert registry.holdings.tolist() == [[0, 10, 3, 0], [0, 0, 7, 0], [0, 5, 0, 0]]
    assert registry.flows["issued_free"].tolist() == [0, 15, 0, 0]
    assert registry.flows["auctioned"].tolist() == [0, 0, 3, 0]
    assert registry.flows["reserve_out"].tolist() == [0, 0, 7, 0]
    assert registry.total().tolist() == [13, 7, 5]
    assert registry.usable(2025).tolist() == [10, 0, 5]


def test_issue_refuses_negative_amounts_and_changes_nothing() -> None:
    registry = _registry([[1, 1, 1, 1], [2, 2, 2, 2]])
    before = registry.holdings.copy()
    with pytest.raises(ValueError, match="negative"):
        registry.issue(np.array([0, 1]), np.array([5, -1]), 2025, "issued_free")
    assert np.array_equal(registry.holdings, before)
    assert registry.flows["issued_free"].tolist() == [3, 3, 3, 3]


def test_take_uses_the_oldest_vintage_first() -> None:
    registry = _registry([[7, 10, 4, 0], [0, 3, 0, 0]])
    taken = registry.take(np.array([0, 1]), np.array([12, 2]), 2027, "surrendered")
    # firm 0: 7 of 2024, then 5 of 2025; firm 1: 2 of 2025
    assert taken.tolist() == [[7, 5, 0, 0], [0, 2, 0, 0]]
    assert registry.holdings.tolist() == [[0, 5, 4, 0], [0, 1, 0, 0]]
    assert registry.flows["surrendered"].tolist() == [7, 7, 0, 0]


def test_take_up_to_a_vintage_leaves_newer_vintages() -> None:
    registry = _registry([[4, 6, 8, 9]])
    taken = registry.take(np.array([0]), np.array([100]), 2025, "cancelled")
    # only 2024 and 2025 may be used: 4 + 6 = 10 of the 100 wanted
    assert taken.tolist() == [[4, 6, 0, 0]]
    assert registry.holdings.tolist() == [[0, 0, 8, 9]]
    assert registry.flows["cancelled"].tolist() == [4, 6, 0, 0]


def test_take_from_a_vintage_leaves_older_vintages() -> None:
    registry = _registry([[4, 6, 8, 9]])
    taken = registry.take(np.array([0]), np.array([10]), 2027, "surrendered",
                          from_vintage=2026)
    # borrowing-style: 8 of 2026, then 2 of 2027; 2024 and 2025 untouched
    assert taken.tolist() == [[0, 0, 8, 2]]
    assert registry.holdings.tolist() == [[4, 6, 0, 7]]
    assert registry.flows["surrendered"].tolist() == [0, 0, 8, 2]


def test_take_without_a_flow_moves_nothing_into_the_ledger() -> None:
    registry = _registry([[3, 3, 0, 0]])
    taken = registry.take(np.array([0]), np.array([4]), 2027, None)
    assert taken.tolist() == [[3, 1, 0, 0]]
    for name in ("surrendered", "cancelled", "reserve_in"):
        assert registry.flows[name].sum() == 0
    # the quota left the account without a flow: the ledger shows it missing
    assert [row["balance"] for row in registry.ledger()] == [3, 1, 0, 0]


def test_transfer_moves_the_sellers_oldest_vintages_first() -> None:
    registry = _registry([[3, 0, 5, 2], [0, 1, 0, 0]])
    registry.transfer(0, 1, 6)
    # 3 of 2024, then 3 of 2026 (the seller holds no 2025)
    assert registry.holdings.tolist() == [[0, 0, 2, 2], [3, 1, 3, 0]]
    registry.transfer(1, 0, 7)  # the whole account
    assert registry.holdings.tolist() == [[3, 1, 5, 2], [0, 0, 0, 0]]
    assert all(row["balance"] == 0 for row in registry.ledger())


def test_transfer_raises_on_overdraft() -> None:
    registry = _registry([[3, 0, 5, 2], [0, 0, 0, 0]])
    with pytest.raises(ValueError, match="account 0 cannot deliver 11 t"):
        registry.transfer(0, 1, 11)


def test_refused_transfer_leaves_both_accounts_unchanged() -> None:
    # (until a0c89ce the seller's vintages were moved before the overdraft was found)
    registry = _registry([[3, 0, 5, 2], [0, 0, 0, 0]])
    before = registry.holdings.copy()
    with pytest.raises(ValueError):
        registry.transfer(0, 1, 11)
    assert registry.holdings.tolist() == before.tolist()


def test_ledger_balances_after_a_mix_of_operations() -> None:
    registry = Registry(3, 2024, 2027)
    everyone = np.arange(3)
    registry.issue(everyone, np.array([100, 50, 0]), 2024, "issued_free")
    registry.issue(everyone, np.array([200, 120, 80]), 2025, "issued_free")
    registry.issue(np.array([2]), np.array([40]), 2025, "auctioned")
    registry.issue(np.array([1]), np.array([15]), 2026, "reserve_out")
    registry.transfer(0, 2, 130)  # 100 of 2024 and 30 of 2025
    registry.take(everyone, np.array([150, 60, 200]), 2025, "surrendered")
    registry.take(np.array([1]), np.array([5]), 2026, "reserve_in")
    registry.take(everyone, registry.usable(2025), 2025, "cancelled")
    # By hand, holdings (2024, 2025, 2026) after each step:
    #   issue:      f0 (100, 200, 0)  f1 (50, 120, 15)  f2 (0, 120, 0)
    #   transfer:   f0 (0, 170, 0)                      f2 (100, 150, 0)
    #   surrender:  f0 150 of 2025 -> (0, 20, 0); f1 50 of 2024 + 10 of 2025 -> (0, 110, 15);
    #               f2 100 of 2024 + 100 of 2025 -> (0, 50, 0)
    #   reserve_in: f1 5 of its oldest, 2025 -> (0, 105, 15)
    #   cancel up to 2025: 20 + 105 + 50 = 175 of 2025
    assert registry.holdings.tolist() == [[0, 0, 0, 0], [0, 0, 15, 0], [0, 0, 0, 0]]
    ledger = {row["vintage"]: row for row in registry.ledger()}
    assert ledger[2024] == {"vintage": 2024, "issued_free": 150, "auctioned": 0,
                            "reserve_out": 0, "surrendered": 150, "cancelled": 0,
                            "reserve_in": 0, "holdings": 0, "balance": 0}
    assert ledger[2025] == {"vintage": 2025, "issued_free": 400, "auctioned": 40,
                            "reserve_out": 0, "surrendered": 260, "cancelled": 175,
                            "reserve_in": 5, "holdings": 0, "balance": 0}
    assert ledger[2026] == {"vintage": 2026, "issued_free": 0, "auctioned": 0,
                            "reserve_out": 15, "surrendered": 0, "cancelled": 0,
                            "reserve_in": 0, "holdings": 15, "balance": 0}
    assert ledger[2027]["balance"] == 0


def test_ledger_shows_tampered_holdings() -> None:
    registry = _registry([[5, 5, 5, 5], [1, 2, 3, 4]])
    registry.holdings[1, 2] += 7  # quota out of thin air, vintage 2026
    registry.holdings[0, 0] -= 2  # quota lost, vintage 2024
    balances = {row["vintage"]: row["balance"] for row in registry.ledger()}
    assert balances == {2024: 2, 2025: 0, 2026: -7, 2027: 0}


# --- banking by vintage in a run --------------------------------------------------------------


def _run_past_first_deadline(**overrides) -> CarbonMarketModel:
    """Classroom stepped to just after the 2025 deadline (the end of December 2026)."""
    model = CarbonMarketModel(scenario="classroom", seed=7, **overrides)
    year_end = model.calendar.last_day(2025, 12)
    while model.day <= year_end:
        model.step()
    # bank_end is each firm's holdings at the end of December of the calendar year
    # (docs/ODD.md); at the end of 2025 no 2025 quota is issued yet (April 2026)
    assert model.fy["bank_end"][:, 0].tolist() == model.registry.total().tolist()
    deadline = model.calendar.last_day(2026, 12)
    while model.day <= deadline:
        model.step()
    return model


def test_banking_keeps_2025_quota_past_its_deadline() -> None:
    model = _run_past_first_deadline(compliance__banking=True)
    registry = model.registry
    banked = registry.holdings[:, registry.column(2025)]
    assert banked.sum() > 0
    # nothing of 2026 is issued before April 2027: the bank is all 2025 (and older) quota
    assert registry.holdings[:, registry.column(2026):].sum() == 0
    # bank_end of calendar year 2026 is the bank right after the 2025 deadline
    bank_end = model.fy["bank_end"][:, model.year_index(2026)]
    assert bank_end.tolist() == registry.total().tolist()
    assert (bank_end > 0).any()
    model.run()
    tables = model.results()
    fy = tables["firm_years"]
    assert fy.loc[fy["year"] == 2026, "bank_end"].tolist() == bank_end.tolist()
    assert model.invariants["ok"]
    ledger = {row["vintage"]: row for row in model.invariants["ledger"]}
    # the banked 2025 quota was surrendered for 2026, never cancelled
    assert ledger[2025]["cancelled"] == 0
    assert ledger[2025]["surrendered"] == ledger[2025]["issued_free"]


def test_no_banking_cancels_every_vintage_up_to_the_deadline_year() -> None:
    model = _run_past_first_deadline(compliance__banking=False)
    registry = model.registry
    assert registry.holdings[:, : registry.column(2025) + 1].sum(axis=0).tolist() == [0, 0]
    ledger = {row["vintage"]: row for row in registry.ledger()}
    assert all(row["balance"] == 0 for row in ledger.values())
    assert ledger[2025]["cancelled"] > 0
    assert ledger[2025]["surrendered"] + ledger[2025]["cancelled"] == ledger[2025]["issued_free"]
    assert model.fy["bank_end"][:, model.year_index(2026)].sum() == 0
    model.run()
    assert model.invariants["ok"]
    final = {row["vintage"]: row for row in model.invariants["ledger"]}
    # after the last deadline the 2026 quota left over is cancelled too
    assert final[2026]["holdings"] == 0 and final[2026]["cancelled"] > 0


def test_banking_limit_caps_what_each_firm_carries() -> None:
    model = _run_past_first_deadline(compliance__banking_limit_t=1000.0)
    carried = model.registry.usable(2025)
    assert carried.max() <= 1000
    assert (carried == 1000).any()  # the limit binds for some firm
    ledger = {row["vintage"]: row for row in model.registry.ledger()}
    assert ledger[2025]["cancelled"] > 0
    assert all(row["balance"] == 0 for row in ledger.values())
