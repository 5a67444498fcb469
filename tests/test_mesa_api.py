"""The Mesa side of the contract: agents in an AgentSet, defaults, batch_run."""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np
import pandas as pd
import pytest

from etsim import CarbonMarketModel, load_scenario
from etsim.model.calendar import TradingCalendar
from etsim.model.scenario import shipped_scenarios


def test_every_argument_is_defaulted_and_seed_reaches_mesa() -> None:
    model = CarbonMarketModel(scenario="classroom")
    assert model.seed_value == model.scenario.seed
    other = CarbonMarketModel(scenario="classroom", seed=11)
    assert other.seed_value == 11
    assert other._seed == 11  # mesa.Model keeps the seed it was given


def test_firms_are_agents_reading_their_rows() -> None:
    model = CarbonMarketModel(scenario="classroom", seed=3)
    assert len(model.agents) == model.n_firms == 20
    agent = list(model.agents)[5]
    assert agent.row == 5
    assert agent.intensity == model.firms.intensity[5]
    model.registry.holdings[5, 1] = 123
    assert agent.holdings == 123
    sectors = {a.sector for a in model.agents}
    assert sectors == {"steel", "cement", "aluminium"}


def test_an_agent_names_its_strategy_and_expectation_model() -> None:
    mix = {"steel": {"zip": 1.0}}
    model = CarbonMarketModel(scenario="classroom", seed=3,
                              overrides={"trading.strategy_mix": mix})
    by_sector = {(a.sector, a.strategy) for a in model.agents}
    assert ("steel", "zip") in by_sector
    assert ("cement", "budget_constrained") in by_sector
    assert ("steel", "budget_constrained") not in by_sector
    assert {a.expectation_model for a in model.agents} == {model.scenario.trading.expectations}


def test_batch_run_varies_flat_overrides() -> None:
    results = mesa.batch_run(
        CarbonMarketModel,
        parameters={
            "scenario": "classroom",
            "sectors__steel__allocation__tightening": [0.0, 0.08],
            "sectors__cement__allocation__tightening": [0.0, 0.08],
        },
        iterations=1,
        max_steps=100_000,
        data_collection_period=-1,
        number_processes=1,
        display_progress=False,
    )
    frame = pd.DataFrame(results)
    assert len(frame) == 4
    assert {"close", "fundamental_price", "bank_total"} <= set(frame.columns)
    loose = frame[(frame["sectors__steel__allocation__tightening"] == 0.0)
                  & (frame["sectors__cement__allocation__tightening"] == 0.0)]
    tight = frame[(frame["sectors__steel__allocation__tightening"] == 0.08)
                  & (frame["sectors__cement__allocation__tightening"] == 0.08)]
    # tighter benchmarks: more scarcity expected, so a higher fundamental price
    assert tight["fundamental_price"].iloc[0] > loose["fundamental_price"].iloc[0]


# Mesa 3.3's batch_run passes the model only its parameters; more than any shipped
# scenario's trading days (batch_run's default max_steps, 1000, stops china-2024's 1920
# early without a word). The README's "From Python" example gives the same.
DOCUMENTED_MAX_STEPS = 10_000


class _KeptModel(CarbonMarketModel):
    """CarbonMarketModel that keeps its instances, to look at them after batch_run."""

    made: list[CarbonMarketModel] = []

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _KeptModel.made.append(self)


def _batch(parameters: dict[str, Any], iterations: int = 1) -> pd.DataFrame:
    return pd.DataFrame(mesa.batch_run(
        _KeptModel, parameters=parameters, iterations=iterations,
        max_steps=DOCUMENTED_MAX_STEPS, number_processes=1, display_progress=False))


def test_batch_run_runs_of_different_seeds_give_different_rows_to_the_last_day() -> None:
    """Seeds varied as a parameter (``seed`` or ``rng``) give different runs, each run to
    its last trading day with the documented ``max_steps``; ``rng`` of an integer is
    that seed."""
    _KeptModel.made.clear()
    by_seed = _batch({"scenario": "classroom", "seed": [1, 2]})
    assert by_seed["seed"].tolist() == [1, 2]
    assert by_seed["bank_total"].nunique() == 2
    assert [m.seed_value for m in _KeptModel.made] == [1, 2]
    assert all(not m.running and m.day == m.calendar.n_days for m in _KeptModel.made)
    # batch_run's row is the data collector's entry model.steps - 1
    assert (by_seed["Step"] == _KeptModel.made[0].calendar.n_days - 1).all()
    by_rng = _batch({"scenario": "classroom", "rng": [1, 2]})
    columns = ["close", "fundamental_price", "bank_total", "reserve_holdings"]
    pd.testing.assert_frame_equal(by_rng[columns], by_seed[columns])


