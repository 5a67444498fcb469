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
    JOB_POLL_MS,
    card,
    chart_card,
    chart_row,
    error_text,
    job_callback_io,
    job_progress,
    job_step,
    job_stores,
    message_box,
    register_csv_downloads,
)
from etsim.dashboard.figures import run as figures
from etsim.dashboard.levers import (
    lever_panel,
    lever_states,
    levers_from_query,
    levers_from_values,
    register_lever_callbacks,
)

dash.register_page(__name__, path="/explore", name="Explore", title="etsim: Explore",
                   order=1)

# headline cards: (id suffix, headline key, format)
CARDS = [
    ("mean-price", "Mean price (CNY/t)", "{:,.1f}"),
    ("final-price", "Final-year mean price (CNY/t)", "{:,.1f}"),
    ("equilibrium", "Mean equilibrium with banking (CNY/t)", "{:,.1f}"),
    ("abatement", "Abatement (Mt)", "{:,.1f}"),
    ("abatement-cost", "Abatement cost (bn CNY)", "{:,.2f}"),
    ("cost-per-t", "Cost per tonne emitted (CNY/t)", "{:,.2f}"),
    ("volume", "Volume traded (Mt)", "{:,.1f}"),
    ("compliance", "Compliance rate (%)", "{:,.2f}"),
    ("bank", "Bank at end (Mt)", "{:,.1f}"),
]
GRAPHS = ["explore-price", "explore-annual", "explore-scarcity", "explore-bank",
          "explore-sector-balance", "explore-abatement", "explore-volume", "explore-compliance",
          "explore-who-pays", "explore-auctions", "explore-reserve"]
TABLES = ["market_daily", "market_years", "firm_years", "firms", "abatement_options",
          "trades"]
BASELINE_TABLES = ["market_daily", "market_years", "firm_years", "trades"]
# Charts (their place in GRAPHS) that draw the baseline as a ghost.
GHOSTED = frozenset({0, 1, 3, 8})
# A short explanation beside each chart, for a class or a first-time reader.
NOTES = {
    "explore-price": "The **market close** is the last listed trade of the day; a day "
                     "without one is a gap, not a carried price. The **equilibrium with "
                     "banking** is what a market with perfect foresight would pay; the "
                     "**fundamental price** is firms' own estimate of it. The grey line is "
                     "the scenario's unchanged run (baseline).",
    "explore-annual": "The **one-year equilibrium** ignores banking: it is the cost of the "
                      "last tonne abated to cover this year alone. Banking lets firms save "
                      "cheap abatement for later years, so the two equilibria differ.",
    "explore-scarcity": "Above 1, firms emitted more than the quota issued for the year "
                        "and must draw on the bank, buy from others or abate.",
    "explore-bank": "The **surplus banked** is all quota issued so far less all verified "
                    "emissions. Quota **held in accounts** is higher under an absolute "
                    "cap: a cap's quota is issued in its own year and surrendered the "
                    "next, a benchmark's after verification.",
    "explore-sector-balance": "Quota received (free and bought at auction) less verified "
                              "emissions. Firms cleaner than the benchmark receive more "
                              "than they emit and sell the surplus.",
    "explore-incentive": "A benchmark gives each firm quota for its output at the "
                         "sector's standard intensity: a firm **below** the benchmark "
                         "(left of the dotted line) earns a surplus to sell, one above "
                         "it must buy. That is the incentive to clean up.",
    "explore-abatement": "Firms adopt a technology when it costs less per tonne than "
                         "the price they expect; the cheapest go first.",
    "explore-volume": "Trading **bunches before deadlines**: firms learn their exact "
                      "position only after verification and buy what they lack just "
                      "before they must surrender it.",
    "explore-compliance": "Share of the obligation surrendered, and share of firms that "
                          "surrendered all of theirs; bars start at zero.",
    "explore-who-pays": "What each sector pays per tonne it emits: abatement, quota "
                        "bought less quota sold (at trade prices; below zero a net "
                        "seller earns), auction payments, reserve purchases and "
                        "penalties. The grey diamonds are the baseline's totals.",
    "explore-auctions": "Quota sold at auction under a paid share: tonnes and the "
                        "clearing price.",
    "explore-reserve": "The reserve pool sets quota aside (intake) and sells it when the "
                       "price rises above its trigger (releases); the triggers are "
                       "drawn on the price chart.",
}
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
        # The session's queued or running job ({"id": token}) and its poll.
        *job_stores("explore"),
        # The baseline (the scenario unchanged) queued after a lever change, for the
        # ghost line: its job, its poll, and its state for render.
        dcc.Store(id="explore-baseline-job", storage_type="session"),
        dcc.Interval(id="explore-baseline-poll", interval=JOB_POLL_MS, disabled=True,
                     max_intervals=0),
        dcc.Store(id="explore-baseline"),
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
                job_progress("explore"),
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
                chart_row(chart_card("explore-price", 430, NOTES["explore-price"])),
                chart_row(chart_card("explore-annual", note=NOTES["explore-annual"]),
                          chart_card("explore-scarcity", note=NOTES["explore-scarcity"])),
                chart_row(chart_card("explore-who-pays", 420, NOTES["explore-who-pays"])),
                chart_row(chart_card("explore-bank", note=NOTES["explore-bank"]),
                          chart_card("explore-sector-balance",
                                     note=NOTES["explore-sector-balance"])),
                chart_row(html.Div([
                    html.Div([html.Label("Year "), dcc.Dropdown(
                        id="explore-year", clearable=False, style={"width": "120px"})],
                        className="et-inline"),
                    chart_card("explore-incentive", 360, NOTES["explore-incentive"])]),
                    chart_card("explore-abatement", 400, NOTES["explore-abatement"])),
                chart_row(chart_card("explore-volume", note=NOTES["explore-volume"]),
                          chart_card("explore-compliance", note=NOTES["explore-compliance"])),
                chart_row(chart_card("explore-auctions", note=NOTES["explore-auctions"]),
                          chart_card("explore-reserve", note=NOTES["explore-reserve"])),
            ], className="et-content"),
        ], className="et-layout"),
    ])


