"""The end-of-run invariants (README, "Results"; docs/ODD.md, section 7.15) hold under
random seeds and random policy settings, and a broken ledger is caught."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from etsim import CarbonMarketModel
from etsim.model.invariants import check_invariants
from etsim.model.results import TABLES


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """Random overrides of the classroom scenario's policy settings."""
    share = st.floats(0.0, 0.3, allow_nan=False)
    overrides: dict[str, Any] = {
        "sectors.*.allocation.tightening": draw(st.floats(0.0, 0.1, allow_nan=False)),
        "sectors.*.allocation.paid_share": draw(share),
        "reserve_pool.policy": draw(st.sampled_from(["none", "price_trigger", "bank_based"])),
        "reserve_pool.set_aside_share": draw(st.floats(0.0, 0.05, allow_nan=False)),
        "compliance.banking": draw(st.booleans()),
        "compliance.borrowing": draw(st.booleans()),
        "mrv.misreporting_share": draw(st.floats(0.0, 0.5, allow_nan=False)),
        "penalty.multiple": draw(st.floats(0.0, 10.0, allow_nan=False)),
    }
    limit = draw(st.none() | st.floats(0.0, 200_000.0, allow_nan=False))
    if limit is not None:
        overrides["compliance.banking_limit_t"] = limit
    if draw(st.booleans()):  # absolute caps from the second compliance year
        overrides["sectors.*.allocation.rule"] = {"2025": "intensity", "2026": "absolute_cap"}
    return overrides


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), overrides=policies())
def test_invariants_hold_for_random_policies(seed: int, overrides: dict[str, Any]) -> None:
    model = CarbonMarketModel(scenario="classroom", seed=seed, overrides=overrides)
    model.run()  # raises InvariantError when the end-of-run check fails
    assert not model.running
    assert model.invariants is not None
    assert model.invariants["ok"], model.invariants["violations"]
    assert model.invariants["violations"] == []

    # the ledger, recomputed from the registry: every vintage balances
    ledger = model.registry.ledger()
    assert [row["balance"] for row in ledger] == [0] * len(ledger)
    assert [row["vintage"] for row in ledger] == list(range(2024, 2029))
    assert (model.registry.holdings >= 0).all()

    tables = model.results()
    assert set(tables) == set(TABLES)
    daily, trades, fy = tables["market_daily"], tables["trades"], tables["firm_years"]
    assert len(daily) == 3 * 12 * 20

    # every listed trade lies within that day's price limits
    listed = trades[trades["kind"] == "continuous"].merge(
        daily[["date", "limit_down", "limit_up"]], on="date", how="left", validate="m:1"
    )
    assert listed["limit_down"].notna().all()
    assert (listed["price"] >= listed["limit_down"] - 1e-9).all()
    assert (listed["price"] <= listed["limit_up"] + 1e-9).all()
    # every trade has two different accounts and a positive quantity
    assert (trades["buyer_id"] != trades["seller_id"]).all()
    assert (trades["quantity"] > 0).all()
    assert set(trades["kind"]) <= {"continuous", "block", "auction", "reserve"}

    # secondary-market trades: bought == sold each year, and both match the trades table
    secondary = trades[trades["kind"].isin(["continuous", "block"])]
    traded = secondary.groupby(secondary["date"].dt.year)["quantity"].sum()
    per_year = fy.groupby("year")[["bought", "sold"]].sum()
    assert (per_year["bought"] == per_year["sold"]).all()
    for year, row in per_year.iterrows():
        assert row["bought"] == traded.get(year, 0)

    # nothing surrendered beyond an obligation, no negative quantities in firm_years
    for column in ("free_allocation", "bought", "sold", "surrendered", "offsets_used",
                   "bank_end", "shortfall", "penalty"):
        assert (fy[column] >= 0).all(), column


def test_invariants_catch_quota_created_after_the_run() -> None:
    model = CarbonMarketModel(scenario="classroom", seed=5)
    model.run()
    assert check_invariants(model)["ok"]
    column = model.registry.column(2026)
    model.registry.holdings[3, column] += 1  # one tonne out of thin air
    result = check_invariants(model)
    assert result["ok"] is False
    assert result["violations"] == ["vintage 2026: ledger off by -1 t"]
    balances = {row["vintage"]: row["balance"] for row in result["ledger"]}
    assert balances[2026] == -1
    assert all(balance == 0 for vintage, balance in balances.items() if vintage != 2026)


def test_invariants_catch_a_negative_holding_and_a_self_trade() -> None:
    model = CarbonMarketModel(scenario="classroom", seed=5)
    model.run()
    # move a tonne to make a holding negative without unbalancing the ledger
    column = model.registry.column(2024)
    model.registry.holdings[0, column] -= 1
    model.registry.holdings[1, column] += 1
    result = check_invariants(model)
    assert result["violations"] == ["a holding is negative"]
    model.registry.holdings[0, column] += 1
    model.registry.holdings[1, column] -= 1
    log = next(entry for entry in model.trade_log.parts if entry["kind"] == "continuous")
    log["seller_row"] = log["buyer_row"].copy()
    assert check_invariants(model)["violations"] == ["a trade has the same buyer and seller"]


def test_invariants_catch_a_trade_outside_the_price_limits() -> None:
    model = CarbonMarketModel(scenario="classroom", seed=5)
    model.run()
    log = next(entry for entry in model.trade_log.parts if entry["kind"] == "continuous")
    day = int(log["day"][0])
    log["price"] = log["price"].copy()
    log["price"][0] = model.daily["limit_up"][day] + 0.05
    result = check_invariants(model)
    assert result["ok"] is False
    assert result["violations"] == [f"day {day}: a continuous trade outside the price limits"]


def test_trades_table_matches_the_trade_log() -> None:
    model = CarbonMarketModel(scenario="classroom", seed=5)
    model.run()
    trades = model.results()["trades"]
    assert len(trades) == sum(len(entry["quantity"]) for entry in model.trade_log.parts)
    assert trades["quantity"].sum() == sum(int(e["quantity"].sum()) for e in model.trade_log.parts)
    assert pd.api.types.is_integer_dtype(trades["quantity"])
    assert np.issubdtype(trades["date"].dtype, np.datetime64)


def test_invariants_catch_nan_money() -> None:
    # NaN compares false with everything: it must not pass the checks unseen
    model = CarbonMarketModel(scenario="classroom", seed=5)
    model.run()
    assert check_invariants(model)["ok"]
    model.firms.cash[2] = np.nan
    result = check_invariants(model)
    assert result["ok"] is False
    assert "a firm's cash is not a finite number" in result["violations"]
    assert any(v.startswith("cash does not balance") for v in result["violations"])
    model.firms.cash[2] = 0.0
    model.payments["penalties"] = float("nan")
    model.fy["penalty"][0, 0] = np.inf
    violations = check_invariants(model)["violations"]
    assert "payments of penalties are not a finite number (nan)" in violations
    assert "a firm's penalty is not a finite number" in violations
