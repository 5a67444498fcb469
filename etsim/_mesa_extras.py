"""Mesa's spaces and experimental features, imported on first use instead of with Mesa.

``import mesa`` (Mesa 3.3) imports all of Mesa: its spaces (``mesa.space``,
``mesa.discrete_space``) and ``mesa.experimental`` (its continuous space loads
``scipy.spatial`` and with it ``scipy.sparse``), about 0.3 s of CPU of a process's
start-up (quiet machine, `bench/README.md`) that etsim never uses (networkx, which
``mesa.space`` also loads, etsim loads itself): a ``CarbonMarketModel`` is a ``mesa.Model``
whose firms are ``mesa.Agent``s in an ``AgentSet``, recorded by a ``mesa.DataCollector``,
with no space. Before etsim's model first imports Mesa, ``defer()`` registers those
three subpackages as deferred modules: the module object is in ``sys.modules`` with its
import metadata (``__spec__``, ``__file__``, ``__path__``), and its code runs on the
first access of any other attribute (``mesa.space.MultiGrid``,
``from mesa.discrete_space import OrthogonalMooreGrid``, ``dir(mesa.experimental)``), so
a program that uses them gets exactly the modules it would have had; only the moment
they load changes. Submodules (``import mesa.experimental.devs``) import as usual.

Nothing is deferred when Mesa is already imported, when ``ETSIM_DEFER_MESA=0``, or when
Mesa's files are not where its package says (a zipped or frozen install): Mesa is then
imported whole, as before. ``importlib.util.LazyLoader`` cannot do this: the ``import
mesa.space as space`` in Mesa's ``__init__`` reads the module's ``__spec__``, which makes
a lazily loaded module run at once. A thread that uses a deferred module while another
runs its code waits for it, under one lock (``_lock``), as an import would.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from _thread import RLock

#: Mesa's subpackages that etsim does not use, deferred until first used.
DEFERRED = ("space", "discrete_space", "experimental")

_lock = RLock()
_running: set[str] = set()  # deferred modules whose code is running


class DeferredModule(types.ModuleType):
    """A module whose code runs on the first access of an attribute it does not yet have.

    Only the import metadata is set until then; ``__getattr__`` (called for missing
    attributes only) and ``__dir__`` run the module's code in place, in this module
    object, and turn it into a plain module.
    """

    def __getattr__(self, name: str) -> object:
        _execute(self)
        return types.ModuleType.__getattribute__(self, name)

    def __dir__(self) -> list[str]:
        _execute(self)
        return list(self.__dict__)


def _docstring(module: types.ModuleType) -> str | None:
    _execute(module)
    return module.__dict__.get("__doc__")


# the module's own docstring (help(), pydoc) comes with its code
DeferredModule.__doc__ = property(_docstring)  # type: ignore[assignment]


def _execute(module: types.ModuleType) -> None:
    """Run a deferred module's code, once: another thread that needs it meanwhile waits
    for it (as for an import); an access from the module's own code while it runs finds
    what it has defined so far (as in a module being imported)."""
    with _lock:
        name = module.__spec__.name
        if type(module) is not DeferredModule or name in _running:
            return
        _running.add(name)
        spec = module.__spec__
        spec._initializing = True  # as importlib marks a module whose code is running
        try:
            spec.loader.exec_module(module)
        except BaseException:
            # as after a failed import: no half-made module left behind
            if sys.modules.get(name) is module:
                del sys.modules[name]
            raise
        finally:
            spec._initializing = False
            _running.discard(name)
            module.__class__ = types.ModuleType  # from here on, a plain module


def defer(package: str = "mesa", names: tuple[str, ...] = DEFERRED) -> list[str]:
    """Register ``package``'s subpackages ``names`` as deferred modules, before the package
    is imported; the names deferred (none if the package is already imported, not
    installed as plain files, or ``ETSIM_DEFER_MESA=0``)."""
    if package in sys.modules or os.environ.get("ETSIM_DEFER_MESA", "1") == "0":
        return []
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.origin or not spec.submodule_search_locations:
        return []
    folder = os.path.dirname(spec.origin)
    deferred = []
    for name in names:
        full = f"{package}.{name}"
        if full in sys.modules:
            continue
        sub = os.path.join(folder, name)
        is_package = os.path.isfile(os.path.join(sub, "__init__.py"))
        path = os.path.join(sub, "__init__.py") if is_package else sub + ".py"
        if not os.path.isfile(path):
            continue
        sub_spec = importlib.util.spec_from_file_location(
            full, path, submodule_search_locations=[sub] if is_package else None)
        if sub_spec is None or sub_spec.loader is None:
            continue
        module = importlib.util.module_from_spec(sub_spec)
        module.__class__ = DeferredModule
        sys.modules[full] = module
        deferred.append(full)
    return deferred
