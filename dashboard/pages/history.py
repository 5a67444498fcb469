"""History: the landing page. Observed CEA closes beside a simulated run of the market
from 2021 (``china-history`` by default), the error of each year's mean close and
volume, then the run's projection to 2030. Any shipped scenario can be put beside the
observed market.

The simulated run goes through the server's job queue like every other run
(:func:`components.job_step`); a run of the same scenario, size and seed that the
results cache holds is shown at once. The page opens with its run started, so a first
visitor sees the observed closes at once and the simulated path when it is done.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html

from etsim import ScenarioError, shipped_scenarios
from etsim.dashboard import analysis, runs
from etsim.dashboard.components import (
    chart_card,
    chart_row,
    data_table,
    error_text,
    job_callback_io,
    job_progress,
    job_step,
    job_stores,
    message_box,
    register_csv_downloads,
    table_payload,
)
from etsim.dashboard.figures import history as history_figures
from etsim.dashboard.figures import run as figures

dash.register_page(__name__, path="/", name="History", title="etsim: History", order=0)

HISTORY_SCENARIO = "china-history"
# The run's size as a share of the scenario's firms: a tenth runs in well under a minute
# on one core; volumes are compared at full scale (divided by the run's scale).
SIZES = ((0.1, "10% of the firms (quick)"), (0.25, "25% of the firms"),
         (1.0, "all firms (slow)"))
DEFAULT_SIZE = 0.1
GRAPHS = ["history-price", "history-annual", "history-volume"]
NOTES = {
    "history-price": "Black: the observed daily close of China's national market (CEA), "
                     "16 July 2021 to the end of 2025. Blue: the simulated market close "
                     "over the same days, then (light blue) the run's projection to 2030. "
                     "A day without a listed trade has no close and is a gap.",
    "history-annual": "The year's mean close over the days with a close (2021 from the "
                      "market's opening on 16 July), as `etsim calibrate` measures it.",
    "history-volume": "Observed volumes are the calibration sheet's yearly totals; a "
                      "run's volume is divided by its scale, so a run with a tenth of the "
                      "firms compares with the whole market.",
}
SOURCE = f"etsim simulation; observed: {history_figures.OBSERVED_SOURCE}"


def history_levers(scenario: str, size: float | None, seed: Any) -> dict[str, Any]:
    """The levers of a History run: the scenario as shipped (its own sectors and
    values), with ``size`` of its firms and the seed.

    Raises:
        ScenarioError: The scenario cannot be loaded.
    """
    levers = runs.scenario_levers(scenario or HISTORY_SCENARIO)
    share = float(size) if size else DEFAULT_SIZE
    levers["n_firms"] = max(len(levers["sectors"]), round(levers["n_firms"] * share))
    levers["seed"] = seed
    return levers


def layout(**query: Any) -> html.Div:
    """The History page; ``?scenario=NAME`` opens it with another shipped scenario."""
    scenario = query.get("scenario")
    if scenario not in shipped_scenarios():
        scenario = HISTORY_SCENARIO
    return html.Div([
        # The page's current run (a session record as in app-run, kept apart so that
        # the history run does not replace the one shown on Explore).
        dcc.Store(id="history-record", storage_type="session"),
        dcc.Store(id="history-url-done"),
        *job_stores("history"),
        html.H2("China's carbon market: observed and simulated"),
        html.P("The observed price of China's national carbon market since it opened in "
               "July 2021, beside the simulated market under the rules as they were "
               "(scenario china-history): its error each year, then where the run goes "
               "to 2030. Pick another scenario to put it beside the observed years it "
               "covers.", className="et-page-intro"),
        html.Div([
            html.Div([html.Label("Scenario"), dcc.Dropdown(
                id="history-scenario", options=shipped_scenarios(), value=scenario,
                clearable=False, style={"width": "220px"})], className="et-field"),
            html.Div([html.Label("Size of the run"), dcc.Dropdown(
                id="history-size", options=[{"label": label, "value": value}
                                            for value, label in SIZES],
                value=DEFAULT_SIZE, clearable=False, style={"width": "260px"})],
                className="et-field"),
            html.Div([html.Label("Seed"), dcc.Input(
                id="history-seed", type="text", value="1", className="et-num",
                style={"width": "80px"})], className="et-field"),
            html.Div([html.Button("Run", id="history-run", n_clicks=0),
                      html.Button("Cancel", id="history-cancel", className="et-secondary",
                                  disabled=True)], className="et-buttons"),
        ], className="et-inline et-history-controls"),
        html.Div(job_progress("history"), style={"maxWidth": "400px"}),
        message_box("history-message"),
        html.Div(id="history-run-label", className="et-run-label"),
        chart_row(chart_card("history-price", 460, NOTES["history-price"])),
        html.H3("Error per year: observed and simulated"),
        html.Div(id="history-error-summary", className="et-explain"),
        data_table("history-errors", page_size=10),
        chart_row(chart_card("history-annual", note=NOTES["history-annual"]),
                  chart_card("history-volume", note=NOTES["history-volume"])),
        html.P(f"Observed closes: {history_figures.OBSERVED_SOURCE}. Observed volumes: "
               "the calibration sheet (docs/calibration-facts.md, section 4).",
               className="et-caption", id="history-caption"),
    ])


register_csv_downloads(GRAPHS)

# The chosen scenario goes into the address bar (no reload), so the view can be shared.
clientside_callback(
    """function(scenario) {
        const search = scenario && scenario !== 'china-history' ? '?scenario=' + scenario : '';
        if (window.location.pathname === '/' && window.location.search !== search) {
            window.history.replaceState(window.history.state, '', '/' + search);
        }
        return search;
    }""",
    Output("history-url-done", "data"), Input("history-scenario", "value"))


def _ran_text(record: dict[str, Any], cached: bool) -> html.Div:
    meta = record.get("meta", {})
    note = "Taken from the cache." if cached else \
        f"Ran in {meta.get('wall_time_s', 0):.1f} s."
    return html.Div(note, className="et-message-info")


def start_history(scenario: str | None, size: float | None, seed: Any
                  ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Any]:
    """Run: the run the cache has is shown at once; any other is queued.

    Returns:
        (the job to follow or None, the page's new run record or None, the message).
    """
    try:
        levers = history_levers(scenario or HISTORY_SCENARIO, size, seed)
    except ScenarioError as err:
        return None, None, error_text(str(err))
    out = runs.queue_runs([("History", levers)])
    if out["error"]:
        return None, None, error_text(out["error"])
    if out["records"]:
        return None, out["records"][0], _ran_text(out["records"][0], True)
    return out["job"], None, ""


def follow_history(job: dict[str, Any], cancel: bool = False
                   ) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any] | None,
                              Any]:
    """Where the page's job stands (after cancelling it if asked); as Explore's."""
    view = runs.follow_runs(job, cancel)
    if view["active"]:
        return view["job"], view, None, ""
    if view["records"]:
        record = view["records"][0]
        return None, view, record, _ran_text(record, view["cached"][0])
    text = view["label"]
    return None, view, None, (error_text(text) if view["error"] else
                              html.Div(text, className="et-message-info"))


@callback(*job_callback_io("history", "history-run"), State("history-scenario", "value"),
          State("history-size", "value"), State("history-seed", "value"),
          State("history-record", "data"))
def run_history(n_clicks: int | None, _cancels: int | None, polls: int | None,
                job: dict[str, Any] | None, scenario: str | None, size: float | None,
                seed: Any, record: dict[str, Any] | None) -> tuple[Any, ...]:
    """Run, Cancel and the polls; the page starts its run when it opens without one."""
    trigger = ctx.triggered_id
    # The page opening (Dash reports the session store's loading, or nothing, as the
    # trigger) without a run or a job to follow starts the run; nothing clicked or polled
    # yet, so a cancelled run stays cancelled.
    opened = trigger in (None, "history-run", "history-job") and not (n_clicks or _cancels
                                                                      or polls)
    opened_empty = opened and not (job and job.get("id")) and not shows(record, scenario,
                                                                        size, seed)
    return job_step((trigger == "history-run" and bool(n_clicks)) or opened_empty,
                    trigger == "history-cancel", polls, job,
                    lambda: start_history(scenario, size, seed), follow_history,
                    store_id="history-record")


def shows(record: dict[str, Any] | None, scenario: str | None, size: float | None,
          seed: Any) -> bool:
    """Whether the page's run is the one its pickers ask for (a URL may ask for another
    scenario than the session's last run)."""
    if not record:
        return False
    try:
        return record.get("levers") == history_levers(scenario or HISTORY_SCENARIO, size,
                                                      seed)
    except ScenarioError:
        return True  # nothing to run instead: keep what is shown


def _scale(record: dict[str, Any]) -> float:
    """The run's scenario scale (for its volumes at full scale)."""
    try:
        return float(runs.resolve(record.get("levers") or {})[0].scale)
    except Exception:  # noqa: BLE001 - levers that ran resolve; a guard, not a path
        return 1.0


def error_summary(errors: Any) -> str:
    """One line: the mean absolute error of the annual mean close and of the volume."""
    if errors is None or errors.empty:
        return "The chosen scenario covers none of the observed years (2021-2025)."
    parts = []
    for column, name in (("price_error_pct", "annual mean close"),
                         ("volume_error_pct", "annual volume")):
        values = errors[column].dropna().abs()
        if len(values):
            parts.append(f"{name} off by {values.mean():.0f}% on average "
                         f"({int(errors['year'].min())}-{int(errors['year'].max())})")
    return ("Simulated against observed: " + "; ".join(parts) + ". Error = (simulated - "
            "observed) / observed.") if parts else ""


@callback(*[Output(graph_id, "figure") for graph_id in GRAPHS],
          Output("history-errors", "data"), Output("history-errors", "columns"),
          Output("history-run-label", "children"), Output("history-error-summary", "children"),
          Input("history-record", "data"), Input("history-job", "data"))
def render(record: dict[str, Any] | None, job: dict[str, Any] | None) -> list[Any]:
    """The observed closes always; the simulated run, its errors and projection once
    the page has a run."""
    observed = analysis.observed_prices()
    computing = "The simulated run is computing (progress above)." if job and job.get(
        "id") else "Press Run to simulate the market beside the observed closes."
    label = (record or {}).get("label", "")
    tables = runs.cached_tables(record["key"], ["market_daily"]) if record and record.get(
        "key") else None
    if tables is None:
        status = computing if not record else \
            "The run is no longer in the results cache: press Run to make it again."
        figs = [history_figures.history_price_chart(observed, None, status),
                figures.empty_figure(status, "Annual mean close"),
                figures.empty_figure(status, "Annual volume traded")]
        figs = [figures.caption(fig, "observed market", history_figures.OBSERVED_SOURCE)
                for fig in figs]
        return figs + [[], [], status, ""]
    daily = tables["market_daily"]
    years = analysis.history_years(daily, _scale(record))
    errors = analysis.history_errors(years)
    figs = [history_figures.history_price_chart(observed, daily),
            history_figures.history_annual_price_chart(years),
            history_figures.history_volume_chart(years)]
    figs = [figures.caption(fig, label, SOURCE) for fig in figs]
    rows, columns = table_payload(errors, {
        "observed_price": ",.2f", "simulated_price": ",.2f", "price_error_pct": "+.1f",
        "observed_volume_mt": ",.1f", "simulated_volume_mt": ",.1f",
        "volume_error_pct": "+.1f"})
    names = {"observed_price": "observed mean close (CNY/t)",
             "simulated_price": "simulated mean close (CNY/t)",
             "price_error_pct": "price error (%)",
             "observed_volume_mt": "observed volume (Mt)",
             "simulated_volume_mt": "simulated volume (Mt)",
             "volume_error_pct": "volume error (%)"}
    for column in columns:
        column["name"] = names.get(column["id"], column["name"])
    return figs + [rows, columns, label, error_summary(errors)]

