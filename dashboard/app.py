"""The etsim dashboard: a Dash multi-page app (``etsim dashboard`` starts it).

Pages live in ``dashboard/pages`` (one module per page, ids prefixed by the page name).
A session's current run is a small record in the browser's session storage
(``app-run``); the results themselves sit in a disk cache keyed by the scenario's
digest and seed (``dashboard.runs``). Runs started with Run (and the Market page's
"record a day") wait in the server's job queue (``dashboard.jobs``): a fixed number of
worker processes, each job reached only through the random id its session keeps. No
callback is a Dash background callback (those fork the threaded web server).
"""

from __future__ import annotations

import atexit
import signal
import sys
from pathlib import Path

import dash
from dash import Dash, dcc, html

from etsim.dashboard.components import projector_toggle

PAGES_FOLDER = Path(__file__).resolve().parent / "pages"


def _header() -> html.Header:
    links = [dcc.Link(page["name"], href=page["relative_path"], className="et-nav-link",
                      id=f"app-nav-{page['name'].lower()}")
             for page in dash.page_registry.values()]
    return html.Header([
        html.Div([html.Span("etsim", className="et-brand"),
                  html.Span("China carbon market simulator", className="et-tagline")]),
        html.Div([html.Nav(links, className="et-nav"), projector_toggle()],
                 className="et-inline"),
    ], className="et-header")


def create_app() -> Dash:
    """Build the Dash app with its pages.

    Returns:
        The app; ``app.server`` is the Flask server.
    """
    import etsim.dashboard.pages  # noqa: F401 - the parent package of the page modules Dash loads

    app = Dash(
        # The package's name (not __name__) makes Dash import the pages under their own
        # module names (etsim.dashboard.pages.explore), so tests and the app share one module.
        __package__ or "etsim.dashboard",
        use_pages=True,
        pages_folder=str(PAGES_FOLDER),
        suppress_callback_exceptions=True,  # page callbacks refer to other pages' ids
        title="etsim dashboard",
    )
    app.layout = html.Div([
        # The session's current run (key into the results cache, levers, label).
        dcc.Store(id="app-run", storage_type="session"),
        _header(),
        html.Main(dash.page_container, className="et-main"),
        html.Footer([
            "etsim: an agent-based simulator of China's national carbon market. ",
            "Observed CEA prices: Data: ICAP via World Carbon Pricing Database "
            "(CC BY-NC-SA 4.0).",
        ], className="et-footer"),
    ])
    return app


def run(host: str = "127.0.0.1", port: int = 8050, debug: bool = False) -> None:
    """Start the dashboard's web server (loopback only unless told otherwise).

    Args:
        host: Interface to bind; 127.0.0.1 keeps it on this machine.
        port: TCP port.
        debug: Dash debug mode (reloader and dev tools).
    """
    from etsim.dashboard import jobs

    try:  # a bad $ETSIM_DASHBOARD_* value stops here, with its message and status 2
        jobs.check_settings()
    except ValueError as err:
        print(f"etsim dashboard: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    app = create_app()
    # No run outlives the server: stop the job queue's processes at exit, and make
    # SIGTERM (what service managers and test harnesses send) an orderly exit too.
    atexit.register(jobs.shutdown_queue)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app.run(host=host, port=port, debug=debug)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    run()
