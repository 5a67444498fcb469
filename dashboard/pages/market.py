"""Market (teaching): one trading day's order book replayed step by step, and the year's
supply and demand of quota built from firms' abatement costs."""

from __future__ import annotations

from typing import Any

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from etsim.dashboard import analysis, book, runs
from etsim.dashboard.classroom import lessons
from etsim.dashboard.components import (
    chart_card,
    data_table,
    error_text,
    explain,
    job_callback_io,
    job_progress,
    job_step,
    job_stores,
    message_box,
    register_csv_downloads,
    table_payload,
)
from etsim.dashboard.figures import run as figures

dash.register_page(__name__, path="/market", name="Market", title="etsim: Market",
                   order=2)

LADDER_TEXT = """**The ladder.** Firms that want to buy post *bids* (green): the most they
will pay. Firms that want to sell post *asks* (red): the least they will accept. The
highest bid and the lowest ask face each other across the *spread*. A new order that
reaches across the spread trades at once against the best resting order, at that resting
order's price; the earliest order at a price goes first (*price-time priority*). What
does not trade rests in the book and waits."""
DEPTH_TEXT = """**Depth.** The same book added up: how many tonnes could be bought (red,
rising to the right) or sold (green, falling to the left) at each price or better. A
steep wall means a big order would barely move the price; a thin book means it would
move a lot. No order may be priced outside the day's limits (dashed), 10% around
yesterday's close."""
TAPE_TEXT = """**The tape.** Every trade so far, newest first. The day's closing price is
the volume-weighted mean of these trade prices, and it sets tomorrow's price limits."""
CURVE_TEXT = """**Why is the price what it is?** Each firm can cut emissions with
technologies that cost so many yuan per tonne. At a carbon price *p* every cut cheaper
than *p* pays off, so firms need less quota: the **demand** for quota falls as the price
rises (blue). The **supply** of quota is what the state issued for the year (red): it
does not depend on the price. Where they cross is the **one-year equilibrium**: the cost
of the last tonne that must be cut so this year's emissions fit this year's quota. The
axes stay the same from year to year: tighter benchmarks move the red line left, and the
price climbs the cost curve. The market's actual price (dotted) also reflects banking and
expectations about later years: quota saved now for scarcer later years raises today's
price (the **equilibrium with banking** on the Explore page counts that)."""


# Play's speed: milliseconds between orders (a 512-order day takes 6 minutes at 0.7 s,
# 25 s at 0.05 s)
SPEEDS = [{"label": "0.05 s per order", "value": 50},
          {"label": "0.2 s per order", "value": 200},
          {"label": "0.7 s per order", "value": 700},
          {"label": "2 s per order", "value": 2000}]
DEFAULT_SPEED_MS = 200


