"""``from etsim import CarbonMarketModel`` imports the model for a run
(``etsim/_process.py``): the kernels are loaded, what the import made is frozen out of the
garbage collector's way, the collector is on again, and the runs are the same as with a
plain import. Timings are in bench/README.md, not here."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etsim import _process

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import gc, json, logging, random, sys, weakref
frozen_at_start = gc.get_freeze_count()  # 0, or the interpreter's own (375 on 3.12.1)
from etsim import CarbonMarketModel
from etsim.agents import strategies
state = {"frozen": gc.get_freeze_count() - frozen_at_start, "gc_on": gc.isenabled(),
         "kernels_loaded": len(strategies.day_orders.signatures) > 0,
         "scipy_spatial": "scipy.spatial" in sys.modules,
         "mesa_model_logger": "MESA.mesa.model" in logging.Logger.manager.loggerDict}
class Node:  # in a reference cycle: only the cyclic collector frees it
    def __init__(self):
        self.me = self
gone = weakref.ref(Node())
gc.collect()
state["later_cycle_collected"] = gone() is None
model = CarbonMarketModel(scenario="classroom", seed=4)
model.run()
daily = model.results()["market_daily"]
state["close"] = daily["close"].round(6).fillna(-1).tolist()
state["volume"] = daily["volume"].tolist()
state["scipy_spatial_after_run"] = "scipy.spatial" in sys.modules
from mesa.experimental.continuous_space import ContinuousSpace
state["continuous_space"] = ContinuousSpace([[0, 1], [0, 1]], random=random.Random(0)).size.tolist()
state["scipy_spatial_when_used"] = "scipy.spatial" in sys.modules
print(json.dumps(state))
"""


def _probe(**env: str) -> dict:
    environ = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def probes() -> tuple[dict, dict]:
    """What a process sees after importing for a run, and after a plain import."""
    return _probe(), _probe(ETSIM_GC_FREEZE="0")


def test_importing_for_a_run_loads_kernels_and_freezes_and_runs_the_same(
        probes: tuple[dict, dict]) -> None:
    quiet, plain = probes
    # the imported modules' objects (tens of thousands) are out of the collector's way
    # ("frozen": how many the import froze, beyond what the interpreter starts with)
    assert quiet["frozen"] > 50_000
    assert quiet["gc_on"] and quiet["kernels_loaded"]
    # what the program makes afterwards is collected as usual (a dashboard's runs)
    assert quiet["later_cycle_collected"] and plain["later_cycle_collected"]
    # a plain import: nothing frozen, the kernels wait for the first run
    assert plain["frozen"] == 0 and plain["gc_on"] and not plain["kernels_loaded"]
    assert quiet["close"] == plain["close"] and quiet["volume"] == plain["volume"]
    assert sum(quiet["volume"]) > 0


def test_importing_for_a_run_leaves_mesas_continuous_space_until_it_is_used(
        probes: tuple[dict, dict]) -> None:
    """Mesa's continuous space (and the scipy.spatial it imports) loads when used, not
    with Mesa; Mesa is otherwise as imported plainly (its model's logger named alike)."""
    quiet, plain = probes
    assert plain["scipy_spatial"]  # Mesa's own __init__ imports it
    assert not quiet["scipy_spatial"] and not quiet["scipy_spatial_after_run"]
    assert quiet["continuous_space"] == plain["continuous_space"] == [1, 1]
    assert quiet["scipy_spatial_when_used"]
    assert quiet["mesa_model_logger"] and plain["mesa_model_logger"]


def test_mesa_import_hook_touches_no_other_module() -> None:
    assert _process.MesaImport.find_spec("numpy") is None
    assert _process.MesaImport.find_spec("mesa.space") is None
    assert _process.MesaImport not in sys.meta_path


def test_a_failed_import_leaves_the_collector_on(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etsim_fake_model.py").write_text("raise RuntimeError('no model here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_process, "MODEL", "etsim_fake_model")
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="no model here"):
        _process.import_model()
    assert gc.isenabled()
    assert "etsim_fake_model" not in sys.modules


def test_the_kernels_cache_is_found_and_a_first_compile_is_announced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A process whose kernels are not in numba's cache says, on standard error, that it
    compiles them (the wait is long); one whose kernels are cached says nothing."""
    code = ("from etsim import _process; from etsim.agents import strategies; "
            "print(_process.kernels_cached())")
    environ = {**os.environ, "PYTHONPATH": str(REPO), "ETSIM_GC_FREEZE": "0"}
    # loaded (compiled if this checkout has never run them), then cached
    warm = subprocess.run([sys.executable, "-c", "from etsim import _process; "
                           "_process.load_kernels(); " + code], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=600)
    assert warm.stdout.split()[-1] == "True", warm.stderr
    cold = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                          env={**environ, "NUMBA_CACHE_DIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert cold.stdout.split()[-1] == "False", cold.stderr
    # the announcement, without compiling anything here
    monkeypatch.setattr(_process, "kernels_cached", lambda: False)
    from etsim.agents import positions, strategies
    from etsim.model import matching
    monkeypatch.setattr(matching, "kernels", lambda: None)
    monkeypatch.setattr(strategies, "warm_up", lambda: None)
    monkeypatch.setattr(positions, "warm_up", lambda: None)
    _process.load_kernels()
    assert _process.COMPILING in capsys.readouterr().err
    monkeypatch.setattr(_process, "kernels_cached", lambda: True)
    _process.load_kernels()
    assert capsys.readouterr().err == ""
