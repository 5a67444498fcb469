"""The dashboard's pure pieces on small hand-built tables: figure builders, the table
transformations behind them, the order book replay and the trade network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from etsim.dashboard import analysis, book, network
from etsim.dashboard.figures import compare as compare_figures
from etsim.dashboard.figures import run as figures
from etsim.model.exchange import OrderBook

# --- hand-built tables ------------------------------------------------------------------


@pytest.fixture()
def daily() -> pd.DataFrame:
    dates = pd.date_range("2025-01-01", periods=48, freq="15D")
    close = np.linspace(90, 140, len(dates))
    return pd.DataFrame({
        "date": dates, "year": dates.year, "month": dates.month, "close": close,
        "limit_down": close * 0.9, "limit_up": close * 1.1, "fundamental_price": close + 5,
        "volume": np.arange(len(dates)) * 1000, "block_volume": np.where(
            np.arange(len(dates)) % 4 == 0, 500, 0),
    })


@pytest.fixture()
def years() -> pd.DataFrame:
    return pd.DataFrame({
        "year": [2025, 2026, 2027],
        "free_allocation": [1_000_000, 950_000, 0],
        "auctioned": [0, 50_000, 0],
        "reserve_out": [0, 0, 0],
        "reserve_holdings": [0, 10_000, 10_000],
        "verified_emissions": [980_000.0, 1_020_000.0, np.nan],
        "bank_total": [20_000, 5_000, 0],
        "mean_price": [95.0, 120.0, 130.0],
        "fundamental_price": [100.0, 125.0, 125.0],
        "equilibrium_price": [0.0, 60.0, np.nan],
        "static_equilibrium_price": [0.0, 60.0, np.nan],
        "volume": [10_000, 30_000, 5_000],
        "compliance_rate": [1.0, 0.99, np.nan],
        "firms_compliant_share": [1.0, 0.75, np.nan],
        "penalties": [0.0, 1e5, 0.0],
        "abatement": [0.0, 30_000.0, 0.0],
        "abatement_cost": [0.0, 1.5e6, 0.0],
    })


@pytest.fixture()
def firms() -> pd.DataFrame:
    return pd.DataFrame({"firm_id": [1, 2, 3, 4],
                         "sector": ["steel", "steel", "cement", "cement"],
                         "entry_year": 2025, "capacity": [100.0, 200.0, 300.0, 400.0],
                         "unit": "t", "baseline_intensity": [2.0, 2.2, 0.8, 0.9]})


@pytest.fixture()
def firm_years(firms: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for year in (2025, 2026):
        for fid, sector, output, intensity, bench in ((1, "steel", 100.0, 1.9, 2.0),
                                                     (2, "steel", 200.0, 2.2, 2.0),
                                                     (3, "cement", 300.0, 0.8, 0.85),
                                                     (4, "cement", 400.0, 0.9, 0.85)):
            verified = output * intensity
            free = int(output * bench)
            rows.append({"firm_id": fid, "sector": sector, "year": year, "output": output,
                         "intensity": intensity, "benchmark": bench,
                         "verified_emissions": verified, "free_allocation": free,
                         "auction_purchased": 0, "bought": 10 * fid, "sold": 5,
                         "offsets_used": 0, "bank_end": 100 * fid, "shortfall": 0,
                         "penalty": 0.0, "abatement": 3.0 * fid, "abatement_cost": 90.0,
                         "surplus_ratio": (free - verified) / free, "indirect_emissions": 0.0})
    return pd.DataFrame(rows)


@pytest.fixture()
def options() -> pd.DataFrame:
    # firm 1: a cheap option adopted in 2025 working from 2026, a dear one never adopted
    return pd.DataFrame({
        "firm_id": [1, 1, 2, 3],
        "option": ["heat", "ccus", "heat", "kiln"],
        "intensity_reduction": [0.1, 0.5, 0.1, 0.2],
        "cost_per_t": [50.0, 800.0, 60.0, 40.0],
        "lead_time_years": [1, 5, 0, 1],
        "adopted_year": pd.array([2025, None, 2026, None], dtype="Int64"),
    })


def _annotations(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _trace(fig: go.Figure, name: str) -> go.BaseTraceType:
    return next(t for t in fig.data if t.name == name)


EMPTY_DAILY = pd.DataFrame(columns=["date", "year", "month", "close", "limit_down",
                                    "limit_up", "volume", "fundamental_price"])
EMPTY_YEARS = pd.DataFrame(columns=["year", "free_allocation", "auctioned", "reserve_out",
                                    "reserve_holdings", "verified_emissions", "bank_total",
                                    "mean_price", "equilibrium_price",
                                    "static_equilibrium_price", "compliance_rate"])


# --- single-run charts ------------------------------------------------------------------


def test_price_chart_draws_close_band_equilibrium_observed_and_deadlines(daily, years):
    observed = pd.DataFrame({"date": pd.to_datetime(["2025-03-01", "2025-03-02"]),
                             "close": [80.0, 81.0]})
    fig = figures.price_chart(daily, years, observed, ["2025-12-31", "2026-12-31"])
    names = [t.name for t in fig.data]
    for name in ("market close", "price limits", "fundamental price", "equilibrium with banking",
                 "observed CEA close"):
        assert name in names
    assert list(_trace(fig, "market close").y) == pytest.approx(daily["close"].tolist())
    assert list(_trace(fig, "price limits").y) == pytest.approx(daily["limit_down"].tolist())
    equilibrium = [v for v in _trace(fig, "equilibrium with banking").y if v is not None]
    assert equilibrium == [0.0, 0.0, 60.0, 60.0]  # one flat segment per compliance year
    assert len(fig.layout.shapes) == 2  # the deadlines
    assert any("ICAP via World Carbon Pricing Database" in text for text in _annotations(fig))


def test_price_chart_without_observed_data_has_no_attribution(daily, years):
    fig = figures.price_chart(daily, years)
    assert "observed CEA close" not in [t.name for t in fig.data]
    assert not any("ICAP" in (text or "") for text in _annotations(fig))


@pytest.mark.parametrize("builder", [
    lambda: figures.price_chart(EMPTY_DAILY),
    lambda: figures.annual_price_chart(EMPTY_YEARS),
    lambda: figures.scarcity_chart(EMPTY_YEARS),
    lambda: figures.bank_chart(EMPTY_YEARS),
    lambda: figures.sector_balance_chart(pd.DataFrame()),
    lambda: figures.incentive_chart(pd.DataFrame(), 2025),
    lambda: figures.abatement_chart(pd.DataFrame(), pd.DataFrame(), pd.DataFrame()),
    lambda: figures.volume_chart(EMPTY_DAILY),
    lambda: figures.compliance_chart(EMPTY_YEARS),
    lambda: figures.quota_supply_demand({"curve": pd.DataFrame(), "unabated": 0.0}),
    lambda: figures.order_ladder(pd.DataFrame(), pd.DataFrame(), 90.0, 110.0),
    lambda: figures.depth_chart(pd.DataFrame(), pd.DataFrame(), 90.0, 110.0),
    lambda: figures.trade_network_chart(pd.DataFrame(), pd.DataFrame()),
    lambda: figures.firm_position_chart(pd.DataFrame()),
    lambda: figures.firm_trades_chart(pd.DataFrame()),
    lambda: figures.firm_abatement_chart(pd.DataFrame()),
    lambda: compare_figures.compare_price({}),
    lambda: compare_figures.compare_yearly({}, "mean_price", "t", "y"),
    lambda: compare_figures.compare_volume({}),
])
def test_empty_input_gives_an_empty_state_message(builder):
    fig = builder()
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 0
    assert _annotations(fig) and _annotations(fig)[0]


def test_annual_price_chart_has_market_equilibrium_and_fundamental(years):
    fig = figures.annual_price_chart(years)
    assert [t.name for t in fig.data] == ["mean market close", "equilibrium with banking",
                                          "one-year equilibrium", "fundamental price"]
    assert list(fig.data[1].x) == [2025, 2026, 2027]


def test_scarcity_chart_ratio_is_emissions_over_quota_issued(years):
    fig = figures.scarcity_chart(years)
    ratio = _trace(fig, "scarcity ratio (emissions / quota)")
    assert list(ratio.x) == [2025, 2026]  # the settlement year has no obligations
    assert list(ratio.y) == pytest.approx([0.98, 1.02])
    assert ratio.yaxis == "y2"


def test_bank_chart_shows_surplus_holdings_and_reserve_pool(years):
    fig = figures.bank_chart(years)
    # surplus banked: 1,000,000 - 980,000 = 20,000 t; then + 1,000,000 - 1,020,000 = 0
    assert list(fig.data[0].y[:2]) == pytest.approx([0.02, 0.0])  # Mt
    assert list(fig.data[1].y) == pytest.approx([0.02, 0.005, 0.0])  # held in accounts
    assert fig.data[2].name == "reserve pool"


def test_sector_balance_splits_surplus_and_deficit(firm_years):
    balance = analysis.sector_balance(firm_years)
    steel = balance[(balance["sector"] == "steel") & (balance["year"] == 2025)].iloc[0]
    assert steel["surplus"] == pytest.approx(10.0)  # firm 1: 200 - 190
    assert steel["deficit"] == pytest.approx(-40.0)  # firm 2: 400 - 440
    fig = figures.sector_balance_chart(firm_years)
    assert fig.layout.barmode == "relative"
    assert list(_trace(fig, "steel deficit").y) == pytest.approx([-40e-6, -40e-6])


def test_incentive_chart_shows_one_year_one_point_per_firm(firm_years):
    fig = figures.incentive_chart(firm_years, 2026)
    assert sum(len(t.x) for t in fig.data) == 4
    assert "2026" in fig.layout.title.text
    x = sorted(v for t in fig.data for v in t.x)
    assert x == pytest.approx(sorted([1.9 / 2.0, 2.2 / 2.0, 0.8 / 0.85, 0.9 / 0.85]))
    assert all(t.type == "scatter" for t in fig.data)  # SVG, not WebGL


def test_incentive_chart_notes_a_year_without_surplus(firm_years):
    flat = firm_years.assign(surplus_ratio=0.0)
    assert any("no surplus" in text for text in _annotations(figures.incentive_chart(flat, 2025)))


def test_abatement_by_technology_follows_adoption_and_lead_time(firm_years, firms, options):
    tech = analysis.abatement_by_technology(firm_years, firms, options)
    # 2025: nothing works yet (firm 1's heat from 2026, firm 2's heat adopted in 2026)
    assert tech[tech["year"] == 2025].empty
    y2026 = tech[tech["year"] == 2026].set_index("option")
    # firm 1: 100 x 2.0 x 0.1 = 20 t at 50; firm 2: 200 x 2.2 x 0.1 = 44 t at 60
    assert y2026.loc["heat", "tonnes"] == pytest.approx(64.0)
    assert y2026.loc["heat", "cost"] == pytest.approx(20 * 50 + 44 * 60)
    assert "ccus" not in y2026.index and "kiln" not in y2026.index
    fig = figures.abatement_chart(firm_years, firms, options)
    assert _trace(fig, "heat").y[0] == pytest.approx(64e-6)
    assert _trace(fig, "total cost (m CNY)").yaxis == "y2"  # a small market: millions


def test_abatement_chart_without_adoption_says_so(firm_years, firms, options):
    fig = figures.abatement_chart(firm_years, firms, options.assign(adopted_year=pd.NA))
    assert "No firm adopted" in _annotations(fig)[0]


def test_monthly_volume_sums_days_and_splits_block(daily):
    months = analysis.monthly_volume(daily)
    assert months["volume"].sum() == daily["volume"].sum()
    assert months["block_volume"].sum() == daily["block_volume"].sum()
    fig = figures.volume_chart(daily, ["2025-12-31"])
    assert [t.name for t in fig.data] == ["listed", "block"]
    assert len(fig.layout.shapes) == 1


def test_compliance_chart_in_percent(years):
    fig = figures.compliance_chart(years)
    assert list(fig.data[0].y) == pytest.approx([100.0, 99.0])
    assert list(fig.data[1].y) == pytest.approx([100.0, 75.0])


def test_quota_curves_cross_at_the_marginal_option(firm_years, firms, options, years):
    # 2026: unabated = 100x2 + 200x2.2 + 300x0.8 + 400x0.9 = 1,240 t;
    # available = free (1,237) + auctioned 50,000 is far too much -> use a tight year
    tight = years.assign(auctioned=0)
    fy = firm_years.assign(free_allocation=[190, 400, 240, 300] * 2)  # 1,130 t issued
    curves = analysis.quota_curves(fy, firms, options, tight, 2026)
    assert curves["unabated"] == pytest.approx(1240.0)
    assert curves["available"] == pytest.approx(1130.0)
    # options by cost: kiln 40 (48 t), heat 50 (20 t), heat 60 (44 t), ccus 800 (90 t)
    # shortage 110 t: 48 + 20 = 68 < 110 <= 112 -> the 60 CNY/t option sets the price
    assert curves["price"] == pytest.approx(60.0)
    assert curves["model_price"] == pytest.approx(60.0)
    demanded = curves["curve"]["quota_demanded"].tolist()
    assert demanded[0] == pytest.approx(1240.0) and demanded == sorted(demanded, reverse=True)
    fig = figures.quota_supply_demand(curves, 2026)
    assert [t.name for t in fig.data] == ["demand for quota", "supply of quota",
                                          "one-year equilibrium"]
    assert fig.data[2].y[0] == pytest.approx(60.0)


def test_quota_curves_leave_out_sectors_on_verified_emissions(firm_years, firms, options,
                                                              years):
    curves = analysis.quota_curves(firm_years, firms, options, years, 2026, ["steel", "cement"])
    assert curves["unabated"] == 0.0
    assert "No firm" in _annotations(figures.quota_supply_demand(curves))[0]


def test_firm_charts(firm_years):
    one = firm_years[firm_years["firm_id"] == 2]
    position = figures.firm_position_chart(one, 2)
    assert [t.name for t in position.data] == ["free allocation", "verified emissions",
                                               "bought - sold", "bank at year end"]
    assert list(_trace(position, "bought - sold").y) == pytest.approx([0.015, 0.015])  # kt
    abatement = figures.firm_abatement_chart(one, 2)
    assert list(_trace(abatement, "benchmark").y) == [2.0, 2.0]


def test_firm_trades_side_and_chart():
    trades = pd.DataFrame({"date": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
                           "buyer_id": [1, 2, 1], "seller_id": [2, 3, -1],
                           "price": [100.0, 101.0, 99.0], "quantity": [10, 20, 30],
                           "kind": ["continuous", "continuous", "auction"]})
    mine = analysis.firm_trades(trades, 2)
    assert mine["side"].tolist() == ["sell", "buy"]
    assert mine["signed_quantity"].tolist() == [-10, 20]
    assert mine["counterparty"].tolist() == [1, 3]
    fig = figures.firm_trades_chart(mine, 2)
    assert sorted(t.name for t in fig.data) == ["buys", "sells"]


def test_order_ladder_and_depth_draw_both_sides():
    bids = pd.DataFrame({"price": [99.0, 98.5], "quantity": [100, 50], "orders": [1, 2]})
    asks = pd.DataFrame({"price": [100.0, 101.0, 102.0], "quantity": [10, 20, 30],
                         "orders": [1, 1, 1]})
    ladder = figures.order_ladder(bids, asks, 90.0, 110.0, levels=2,
                                  incoming={"side": 1, "price": 100.5, "remaining": 5})
    assert list(_trace(ladder, "bids (buy orders)").x) == [100, 50]
    assert list(_trace(ladder, "asks (sell orders)").y) == ["101.00", "100.00"]  # best 2
    assert any("incoming buy order" in text for text in _annotations(ladder))
    depth = figures.depth_chart(bids, asks, 90.0, 110.0)
    assert list(_trace(depth, "asks").y) == [10, 30, 60]
    assert list(_trace(depth, "bids").y) == [100, 150]


def test_trade_network_chart_draws_nodes_by_sector_and_edges():
    nodes = pd.DataFrame({"firm_id": [1, 2, 3], "x": [0.0, 1.0, 0.5], "y": [0.0, 0.0, 1.0],
                          "sector": ["steel", "cement", "steel"], "volume": [10.0, 20.0, 5.0],
                          "counterparties": [1, 2, 1]})
    edges = pd.DataFrame({"x0": [0.0, 1.0], "y0": [0.0, 0.0], "x1": [1.0, 0.5],
                          "y1": [0.0, 1.0], "quantity": [10.0, 5.0]})
    fig = figures.trade_network_chart(nodes, edges)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert sorted(t.name for t in markers) == ["cement", "steel"]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert sum(np.isfinite(np.asarray(t.x, dtype=float)).sum() for t in lines) == 4


def test_compare_builders_draw_one_colour_per_run(daily, years):
    runs = {"A": {"market_daily": daily, "market_years": years},
            "B": {"market_daily": daily.assign(close=daily["close"] * 2),
                  "market_years": years}}
    price = compare_figures.compare_price(runs)
    assert [t.name for t in price.data] == ["A market close", "A equilibrium with banking",
                                            "B market close", "B equilibrium with banking"]
    assert price.data[0].line.color != price.data[2].line.color
    ratio = compare_figures.compare_yearly(runs, "scarcity_ratio", "t", "y")
    assert list(ratio.data[0].y) == pytest.approx([0.98, 1.02])
    bank = compare_figures.compare_yearly(runs, "bank_total", "t", "Mt", 1e6,
                                          compliance_only=False)
    assert len(bank.data[0].x) == 3
    volume = compare_figures.compare_volume(runs)
    assert volume.layout.barmode == "group" and len(volume.data) == 2


# --- headline figures -----------------------------------------------------------------


def test_headline_and_difference_table(daily, years, firm_years):
    head = analysis.headline({"market_daily": daily, "market_years": years,
                              "firm_years": firm_years})
    assert head["Mean price (CNY/t)"] == pytest.approx(daily["close"].mean())
    assert head["Final-year mean price (CNY/t)"] == 120.0  # the last compliance year
    assert head["Compliance rate (%)"] == pytest.approx(99.5)
    assert head["Firms"] == 4
    other = dict(head, **{"Mean price (CNY/t)": head["Mean price (CNY/t)"] * 1.1})
    table = analysis.headline_difference(head, other)
    row = table[table["figure"] == "Mean price (CNY/t)"].iloc[0]
    assert row["change_pct"] == pytest.approx(10.0)
    assert row["difference"] == pytest.approx(head["Mean price (CNY/t)"] * 0.1)


def test_observed_prices_ship_with_the_package(daily):
    observed = analysis.observed_prices()
    assert list(observed.columns) == ["date", "close"]
    assert observed["date"].dt.year.min() == 2021 and observed["date"].dt.year.max() == 2025
    overlap = analysis.observed_overlap(observed, daily)
    assert set(overlap["date"].dt.year) == {2025}


# --- order book replay -----------------------------------------------------------------


def _events(rows: list[tuple]) -> pd.DataFrame:
    """Events as book_events rows: (event, order_id, trader, side, qty, price, buyer,
    seller)."""
    frame = pd.DataFrame(rows, columns=["event", "order_id", "trader_id", "side", "quantity",
                                        "price", "buyer_id", "seller_id"])
    frame["date"] = pd.Timestamp("2026-11-13")
    frame["session"] = "continuous"
    frame["seq"] = range(len(frame))
    frame["limit_down"], frame["limit_up"] = 90.0, 110.0
    return frame


NA = None
DAY = _events([
    ("order", 0, 10, -1, 100, 101.0, NA, NA),   # ask 100 t at 101
    ("order", 1, 11, -1, 50, 100.0, NA, NA),    # ask 50 t at 100
    ("order", 2, 12, 1, 30, 99.0, NA, NA),      # bid 30 t at 99
    ("order", 3, 13, 1, 80, 101.0, NA, NA),     # buy 80 t up to 101: sweeps both asks
    ("trade", NA, NA, NA, 50, 100.0, 13, 11),
    ("trade", NA, NA, NA, 30, 101.0, 13, 10),
    ("order", 4, 14, -1, 40, np.nan, NA, NA),   # market sell 40: 30 at 99, 10 dropped
    ("trade", NA, NA, NA, 30, 99.0, 12, 14),
])


def test_replay_rebuilds_the_ladder_step_by_step():
    empty = book.replay(DAY, 0)
    assert empty.bids.empty and empty.asks.empty and empty.last_event is None
    three = book.replay(DAY, 3)
    assert three.asks.values.tolist() == [[100.0, 50, 1], [101.0, 100, 1]]
    assert three.bids.values.tolist() == [[99.0, 30, 1]]
    assert (three.best_bid, three.best_ask) == (99.0, 100.0)


def test_replay_shows_an_order_while_it_sweeps_then_rests_its_remainder():
    sweeping = book.replay(DAY, 5)  # the buy order and its first trade
    assert sweeping.incoming == {"order_id": 3, "trader_id": 13, "side": 1, "price": 101.0,
                                 "quantity": 80, "remaining": 30}
    assert sweeping.asks.values.tolist() == [[101.0, 100, 1]]
    done = book.replay(DAY, 6)
    assert done.incoming is None
    assert done.asks.values.tolist() == [[101.0, 70, 1]]  # 100 - 30
    assert done.tape["price"].tolist() == [100.0, 101.0]
    assert done.bids.values.tolist() == [[99.0, 30, 1]]  # fully filled: nothing rests


def test_replay_drops_a_market_orders_remainder():
    end = book.replay(DAY, len(DAY))
    assert end.bids.empty  # the bid at 99 was taken
    assert end.asks.values.tolist() == [[101.0, 70, 1]]  # the market sell did not rest
    assert len(end.tape) == 3 and not end.notes
    assert end.orders_seen == 5


def test_recorded_sessions_and_next_order_step():
    sessions = book.recorded_sessions(DAY)
    assert sessions[["orders", "trades"]].values.tolist() == [[5, 3]]
    assert book.next_order_step(DAY, 0) == 1
    assert book.next_order_step(DAY, 3) == 6  # the order and both of its trades
    assert book.next_order_step(DAY, 6) == 8
    assert book.next_order_step(DAY, 8) == 8
    assert "sell 40 t at the market" in book.describe_event(book.replay(DAY, 7).last_event)


@pytest.mark.parametrize("seed", range(5))
def test_replay_agrees_with_the_exchange(seed):
    # random orders through the model's own order book, recorded, then replayed
    rng = np.random.default_rng(seed)
    exchange = OrderBook(90.0, 110.0, 0.01, record=True)
    depths = []
    for _ in range(120):
        side = int(rng.choice([-1, 1]))
        price = None if rng.random() < 0.1 else float(np.round(rng.uniform(92, 108), 1))
        exchange.submit(int(rng.integers(1, 15)), side, int(rng.integers(1, 200)), price)
        depths.append(exchange.depth())
    rows = []
    for event in exchange.events:
        if event[0] == "order":
            _, seq, trader, side, qty, price = event
            rows.append(("order", seq, trader, side, qty, np.nan if price is None else price,
                         NA, NA))
        elif event[0] == "cancel":
            rows.append(("cancel", event[1], NA, NA, NA, np.nan, NA, NA))
        else:
            _, buyer, seller, price, qty = event
            rows.append(("trade", NA, NA, NA, qty, price, buyer, seller))
    events = _events(rows)
    order_rows = [i for i, row in enumerate(rows) if row[0] == "order"]
    for k, (bids, asks) in enumerate(depths):
        step = order_rows[k + 1] if k + 1 < len(order_rows) else len(rows)
        state = book.replay(events, step)
        assert list(zip(state.bids["price"], state.bids["quantity"], strict=True)) == bids
        assert list(zip(state.asks["price"], state.asks["quantity"], strict=True)) == asks
        assert not state.notes


# --- trade network ---------------------------------------------------------------------


@pytest.fixture()
def trades() -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.to_datetime(["2026-01-05"] * 5 + ["2027-01-05"]),
        "buyer_id": [1, 1, 2, 3, -2, 1],
        "seller_id": [2, 3, 3, 4, 1, 2],
        "price": 100.0, "quantity": [10, 30, 20, 40, 99, 5],
        "kind": ["continuous", "continuous", "block", "continuous", "reserve", "continuous"],
    })


def test_trade_graph_keeps_firm_to_firm_trades_of_the_year(trades):
    graph = network.trade_graph(trades, 2026)
    assert sorted(graph.edges) == [(2, 1), (3, 1), (3, 2), (4, 3)]  # seller -> buyer
    assert graph.edges[3, 1]["quantity"] == 30


def test_network_metrics_hhi_and_density(trades):
    metrics = network.network_metrics(network.trade_graph(trades, 2026))
    # sellers' volumes: firm 2: 10, firm 3: 50, firm 4: 40 -> shares 10%, 50%, 40%
    assert metrics["hhi_sellers"] == pytest.approx(100 + 2500 + 1600)
    assert metrics["traders"] == 4 and metrics["links"] == 4
    assert metrics["density"] == pytest.approx(4 / 12)
    assert metrics["top4_seller_share"] == pytest.approx(100.0)
    assert network.hhi([1.0]) == pytest.approx(10_000)


def test_central_traders_and_layout(trades, firms):
    graph = network.trade_graph(trades, 2026)
    central = network.central_traders(graph, firms, top=2)
    assert central["firm_id"].tolist() == [3, 1]  # firm 3 traded with three others
    assert central.loc[0, "sold_t"] == 50 and central.loc[0, "bought_t"] == 40
    assert central.loc[0, "betweenness"] > 0
    nodes, edges = network.layout_frames(graph, firms, max_nodes=3)
    assert len(nodes) == 3 and set(nodes["sector"]) <= {"steel", "cement"}
    assert len(edges) == 2  # the links among the three busiest traders
    empty = network.trade_graph(trades.iloc[0:0])
    assert network.central_traders(empty, firms).empty
