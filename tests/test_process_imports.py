"""What a process that runs the model imports: Mesa's spaces and experimental features
(networkx through ``mesa.space``, scipy.spatial through ``mesa.experimental``) are deferred
until a program uses them (``etsim/_mesa_extras.py``), and a program that does use them
gets the same modules as without etsim. Timings are in bench/README.md, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from etsim import _mesa_extras

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh Python with this checkout's etsim; its standard output."""
    environ = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_run_does_not_import_mesas_spaces_or_scipy_spatial() -> None:
    out = _python(
        "import sys, json\n"
        "from etsim import CarbonMarketModel\n"
        "model = CarbonMarketModel(scenario='classroom', seed=1)\n"
        "model.run()\n"
        "model.results()\n"
        "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.startswith("
        "('scipy.spatial', 'scipy.sparse', 'mesa.space', 'mesa.discrete_space.grid', "
        "'mesa.experimental.'))), 'types': {n: type(sys.modules[n]).__name__ for n in "
        "('mesa.space', 'mesa.discrete_space', 'mesa.experimental')}}))\n")
    seen = json.loads(out.splitlines()[-1])
    # mesa.space itself is in sys.modules, deferred; none of its or the others' code ran
    assert seen["loaded"] == ["mesa.space"]
    assert set(seen["types"].values()) == {"DeferredModule"}


# Everything a program could read from the deferred subpackages, with and without etsim
PROBE = """
import json, sys
{first}
import mesa
import mesa.experimental.devs  # a submodule imports as usual
from mesa.discrete_space import OrthogonalMooreGrid
grid = mesa.space.MultiGrid(3, 2, torus=False)
print(json.dumps({{
    "space": sorted(dir(mesa.space)),
    "discrete_space": sorted(dir(mesa.discrete_space)),
    "experimental": sorted(n for n in dir(mesa.experimental) if not n.startswith("__")),
    "doc": (mesa.space.__doc__ or "").split(chr(10))[0],
    "grid": [grid.width, grid.height, OrthogonalMooreGrid.__module__],
    "plain": [type(sys.modules[n]).__name__ for n in
              ("mesa.space", "mesa.discrete_space", "mesa.experimental")],
}}))
"""


def test_a_program_using_mesas_spaces_gets_the_same_modules() -> None:
    deferred = json.loads(_python(PROBE.format(first="import etsim")).splitlines()[-1])
    whole = json.loads(_python(PROBE.format(first="")).splitlines()[-1])
    assert deferred == whole
    assert deferred["doc"] == "Mesa Space Module."
    assert deferred["plain"] == ["module"] * 3  # each became a plain module when used


def test_nothing_is_deferred_when_switched_off_or_mesa_already_imported() -> None:
    probe = ("import sys\n{first}\nimport etsim.model.market\n"
             "print(type(sys.modules['mesa.space']).__name__, 'scipy.spatial' in sys.modules)")
    assert _python(probe.format(first=""), ETSIM_DEFER_MESA="0").split() == ["module", "True"]
    assert _python(probe.format(first="import mesa")).split() == ["module", "True"]


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable package ``etsim_fake_pkg`` with a module that counts its runs, a
    subpackage, and a module that fails."""
    root = tmp_path / "etsim_fake_pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "counted.py").write_text(
        '"""Counted."""\nimport builtins\n'
        "builtins.etsim_fake_runs = getattr(builtins, 'etsim_fake_runs', 0) + 1\n"
        "import time\ntime.sleep(0.05)  # long enough for two threads to meet\nVALUE = 42\n")
    (root / "sub" / "__init__.py").write_text("NAME = 'sub'\n")
    (root / "sub" / "leaf.py").write_text("LEAF = 1\n")
    (root / "broken.py").write_text("raise ImportError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "etsim_fake_pkg"
    for name in [m for m in sys.modules if m.startswith("etsim_fake_pkg")]:
        del sys.modules[name]
    import builtins
    if hasattr(builtins, "etsim_fake_runs"):
        del builtins.etsim_fake_runs


def test_a_deferred_module_runs_once_on_first_use_even_from_two_threads(
        fake_package: str) -> None:
    import builtins

    assert _mesa_extras.defer(fake_package, ("counted", "sub", "missing")) == [
        "etsim_fake_pkg.counted", "etsim_fake_pkg.sub"]
    counted = sys.modules["etsim_fake_pkg.counted"]
    assert isinstance(counted, _mesa_extras.DeferredModule)
    assert not hasattr(builtins, "etsim_fake_runs")  # registered, not run

    values: list[int] = []
    threads = [threading.Thread(target=lambda: values.append(counted.VALUE)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert values == [42, 42]
    assert builtins.etsim_fake_runs == 1
    assert type(counted) is types.ModuleType
    assert counted.__doc__ == "Counted."
    with pytest.raises(AttributeError):
        counted.no_such_name  # noqa: B018  (a missing name is an error, as in any module)

    # a subpackage's submodule imports without running the subpackage first
    import etsim_fake_pkg.sub.leaf as leaf

    assert leaf.LEAF == 1
    assert sys.modules["etsim_fake_pkg.sub"].NAME == "sub"


def test_a_deferred_module_that_fails_raises_and_leaves_nothing_behind(
        fake_package: str) -> None:
    assert _mesa_extras.defer(fake_package, ("broken",)) == ["etsim_fake_pkg.broken"]
    broken = sys.modules["etsim_fake_pkg.broken"]
    with pytest.raises(ImportError, match="broken on purpose"):
        broken.anything  # noqa: B018
    assert "etsim_fake_pkg.broken" not in sys.modules  # as after a failed import
    with pytest.raises(ImportError, match="broken on purpose"):
        import etsim_fake_pkg.broken  # noqa: F401


def test_defer_does_nothing_for_an_imported_or_missing_package(fake_package: str) -> None:
    import etsim_fake_pkg  # noqa: F401

    assert _mesa_extras.defer(fake_package, ("counted",)) == []
    assert _mesa_extras.defer("etsim_no_such_package", ("x",)) == []
