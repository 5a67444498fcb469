"""Replay a recorded classroom session from its order log.

The log holds every input the class gave the market, in the order it came: which seats
the students held (``control``), their abatement choices (``abatement``), each order
they placed (``order``) and cancelled (``cancel`` by ``student``), each day's ``open``
and ``close``, and, between them, each agent order as it arrived in the book (``enter``
by ``agent``, with its number ``seq`` in the day's flow). The model, the agents and their
orders are drawn from the seed, so running the same scenario and seed with these inputs
at the same places in the agents' flow gives the same books and trades. Everything else
in the log (students' orders entering a book, cancels by the classroom, trades) follows
from the inputs and is checked by comparing the replay's log with the recording.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from etsim.dashboard.classroom.engine import ClassroomSession
from etsim.model.results import read_json_file
from etsim.model.scenario import build_scenario


class ReplaySession(ClassroomSession):
    """A classroom session driven by a recorded order log instead of students.

    Args:
        order_log: The recorded session's ``order_log`` table.
        scenario: Its scenario (name, path or Scenario).
        seats: Its number of seats.
        seed: Its seed.
    """

    def __init__(self, order_log: pd.DataFrame, scenario: Any, seats: int,
                 seed: int | None) -> None:
        super().__init__(scenario, seats=seats, pace=0, seed=seed)
        self.recorded = order_log.reset_index(drop=True)

    def run(self) -> ReplaySession:
        """Replay the recorded inputs in order, then run to the end of the calendar."""
        for row in self.recorded.to_dict("records"):
            self._apply(row)
            if self.status == "finished":
                break
        while self.status != "finished":  # the lesson ended before the calendar did
            self._close_day()
        return self

    def _apply(self, row: dict[str, Any]) -> None:
        event, by = row["event"], row["by"]
        seat = None if pd.isna(row["seat"]) else self.seats[int(row["seat"])]
        if event == "open":
            self._open_day()
        elif event == "close":
            self._close_day()
        elif event == "enter" and by == "agent":
            self._feed_to(int(row["seq"]) + 1)
        elif event == "control" and seat is not None:
            if by == "student":
                self._take_seat(seat)
            else:
                self._hand_to_agent(seat, str(row["note"]))
        elif event == "abatement" and seat is not None:
            text = row["options"]
            seat.abatement_choice = ([int(k) for k in str(text).split(",")]
                                     if isinstance(text, str) and text else [])
            self._log("abatement", day=self.model.day, seat=seat.index,
                      firm_id=seat.firm_id, by="student", options=text)
        elif event == "order" and seat is not None:
            self._accept(seat, int(row["side"]), int(row["quantity"]), float(row["price"]),
                         bool(row["keep"]))
        elif event == "cancel" and by == "student":
            order = self.student_orders[int(row["order_id"])]
            if order.status == "working":
                self._cancel(order, "student", "cancelled by the student")


def replay_folder(folder: str | Path) -> ReplaySession:
    """Replay the session exported into ``folder`` (``ClassroomSession.export``)."""
    folder = Path(folder)
    record = read_json_file(folder / "run.json")
    log = pd.read_parquet(folder / "order_log.parquet")
    scenario = build_scenario(record["scenario"], "run.json", None, None)
    return ReplaySession(log, scenario, len(record["classroom"]["seats"]),
                         record["seed"]).run()
