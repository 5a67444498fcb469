"""Fixed bugs in reading files and showing runs: a scenario file saved with a UTF-8
byte-order mark, ``etsim report`` on tables without the columns it reads, and the
deadline marks of multi-year compliance periods."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from etsim.dashboard.runs import deadline_dates
from etsim.model.calendar import TradingCalendar
from etsim.model.compliance import Compliance
from etsim.model.scenario import Scenario, load_scenario

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


def _calendar_days(scenario: Scenario) -> pd.DataFrame:
    """A market_daily table's date column for the scenario's whole calendar."""
    calendar = TradingCalendar(scenario.start_year, scenario.last_calendar_year,
                               scenario.market.trading_days_per_month)
    return pd.DataFrame({"date": calendar.date.astype("datetime64[s]")})


def test_deadline_marks_follow_the_listed_deadlines_of_a_multi_year_period() -> None:
    """china-history's 2021 and 2022 are both due at the end of 2023 (``compliance.
    deadlines``): one mark on the last trading day of December 2023 (the 28th: the 20th
    weekday), none in December 2022; then one each December 2024-2031."""
    scenario = load_scenario("china-history")
    marks = deadline_dates(scenario, _calendar_days(scenario))
    assert marks[0] == "2023-12-28"
    assert not [mark for mark in marks if mark.startswith("2022")]
    assert [mark[:7] for mark in marks] == [f"{year}-12" for year in range(2023, 2032)]


def test_deadline_marks_are_the_months_the_model_settles() -> None:
    """A mark is the last trading day of each month in which ``Compliance.due`` settles
    compliance years, for listed and default deadlines alike."""
    scenario = load_scenario("classroom", {"compliance.deadlines": {"2025": "2027-06"},
                                           "compliance.deadline_month": 9})
    days = _calendar_days(scenario)
    compliance = Compliance(scenario, list(scenario.simulated_sectors()), None, None, None,
                            {}, None)
    dates = pd.to_datetime(days["date"])
    settled = [dates[(dates.dt.year == year) & (dates.dt.month == month)].max()
               for year in range(scenario.start_year, scenario.last_calendar_year + 1)
               for month in range(1, 13) if compliance.due(year, month)]
    assert deadline_dates(scenario, days) == [d.strftime("%Y-%m-%d") for d in settled]
    # 2025 due in June 2027 (listed), 2026 in September 2027 (the default month)
    assert [mark[:7] for mark in deadline_dates(scenario, days)] == ["2027-06", "2027-09"]
