"""etsim: an agent-based simulator of China's national carbon market.

The public Python API::

    from etsim import CarbonMarketModel, load_scenario
    m = CarbonMarketModel(scenario="china-2024", seed=7)
    m.run()
    tables = m.results()

The repository's top-level folders are this package's subpackages: ``etsim.model``
(``model/``: the market and its institutions), ``etsim.agents`` (``agents/``),
``etsim.dashboard``, ``etsim.experiments`` and ``etsim.scenarios``. Names are loaded on
first use, so ``import etsim`` (and ``etsim --help``) does not import Mesa or pandas.
``from etsim import CarbonMarketModel`` imports the model for a run: the garbage collector
paused, the compiled kernels loaded, what the import made then frozen
(``etsim/_process.py``; ``ETSIM_GC_FREEZE=0`` imports as usual).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from etsim import _process

__version__ = "0.1.0"

# In a source checkout the subpackages are the repository's top-level folders beside this
# one, so code run from a checkout (its tests, bench/) uses that checkout's modules; an
# installed wheel has them inside this folder instead.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "model" / "market.py").is_file():
    __path__.append(str(_checkout))

# public name -> module that defines it
_EXPORTS = {
    "CarbonMarketModel": "etsim.model.market",
    "InvariantError": "etsim.model.invariants",
    "Scenario": "etsim.model.scenario",
    "ScenarioError": "etsim.model.scenario",
    "load_scenario": "etsim.model.scenario",
    "shipped_scenarios": "etsim.model.scenario",
    "read_results": "etsim.model.results",
    "write_results": "etsim.model.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name == "CarbonMarketModel":
        # imported for a run: collector paused, kernels loaded, then frozen (_process.py)
        return _process.import_model().CarbonMarketModel
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'etsim' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