def test_batch_run_iterations_without_a_seed_are_different_reproducible_runs() -> None:
    """Without ``seed`` or ``rng``, each batch_run iteration draws its own seed (as any
    Mesa model given no seed), reported in the row, and that seed reproduces the row;
    outside batch_run no seed still means the scenario's seed."""
    _KeptModel.made.clear()
    rows = _batch({"scenario": "classroom"}, iterations=2)
    assert rows["iteration"].tolist() == [0, 1]
    seeds = [int(seed) for seed in rows["seed"]]
    assert seeds[0] != seeds[1]  # two draws from 2**31 seeds
    assert [m.seed_value for m in _KeptModel.made] == seeds
    columns = ["close", "fundamental_price", "bank_total", "reserve_holdings"]
    assert not rows[columns].iloc[0].equals(rows[columns].iloc[1])
    again = _batch({"scenario": "classroom", "seed": seeds[1]})
    assert again[columns].iloc[0].equals(rows[columns].iloc[1])
    assert CarbonMarketModel(scenario="classroom").seed_value == \
        load_scenario("classroom").seed


def test_documented_max_steps_covers_every_shipped_scenario() -> None:
    """The documented ``max_steps`` covers every shipped scenario's trading days."""
    names = shipped_scenarios()
    assert "china-2024" in names
    for name in names:
        sc = load_scenario(name)
        days = TradingCalendar(sc.start_year, sc.last_calendar_year,
                               sc.market.trading_days_per_month).n_days
        assert days < DOCUMENTED_MAX_STEPS, name


def test_rng_is_taken_like_mesa_model_and_reproduced_by_the_seed() -> None:
    """``rng`` instead of ``seed``: an integer is the seed; a SeedSequence or Generator
    gives a seed drawn from it, which reproduces the run; both at once are refused."""
    assert CarbonMarketModel(scenario="classroom", rng=11).seed_value == 11
    first = CarbonMarketModel(scenario="classroom", rng=np.random.SeedSequence(5))
    again = CarbonMarketModel(scenario="classroom", rng=np.random.default_rng(
        np.random.SeedSequence(5)))
    assert first.seed_value == again.seed_value != first.scenario.seed
    by_seed = CarbonMarketModel(scenario="classroom", seed=first.seed_value)
    np.testing.assert_array_equal(first.firms.base_output, by_seed.firms.base_output)
    with pytest.raises(ValueError, match="seed or rng"):
        CarbonMarketModel(scenario="classroom", seed=1, rng=2)


def test_batch_run_close_is_the_days_own_and_last_close_carries() -> None:
    """One row per trading day: ``close`` is the day's close of ``market_daily`` (NaN on a
    day without listed trades, no carried close), ``last_close`` the close carried
    forward from the last day that had one."""
    rows = mesa.batch_run(CarbonMarketModel, parameters={"scenario": "classroom", "seed": 3},
                          iterations=1, max_steps=100_000, data_collection_period=1,
                          number_processes=1, display_progress=False)
    frame = pd.DataFrame(rows).sort_values("Step").reset_index(drop=True)
    daily = CarbonMarketModel("classroom", seed=3).run().results()["market_daily"]
    assert len(frame) == len(daily)
    np.testing.assert_array_equal(frame["close"].to_numpy(), daily["close"].to_numpy())
    assert daily["close"].isna().any()  # the check covers days without a close
    carried = daily["close"].ffill().fillna(daily["reference_price"]).to_numpy()
    np.testing.assert_allclose(frame["last_close"].to_numpy(), carried)


def test_a_model_is_freed_when_dropped_and_its_firms_are_numbered_from_one() -> None:
    """Runs one after the other in one process (a sweep worker, the dashboard) do not
    pile up: nothing keeps a dropped model alive (Mesa 3.3's class-level id counters
    would), and each model's firms still get unique ids 1, 2, ... in order."""
    import gc
    import weakref

    dropped = []
    for seed in (1, 2):
        model = CarbonMarketModel(scenario="classroom", seed=seed)
        model.run()
        ids = [agent.unique_id for agent in model.agents]
        assert ids == list(range(1, len(ids) + 1))
        assert model.results()["firms"]["firm_id"].tolist() == ids
        dropped.append(weakref.ref(model))
        del model
    gc.collect()
    assert all(ref() is None for ref in dropped)
    assert not any(isinstance(key, CarbonMarketModel) for key in mesa.Agent._ids)
