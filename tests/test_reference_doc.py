"""docs/scenario-reference.md documents every key of the scenario schema.

The schema is walked recursively from ``Scenario`` (its sections, ``SectorConfig``,
``AllocationConfig``, ``AbatementOption`` and any model added later), so a key added to
``model/scenario.py`` without a row on the reference page fails here.

The page is expected to hold one heading per table, naming the TOML table in backticks
(``## Market: `[market]` ``, ``## Abatement options: `[[sectors.NAME.abatement]]` ``;
the top level under a heading with "Top-level"), and under it one table row per key,
starting ``| `key` |``.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from etsim.agents.sectors import SECTOR_LIBRARY
from etsim.model.scenario import (
    ALLOCATION_RULE_NAMES,
    RESERVE_POLICY_NAMES,
    STRATEGY_NAMES,
    Scenario,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenario-reference.md"
HEADING = re.compile(r"^#{1,6}\s")
TABLE_NAME = re.compile(r"`(\[\[?[A-Za-z0-9_.*]+\]\]?)`")


def _models_in(annotation: typing.Any) -> list[tuple[type[BaseModel], str]]:
    """Pydantic models inside an annotation, each with how it nests ('', 'dict', 'list')."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return [(model, "dict") for model, _ in _models_in(args[1])]
    if origin in (list, tuple, set, frozenset):
        return [(model, "list") for arg in args for model, _ in _models_in(arg)]
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return [found for arg in args for found in _models_in(arg)]
    return []


def schema_tables() -> dict[str, tuple[type[BaseModel], list[str]]]:
    """Every TOML table of the schema: its path ('' = top level) -> (model, keys)."""
    tables: dict[str, tuple[type[BaseModel], list[str]]] = {}

    def walk(model: type[BaseModel], path: str) -> None:
        tables[path] = (model, list(model.model_fields))
        for key, field in model.model_fields.items():
            for child, nesting in _models_in(field.annotation):
                child_path = f"{path}.{key}" if path else key
                if nesting == "dict":
                    # the only table of tables is sectors: its keys are sector names
                    child_path += ".NAME"
                if nesting == "list":
                    child_path = f"[{child_path}]"  # array of tables: [[...]]
                walk(child, child_path)

    walk(Scenario, "")
    return tables


def doc_sections(text: str) -> dict[str, str]:
    """The page split at headings: TOML table path ('' = top level) -> section text."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if HEADING.match(line):
            match = TABLE_NAME.search(line)
            if match:
                name = match.group(1)
                # "[market]" -> "market"; "[[sectors.NAME.abatement]]" -> "[sectors...]"
                current = name[1:-1]
            elif "top-level" in line.lower():
                current = ""
            else:
                current = None if line.startswith("## ") else current
            if current is not None:
                sections.setdefault(current, [])
            continue
        if current is not None:
            sections[current].append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def _all_keys() -> list[tuple[str, str]]:
    return [(path, key) for path, (_, keys) in schema_tables().items() for key in keys]


def test_the_walk_finds_every_model() -> None:
    names = {model.__name__ for model, _ in schema_tables().values()}
    assert {"Scenario", "SectorConfig", "AllocationConfig", "AbatementOption"} <= names
    assert {"MarketConfig", "ComplianceConfig", "ReservePoolConfig"} <= names
    assert "[sectors.NAME.abatement]" in schema_tables()


def test_every_table_has_a_section() -> None:
    sections = doc_sections(DOC.read_text(encoding="utf-8"))
    missing = [path or "(top level)" for path in schema_tables() if path not in sections]
    assert not missing, f"docs/scenario-reference.md has no section for: {missing}"


@pytest.mark.parametrize(("path", "key"), _all_keys(), ids=lambda v: v or "top")
def test_every_key_is_documented(path: str, key: str) -> None:
    sections = doc_sections(DOC.read_text(encoding="utf-8"))
    section = sections.get(path, "")
    row = re.compile(rf"^\|\s*`{re.escape(key)}`\s*\|", re.MULTILINE)
    where = f"[{path}]" if path else "the top-level table"
    assert row.search(section), f"key '{key}' of {where} has no row in scenario-reference.md"


def test_every_documented_key_exists() -> None:
    """No stale rows: every key row in a table section names a key of that table."""
    tables = schema_tables()
    sections = doc_sections(DOC.read_text(encoding="utf-8"))
    stale = []
    for path, (_, keys) in tables.items():
        # only the first table of a section lists keys; later tables list sector data
        first_table = re.search(r"^\| key \|.*?(?=^\s*$)", sections.get(path, ""), re.M | re.S)
        if first_table is None:
            continue
        for key in re.findall(r"^\|\s*`([A-Za-z0-9_]+)`\s*\|", first_table.group(0), re.M):
            if key not in keys:
                stale.append(f"{path or '(top level)'}.{key}")
    assert not stale, f"documented keys that are not in the schema: {stale}"


def test_allowed_names_and_sectors_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = [*ALLOCATION_RULE_NAMES, *RESERVE_POLICY_NAMES, *STRATEGY_NAMES, *SECTOR_LIBRARY]
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"not documented in scenario-reference.md: {missing}"


def test_per_sector_defaults_table_matches_the_library() -> None:
    """The table of main per-sector defaults shows the library's current values."""
    text = DOC.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| sector | label |"))
    columns = [c.strip().split(" ")[0] for c in header.strip("|").split("|")]
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\|\s*`([a-z_]+)`\s*\|", line)
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if match and len(cells) == len(columns) and match.group(1) in SECTOR_LIBRARY:
            rows.setdefault(match.group(1), dict(zip(columns, cells, strict=True)))
    assert set(rows) == set(SECTOR_LIBRARY)
    for name, row in rows.items():
        library = SECTOR_LIBRARY[name]
        for key in (
            "enabled",
            "entry_year",
            "firms",
            "unit",
            "output_per_firm",
            "benchmark",
            "benchmark_base_year",
            "label",
        ):
            shown = row[key]
            value = library[key]
            if isinstance(value, bool):
                assert shown == str(value).lower(), (name, key)
            elif isinstance(value, int | float):
                assert float(shown.replace(",", "")) == pytest.approx(value), (name, key)
            else:
                assert shown == value, (name, key)
