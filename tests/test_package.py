"""The installed package: ``import etsim`` is the public API, nothing is installed
under a generic top-level name, and a user's own files do not shadow etsim's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_local_scenarios_folder_and_model_module_do_not_shadow_etsim(tmp_path: Path) -> None:
    # a researcher's own files with the names etsim's folders have in the repository
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "__init__.py").write_text("raise ImportError('local one')\n")
    (tmp_path / "model.py").write_text("raise ImportError('local model.py')\n")
    (tmp_path / "agents.py").write_text("raise ImportError('local agents.py')\n")
    done = _python(
        "from etsim import CarbonMarketModel, load_scenario\n"
        "print(load_scenario('classroom').name, CarbonMarketModel.__module__)", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["classroom", "etsim.model.market"]


def test_nothing_is_installed_under_the_repository_folder_names(tmp_path: Path) -> None:
    names = ["model", "agents", "dashboard", "experiments", "scenarios"]
    done = _python(
        "import importlib.util\n"
        f"print([n for n in {names!r} if importlib.util.find_spec(n) is not None])", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_importing_the_exchange_does_not_load_the_model(tmp_path: Path) -> None:
    done = _python(
        "import sys\nimport etsim.model.exchange\n"
        "print(sorted(m for m in ('mesa', 'etsim.model.market', 'pandas') if m in sys.modules))",
        tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
