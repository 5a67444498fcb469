"""Layout pieces shared by the pages: charts with PNG download, CSV tables, lever panels.

The lever panel is built for an id prefix (``explore``, ``compare-a``, ...), so the
Explore and Compare pages share one set of controls and one mapping between the
controls' values and the levers dict of ``dashboard.runs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import (
    Input,
    Output,
    State,
    callback,
    ctx,
    dash_table,
    dcc,
    html,
    no_update,
    set_props,
)

from etsim import ScenarioError, shipped_scenarios
from etsim.agents.sectors import SECTOR_LIBRARY
from etsim.dashboard import runs

# (lever key, id suffix, component property); the order of the callbacks' arguments
LEVER_CONTROLS: tuple[tuple[str, str, str], ...] = (
    ("scenario", "scenario", "value"),
    ("sectors", "sectors", "value"),
    ("tightening_pct", "tightening", "value"),
    ("absolute_cap", "cap", "value"),
    ("cap_year", "cap-year", "value"),
    ("paid_share", "paid-share", "value"),
    ("reserve_policy", "reserve-policy", "value"),
    ("release_price", "release-price", "value"),
    ("absorb_price", "absorb-price", "value"),
    ("set_aside_pct", "set-aside", "value"),
    ("initial_reserve_pct", "initial-reserve", "value"),
    ("banking", "banking", "value"),
    ("banking_limit_t", "banking-limit", "value"),
    ("penalty_multiple", "penalty", "value"),
    ("price_limit_pct", "price-limit", "value"),
    ("n_firms", "firms", "value"),
    ("seed", "seed", "value"),
)
CHECKBOX_LEVERS = frozenset({"absolute_cap", "banking"})  # booleans shown as one-item checklists
RESERVE_POLICIES = (
    ("none", "none"),
    ("price trigger", "price_trigger"),
    ("bank based (like the EU MSR)", "bank_based"),
)


def lever_id(prefix: str, key: str) -> str:
    """Component id of a lever on a page (``explore-tightening``)."""
    for lever, suffix, _ in LEVER_CONTROLS:
        if lever == key:
            return f"{prefix}-{suffix}"
    raise KeyError(key)


def lever_states(prefix: str) -> list[State]:
    """The States of every lever control of a panel, in LEVER_CONTROLS order."""
    return [State(f"{prefix}-{suffix}", prop) for _, suffix, prop in LEVER_CONTROLS]


def lever_outputs(prefix: str) -> list[Output]:
    """The Outputs of every lever control of a panel, in LEVER_CONTROLS order."""
    return [Output(f"{prefix}-{suffix}", prop) for _, suffix, prop in LEVER_CONTROLS]


def levers_from_values(values: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """The levers dict from the controls' values (LEVER_CONTROLS order)."""
    levers = {}
    for (key, _, _), value in zip(LEVER_CONTROLS, values, strict=True):
        if key in CHECKBOX_LEVERS:
            value = bool(value)
        levers[key] = value
    return levers


def values_from_levers(levers: dict[str, Any]) -> list[Any]:
    """The controls' values for a levers dict (LEVER_CONTROLS order)."""
    values = []
    for key, _, _ in LEVER_CONTROLS:
        value = levers.get(key)
        if key in CHECKBOX_LEVERS:
            value = ["on"] if value else []
        values.append(value)
    return values


def graph(graph_id: str, height: int = 380, figure: go.Figure | None = None) -> dcc.Graph:
    """A chart with plotly's toolbar, whose camera button downloads a PNG."""
    return dcc.Graph(
        id=graph_id, figure=figure if figure is not None else go.Figure(),
        style={"height": f"{height}px"},
        config={"displaylogo": False, "toImageButtonOptions": {
            "format": "png", "filename": graph_id, "scale": 2}},
    )


def data_table(table_id: str, page_size: int = 12, **kwargs: Any) -> dash_table.DataTable:
    """A sortable table with an Export button that downloads it as CSV."""
    style = {"fontFamily": "inherit", "fontSize": "13px", "padding": "4px 8px",
             "textAlign": "right"}
    return dash_table.DataTable(
        id=table_id, data=[], columns=[], page_size=page_size, sort_action="native",
        export_format="csv", export_headers="display", style_cell=style,
        style_cell_conditional=[{"if": {"column_type": "text"}, "textAlign": "left"}],
        style_header={"fontWeight": "600", "backgroundColor": "#f1f3f5"},
        style_table={"overflowX": "auto"}, **kwargs)


