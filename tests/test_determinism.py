"""The same scenario and seed give identical results, in one process and across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from pandas.testing import assert_frame_equal

from etsim import CarbonMarketModel
from etsim.model.results import TABLES

REPO = Path(__file__).resolve().parents[1]


def _results(seed: int, **overrides) -> dict[str, pd.DataFrame]:
    model = CarbonMarketModel(scenario="classroom", seed=seed, **overrides)
    model.run()
    return model.results()


def test_same_seed_twice_in_one_process_gives_identical_tables() -> None:
    first, second = _results(11), _results(11)
    assert set(first) == set(second) == set(TABLES)
    for name in TABLES:
        assert_frame_equal(first[name], second[name], check_exact=True, obj=name)
    assert len(first["trades"]) > 0  # there is something to compare


def test_same_seed_is_identical_with_every_mechanism_switched_on() -> None:
    overrides = {"overrides": {"sectors.*.allocation.paid_share": 0.1},
                 "reserve_pool__policy": "price_trigger", "reserve_pool__release_price": 60.0,
                 "reserve_pool__absorb_price": 20.0,
                 "reserve_pool__initial_holdings_share": 0.02,
                 "mrv__misreporting_share": 0.3, "compliance__borrowing": True}
    first, second = _results(4, **overrides), _results(4, **overrides)
    for name in TABLES:
        assert_frame_equal(first[name], second[name], check_exact=True, obj=name)
    assert set(first["trades"]["kind"]) >= {"continuous", "auction", "reserve"}


def test_a_different_seed_gives_a_different_price_path() -> None:
    first, other = _results(11), _results(12)
    assert not first["market_daily"]["close"].equals(other["market_daily"]["close"])
    assert not first["firms"]["capacity"].equals(other["firms"]["capacity"])


def _cli_run(out: Path, cwd: Path, hash_seed: str) -> None:
    # a different string-hash seed in each process: set and dict order must not matter
    # this checkout's etsim, also from another folder (not the editable install's)
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-m", "etsim", "run", "classroom", "--out", str(out),
         "--seed", "3", "--quiet"],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # --quiet


def test_identical_results_across_two_processes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _cli_run(first, tmp_path, "1")
    _cli_run(second, tmp_path, "2")
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted(p.name for p in second.iterdir())
    parquet = [name for name in files if name.endswith(".parquet")]
    assert sorted(parquet) == sorted(f"{name}.parquet" for name in TABLES)
    for name in parquet:
        assert_frame_equal(pd.read_parquet(first / name), pd.read_parquet(second / name),
                           check_exact=True, obj=name)
    records = [json.loads((folder / "run.json").read_text()) for folder in (first, second)]
    assert records[0]["seed"] == records[1]["seed"] == 3
    assert records[0]["scenario"] == records[1]["scenario"]
    assert records[0]["scenario"]["name"] == "classroom"
    assert records[0]["invariants"] == records[1]["invariants"]
    # and the processes agree with this one
    here = _results(3)
    assert_frame_equal(pd.read_parquet(first / "market_years.parquet"), here["market_years"],
                       check_exact=True)
    assert_frame_equal(pd.read_parquet(first / "firm_years.parquet"), here["firm_years"],
                       check_exact=True)


def test_recorded_book_replays_to_the_days_trades() -> None:
    """Re-submitting a recorded day's orders to a fresh book gives the same trades."""
    from etsim.model.exchange import OrderBook

    model = CarbonMarketModel(scenario="classroom", seed=2)
    model.run()
    events = model.results()["book_events"]
    assert set(events["event"]) >= {"order", "trade"}
    for _, day in events.groupby(["date", "session"]):
        book = OrderBook(float(day["limit_down"].iloc[0]), float(day["limit_up"].iloc[0]))
        for order in day[day["event"] == "order"].itertuples():
            price = None if pd.isna(order.price) else float(order.price)
            book.submit(int(order.trader_id), int(order.side), int(order.quantity), price)
        recorded = day[day["event"] == "trade"]
        replayed = book.trades()
        assert replayed["buyer"].tolist() == recorded["buyer_id"].astype(int).tolist()
        assert replayed["seller"].tolist() == recorded["seller_id"].astype(int).tolist()
        assert replayed["quantity"].tolist() == recorded["quantity"].astype(int).tolist()
        assert replayed["price"].tolist() == recorded["price"].tolist()
