"""Economic direction of the model, and the equilibrium solver on hand-built curves.

Direction tests average over three seeds of a classroom-sized market; the solver tests
work the numbers out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from etsim import CarbonMarketModel
from etsim.model.equilibrium import clearing_price, marginal_abatement_curve

SEEDS = (1, 2, 3)


def _tables(seed: int, **overrides) -> tuple[CarbonMarketModel, dict[str, pd.DataFrame]]:
    model = CarbonMarketModel(scenario="classroom", seed=seed, **overrides)
    model.run()
    assert model.invariants["ok"], model.invariants["violations"]
    return model, model.results()


# --- tighter benchmarks: scarcer quota, dearer quota, more abatement ----------------------------


@pytest.fixture(scope="module")
def by_tightening() -> dict[float, list[dict[str, pd.DataFrame]]]:
    # Three compliance years (2025-2027), so that options adopted in January 2026 (lead
    # time one year) abate within the horizon: in 2025 every firm reviews its options at
    # the initial price, whatever the policy.
    runs = {}
    for rate in (0.0, 0.06):
        runs[rate] = [
            _tables(seed, end_year=2027,
                    overrides={"sectors.*.allocation.tightening": rate})[1]
            for seed in SEEDS
        ]
    return runs


def _last_year_mean_price(tables: dict[str, pd.DataFrame]) -> float:
    daily = tables["market_daily"]
    return float(daily.loc[daily["year"] == 2027, "close"].mean())


def test_tighter_benchmarks_raise_the_price(by_tightening) -> None:
    loose = np.mean([_last_year_mean_price(t) for t in by_tightening[0.0]])
    tight = np.mean([_last_year_mean_price(t) for t in by_tightening[0.06]])
    assert tight > loose
    assert tight > 1.5 * loose  # not a rounding effect
    # the static equilibrium of the last compliance year moves the same way
    def equilibrium(runs):
        years = [t["market_years"].set_index("year").loc[2027, "equilibrium_price"]
                 for t in runs]
        return np.mean(years)

    assert equilibrium(by_tightening[0.06]) > equilibrium(by_tightening[0.0])


def test_tighter_benchmarks_bring_more_abatement(by_tightening) -> None:
    def abatement(runs):
        return np.mean([t["market_years"]["abatement"].sum() for t in runs])

    loose, tight = abatement(by_tightening[0.0]), abatement(by_tightening[0.06])
    assert tight > loose > 0
    # the benchmarks really were tighter: less free quota for the same seed
    for loose_run, tight_run in zip(by_tightening[0.0], by_tightening[0.06], strict=True):
        free = [run["firm_years"].groupby("year")["free_allocation"].sum()
                for run in (loose_run, tight_run)]
        assert (free[1].loc[[2026, 2027]] < free[0].loc[[2026, 2027]]).all()


# --- paid allocation ------------------------------------------------------------------------------


def test_paid_share_is_sold_at_auction() -> None:
    model, tables = _tables(7, overrides={"sectors.*.allocation.paid_share": 0.1})
    trades, years, fy = tables["trades"], tables["market_years"], tables["firm_years"]
    auctions = trades[trades["kind"] == "auction"]
    assert len(auctions) > 0
    assert (auctions["seller_id"] == -1).all()
    assert (auctions["buyer_id"] > 0).all()
    assert (auctions["price"] >= model.scenario.auction.reserve_price).all()
    by_year = auctions.groupby(auctions["date"].dt.year)["quantity"].sum()
    auctioned = years.set_index("year")["auctioned"]
    assert auctioned.loc[2025] > 0 and auctioned.loc[2026] > 0
    assert auctioned.loc[2025] == by_year.loc[2025]
    assert auctioned.loc[2026] == by_year.loc[2026]
    assert (fy.groupby("year")["auction_purchased"].sum() == by_year.loc[[2025, 2026]]).all()
    # the ledger's auctioned flow is what the auctions issued
    ledger = {row["vintage"]: row for row in model.invariants["ledger"]}
    assert ledger[2025]["auctioned"] == by_year.loc[2025]
    # and free allocation is 90% of output x benchmark (before any deduction)
    gross = fy["free_allocation"] + fy["deducted"]
    assert (gross - np.floor(0.9 * fy["output"] * fy["benchmark"] + 0.5)).abs().max() <= 1


def test_no_paid_share_no_auction() -> None:
    _, tables = _tables(7)
    assert (tables["trades"]["kind"] != "auction").all()
    assert (tables["market_years"]["auctioned"] == 0).all()


# --- the equilibrium solver on hand-built curves -----------------------------------------------


COSTS = np.array([10.0, 50.0, 100.0])
TONNES = np.array([5.0, 5.0, 5.0])


def test_clearing_price_on_a_three_step_curve() -> None:
    # shortage 7: all 5 t at 10, then 2 of the 5 t at 50 -> price 50, cost 50 + 100 = 150
    assert clearing_price(COSTS, TONNES, 7.0) == (50.0, 150.0)
    # shortage 5: exactly the first step -> price 10, cost 50
    assert clearing_price(COSTS, TONNES, 5.0) == (10.0, 50.0)
    # shortage 10: two steps -> price 50, cost 50 + 250 = 300
    assert clearing_price(COSTS, TONNES, 10.0) == (50.0, 300.0)
    # shortage 15: the whole curve -> price 100, cost 50 + 250 + 500 = 800
    assert clearing_price(COSTS, TONNES, 15.0) == (100.0, 800.0)


def test_clearing_price_with_nothing_to_abate_or_too_much() -> None:
    assert clearing_price(COSTS, TONNES, 0.0) == (0.0, 0.0)
    assert clearing_price(COSTS, TONNES, -3.0) == (0.0, 0.0)
    price, cost = clearing_price(COSTS, TONNES, 20.0)
    assert math.isnan(price)
    assert cost == 800.0  # the cost of every option
    price, cost = clearing_price(np.array([]), np.array([]), 1.0)
    assert math.isnan(price) and cost == 0.0


def test_marginal_abatement_curve_of_two_firms() -> None:
    # firm 0: 100 units at 2.0 t/unit = 200 t; options 10% at 30 CNY/t, then 20% at 80:
    #   20 t at 30, then 20% of the 180 t left = 36 t at 80
    # firm 1: 200 units at 1.0 t/unit = 200 t; one option, 50% at 50: 100 t at 50
    #   (its second column is padding, not an option)
    costs, tonnes = marginal_abatement_curve(
        output=np.array([100.0, 200.0]),
        baseline=np.array([2.0, 1.0]),
        reduction=np.array([[0.1, 0.2], [0.5, 0.0]]),
        cost=np.array([[30.0, 80.0], [50.0, np.inf]]),
        valid=np.array([[True, True], [True, False]]),
    )
    assert costs.tolist() == [30.0, 50.0, 80.0]
    np.testing.assert_allclose(tonnes, [20.0, 100.0, 36.0], rtol=1e-12)
    # a shortage of 50 t: 20 t at 30 and 30 t at 50 -> price 50, cost 600 + 1500 = 2100
    price, cost = clearing_price(costs, tonnes, 50.0)
    assert price == 50.0
    assert cost == pytest.approx(2100.0, rel=1e-12)


# --- the reserve pool ----------------------------------------------------------------------------


def test_price_trigger_releases_quota_above_the_release_price() -> None:
    model, tables = _tables(7, reserve_pool__policy="price_trigger",
                            reserve_pool__release_price=50.0, reserve_pool__absorb_price=10.0,
                            reserve_pool__initial_holdings_share=0.05)
    years = tables["market_years"].set_index("year")
    assert years.loc[2025, "reserve_out"] > 0
    sales = tables["trades"][tables["trades"]["kind"] == "reserve"]
    assert (sales["seller_id"] == -2).all()
    assert sales["quantity"].sum() == years["reserve_out"].sum()
    pool = model.reserve
    assert pool.endowed > 0
    assert pool.holdings == pool.endowed - years["reserve_out"].sum() + years["reserve_in"].sum()
    assert years.loc[2027, "reserve_holdings"] == pool.holdings
    ledger = model.invariants["ledger"]
    assert sum(row["reserve_out"] for row in ledger) == years["reserve_out"].sum()


def test_no_reserve_policy_releases_nothing() -> None:
    _, tables = _tables(7, reserve_pool__initial_holdings_share=0.05,
                        reserve_pool__release_price=50.0, reserve_pool__absorb_price=10.0)
    assert (tables["market_years"]["reserve_out"] == 0).all()
    assert (tables["trades"]["kind"] != "reserve").all()


# --- misreporting and inspections ----------------------------------------------------------------


def _with_misreporters(inspection: float) -> pd.DataFrame:
    _, tables = _tables(7, mrv__misreporting_share=0.5, mrv__inspection_probability=inspection,
                        mrv__detection_probability=1.0)
    fy = tables["firm_years"].merge(tables["firms"][["firm_id", "misreports"]], on="firm_id")
    assert 3 <= fy.loc[fy["year"] == 2025, "misreports"].sum() <= 17
    return fy


def test_full_inspection_corrects_every_report() -> None:
    fy = _with_misreporters(1.0)
    assert (fy["verified_emissions"] == fy["emissions"].round()).all()
    cheats = fy[fy["misreports"]]
    assert (cheats["reported_emissions"] < cheats["emissions"]).all()
    assert (cheats["misreporting_fine"] > 0).all()
    assert (fy.loc[~fy["misreports"], "misreporting_fine"] == 0).all()


def test_no_inspection_lets_misreports_through() -> None:
    fy = _with_misreporters(0.0)
    cheats, honest = fy[fy["misreports"]], fy[~fy["misreports"]]
    assert (cheats["verified_emissions"] < cheats["emissions"]).all()
    # they hide the default bias of 5%: verified = round(0.95 x true emissions)
    assert (cheats["verified_emissions"] - (0.95 * cheats["emissions"]).round()).abs().max() <= 1
    assert (honest["verified_emissions"] == honest["emissions"].round()).all()
    assert (fy["misreporting_fine"] == 0).all()


def test_price_tracks_the_fundamental_price_without_price_limits() -> None:
    """With the daily limits off, each year's mean close lies within 15% of the
    fundamental price (the banking equilibrium that anchors expectations), on average
    over seeds; 2024 is left out: only power has quota to trade that year."""
    gaps = []
    for seed in (1, 2, 3):
        model = CarbonMarketModel("china-2024", seed=seed, scale=0.1, market__price_limit=1.0)
        model.run()
        years = model.results()["market_years"]
        years = years[(years["year"] >= 2025) & (years["year"] <= 2030)]
        gaps.append(((years["mean_price"] - years["fundamental_price"])
                     / years["fundamental_price"]).to_numpy())
    mean_gap = np.mean(gaps, axis=0)
    assert (np.abs(mean_gap) < 0.15).all(), mean_gap
