"""Charts that do not mislead: who pays, gaps, bars from zero, baseline ghosts, toolbar
config and each chart's CSV, on hand-built tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest

from etsim.dashboard import analysis, components
from etsim.dashboard.figures import run as figures


@pytest.fixture()
def firm_years() -> pd.DataFrame:
    # two steel firms and one cement firm, one year
    return pd.DataFrame({
        "firm_id": [1, 2, 3], "sector": ["steel", "steel", "cement"], "year": 2026,
        "verified_emissions": [100.0, 300.0, 200.0],
        "free_allocation": [120, 250, 150], "auction_purchased": [0, 40, 60],
        "abatement_cost": [500.0, 0.0, 1000.0], "penalty": [0.0, 200.0, 0.0],
    })


@pytest.fixture()
def trades() -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.to_datetime(["2026-03-02", "2026-03-02", "2026-05-04", "2026-06-01",
                                "2026-06-02", "2026-07-01"]),
        # 1 sells 20 t to 2 at 50; 3 buys 10 t from 1 at 60 (block); auctions: 2 buys
        # 40 t and 3 60 t at 45; the reserve pool (-2) releases 5 t to 3 at 70
        "buyer_id": [2, 3, 2, 3, 3, 99],
        "seller_id": [1, 1, -1, -1, -2, 1],
        "price": [50.0, 60.0, 45.0, 45.0, 70.0, 55.0],
        "quantity": [20, 10, 40, 60, 5, 1],
        "kind": ["continuous", "block", "auction", "auction", "reserve", "continuous"],
    })


def test_who_pays_by_sector_and_per_tonne_by_hand(firm_years, trades):
    table = analysis.who_pays(firm_years, trades).set_index("sector")
    steel, cement, everything = (table.loc[s] for s in ("steel", "cement", "all sectors"))
    # steel: firm 1 sold 20 x 50 + 10 x 60 + 1 x 55 = 1,655 (the last to a financial
    # trader, id 99); firm 2 bought 20 x 50 = 1,000 and paid 40 x 45 = 1,800 at auction
    assert steel["quota_bought"] == pytest.approx(1000.0)
    assert steel["quota_sold"] == pytest.approx(1655.0)
    assert steel["net_quota_spend"] == pytest.approx(-655.0)
    assert steel["auction_payments"] == pytest.approx(1800.0)
    assert steel["penalties"] == pytest.approx(200.0)
    assert steel["abatement_cost"] == pytest.approx(500.0)
    assert steel["total_cost"] == pytest.approx(500 - 655 + 1800 + 200)
    assert steel["total_cost_per_t"] == pytest.approx(1845.0 / 400.0)
    # cement: bought 600 on the exchange, 2,700 at auction, 350 from the reserve pool
    assert cement["net_quota_spend"] == pytest.approx(600.0)
    assert cement["auction_payments"] == pytest.approx(2700.0)
    assert cement["reserve_payments"] == pytest.approx(350.0)
    assert cement["total_cost_per_t"] == pytest.approx((1000 + 600 + 2700 + 350) / 200.0)
    assert everything["verified_emissions"] == pytest.approx(600.0)
    assert everything["total_cost"] == pytest.approx(steel["total_cost"]
                                                     + cement["total_cost"])
    fig = figures.who_pays_chart(table.reset_index())
    auction = next(t for t in fig.data if t.name == "auction payments")
    assert list(auction.y[:2]) == pytest.approx([2700 / 200, 1800 / 400])  # cement, steel
    assert fig.layout.barmode == "relative"


def test_who_pays_without_trades_counts_abatement_and_penalties(firm_years):
    table = analysis.who_pays(firm_years, None).set_index("sector")
    assert table.loc["steel", "total_cost"] == pytest.approx(700.0)
    assert table.loc["steel", "auction_payments"] == 0.0


def test_auction_results_and_reserve_releases(trades):
    auctions = analysis.auction_results(trades)
    assert auctions.to_dict("records") == [{"year": 2026, "auctions": 2, "volume": 100.0,
                                            "revenue": 4500.0, "clearing_price": 45.0}]
    releases = analysis.reserve_releases(trades)
    assert releases["volume"].tolist() == [5.0] and releases["price"].tolist() == [70.0]
    fig = figures.auction_chart(auctions)
    assert fig.layout.yaxis.rangemode == "tozero"
    assert "No quota was auctioned" in figures.auction_chart(
        analysis.auction_results(trades[trades["kind"] != "auction"])).layout.annotations[0].text


def test_sector_balance_counts_auction_purchases(firm_years):
    balance = analysis.sector_balance(firm_years).set_index("sector")
    # steel: firm 1 120 - 100 = +20; firm 2 250 + 40 - 300 = -10
    assert balance.loc["steel", "surplus"] == pytest.approx(20.0)
    assert balance.loc["steel", "deficit"] == pytest.approx(-10.0)
    # cement: 150 + 60 - 200 = +10: in surplus once its auction purchases count
    assert balance.loc["cement", "net"] == pytest.approx(10.0)


def _daily(close: list[float]) -> pd.DataFrame:
    dates = pd.date_range("2026-01-05", periods=len(close), freq="D")
    values = np.array(close, dtype=float)
    return pd.DataFrame({"date": dates, "year": 2026, "month": dates.month, "close": values,
                         "limit_down": 40.0, "limit_up": 80.0,
                         "fundamental_price": 60.0, "volume": 100, "block_volume": 0})


def test_days_without_a_listed_trade_are_gaps():
    daily = _daily([50.0, np.nan, np.nan, 55.0])
    fig = figures.price_chart(daily)
    close = next(t for t in fig.data if t.name == "market close")
    assert np.isnan(close.y[1]) and np.isnan(close.y[2])  # not a carried 50
    assert close.connectgaps is False
    table = figures.figure_csv(json.loads(pio.to_json(fig)))
    rows = table[table["series"] == "market close"]
    assert len(rows) == 4 and rows["y"].isna().sum() == 2


def test_reserve_triggers_and_releases_on_the_price_chart(trades):
    daily = _daily([50.0, 60.0, 70.0, 75.0])
    fig = figures.price_chart(daily, reserve={"reserve_policy": "price_trigger",
                                              "release_price": 72, "absorb_price": 45},
                              releases=analysis.reserve_releases(trades))
    names = [t.name for t in fig.data]
    assert "reserve releases above 72" in names and "reserve buys back below 45" in names
    assert list(next(t for t in fig.data if t.name == "reserve release").y) == [70.0]
    quiet = figures.price_chart(daily, reserve={"reserve_policy": "none",
                                                "release_price": 72, "absorb_price": 45})
    assert not any("reserve" in (t.name or "") for t in quiet.data)


def test_bars_start_at_zero():
    years = pd.DataFrame({"year": [2025, 2026], "compliance_rate": [0.999, 0.98],
                          "firms_compliant_share": [0.97, 0.93]})
    fig = figures.compliance_chart(years)
    assert fig.layout.yaxis.range[0] == 0


def test_baseline_is_a_ghost_line():
    daily = _daily([50.0, 52.0, 51.0])
    years = pd.DataFrame({"year": [2026], "free_allocation": [100], "auctioned": [0],
                          "reserve_out": [0], "reserve_holdings": [0],
                          "verified_emissions": [90.0], "bank_total": [10],
                          "mean_price": [51.0], "equilibrium_price": [40.0],
                          "static_equilibrium_price": [30.0], "fundamental_price": [45.0]})
    assert not any("baseline" in t.name for t in figures.price_chart(daily).data)
    for fig in (figures.price_chart(daily, baseline=daily.assign(close=daily["close"] - 10)),
                figures.annual_price_chart(years, baseline=years),
                figures.bank_chart(years, baseline=years)):
        ghost = [t for t in fig.data if t.name.startswith("baseline")]
        assert len(ghost) == 1 and "rgba(134,142,150" in ghost[0].line.color
    fig = figures.price_chart(daily, baseline=daily.assign(close=daily["close"] - 10))
    assert list(next(t for t in fig.data if t.name.startswith("baseline")).y) == [40, 42, 41]


def test_one_name_and_definition_per_price():
    names = [analysis.price_name(c) for c in analysis.PRICE_DEFINITIONS]
    assert names == ["market close", "equilibrium with banking", "one-year equilibrium",
                     "fundamental price"]
    fig = figures.price_chart(_daily([50.0, 51.0]))
    close = next(t for t in fig.data if t.name == "market close")
    assert close.meta == analysis.price_definition("close")


def test_toolbar_has_no_cloud_button_and_names_the_png():
    config = components.graph("explore-price").config
    assert config["displaylogo"] is False
    assert config["showSendToCloud"] is False
    assert "sendDataToCloud" in config["modeBarButtonsToRemove"]
    assert config["toImageButtonOptions"]["filename"] == "etsim-explore-price"
    assert config["toImageButtonOptions"]["format"] == "png"


def test_caption_carries_run_and_source():
    fig = figures.caption(figures.price_chart(_daily([50.0])), "china-2024, seed 1")
    text = fig.layout.annotations[-1].text
    assert "china-2024, seed 1" in text and "Source: etsim simulation" in text
    assert fig.layout.title.text  # the title stays


def test_a_long_caption_goes_on_lines_of_its_own_with_room_above_the_plot():
    """A label and source too long for a half-width chart are not cut: each has its line."""
    label = "china-history (power, steel, cement, aluminium), 364 firms, seed 1"
    source = "etsim simulation; observed: Data: ICAP via World Carbon Pricing Database"
    assert figures.caption_lines("classroom, seed 1", "etsim simulation") == [
        "classroom, seed 1 | Source: etsim simulation"]
    assert figures.caption_lines(label, source) == [
        label, "Source: etsim simulation",
        "observed: Data: ICAP via World Carbon Pricing Database"]
    plain = figures.price_chart(_daily([50.0]))
    top = plain.layout.margin.t
    fig = figures.caption(figures.price_chart(_daily([50.0])), label, source)
    assert fig.layout.annotations[-1].text == "<br>".join(figures.caption_lines(label, source))
    assert fig.layout.margin.t == top + 2 * 12  # two more lines of 12 px


def test_csv_download_has_the_chart_data():
    fig = figures.compliance_chart(pd.DataFrame({"year": [2025], "compliance_rate": [0.5],
                                                 "firms_compliant_share": [0.25]}))
    sent = components.csv_download(json.loads(pio.to_json(fig)), "explore-compliance")
    assert sent["filename"] == "etsim-explore-compliance.csv"
    lines = sent["content"].strip().splitlines()
    assert lines[0] == "series,x,y"
    assert lines[1:] == ["obligation surrendered,2025,50.0", "firms with no shortfall,2025,25.0"]
    assert components.csv_download(None, "x") is None


def test_compare_who_pays_puts_runs_side_by_side(firm_years, trades):
    from etsim.dashboard.figures import compare as compare_figures

    runs = {"A": {"firm_years": firm_years, "trades": trades},
            "B": {"firm_years": firm_years, "trades": trades.iloc[0:0]}}
    fig = compare_figures.compare_who_pays(runs)
    a, b = fig.data
    assert list(a.x) == ["cement", "steel", "all sectors"]
    # B has no trades: abatement and penalties only; cement 1,000 / 200 t
    assert b.y[0] == pytest.approx(5.0)
    assert a.y[0] == pytest.approx((1000 + 600 + 2700 + 350) / 200.0)
    auctions = compare_figures.compare_auctions(runs)
    assert len(auctions.data) == 1 and list(auctions.data[0].y) == [45.0]


def test_next_trade_skips_orders_that_only_rest():
    from etsim.dashboard import book

    events = pd.DataFrame({"event": ["order", "order", "order", "trade", "trade", "order",
                                     "order", "trade"]})
    assert book.next_trade_step(events, 0) == 5  # after the sweep of the third order
    assert book.next_trade_step(events, 5) == 8
    assert book.next_trade_step(events, 8) == 8  # the end of the day


def test_supply_and_demand_axes_stay_fixed_across_years():
    def curves(available: float, price: float) -> dict:
        curve = pd.DataFrame({"price": [0.0, 50.0, 100.0],
                              "quota_demanded": [1_000e6, 900e6, 800e6]})
        return {"curve": curve, "unabated": 1_000e6, "available": available,
                "price": price, "mean_price": np.nan, "model_price": price}

    loose, tight = curves(950e6, 50.0), curves(850e6, 100.0)
    x_range, y_max = analysis.curve_axes([loose, tight])
    assert y_max == pytest.approx(160.0)
    figs = [figures.quota_supply_demand(c, 2026, x_range=x_range, y_max=y_max)
            for c in (loose, tight)]
    assert figs[0].layout.xaxis.range == figs[1].layout.xaxis.range
    assert figs[0].layout.yaxis.range == figs[1].layout.yaxis.range
    supply = [next(t for t in f.data if t.name == "supply of quota").x[0] for f in figs]
    assert supply[1] < supply[0]  # tightening moves supply left on the same axes


def test_headline_has_the_cost_per_tonne_when_trades_are_given(firm_years, trades):
    daily = _daily([50.0, np.nan])
    years = pd.DataFrame({"year": [2026], "free_allocation": [520], "auctioned": [100],
                          "verified_emissions": [600.0], "bank_total": [20],
                          "mean_price": [50.0], "equilibrium_price": [40.0],
                          "abatement": [0.0], "abatement_cost": [1500.0],
                          "compliance_rate": [1.0], "penalties": [200.0]})
    head = analysis.headline({"market_daily": daily, "market_years": years,
                              "firm_years": firm_years, "trades": trades})
    assert head["Mean price (CNY/t)"] == 50.0  # over days with a close only
    # all sectors: abatement 1,500 + penalties 200 + auctions 4,500 + reserve 350 + net
    # quota spend (1,600 bought - 1,655 sold: firm 1 also sold 55 to a financial trader)
    assert head["Cost per tonne emitted (CNY/t)"] == pytest.approx(
        (1500 + 200 + 4500 + 350 - 55) / 600)
    assert "Cost per tonne emitted (CNY/t)" not in analysis.headline(
        {"market_daily": daily, "market_years": years, "firm_years": firm_years})