def layout(**_: Any) -> html.Div:
    """The Market page: the session's run, or a recorded lesson (``etsim dashboard
    --lesson DIR`` opens on the first one named)."""
    options = lessons.lesson_options()
    lesson = lessons.default_lesson()
    return html.Div([
        html.H2("How the market finds its price"),
        html.P("A trading day of the session's run replayed order by order, and the year's "
               "supply and demand of quota. Use the buttons to step through the day.",
               className="et-page-intro"),
        html.Div(id="market-run-label", className="et-run-label"),
        html.Div([html.Div([html.Label("Recorded lesson", htmlFor="market-lesson"),
                            dcc.Dropdown(id="market-lesson", clearable=False,
                                         options=options, value=lesson,
                                         style={"minWidth": "360px"})],
                           className="et-field")], className="et-controls"),
        html.H3("1. One trading day's order book"),
        html.Div([
            html.Div([html.Label("Recorded day"), dcc.Dropdown(
                id="market-session", clearable=False, style={"minWidth": "360px"})],
                className="et-field"),
            html.Div([html.Button("Start", id="market-first", className="et-secondary"),
                      html.Button("< Event", id="market-prev", className="et-secondary"),
                      html.Button("Event >", id="market-next"),
                      html.Button("Next order >>", id="market-next-order"),
                      html.Button("Next trade >>|", id="market-next-trade",
                                  title="Skip the orders that only rest in the book"),
                      html.Button("Play", id="market-play", className="et-secondary"),
                      html.Label("Speed", htmlFor="market-speed"),
                      dcc.Dropdown(id="market-speed", options=SPEEDS, value=DEFAULT_SPEED_MS,
                                   clearable=False, style={"width": "150px"})],
                     className="et-buttons"),
        ], className="et-controls"),
        html.Details([
            html.Summary("Record another day"),
            html.Div([
                dcc.DatePickerSingle(id="market-record-date", display_format="YYYY-MM-DD",
                                     placeholder="a trading day"),
                html.Button("Record this day", id="market-record", n_clicks=0),
                html.Button("Cancel", id="market-record-cancel", className="et-secondary",
                            disabled=True),
            ], className="et-buttons"),
            # The recording run waits in the server's queue like Explore's runs.
            *job_stores("market-record"),
            job_progress("market-record"),
            message_box("market-record-message"),
        ], className="et-record"),
        dcc.Slider(id="market-step", min=0, max=1, step=1, value=0, marks=None,
                   tooltip={"placement": "bottom", "always_visible": False}),
        dcc.Interval(id="market-interval", interval=DEFAULT_SPEED_MS, disabled=True),
        html.Div(id="market-event", className="et-event"),
        html.Div(id="market-status", className="et-run-label"),
        html.Div([html.Div(chart_card("market-ladder", 420), className="et-chart"),
                  html.Div(explain(LADDER_TEXT), className="et-side")], className="et-teach"),
        html.Div([html.Div(chart_card("market-depth", 360), className="et-chart"),
                  html.Div(explain(DEPTH_TEXT), className="et-side")], className="et-teach"),
        html.Div([html.Div(data_table("market-tape", page_size=8), className="et-chart"),
                  html.Div(explain(TAPE_TEXT), className="et-side")], className="et-teach"),
        html.H3("2. Supply and demand of quota"),
        html.Div([html.Div([html.Label("Compliance year"), dcc.Dropdown(
            id="market-year", clearable=False, style={"width": "140px"})],
            className="et-field")], className="et-controls"),
        html.Div([html.Div(chart_card("market-curves", 440), className="et-chart"),
                  html.Div([explain(CURVE_TEXT), html.Div(id="market-curve-note",
                                                          className="et-explain")],
                           className="et-side")], className="et-teach"),
    ])


def _session_value(date: Any, session: str) -> str:
    return f"{pd.Timestamp(date):%Y-%m-%d}|{session}"


def _lesson(folder: str | None) -> lessons.Lesson | None:
    return lessons.load_lesson(folder) if folder else None


def _events_for(run: dict[str, Any] | None, value: str | None,
                lesson: str | None = None) -> pd.DataFrame | None:
    if not value:
        return None
    chosen = _lesson(lesson)
    if chosen is not None:
        events = chosen.tables.get("book_events")
    else:
        tables, _ = runs.load_session_tables(run, ["book_events"])
        events = tables.get("book_events")
    if events is None or events.empty:
        return None
    date, session = value.split("|")
    day = book.session_events(events, date, session)
    return day if chosen is None else lessons.mark_events(chosen, day)


def pick_session(sessions: pd.DataFrame, focus: str | None) -> tuple[Any, str]:
    """The recorded session to show first, and a sentence saying why when it is not the
    day asked for.

    With a day asked for (``focus``, a day just recorded): its listed session if it
    traded (the next trading day if the date was none), else the recorded day with
    trades nearest to it, said so; if no recorded day has a trade, the day asked for,
    said so. Without one: the first listed session with trades.
    """
    listed = sessions[sessions["session"] == "continuous"]
    traded = listed[listed["trades"] > 0]
    if not focus:
        chosen = traded if len(traded) else sessions
        return chosen.iloc[0], ""
    wanted = pd.Timestamp(focus)
    on_or_after = listed[listed["date"] >= wanted]
    day = on_or_after.iloc[0] if len(on_or_after) else listed.iloc[-1]
    if day["trades"] > 0:
        return day, ""
    shown = f"{pd.Timestamp(day['date']):%Y-%m-%d}"
    if traded.empty:
        return day, f"No recorded day has a trade: showing {shown}, which had none."
    nearest = traded.loc[(traded["date"] - day["date"]).abs().idxmin()]
    return nearest, (f"{shown} had no trade: showing {pd.Timestamp(nearest['date']):%Y-%m-%d},"
                     f" the recorded day with trades nearest to it.")


