"""The dashboard's callbacks, called directly: lever mapping, messages for bad levers,
the results cache, and what each page draws from a run.

Runs use the small ``classroom`` scenario (20 firms, under a second) and a results cache
in a temporary folder.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest
from dash import no_update

from etsim.dashboard import analysis, book, levers, runs
from etsim.model.results import TABLES

CLASSROOM = runs.default_levers("classroom")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("runs-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv(runs.CACHE_ENV, str(folder))
    yield folder
    patch.undo()


@pytest.fixture(scope="module")
def pages(cache: Any) -> SimpleNamespace:
    """The page modules (Dash registers pages only once an app exists)."""
    from etsim.dashboard.app import create_app

    app = create_app()
    from etsim.dashboard.pages import compare, explore, firms, market, network

    return SimpleNamespace(app=app, explore=explore, compare=compare, market=market,
                           network=network, firms=firms)


@pytest.fixture(scope="module")
def classroom(pages: SimpleNamespace) -> dict[str, Any]:
    record, message = pages.explore.execute_run(CLASSROOM)
    assert record is not None, message
    return record


def values(levers_dict: dict[str, Any]) -> list[Any]:
    return levers.values_from_levers(levers_dict)


def has_data(fig: go.Figure) -> bool:
    def size(values: Any) -> int:
        return 0 if values is None else len(values)

    return any(size(getattr(trace, "x", None)) or size(getattr(trace, "y", None))
               for trace in fig.data)


# --- running ---------------------------------------------------------------------------


def follow(page_follow: Any, job: dict[str, Any]) -> tuple[list[dict[str, Any]], Any, Any]:
    """Poll a page's job as its dcc.Interval would, until it finishes.

    Returns:
        (every progress view seen, the finished record or None, the final message).
    """
    views = []
    deadline = time.monotonic() + 300  # a bound on the wait, not a budget
    while time.monotonic() < deadline:
        kept, view, record, message = page_follow(job)
        views.append(view)
        if kept is None:
            return views, record, message
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_run_button_queues_the_run_reports_progress_and_publishes_it(pages):
    levers = dict(CLASSROOM, seed=11)
    job, record, message = pages.explore.start_run(levers)
    assert record is None and message == "" and len(job["id"]) >= 20
    views, record, message = follow(pages.explore.follow_job, job)
    assert "Ran in" in str(message)
    assert record["levers"] == levers and record["key"].endswith("-11")
    assert "seed 11" in record["label"]
    labels = [v["label"] for v in views if v["active"]]
    assert labels and all(text.startswith(("Queued:", "Running:")) for text in labels)
    running = [v for v in views if v["label"].startswith("Running:") and int(v["max"]) > 1]
    done = [int(v["value"]) for v in running]
    assert done == sorted(done) and all(int(v["max"]) == 720 for v in running)  # days
    assert not views[-1]["active"]


def test_second_run_is_a_cache_hit(pages):
    levers = dict(CLASSROOM, seed=12)
    job, _, _ = pages.explore.start_run(levers)
    _, first, message = follow(pages.explore.follow_job, job)
    assert "Ran in" in str(message)
    job, second, message = pages.explore.start_run(levers)  # no job: straight from the cache
    assert job is None and "Taken from the cache." in str(message)
    assert second["key"] == first["key"]
    result = runs.run_tables(levers)
    assert result["cached"] and set(result["tables"]) == set(TABLES)


def test_bad_levers_give_a_message_and_no_run(pages):
    levers = dict(CLASSROOM, reserve_policy="price_trigger", absorb_price=500)
    job, record, message = pages.explore.start_run(levers)
    assert job is None and record is None
    assert "must be below release above (120 CNY/t)" in str(message)
    assert "et-message-error" in str(message)


def test_a_failing_run_gives_a_message(pages):
    # a job whose run fails in its process (levers the page would have refused at once)
    from etsim.dashboard import jobs

    bad = [("Scenario B", dict(CLASSROOM, seed=14)), ("Scenario B", dict(CLASSROOM, seed=-1))]
    job = {"id": jobs.job_queue().submit(runs.run_job, bad, str(runs.cache_dir()))}
    _, record, message = follow(pages.explore.follow_job, job)
    assert record is None and "et-message-error" in str(message)
    assert "Scenario B: Seed: must be a whole number from 0 to 2147483647 (got -1)" in str(message)


def test_cancel_says_cancelled(pages):
    job, _, _ = pages.explore.start_run(dict(CLASSROOM, seed=13, n_firms=60))
    kept, view, record, message = pages.explore.follow_job(job, cancel=True)
    assert kept is None and record is None and not view["active"]
    assert str(message).count("Cancelled: the run was stopped at your request") == 1
    assert "et-message-info" in str(message)
    # the id now leads to a finished job; an unknown id says so
    assert not pages.explore.follow_job(job)[1]["active"]
    _, view, _, message = pages.explore.follow_job({"id": "not-a-job"})
    assert "no longer known to the server" in str(message) and view["error"]


def test_a_run_lost_from_the_cache_is_run_again(classroom):
    lost = dict(classroom, key="0000000000000000-1")
    tables, meta = runs.load_session_tables(lost, ["market_years"])
    assert meta["scenario"] == "classroom" and len(tables["market_years"]) == 3


# --- what the pages draw -------------------------------------------------------------------


def test_explore_render_before_and_after_a_run(pages, classroom):
    empty = pages.explore.render(None)
    assert not any(has_data(fig) for fig in empty[:len(pages.explore.GRAPHS)])
    assert empty[-1] == "No run yet."
    out = pages.explore.render(classroom)
    figs = out[:len(pages.explore.GRAPHS)]
    assert all(isinstance(fig, go.Figure) for fig in figs)
    price = figs[0]
    assert len(next(t for t in price.data if t.name == "market close").y) == 720
    cards = out[len(pages.explore.GRAPHS):-1]
    assert float(cards[0].replace(",", "")) > 0  # mean price
    assert out[-1].startswith("classroom (steel, cement, aluminium), 20 firms, seed 1")


def test_explore_incentive_defaults_to_the_last_compliance_year(pages, classroom):
    fig, options, year = pages.explore.render_incentive(classroom, None)
    assert year == 2026 and [o["value"] for o in options] == [2025, 2026]
    assert sum(len(t.x) for t in fig.data) == 20
    fig, _, year = pages.explore.render_incentive(classroom, 2025)
    assert year == 2025


def captioned(fig: go.Figure, run: dict[str, Any]) -> bool:
    """The chart carries its run's label and the data source (for a downloaded PNG)."""
    return any(a.name == "caption" and run["label"] in a.text and "Source: " in a.text
               for a in fig.layout.annotations)


