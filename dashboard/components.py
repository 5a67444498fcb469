"""Layout pieces shared by the pages: charts with PNG and CSV download, tables, cards.

The lever panel shared by Explore and Compare is in ``dashboard/levers.py``.
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
    clientside_callback,
    dash_table,
    dcc,
    html,
    no_update,
    set_props,
)

# Plotly's toolbar on every chart: no logo and no cloud upload.
GRAPH_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "modeBarButtonsToRemove": ["sendDataToCloud"],
}


def graph_config(graph_id: str) -> dict[str, Any]:
    """Plotly's toolbar for a chart: a PNG download named after it, no cloud upload."""
    return {**GRAPH_CONFIG, "toImageButtonOptions": {
        "format": "png", "filename": f"etsim-{graph_id}", "scale": 2}}


def graph(graph_id: str, height: int = 380, figure: go.Figure | None = None) -> dcc.Graph:
    """A chart with plotly's toolbar, whose camera button downloads a PNG."""
    return dcc.Graph(
        id=graph_id, figure=figure if figure is not None else go.Figure(),
        style={"height": f"{height}px"}, config=graph_config(graph_id))


def chart_card(graph_id: str, height: int = 380, note: str = "") -> html.Div:
    """A chart with a "CSV" button that downloads its data, and a short explanation.

    The page registers the download once with :func:`register_csv_downloads`.
    """
    children: list[Any] = [graph(graph_id, height),
                           html.Div([html.Button("CSV", id=f"{graph_id}-csv",
                                                 className="et-secondary et-csv",
                                                 title="Download this chart's data as CSV"),
                                     dcc.Download(id=f"{graph_id}-csv-download")],
                                    className="et-chart-tools")]
    if note:
        children.append(explain(note))
    return html.Div(children, className="et-chart-card")


def csv_download(figure: dict[str, Any] | None, graph_id: str) -> dict[str, Any] | None:
    """What a chart's CSV button downloads: its traces' points (series, x, y)."""
    from etsim.dashboard.figures.run import figure_csv

    if not figure:
        return None
    return dcc.send_data_frame(figure_csv(figure).to_csv, f"etsim-{graph_id}.csv",
                               index=False)


def register_csv_downloads(graph_ids: list[str]) -> None:
    """One CSV download callback per chart card (called once, when a page is imported)."""
    for graph_id in graph_ids:
        @callback(Output(f"{graph_id}-csv-download", "data"),
                  Input(f"{graph_id}-csv", "n_clicks"), State(graph_id, "figure"),
                  prevent_initial_call=True)
        def download(_: int | None, figure: dict[str, Any] | None,
                     graph_id: str = graph_id) -> Any:
            return csv_download(figure, graph_id) or no_update


def projector_toggle() -> dcc.Checklist:
    """The "Projector" switch: large type and one chart per row (class ``et-projector``
    on the page's body; the browser remembers the choice)."""
    return dcc.Checklist(id="app-projector", options=[{"label": "Projector", "value": "on"}],
                         value=[], persistence=True, persistence_type="local",
                         className="et-projector-toggle", inline=True)


# On the body, so that it holds on every page; plotly redraws charts at their new size.
clientside_callback(
    """function(value) {
        const on = Array.isArray(value) && value.includes("on");
        document.body.classList.toggle("et-projector", on);
        window.dispatchEvent(new Event("resize"));
        return on ? "on" : "off";
    }""",
    Output("app-projector", "title"), Input("app-projector", "value"))


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
             job: dict[str, Any] | None, start: Start, follow: Follow,
             store_id: str = "app-run") -> tuple[Any, ...]:
    """One turn of a page's Run/Cancel/poll callback (also run when the page opens, to
    pick up the session's job after a reload); the finished run goes to ``store_id``.

    Args:
        run_pressed: Run was clicked. cancel_pressed: Cancel was clicked.
        polls: The poll's n_intervals. job: The job store's content.
        start: Run: () -> (job to follow or None, run record ready at once or None,
            message).
        follow: (job, cancel) -> (job while active else None, progress view, finished
            run record or None, message).
        store_id: The store that gets the finished run's record (``app-run``, the
            session's current run; Compare's ``compare-runs``).

    Returns:
        The outputs of :func:`job_callback_io`.
    """
    known = bool(job and job.get("id"))
    if run_pressed and not known:
        job, record, message = start()
        if record is not None:
            # set_props, not an Output: an Output on the app-wide store would fire this
            # callback whenever the page opens.
            set_props(store_id, {"data": record})
        if job is None:
            return job_controls(no_update, None, message, polls)
    elif not known:  # nothing to follow; the store is left alone (it may be loading)
        return job_controls(no_update, None, no_update, polls)
    assert job is not None
    kept, view, record, message = follow(job, cancel_pressed)
    if record is not None:
        set_props(store_id, {"data": record})
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
