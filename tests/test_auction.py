"""Clearing tests for uniform-price sealed-bid allowance auctions on hand-built bid books.

Each test lists a few bids, works out the allocation by hand in a comment and asserts it exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from etsim.model.auction import AuctionResult, clear_reverse_auction, clear_uniform_price


def test_oversubscribed_marginal_tie_split_pro_rata() -> None:
    # Supply 1000, reserve 40.
    #   50: 400 -> filled, 600 left
    #   45: 300 + 200 + 200 = 700 > 600 -> marginal level, pro rata 600/700:
    #       300 -> 257.14 (257, rem 100/700), 200 -> 171.43 (171, rem 300/700) twice
    #       599 handed out, 1 left -> largest remainder: the two 200s tie, input order -> bid 2
    #   42: nothing
    res = clear_uniform_price(
        np.array([400, 300, 200, 200, 500]),
        np.array([50.0, 45.0, 45.0, 45.0, 42.0]),
        supply=1000,
        reserve_price=40.0,
    )
    assert isinstance(res, AuctionResult)
    assert res.filled.tolist() == [400, 257, 172, 171, 0]
    assert res.filled.dtype == np.int64
    assert res.price == 45.0
    assert res.sold == 1000 == int(res.filled.sum())
    assert res.unsold == 0


def test_equal_remainders_broken_by_input_order() -> None:
    # Three 100 t bids at 60 share 200 t: 66.67 each -> 66 each, 2 left -> first two bids.
    res = clear_uniform_price([100, 100, 100], [60.0, 60.0, 60.0], supply=200, reserve_price=1.0)
    assert res.filled.tolist() == [67, 67, 66]
    assert res.price == 60.0
    # Same bids, with a better bid in front: order within the level is still input order.
    res = clear_uniform_price(
        [100, 50, 100, 100], [60.0, 70.0, 60.0, 60.0], supply=250, reserve_price=1.0
    )
    assert res.filled.tolist() == [67, 50, 67, 66]


def test_undersubscribed_price_is_lowest_accepted_bid() -> None:
    # Supply 1000: 300 @ 50 and 200 @ 41 are filled; 100 @ 39 is below the reserve 40.
    # Price = lowest accepted bid = 41; 500 t unsold.
    res = clear_uniform_price([300, 200, 100], [50.0, 41.0, 39.0], supply=1000, reserve_price=40.0)
    assert res.filled.tolist() == [300, 200, 0]
    assert res.price == 41.0
    assert res.sold == 500
    assert res.unsold == 500


def test_demand_exactly_equal_to_supply() -> None:
    res = clear_uniform_price([600, 400], [55.0, 48.0], supply=1000, reserve_price=40.0)
    assert res.filled.tolist() == [600, 400]
    assert (res.price, res.sold, res.unsold) == (48.0, 1000, 0)


def test_bids_below_reserve_ignored_and_bid_at_reserve_accepted() -> None:
    # Oversubscribed in raw demand (2500 t) but only the 200 @ 40.00 bid meets the reserve.
    res = clear_uniform_price(
        [1000, 200, 1300], [39.99, 40.0, 10.0], supply=1000, reserve_price=40.0
    )
    assert res.filled.tolist() == [0, 200, 0]
    assert res.price == 40.0
    assert (res.sold, res.unsold) == (200, 800)
    # Nothing valid: nothing sold, price NaN, all supply unsold.
    res = clear_uniform_price([1000], [39.0], supply=1000, reserve_price=40.0)
    assert res.filled.tolist() == [0]
    assert math.isnan(res.price)
    assert (res.sold, res.unsold) == (0, 1000)


def test_empty_auction_and_zero_supply() -> None:
    res = clear_uniform_price([], [], supply=500, reserve_price=40.0)
    assert res.filled.tolist() == [] and math.isnan(res.price)
    assert (res.sold, res.unsold) == (0, 500)
    res = clear_uniform_price([100], [50.0], supply=0, reserve_price=40.0)
    assert res.filled.tolist() == [0] and math.isnan(res.price)
    assert (res.sold, res.unsold) == (0, 0)


def test_max_per_bidder_caps_total_allocation() -> None:
    # Cap 300 t per bidder, supply 700. Walk by price:
    #   bidder 7: 200 @ 60 -> 200; 200 @ 55 -> only 100 left under the cap
    #   bidder 8: 400 @ 50 -> 300
    #   bidder 9: 600 @ 45 -> 300 under the cap, but only 700 - 600 = 100 of supply left
    # Price 45 (the bid that got the last tonnes).
    res = clear_uniform_price(
        [200, 200, 400, 600],
        [60.0, 55.0, 50.0, 45.0],
        supply=700,
        reserve_price=40.0,
        max_per_bidder=300,
        bidders=np.array([7, 7, 8, 9]),
    )
    assert res.filled.tolist() == [200, 100, 300, 100]
    assert (res.price, res.sold, res.unsold) == (45.0, 700, 0)
    # With supply 1000 the capped demand (900) falls short: 100 unsold.
    res = clear_uniform_price(
        [200, 200, 400, 600],
        [60.0, 55.0, 50.0, 45.0],
        supply=1000,
        reserve_price=40.0,
        max_per_bidder=300,
        bidders=np.array([7, 7, 8, 9]),
    )
    assert res.filled.tolist() == [200, 100, 300, 300]
    assert (res.price, res.sold, res.unsold) == (45.0, 900, 100)


def test_reverse_auction_mirror_case() -> None:
    # Reserve pool buys back 500 t, ceiling 60. Offers ascending:
    #   50: 300 + 100 = 400 -> filled, 100 left
    #   55: 200 + 100 = 300 > 100 -> pro rata 100/300: 66.67 (66, rem 200) and 33.33 (33, rem 100);
    #       1 left -> offer 0 -> 67
    #   65: above the ceiling, ignored
    res = clear_reverse_auction(
        np.array([200, 300, 100, 400, 100]),
        np.array([55.0, 50.0, 50.0, 65.0, 55.0]),
        demand=500,
        ceiling_price=60.0,
    )
    assert res.filled.tolist() == [67, 300, 100, 0, 33]
    assert res.price == 55.0
    assert (res.sold, res.unsold) == (500, 0)
    # Demand 1000 is not met: every valid offer is bought at the highest accepted offer 55.
    res = clear_reverse_auction(
        [200, 300, 100, 400, 100], [55.0, 50.0, 50.0, 65.0, 55.0], demand=1000, ceiling_price=60.0
    )
    assert res.filled.tolist() == [200, 300, 100, 0, 100]
    assert (res.price, res.sold, res.unsold) == (55.0, 700, 300)
    # No offer under the ceiling.
    res = clear_reverse_auction([10], [61.0], demand=5, ceiling_price=60.0)
    assert math.isnan(res.price) and (res.sold, res.unsold) == (0, 5)


def test_bad_input_raises_value_error_naming_argument() -> None:
    with pytest.raises(ValueError, match="bid_quantities"):
        clear_uniform_price([100, -1], [50.0, 50.0], supply=10, reserve_price=1.0)
    with pytest.raises(ValueError, match="bid_quantities"):
        clear_uniform_price([100.5], [50.0], supply=10, reserve_price=1.0)
    with pytest.raises(ValueError, match="bid_prices"):
        clear_uniform_price([100, 100], [50.0], supply=10, reserve_price=1.0)
    with pytest.raises(ValueError, match="bid_prices"):
        clear_uniform_price([100], [float("nan")], supply=10, reserve_price=1.0)
    with pytest.raises(ValueError, match="supply"):
        clear_uniform_price([100], [50.0], supply=-5, reserve_price=1.0)
    with pytest.raises(ValueError, match="reserve_price"):
        clear_uniform_price([100], [50.0], supply=5, reserve_price=float("nan"))
    with pytest.raises(ValueError, match="bidders"):
        clear_uniform_price([100], [50.0], supply=5, reserve_price=1.0, max_per_bidder=10)
    with pytest.raises(ValueError, match="bidders"):
        clear_uniform_price(
            [100], [50.0], supply=5, reserve_price=1.0, max_per_bidder=10, bidders=[1, 2]
        )
    with pytest.raises(ValueError, match="offer_quantities"):
        clear_reverse_auction([-3], [50.0], demand=5, ceiling_price=60.0)
    with pytest.raises(ValueError, match="offer_prices"):
        clear_reverse_auction([3, 4], [50.0], demand=5, ceiling_price=60.0)
    with pytest.raises(ValueError, match="demand"):
        clear_reverse_auction([3], [50.0], demand=-1, ceiling_price=60.0)


def test_randomised_auctions_respect_clearing_rules() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        qty = rng.integers(0, 1000, n)
        prices = rng.integers(35, 60, n).astype(float)  # coarse grid -> many ties
        supply = int(rng.integers(0, 15000))
        res = clear_uniform_price(qty, prices, supply=supply, reserve_price=40.0)
        assert res.sold == int(res.filled.sum()) and res.sold + res.unsold == supply
        assert np.all((res.filled >= 0) & (res.filled <= qty))
        assert np.all(res.filled[prices < 40.0] == 0)
        if res.sold == 0:
            assert math.isnan(res.price)
            continue
        assert res.price >= 40.0
        # Strictly better bids are filled in full, worse bids get nothing.
        assert np.all(res.filled[prices > res.price] == qty[prices > res.price])
        assert np.all(res.filled[prices < res.price] == 0)
        if res.unsold > 0:  # undersubscribed: every valid bid filled in full
            assert np.all(res.filled[prices >= 40.0] == qty[prices >= 40.0])