register_lever_callbacks("explore", "app-run", lambda data: data.get("levers"),
                         message_id="explore-lever-message")
register_csv_downloads([*GRAPHS, "explore-incentive"])

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


# One callback for Run, Cancel and the polls (components.job_step, as on every page that
# queues runs); it also runs when the page opens, to pick up the session's job after a
# reload. The finished run goes to the app-wide store app-run.
@callback(*job_callback_io("explore", "explore-run"), *lever_states("explore"))
def run_scenario(n_clicks: int | None, _cancels: int | None, polls: int | None,
                 job: dict[str, Any] | None, *values: Any) -> tuple[Any, ...]:
    """Run, Cancel and the page's polls: queue the run, follow it, publish it when done."""
    trigger = ctx.triggered_id
    return job_step(trigger == "explore-run" and bool(n_clicks),
                    trigger == "explore-cancel", polls, job,
                    lambda: start_run(levers_from_values(values)), follow_job)


def _format(value: float, fmt: str) -> str:
    return "-" if value is None or not np.isfinite(value) else fmt.format(value)


@callback(
    *[Output(graph_id, "figure") for graph_id in GRAPHS],
    *[Output(f"explore-card-{key}", "children") for key, _, _ in CARDS],
    Output("explore-run-label", "children"),
    Input("app-run", "data"),
    Input("explore-baseline", "data"),
)
def render(run: dict[str, Any] | None, baseline: dict[str, Any] | None = None) -> list[Any]:
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
    base = baseline_tables(run)
    levers = run.get("levers") or {}
    trades = tables.get("trades")
    figs = [
        figures.price_chart(daily, years, observed, deadlines, baseline=base.get("market_daily"),
                            reserve=levers, releases=analysis.reserve_releases(trades)),
        figures.annual_price_chart(years, baseline=base.get("market_years")),
        figures.scarcity_chart(years),
        figures.bank_chart(years, baseline=base.get("market_years")),
        figures.sector_balance_chart(tables["firm_years"]),
        figures.abatement_chart(tables["firm_years"], tables["firms"],
                                tables["abatement_options"]),
        figures.volume_chart(daily, deadlines),
        figures.compliance_chart(years),
        figures.who_pays_chart(analysis.who_pays(tables["firm_years"], trades),
                               baseline=analysis.who_pays(base["firm_years"],
                                                          base.get("trades"))
                               if "firm_years" in base else None),
        figures.auction_chart(analysis.auction_results(trades)),
        figures.reserve_chart(years),
    ]
    label = run.get("label", "")
    note = baseline_note(run, base, baseline)
    figs = [figures.caption(fig, label + (f" | {note}" if note and index in GHOSTED else ""))
            for index, fig in enumerate(figs)]
    head = analysis.headline(tables)
    cards = [_format(head.get(label, np.nan), fmt) for _, label, fmt in CARDS]
    return figs + cards + [html.Div([html.Div(label), html.Div(note, className="et-baseline-note",
                                                                id="explore-baseline-note")])
                           if note else label]


def baseline_note(run: dict[str, Any], base: dict[str, Any],
                  baseline: dict[str, Any] | None) -> str:
    """What the page says about the ghost line: "" when it is drawn or not needed."""
    if base or baseline_levers(run.get("levers")) is None:
        return ""
    if baseline and baseline.get("state") == "failed":
        return f"Baseline (grey line) not available: {baseline.get('message', '')}".strip()
    return "Baseline (grey line): computing the unchanged scenario; it appears when done."


