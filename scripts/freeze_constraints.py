"""Print pins (``name==version``) of the installed packages etsim needs, for a constraints file.

    python scripts/freeze_constraints.py > constraints/current.txt

The packages are the checkout's direct dependencies (``pyproject.toml``: the main ones and
the ``test`` extra) and, recursively, what they require in this Python (extras and
environment markers evaluated); nothing else installed in the environment is listed.
Packaging tools are left out (setuptools, which dash requires, is also the build backend:
a pin below pyproject's build requirement ``setuptools>=68`` would break the install when
pip applies constraints to the build, as it does with ``$PIP_CONSTRAINT``).
Check the file afterwards in a fresh virtualenv:
``scripts/check_floors.sh constraints/current.txt``.
"""

from __future__ import annotations

import platform
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
NOT_PINNED = {"pip", "setuptools", "wheel"}


def _direct() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]
            + project["optional-dependencies"]["test"]]


def _needed(requirement: Requirement, extra: str = "") -> bool:
    return requirement.marker is None or requirement.marker.evaluate({"extra": extra})


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    todo = [(r, "") for r in _direct()]
    seen: set[tuple[str, str]] = set()
    while todo:
        requirement, wanted_by_extra = todo.pop()
        if not _needed(requirement, wanted_by_extra):
            continue
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{name} is required but not installed")
        found[name] = dist.version
        for extra in ["", *sorted(requirement.extras)]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in dist.requires or []:
                sub = Requirement(line)
                if extra == "" and sub.marker is not None and "extra" in str(sub.marker):
                    continue  # wanted only with one of the package's extras
                todo.append((sub, extra))
    return found


def main() -> None:
    found = pins()
    print("# The versions etsim's tests pass with (direct and transitive dependencies, the")
    print("# test extra included), for a reproducible install:")
    print('#   pip install -e ".[test]" -c constraints/current.txt')
    print(f"# Python {platform.python_version()} on {platform.system()} {platform.machine()}; "
          "made by scripts/freeze_constraints.py")
    for name in sorted(set(found) - NOT_PINNED):
        print(f"{name}=={found[name]}")


if __name__ == "__main__":
    main()
