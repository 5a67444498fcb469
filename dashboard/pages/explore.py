"""Explore: run one scenario with chosen levers and see prices, scarcity, firms' surplus,
abatement, volume and compliance.

Run puts the run in the server's queue (:mod:`etsim.dashboard.jobs`); the page keeps
the job's id in the session store ``explore-job`` and polls it (``explore-poll``) for its
place in line or progress, so a reload picks the run up again. The finished run's record
goes into the session store ``app-run`` and every chart is drawn from the cached tables
by :func:`render`.
"""

from __future__ import annotations

from typing import Any

import dash
import numpy as np
from dash import (
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
    html,
    no_update,
    set_props,
)

from etsim import ScenarioError
from etsim.dashboard import analysis, runs
from etsim.dashboard.components import (
    card,
    chart_row,
    error_text,
    graph,
    message_box,
)
from etsim.dashboard.figures import run as figures
from etsim.dashboard.levers import (
    lever_panel,
    lever_states,
    levers_from_query,
    levers_from_values,
    register_lever_callbacks,
)

dash.register_page(__name__, path="/", name="Explore", title="etsim: Explore", order=0)

# headline cards: (id suffix, headline key, format)
CARDS = [
    ("mean-price", "Mean price (CNY/t)", "{:,.1f}"),
    ("final-price", "Final-year mean price (CNY/t)", "{:,.1f}"),
    ("equilibrium", "Mean equilibrium price (CNY/t)", "{:,.1f}"),
    ("abatement", "Abatement (Mt)", "{:,.1f}"),
    ("abatement-cost", "Abatement cost (bn CNY)", "{:,.2f}"),
    ("volume", "Volume traded (Mt)", "{:,.1f}"),
    ("compliance", "Compliance rate (%)", "{:,.2f}"),
    ("bank", "Bank at end (Mt)", "{:,.1f}"),
]
GRAPHS = ["explore-price", "explore-annual", "explore-scarcity", "explore-bank",
          "explore-sector-balance", "explore-abatement", "explore-volume", "explore-compliance"]
TABLES = ["market_daily", "market_years", "firm_years", "firms", "abatement_options"]
POLL_MS = 250  # how often a page asks about its queued or running job
HISTORY_SIZE = 20  # runs kept in the session's run history


def layout(**query: Any) -> html.Div:
    """The Explore page; a URL query string (``?scenario=...&steel.tightening_pct=3``)
    sets the levers, so a run can be shared and reopened."""
    query = {k: v for k, v in query.items() if not k.startswith("_")}
    levers = levers_from_query(query, runs.default_levers()) if query else None
    return html.Div([
        # The session's runs, newest first (records as in app-run).
        dcc.Store(id="explore-history", storage_type="session"),
        dcc.Store(id="explore-url-done"),
        # The session's queued or running job ({"id": token}): survives a reload.
        dcc.Store(id="explore-job", storage_type="session"),
        dcc.Interval(id="explore-poll", interval=POLL_MS, disabled=True,
                     max_intervals=0),
        html.H2("Explore a scenario"),
        html.P("Pick a scenario, change the policy levers and press Run. The default is "
               "China's market for the three sectors that join in 2024 (steel, cement, "
               "aluminium), 2024-2030.", className="et-page-intro"),
        html.Div([
            html.Aside([
                # Run and the messages first: in view at 1366x768 whatever the levers' length.
                html.Div([html.Button("Run", id="explore-run", n_clicks=0),
                          html.Button("Cancel", id="explore-cancel", className="et-secondary",
                                      disabled=True)], className="et-buttons"),
                html.Div([html.Progress(id="explore-progress", value="0", max="1"),
                          html.Div(id="explore-progress-label", className="et-progress-label")],
                         id="explore-progress-box", style={"display": "none"}),
                message_box("explore-lever-message"),
                message_box("explore-message"),
                html.Div([html.Label("Run history"), dcc.Dropdown(
                    id="explore-history-pick", options=[], placeholder="this session's runs",
                    clearable=False, optionHeight=60)], className="et-field"),
                lever_panel("explore", levers, from_url=bool(query)),
            ], className="et-sidebar"),
            html.Div([
                html.Div([card(f"explore-card-{key}", label) for key, label, _ in CARDS],
                         className="et-cards"),
                html.Div(id="explore-run-label", className="et-run-label"),
                chart_row(graph("explore-price", 430)),
                chart_row(graph("explore-annual"), graph("explore-scarcity")),
                chart_row(graph("explore-bank"), graph("explore-sector-balance")),
                chart_row(html.Div([
                    html.Div([html.Label("Year "), dcc.Dropdown(
                        id="explore-year", clearable=False, style={"width": "120px"})],
                        className="et-inline"),
                    graph("explore-incentive", 360)]), graph("explore-abatement", 400)),
                chart_row(graph("explore-volume"), graph("explore-compliance")),
            ], className="et-content"),
        ], className="et-layout"),
    ])


