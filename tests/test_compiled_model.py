"""The compiled engine in a whole run: the same tables as the Python engine, the
registry's batched settlement, a day's two sessions submitted in one compiled call
against the session's reference steps, a recorded day replayed on the reference book,
and the kernels' cache folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from institutions import hand_built_market, make_firms
from test_compiled_book import random_orders, state

from etsim import CarbonMarketModel
from etsim.agents.strategies import Orders
from etsim.model import _numba, matching
from etsim.model.exchange import OrderBook
from etsim.model.matching import CompiledOrderBook
from etsim.model.registry import Registry


def run_tables(engine: str, overrides: dict) -> dict[str, pd.DataFrame]:
    before = matching.engine()
    matching.set_engine(engine)
    try:
        model = CarbonMarketModel(scenario="classroom", seed=5, overrides=overrides)
        model.run()
        return model.results()
    finally:
        matching.set_engine(before)


@pytest.mark.parametrize("overrides", [
    {},
    # GTC orders carried overnight, block trades and financial accounts trading
    {"market.order_expiry": "gtc", "market.gtc_max_age_days": 5,
     "market.block_min_t": 20_000, "financial.speculators": 3,
     "financial.market_makers": 1},
], ids=["day-orders", "gtc-block-financial"])
def test_compiled_and_python_engines_give_identical_tables(overrides: dict) -> None:
    python = run_tables("python", overrides)
    compiled = run_tables("compiled", overrides)
    assert python.keys() == compiled.keys()
    for name, table in python.items():
        if isinstance(table, pd.DataFrame):
            pd.testing.assert_frame_equal(table, compiled[name], check_exact=True, obj=name)
    assert python["market_daily"]["trades"].sum() > 100
    assert len(python["book_events"]) > 0


def test_a_recorded_day_of_the_compiled_engine_replays_on_the_reference() -> None:
    """The listed book of a recorded day, from a compiled run, rebuilt from its event
    log by the pure-Python book: the same events, trades and closing ladder."""
    before = matching.engine()
    matching.set_engine("compiled")
    try:
        model = CarbonMarketModel(scenario="classroom", seed=3)  # default recorded days
        kept: list[OrderBook] = []
        session_trade = model.session.trade

        def trade(day, year, orders, book):  # keep the recorded days' books
            books = session_trade(day, year, orders, book)
            if day in model.book_days:
                kept.append(books.listed)
            return books

        model.session.trade = trade
        model.run()
    finally:
        matching.set_engine(before)
    assert len(kept) >= 2 and all(isinstance(b, CompiledOrderBook) for b in kept)
    for book in kept:
        replayed = OrderBook.replay(book.events, book.limit_down, book.limit_up)
        assert replayed.events == book.events
        assert replayed.depth() == book.depth()
        for column in ("buyer", "seller", "price", "quantity"):
            assert replayed.trades()[column].tolist() == book.trades()[column].tolist()
    assert sum(len(book.trade_qty) for book in kept) > 0  # the replay covers trades


def chained_trades(rng: np.random.Generator, n_accounts: int, n: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sellers = rng.integers(0, n_accounts, n)
    buyers = (sellers + rng.integers(1, n_accounts, n)) % n_accounts
    return sellers, buyers, rng.integers(1, 40, n)


def test_batched_transfers_match_one_by_one() -> None:
    """Trades delivered in order, oldest vintages first, a seller selling on what it
    bought earlier the same day: the compiled batch and the reference loop agree."""
    rng = np.random.default_rng(11)
    reference = Registry(6, 2020, 2024)
    reference.holdings[:] = rng.integers(0, 60, reference.holdings.shape)
    batched = Registry(6, 2020, 2024)
    batched.holdings[:] = reference.holdings
    total = int(reference.holdings.sum())
    sellers, buyers, quantities = chained_trades(rng, 6, 400)
    done = 0
    for s, b, q in zip(sellers.tolist(), buyers.tolist(), quantities.tolist(), strict=True):
        if int(reference.holdings[s].sum()) < q:
            break
        reference.transfer(s, b, q)
        done += 1
    assert 20 < done < 400  # some delivered, then one seller came up short
    with pytest.raises(ValueError, match=f"account {sellers[done]} cannot deliver"):
        batched.transfer_many(sellers, buyers, quantities)
    assert np.array_equal(batched.holdings, reference.holdings)
    assert int(batched.holdings.sum()) == total  # no quota created or lost


def test_batched_transfers_check_accounts() -> None:
    registry = Registry(3, 2020, 2021)
    registry.holdings[:] = 10
    with pytest.raises(IndexError):
        registry.transfer_many(np.array([0]), np.array([3]), np.array([1]))
    registry.transfer_many(np.array([0, 1]), np.array([1, 2]), np.array([10, 20]))
    # 20 t each (10 t of two vintages): 0 sells 10 to 1, then 1 sells 20 of its 30 to 2
    assert registry.holdings.sum(axis=1).tolist() == [10, 10, 40]


def test_kernel_cache_goes_to_the_user_cache_when_the_package_is_read_only(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_numba, "_package_dir_writable", lambda: False)
    _numba._choose_cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "etsim" / "numba")
    assert (tmp_path / "etsim" / "numba").is_dir()
    # a folder the user chose is kept
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    _numba._choose_cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def test_holdings_sums_by_vintage() -> None:
    """total() and usable() (summed column by column) against numpy's sums."""
    rng = np.random.default_rng(2)
    registry = Registry(50, 2020, 2030, n_firms=40)
    issued = rng.integers(0, 100, registry.holdings.shape)
    for col, vintage in enumerate(registry.vintages.tolist()):
        registry.issue(np.arange(50), issued[:, col], vintage, "issued_free")
    assert (registry.holdings == issued).all()
    for vintage in (2010, 2019, 2020, 2024, 2030, 2031):
        want = registry.holdings[:40, : registry.column(vintage) + 1].sum(axis=1)
        assert registry.usable(vintage).tolist() == want.tolist()
    assert registry.total().tolist() == registry.holdings[:40].sum(axis=1).tolist()
    # the firms' rows only: the last 10 rows (financial accounts) are left out
    assert registry.firm_total() == int(registry.holdings[:40].sum())
    assert registry.firm_total() != int(registry.holdings.sum())


