"""The primary market on hand-built state (model/primary.py): the firms' sealed bids,
uniform-price auctions of the paid share and of the reserve pool's quota, the unsold
rule, the pool's buy-backs and the carrying out of a policy's ``Intervention``.

Steel firms of the classroom scenario; each firm's expected balance over its open
compliance years is set by hand (``Positions.expected_net``), so a firm short by X t bids
for X t at its expected price (urgency 0 far from a deadline) within its carbon budget
(one year of its emissions at its expected price).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from institutions import HandBuiltMarket, hand_built_market, ledger_balances, make_firms

from etsim.model.reserve import Intervention
from etsim.model.settlement import AUCTIONEER, RESERVE_POOL


def auction_market(expected_balance: list[float], expected_price: list[float],
                   overrides: dict[str, Any] | None = None,
                   **firm_attributes: Any) -> HandBuiltMarket:
    """Firms expecting the given balances over all open years and prices, each with a
    budget for 2,000 t at its price unless told otherwise."""
    firm_attributes.setdefault("annual_emissions", 2000.0)
    market = hand_built_market(make_firms(len(expected_balance), expected_price=expected_price,
                                          **firm_attributes), overrides)
    market.positions().expected_net = np.array(expected_balance, dtype=float)
    return market


def test_firms_short_bid_their_deficit_at_their_expected_price_within_budget() -> None:
    """Short firms bid their deficit at their expected price within budget; others do not."""
    market = auction_market([-100, -50, 20, -80], [95.0, 90.0, 80.0, 99.0],
                            annual_emissions=[2000.0, 20.0, 2000.0, 2000.0],
                            entry_year=[2024, 2024, 2024, 2026])
    bidders, tonnes, prices = market.primary().bids(day=0)
    # firm 1's budget: 20 t x 90 = 1,800 CNY buys 20 t; firm 3 enters in 2026
    assert bidders.tolist() == [0, 1]
    assert tonnes.tolist() == [100, 20]
    assert prices.tolist() == [95.0, 90.0]


def test_bids_rise_with_urgency_but_never_above_the_penalty_price() -> None:
    """Bids rise with urgency by the buyer premium but never above the penalty price."""
    for multiple, expected_bid in ((5.0, 123.5), (1.2, 114.0)):
        market = auction_market([-100], [95.0], {"penalty.multiple": multiple})
        market.positions().next_deadline = 0  # urgency 1 on day 0
        _, _, prices = market.primary().bids(day=0)
        # min(95 x (1 + 0.3 x 1), multiple x 95): 123.5 under 475, capped at 114.0
        assert prices.tolist() == [expected_bid]


def test_uniform_price_auction_issues_quota_at_the_lowest_accepted_bid() -> None:
    """Auction winners get new quota and all pay the lowest accepted bid to the state."""
    market = auction_market([-100, -50], [95.0, 90.0])
    unsold = market.primary().sell(day=40, year=2025, volume=120, reserve_price=40.0,
                                   vintage=2025, flow="auctioned", counterparty=AUCTIONEER)
    # 100 t to firm 0, the other 20 t to firm 1 at its 90 CNY/t: everyone pays 90
    assert unsold == 0
    assert market.registry.total().tolist() == [100, 20]
    np.testing.assert_allclose(market.firms.cash, [-9000.0, -1800.0])
    col = market.records.col(2025)
    assert market.records["auction_purchased"][:, col].tolist() == [100, 20]
    assert market.registry.ledger()[1]["auctioned"] == 120
    assert market.payments["auctions"] == pytest.approx(10800.0)
    assert market.daily["primary_price"][40] == 90.0
    (part,) = market.trade_log.parts
    assert part["kind"] == "auction" and part["seller_row"].tolist() == [AUCTIONEER] * 2
    assert ledger_balances(market.registry)


def test_bids_below_the_reserve_price_go_unfilled_and_the_rest_is_unsold() -> None:
    """Bids under the reserve price are ignored; what is not sold is returned."""
    market = auction_market([-100, -50], [95.0, 90.0])
    unsold = market.primary().sell(0, 2025, 200, 92.0, 2025, "auctioned", AUCTIONEER)
    # only firm 0's 100 t at 95 clear: 100 of 200 t unsold, price 95
    assert unsold == 100
    assert market.registry.total().tolist() == [100, 0]
    assert market.firms.cash[0] == pytest.approx(-9500.0)


def test_max_bid_share_caps_what_one_firm_wins() -> None:
    """With max_bid_share no firm wins more than that share of the auction."""
    market = auction_market([-100, -50], [95.0, 90.0], {"auction.max_bid_share": 0.5})
    unsold = market.primary().sell(0, 2025, 120, 40.0, 2025, "auctioned", AUCTIONEER)
    # cap int(0.5 x 120) = 60 t: firm 0 wins 60, firm 1 its 50; 10 t unsold at 90
    assert unsold == 10
    assert market.registry.total().tolist() == [60, 50]


def test_paid_share_auction_sells_its_part_of_the_years_paid_quota() -> None:
    """Each auction offers its part of the paid share of the year's quota at projected output."""
    market = auction_market([-1000, 0], [95.0, 95.0], {"sectors.steel.allocation.paid_share": 0.1},
                            base_output=1000.0)
    market.primary().paid_share_auction(day=0, year=2025, month=3)
    # 0.1 x (1,000 + 1,000 units) x 2.0 t/unit / 4 auctions = 100 t, all to firm 0
    assert market.records["auction_purchased"][0, market.records.col(2025)] == 100
    assert market.registry.ledger()[1]["auctioned"] == 100


