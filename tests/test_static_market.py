"""Price discovery on the exchange: static double-auction markets with unit traders.

The classic validation of a double auction (Smith 1962; Gode & Sunder 1993; Cliff 1997): in the
default hand-built market (6 buyers and 6 sellers, 4 units each; CE 16 units at 118-122 CNY/t)
zero-intelligence constrained traders reach near-full allocative efficiency, unconstrained ones
do not, and ZIP traders learn the competitive-equilibrium price. All seeds are fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from etsim.agents.traders import TRADERS, ZIC, ZIP, ZIU, trader_class
from etsim.model.exchange import BUY, SELL
from etsim.model.static_market import (
    BUYER_VALUES,
    SELLER_COSTS,
    StaticMarketResult,
    allocative_efficiency,
    competitive_equilibrium,
    late_mean_price,
    max_surplus,
    run_static_market,
)

SEEDS = range(20)
ZIP_PERIODS = 6

# Tiny market. Demand, high to low: 100 (B0), 90 (B1), 70 (B0), 60 (B2).
# Supply, low to high: 40 (S0), 55 (S1), 80 (S2), 95 (S1).
# d_1 >= s_1 and d_2 >= s_2, but d_3 = 70 < s_3 = 80, so q = 2. Any price in
# [max(s_2, d_3), min(d_2, s_3)] = [max(55, 70), min(90, 80)] = [70, 80] clears the market.
# Maximum surplus (100 - 40) + (90 - 55) = 95.
TINY_BUYERS = [[100.0, 70.0], [90.0], [60.0]]
TINY_SELLERS = [[40.0], [55.0, 95.0], [80.0]]


def check_invariants(result: StaticMarketResult, constrained: bool) -> None:
    """Conservation, band and no-loss checks on every period of a run."""
    n_buy = np.array([len(v) for v in BUYER_VALUES])
    n_sell = np.array([len(c) for c in SELLER_COSTS])
    for period, trades in enumerate(result.trades):
        n = len(trades["price"])
        bought, sold = result.units_bought[period], result.units_sold[period]
        assert bought.sum() == sold.sum() == n == result.quantity[period]
        assert np.array_equal(bought, np.bincount(trades["buyer"], minlength=len(n_buy)))
        assert np.array_equal(sold, np.bincount(trades["seller"], minlength=len(n_sell)))
        assert np.all(bought <= n_buy) and np.all(sold <= n_sell)
        assert np.all(trades["price"] >= result.floor)
        assert np.all(trades["price"] <= result.ceiling)
        assert result.shouts[period] <= 2000
        if constrained:
            assert np.all(trades["price"] <= trades["value"])
            assert np.all(trades["price"] >= trades["cost"])


@pytest.fixture(scope="module")
def zic_runs() -> list[StaticMarketResult]:
    return [run_static_market(trader="zic", seed=seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def ziu_runs() -> list[StaticMarketResult]:
    return [run_static_market(trader="ziu", seed=seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def zip_runs() -> list[StaticMarketResult]:
    return [run_static_market(trader="zip", periods=ZIP_PERIODS, seed=seed) for seed in SEEDS]


# ------------------------------------------------------------------ equilibrium and efficiency


def test_competitive_equilibrium_tiny_market() -> None:
    assert competitive_equilibrium(TINY_BUYERS, TINY_SELLERS) == (70.0, 80.0, 2)
    assert max_surplus(TINY_BUYERS, TINY_SELLERS) == 95.0
    # Flat unit lists give the same curves.
    assert competitive_equilibrium([100, 70, 90, 60], [40, 55, 95, 80]) == (70.0, 80.0, 2)


def test_competitive_equilibrium_edge_cases() -> None:
    # One buyer unit: q = 1; no d_2, so the interval is [s_1, min(d_1, s_2)] = [40, 50].
    assert competitive_equilibrium([[100.0]], [[40.0, 50.0]]) == (40.0, 50.0, 1)
    # No gains from trade: q = 0 and nobody trades at prices in [d_1, s_1].
    assert competitive_equilibrium([[30.0]], [[40.0]]) == (30.0, 40.0, 0)
    assert max_surplus([[30.0]], [[40.0]]) == 0.0


def test_default_market_equilibrium() -> None:
    assert competitive_equilibrium(BUYER_VALUES, SELLER_COSTS) == (118.0, 122.0, 16)
    assert max_surplus(BUYER_VALUES, SELLER_COSTS) == 1109.0


def test_allocative_efficiency_hand_made_trades() -> None:
    # CE allocation: B0's 100 with S0's 40, B1's 90 with S1's 55 -> 95 / 95.
    assert allocative_efficiency(TINY_BUYERS, TINY_SELLERS, [100, 90], [40, 55]) == 1.0
    # Intramarginal units mismatched: (100 - 80) + (90 - 40) = 70 -> 70 / 95.
    eff = allocative_efficiency(TINY_BUYERS, TINY_SELLERS, [100, 90], [80, 40])
    assert eff == pytest.approx(70 / 95)
    # Plus a losing (ZI-U style) trade of B2's 60 against S1's 95: (70 - 35) / 95.
    eff = allocative_efficiency(TINY_BUYERS, TINY_SELLERS, [100, 90, 60], [80, 40, 95])
    assert eff == pytest.approx(35 / 95)
    # A single losing trade makes efficiency negative.
    assert allocative_efficiency(TINY_BUYERS, TINY_SELLERS, [60], [95]) == pytest.approx(-35 / 95)
    assert allocative_efficiency(TINY_BUYERS, TINY_SELLERS, [], []) == 0.0
    assert math.isnan(allocative_efficiency([[30.0]], [[40.0]], [], []))


def test_late_mean_price_is_last_third() -> None:
    assert late_mean_price([1, 2, 3, 4, 5, 6, 7]) == 6.0  # ceil(7 / 3) = 3 trades: 5, 6, 7
    assert late_mean_price([10, 20, 30]) == 30.0
    assert late_mean_price([42]) == 42.0
    assert math.isnan(late_mean_price([]))


# ------------------------------------------------------------------ traders


def test_trader_registry() -> None:
    assert TRADERS == {"zic": ZIC, "ziu": ZIU, "zip": ZIP}
    assert trader_class("zip") is ZIP
    with pytest.raises(KeyError, match="allowed: zic, zip, ziu"):
        trader_class("gd")
    with pytest.raises(KeyError, match="unknown trader"):
        run_static_market(trader="human")


def test_zic_shouts_within_budget() -> None:
    rng = np.random.default_rng(1)
    buyer = ZIC(BUY, [80.0, 120.0], 1.0, 250.0)
    seller = ZIC(SELL, [90.0, 60.0], 1.0, 250.0)
    assert buyer.value == 120.0 and seller.value == 60.0  # best unit first
    bids = [buyer.shout(None, None, rng) for _ in range(500)]
    asks = [seller.shout(None, None, rng) for _ in range(500)]
    assert 1.0 <= min(bids) and max(bids) <= 120.0
    assert 60.0 <= min(asks) and max(asks) <= 250.0
    buyer.fill()
    assert buyer.value == 80.0
    buyer.fill()
    assert not buyer.active
    buyer.reset()
    assert buyer.active and buyer.value == 120.0


def test_zip_margin_update_follows_cliff_rules() -> None:
    rng = np.random.default_rng(0)
    seller = ZIP(SELL, [100.0], 1.0, 250.0, rng, margin=0.2, beta=0.5, gamma=0.0, c_a=0.0)
    assert seller.price == pytest.approx(120.0)
    # Trade at 130 >= its price 120: it could have asked more, so it raises its margin.
    seller.observe(130.0, True, BUY)
    assert seller.price > 120.0
    # An offer at 110 was not taken and its own price is higher: it lowers its margin.
    before = seller.price
    seller.observe(110.0, False, SELL)
    assert seller.price < before
    # An unaccepted bid tells a seller nothing.
    before = seller.price
    seller.observe(105.0, False, BUY)
    assert seller.price == before
    # The margin never goes below zero: it never asks below cost.
    for _ in range(50):
        seller.observe(50.0, False, SELL)
    assert seller.margin == 0.0 and seller.shout(None, None, rng) == 100.0

    buyer = ZIP(BUY, [100.0], 1.0, 250.0, rng, margin=0.2, beta=0.5, gamma=0.0, c_a=0.0)
    assert buyer.price == pytest.approx(80.0)
    buyer.observe(70.0, True, SELL)  # trade at 70 <= its bid 80: raise margin, bid lower
    assert buyer.price < 80.0
    before = buyer.price
    buyer.observe(90.0, True, SELL)  # an offer accepted at 90 > its bid: lower margin
    assert buyer.price > before


# ------------------------------------------------------------------ markets


def test_zic_efficiency_matches_gode_sunder(zic_runs: list[StaticMarketResult]) -> None:
    eff = np.array([r.efficiency[0] for r in zic_runs])
    # Gode & Sunder (1993) report 97.1-99.9 % for ZI-C across their five markets.
    assert eff.mean() >= 0.97
    assert np.all(eff <= 1.0 + 1e-12)
    for r in zic_runs:
        check_invariants(r, constrained=True)


def test_ziu_is_clearly_less_efficient(
    zic_runs: list[StaticMarketResult], ziu_runs: list[StaticMarketResult]
) -> None:
    zic = np.mean([r.efficiency[0] for r in zic_runs])
    ziu = np.mean([r.efficiency[0] for r in ziu_runs])
    assert ziu <= zic - 0.05
    # ZI-U traders trade extramarginal units: more than the CE quantity on average.
    assert np.mean([r.quantity[0] for r in ziu_runs]) > ziu_runs[0].ce_quantity
    for r in ziu_runs:
        check_invariants(r, constrained=False)


def test_zip_discovers_the_ce_price(
    zic_runs: list[StaticMarketResult], zip_runs: list[StaticMarketResult]
) -> None:
    ce = zip_runs[0].ce_price
    assert ce == 120.0
    late = np.array([r.late_price[-1] for r in zip_runs])
    assert abs(late.mean() - ce) <= 0.05 * ce
    # Learning beats zero intelligence here: ZI-C's late prices sit further from the CE price.
    zic_late = np.array([r.late_price[0] for r in zic_runs])
    assert np.abs(late - ce).mean() < np.abs(zic_late - ce).mean()
    assert np.mean([r.efficiency[-1] for r in zip_runs]) >= 0.97
    for r in zip_runs:
        assert len(r.trades) == ZIP_PERIODS
        check_invariants(r, constrained=True)


def test_run_is_deterministic() -> None:
    a = run_static_market(trader="zip", periods=2, seed=7)
    b = run_static_market(trader="zip", periods=2, seed=7)
    for ta, tb in zip(a.trades, b.trades, strict=True):
        for key in ta:
            assert np.array_equal(ta[key], tb[key])


def test_period_ends_when_no_trade_is_possible() -> None:
    # One profitable unit pair: ZI-C trades it and stops long before the shout limit.
    r = run_static_market([[100.0, 10.0]], [[50.0, 200.0]], trader="zic", periods=3, seed=3)
    assert r.quantity.tolist() == [1, 1, 1]
    assert np.all(r.shouts < 2000)
    assert np.all(r.efficiency == 1.0)
