"""Order expiry (GTC) and financial traders inside the model (issue #3).

The components are tested on their own in test_exchange.py (the "expiry" section) and
test_financial.py; here they run in the classroom market: GTC orders rest overnight and
are recorded and replayed, and speculators and market makers trade as registry rows
after the firms without breaking the ledger, the cash balance or their own limits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from etsim import CarbonMarketModel
from etsim.dashboard import book as dash_book
from etsim.model.exchange import OrderBook, RestingOrders
from etsim.model.registry import Registry

GTC = {"market.order_expiry": "gtc"}
TRADERS = {"financial.market_makers": 2, "financial.speculators": 3}


@pytest.fixture(scope="module")
def gtc_run() -> tuple[CarbonMarketModel, dict[str, pd.DataFrame]]:
    model = CarbonMarketModel("classroom", seed=1, overrides=GTC).run()
    return model, model.results()


@pytest.fixture(scope="module")
def traders_run() -> tuple[CarbonMarketModel, dict[str, pd.DataFrame]]:
    model = CarbonMarketModel("classroom", seed=1, overrides=TRADERS)
    n_firms, limit = model.n_firms, model.scenario.financial.position_limit_t
    rows = model.financial.rows
    while model.running:  # day by day: the accounts keep their limits on every day
        model.step()
        held = model.registry.holdings[rows].sum(axis=1)
        assert (held >= 0).all() and (held <= limit).all(), model.day
        assert (model.financial.cash >= 0).all(), model.day
        assert model.registry.total().shape == (n_firms,)
    return model, model.results()


def _exchange_rows(events: pd.DataFrame) -> list[tuple[Any, ...]]:
    """``book_events`` rows of one session as ``OrderBook.events`` tuples (no trades)."""
    rows: list[tuple[Any, ...]] = []
    for e in events.itertuples():
        if e.event in ("order", "carry"):
            price = None if pd.isna(e.price) else float(e.price)
            rows.append((e.event, int(e.order_id), int(e.trader_id), int(e.side),
                         int(e.quantity), price))
        elif e.event in ("cancel", "expire"):
            rows.append((e.event, int(e.order_id)))
    return rows


# --- defaults ----------------------------------------------------------------------------


def test_default_runs_have_no_financial_accounts_and_day_orders() -> None:
    model = CarbonMarketModel("classroom", seed=1).run()
    assert model.scenario.market.order_expiry == "day"
    assert model.financial.n == 0
    assert model.registry.holdings.shape[0] == model.n_firms
    assert model.account_id.tolist() == model.firms.firm_id.tolist()
    tables = model.results()
    assert not set(tables["book_events"]["event"]) & {"carry", "expire"}
    ids = set(model.firms.firm_id.tolist()) | {-1, -2}
    assert set(tables["trades"]["buyer_id"]) | set(tables["trades"]["seller_id"]) <= ids
    # the [financial] section is inert without accounts: other values change nothing
    other = CarbonMarketModel("classroom", seed=1, overrides={
        "financial.cash": 1.0, "financial.spread": 0.5, "market.gtc_max_age_days": 3}).run()
    pd.testing.assert_frame_equal(other.results()["market_daily"], tables["market_daily"])


def test_registry_totals_cover_firm_rows_and_the_ledger_every_account() -> None:
    registry = Registry(5, 2024, 2025, n_firms=3)
    registry.issue(np.arange(5), np.array([1, 2, 3, 0, 0]), 2024, "issued_free")
    registry.transfer(2, 4, 3)  # a firm sells to a financial account
    assert registry.total().tolist() == [1, 2, 0]
    assert registry.usable(2024).tolist() == [1, 2, 0]
    assert registry.firm_total() == 3
    assert all(row["balance"] == 0 for row in registry.ledger())
    with pytest.raises(ValueError):
        Registry(2, 2024, 2025, n_firms=3)


# --- good-till-cancelled orders -----------------------------------------------------------


def test_gtc_run_keeps_the_invariants_trades_and_records_carried_orders(gtc_run) -> None:
    model, tables = gtc_run
    assert model.invariants["ok"]
    assert tables["market_daily"]["trades"].sum() > 0
    events = tables["book_events"]
    carried = events[events["event"] == "carry"]
    assert len(carried) > 0
    assert set(carried["session"]) == {"continuous"}  # never the block book
    assert set(carried["trader_id"].astype(int)) <= set(model.firms.firm_id.tolist())
    assert carried[["order_id", "side", "quantity", "price"]].notna().all().all()
    # a session's carried orders come first, with the first ids
    for _, day in events[events["session"] == "continuous"].groupby("date"):
        carry_seq = day.loc[day["event"] == "carry", "seq"]
        order_seq = day.loc[day["event"] == "order", "seq"]
        if len(carry_seq) and len(order_seq):
            assert carry_seq.max() < order_seq.min()
        ids = day.loc[day["event"] == "carry", "order_id"].astype(int).tolist()
        assert ids == list(range(len(ids)))


def test_recorded_gtc_days_replay_to_their_trades(gtc_run) -> None:
    """The exchange's replay and the dashboard's both rebuild a GTC day's trades."""
    model, tables = gtc_run
    events = tables["book_events"]
    replayed_days = 0
    for (_, session), day in events.groupby(["date", "session"]):
        day = day.sort_values("seq", ignore_index=True)
        recorded = day[day["event"] == "trade"]
        book = OrderBook.replay(_exchange_rows(day), float(day["limit_down"].iloc[0]),
                                float(day["limit_up"].iloc[0]), kind=session)
        trades = book.trades()
        assert trades["buyer"].tolist() == recorded["buyer_id"].astype(int).tolist()
        assert trades["seller"].tolist() == recorded["seller_id"].astype(int).tolist()
        assert trades["quantity"].tolist() == recorded["quantity"].astype(int).tolist()
        assert trades["price"].tolist() == recorded["price"].tolist()
        state = dash_book.replay(day, len(day))
        assert not state.notes
        assert state.tape["quantity"].tolist() == trades["quantity"].tolist()
        bids, asks = book.depth()
        assert list(zip(state.bids["price"], state.bids["quantity"], strict=True)) == bids
        assert list(zip(state.asks["price"], state.asks["quantity"], strict=True)) == asks
        replayed_days += (day["event"] == "carry").any()
    assert replayed_days >= 1
    assert "carried over" in dash_book.describe_event({"event": "carry", "side": 1,
                                                        "quantity": 5, "price": 90.0})


