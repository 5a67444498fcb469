"""The shipped china-history scenario, run at a twentieth of national scale: its
compliance calendar (2021-22 due together at the end of 2023), the carry-over rule after
the 2024 deadline, a plan announced mid-month changing expectations on its day, and the
ledger's invariants at the end.
"""

from __future__ import annotations

import numpy as np
import pytest

from etsim import load_scenario
from etsim.model.market import CarbonMarketModel


def run_until(model: CarbonMarketModel, day: int) -> None:
    """Step the model until ``day`` is the next trading day to run."""
    while model.day < day:
        model.step()


def cancelled_up_to(model: CarbonMarketModel, vintage: int) -> int:
    """Tonnes cancelled so far of vintages up to ``vintage``."""
    return sum(row["cancelled"] for row in model.registry.ledger() if row["vintage"] <= vintage)


@pytest.fixture(scope="module")
def history() -> CarbonMarketModel:
    return CarbonMarketModel("china-history", seed=1, overrides={"scale": 0.05})


def test_the_calendar_runs_from_2021_with_2021_22_due_at_the_end_of_2023() -> None:
    sc = load_scenario("china-history")
    model = CarbonMarketModel(sc, seed=1, overrides={"scale": 0.02})
    assert (sc.start_year, sc.end_year, sc.last_calendar_year) == (2021, 2030, 2031)
    assert model.compliance.due(2022, 12) == []
    assert model.compliance.due(2023, 12) == [2021, 2022]
    assert model.compliance.due(2024, 12) == [2023]
    assert model.compliance.due(2025, 12) == [2024]
    assert model.compliance.borrowing_allowed(2022) and not model.compliance.borrowing_allowed(
        2023)


def test_history_runs_with_its_rules(history: CarbonMarketModel) -> None:
    """In order through one run: the announcement of 15 Oct 2024 moves the fundamental
    price that day; the 2023 deadline cancels nothing (no limit yet); after the 2024
    deadline every firm holds at most its carry-over limit of vintages up to 2024, and
    some quota was cancelled; the run ends with the ledger balanced."""
    model = history
    calendar = model.calendar
    announced = calendar.day_of("2024-10-15")
    assert announced % calendar.days_per_month != 0  # mid-month: no monthly refresh
    run_until(model, announced + 1)
    fundamental = model.daily["fundamental_price"]
    assert fundamental[announced] != fundamental[announced - 1]
    assert fundamental[announced - 1] == fundamental[announced - 2]  # constant before

    run_until(model, calendar.last_day(2024, 12) + 1)  # past the 2023 deadline
    assert cancelled_up_to(model, 2023) == 0
    run_until(model, calendar.last_day(2025, 12) + 1)  # past the 2024 deadline
    limit = model.compliance.carry_over_limit(2024)
    held = model.registry.usable(2024)
    assert (held <= limit).all()
    assert cancelled_up_to(model, 2024) > 0
    power = model.sector_names.index("power")
    steel = model.sector_names.index("steel")
    firms = model.firms
    seller = np.flatnonzero(firms.sector == power)[0]
    assert limit[seller] == np.floor(10_000 + 1.5 * max(firms.net_sales[seller], 0))
    steel_firm = np.flatnonzero(firms.sector == steel)[0]
    assert limit[steel_firm] == np.floor(100_000 + 1.5 * max(firms.net_sales[steel_firm], 0))

    model.run()
    assert model.invariants["ok"], model.invariants["violations"]
