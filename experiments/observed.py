"""The observed China national carbon market that ``etsim calibrate`` fits to.

Two kinds of facts, both shipped with the package so that a calibration reads nothing
outside it:

- the daily CEA closes 2021-07-16 to 2025-12-31, ``dashboard/data/cea_daily_close.csv``
  (Data: ICAP via World Carbon Pricing Database, CC BY-NC-SA 4.0; source and licence in
  ``dashboard/data/README.md``): the mean price, daily volatility and monthly path come
  from this file;
- the yearly figures below, copied from the calibration sheet
  (``docs/calibration-facts.md``, sections 4 and 7, with their sources): volumes, the
  2023 block share and the concentration of trading before deadlines. The file has no
  volumes.

How each target below follows from the sheet is in ``docs/calibration-facts.md``
("Observed moments").
"""

from __future__ import annotations

from datetime import date
from functools import cache
from importlib import resources

import pandas as pd

OBSERVED_ATTRIBUTION = "Data: ICAP via World Carbon Pricing Database"

# The national market's first trading day (calibration 4: 2021 volume "from 16 Jul").
# Simulated moments are taken from this day on, as the observed ones are.
MARKET_OPEN = date(2021, 7, 16)

# Annual volume, Mt (calibration 4). 2022 is "about 51".
VOLUME_MT = {2021: 179.0, 2022: 51.0, 2023: 212.0, 2024: 189.0, 2025: 235.0}

# Block (negotiated) trades' share of volume: 2023, 177 of 212 Mt (calibration 7).
BLOCK_SHARE = {2023: 177.0 / 212.0}

# Share of a year's volume traded in November and December, the two months before the
# year-end compliance deadline, as (low, high) bounds. 2021: November's 23.0 Mt
# exceeded July-October together, so at most 23.0 of 179 Mt traded before November
# (calibration 4): the share is at least 1 - 23/179. 2024: the fourth quarter held 79%
# (calibration 4), so November-December held at most 79%.
DEADLINE_SHARE_BOUNDS = {2021: (1.0 - 23.0 / 179.0, 1.0), 2024: (0.0, 0.79)}

# Fourth quarter's share of the year's volume: 2024, 79% (calibration 4).
Q4_SHARE = {2024: 0.79}


@cache
def _closes() -> pd.DataFrame:
    path = resources.files("etsim.dashboard") / "data" / "cea_daily_close.csv"
    with resources.as_file(path) as file:
        frame = pd.read_csv(file, parse_dates=["date"])
    return frame.rename(columns={"close_cny_per_t": "close"})


def observed_daily() -> pd.DataFrame:
    """The observed daily closes as a ``market_daily``-like table.

    Returns:
        Columns date (datetime64), year, month and close (CNY/t), one row per trading
        day from 16 July 2021 to 31 December 2025. A copy: callers may change it.
    """
    frame = _closes().copy()
    frame["year"] = frame["date"].dt.year
    frame["month"] = frame["date"].dt.month
    return frame[["date", "year", "month", "close"]]
