"""Writing results (``etsim run``'s folder, a sweep's files): whole or not at all, never
over an existing folder unless asked, and staging leftovers recognisable and removable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from etsim.model.results import (
    TABLES,
    is_temporary,
    read_results,
    remove_temporaries,
    write_file_atomic,
    write_json_atomic,
    write_results,
)

RECORD = {"seed": 3, "scenario": {"name": "tiny"}}


def _tables() -> dict[str, pd.DataFrame]:
    return {name: pd.DataFrame({"year": [2025, 2026], "value": [float(i), i + 0.5]})
            for i, name in enumerate(TABLES)}


def test_results_folder_reads_back_what_was_written(tmp_path: Path) -> None:
    out = write_results(_tables(), RECORD, tmp_path / "runs" / "a")  # parents are made
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.parquet" for name in TABLES] + ["run.json"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["a"]  # no staging left
    tables, record = read_results(out)
    assert list(tables) == list(TABLES) and record == RECORD
    for name, frame in _tables().items():
        assert_frame_equal(tables[name], frame)


def test_a_subset_of_the_tables_reads_back_as_that_subset(tmp_path: Path) -> None:
    kept = {name: frame for name, frame in _tables().items()
            if name in ("market_years", "market_daily")}
    tables, _ = read_results(write_results(kept, RECORD, tmp_path / "run"))
    assert list(tables) == ["market_daily", "market_years"]  # in the order of TABLES


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        write_results(_tables(), RECORD, out)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_replace_swaps_in_the_whole_new_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.parquet").write_bytes(b"half a table")
    write_results(_tables(), RECORD, out, replace=True)
    assert "stale.parquet" not in {p.name for p in out.iterdir()}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    tables = {**_tables(), "trades": pd.DataFrame({"x": [object()]})}  # not storable
    with pytest.raises(ValueError):  # pyarrow's ArrowInvalid
        write_results(tables, RECORD, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_file_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = write_json_atomic(tmp_path / "sweep.json", {"runs": 4})

    def fail(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_file_atomic(target, fail)
    assert json.loads(target.read_text()) == {"runs": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.json"]


def test_files_and_folders_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        folder = write_results(_tables(), RECORD, tmp_path / "run")
        file = write_json_atomic(tmp_path / "sweep.json", {})
    finally:
        os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert file.stat().st_mode & 0o777 == 0o644


def test_leftovers_of_a_killed_writer_are_recognised_and_removed(tmp_path: Path) -> None:
    (tmp_path / ".run-3.1a2b3c4d.tmp").mkdir()
    (tmp_path / ".run-3.1a2b3c4d.tmp" / "firms.parquet").write_bytes(b"")
    (tmp_path / ".summary.parquet.5e6f7a8b.tmp").write_bytes(b"")
    (tmp_path / "run-2").mkdir()
    (tmp_path / ".lock").write_text("")
    assert is_temporary(tmp_path / ".summary.parquet.5e6f7a8b.tmp")
    assert not is_temporary(tmp_path / "run-2") and not is_temporary(tmp_path / ".lock")
    remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "run-2"]
    remove_temporaries(tmp_path / "missing")  # a folder not made yet: nothing to do
