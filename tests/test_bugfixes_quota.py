"""Fixed quota bugs, on hand-built state (``tests/institutions.py``): withholding for the
reserve pool in whole tonnes with nothing gained or lost by rounding, reserve-pool trades
in the firms' net sales, the repayment of borrowing under an absolute cap, and (no bug)
withdrawals taking the oldest vintages first."""

from __future__ import annotations

import numpy as np
import pytest
from institutions import HandBuiltMarket, hand_built_market, ledger_balances, make_firms

from etsim import CarbonMarketModel
from etsim.model.invariants import check_invariants
from etsim.model.reserve import Intervention


@pytest.mark.parametrize(("pending", "amounts", "withheld"), [
    # 1 t of 3 x 1 t (0.6 rounds to 1): 1 t withheld, not 3 (each 1/3 t rounded down to 0
    # and the "kept" 0.4 t each rounded down to 0 made 3)
    (1, [0.6, 0.6, 0.6], [1, 0, 0]),
    # 2 t of 10 x 1 t: 2 t withheld, not 0 (each kept 1.2 t rounded back to 1)
    (2, [1.4] * 10, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
    # 30 t of 100 + 200 t: 10 + 20 exactly
    (30, [100.0, 200.0], [10, 20]),
    # 10 t of 3 x 7 t: 10/3 each, 3 + 3 + 3 and the 10th tonne to the first row
    (10, [7.0, 7.0, 7.0], [4, 3, 3]),
    # 7 t of 1 + 2 + 4 t: all 7
    (7, [1.0, 2.0, 4.0], [1, 2, 4]),
])
def test_withholding_takes_exactly_the_pending_tonnes_pro_rata(
        pending: int, amounts: list[float], withheld: list[int]) -> None:
    """The pool's pending intake (up to all of the issuance) is withheld in whole tonnes,
    pro rata by largest remainder: the pool gets exactly that, the firms the rest of the
    issuance in whole tonnes, and no tonne is created or lost by rounding."""
    market = hand_built_market(make_firms(len(amounts)))
    pool = market.reserve
    pool.withhold_pending = pending
    issued = np.floor(np.array(amounts) + 0.5).astype(np.int64)  # whole tonnes, half up
    kept = market.issuance().withhold_for_reserve(np.array(amounts), 2026)
    np.testing.assert_array_equal(kept, issued - np.array(withheld))
    assert np.all(kept == np.round(kept)) and np.all(kept >= 0)
    assert pool.intake[2026] == pool.holdings == sum(withheld) == min(pending, issued.sum())
    assert pool.withhold_pending == pending - sum(withheld)
    assert int(kept.sum()) + pool.holdings == int(issued.sum())


@pytest.mark.parametrize("flow", ["endow", "add", "add_bought_back", "release"])
def test_pool_flows_are_whole_tonnes(flow: str) -> None:
    """A fraction of a tonne into or out of the pool is refused and changes nothing; a
    whole number given as a float is booked as an int."""
    pool = hand_built_market(make_firms(1)).reserve
    pool.endow(100)
    move = getattr(pool, flow)
    with pytest.raises(ValueError, match="whole number, not 2.5"):
        move(2.5) if flow == "endow" else move(2025, 2.5)
    assert pool.holdings == 100 and pool.balance() == 0
    move(3.0) if flow == "endow" else move(2025, 3.0)
    assert type(pool.holdings) is int and pool.balance() == 0


@pytest.mark.parametrize("flow", ["release", "buy_back", "withhold"])
def test_a_policy_decides_in_whole_tonnes(flow: str) -> None:
    """An intervention of a fraction of a tonne (a plugin policy's) is refused at once,
    naming the flow; whole numbers pass as ints."""
    with pytest.raises(ValueError, match=f"{flow} must be 0 or more tonnes"):
        Intervention(**{flow: 12.5})
    assert type(getattr(Intervention(**{flow: np.float64(12.0)}), flow)) is int


def _reserve_market(overrides: dict | None = None) -> HandBuiltMarket:
    """Two steel firms: firm 0 short 30 t (it bids for them at 95 CNY/t), firm 1 even;
    each with a budget for 2,000 t (as in test_primary_market.py)."""
    market = hand_built_market(make_firms(2, expected_price=95.0, annual_emissions=2000.0),
                               overrides)
    market.positions().expected_net = np.array([-30.0, 0.0])
    return market


def test_quota_bought_from_the_reserve_pool_is_a_purchase_in_net_sales() -> None:
    """A firm that sold 100 t on the exchange and bought 30 t from the pool has net sales
    of 70 t, in the running count and in the year's records alike; the exchange's
    ``bought`` and ``sold`` columns stay exchange-only."""
    market = _reserve_market()
    market.registry.issue(np.array([0]), np.array([100]), 2025, "issued_free")
    market.settlement().settle(_trade(buyer=1, seller=0, price=90.0, quantity=100),
                               "continuous", day=3, year=2025)
    market.reserve.endow(50)
    market.primary().release_from_reserve(day=5, year=2025, volume=50, reserve_price=40.0)
    col = market.records.col(2025)
    assert market.registry.total().tolist() == [30, 100]  # 30 t bought from the pool
    np.testing.assert_array_equal(market.firms.net_sales, [100 - 30, -100])
    np.testing.assert_array_equal(market.records["reserve_bought"][:, col], [30, 0])
    np.testing.assert_array_equal(market.records["sold"][:, col], [100, 0])
    np.testing.assert_array_equal(market.records["bought"][:, col], [0, 100])
    np.testing.assert_array_equal(market.records.net_sales(2025, 2025), [70, -100])


def test_quota_sold_to_the_reserve_pool_is_a_sale_in_net_sales() -> None:
    """A buy-back is a sale: 50 t sold to the pool count in net sales like 50 t sold on
    the exchange."""
    market = _reserve_market()
    market.positions().expected_net = np.array([80.0, 0.0])  # firm 0: 80 t to spare
    market.registry.issue(np.array([0]), np.array([80]), 2025, "issued_free")
    market.firms.expected_price[:] = 40.0  # asks 0.95 x 40 = 38 under the ceiling
    market.primary().buy_back(day=0, year=2025, volume=50, ceiling_price=40.0)
    col = market.records.col(2025)
    assert market.registry.total().tolist() == [30, 0]
    np.testing.assert_array_equal(market.firms.net_sales, [50, 0])
    np.testing.assert_array_equal(market.records["reserve_sold"][:, col], [50, 0])
    np.testing.assert_array_equal(market.records["sold"][:, col], [0, 0])
    np.testing.assert_array_equal(market.records.net_sales(2025, 2025), [50, 0])


@pytest.mark.parametrize("rule", [
    # before any carry-over rule: banking_limit_t + 1.5 x net sales since the opening
    {"compliance.banking_limit_t": 10.0, "compliance.banking_net_sales_multiple": 1.5},
    # a carry-over rule counting the deadline's calendar year (2026 for 2025) only
    {"compliance.carry_over": {"2025": {"basic_t": 10, "net_sales_multiple": 1.5,
                                        "net_sales_years": 1}}},
])
def test_the_carry_over_limit_counts_the_reserve_purchase(rule: dict) -> None:
    """Sold 100 t on the exchange and bought 30 t from the pool in 2026 (the year of
    2025's deadline): carry-over 10 + 1.5 x 70 = 115 t, not 10 + 1.5 x 100 = 160 t."""
    market = _reserve_market(rule)  # firm 0 bids for 30 t once it holds none
    market.registry.issue(np.array([0]), np.array([100]), 2025, "issued_free")
    day = market.calendar.first_day(2026)
    market.settlement().settle(_trade(buyer=1, seller=0, price=90.0, quantity=100),
                               "continuous", day=day, year=2026)
    market.reserve.endow(30)
    market.primary().release_from_reserve(day=day, year=2026, volume=30, reserve_price=40.0)
    assert market.registry.total().tolist() == [30, 100]
    assert market.compliance().carry_over_limit(2025)[0] == 10 + 1.5 * 70
    assert ledger_balances(market.registry)


def _trade(buyer: int, seller: int, price: float, quantity: int) -> dict[str, np.ndarray]:
    """One exchange trade as the order book reports it."""
    return {"buyer": np.array([buyer]), "seller": np.array([seller]),
            "price": np.array([price]), "quantity": np.array([quantity])}


CAP_2026_BORROWING = {"sectors.steel.allocation.rule": {"2025": "intensity",
                                                        "2026": "absolute_cap"},
                      "compliance.borrowing": True, "compliance.borrowing_threshold": 0.0,
                      "compliance.offset_share": 0.0}


def _loan_under_a_cap(held_2026_at_true_up: int) -> HandBuiltMarket:
    """Two steel firms; 2026 under an absolute cap (1,000 t each, issued in January 2026:
    cap = 2025's reported 2,000 t, equal output shares). Firm 0 owes 1,000 t for 2025,
    holds 600 t of 2025 and has sold its 2026 quota; at the 2025 deadline it borrows
    floor(0.5 x 400) = 200 t, all advanced (it holds no 2026). Before the true-up of 2026
    it gets ``held_2026_at_true_up`` t of vintage 2026 back (bought)."""
    market = hand_built_market(make_firms(2), CAP_2026_BORROWING)
    records, registry = market.records, market.registry
    c25 = records.col(2025)
    records["output"][:, c25] = [500.0, 500.0]
    records["reported_emissions"][:, c25] = [1000.0, 1000.0]
    records["verified_emissions"][:, c25] = [1000.0, 0.0]
    market.issuance().issue_free(np.arange(2), np.array([600.0, 0.0]), 2025)
    market.issuance().issue_absolute_caps(2026)  # January 2026
    assert records["cap_quota"][:, records.col(2026)].tolist() == [1000, 1000]
    v26 = registry.column(2026)
    registry.holdings[1, v26] += registry.holdings[0, v26]  # firm 0 sold its 2026 quota
    registry.holdings[0, v26] = 0
    market.compliance().settle(2025, reference_price=80.0)  # December 2026
    assert records["borrowed"][0, c25] == 200 and records["shortfall"][0, c25] == 200
    registry.holdings[1, v26] -= held_2026_at_true_up  # bought back before the true-up
    registry.holdings[0, v26] += held_2026_at_true_up
    market.issuance().true_up(2026)  # September 2027, before 2026's deadline
    return market


@pytest.mark.parametrize(("held", "withdrawn", "owed"), [(0, 0, 200), (150, 150, 50),
                                                         (500, 200, 0)])
def test_a_loan_from_a_capped_vintage_is_paid_back_at_its_true_up(
        held: int, withdrawn: int, owed: int) -> None:
    """The 200 t advanced from vintage 2026 are recovered at 2026's true-up, as under a
    benchmark: withdrawn from what firm 0 holds, the rest owed at 2026's deadline; its
    2026 entitlement is the cap's 1,000 t again (it was 1,200 t for good before)."""
    market = _loan_under_a_cap(held)
    records, col = market.records, market.records.col(2026)
    assert records["withdrawn"][:, col].tolist() == [withdrawn, 0]
    assert records["owed"][:, col].tolist() == [owed, 0]
    assert records["free_entitled"][:, col].tolist() == [1000, 1000]
    assert market.registry.total()[0] == held - withdrawn
    assert ledger_balances(market.registry)
    # the other firm's cap quota is untouched, and a second true-up changes nothing
    market.issuance().true_up(2026)
    assert records["withdrawn"][:, col].tolist() == [withdrawn, 0]
    assert records["owed"][:, col].tolist() == [owed, 0]


def test_the_loan_is_owed_at_the_next_deadline() -> None:
    """What was not withdrawn is part of 2026's obligation: firm 0 owes its 2026
    emissions plus the 200 t it borrowed."""
    market = _loan_under_a_cap(0)
    records, col = market.records, market.records.col(2026)
    records["verified_emissions"][:, col] = [900.0, 0.0]
    market.registry.issue(np.array([0]), np.array([1100]), 2026, "issued_free")  # bought
    market.compliance().settle(2026, reference_price=80.0)
    assert records["surrendered"][0, col] == 900 + 200
    assert records["shortfall"][0, col] == 0


# --- checked, no bug: withdrawals take the oldest vintages first ------------------------


def test_true_up_withdrawal_takes_the_oldest_vintages_first() -> None:
    """A true-up withdrawal takes the firm's oldest quota first (the registry's rule for
    every debit): 80 t from 50 t of 2024 and 100 t of 2025 leave 70 t of 2025."""
    market = hand_built_market(make_firms(1))
    registry = market.registry
    registry.issue(np.array([0]), np.array([50]), 2024, "issued_free")
    market.issuance().issue_free(np.array([0]), np.array([100.0]), 2025)
    market.issuance().withdraw(np.array([0]), np.array([80]), 2025)
    assert registry.holdings[0].tolist() == [0, 70, 0, 0, 0]
    assert [row["cancelled"] for row in registry.ledger()][:2] == [50, 30]
    assert ledger_balances(registry)


def test_surrender_takes_the_oldest_vintages_first_and_the_deduction_none() -> None:
    """Surrender takes the oldest vintages first, up to the compliance year; a shortfall's
    deduction comes out of the next issuance, not out of vintages held: 50 t of 2024 and
    100 t of 2025 surrendered for 200 t, the 60 t of 2026 kept, 50 t to deduct."""
    market = hand_built_market(make_firms(1), {"compliance.offset_share": 0.0})
    registry, records = market.registry, market.records
    registry.issue(np.array([0]), np.array([50]), 2024, "issued_free")
    registry.issue(np.array([0]), np.array([100]), 2025, "issued_free")
    registry.issue(np.array([0]), np.array([60]), 2026, "issued_free")
    records["verified_emissions"][0, records.col(2025)] = 200.0
    market.compliance().settle(2025, reference_price=80.0)
    assert [row["surrendered"] for row in registry.ledger()][:3] == [50, 100, 0]
    assert registry.holdings[0].tolist() == [0, 0, 60, 0, 0]
    assert records["shortfall"][0, records.col(2025)] == 50
    assert market.firms.pending_deduction[0] == 50
    assert ledger_balances(registry)


@pytest.mark.parametrize(("triggers", "firms_buy"), [
    # a release price of 1 CNY/t: the pool sells to firms every month it holds quota
    ({"reserve_pool.initial_holdings_share": 0.1, "reserve_pool.release_price": 1.0,
      "reserve_pool.absorb_price": 0.5}, True),
    # an absorb price of 500 CNY/t: the pool buys back every month
    ({"reserve_pool.release_price": 1000.0, "reserve_pool.absorb_price": 500.0,
      "reserve_pool.absorb_share": 0.01}, False),
])
def test_a_run_with_reserve_trades_counts_them_in_net_sales(triggers: dict,
                                                            firms_buy: bool) -> None:
    """In a whole run with reserve trades, each firm's running net sales equal its
    records' (exchange and reserve) sales minus purchases: the end-of-run check says so,
    and flags a tampered count."""
    model = CarbonMarketModel(scenario="classroom", seed=3,
                              overrides={"reserve_pool.policy": "price_trigger", **triggers})
    model.run()
    trades = model.results()["trades"]
    reserve = trades[trades["kind"] == "reserve"]
    firm_side = reserve["buyer_id"] if firms_buy else reserve["seller_id"]
    assert len(reserve) > 0 and (firm_side >= 0).all()
    assert model.invariants["ok"], model.invariants["violations"]
    # from the trades table: every tonne a firm sold (to a firm or the pool) less every
    # tonne it bought (from a firm or the pool); auctions of new quota are allocation
    traded = trades[trades["kind"] != "auction"]
    sold = traded.groupby("seller_id")["quantity"].sum()
    bought = traded.groupby("buyer_id")["quantity"].sum()
    firms = model.account_id[: model.n_firms]  # firm ids, in row order
    expected = (sold.reindex(firms, fill_value=0) - bought.reindex(firms, fill_value=0))
    np.testing.assert_array_equal(model.firms.net_sales, expected.to_numpy())
    counted = model.fy.net_sales(int(model.years[0]), int(model.years[-1]))
    np.testing.assert_array_equal(model.firms.net_sales, counted)
    model.firms.net_sales[0] += 1
    assert "firms' net sales differ" in " ".join(check_invariants(model)["violations"])


@pytest.mark.parametrize(("deadline_year_offset", "owed"), [(1, 0), (2, 20)])
def test_a_loan_is_paid_back_when_the_true_up_came_first(deadline_year_offset: int,
                                                         owed: int) -> None:
    """Borrowing 20 t advanced from vintage 2026 at the 2025 deadline: with the deadline
    at the end of 2026 the 2026 true-up (September 2027) withdraws it later, nothing is
    owed; with the deadline at the end of 2027 that true-up has run already, so the 20 t
    are owed with the 2026 obligation (before the fix they were never paid back)."""
    from test_compliance_rules import deadline_market

    market = deadline_market([100], [60], {"compliance.borrowing": True,
                                           "compliance.borrowing_share": 0.5,
                                           "compliance.borrowing_threshold": 0.1,
                                           "compliance.true_up_month": 9,
                                           "compliance.deadline_year_offset":
                                               deadline_year_offset})
    market.compliance().settle(2025, reference_price=80.0)
    records = market.records
    assert records["borrowed"][0, records.col(2025)] == 20
    assert records["owed"][0, records.col(2026)] == owed
