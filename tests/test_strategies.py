"""The model's trading strategies: quotes within reservation values, learning, the mix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from etsim import CarbonMarketModel
from etsim.agents.strategies import (
    STRATEGIES,
    Orders,
    TradingState,
    ZeroIntelligenceStrategy,
    ZIPStrategy,
    make_strategy,
)
from etsim.model.scenario import STRATEGY_NAMES, TradingConfig


def _state(n: int, position: float, urgency: float = 0.5, growth: float = 0.0,
           discount_rate: float = 0.08) -> TradingState:
    return TradingState(
        position=np.full(n, position),
        short_later=np.zeros(n, dtype=bool),
        sellable=np.full(n, 1e6),
        urgency=np.full(n, urgency),
        expected_price=np.full(n, 100.0),
        expected_growth=np.full(n, growth),
        discount_rate=np.full(n, discount_rate),
        penalty_price=np.full(n, 500.0),
        budget=np.full(n, 1e9),
        can_trade=np.ones(n, dtype=bool),
        limit_down=90.0,
        limit_up=110.0,
        banking=True,
    )


def test_registry_matches_the_schema() -> None:
    assert tuple(STRATEGIES) == STRATEGY_NAMES
    allowed = "budget_constrained, fundamental_compliance, zero_intelligence, zip"
    with pytest.raises(KeyError, match=allowed):
        make_strategy("martingale", TradingConfig(), np.random.default_rng(0))


def test_zero_intelligence_never_quotes_beyond_its_value() -> None:
    config = TradingConfig(base_activity=1.0, peak_activity=1.0)
    strategy = ZeroIntelligenceStrategy(config, np.random.default_rng(1))
    buyers = strategy.orders(_state(2000, -1000.0))
    # value = 100 x (1 + 0.3 x 1.5) = 145 is above the band: bids spread over the band
    assert (buyers.limit_price >= 90.0).all() and (buyers.limit_price <= 110.0).all()
    assert buyers.limit_price.std() > 4.0
    sellers = strategy.orders(_state(2000, 1000.0))
    # seller value 95: asks between 95 and the upper limit, never below the value
    assert sellers.limit_price.min() >= 95.0 and sellers.limit_price.max() <= 110.0


def test_zip_moves_margins_towards_the_close() -> None:
    config = TradingConfig(base_activity=1.0, peak_activity=1.0, zip_learning_rate=0.5)
    strategy = ZIPStrategy(config, np.random.default_rng(2))
    orders = strategy.orders(_state(4, -1000.0))
    before = strategy.buy_margin.copy()
    # the first two bids traded, the last two did not; the close was 100
    filled = np.array([True, True, False, False])
    strategy.observe(orders, filled, close=100.0)
    bids = orders.limit_price
    value = 145.0
    for k in range(4):
        target = 98.0 if filled[k] else 102.0  # 2% better / worse than the close
        new_bid = bids[k] + 0.5 * (target - bids[k])
        assert strategy.buy_margin[k] == pytest.approx(1 - new_bid / value)
    # a bid that did not trade rises (its margin falls) when it was below the target
    unfilled_low = (~filled) & (bids < 102.0)
    assert (strategy.buy_margin[unfilled_low] < before[unfilled_low]).all()


def test_zip_observe_without_orders_is_harmless() -> None:
    strategy = ZIPStrategy(TradingConfig(), np.random.default_rng(3))
    empty = Orders(*(np.array([], dtype=t) for t in (np.int64, np.int64, np.int64, float)))
    strategy.observe(empty, np.array([], dtype=bool), close=100.0)


def test_sector_mix_assigns_strategies_by_share() -> None:
    mix = {"steel": {"zip": 0.5, "zero_intelligence": 0.5}}
    model = CarbonMarketModel("china-2024", seed=4, scale=0.5,
                              overrides={"trading.strategy_mix": mix})
    names = model.strategy_mix.names
    steel = model.firms.sector == model.sector_names.index("steel")
    used = {names[i] for i in model.strategy_mix.firm_strategy[steel]}
    assert used == {"zip", "zero_intelligence"}
    zip_share = np.mean(model.strategy_mix.firm_strategy[steel] == names.index("zip"))
    assert 0.4 < zip_share < 0.6  # 340 steel firms
    assert (model.strategy_mix.firm_strategy[~steel] == names.index("budget_constrained")).all()
    again = CarbonMarketModel("china-2024", seed=4, scale=0.5,
                              overrides={"trading.strategy_mix": mix})
    assert (again.strategy_mix.firm_strategy == model.strategy_mix.firm_strategy).all()


@pytest.mark.parametrize("strategy", ["zero_intelligence", "zip"])
def test_each_strategy_runs_a_market_that_keeps_its_invariants(strategy: str) -> None:
    # (in the 20-firm classroom, zero-intelligence traders can lock the market: when
    # every seller values quota above the day's band, bids spread over the band never
    # meet asks stuck at its top, and without trades the band never moves)
    model = CarbonMarketModel("china-2024", seed=5, scale=0.05, trading__strategy=strategy)
    model.run()
    assert model.invariants["ok"]
    years = model.results()["market_years"]
    assert years["volume"].sum() > 0
    # zero-intelligence quotes are far from the values, so some firms stay short
    assert years["compliance_rate"].dropna().min() > 0.8


def test_hotelling_a_firm_banks_when_it_expects_growth_above_its_discount_rate() -> None:
    strategy = make_strategy("budget_constrained", TradingConfig(), np.random.default_rng(0))
    # expected 100, growth 0: selling now at 95 (seller_discount) beats holding at 100/1.08
    _, sell_value = strategy.reservation_values(_state(1, 1000.0, growth=0.0))
    assert sell_value[0] == pytest.approx(95.0)
    # growth 20% against a 8% rate: holding is worth 100 x 1.2 / 1.08 = 111.11
    _, sell_value = strategy.reservation_values(_state(1, 1000.0, growth=0.2))
    assert sell_value[0] == pytest.approx(100 * 1.2 / 1.08)
    # the same growth against a 30% rate: holding is worth less than 95, so it sells at 95
    _, sell_value = strategy.reservation_values(_state(1, 1000.0, growth=0.2, discount_rate=0.3))
    assert sell_value[0] == pytest.approx(95.0)


def test_hotelling_holding_keeps_surplus_off_a_band_below_the_hold_value() -> None:
    config = TradingConfig(base_activity=1.0, peak_activity=1.0)
    strategy = make_strategy("budget_constrained", config, np.random.default_rng(3))
    # hold value 111.11 lies above the upper limit 110: every ask sits at the limit,
    # so no buyer valuing quota at 100 could take it
    sellers = strategy.orders(_state(500, 1000.0, growth=0.2))
    assert len(sellers.trader) > 0
    assert (sellers.limit_price == 110.0).all()


# One day of every strategy on firms with every feature in use (patience, sliced and
# lumpy blocks, a carry-over limit, own marginal costs), printed as JSON: run compiled
# here and as plain Python (NUMBA_DISABLE_JIT) in a fresh process.
EVERY_FEATURE_DAY = """
import json
import numpy as np
from etsim.agents.strategies import STRATEGIES, TradingState
from etsim.model.scenario import TradingConfig
n = 400
rng = np.random.default_rng(11)
position = rng.normal(0, 1, n) * 10 ** rng.uniform(0, 6, n)
state = TradingState(
    position=position, short_later=rng.random(n) < 0.3,
    sellable=np.floor(rng.uniform(0, 2e6, n)), urgency=np.full(n, 0.7),
    expected_price=rng.uniform(60, 140, n), expected_growth=rng.uniform(-0.1, 0.3, n),
    discount_rate=rng.uniform(0.02, 0.2, n), penalty_price=rng.uniform(150, 500, n),
    budget=rng.uniform(0, 1e9, n), can_trade=rng.random(n) < 0.9,
    limit_down=85.5, limit_up=104.5, banking=True,
    own_mac=np.where(rng.random(n) < 0.2, np.inf, rng.uniform(10, 400, n)),
    reference_price=95.0, annual_need=rng.uniform(1e3, 1e7, n), block_min_t=100_000,
    must_sell=np.floor(rng.uniform(0, 1e5, n)) * (rng.random(n) < 0.5))
