"""The Mesa side of the contract: agents in an AgentSet, defaults, batch_run."""

from __future__ import annotations

import mesa
import pandas as pd

from etsim import CarbonMarketModel


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
