"""The History page's table and figure builders, and the callbacks of History, Compare's
URL and Explore's baseline queue, called directly (no browser).

Hand-made ``market_daily`` tables check the year table against hand-computed means and
volumes; runs use the small ``classroom`` scenario in a temporary results cache.
china-history's numbers are not asserted (the scenario is being recalibrated).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from dash import no_update

from etsim.dashboard import analysis, runs
from etsim.dashboard.figures import compare as compare_figures
from etsim.dashboard.figures import history as history_figures
from etsim.experiments.observed import VOLUME_MT

CLASSROOM = runs.default_levers("classroom")
ROOT = Path(__file__).resolve().parents[1]


def _observed_mean(year: int) -> float:
    """The observed mean close of a year, straight from the shipped CSV."""
    frame = pd.read_csv(ROOT / "dashboard" / "data" / "cea_daily_close.csv",
                        parse_dates=["date"])
    return float(frame.loc[frame["date"].dt.year == year, "close_cny_per_t"].mean())


def _daily(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["date", "close", "volume"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["year"] = frame["date"].dt.year
    frame["month"] = frame["date"].dt.month
    return frame


@pytest.fixture()
def daily() -> pd.DataFrame:
    """A run's days: one before the market opened (16 July 2021, left out), a day with
    no close (a gap, left out of the price), and a projected year."""
    return _daily([
        ("2021-07-15", 1000.0, 9e6),  # before the opening: neither price nor volume
        ("2021-07-16", 40.0, 1e6),
        ("2021-07-19", 60.0, 1e6),
        ("2022-03-01", math.nan, 4e6),  # traded in blocks only: volume, no close
        ("2022-03-02", 50.0, 2e6),
        ("2026-05-05", 100.0, 3e6),
    ])


def test_history_years_by_hand(daily: pd.DataFrame) -> None:
    years = analysis.history_years(daily, scale=0.5).set_index("year")
    assert list(years.index) == [2021, 2022, 2026]
    # 2021: (40 + 60) / 2; volume 2 Mt at half scale is 4 Mt for the whole market
    assert years.loc[2021, "simulated_price"] == pytest.approx(50.0)
    assert years.loc[2021, "simulated_volume_mt"] == pytest.approx(4.0)
    assert years.loc[2021, "observed_price"] == pytest.approx(_observed_mean(2021))
    assert years.loc[2021, "observed_volume_mt"] == VOLUME_MT[2021]
    assert years.loc[2021, "price_error_pct"] == pytest.approx(
        100 * (50.0 - _observed_mean(2021)) / _observed_mean(2021))
    assert years.loc[2021, "volume_error_pct"] == pytest.approx(
        100 * (4.0 - VOLUME_MT[2021]) / VOLUME_MT[2021])
    # 2022: the day without a close counts for volume, not for the price
    assert years.loc[2022, "simulated_price"] == pytest.approx(50.0)
    assert years.loc[2022, "simulated_volume_mt"] == pytest.approx(12.0)
    # 2026 has no observed price: a projection, with no error
    assert bool(years.loc[2026, "projection"]) and not years.loc[2021:2022, "projection"].any()
    assert math.isnan(years.loc[2026, "price_error_pct"])
    errors = analysis.history_errors(years.reset_index())
    assert list(errors["year"]) == [2021, 2022] and "projection" not in errors


def test_history_years_of_no_run_is_empty() -> None:
    assert analysis.history_years(pd.DataFrame()).empty


def test_observed_prices_are_the_calibrations_closes() -> None:
    from etsim.experiments.observed import observed_daily

    observed = analysis.observed_prices()
    assert list(observed.columns) == ["date", "close"]
    pd.testing.assert_series_equal(observed["close"], observed_daily()["close"])


def test_history_price_chart_splits_at_the_observed_end(daily: pd.DataFrame) -> None:
    observed = analysis.observed_prices()
    fig = history_figures.history_price_chart(observed, daily)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"observed CEA market close", "simulated market close",
                           "projection (market close)"}
    end = observed["date"].max()
    assert pd.to_datetime(pd.Series(traces["simulated market close"].x)).max() <= end
    assert pd.to_datetime(pd.Series(traces["projection (market close)"].x)).min() > end
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "ICAP via World Carbon Pricing Database" in texts
    # before a run: the observed closes alone, and what the page is doing
    alone = history_figures.history_price_chart(observed, None, "computing")
    assert [t.name for t in alone.data] == ["observed CEA market close"]
    assert "computing" in " ".join(a.text for a in alone.layout.annotations)


def test_history_year_bars_start_at_zero_and_mark_the_projection(daily: pd.DataFrame) -> None:
    years = analysis.history_years(daily, scale=0.5)
    for fig in (history_figures.history_annual_price_chart(years),
                history_figures.history_volume_chart(years)):
        names = [t.name for t in fig.data]
        assert names == ["observed", "simulated", "projection"]
        assert list(fig.data[2].x) == [2026]
        assert fig.layout.yaxis.rangemode == "tozero"
    empty = history_figures.history_annual_price_chart(analysis.history_years(pd.DataFrame()))
    assert not empty.data


def test_compare_price_draws_observed_closes_where_given(daily: pd.DataFrame) -> None:
    tables = {"market_daily": daily, "market_years": pd.DataFrame(
        {"year": [2021], "equilibrium_price": [55.0]})}
    observed = analysis.observed_overlap(analysis.observed_prices(), daily)
    fig = compare_figures.compare_price({"A": tables, "B": tables}, observed)
    assert "observed CEA close" in [t.name for t in fig.data]
    assert "observed CEA close" not in [t.name for t in compare_figures.compare_price(
        {"A": tables}).data]


# --- callbacks ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("history-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv(runs.CACHE_ENV, str(folder))
    from etsim.dashboard.app import create_app

    create_app()
    from etsim.dashboard.pages import compare, explore, history

    yield SimpleNamespace(compare=compare, explore=explore, history=history)
    from etsim.dashboard import jobs

    jobs.shutdown_queue()
    patch.undo()


def _follow(follow: Any, job: dict[str, Any]) -> tuple[Any, Any]:
    deadline = time.monotonic() + 300  # a bound on the wait, not a budget
    while time.monotonic() < deadline:
        kept, _, record, message = follow(job)
        if kept is None:
            return record, message
        time.sleep(0.1)
    pytest.fail("the job did not finish")


def test_history_levers_take_a_share_of_the_scenarios_firms(pages: Any) -> None:
    own = runs.scenario_levers("china-history")
    levers = pages.history.history_levers("china-history", 0.1, 3)
    assert levers["n_firms"] == round(own["n_firms"] * 0.1)
    assert levers["sectors"] == own["sectors"] and levers["seed"] == 3
    assert runs.lever_changes(levers) == []  # the scenario as shipped, only smaller


def test_history_run_is_queued_then_taken_from_the_cache(pages: Any) -> None:
    history = pages.history
    job, record, message = history.start_history("classroom", 1.0, 5)
    assert job is not None and record is None
    record, message = _follow(history.follow_history, job)
    assert record is not None and "Ran in" in str(message)
    again_job, again, message = history.start_history("classroom", 1.0, 5)
    assert again_job is None and again["key"] == record["key"]
    assert "Taken from the cache" in str(message)
    out = history.render(record, None)
    price, annual, volume, rows, columns, label, summary = out
    assert [t.name for t in price.data][:2] == ["observed CEA market close",
                                                 "simulated market close"]
    # classroom runs 2025-2026: 2025 is its one observed year
    assert [row["year"] for row in rows] == [2025]
    assert {c["name"] for c in columns} >= {"price error (%)", "volume error (%)"}
    assert "classroom" in label and summary.startswith("Simulated against observed")


def test_history_bad_seed_gets_its_range(pages: Any) -> None:
    job, record, message = pages.history.start_history("classroom", 1.0, "-1")
    assert job is None and record is None
    assert "Seed" in str(message)


def test_history_before_a_run_draws_the_observed_closes(pages: Any) -> None:
    price, annual, volume, rows, columns, label, summary = pages.history.render(
        None, {"id": "some-job"})
    assert [t.name for t in price.data] == ["observed CEA market close"]
    assert "computing" in label and rows == []


def test_compare_query_splits_into_the_two_panels(pages: Any) -> None:
    a, b = pages.compare.split_query({"a.scenario": "china-2024", "b.steel.cap_year": "2027",
                                      "b.seed": "7", "other": "x"})
    assert a == {"scenario": "china-2024"}
    assert b == {"steel.cap_year": "2027", "seed": "7"}


def test_explore_baseline_levers(pages: Any) -> None:
    explore = pages.explore
    assert explore.baseline_levers(CLASSROOM) is None  # nothing changed: no ghost
    changed = dict(CLASSROOM, penalty_multiple=3)
    base = explore.baseline_levers(changed)
    assert base is not None and base["penalty_multiple"] == CLASSROOM["penalty_multiple"]
    # the same firms and seed as the changed run
    smaller = dict(changed, n_firms=10, seed=9)
    assert explore.baseline_levers(smaller)["n_firms"] == 10
    assert explore.baseline_levers(smaller)["seed"] == 9


def test_explore_baseline_is_queued_after_a_lever_change(pages: Any) -> None:
    explore = pages.explore
    changed = dict(CLASSROOM, penalty_multiple=3, seed=21)
    base = explore.baseline_levers(changed)
    assert runs.cached_result(base) is None
    # a lever change: the baseline is queued and followed
    job, disabled, _, state = explore.baseline_step("explore-query", None, changed, 0)
    assert job["id"] and job["levers"] == base and disabled is False
    assert state["state"] == "computing"
    # the same baseline is not queued twice
    same, *_ = explore.baseline_step("explore-query", job, changed, 1)
    assert same["id"] == job["id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job_after, disabled, _, state = explore.baseline_step("explore-baseline-poll", job,
                                                              changed, 2)
        if state is not no_update and state["state"] != "computing":
            break
        time.sleep(0.1)
    assert state["state"] == "ready" and job_after is None and disabled is True
    assert runs.cached_result(base) is not None
    # the changed run now draws the ghost line
    record, _ = explore.execute_run(changed)
    assert explore.baseline_tables(record)
    assert explore.baseline_note(record, explore.baseline_tables(record), state) == ""
    # a cached baseline is ready at once; unchanged levers queue nothing
    assert explore.baseline_step("explore-query", None, changed, 0)[3]["state"] == "ready"
    assert explore.baseline_step("explore-query", None, CLASSROOM, 0) == (no_update,) * 4


def test_history_page_knows_when_its_run_is_another_scenario(pages: Any) -> None:
    """A URL asking for another scenario than the session's last run starts that run."""
    history = pages.history
    record = {"levers": history.history_levers("classroom", 1.0, "1")}
    assert history.shows(record, "classroom", 1.0, "1")
    assert not history.shows(record, "china-2024", 1.0, "1")
    assert not history.shows(record, "classroom", 1.0, "2")
    assert not history.shows(None, "classroom", 1.0, "1")


def test_explore_levers_that_cannot_run_queue_no_baseline(pages: Any) -> None:
    assert pages.explore.baseline_levers(dict(CLASSROOM, banking_limit_t=-5)) is None