def test_resting_orders_are_committed_and_unbacked_asks_cancelled_at_the_open() -> None:
    model = CarbonMarketModel("classroom", seed=1, overrides=GTC)
    for _ in range(5):
        model.step()
    held = model.registry.total()
    firm = int(np.argmax(held))
    # a resting ask of more than the firm holds, and a bid of another firm
    other = (firm + 1) % model.n_firms
    price = round(model.prev_close, 2)
    model.session.resting = RestingOrders.from_rows([
        (0, 0, firm, -1, int(held[firm]) + 10, price + 1.0, 0, -1),
        (1, 1, other, 1, 50, price - 1.0, 0, -1),
    ])
    state = model.positions.trading_state(model.day)
    assert state.sellable[firm] == held[firm] - (held[firm] + 10)
    assert state.budget[other] == pytest.approx(
        model.positions.carbon_budget()[other] - 50 * (price - 1.0))
    book = model.session._open_listed_book(recorded=True)
    assert book.remaining(0) == 0 and ("cancel", 0) in book.events
    assert book.remaining(1) == 50
    assert model.session.resting.trader.tolist() == [other]
    for name, values in vars(book.resting_gtc()).items():  # the book's own view
        assert np.array_equal(getattr(model.session.resting, name), values), name
    state = model.positions.trading_state(model.day)
    assert state.sellable[firm] == held[firm]


# --- financial traders -------------------------------------------------------------------


def test_financial_accounts_keep_the_ledger_cash_and_their_limits(traders_run) -> None:
    model, tables = traders_run
    assert model.invariants["ok"]
    fin = model.financial
    assert fin.n == 5 and fin.rows.tolist() == list(range(model.n_firms, model.n_firms + 5))
    assert model.registry.holdings.shape[0] == model.n_firms + 5
    assert np.array_equal(model.registry.holdings[fin.rows].sum(axis=1), fin.holdings)
    assert model.bank_total == int(model.registry.total().sum())
    # ids after the largest firm id, and their trades in the trades table
    ids = model.account_id[model.n_firms:]
    assert ids.tolist() == list(range(model.firms.firm_id.max() + 1,
                                      model.firms.firm_id.max() + 6))
    trades = tables["trades"]
    theirs = trades[trades["buyer_id"].isin(ids) | trades["seller_id"].isin(ids)]
    assert len(theirs) > 0 and set(theirs["kind"]) == {"continuous"}
    # their cash moved by exactly what their trades paid and earned
    bought = theirs[theirs["buyer_id"].isin(ids)]
    sold = theirs[theirs["seller_id"].isin(ids)]
    flow = (sold["price"] * sold["quantity"]).sum() - (bought["price"] * bought["quantity"]).sum()
    start = model.scenario.financial.cash * fin.n
    assert fin.cash.sum() - start == pytest.approx(flow, rel=1e-9, abs=1e-3)
    # firm records (all calendar years) count firm trades only
    exchange = trades[trades["kind"].isin(["continuous", "block"])]
    firm_ids = set(model.firms.firm_id.tolist())
    assert model.fy["bought"].sum() == exchange.loc[exchange["buyer_id"].isin(firm_ids),
                                                    "quantity"].sum()
    assert model.fy["sold"].sum() == exchange.loc[exchange["seller_id"].isin(firm_ids),
                                                  "quantity"].sum()


def test_financial_accounts_with_gtc_and_without_banking() -> None:
    model = CarbonMarketModel("classroom", seed=3, overrides={
        **GTC, **TRADERS, "compliance.banking": False})
    model.run()
    assert model.invariants["ok"]
    rows = model.financial.rows
    assert np.array_equal(model.registry.holdings[rows].sum(axis=1), model.financial.holdings)
    events = model.results()["book_events"]
    # financial accounts place day orders: none of theirs is ever carried
    carried = events.loc[events["event"] == "carry", "trader_id"].astype(int)
    assert not carried.isin(model.account_id[model.n_firms:].tolist()).any()


def _liquidity(overrides: dict[str, Any]) -> tuple[float, float]:
    """Mean over seeds 1-3 of the total volume and of the closing spread relative to the
    close (the band's width on days when one side of the book is empty)."""
    volume, spread = [], []
    for seed in (1, 2, 3):
        daily = CarbonMarketModel("classroom", seed=seed, overrides=overrides).run().results()[
            "market_daily"]
        both = daily["best_bid"].notna() & daily["best_ask"].notna()
        width = np.where(both, daily["best_ask"] - daily["best_bid"],
                         daily["limit_up"] - daily["limit_down"])
        volume.append(daily["volume"].sum())
        spread.append(float(np.mean(width / daily["close"])))
    return float(np.mean(volume)), float(np.mean(spread))


def test_market_makers_narrow_the_spread_and_raise_volume() -> None:
    volume_none, spread_none = _liquidity({})
    volume_mm, spread_mm = _liquidity({"financial.market_makers": 2})
    assert volume_mm > 1.05 * volume_none
    assert spread_mm < 0.9 * spread_none
