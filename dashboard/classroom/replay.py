"""Replay a recorded classroom session from its order log.

The log holds every input the students gave the market: which seats they held on each
trading day (``control``), their abatement choices (``abatement``) and every order of
theirs that entered a day's book, with its arrival time (``enter`` by ``student``). The
model, the agents and the agents' arrival times are drawn from the seed, so running the
same scenario and seed with these inputs gives the same orders, books and trades.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from etsim.dashboard.classroom.engine import ClassroomSession, StudentOrder
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
        log = order_log
        self.inputs: dict[int, list[dict[str, Any]]] = {}
        for row in log.to_dict("records"):
            event, by = row["event"], row["by"]
            keep = (event in ("control", "abatement") and not pd.isna(row["seat"])) or (
                event == "enter" and by == "student")
            if keep:
                self.inputs.setdefault(int(row["day"]), []).append(row)
        self.recorded_trades = log[log["event"] == "trade"].reset_index(drop=True)
        self._replayed: list[tuple[StudentOrder, float]] = []

    def _entries(self, day: int, now: float, window: float
                 ) -> list[tuple[StudentOrder, float]]:
        return self._replayed

    def run(self) -> ReplaySession:
        """Replay every recorded day up to the end of the calendar."""
        while self.status != "finished":
            day = self.model.day
            entries = []
            for row in self.inputs.get(day, []):
                seat = self.seats[int(row["seat"])]
                if row["event"] == "control":
                    seat.control = "student" if row["by"] == "student" else "agent"
                    self.firms[seat.row] = seat.control == "student"
                elif row["event"] == "abatement":
                    text = row["options"]
                    seat.abatement_choice = ([int(k) for k in str(text).split(",")]
                                             if isinstance(text, str) and text else [])
                else:
                    order = StudentOrder(int(row["order_id"]), seat.index, seat.row,
                                         int(row["side"]), int(row["quantity"]),
                                         float(row["price"]), False, day, 0.0,
                                         int(row["quantity"]))
                    entries.append((order, float(row["arrival"])))
            # the live session lists them oldest order first (stable at equal times)
            self._replayed = sorted(entries, key=lambda e: e[0].order_id)
            self._close_day()
        return self


def replay_folder(folder: str | Path) -> ReplaySession:
    """Replay the session exported into ``folder`` (``ClassroomSession.export``)."""
    folder = Path(folder)
    record = read_json_file(folder / "run.json")
    log = pd.read_parquet(folder / "order_log.parquet")
    scenario = build_scenario(record["scenario"], "run.json", None, None)
    return ReplaySession(log, scenario, len(record["classroom"]["seats"]),
                         record["seed"]).run()