@pytest.mark.parametrize(("rule", "carried", "pool"), [
    ("carry", 100, 0),
    ("reserve", 0, 100),
    ("cancel", 0, 0),
])
def test_unsold_auction_volume_is_carried_pooled_or_cancelled(rule: str, carried: int,
                                                               pool: int) -> None:
    """Unsold paid-share quota is carried, pooled or cancelled as auction.unsold says."""
    market = auction_market([0, 0], [95.0, 95.0], {"sectors.steel.allocation.paid_share": 0.1,
                                                   "auction.unsold": rule},
                            base_output=1000.0)
    primary = market.primary()
    primary.paid_share_auction(day=0, year=2025, month=3)  # 100 t offered, no bidder
    assert primary.unsold_carried == carried
    assert market.reserve.holdings == pool
    assert market.registry.ledger()[1]["auctioned"] == 0
    if rule == "carry":
        # in April, after 3 months of 250 units each: projected 250 x 12 / 3 = 1,000
        # units a year, so 100 t again, plus the 100 t carried
        market.records["output"][:, market.records.col(2025)] = 250.0
        primary.paid_share_auction(day=60, year=2025, month=6)
        assert primary.unsold_carried == 200
        # after the last auction of the last compliance year nothing is carried
        last_day = market.calendar.first_day(2026, 12)
        primary.paid_share_auction(day=last_day, year=2026, month=12)
        assert primary.unsold_carried == 0


def test_reserve_release_sells_at_most_the_pools_holdings() -> None:
    """A reserve release sells at most the pool's holdings, as quota of the current vintage."""
    market = auction_market([-30, 0], [95.0, 95.0])
    market.reserve.endow(50)
    market.primary().release_from_reserve(day=0, year=2025, volume=80, reserve_price=40.0)
    # 50 t offered, firm 0 wants 30: 30 sold at 95, 20 t stay in the pool
    assert market.reserve.holdings == 20 and market.reserve.released[2025] == 30
    assert market.registry.ledger()[1]["reserve_out"] == 30
    assert market.payments["reserve_sales"] == pytest.approx(30 * 95.0)
    assert market.trade_log.parts[0]["seller_row"].tolist() == [RESERVE_POOL]
    market.positions().expected_net = np.array([-50.0, 0.0])  # 30 held: 20 t short
    january_2027 = market.calendar.first_day(2027)
    market.primary().release_from_reserve(january_2027, 2027, volume=20, reserve_price=40.0)
    assert market.registry.ledger()[2]["reserve_out"] == 20  # vintage 2026 in 2027
    assert market.reserve.holdings == 0 and market.reserve.balance() == 0
    assert ledger_balances(market.registry)


def test_buy_back_takes_the_cheapest_surplus_up_to_the_ceiling() -> None:
    """A buy-back takes the cheapest surplus under the ceiling, all at the highest accepted ask."""
    market = auction_market([0, 0, 0], [40.0, 36.0, 45.0])
    market.registry.issue(np.arange(3), np.array([100, 50, 80]), 2025, "issued_free")
    market.primary().buy_back(day=0, year=2025, volume=120, ceiling_price=40.0)
    # asks 0.95 x expected: 38.00, 34.20, 42.75 (above 40, ignored); 120 t wanted:
    # firm 1's 50 at 34.20, then 70 of firm 0's 100 at 38.00 -> all paid 38.00
    assert market.registry.total().tolist() == [30, 0, 80]
    np.testing.assert_allclose(market.firms.cash, [70 * 38.0, 50 * 38.0, 0.0])
    assert market.reserve.holdings == 120 and market.reserve.bought_back[2025] == 120
    assert market.payments["reserve_purchases"] == pytest.approx(4560.0)
    assert market.payments["reserve_sales"] == 0.0
    assert market.registry.ledger()[1]["reserve_in"] == 120
    assert market.trade_log.parts[0]["buyer_row"].tolist() == [RESERVE_POOL] * 2
    assert ledger_balances(market.registry)


def test_carry_out_does_what_the_policy_decided() -> None:
    """carry_out keeps a policy's withholding for the next issuance and auctions its release."""
    market = auction_market([-10, 0], [95.0, 95.0])
    market.reserve.endow(100)
    market.primary().carry_out(Intervention(release=25, release_price=40.0, withhold=30),
                               day=0, year=2025)
    # 25 t offered, firm 0 wants 10: 10 t released
    assert market.reserve.withhold_pending == 30
    assert market.reserve.holdings == 90
    assert market.registry.total().tolist() == [10, 0]