@pytest.mark.parametrize(("value", "engine", "warned"), [
    ("python", "python", False), ("compiled", "compiled", False), ("", "compiled", False),
    ("fortran", "compiled", True)])
def test_engine_from_the_environment(value: str, engine: str, warned: bool) -> None:
    """ETSIM_ENGINE picks the engine at import; a wrong value warns and keeps the default."""
    code = "from etsim.model import matching; print(matching.engine())"
    env = dict(os.environ, ETSIM_ENGINE=value,
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == engine
    assert ("ETSIM_ENGINE must be one of compiled, python, got 'fortran'" in out.stderr) == warned


COMPILED_SIGNATURES = r"""
import json, sys
from numba.core.registry import CPUDispatcher
from etsim import CarbonMarketModel  # loads (or compiles) the kernels a run calls
from etsim.agents import positions, strategies
from etsim.model import _kernels

def signatures():
    return {f"{module.__name__}.{name}": len(kernel.signatures)
            for module in (_kernels, positions, strategies)
            for name, kernel in vars(module).items() if isinstance(kernel, CPUDispatcher)}

before = signatures()
for scenario, overrides in json.loads(sys.argv[1]):
    CarbonMarketModel(scenario=scenario, seed=3, overrides=overrides).run()
after = signatures()
print(json.dumps({"kernels": len(before), "loaded": sum(n > 0 for n in before.values()),
                  "compiled_in_runs": {name: [before[name], after[name]] for name in before
                                       if after[name] != before[name]}}))
"""


def test_a_run_compiles_nothing_the_import_did_not_load() -> None:
    """``from etsim import CarbonMarketModel`` loads every kernel a run calls, for the
    argument types and array layouts the run passes them (numba compiles a function per
    layout, and the registry's holdings are column-major), so no run stops to compile:
    day orders, GTC orders with block trades and financial accounts, and China's
    sectors, counted in a fresh process."""
    runs = [["classroom", {}],
            ["classroom", {"market.order_expiry": "gtc", "market.block_min_t": 20_000,
                           "financial.speculators": 3, "financial.market_makers": 1}],
            ["china-2024", {"scale": 0.05, "end_year": 2025}]]
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", COMPILED_SIGNATURES, json.dumps(runs)],
                         capture_output=True, text=True, check=True, cwd=repo,
                         env=dict(os.environ, PYTHONPATH=str(repo), ETSIM_ENGINE="compiled"))
    counted = json.loads(out.stdout.strip().splitlines()[-1])
    assert counted["kernels"] >= 10 and counted["loaded"] >= 10
    assert counted["compiled_in_runs"] == {}


def _session_days(engine: str, seed: int) -> list:
    """Three random days through a hand-built market's trading session with ``engine``:
    each day's books as a user reads them, then holdings, cash and the daily record."""
    before = matching.engine()
    matching.set_engine(engine)
    try:
        n_firms = 25
        market = hand_built_market(make_firms(n_firms), {"market.block_min_t": 1000})
        market.registry.issue(np.arange(n_firms), np.full(n_firms, 10**7), 2025,
                              "issued_free")
        session = market.session()
        rng = np.random.default_rng(seed)
        seen = []
        for day in range(4):
            traders, sides, _, prices = random_orders(rng, 300, n_firms,
                                                      round(market.daily.last_close * 100))
            # about a third of block size (1,000 t): some fill in the block session, the
            # rest of them goes listed below block size; on day 2 none is of block size
            # (no block session)
            large = rng.random(300) < (0.3 if day != 2 else 0.0)
            quantities = np.where(large, rng.integers(1000, 5000, 300),
                                  rng.integers(1, 999, 300))
            books = session.trade(day, 2025, Orders(traders, sides, quantities, prices), None)
            seen.append([None if book is None else state(book)
                         for book in (books.listed, books.block)])
        daily = {name: market.daily[name][:4].tolist() for name in (
            "close", "open", "high", "low", "volume", "trades", "block_volume", "best_bid",
            "best_ask", "reference_price")}
        return [seen, market.registry.holdings.tolist(), market.firms.cash.tolist(), daily]
    finally:
        matching.set_engine(before)


