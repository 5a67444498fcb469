"""The market and its institutions: scenario schema, allocation, registry, exchange,
MRV, reserve pool, equilibrium solver, and the Mesa model that ties them together."""

from model.market import CarbonMarketModel, InvariantError
from model.scenario import Scenario, ScenarioError, load_scenario, shipped_scenarios

__all__ = [
    "CarbonMarketModel",
    "InvariantError",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "shipped_scenarios",
]
