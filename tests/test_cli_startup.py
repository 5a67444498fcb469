"""``etsim --help`` and argument errors answer at once: they import none of the heavy
packages (the model's, the dashboard's, the sweep's). Timings are in bench/README.md; here
only what is imported is checked, read from ``python -X importtime``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = {"mesa", "dash", "dask", "pandas", "numpy", "pydantic", "plotly"}


def _imports(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m etsim ARGS`` (this checkout's code); the top-level
    packages it imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "etsim", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=60)
    # lines: "import time: <self us> | <cumulative us> | <indent><module>"
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:")}
    return done, {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["sweep", "--help"]])
def test_help_imports_no_heavy_package(args: list[str], tmp_path: Path) -> None:
    done, imported = _imports(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage: etsim" in done.stdout
    assert "etsim" in imported  # the listing is read correctly
    assert sorted(imported & HEAVY) == []


@pytest.mark.parametrize("args", [
    [],
    ["no-such-command"],
    ["run", "--seed", "x"],
    ["run", "--seed", "-1"],
    ["run", "--set", "penalty.multiple"],
    ["run", "--out", "taken"],
    ["sweep", "experiment.toml", "--workers", "0"],
    ["dashboard", "--port", "0"],
])
def test_argument_errors_exit_2_with_one_line_and_no_heavy_import(args: list[str],
                                                                   tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    done, imported = _imports(*args, cwd=tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert len(errors) == 1 and errors[0].startswith("etsim: error:"), errors
    assert sorted(imported & HEAVY) == []
