"""Fixed bug: ``mesa.batch_run``'s last row is the state at the end of the run, not one
trading day before it."""

from __future__ import annotations

from typing import Any

import mesa
import pandas as pd

from etsim import CarbonMarketModel


class _KeptModel(CarbonMarketModel):
    """CarbonMarketModel that keeps its instances, to compare them with batch_run's rows."""

    made: list[CarbonMarketModel] = []

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _KeptModel.made.append(self)


def test_batch_run_rows_are_the_state_at_the_close_of_each_trading_day() -> None:
    """Row ``Step`` s is the state at the close of trading day s (0-based): the last row
    is the end of the run (the final deadline's cancellations and the last close
    included), and each row's last_close is the last close up to that day (its close,
    the day's own, is checked in test_mesa_api.py)."""
    _KeptModel.made.clear()
    rows = pd.DataFrame(mesa.batch_run(
        _KeptModel, parameters={"scenario": "classroom", "seed": 1}, iterations=1,
        max_steps=10_000, data_collection_period=1, number_processes=1,
        display_progress=False))
    model = _KeptModel.made[0]
    n_days = model.calendar.n_days
    assert rows["Step"].tolist() == list(range(n_days))
    last = rows.iloc[-1]
    assert last["bank_total"] == model.registry.firm_total()
    assert last["reserve_holdings"] == model.reserve.holdings
    assert last["last_close"] == model.daily.last_close
    assert last["fundamental_price"] == model.fundamental_price
    # every row's close is the last close up to that day in the run's own record
    closes = model.results()["market_daily"]["close"].ffill()
    first = model.daily.initial_price
    expected = closes.fillna(first).to_numpy()
    assert rows["last_close"].to_numpy().tolist() == expected.tolist()