def test_firms_table_and_drill_down(pages, classroom):
    data, columns, label, active = pages.firms.render_table(classroom)
    assert len(data) == 20 and "id" not in [c["id"] for c in columns]
    assert active["row_id"] == data[0]["firm_id"]
    out = pages.firms.render_firm(active, classroom)
    assert out[0].startswith(f"Firm {data[0]['firm_id']}: ")
    assert all(isinstance(fig, go.Figure) for fig in out[1:4])
    assert has_data(out[1]) and has_data(out[3])
    assert all(captioned(fig, classroom) for fig in out[1:4])
    assert len(out[4]) >= 1  # the firm's abatement options
    assert pages.firms.render_firm(None, classroom)[0] == "Pick a firm"


def test_network_page(pages, classroom):
    options, year, label = pages.network.year_choices(classroom, None)
    assert year in [o["value"] for o in options]
    out = pages.network.render(year, classroom)
    fig, cards, table = out[0], out[1:7], out[7]
    assert has_data(fig) and captioned(fig, classroom)
    assert int(cards[0].replace(",", "")) > 1  # traders
    assert len(table) >= 1 and "betweenness" in table[0]


def test_market_page_replays_a_recorded_day(pages, classroom):
    sessions, session, years, year, label, first, last, _ = pages.market.choices(classroom)
    assert session and sessions and year in [o["value"] for o in years]
    assert (first, last) == ("2025-01-01", "2027-12-28")
    events = pages.market._events_for(classroom, session)
    assert pages.market.step_after("market-next", 0, events) == 1
    assert pages.market.step_after("market-prev", 0, events) == 0
    assert pages.market.step_after("market-session", 5, events) == 0
    step = pages.market.step_after("market-next-order", 0, events)
    assert step == book.next_order_step(events, 0)
    ladder, depth, tape, _, event, status = pages.market.render_book(len(events), session,
                                                                     classroom)
    assert isinstance(ladder, go.Figure) and isinstance(depth, go.Figure)
    assert captioned(ladder, classroom) and captioned(depth, classroom)
    assert status.startswith(f"Step {len(events)} of {len(events)}")
    assert len(tape) == int((events["event"] == "trade").sum())
    assert event  # a sentence about the last event


def test_market_curves_cross_at_the_models_equilibrium(pages, classroom):
    tables, meta = runs.load_session_tables(classroom)
    for year in analysis.compliance_years(tables["market_years"]):
        curves = analysis.quota_curves(tables["firm_years"], tables["firms"],
                                       tables["abatement_options"], tables["market_years"],
                                       year)
        assert curves["price"] == pytest.approx(curves["model_price"], nan_ok=True)
    fig, note = pages.market.render_curves(2026, classroom)
    assert [t.name for t in fig.data][:2] == ["demand for quota", "supply of quota"]
    assert captioned(fig, classroom)
    assert "the curves cross at" in note and "the model's one-year equilibrium" in note