@callback(Output("market-session", "options"), Output("market-session", "value"),
          Output("market-year", "options"), Output("market-year", "value"),
          Output("market-run-label", "children"),
          Output("market-record-date", "min_date_allowed"),
          Output("market-record-date", "max_date_allowed"),
          Output("market-record-date", "initial_visible_month"),
          Input("app-run", "data"), Input("market-lesson", "value"))
def choices(run: dict[str, Any] | None, lesson: str | None = None) -> tuple[Any, ...]:
    """The recorded days of the session's run (or of the chosen lesson), its compliance
    years and its dates."""
    try:
        chosen = _lesson(lesson)
        if chosen is not None:
            tables, meta = chosen.tables, chosen.record
        else:
            tables, meta = runs.load_session_tables(run, ["book_events", "market_years",
                                                          "market_daily"])
    except Exception as err:  # noqa: BLE001 - shown instead of a dead page
        text = str(err) if isinstance(err, lessons.LessonError) else \
            runs.lever_error_message(err)
        return [], None, [], None, text, None, None, None
    if chosen is not None:
        label = chosen.label
    else:
        label = run.get("label") if run else "Default run: " + runs.run_label(
            runs.default_levers(), meta)
    dates = pd.to_datetime(tables["market_daily"]["date"])
    first, last = f"{dates.min():%Y-%m-%d}", f"{dates.max():%Y-%m-%d}"
    years = analysis.compliance_years(tables["market_years"])
    # the first compliance year with a shortage shows the crossing best
    prices = tables["market_years"].set_index("year")["static_equilibrium_price"]
    scarce = [y for y in years if pd.notna(prices.get(y)) and prices.get(y, 0) > 0]
    year = (scarce or years or [None])[0]
    sessions = book.recorded_sessions(tables.get("book_events"))
    if sessions.empty:
        return ([], None, analysis.year_options(years), year,
                f"{label}. This run has no recorded order book (book_events).", first, last,
                first)
    students = lessons.student_days(chosen) if chosen is not None else set()
    options = [{"label": f"{pd.Timestamp(r.date):%Y-%m-%d} {r.session}: {int(r.orders):,} "
                         f"orders, {int(r.trades):,} trades"
                         + (", students traded" if f"{pd.Timestamp(r.date):%Y-%m-%d}"
                            in students else ""),
                "value": _session_value(r.date, r.session)} for r in sessions.itertuples()]
    focus = None if chosen is not None else (run or {}).get("book_focus")
    if chosen is not None and students:  # a lesson opens on the students' first day
        with_students = sessions[sessions["date"].dt.strftime("%Y-%m-%d").isin(students)
                                 & (sessions["trades"] > 0)]
        focus = (f"{with_students['date'].iloc[0]:%Y-%m-%d}" if len(with_students)
                 else min(students))
    pick, note = pick_session(sessions, focus)
    text = html.Div([html.Span(label), html.Br(), html.Span(note)]) if note else label
    return (options, _session_value(pick["date"], pick["session"]),
            analysis.year_options(years), year, text, first, last, first)


