"""Load test of classroom mode: many students placing orders at once (loopback only).

Starts ``python -m etsim classroom`` on a free 127.0.0.1 port with a 40-firm variant of
the shipped ``classroom`` scenario (twice its firms per sector, so every student gets a
firm), a trading day every second. The teacher steps to 2 September 2026 (firms hold
quota), resumes the clock, and each of ``--students`` threads joins and, every second,
places a limit order inside the day's band (buy or sell in turn, a few tonnes; it is
matched on arrival against the book, students' and agents' orders) and polls its page's
state, as the student page does. It reports the order acknowledgement
latency (median, p99, max) and checks that none was lost: every order the server
acknowledged is in its order log, and every order sent got an answer.

    python bench/bench_classroom.py                 # 40 students for 5 minutes
    python bench/bench_classroom.py --duration 30   # a shorter try
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
START_DAY = 401  # 2 September 2026: firms hold quota in the classroom scenario


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    """One student's browser: a kept-alive HTTP/1.1 connection, opened again if lost."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json", "X-Classroom-Token": self.token}
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                             timeout=30)
            try:
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _call(url: str, method: str = "GET", body: dict | None = None,
          token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Classroom-Token"] = token
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _scenario(folder: Path, students: int) -> Path:
    """The classroom scenario with its firm counts scaled so that each student has one."""
    text = (ROOT / "scenarios" / "classroom.toml").read_text()
    factor = max(1, -(-students // 20))
    text = re.sub(r"^firms = (\d+)$", lambda m: f"firms = {int(m.group(1)) * factor}", text,
                  flags=re.M)
    text = text.replace('name = "classroom"', f'name = "classroom-x{factor}"')
    path = folder / "classroom-load.toml"
    path.write_text(text)
    return path


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc), NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--pace", type=float, default=1.0, help="seconds per trading day")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-classroom-"))
    port = _free_port()
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "etsim", "classroom", str(_scenario(folder, args.students)),
         "--port", str(port), "--seats", str(args.students), "--pace", str(args.pace),
         "--out", str(folder / "lesson")],
        cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=log,
        stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        while True:
            text = (folder / "server.log").read_text()
            found = re.search(r"teacher\?token=(\S+)", text), re.search(r"code (\w{6})", text)
            if all(found):
                try:
                    urllib.request.urlopen(base + "/join", timeout=5).close()
                    break
                except OSError:
                    pass
            if server.poll() is not None:
                print(text)
                return 1
            time.sleep(0.2)
        teacher, code = found[0].group(1), found[1].group(1)
        tokens = [_call(base + "/api/join", "POST", {"code": code, "name": f"s{i}"})[1]["token"]
                  for i in range(args.students)]
        _call(base + "/api/teacher/step", "POST", {"days": START_DAY}, teacher)
        _call(base + "/api/teacher/resume", "POST", {}, teacher)
        latencies: list[list[float]] = [[] for _ in tokens]
        answers = [{"accepted": 0, "refused": 0, "failed": 0, "at_once": 0} for _ in tokens]
        stop_at = time.monotonic() + args.duration

        def student(i: int, token: str) -> None:
            rng = np.random.default_rng(i)
            client = Client(port, token)
            state = client.call("GET", "/api/student/state")[1]
            next_at = time.monotonic() + rng.random()  # students do not click in step
            n = 0
            while next_at < stop_at:
                time.sleep(max(next_at - time.monotonic(), 0))
                low, high = state["band"]
                side = "buy" if (n + i) % 2 else "sell"
                price = round(float(rng.uniform(low, high)), 2)
                began = time.perf_counter()
                try:
                    status, ack = client.call("POST", "/api/student/orders",
                                            {"side": side,
                                             "quantity": int(rng.integers(1, 20)),
                                             "price": price, "keep": False})
                    latencies[i].append(time.perf_counter() - began)
                    answers[i]["accepted" if status == 200 else "refused"] += 1
                    answers[i]["at_once"] += status == 200 and ack.get("filled", 0) > 0
                except OSError:
                    answers[i]["failed"] += 1
                try:
                    status, fresh = client.call("GET", "/api/student/state")
                    if status == 200:
                        state = fresh
                except OSError:
                    pass
                n += 1
                next_at += 1.0

        threads = [threading.Thread(target=student, args=(i, t)) for i, t in enumerate(tokens)]
        began = time.monotonic()
        load_before = os.getloadavg()[0]
        cpu_before = _cpu_seconds(server.pid)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        load_after = os.getloadavg()[0]
        server_cpu = _cpu_seconds(server.pid) - cpu_before
        teacher_state = _call(base + "/api/teacher/state", token=teacher)[1]
        request = urllib.request.Request(base + "/api/teacher/order_log.csv",
                                         headers={"X-Classroom-Token": teacher})
        with urllib.request.urlopen(request, timeout=60) as response:
            order_log = pd.read_csv(io.StringIO(response.read().decode()))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    lat = np.array([x for part in latencies for x in part]) * 1000
    accepted = sum(a["accepted"] for a in answers)
    refused = sum(a["refused"] for a in answers)
    failed = sum(a["failed"] for a in answers)
    logged = int((order_log["event"] == "order").sum())
    print(f"{args.students} students, {elapsed:.0f} s, a trading day every {args.pace:g} s; "
          f"days {START_DAY} to {teacher_state['day']}; load average {load_before:.1f} "
          f"before, {load_after:.1f} after ({os.cpu_count()} cores)")
    at_once = sum(a["at_once"] for a in answers)
    print(f"orders sent {len(lat) + failed}: acknowledged {accepted} ({at_once} traded at "
          f"once, on arrival), refused with a message {refused}, no answer {failed}; in the "
          f"order log {logged}")
    print(f"acknowledgement latency ms: median {np.median(lat):.1f}, p99 "
          f"{np.percentile(lat, 99):.1f}, max {lat.max():.1f}; over 1 s: "
          f"{int((lat > 1000).sum())}")
    requests = 2 * (len(lat) + failed)  # an order and a poll each second
    print(f"server CPU {server_cpu:.1f} s for {requests} requests and the trading days: "
          f"{1000 * server_cpu / max(requests, 1):.2f} ms a request, "
          f"{100 * server_cpu / elapsed:.0f}% of one core")
    lost = accepted - logged
    print("none lost" if lost == 0 and failed == 0 else f"LOST: {lost} acknowledged orders "
          f"not in the log, {failed} without an answer")
    return 0 if lost == 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
