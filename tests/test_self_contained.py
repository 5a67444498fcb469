"""The repository stands on its own: no tracked file cites a file outside it.

The project's calibration facts, policy items and observed prices live in ``docs/`` and
``dashboard/data/``. A reference to the old locations outside the repository (the
calibration sheet ``calibration/china_ets.md`` of the project brief, "MISSION item N",
``DESIGN.md``, ``/work/shared/...``) or to an absolute path on a development machine
means a reader of the repository cannot follow it. The cited places to use instead:
``docs/calibration-facts.md`` ("calibration N"), ``docs/policy.md`` ("policy item N"),
``dashboard/data/cea_daily_close.csv``, and the README's "Results" section or
``docs/ODD.md`` for the results tables and invariants.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# What counts as citing a file outside the repository.
OUTSIDE = {
    "the calibration sheet's old path": re.compile(r"china_ets"),
    "the project brief": re.compile(r"project brief", re.IGNORECASE),
    "a MISSION item": re.compile(r"MISSION items?\b"),
    "MISSION.md": re.compile(r"MISSION\.md"),
    "DESIGN.md": re.compile(r"DESIGN\.md"),
    "the shared folder": re.compile(r"/work/shared"),
    # an absolute path on a development machine (not inside a URL: no word character,
    # dot or tilde right before the slash)
    "an absolute home or work path": re.compile(
        r"(?<![\w.~-])/(?:work|root|home|Users)/|\b[A-Za-z]:\\+Users\\+"
    ),
}



def tracked_files() -> list[str]:
    """The repository's tracked files, or skip when this is not a git checkout."""
    if shutil.which("git") is None:
        pytest.skip("git is not available")
    top = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"],
        capture_output=True, text=True,
    )
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        pytest.skip(f"{ROOT} is not a git checkout")
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    )
    return [name for name in listed.stdout.decode().split("\0") if name]


def text_of(name: str) -> str | None:
    """A tracked file's text (a CSV file's header line only), None for a binary file."""
    path = ROOT / name
    if not path.is_file():  # deleted in the work tree but still tracked
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    if name.endswith(".csv"):
        # data rows cannot cite anything; the header might
        return text.split("\n", 1)[0]
    return text


def citations(name: str) -> list[str]:
    """Each line of a file that cites something outside the repository, as 'file:line'."""
    text = text_of(name)
    if text is None:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in OUTSIDE.items():
            if pattern.search(line):
                found.append(f"{name}:{number}: {what}: {line.strip()}")
    return found


def test_no_tracked_file_cites_a_file_outside_the_repository() -> None:
    exempt = {THIS_FILE}
    found = [hit for name in tracked_files() if name not in exempt for hit in citations(name)]
    assert not found, "cites a file outside the repository:\n" + "\n".join(found)