def start_record(run: dict[str, Any] | None, date: str | None
                 ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Any]:
    """Record button: the session's scenario run again recording one more day's order
    book, queued in the server's job queue (straight from the cache if it has that run).

    Returns:
        (the job to follow, ``{"id", "day"}``, or None; the new run record or None; the
        message: what is wrong, "Recorded ..." or "" for a queued run).
    """
    if not date:
        return None, None, error_text("Pick a day to record.")
    try:
        day = f"{pd.Timestamp(str(date)[:10]):%Y-%m-%d}"
    except ValueError:
        return None, None, error_text(f"Record: '{str(date)[:40]}' is not a date YYYY-MM-DD.")
    levers = (run or {}).get("levers") or runs.default_levers()
    try:
        key = (run or {}).get("key") or runs.run_key(*runs.resolve(levers)[:2])
    except Exception as err:  # noqa: BLE001 - a bad lever's message
        return None, None, error_text(runs.lever_error_message(err))
    # The run's tables from the cache only: nothing is run in the web server (if the
    # cache lost them, the record's own days are kept).
    tables = runs.cached_tables(key, ["book_events", "market_daily"])
    recorded = list((run or {}).get("book_days") or [])
    if tables is not None:
        last = pd.to_datetime(tables["market_daily"]["date"]).max()
        if pd.notna(last) and pd.Timestamp(day) > last:
            return None, None, error_text(f"Record: {day} is after the last trading day "
                                          f"({last:%Y-%m-%d}).")
        events = tables.get("book_events")
        if events is not None and len(events):
            recorded = [f"{d:%Y-%m-%d}" for d in pd.to_datetime(events["date"])]
    days = sorted(set(recorded) | {day})
    out = runs.queue_runs([("Record", levers, days)])
    if out["error"]:
        return None, None, error_text(out["error"])
    if out["records"]:
        return None, _focus(out["records"][0], day), _recorded_text(day)
    return dict(out["job"], day=day), None, ""


def _focus(record: dict[str, Any], day: str) -> dict[str, Any]:
    return dict(record, book_focus=day)


def _recorded_text(day: str) -> html.Div:
    return html.Div(f"Recorded {day} (the next trading day if it was none); the day "
                    "shown is the nearest recorded day with trades.",
                    className="et-message-info")


def follow_record(job: dict[str, Any], cancel: bool = False
                  ) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any] | None, Any]:
    """Where the session's recording job stands (after cancelling it if asked).

    Returns:
        (the job while queued or running, else None; the progress view of
        :func:`runs.follow_runs`; the new run record, on the recorded day, or None; the
        message).
    """
    view = runs.follow_runs(job, cancel)
    if view["active"]:
        return view["job"], view, None, ""
    if view["records"]:
        day = str(job.get("day") or "")
        return None, view, _focus(view["records"][0], day), _recorded_text(day)
    text = view["label"]
    return None, view, None, (error_text(text) if view["error"] else
                              html.Div(text, className="et-message-info"))


@callback(*job_callback_io("market-record", "market-record"),
          State("market-record-date", "date"), State("app-run", "data"))
def on_record(n_clicks: int | None, _cancels: int | None, polls: int | None,
              job: dict[str, Any] | None, date: str | None,
              run: dict[str, Any] | None) -> tuple[Any, ...]:
    """Record, Cancel and the polls: queue the recording run, follow it, and make it the
    session's run when done (also run when the page opens, to pick up a job after a
    reload)."""
    trigger = ctx.triggered_id
    return job_step(trigger == "market-record" and bool(n_clicks),
                    trigger == "market-record-cancel", polls, job,
                    lambda: start_record(run, date), follow_record)


def step_after(trigger: str | None, step: int, events: pd.DataFrame | None) -> int:
    """The replay step after a button press (or a tick of Play).

    Args:
        trigger: Id of what was pressed; a new day starts at 0.
        step: The current step.
        events: The session's events.
    """
    n = 0 if events is None else len(events)
    if trigger in (None, "market-session", "market-first") or events is None:
        return 0
    if trigger == "market-prev":
        return max(0, step - 1)
    if trigger == "market-next":
        return min(n, step + 1)
    if trigger == "market-next-trade":
        return book.next_trade_step(events, step)
    # "next order" and Play move one whole order (with the trades it makes) at a time
    return book.next_order_step(events, step)