def table_payload(frame: pd.DataFrame, formats: dict[str, str] | None = None
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """DataTable ``data`` and ``columns`` for a frame; numbers keep their type for sorting.

    Args:
        frame: The table.
        formats: d3 number formats per column (e.g. ``{"price": ".2f"}``).
    """
    formats = formats or {}
    columns = []
    for name in frame.columns:
        column: dict[str, Any] = {"name": str(name).replace("_", " "), "id": str(name)}
        if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(
                frame[name]):
            column["type"] = "numeric"
            if name in formats:
                column["format"] = {"specifier": formats[name]}
        else:
            column["type"] = "text"
        columns.append(column)
    clean = frame.copy()
    for name in clean.columns:
        if pd.api.types.is_datetime64_any_dtype(clean[name]):
            clean[name] = clean[name].dt.strftime("%Y-%m-%d")
    clean = clean.astype(object).where(pd.notna(clean), None)
    return clean.to_dict("records"), columns


JOB_POLL_MS = 250  # how often a page asks about its queued or running job


def job_stores(prefix: str) -> list[Any]:
    """A page's queued run: its job (``{"id": token}``) in the session store
    ``{prefix}-job``, so a reload picks it up again, and the poll ``{prefix}-poll``."""
    return [dcc.Store(id=f"{prefix}-job", storage_type="session"),
            dcc.Interval(id=f"{prefix}-poll", interval=JOB_POLL_MS, disabled=True,
                         max_intervals=0)]


def job_progress(prefix: str) -> html.Div:
    """The queued run's progress bar and line (place in line, then progress)."""
    return html.Div([html.Progress(id=f"{prefix}-progress", value="0", max="1"),
                     html.Div(id=f"{prefix}-progress-label", className="et-progress-label")],
                    id=f"{prefix}-progress-box", style={"display": "none"})


def job_callback_io(prefix: str, run_id: str) -> list[Any]:
    """The outputs and inputs of a page's one callback for Run, Cancel and the polls, in
    the order :func:`job_controls` returns them and :func:`job_step` takes them: outputs
    job store, poll (disabled, max_intervals), Run and ``{prefix}-cancel`` disabled,
    progress box, bar and line, ``{prefix}-message``; inputs Run, Cancel, poll, job."""
    return [Output(f"{prefix}-job", "data"), Output(f"{prefix}-poll", "disabled"),
            Output(f"{prefix}-poll", "max_intervals"),
            Output(run_id, "disabled"), Output(f"{prefix}-cancel", "disabled"),
            Output(f"{prefix}-progress-box", "style"), Output(f"{prefix}-progress", "value"),
            Output(f"{prefix}-progress", "max"), Output(f"{prefix}-progress-label", "children"),
            Output(f"{prefix}-message", "children"),
            Input(run_id, "n_clicks"), Input(f"{prefix}-cancel", "n_clicks"),
            Input(f"{prefix}-poll", "n_intervals"), Input(f"{prefix}-job", "data")]


def job_controls(job: Any, view: dict[str, Any] | None, message: Any, polls: int | None
                 ) -> tuple[Any, ...]:
    """The outputs of :func:`job_callback_io`; ``job`` is what the job store gets
    (no_update: as is), ``view`` is :func:`runs.follow_runs`'s progress view."""
    active = bool(view and view["active"])
    # One poll at a time: the next is allowed only once this answer is in (max_intervals
    # one above the polls so far). A fixed-rate poll would, on a busy server, supersede
    # each slow answer with the next request, and the page would never update.
    return (job, not active, (polls or 0) + 1 if active else no_update, active, not active,
            {"display": "block"} if active else {"display": "none"},
            view["value"] if view else "0", view["max"] if view else "1",
            view["label"] if active and view else "", message)


Start = Callable[[], tuple[dict[str, Any] | None, dict[str, Any] | None, Any]]
Follow = Callable[[dict[str, Any], bool],
                  tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any] | None, Any]]


