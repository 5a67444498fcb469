"""The trading calendar: one model step is one trading day.

A year has 12 months of ``days_per_month`` trading days (default 20, so 240 a year).
Day ``d`` of a month is dated on the month's ``d``-th weekday, so dates are real
business days and every month has at least 20 of them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TradingCalendar:
    """Trading days from January of ``first_year`` to December of ``last_year``."""

    first_year: int
    last_year: int
    days_per_month: int = 20
    year: np.ndarray = field(init=False, repr=False)
    month: np.ndarray = field(init=False, repr=False)
    date: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        years = np.arange(self.first_year, self.last_year + 1)
        n_months = len(years) * 12
        month_index = np.repeat(np.arange(n_months), self.days_per_month)
        year = self.first_year + month_index // 12
        month = month_index % 12 + 1
        day_in_month = np.tile(np.arange(self.days_per_month), n_months)
        first_of_month = np.array(
            [f"{y:04d}-{m:02d}-01" for y, m in zip(year, month, strict=True)],
            dtype="datetime64[D]",
        )
        date = np.busday_offset(first_of_month, day_in_month, roll="forward")
        object.__setattr__(self, "year", year)
        object.__setattr__(self, "month", month)
        object.__setattr__(self, "date", date)

    @property
    def n_days(self) -> int:
        """Number of trading days in the calendar."""
        return len(self.year)

    @property
    def days_per_year(self) -> int:
        """Trading days in one year."""
        return 12 * self.days_per_month

    def first_day(self, year: int, month: int = 1) -> int:
        """Index of the first trading day of ``month`` in ``year``."""
        return ((year - self.first_year) * 12 + month - 1) * self.days_per_month

    def last_day(self, year: int, month: int = 12) -> int:
        """Index of the last trading day of ``month`` in ``year``."""
        return self.first_day(year, month) + self.days_per_month - 1

    def day_of(self, date: datetime.date | str) -> int:
        """Index of the first trading day on or after ``date``: 0 for a date before the
        calendar, ``n_days`` for one after it (never reached)."""
        return int(np.searchsorted(self.date, np.datetime64(str(date), "D"), side="left"))
