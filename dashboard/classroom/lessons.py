"""Recorded lessons on the Market page: an exported classroom session's books, with the
students' orders and trades marked by who placed them.

A lesson folder is what ``ClassroomSession.export`` writes: the results tables (every
trading day's book in ``book_events``), ``order_log.parquet`` and ``run.json`` with the
class's seats. The Market page lists the lessons named by ``etsim dashboard --lesson
DIR`` (kept in the environment variable ``ETSIM_LESSONS``, folders separated by
``os.pathsep``) and those in ``runs/`` of the folder the dashboard was started in (where
``etsim classroom`` exports by default).

Who placed each order: the order log's ``enter`` rows name, for each order that entered
a day's book, its session, its id in that book (``book_id``) and whether a student
(which seat) or an agent placed it; ``book_events`` has the same ids. Each trade row of
the log says whether its buyer and its seller were students, in the books' order of
execution, the order of ``book_events``' trades.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from etsim.model.results import ResultsError, read_json_file, read_results

LESSONS_ENV = "ETSIM_LESSONS"
NEEDED = ("run.json", "order_log.parquet", "book_events.parquet", "market_daily.parquet")


class LessonError(ValueError):
    """A folder that is not an exported lesson, with what is missing."""


@dataclass(frozen=True)
class Lesson:
    """An exported lesson, read back.

    Attributes:
        folder: Where it is.
        tables: Its results tables.
        record: Its ``run.json``.
        order_log: Its order log.
        names: Seat number -> the student's name.
        label: One line saying which lesson this is.
    """

    folder: Path
    tables: dict[str, pd.DataFrame]
    record: dict[str, Any]
    order_log: pd.DataFrame
    names: dict[int, str]
    label: str


def check_lesson(folder: str | Path) -> Path:
    """The folder, if it holds an exported lesson.

    Raises:
        LessonError: It is missing, is not a folder, lacks a lesson's files or its
            ``run.json`` has no class in it; the message names the folder and the file.
    """
    path = Path(folder)
    if not path.is_dir():
        raise LessonError(f"--lesson {folder}: no such folder (give a folder that "
                          "'etsim classroom' exported)")
    for name in NEEDED:
        if not (path / name).is_file():
            raise LessonError(f"--lesson {folder}: {name} is missing (not a lesson that "
                              "'etsim classroom' exported)")
    try:
        record = read_json_file(path / "run.json")
    except ResultsError as err:
        raise LessonError(f"--lesson {folder}: {err}") from None
    if not isinstance(record.get("classroom"), dict):
        raise LessonError(f"--lesson {folder}: run.json has no 'classroom' section (a "
                          "run's results, not a lesson's)")
    return path


def lesson_folders(cwd: Path | None = None) -> list[Path]:
    """The lessons to offer: those named in ``ETSIM_LESSONS`` first, then the lesson
    folders in ``runs/`` (newest first); folders that are not lessons are left out."""
    named = named_lessons()
    runs = (cwd or Path.cwd()) / "runs"
    found = sorted((p for p in runs.glob("*") if (p / "order_log.parquet").is_file()),
                   key=lambda p: p.stat().st_mtime, reverse=True) if runs.is_dir() else []
    chosen: list[Path] = []
    for path in [*named, *found]:
        try:
            check_lesson(path)
        except LessonError:
            continue
        if all(path.resolve() != p.resolve() for p in chosen):
            chosen.append(path)
    return chosen


def named_lessons() -> list[Path]:
    """The folders named by ``etsim dashboard --lesson`` (``ETSIM_LESSONS``)."""
    return [Path(p) for p in os.environ.get(LESSONS_ENV, "").split(os.pathsep) if p]


def default_lesson() -> str:
    """The lesson the Market page opens on: the first one named that is a lesson, or
    "" (the session's run)."""
    for path in named_lessons():
        try:
            return str(check_lesson(path))
        except LessonError:
            continue
    return ""


def lesson_options(cwd: Path | None = None) -> list[dict[str, str]]:
    """The Market page's lesson picker: the session's run, then each lesson."""
    return [{"label": "The session's run (Explore)", "value": ""}] + [
        {"label": f"Lesson: {path.name}", "value": str(path)} for path in lesson_folders(cwd)]


def load_lesson(folder: str | Path) -> Lesson:
    """Read a lesson (cached while its files are unchanged).

    Raises:
        LessonError: Not a lesson, or a file of it cannot be read.
    """
    path = check_lesson(folder)
    stamp = (path / "order_log.parquet").stat().st_mtime_ns
    return _load(str(path.resolve()), stamp)


@lru_cache(maxsize=4)
def _load(folder: str, _stamp: int) -> Lesson:
    path = Path(folder)
    try:
        tables, record = read_results(path)
        log = pd.read_parquet(path / "order_log.parquet")
    except (ResultsError, OSError, ValueError) as err:
        raise LessonError(f"lesson {path.name}: {err}") from None
    seats = record["classroom"].get("seats", [])
    names = {int(s["seat"]): str(s.get("name") or f"seat {s['seat']}") for s in seats}
    taken = [n for s, n in sorted(names.items()) if not n.startswith("seat ")]
    label = (f"Lesson {path.name}: scenario {record.get('scenario', {}).get('name', '?')}, "
             f"seed {record.get('seed')}, students {', '.join(taken) or 'none'}")
    return Lesson(path, tables, record, log, names, label)


def student_days(lesson: Lesson) -> set[str]:
    """Dates (YYYY-MM-DD) on which a student's order entered a book."""
    log = lesson.order_log
    rows = log[(log["event"] == "enter") & (log["by"] == "student")]
    return set(rows["date"].astype(str))


def mark_events(lesson: Lesson, events: pd.DataFrame) -> pd.DataFrame:
    """One session's ``book_events`` with who acted: ``trader_label`` on orders,
    ``buyer_label`` and ``seller_label`` on trades ("student Ada (firm 3)" or "agent
    (firm 7)")."""
    if events.empty:
        return events.assign(trader_label=None, buyer_label=None, seller_label=None)
    log = lesson.order_log
    date = f"{pd.Timestamp(events['date'].iloc[0]):%Y-%m-%d}"
    session = str(events["session"].iloc[0])
    mine = log[(log["date"].astype(str) == date) & (log["session"] == session)]
    entered = mine[(mine["event"] == "enter") & (mine["by"] == "student")]
    seat_of = {int(r.book_id): int(r.seat) for r in entered.itertuples()
               if pd.notna(r.book_id) and pd.notna(r.seat) and r.book_id >= 0}
    seat_by_firm = {int(x["firm_id"]): int(x["seat"])
                    for x in lesson.record["classroom"].get("seats", [])}
    trades = mine[mine["event"] == "trade"]

    def label(firm: Any, by: str | None, seat: int | None) -> str:
        if by == "student" and seat is not None:
            return f"student {lesson.names.get(seat, f'seat {seat}')} (firm {int(firm)})"
        return f"agent (firm {int(firm)})"

    out = events.copy()
    trader, buyer, seller = [], [], []
    trade_by = list(zip(trades["buyer_by"], trades["seller_by"], strict=True))
    k = 0
    for row in out.itertuples():
        t = b = s = None
        if row.event in ("order", "carry"):
            seat = seat_of.get(int(row.order_id))
            t = label(row.trader_id, "student" if seat is not None else "agent", seat)
        elif row.event == "trade":
            b_by, s_by = trade_by[k] if k < len(trade_by) else ("agent", "agent")
            k += 1
            b = label(row.buyer_id, b_by, seat_by_firm.get(int(row.buyer_id)))
            s = label(row.seller_id, s_by, seat_by_firm.get(int(row.seller_id)))
        trader.append(t)
        buyer.append(b)
        seller.append(s)
    return out.assign(trader_label=trader, buyer_label=buyer, seller_label=seller)