def job_step(run_pressed: bool, cancel_pressed: bool, polls: int | None,
             job: dict[str, Any] | None, start: Start, follow: Follow) -> tuple[Any, ...]:
    """One turn of a page's Run/Cancel/poll callback (also run when the page opens, to
    pick up the session's job after a reload); the finished run goes to ``app-run``.

    Args:
        run_pressed: Run was clicked. cancel_pressed: Cancel was clicked.
        polls: The poll's n_intervals. job: The job store's content.
        start: Run: () -> (job to follow or None, run record ready at once or None,
            message).
        follow: (job, cancel) -> (job while active else None, progress view, finished
            run record or None, message).

    Returns:
        The outputs of :func:`job_callback_io`.
    """
    known = bool(job and job.get("id"))
    if run_pressed and not known:
        job, record, message = start()
        if record is not None:
            # set_props, not an Output: an Output on the app-wide store would fire this
            # callback whenever the page opens.
            set_props("app-run", {"data": record})
        if job is None:
            return job_controls(no_update, None, message, polls)
    elif not known:  # nothing to follow; the store is left alone (it may be loading)
        return job_controls(no_update, None, no_update, polls)
    assert job is not None
    kept, view, record, message = follow(job, cancel_pressed)
    if record is not None:
        set_props("app-run", {"data": record})
    unchanged = kept is not None and not run_pressed
    return job_controls(no_update if unchanged else kept, view, message, polls)


def message_box(box_id: str) -> html.Div:
    """Where a page says what went wrong (a bad lever, a failed run)."""
    return html.Div(id=box_id, className="et-message", role="alert")


def error_text(text: str) -> html.Div:
    """A visible one-line error for a message box."""
    return html.Div(text, className="et-message-error")


def explain(text: str) -> dcc.Markdown:
    """A short explanation beside a chart (Markdown)."""
    return dcc.Markdown(text, className="et-explain")


def card(card_id: str, label: str) -> html.Div:
    """A headline figure: a label and a value filled in by a callback."""
    return html.Div([html.Div(label, className="et-card-label"),
                     html.Div("-", id=card_id, className="et-card-value")], className="et-card")


def chart_row(*children: Any) -> html.Div:
    """Charts side by side (wrapping on narrow screens)."""
    return html.Div([html.Div(child, className="et-cell") for child in children],
                    className="et-row")


def _number_input(input_id: str, value: Any, step: float | str = "any", minimum: float | None
                  = None, maximum: float | None = None, placeholder: str = "") -> dcc.Input:
    return dcc.Input(id=input_id, type="number", value=value, step=step, min=minimum,
                     max=maximum, placeholder=placeholder, debounce=True, className="et-num")


def _field(label: str, control: Any, hint: str = "") -> html.Div:
    return html.Div([html.Label(label, title=hint), control], className="et-field", title=hint)


def lever_panel(prefix: str, levers: dict[str, Any] | None = None,
                title: str = "Scenario and levers") -> html.Div:
    """The controls of every lever, with ids ``{prefix}-...``.

    Args:
        prefix: Id prefix (``explore``, ``compare-a``).
        levers: Initial values (None: the default Explore run).
        title: Heading of the panel.
    """
    lv = levers or runs.default_levers()
    values = dict(zip([k for k, _, _ in LEVER_CONTROLS], values_from_levers(lv), strict=True))

    def lid(key: str) -> str:
        return lever_id(prefix, key)

    sectors = [{"label": name, "value": name} for name in SECTOR_LIBRARY]
    return html.Div([
        html.H3(title),
        _field("Scenario", dcc.Dropdown(
            id=lid("scenario"), options=shipped_scenarios(), value=values["scenario"],
            clearable=False), "A shipped scenario; the levers below start from its values"),
        _field("Sectors", dcc.Checklist(id=lid("sectors"), options=sectors,
                                        value=values["sectors"], inline=True,
                                        className="et-checks")),
        html.Details([
            html.Summary("Allocation"),
            _field("Benchmark tightening (% a year)", _number_input(
                lid("tightening_pct"), values["tightening_pct"], 0.5, 0, 50),
                "Yearly cut of the intensity benchmark of the industrial sectors"),
            _field("Absolute cap", html.Div([
                dcc.Checklist(id=lid("absolute_cap"), options=[{"label": " from year",
                                                                "value": "on"}],
                              value=values["absolute_cap"], inline=True),
                _number_input(lid("cap_year"), values["cap_year"], 1)], className="et-inline"),
                "Switch the industrial sectors from intensity benchmarks to absolute caps"),
            _field("Paid share (%)", dcc.Input(
                id=lid("paid_share"), type="text", value=values["paid_share"], debounce=True,
                placeholder="e.g. 2026: 5, 2030: 20"),
                "Share of quota sold at auction: one percentage, or years and percentages"),
        ], open=True),
        html.Details([
            html.Summary("Reserve pool, banking, penalty"),
            _field("Reserve pool", dcc.Dropdown(id=lid("reserve_policy"),
                                                options=[{"label": label, "value": value}
                                                         for label, value in RESERVE_POLICIES],
                                                value=values["reserve_policy"],
                                                clearable=False)),
            _field("Release above (CNY/t)", _number_input(lid("release_price"),
                                                          values["release_price"], 1, 0)),
            _field("Buy back below (CNY/t)", _number_input(lid("absorb_price"),
                                                           values["absorb_price"], 1, 0)),
            _field("Set aside each year (%)", _number_input(lid("set_aside_pct"),
                                                            values["set_aside_pct"], 0.5, 0,
                                                            99)),
            _field("Initial holdings (%)", _number_input(lid("initial_reserve_pct"),
                                                         values["initial_reserve_pct"], 0.5,
                                                         0, 100)),
            _field("Banking", dcc.Checklist(id=lid("banking"),
                                            options=[{"label": " allowed", "value": "on"}],
                                            value=values["banking"])),
            _field("Banking limit (t per firm)", _number_input(
                lid("banking_limit_t"), values["banking_limit_t"], 1000, 0,
                placeholder="unlimited")),
            _field("Penalty (x mean price)", _number_input(lid("penalty_multiple"),
                                                            values["penalty_multiple"], 0.5,
                                                            0)),
        ], open=False),
        html.Details([
            html.Summary("Market and run"),
            _field("Daily price limit (%)", _number_input(lid("price_limit_pct"),
                                                          values["price_limit_pct"], 1, 1,
                                                          100)),
            _field("Number of firms", _number_input(lid("n_firms"), values["n_firms"], 1, 1),
                   "Scales every chosen sector's firm count"),
            _field("Seed", _number_input(lid("seed"), values["seed"], 1, 0)),
        ], open=False),
        message_box(f"{prefix}-lever-message"),
    ], className="et-levers", id=f"{prefix}-levers")