def baseline_levers(levers: dict[str, Any] | None) -> dict[str, Any] | None:
    """The levers of the scenario unchanged (same sectors, firm count and seed) when
    ``levers`` changed something, else None (no ghost line to draw)."""
    levers = levers or {}
    try:
        base = runs.scenario_levers(levers.get("scenario") or runs.DEFAULT_SCENARIO,
                                    levers.get("sectors"))
    except (ScenarioError, KeyError, IndexError):
        return None
    base.update({"n_firms": levers.get("n_firms", base["n_firms"]),
                 "seed": levers.get("seed", base["seed"])})
    if base == levers:
        return None
    try:  # levers that cannot run have no baseline to draw beside them
        changed = runs.run_key(*runs.resolve(levers)[:2])
        unchanged = runs.run_key(*runs.resolve(base)[:2])
    except Exception:  # noqa: BLE001 - the lever check gives the message
        return None
    return None if changed == unchanged else base


def baseline_tables(run: dict[str, Any]) -> dict[str, Any]:
    """The tables of the run's scenario unchanged (same sectors, firms and seed), if the
    cache has them and the run changed a lever; else an empty dict (no ghost line)."""
    base = baseline_levers(run.get("levers"))
    if base is None:
        return {}
    try:
        cached = runs.cached_result(base)
    except Exception:  # noqa: BLE001 - a ghost line is optional
        return {}
    if not cached:
        return {}
    return {name: cached["tables"][name] for name in BASELINE_TABLES
            if name in cached["tables"]}


def baseline_step(trigger: str | None, job: dict[str, Any] | None,
                  levers: dict[str, Any], polls: int | None) -> tuple[Any, ...]:
    """One turn of the baseline's queue: after any lever change, the scenario's unchanged
    run is queued (unless the cache has it or it is already queued) so that the ghost
    line appears; polls follow it.

    Args:
        trigger: What fired: ``explore-baseline-poll`` (a poll), else a lever change.
        job: The baseline job store (``{"id", "levers"}``) or None.
        levers: The panel's levers.
        polls: The poll's n_intervals.

    Returns:
        (job store, poll disabled, poll max_intervals, ``explore-baseline`` data: the
        state of the baseline, ``{"state": "computing"|"ready"|"failed", ...}``).
    """
    def following(kept: dict[str, Any]) -> tuple[Any, ...]:
        return (kept, False, (polls or 0) + 1, {"state": "computing",
                                                 "levers": kept["levers"]})

    if trigger == "explore-baseline-poll":
        if not (job and job.get("id")):
            return None, True, no_update, no_update
        view = runs.follow_runs(job)
        if view["active"]:
            return following(job)
        state = "ready" if view["records"] else "failed"
        return None, True, no_update, {"state": state, "levers": job.get("levers"),
                                       "message": view["label"]}
    wanted = baseline_levers(levers)
    if wanted is None:
        return no_update, no_update, no_update, no_update
    if job and job.get("id") and job.get("levers") == wanted:
        return following(job)  # already queued (also after a reload): keep following
    if job and job.get("id"):  # another baseline (the sectors or seed changed): drop it
        runs.follow_runs(job, cancel=True)
    out = runs.queue_runs([("Baseline", wanted)])
    if out["records"]:
        return None, True, no_update, {"state": "ready", "levers": wanted}
    if out["error"]:  # bad levers: the lever check says why; no ghost line
        return None, True, no_update, no_update
    return following({**out["job"], "levers": wanted})


@callback(Output("explore-baseline-job", "data"), Output("explore-baseline-poll", "disabled"),
          Output("explore-baseline-poll", "max_intervals"), Output("explore-baseline", "data"),
          Input("explore-query", "data"), Input("explore-baseline-poll", "n_intervals"),
          State("explore-baseline-job", "data"), State("explore-baseline", "data"),
          *lever_states("explore"))
def on_baseline(_query: str | None, polls: int | None, job: dict[str, Any] | None,
                shown: dict[str, Any] | None, *values: Any) -> tuple[Any, ...]:
    """Queue and follow the baseline run after a lever change (see :func:`baseline_step`);
    the charts are redrawn only when the baseline's state changes, not at every poll."""
    out = baseline_step(ctx.triggered_id, job, levers_from_values(values), polls)
    return out[:3] + ((no_update,) if out[3] == shown else (out[3],))


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
    fig = figures.caption(figures.incentive_chart(firm_years, year), run.get("label", ""))
    return fig, analysis.year_options(years), year