register_lever_callbacks("explore", "app-run", lambda data: data.get("levers"),
                         message_id="explore-lever-message")

# The levers go into the address bar without a page load (replaceState), so the URL can
# be copied and reopened; Dash's own Location would re-render the page.
clientside_callback(
    """function(query) {
        if (query && window.location.search !== query) {
            window.history.replaceState(window.history.state, '',
                                        window.location.pathname + query);
        }
        return query || '';
    }""",
    Output("explore-url-done", "data"), Input("explore-query", "data"))


def add_to_history(history: list[dict[str, Any]] | None, run: dict[str, Any]
                   ) -> list[dict[str, Any]]:
    """The session's run history with ``run`` first (once), at most HISTORY_SIZE runs."""
    kept = [r for r in (history or []) if r.get("key") != run.get("key")]
    return [run] + kept[:HISTORY_SIZE - 1]


@callback(Output("explore-history", "data"), Output("explore-history-pick", "options"),
          Output("explore-history-pick", "value"), Input("app-run", "data"),
          State("explore-history", "data"))
def on_new_run(run: dict[str, Any] | None, history: list[dict[str, Any]] | None
               ) -> tuple[Any, Any, Any]:
    """Every run shown on Explore goes into the session's run history."""
    history = add_to_history(history, run) if run and run.get("key") else (history or [])
    options = [{"label": r.get("label", r["key"]), "value": r["key"]} for r in history]
    return history, options, run.get("key") if run else None


@callback(Input("explore-history-pick", "value"), State("explore-history", "data"),
          State("app-run", "data"), prevent_initial_call=True)
def on_history_pick(key: str | None, history: list[dict[str, Any]] | None,
                    run: dict[str, Any] | None) -> None:
    """Switch to a run of the history: its charts and its levers."""
    if not key or (run and run.get("key") == key):
        return
    for record in history or []:
        if record.get("key") == key:
            set_props("app-run", {"data": record})
            return


def execute_run(levers: dict[str, Any], report: runs.Progress | None = None
                ) -> tuple[dict[str, Any] | None, Any]:
    """Run the scenario the levers describe here, in this process (or take it from the
    cache); the page itself goes through the queue (:func:`start_run`).

    Returns:
        The session's new run record (None on bad levers or a failed run) and the
        message for the page: the error's text, or how the run went.
    """
    try:
        result = runs.run_tables(levers, progress=report)
    except (runs.LeverError, ScenarioError) as err:
        return None, error_text(str(err))
    except Exception as err:  # a failed run must leave a message, not a dead page
        return None, error_text(runs.lever_error_message(err))
    return runs.session_run(levers, result), _ran_text(result["meta"], result["cached"])


def _ran_text(meta: dict[str, Any], cached: bool) -> html.Div:
    note = "Taken from the cache." if cached else \
        f"Ran in {meta.get('wall_time_s', 0):.1f} s."
    return html.Div(note, className="et-message-info")


def start_run(levers: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                               dict[str, Any] | None, Any]:
    """Run button: a run the cache has is shown at once; any other is queued.

    Returns:
        (the job to follow or None, the session's new run record or None, the message:
        a bad lever's text, "Taken from the cache." or "" for a queued run).
    """
    out = runs.queue_runs([("Run", levers)])
    if out["error"]:
        return None, None, error_text(out["error"])
    if out["records"]:
        record = out["records"][0]
        return None, record, _ran_text(record["meta"], True)
    return out["job"], None, ""


def follow_job(job: dict[str, Any], cancel: bool = False
               ) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any] | None, Any]:
    """Where the session's job stands (after cancelling it if asked).

    Returns:
        (the job while it is queued or running, else None; the progress view of
        :func:`runs.follow_runs`; the finished run's record or None; the message).
    """
    view = runs.follow_runs(job, cancel)
    if view["active"]:
        return view["job"], view, None, ""
    if view["records"]:
        record = view["records"][0]
        return None, view, record, _ran_text(record.get("meta", {}), view["cached"][0])
    text = view["label"]
    return None, view, None, (error_text(text) if view["error"] else
                              html.Div(text, className="et-message-info"))


def _controls(job: Any, view: dict[str, Any] | None, message: Any, polls: int | None
              ) -> tuple[Any, ...]:
    """The Run controls' outputs; ``job`` is what the job store gets (no_update: as is)."""
    active = bool(view and view["active"])
    # One poll at a time: the next is allowed only once this answer is in (max_intervals
    # one above the polls so far). A fixed-rate poll would, on a busy server, supersede
    # each slow answer with the next request, and the page would never update.
    return (job, not active, (polls or 0) + 1 if active else no_update, active, not active,
            {"display": "block"} if active else {"display": "none"},
            view["value"] if view else "0", view["max"] if view else "1",
            view["label"] if active and view else "", message)