@callback(Output("market-step", "value"), Output("market-step", "max"),
          Output("market-interval", "disabled", allow_duplicate=True),
          Output("market-play", "children", allow_duplicate=True),
          Input("market-session", "value"), Input("market-first", "n_clicks"),
          Input("market-prev", "n_clicks"), Input("market-next", "n_clicks"),
          Input("market-next-order", "n_clicks"), Input("market-next-trade", "n_clicks"),
          Input("market-interval", "n_intervals"),
          State("market-step", "value"), State("app-run", "data"),
          State("market-lesson", "value"), prevent_initial_call=True)
def move(session: str | None, *args: Any) -> tuple[Any, ...]:
    """Move the replay: to the start, one event back or on, or one order on."""
    step, run, lesson = args[-3], args[-2], args[-1]
    events = _events_for(run, session, lesson)
    n = 0 if events is None else len(events)
    new = step_after(ctx.triggered_id, int(step or 0), events)
    if ctx.triggered_id == "market-interval" and new >= n:
        return new, max(n, 1), True, "Play"  # stop at the end of the day
    return new, max(n, 1), no_update, no_update


@callback(Output("market-interval", "disabled"), Output("market-play", "children"),
          Input("market-play", "n_clicks"), State("market-interval", "disabled"),
          prevent_initial_call=True)
def toggle_play(n_clicks: int, disabled: bool) -> tuple[bool, str]:
    """Play moves one order on at the chosen speed; press again to pause."""
    if disabled:  # paused: start playing
        return False, "Pause"
    return True, "Play"


@callback(Output("market-interval", "interval"), Input("market-speed", "value"))
def set_speed(milliseconds: int | None) -> int:
    """Play's speed: the time between two orders."""
    allowed = {option["value"] for option in SPEEDS}
    return int(milliseconds) if milliseconds in allowed else DEFAULT_SPEED_MS


@callback(Output("market-ladder", "figure"), Output("market-depth", "figure"),
          Output("market-tape", "data"), Output("market-tape", "columns"),
          Output("market-event", "children"), Output("market-status", "children"),
          Input("market-step", "value"), Input("market-session", "value"),
          State("app-run", "data"), State("market-lesson", "value"))
def render_book(step: int | None, session: str | None, run: dict[str, Any] | None,
                lesson: str | None = None) -> tuple[Any, ...]:
    """The book as it stood after ``step`` events of the chosen day (a lesson's orders
    and trades named by who placed them: a student, or an agent)."""
    try:
        events = _events_for(run, session, lesson)
    except Exception as err:  # noqa: BLE001
        events, message = None, runs.lever_error_message(err)
    else:
        message = "No recorded order book in this run."
    if events is None or events.empty:
        empty = figures.empty_figure(message)
        return empty, empty, [], [], message, ""
    state = book.replay(events, int(step or 0))
    ladder = figures.order_ladder(state.bids, state.asks, state.limit_down, state.limit_up,
                                  state.incoming)
    depth = figures.depth_chart(state.bids, state.asks, state.limit_down, state.limit_up)
    label = f"{_lesson(lesson).label if lesson else (run or {}).get('label', '')}, {session}"
    ladder, depth = figures.caption(ladder, label), figures.caption(depth, label)
    tape = state.tape.iloc[::-1].rename(columns={"buyer_id": "buyer", "seller_id": "seller"})
    if "buyer_label" in events:  # a lesson: who traded, a student or an agent
        at = tape["step"] - 1
        tape = tape.assign(buyer=events["buyer_label"].to_numpy()[at],
                           seller=events["seller_label"].to_numpy()[at])
    data, columns = table_payload(tape, {"price": ".2f", "quantity": ",.0f"})
    spread = (f"best bid {state.best_bid:.2f}" if state.best_bid is not None else "no bid") + \
        ", " + (f"best ask {state.best_ask:.2f}" if state.best_ask is not None else "no ask")
    status = (f"Step {state.step} of {state.n_events}: {state.orders_seen} orders so far, "
              f"{len(state.tape)} trades; {spread}.")
    if len(state.tape):
        vwap = float(np.average(state.tape["price"], weights=state.tape["quantity"]))
        status += f" Volume-weighted price so far {vwap:.2f} CNY/t."
    if "trader_label" in events:
        status += " " + lesson_status(events, state.step)
    return ladder, depth, data, columns, book.describe_event(state.last_event), status