def test_compare_runs_both_and_tabulates_differences(pages):
    tighter = dict(CLASSROOM, **{f"{s}.tightening_pct": "8" for s in CLASSROOM["sectors"]})
    job, record, message = pages.compare.start_both(values(CLASSROOM), values(tighter))
    if job is not None:  # A may be cached already; B is new
        views, record, message = follow(pages.compare.follow_both, job)
        notes = {v["label"].split(":")[1].strip() for v in views
                 if v["label"].startswith("Running:") and int(v["max"]) > 1}
        assert notes <= {"Scenario A (1 of 2)", "Scenario B (2 of 2)"} and notes
    assert message == "" and set(record) == {"a", "b"}
    assert record["b"]["levers"]["steel.tightening_pct"] == "8"
    out = pages.compare.render(record)
    figs, rows = out[:len(pages.compare.GRAPHS)], out[len(pages.compare.GRAPHS)]
    drawn = dict(zip(pages.compare.GRAPHS, figs, strict=True))
    auctions = drawn.pop("compare-auctions")  # the classroom sells no quota at auction
    assert all(has_data(fig) for fig in drawn.values())
    assert "Neither run auctioned" in auctions.layout.annotations[0].text
    table = pd.DataFrame(rows).set_index("figure")
    assert table.loc["Mean price (CNY/t)", "B"] > table.loc["Mean price (CNY/t)", "A"]
    bad = dict(CLASSROOM, **{"steel.paid_share": "lots"})
    job, record, message = pages.compare.start_both(values(CLASSROOM), values(bad))
    assert job is None and record is None and "Scenario B: steel: paid share" in str(message)
    empty = pages.compare.render(None)
    assert empty[-1] == "No comparison yet."


def test_market_records_another_day(pages, classroom):
    # Record queues the run like Explore's Run; the poll follows it to the new record
    job, record, message = pages.market.start_record(classroom, "2026-12-07T00:00:00")
    assert record is None and message == "" and len(job["id"]) >= 20
    assert job["day"] == "2026-12-07"
    views, record, message = follow(pages.market.follow_record, job)
    assert record is not None, message
    assert "Recorded 2026-12-07" in str(message)
    labels = [v["label"] for v in views if v["active"]]
    assert labels and all(text.startswith(("Queued:", "Running:")) for text in labels)
    assert "2026-12-07" in record["book_days"] and record["book_focus"] == "2026-12-07"
    assert record["key"] != classroom["key"]
    sessions, session, *_ = pages.market.choices(record)
    assert len(sessions) > len(pages.market.choices(classroom)[0])
    assert session >= "2026-12-07" and session.endswith("|continuous")
    # the days already recorded stay recorded
    before = {o["value"].split("|")[0] for o in pages.market.choices(classroom)[0]}
    assert before <= {o["value"].split("|")[0] for o in sessions}
    # the same day again is the same run, straight from the cache: no job
    again_job, again, message = pages.market.start_record(classroom, "2026-12-07")
    assert again_job is None and again["key"] == record["key"]
    assert again["book_focus"] == "2026-12-07" and "Recorded 2026-12-07" in str(message)
    # the record survives the cache losing it: the re-run records the same days
    tables, _ = runs.load_session_tables(dict(record, key="lost"), ["book_events"])
    assert len(book.recorded_sessions(tables["book_events"])) == len(sessions)


def test_market_record_refuses_bad_days_at_once(pages, classroom):
    daily = runs.load_session_tables(classroom, ["market_daily"])[0]["market_daily"]
    last = f"{pd.to_datetime(daily['date']).max():%Y-%m-%d}"
    for date, text in [("2040-01-01", f"2040-01-01 is after the last trading day ({last})"),
                       (None, "Pick a day"), ("soon", "'soon' is not a date YYYY-MM-DD")]:
        job, record, message = pages.market.start_record(classroom, date)
        assert job is None and record is None
        assert text in str(message) and "et-message-error" in str(message)


def test_market_record_cancel_says_cancelled(pages, classroom):
    job, _, _ = pages.market.start_record(dict(classroom, levers=dict(CLASSROOM, seed=21)),
                                          "2026-06-01")
    assert job is not None
    kept, view, record, message = pages.market.follow_record(job, cancel=True)
    assert kept is None and record is None and not view["active"]
    assert "Cancelled: the run was stopped at your request" in str(message)


def test_market_record_callback_polls_one_request_at_a_time(pages, classroom):
    # the page's one callback for Record, Cancel and polls: while the job is active the
    # poll runs, Record is disabled and Cancel enabled; a page with no job changes nothing
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    def call(trigger: str, n_clicks: int, polls: int, job: Any) -> tuple[Any, ...]:
        token = context_value.set(AttributeDict(
            triggered_inputs=[{"prop_id": f"{trigger}.n_clicks", "value": 1}],
            updated_props={}))
        try:
            return pages.market.on_record(n_clicks, None, polls, job,
                                                      "2026-09-01", classroom)
        finally:
            context_value.reset(token)

    idle = call("market-record-poll", 0, 0, None)
    assert idle[0] is no_update and idle[1] is True and idle[4] is True
    out = call("market-record", 1, 0, None)
    job = out[0]
    assert job and job["id"] and job["day"] == "2026-09-01"
    assert out[1] is False and out[2] == 1 and out[3] is True and out[4] is False
    out = call("market-record-cancel", 1, 1, job)
    assert out[0] is None and out[1] is True and out[3] is False
    assert "Cancelled" in str(out[-1])