# The session's run goes to the app-wide store with set_props, not as an Output: the
# store outlives the page, and an Output there would fire this callback whenever the
# page is opened (Dash ignores prevent_initial_call when only the input is new).
# One callback for Run, Cancel and the polls (no two callbacks write the same outputs);
# it also runs when the page opens, to pick up the session's job after a reload.
@callback(
    Output("explore-job", "data"), Output("explore-poll", "disabled"),
    Output("explore-poll", "max_intervals"),
    Output("explore-run", "disabled"), Output("explore-cancel", "disabled"),
    Output("explore-progress-box", "style"), Output("explore-progress", "value"),
    Output("explore-progress", "max"), Output("explore-progress-label", "children"),
    Output("explore-message", "children"),
    Input("explore-run", "n_clicks"), Input("explore-cancel", "n_clicks"),
    Input("explore-poll", "n_intervals"), Input("explore-job", "data"),
    *lever_states("explore"),
)
def run_scenario(n_clicks: int | None, _cancels: int | None, polls: int | None,
                 job: dict[str, Any] | None, *values: Any) -> tuple[Any, ...]:
    """Run, Cancel and the page's polls: queue the run, follow it, publish it when done."""
    trigger = ctx.triggered_id
    known = bool(job and job.get("id"))
    if trigger == "explore-run" and n_clicks and not known:
        job, record, message = start_run(levers_from_values(values))
        if record is not None:
            set_props("app-run", {"data": record})
        if job is None:
            return _controls(no_update, None, message, polls)
    elif not known:  # nothing to follow; the store is left alone (it may be loading)
        return _controls(no_update, None, no_update, polls)
    assert job is not None
    kept, view, record, message = follow_job(job, cancel=trigger == "explore-cancel")
    if record is not None:
        set_props("app-run", {"data": record})
    unchanged = kept is not None and trigger != "explore-run"
    return _controls(no_update if unchanged else kept, view, message, polls)


def _format(value: float, fmt: str) -> str:
    return "-" if value is None or not np.isfinite(value) else fmt.format(value)


@callback(
    *[Output(graph_id, "figure") for graph_id in GRAPHS],
    *[Output(f"explore-card-{key}", "children") for key, _, _ in CARDS],
    Output("explore-run-label", "children"),
    Input("app-run", "data"),
)
def render(run: dict[str, Any] | None) -> list[Any]:
    """Draw every chart and headline of the session's run (empty states before a run)."""
    if not run:
        empty = [figures.empty_figure("Press Run to simulate the scenario")] * len(GRAPHS)
        return empty + ["-"] * len(CARDS) + ["No run yet."]
    try:
        tables, meta = runs.load_session_tables(run, TABLES)
    except Exception as err:  # noqa: BLE001 - shown on the page instead of a dead chart
        message = runs.lever_error_message(err)
        return [figures.empty_figure(message)] * len(GRAPHS) + ["-"] * len(CARDS) + [message]
    daily, years = tables["market_daily"], tables["market_years"]
    deadlines = meta.get("deadlines", [])
    observed = analysis.observed_overlap(analysis.observed_prices(), daily)
    figs = [
        figures.price_chart(daily, years, observed, deadlines),
        figures.annual_price_chart(years),
        figures.scarcity_chart(years),
        figures.bank_chart(years),
        figures.sector_balance_chart(tables["firm_years"]),
        figures.abatement_chart(tables["firm_years"], tables["firms"],
                                tables["abatement_options"]),
        figures.volume_chart(daily, deadlines),
        figures.compliance_chart(years),
    ]
    head = analysis.headline(tables)
    cards = [_format(head.get(label, np.nan), fmt) for _, label, fmt in CARDS]
    return figs + cards + [run.get("label", "")]


# Apart from render so that both draw at once (Dash runs a callback whose input another
# callback sets only after that one has finished).
@callback(Output("explore-incentive", "figure"), Output("explore-year", "options"),
          Output("explore-year", "value"), Input("app-run", "data"),
          Input("explore-year", "value"))
def render_incentive(run: dict[str, Any] | None, year: int | None) -> tuple[Any, Any, Any]:
    """The surplus-ratio-against-intensity scatter for the chosen year (by default the
    last compliance year, where benchmarks have tightened the most)."""
    if not run:
        return (figures.empty_figure("Press Run to simulate the scenario",
                                     "Incentive: surplus ratio against intensity"), [], None)
    try:
        tables, _ = runs.load_session_tables(run, ["firm_years"])
    except Exception as err:  # noqa: BLE001
        return figures.empty_figure(runs.lever_error_message(err)), [], None
    firm_years = tables["firm_years"]
    years = sorted(int(y) for y in firm_years["year"].unique())
    if year not in years:
        year = years[-1] if years else None
    return figures.incentive_chart(firm_years, year), analysis.year_options(years), year
