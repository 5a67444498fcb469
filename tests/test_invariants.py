"""The end-of-run invariants (README, "Results"; docs/ODD.md, section 7.15) hold under
random seeds and random policy settings, also at the edges of the market rules (ticks
wider than the band, narrow and wide price limits, banking off, large initial banks,
financial traders, GTC orders), and a broken ledger is caught.

Beyond the model's own check, the written tables must show no close of 0, no trade
outside its band or below one tick (``check_prices``), and each firm's quota flows
adding up from one year's end to the next (``check_flows``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etsim import CarbonMarketModel
from etsim.model.exchange import lowest_tick
from etsim.model.invariants import check_invariants
from etsim.model.results import TABLES
from etsim.model.session import price_band


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


@st.composite
def market_edges(draw: st.DrawFn) -> dict[str, Any]:
    """Random policies (``policies``) in a small classroom market, with random market
    rules at their edges: ticks up to wider than the band, price limits from 0.1% to
    100%, block trades, initial banks up to two years of emissions, financial traders
    and GTC orders."""
    overrides = draw(policies())
    overrides.update({
        # few firms and trading days keep a run well under a second
        "sectors.steel.firms": draw(st.integers(2, 4)),
        "sectors.cement.firms": draw(st.integers(1, 3)),
        "sectors.aluminium.firms": draw(st.integers(1, 2)),
        "market.trading_days_per_month": draw(st.integers(3, 8)),
        "market.tick": draw(st.sampled_from([0.01, 0.05, 0.5, 1.0, 5.0])),
        "market.price_limit": draw(st.sampled_from([0.001, 0.01, 0.1, 0.5, 0.9, 1.0])),
        "market.block_price_limit": draw(st.sampled_from([0.005, 0.05, 0.3, 1.0])),
        "market.block_min_t": draw(st.sampled_from([5_000, 100_000])),
        "market.initial_price": draw(st.sampled_from([0.01, 0.5, 3.0, 30.5, 95.0])),
        "market.order_expiry": draw(st.sampled_from(["day", "gtc"])),
        "market.gtc_max_age_days": draw(st.integers(0, 5)),
        "sectors.*.initial_bank_share": draw(st.sampled_from([0.0, 0.03, 0.5, 2.0])),
        "financial.market_makers": draw(st.integers(0, 2)),
        "financial.speculators": draw(st.integers(0, 2)),
        "financial.quote_t": 500,
        "financial.order_t": 800,
    })
    return overrides


def run_to_the_end(model: CarbonMarketModel) -> None:
    """Run the model; the end-of-run invariants must hold (``run`` raises if not)."""
    model.run()
    assert not model.running
    assert model.invariants is not None and model.invariants["ok"]


def check_prices(model: CarbonMarketModel, tables: dict[str, pd.DataFrame]) -> None:
    """No close of 0 (a day without listed trades has none: NaN); every band is the
    session's band around the previous reference price (the last close), starting at
    one tick at least; no trade outside its band."""
    market = model.scenario.market
    lowest = lowest_tick(market.tick) * market.tick
    daily = tables["market_daily"]
    closes = daily["close"]
    assert (closes[closes.notna()] > 0).all()
    # a day's reference price is its close, or the last close when it has none
    np.testing.assert_array_equal(
        daily["reference_price"].to_numpy(),
        closes.ffill().fillna(market.initial_price).to_numpy())
    assert (daily["limit_down"] >= lowest - 1e-9).all()
    assert (daily["limit_up"] >= daily["limit_down"]).all()
    previous = [market.initial_price, *daily["reference_price"].tolist()[:-1]]
    listed = np.array([price_band(close, market.price_limit, market.tick)
                       for close in previous])
    np.testing.assert_array_equal(daily[["limit_down", "limit_up"]].to_numpy(), listed)
    block = np.array([price_band(close, market.block_price_limit, market.tick)
                      for close in previous])
    trades = tables["trades"]
    trades = trades[trades["kind"].isin(["continuous", "block"])]
    day = pd.Index(daily["date"]).get_indexer(trades["date"])
    assert (day >= 0).all()
    bands = np.where((trades["kind"] == "block").to_numpy()[:, None], block[day], listed[day])
    price = trades["price"].to_numpy()
    assert (price >= bands[:, 0] - 1e-9).all() and (price <= bands[:, 1] + 1e-9).all()
    assert (price >= lowest - 1e-9).all()


def check_flows(model: CarbonMarketModel, tables: dict[str, pd.DataFrame]) -> int:
    """Each firm's quota flows add up from one year's end to the next; returns how many
    firm-years add up exactly.

    What a firm holds at the end of calendar year Y (``bank_end``) is what it held a year
    before, plus what it was issued in Y, won at auction and bought (on the exchange
    and from the reserve pool), less what it sold (on the exchange and to the pool),
    surrendered and had cancelled by the banking rules in Y. With the deadline in the
    year after the compliance year (``deadline_year_offset = 1``; verification,
    pre-allocation and true-up are then in that year too):

    - issued in Y: ``free_allocation`` of Y - 1 (pre-allocated and trued up in Y, net of
      penalty deductions and of the true-up's withdrawals: ``withdrawn`` is inside it),
      and of Y where Y is under an absolute cap (issued in January);
    - auctioned: ``auction_purchased`` of Y; bought and sold: ``bought`` and ``sold``
      of Y, and the ``reserve`` trades of Y in the trades table;
    - surrendered in Y: ``surrendered`` of Y - 1 (borrowed quota included).

    Not in the tables: the bank a firm starts with (the first year's residual is that
    bank: exactly 0 where its sector starts with none), the quota the banking rules
    cancel (with banking off or a banking limit the residual is that: 0 or more, else
    exactly 0), and which part of a loan was advanced from the next vintage (it is in
    ``free_allocation`` of the next year but issued at the deadline: a firm-year next to
    a loan is skipped).
    """
    sc = model.scenario
    assert sc.compliance.deadline_year_offset == 1
    fy = tables["firm_years"].set_index(["firm_id", "year"])
    reserve = tables["trades"][tables["trades"]["kind"] == "reserve"]
    year_of = reserve["date"].dt.year
    from_pool = reserve.groupby([reserve["buyer_id"], year_of])["quantity"].sum()
    to_pool = reserve.groupby([reserve["seller_id"], year_of])["quantity"].sum()
    cancels = not sc.compliance.banking or sc.compliance.banking_limit_t is not None
    firms = tables["firms"].set_index("firm_id")
    no_bank = {name for name, cfg in sc.sectors.items() if cfg.initial_bank_share == 0}

    def at_year_start(sector: str, year: int) -> bool:
        rule = sc.sectors[sector].allocation.rule
        rule = rule.get(str(year), "intensity") if isinstance(rule, dict) else rule
        return rule == "absolute_cap"

    def get(firm: int, year: int, column: str) -> int:
        return int(fy[column].get((firm, year), 0))

    exact = 0
    for (firm, year), row in fy.iterrows():
        last = year - 1
        if get(firm, last, "borrowed") or get(firm, last - 1, "borrowed"):
            continue
        issued = get(firm, year, "free_allocation") if at_year_start(row["sector"], year) else 0
        if last >= sc.start_year and not at_year_start(row["sector"], last):
            issued += get(firm, last, "free_allocation")
        inflow = (issued + row["auction_purchased"] + row["bought"]
                  + int(from_pool.get((firm, year), 0)))
        outflow = (row["sold"] + int(to_pool.get((firm, year), 0))
                   + get(firm, last, "surrendered"))
        residual = get(firm, last, "bank_end") + inflow - outflow - row["bank_end"]
        where = (firm, year, residual)
        if year == sc.start_year:  # the initial bank came in: -residual
            starts_without = (row["sector"] in no_bank
                              or firms.loc[firm, "entry_year"] >= sc.start_year)
            assert residual == 0 if starts_without else residual <= 0, where
        elif cancels:  # cancelled by the banking rules
            assert residual >= 0, where
        else:
            assert residual == 0, where
        exact += residual == 0
    return exact


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
    check_prices(model, tables)
    check_flows(model, tables)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), overrides=market_edges())
def test_invariants_prices_and_flows_hold_at_the_edges_of_the_market_rules(
        seed: int, overrides: dict[str, Any]) -> None:
    """Valid scenarios at the edges of the market rules run to the end: no close of 0,
    no trade outside its band or below one tick, and every firm's flows add up."""
    model = CarbonMarketModel(scenario="classroom", seed=seed, overrides=overrides)
    run_to_the_end(model)
    tables = model.results()
    check_prices(model, tables)
    check_flows(model, tables)
    assert (tables["firm_years"][["bank_end", "bought", "sold", "surrendered"]] >= 0).all(
        axis=None)


def test_flows_add_up_exactly_with_unlimited_banking_and_a_tonne_too_many_is_caught(
        ) -> None:
    """With banking unlimited, no loans and no initial bank, every firm-year adds up
    exactly, and one tonne more bought in the table is caught."""
    model = CarbonMarketModel(scenario="classroom", seed=1, overrides={
        "sectors.*.initial_bank_share": 0.0, "financial.market_makers": 1,
        "market.order_expiry": "gtc", "sectors.*.allocation.paid_share": 0.05,
        "reserve_pool.policy": "price_trigger", "reserve_pool.set_aside_share": 0.05})
    run_to_the_end(model)
    tables = model.results()
    fy = tables["firm_years"]
    assert check_flows(model, tables) == len(fy)
    # auctions, exchange trades, reserve sales and penalty deductions all took place
    assert (fy[["auction_purchased", "bought", "deducted"]].sum() > 0).all()
    assert (tables["trades"]["kind"] == "reserve").any()
    busy = fy.index[fy["bought"] > 0][0]
    fy.loc[busy, "bought"] += 1
    with pytest.raises(AssertionError):
        check_flows(model, tables)


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
    day = log["day"]
    log["price"] = log["price"].copy()
    log["price"][0] = model.daily["limit_up"][day] + 0.05
    result = check_invariants(model)
    assert result["ok"] is False
    assert result["violations"] == [f"day {day}: a continuous trade outside the price limits"]


@pytest.mark.parametrize(("kind", "fault", "message"), [
    ("block", "above the band", "day {day}: a block trade outside the price limits"),
    ("block", "price 0", "day {day}: a block trade outside the price limits"),
    ("continuous", "no tonnes", "a trade of no quantity"),
    ("auction", "no tonnes", "a trade of no quantity"),
])
def test_invariants_catch_each_bad_trade_of_any_session(kind: str, fault: str,
                                                        message: str) -> None:
    """Each bad trade is caught whichever session or auction logged it, and named as
    the per-session checks name it (all trades are checked at once first)."""
    model = CarbonMarketModel(scenario="paid-allocation", seed=3,
                              overrides={"scale": 0.05})
    model.run()
    assert check_invariants(model)["ok"]
    log = next(entry for entry in model.trade_log.parts
               if entry["kind"] == kind and len(entry["quantity"]))
    day = log["day"]
    log["price"], log["quantity"] = log["price"].copy(), log["quantity"].copy()
    if fault == "above the band":
        band = 1 + model.scenario.market.block_price_limit
        log["price"][-1] = round(model.daily.reference_before(day) * band + 0.05, 2)
    elif fault == "price 0":
        log["price"][-1] = 0.0
    else:
        log["quantity"][-1] = 0
    violations = check_invariants(model)["violations"]
    assert message.format(day=day) in violations


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


def test_invariants_catch_a_trade_price_that_is_not_a_number() -> None:
    """A NaN among the logged prices of any session is named, and only then."""
    model = CarbonMarketModel(scenario="classroom", seed=5)
    model.run()
    assert "a trade price is not a finite number" not in check_invariants(model)["violations"]
    log = model.trade_log.parts[len(model.trade_log.parts) // 2]
    log["price"] = log["price"].astype(float)
    log["price"][-1] = np.nan
    assert "a trade price is not a finite number" in check_invariants(model)["violations"]