def sync_levers(triggered: str | None, prefix: str, scenario: str | None,
                sectors: list[str] | None, saved: dict[str, Any] | None) -> list[Any]:
    """New values for a panel's controls (and its message) after a change.

    Args:
        triggered: Id of the control that changed; None on the page's first load.
        prefix: The panel's id prefix.
        scenario: The scenario control's value.
        sectors: The sectors control's value.
        saved: Levers of the session's run for this panel, if any.

    Returns:
        One value per LEVER_CONTROLS entry (``no_update`` where nothing changes), then
        the message: a new scenario resets every lever to its values; new sectors reset
        the firm count to the scenario's count for them; a page load restores the levers
        of the session's run.
    """
    keep = [no_update] * len(LEVER_CONTROLS)
    if triggered == lever_id(prefix, "scenario"):
        try:
            values = values_from_levers(runs.scenario_levers(scenario or runs.DEFAULT_SCENARIO))
        except ScenarioError as err:
            return keep + [error_text(str(err))]
        values[0] = no_update  # the scenario control itself keeps the user's choice
        return values + [""]
    if triggered == lever_id(prefix, "sectors"):
        out = list(keep)
        out[[k for k, _, _ in LEVER_CONTROLS].index("n_firms")] = firm_count_for(
            scenario or runs.DEFAULT_SCENARIO, sectors)
        return out + [no_update]
    if saved:
        return values_from_levers(saved) + [no_update]
    return keep + [no_update]


def register_lever_callbacks(prefix: str, store_id: str,
                             pick: Callable[[Any], dict[str, Any] | None]) -> None:
    """Register the callback that keeps a lever panel consistent (see :func:`sync_levers`).

    Args:
        prefix: The panel's id prefix.
        store_id: The session store holding the panel's last run.
        pick: Gets the panel's levers out of that store's data.
    """

    @callback(*lever_outputs(prefix), Output(f"{prefix}-lever-message", "children"),
              Input(lever_id(prefix, "scenario"), "value"),
              Input(lever_id(prefix, "sectors"), "value"),
              Input(store_id, "data"))
    def on_levers(scenario: str, sectors: list[str], data: Any) -> list[Any]:
        triggered = ctx.triggered_id if ctx.triggered_id != store_id else None
        return sync_levers(triggered, prefix, scenario, sectors, pick(data) if data else None)


def firm_count_for(name: str, sectors: list[str] | None) -> Any:
    """The scenario's firm count for the chosen sectors (no change if it cannot load)."""
    try:
        return runs.natural_firm_count(runs.load_scenario(name), sectors or [])
    except ScenarioError:
        return no_update
