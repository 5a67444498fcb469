"""Fixed bugs in reading files and showing runs: a scenario file saved with a UTF-8
byte-order mark, ``etsim report`` on tables without the columns it reads, and the
deadline marks of multi-year compliance periods."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from etsim.model.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "scenarios"
BOM = b"\xef\xbb\xbf"  # what Windows Notepad puts before UTF-8 text


def test_scenario_file_with_a_utf8_byte_order_mark_loads_as_without(tmp_path: Path) -> None:
    """A scenario saved with a byte-order mark is the same scenario as without it."""
    text = (SHIPPED / "classroom.toml").read_bytes()
    (tmp_path / "plain.toml").write_bytes(text)
    (tmp_path / "marked.toml").write_bytes(BOM + text)
    plain = load_scenario(tmp_path / "plain.toml")
    marked = load_scenario(tmp_path / "marked.toml")
    assert marked.digest() == plain.digest()
    assert marked.name == "classroom"


def test_validate_accepts_a_scenario_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    """``etsim validate`` on such a file exits 0, with no complaint about the mark."""
    (tmp_path / "marked.toml").write_bytes(BOM + (SHIPPED / "classroom.toml").read_bytes())
    done = subprocess.run([sys.executable, "-m", "etsim", "validate",
                           str(tmp_path / "marked.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