@pytest.mark.parametrize("seed", range(4))
def test_a_days_sessions_in_one_compiled_call_match_the_reference_steps(seed: int) -> None:
    """The compiled day (both sessions and their settlement in one call,
    ``trade_and_settle_day``) gives what the session's reference steps give on Python
    books: the same fills in both sessions, rejections, resting orders, settlement and
    daily record."""
    reference = _session_days("python", seed)
    assert _session_days("compiled", seed) == reference
    block_trades = sum(len(day[1]["trades"]) for day in reference[0] if day[1])
    listed_trades = sum(len(day[0]["trades"]) for day in reference[0])
    assert block_trades > 10 and listed_trades > 100  # both sessions traded
    assert reference[0][2][1] is None  # a day without block orders has no block session


@pytest.mark.parametrize("tick", [0.01, 0.05, 0.1, 0.25, 0.003])
def test_compiled_trade_prices_are_numpys_rounding_to_the_fen(tick: float) -> None:
    """The compiled day's trade prices are bit for bit what ``trades()`` computes with
    numpy (ticks x tick, rounded to the fen), for prices up to 100,000 CNY/t."""
    k = matching.kernels()
    rng = np.random.default_rng(5)
    ticks = np.concatenate([np.arange(1, 20_001), rng.integers(1, round(1e5 / tick), 50_000)])
    store = np.zeros((k.STORE_ROWS, len(ticks)), dtype=np.int64)
    store[k.S_TICK] = ticks
    want = np.round(ticks.astype(np.float64) * tick, 2)
    got = k.trade_prices(store, len(ticks), tick)
    assert got.view(np.int64).tolist() == want.view(np.int64).tolist()


@pytest.mark.parametrize("engine", ["python", "compiled"])
def test_a_day_with_an_undelivered_listed_trade_raises_and_skips_the_block(engine: str
                                                                           ) -> None:
    """When a listed session's seller cannot deliver, the day raises (naming the
    account) and the block session, settled after the listed one, is not settled: the
    compiled day (one call) as the reference steps."""
    before = matching.engine()
    matching.set_engine(engine)
    try:
        market = hand_built_market(make_firms(4), {"market.block_min_t": 1000})
        # firm 0 sells 2,000 t in the block session and holds it; firm 2 sells 10 t
        # listed and holds none
        market.registry.issue(np.array([0]), np.array([2000]), 2025, "issued_free")
        session = market.session()
        close = market.daily.last_close
        orders = Orders(np.array([0, 1, 2, 3]), np.array([-1, 1, -1, 1]),
                        np.array([2000, 2000, 10, 10]), np.full(4, close))
        with pytest.raises(ValueError, match="account 2 cannot deliver 10 t"):
            session.trade(0, 2025, orders, None)
        assert market.registry.total().tolist() == [2000, 0, 0, 0]
        assert market.firms.cash.tolist() == [0.0] * 4
        assert market.trade_log.parts == []
    finally:
        matching.set_engine(before)


def _assert_sums_as_numpy(registry: Registry, firms: int) -> None:
    held = registry.holdings[:firms]
    for vintage in range(registry.first_vintage - 1, int(registry.vintages[-1]) + 2):
        want = held[:, : registry.column(vintage) + 1].sum(axis=1)
        assert registry.usable(vintage).tolist() == want.tolist()
    assert registry.total().tolist() == held.sum(axis=1).tolist()
    assert registry.firm_total() == int(held.sum())


def test_holdings_sums_follow_the_vintages_held() -> None:
    """The sums read only the vintages someone holds: they stay numpy's sums as quota
    of other vintages is issued, moves between accounts and is surrendered."""
    registry = Registry(6, 2020, 2030, n_firms=5)
    _assert_sums_as_numpy(registry, 5)  # nothing held
    registry.issue(np.array([0, 1, 5]), np.array([40, 7, 9]), 2023, "issued_free")
    registry.issue(np.array([2, 3]), np.array([11, 13]), 2026, "auctioned")
    assert registry._held_columns == (3, 7)
    _assert_sums_as_numpy(registry, 5)
    registry.transfer_many(np.array([0, 3, 5]), np.array([4, 0, 2]), np.array([5, 13, 9]))
    _assert_sums_as_numpy(registry, 5)
    # all of 2023 surrendered (account 5, not a firm, keeps none of it either)
    owed = registry.holdings[:, registry.column(2023)].copy()
    registry.take(np.arange(6), owed, 2023, "surrendered")
    assert registry._held_columns == (6, 7)
    _assert_sums_as_numpy(registry, 5)
    registry.issue(np.array([1]), np.array([3]), 2030, "reserve_out")
    assert registry._held_columns == (6, 11)
    _assert_sums_as_numpy(registry, 5)
    assert all(row["balance"] == 0 for row in registry.ledger())