@callback(Output("market-curves", "figure"), Output("market-curve-note", "children"),
          Input("market-year", "value"), State("app-run", "data"),
          State("market-lesson", "value"))
def render_curves(year: int | None, run: dict[str, Any] | None,
                  lesson: str | None = None) -> tuple[Any, Any]:
    """The year's supply and demand of quota and where they cross."""
    if year is None:
        return figures.empty_figure("No compliance year in this run"), ""
    try:
        chosen = _lesson(lesson)
        if chosen is not None:
            tables, meta = chosen.tables, chosen.record
            run = {"label": chosen.label}
        else:
            tables, meta = runs.load_session_tables(run, ["firm_years", "firms",
                                                          "abatement_options",
                                                          "market_years"])
    except Exception as err:  # noqa: BLE001
        return figures.empty_figure(runs.lever_error_message(err)), ""
    exclude = (meta.get("verified_rule_sectors") or {}).get(str(year), [])
    curves = analysis.quota_curves(tables["firm_years"], tables["firms"],
                                   tables["abatement_options"], tables["market_years"], year,
                                   exclude, bool(meta.get("include_indirect")))
    note = curve_note(curves, year, exclude)
    # the same axes every year, so tightening visibly moves the supply line
    every = [analysis.quota_curves(tables["firm_years"], tables["firms"],
                                   tables["abatement_options"], tables["market_years"], y,
                                   (meta.get("verified_rule_sectors") or {}).get(str(y), []),
                                   bool(meta.get("include_indirect")))
             for y in analysis.compliance_years(tables["market_years"])]
    x_range, y_max = analysis.curve_axes(every)
    fig = figures.quota_supply_demand(curves, year, x_range=x_range, y_max=y_max)
    return figures.caption(fig, (run or {}).get("label", "")), note


def lesson_status(events: pd.DataFrame, step: int) -> str:
    """A lesson's day so far: the students' orders and the trades they took part in."""
    done = events.iloc[:step]
    orders = done[(done["event"] == "order")
                  & done["trader_label"].fillna("").str.startswith("student")]
    trades = done[(done["event"] == "trade")
                  & (done["buyer_label"].fillna("").str.startswith("student")
                     | done["seller_label"].fillna("").str.startswith("student"))]
    return (f"Students' orders so far {len(orders):,}, trades with a student "
            f"{len(trades):,} ({int(trades['quantity'].sum()):,} t).")


def curve_note(curves: dict[str, Any], year: int, excluded: list[str]) -> str:
    """A sentence comparing the crossing with the model's equilibrium and market price."""
    price, model_price, mean = curves["price"], curves["model_price"], curves["mean_price"]
    parts = []
    if curves["shortage"] <= 0:
        parts.append(f"In {year} the quota covers unabated emissions: no cut is needed, "
                     "so the one-year equilibrium is 0.")
    elif not np.isfinite(price):
        parts.append(f"In {year} all the abatement options together cannot close the gap.")
    else:
        parts.append(f"In {year} firms must cut {curves['shortage'] / 1e6:,.1f} Mt; the "
                     f"curves cross at {price:,.1f} CNY/t")
        if np.isfinite(model_price):
            parts[-1] += (f" (the model's one-year equilibrium, without banking: "
                          f"{model_price:,.1f})")
        parts[-1] += "."
    if np.isfinite(mean):
        parts.append(f"The market's mean price that year was {mean:,.1f} CNY/t.")
    if excluded:
        parts.append(f"Left out: {', '.join(excluded)}, whose quota equals verified "
                     "emissions this year.")
    return " ".join(parts)


register_csv_downloads(["market-ladder", "market-depth", "market-curves"])