days = {}
for name, strategy in STRATEGIES.items():
    for deals in (0, 2):
        config = TradingConfig(base_activity=0.6, peak_activity=0.9, patience=0.5,
                               block_deals=deals)
        orders = strategy(config, np.random.default_rng(5)).orders(state)
        days[f"{name}-{deals}"] = [getattr(orders, f).tolist() for f in
                                  ("trader", "side", "quantity", "limit_price")]
print(json.dumps(days))
"""


def test_the_compiled_day_runs_as_plain_python_with_the_same_orders() -> None:
    """The order formation kernels give the same orders compiled and as plain Python
    (``NUMBA_DISABLE_JIT=1``), for every strategy, sliced and lumpy blocks."""
    root = Path(__file__).resolve().parents[1]
    compiled = subprocess.run([sys.executable, "-c", EVERY_FEATURE_DAY], capture_output=True,
                              text=True, check=True, cwd=root,
                              env=dict(os.environ, PYTHONPATH=str(root)))
    plain = subprocess.run([sys.executable, "-c", EVERY_FEATURE_DAY], capture_output=True,
                           text=True, check=True, cwd=root,
                           env=dict(os.environ, PYTHONPATH=str(root), NUMBA_DISABLE_JIT="1"))
    days = json.loads(compiled.stdout)
    assert json.loads(plain.stdout) == days
    assert all(len(orders[0]) > 50 for orders in days.values())
    lumpy = np.array(days["budget_constrained-2"][2])
    sliced = np.array(days["budget_constrained-0"][2])
    assert (lumpy >= 100_000).any() and (sliced >= 100_000).any()  # block orders too


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_shared_urgency_gives_the_orders_of_the_same_urgency_per_firm(name: str) -> None:
    """A state whose firms share one urgency (``shared_urgency``, as the model's firms
    do) gives each strategy the same orders as the same urgency given firm by firm."""
    from dataclasses import replace

    rng = np.random.default_rng(4)
    n = 500
    state = _state(n, 0.0, urgency=0.83)
    state.position = rng.uniform(-5e4, 5e4, n).round()
    state.reference_price = 100.0
    state.annual_need = np.full(n, 2e5)
    state.block_min_t = 10_000
    state.own_mac = rng.uniform(50.0, 300.0, n)
    config = TradingConfig(base_activity=0.4, peak_activity=0.9, patience=0.5)
    per_firm = make_strategy(name, config, np.random.default_rng(9)).orders(state)
    shared = make_strategy(name, config, np.random.default_rng(9)).orders(
        replace(state, shared_urgency=True))
    assert len(per_firm.trader) > 50
    for field in ("trader", "side", "quantity", "limit_price"):
        assert np.array_equal(getattr(shared, field), getattr(per_firm, field)), field
