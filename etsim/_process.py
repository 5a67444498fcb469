"""Importing the model for a run: the garbage collector, and the compiled kernels.

A process that runs the model holds about 200,000 objects tracked by Python's cyclic
garbage collector, most of them made by imports (numba and its typing registries, pandas,
Mesa, pydantic, etsim) and alive until the process ends. Each full collection walks all
of them (0.05-0.15 s on the 2-core machine of bench/README.md), and a fresh china-2024
process made eight: two while importing, one while loading the compiled kernels, one
while building the model, and four at exit, where Python takes the imported modules apart
object by object (0.4-0.5 s of exit); about 0.9 s of a 4 s process in all.

``import_model()``, which ``from etsim import CarbonMarketModel`` calls (once per process):

1. imports the model's modules with the collector paused (imports make long-lived objects
   and almost no garbage), Mesa first and in the order ``MesaImport`` describes;
2. loads the compiled kernels from numba's cache (``warm_up``), which the first run would
   otherwise do (on a machine's first run they compile here, with the collector on);
3. freezes what exists (``gc.freeze``): later collections, and Python's at exit, skip
   it, as they should skip what lives as long as the process. The model, its run and
   its tables are made afterwards and collected as usual, at exit too.

Objects the program made before this import are frozen with the rest: if one of them later
becomes garbage in a reference cycle, the cyclic collector leaves it (``gc.unfreeze()``
returns all frozen objects to it), and at exit Python does not run the finalizers of
those still alive in reference cycles (a file held in such a cycle and never closed is not
flushed; Python does not promise those finalizers at exit either). Importing
``etsim.model.market`` directly, or ``ETSIM_GC_FREEZE=0``, imports as usual: nothing is
paused or frozen and the kernels load at the first run.
"""

from __future__ import annotations

import gc
import importlib.machinery
import importlib.util
import os
import sys
from importlib import import_module
from importlib.machinery import ModuleSpec
from types import ModuleType

MODEL = "etsim.model.market"


def enabled() -> bool:
    """Whether ``import_model`` pauses and freezes (``ETSIM_GC_FREEZE``, default on)."""
    return os.environ.get("ETSIM_GC_FREEZE", "1") != "0"


COMPILING = ("etsim: compiling the model's kernels for this machine, once (about 15-30 s; "
             "later processes load them from the cache)")


def kernels_cached() -> bool | None:
    """Whether the compiled kernels a run calls first are in numba's on-disk cache: False
    when one has never been compiled here, None when numba's cache cannot be read (its
    layout is numba's own, not a public interface)."""
    from etsim.agents import positions, strategies
    from etsim.model import _kernels

    try:
        return all(os.path.exists(kernel._cache._cache_file._index_path) for kernel in (
            strategies.day_orders, positions._day_positions, _kernels.session_day))
    except AttributeError:
        return None


def load_kernels() -> None:
    """Load (or, on a machine's first run, compile) the kernels a run calls: the order
    book's and settlement's when the engine is ``compiled``, and the order formation's
    and positions' whatever the engine. Compiling takes a while, so it is said first,
    on standard error."""
    from etsim.agents import positions, strategies
    from etsim.model import matching

    if kernels_cached() is False:
        print(COMPILING, file=sys.stderr, flush=True)
    kernels = matching.kernels()  # None with ETSIM_ENGINE=python
    if kernels is not None:
        kernels.warm_up()
    strategies.warm_up()
    positions.warm_up()


class MesaImport:
    """How ``import_model`` imports Mesa (``import mesa``): two changes of order, no
    module replaced.

    - ``mesa.model`` first, before ``mesa/__init__.py`` imports Mesa's spaces and
      experimental packages: the model module names its logger by walking the call stack
      (``inspect.stack()``), which reads every loaded module for each import frame, so it
      costs least while few are loaded.
    - ``mesa.experimental.continuous_space`` loaded when first used
      (``importlib.util.LazyLoader``): it imports ``scipy.spatial`` (0.13-0.17 s), which
      etsim does not use. Any use of the package loads it then, as an import would.

    A meta path finder, on ``sys.meta_path`` only while Mesa is imported; where Mesa's
    layout differs it changes nothing.
    """

    FIRST = "mesa.discrete_space"  # the first module Mesa's __init__ imports (3.3)
    LAZY = frozenset({"mesa.experimental.continuous_space"})

    @classmethod
    def find_spec(cls, name: str, path: list[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        """The spec of a module of ``LAZY`` (loaded when used); None for any other
        module, after importing ``mesa.model`` when ``name`` is ``FIRST``."""
        if name == cls.FIRST and "mesa.model" not in sys.modules:
            import_module("mesa.model")
            return None
        if name not in cls.LAZY:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader,
                                                                     "exec_module"):
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def import_mesa() -> None:
    """``import mesa``, in the order ``MesaImport`` describes."""
    if "mesa" in sys.modules:
        return
    sys.meta_path.insert(0, MesaImport)
    try:
        import_module("mesa")
    finally:
        sys.meta_path.remove(MesaImport)


def import_model() -> ModuleType:
    """Import the model's module for a run (the module docstring says how); a module
    already imported is returned as it is."""
    module = sys.modules.get(MODEL)
    if module is not None:
        return module
    if not enabled():
        return import_module(MODEL)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        # Mesa first, its model module before the rest of it (MesaImport says why)
        import_mesa()
        module = import_module(MODEL)
    finally:
        if was_enabled:
            gc.enable()
    try:
        load_kernels()
    except Exception:  # the run loads them again and reports what failed
        pass
    gc.freeze()
    return module
