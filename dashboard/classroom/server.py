"""The classroom server: a JSON API and the teacher's and students' pages (Flask).

Pages (static HTML and script in ``pages/``, polling the API every second):

- ``/join`` (``?code=`` fills the code in): a student gives the code and a name;
- ``/student``: the student's firm, the market, the order form (the token is kept in
  the browser's local storage, so a reload or a return to the page keeps the firm);
- ``/teacher?token=...``: the price, the book, the clock, the controls, the
  leaderboard and, at the end, the debrief.

API: every call but ``POST /api/join`` carries a token (``X-Classroom-Token`` header, or
``?token=``). Student calls act for and show the token's own firm only; teacher calls
need the teacher's token. Errors are ``{"error": message, "field": name}`` with an HTTP
status (400 bad input, 401 unknown token, 403 not allowed, 404 unknown, 409 not now).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, request, send_from_directory

from etsim.dashboard.classroom.engine import ClassroomError, ClassroomSession

PAGES = Path(__file__).resolve().parent / "pages"


def _token() -> str | None:
    return request.headers.get("X-Classroom-Token") or request.args.get("token")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ClassroomError("body: send a JSON object", "body")
    return data


def create_app(session: ClassroomSession, out: Path | None = None) -> Flask:
    """The Flask app of a classroom session.

    Args:
        session: The live session.
        out: Folder the teacher's export writes (a new folder; None: no export).
    """
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.errorhandler(ClassroomError)
    def refused(err: ClassroomError) -> tuple[Response, int]:
        return jsonify(err.as_dict()), err.status

    @app.errorhandler(404)
    def missing(_err: Any) -> tuple[Response, int]:
        return jsonify({"error": f"no such page or call: {request.path}", "field": ""}), 404

    @app.errorhandler(405)
    def wrong_method(_err: Any) -> tuple[Response, int]:
        return jsonify({"error": f"{request.method} is not allowed on {request.path}",
                        "field": ""}), 405

    @app.after_request
    def no_cache(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- pages --------------------------------------------------------------------------

    @app.get("/")
    def index() -> Response:
        return redirect("/join")

    @app.get("/join")
    def join_page() -> Response:
        return send_from_directory(PAGES, "join.html")

    @app.get("/student")
    def student_page() -> Response:
        return send_from_directory(PAGES, "student.html")

    @app.get("/teacher")
    def teacher_page() -> Response:
        return send_from_directory(PAGES, "teacher.html")

    @app.get("/pages/<path:name>")
    def page_asset(name: str) -> Response:
        return send_from_directory(PAGES, name)

    # --- students -----------------------------------------------------------------------

    @app.post("/api/join")
    def join() -> Response:
        data = _body()
        return jsonify(session.join(data.get("code"), data.get("name")))

    @app.get("/api/student/state")
    def student_state() -> Response:
        return jsonify(session.student_view(_token()))

    @app.post("/api/student/orders")
    def place() -> Response:
        data = _body()
        unknown = set(data) - {"side", "quantity", "price", "keep"}
        if unknown:
            raise ClassroomError(f"{sorted(unknown)[0]}: not an order field (side, "
                                 "quantity, price, keep)", sorted(unknown)[0])
        return jsonify(session.place_order(_token(), data.get("side"),
                                           data.get("quantity"), data.get("price"),
                                           data.get("keep", True)))

    @app.delete("/api/student/orders/<int:order_id>")
    def cancel(order_id: int) -> Response:
        return jsonify(session.cancel(_token(), order_id))

    @app.post("/api/student/abatement")
    def abatement() -> Response:
        return jsonify(session.choose_abatement(_token(), _body().get("options")))

    # --- the teacher --------------------------------------------------------------------

    def teacher() -> None:
        session.check_teacher(_token())

    @app.get("/api/teacher/state")
    def teacher_state() -> Response:
        teacher()
        view = session.teacher_view()
        view["join_url"] = f"{request.host_url}join?code={session.join_code}"
        view["export_to"] = None if out is None else str(out)
        return jsonify(view)

    @app.post("/api/teacher/pause")
    def pause() -> Response:
        teacher()
        session.pause()
        return jsonify({"status": session.status})

    @app.post("/api/teacher/resume")
    def resume() -> Response:
        teacher()
        session.resume()
        return jsonify({"status": session.status})

    @app.post("/api/teacher/step")
    def step() -> Response:
        teacher()
        data = request.get_json(silent=True) or {}
        session.step(data.get("days", 1) if isinstance(data, dict) else data)
        return jsonify({"status": session.status, "day": session.model.day})

    @app.post("/api/teacher/finish")
    def finish() -> Response:
        teacher()
        session.finish()
        return jsonify({"status": session.status})

    @app.post("/api/teacher/export")
    def export() -> Response:
        teacher()
        if out is None:
            raise ClassroomError("export: the server was started without --out", "out", 409)
        return jsonify({"folder": str(session.export(out))})

    @app.get("/api/teacher/order_log.csv")
    def order_log() -> Response:
        teacher()
        return Response(session.order_log().to_csv(index=False), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 "attachment; filename=order_log.csv"})

    return app


def start_clock(session: ClassroomSession, stop: threading.Event,
                interval: float = 0.2) -> threading.Thread:
    """The session's clock: a thread that calls ``session.tick()`` every ``interval``
    seconds (closes days on the pace, takes over leavers) until ``stop`` is set."""
    def run() -> None:
        while not stop.wait(interval):
            session.tick()

    thread = threading.Thread(target=run, name="classroom-clock", daemon=True)
    thread.start()
    return thread


def serve(session: ClassroomSession, host: str, port: int, out: Path | None = None,
          announce: Any = print) -> None:
    """Serve a session until interrupted; ``announce`` gets the links to show."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class KeepAlive(WSGIRequestHandler):
        # HTTP/1.1: a page's connection (and its thread) serves its polls one after
        # another, instead of a new connection and thread for each call
        protocol_version = "HTTP/1.1"

    server = make_server(host, port, create_app(session, out), threaded=True,
                         request_handler=KeepAlive)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    base = f"http://{shown_host}:{server.server_port}"
    announce(f"classroom: scenario {session.scenario.name}, {len(session.seats)} seats, "
             + (f"a trading day every {session.pace:g} s" if session.pace
                else "the teacher steps each day"))
    announce(f"  students: {base}/join  code {session.join_code}")
    announce(f"  teacher:  {base}/teacher?token={session.teacher_token}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"  bound to {host}: other machines on this network can reach it")
    stop = threading.Event()
    start_clock(session, stop)
    try:
        server.serve_forever()
    finally:
        stop.set()
        server.server_close()
