"""Time the dashboard's default Explore run in a real browser, from the click to the charts.

    python bench/bench_dashboard.py                 # three repeats, min and median
    python bench/bench_dashboard.py --repeat 5
    python bench/bench_dashboard.py --chromium /path/to/chromium
    python bench/bench_dashboard.py --sessions 20   # 20 people press Run at once

Each repeat starts the dashboard (``python -m etsim dashboard``) on a free loopback port
with a fresh, empty results cache (``$ETSIM_DASHBOARD_CACHE``), so the run is made,
not read from the cache. Debian's
Chromium, driven by Playwright, opens Explore, waits for the page's first callbacks and
presses Run with the default levers (china-2024's steel, cement and aluminium). Reported:

- **model run**: the run's own time as the page reports it ("Ran in X s", to 0.1 s:
  building the model, the run and its results tables, in the dashboard's job process);

and, measured in the page (``performance.now()``, checked on every animation frame),
seconds from the click to:

- **message**: the "Ran in X s" message on the page (the job has finished and the
  browser has its result);
- **price chart**: the price chart drawn with the new run;
- **all charts**: every Explore chart drawn with data.

The difference between the price chart and the model run is the dashboard's share:
queueing the job and polling it (every 0.25 s), caching the tables, reading them back
and building and drawing the figures.
The server is stopped after each repeat. Not part of the test suite (see bench/README.md).

With ``--sessions N``, one server (fresh cache) and N browser contexts (N people) on
Explore, each with the default levers and its own seed (1 to N), press Run one right
after the other. Reported: whether every session got its own run's charts, seconds from
the first click to each session's price chart (first, median, last), the furthest place
in line a page showed, the most job processes running at once (the server's worker
count bounds it), and the job processes and zombies left once all is done.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dash
import psutil
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ETSIM_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000  # a bound on each wait, not a budget
CHARTS = ("explore-price", "explore-annual", "explore-scarcity", "explore-bank",
          "explore-sector-balance", "explore-abatement", "explore-volume",
          "explore-compliance", "explore-incentive")

# Arms the page: the click's time is taken in the page itself (capture phase: before
# Dash's handler), then every animation frame checks what has appeared and keeps the first
# time each thing was seen, in milliseconds since the click, in window.__etsimTimes.
ARM = """([charts, before]) => {
  const times = window.__etsimTimes = {};
  const drawn = (id) => {
    const el = document.querySelector(`#${id} .js-plotly-plot`);
    // _fullData: plotly's decoded traces
    return !!(el && el._fullData && el._fullData.some(
      t => (t.x && t.x.length > 0) || (t.y && t.y.length > 0)));
  };
  document.querySelector('#explore-run').addEventListener('click', () => {
    const t0 = performance.now();
    const check = () => {
      const now = performance.now() - t0;
      const message = document.querySelector('#explore-message').innerText;
      const label = document.querySelector('#explore-run-label').innerText;
      if (!('message' in times) && /Ran in|Taken from the cache|failed/.test(message))
        times.message = now;
      if (label !== before) {
        if (!('price' in times) && drawn('explore-price')) times.price = now;
        if (!('all' in times) && charts.every(drawn)) times.all = now;
      }
      if (!('message' in times && 'price' in times && 'all' in times))
        requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  }, {capture: true, once: true});
}"""
DONE = """() => window.__etsimTimes && 'message' in window.__etsimTimes
                && 'price' in window.__etsimTimes && 'all' in window.__etsimTimes"""


# Keeps every text the progress line shows, so a short-lived "Queued: ..." is not missed.
WATCH = """
window.__seen = [];
new MutationObserver(() => {
  const el = document.getElementById('explore-progress-label');
  const text = el ? el.innerText : '';
  if (text && window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
OWN_RUN = """([seed, before]) => {
  const label = document.querySelector('#explore-run-label').innerText;
  const el = document.querySelector('#explore-price .js-plotly-plot');
  return label !== before && label.includes(`seed ${seed}`) && !!(el && el._fullData
         && el._fullData.some(t => t.x && t.x.length > 0));
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """The dashboard on a free loopback port with an empty cache in ``folder``."""
    port = free_port()
    env = dict(os.environ, ETSIM_DASHBOARD_CACHE=str(folder / "cache"),
               PYTHONUNBUFFERED="1")
    log = open(folder / "server.log", "w")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen([sys.executable, "-m", "etsim", "dashboard", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit("the dashboard did not start:\n"
                     + (folder / "server.log").read_text()[-3000:])
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one_repeat(browser, url: str) -> dict[str, float]:
    """Press Run on Explore once: the model's run time and seconds from the click."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/explore")
        page.wait_for_selector("#explore-run")
        # the page's first callbacks have run once the run label says something
        page.wait_for_function("() => document.querySelector('#explore-run-label')"
                               " && document.querySelector('#explore-run-label').innerText")
        before = page.inner_text("#explore-run-label")
        page.evaluate(ARM, [list(CHARTS), before])
        page.click("#explore-run")
        page.wait_for_function(DONE)
        times = page.evaluate("() => window.__etsimTimes")
        message = page.inner_text("#explore-message")
        ran = re.search(r"Ran in ([\d.]+) s", message)
        if not ran:
            sys.exit(f"not a fresh run: {message!r}")
        label = page.inner_text("#explore-run-label")
        if "china-2024 (steel, cement, aluminium)" not in label:
            sys.exit(f"not the default run: {label!r}")
        return {"model run": float(ran.group(1)), "message": times["message"] / 1000,
                "price chart": times["price"] / 1000, "all charts": times["all"] / 1000}
    finally:
        context.close()


def job_processes(server_pid: int) -> tuple[int, int]:
    """(job processes running - children of the server's fork server -, zombies among
    all the server's descendants)."""
    running = zombies = 0
    try:
        descendants = psutil.Process(server_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    for proc in descendants:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                zombies += 1
            elif proc.ppid() != server_pid:
                running += 1
        except psutil.NoSuchProcess:
            pass
    return running, zombies


def sessions_at_once(browser, url: str, server_pid: int, n: int) -> None:
    """N sessions press Run at about the same moment; print how they fared."""
    contexts, pages = [], []
    for seed in range(1, n + 1):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(WATCH)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/explore")
        page.wait_for_selector("#explore-run")
        page.wait_for_function("() => document.querySelector('#explore-run-label')"
                               " && document.querySelector('#explore-run-label').innerText")
        page.evaluate("() => document.querySelectorAll('#explore-levers details')"
                      ".forEach(d => { d.open = true; })")
        page.fill("#explore-seed", str(seed))
        page.press("#explore-seed", "Tab")
        contexts.append(context)
        pages.append((seed, page, page.inner_text("#explore-run-label")))
    try:
        started = time.monotonic()
        for _, page, _ in pages:
            page.click("#explore-run")
        drawn: dict[int, float] = {}
        busiest = 0
        deadline = started + 1800  # a bound on the wait
        while len(drawn) < n and time.monotonic() < deadline:
            busiest = max(busiest, job_processes(server_pid)[0])
            for seed, page, before in pages:
                if seed not in drawn and page.evaluate(OWN_RUN, [seed, before]):
                    drawn[seed] = time.monotonic() - started
            time.sleep(0.2)
        places = [int(m.group(1)) for _, page, _ in pages
                  for text in page.evaluate("() => window.__seen")
                  if (m := re.match(r"Queued: (\d+)", text))]
        stuck = [(seed, page.inner_text("#explore-progress-label"),
                  page.inner_text("#explore-message"))
                 for seed, page, _ in pages if seed not in drawn]
    finally:
        for context in contexts:
            context.close()
    time.sleep(2)
    left, zombies = job_processes(server_pid)
    times = sorted(drawn.values())
    print(f"{n} sessions: {len(drawn)} got their own run's charts"
          + (f", {len(stuck)} did not: {stuck}" if stuck else ""))
    if times:
        print(f"seconds from the first click to a session's price chart: first "
              f"{times[0]:.1f}, median {statistics.median(times):.1f}, last {times[-1]:.1f}")
    print(f"furthest place in line shown: {max(places) if places else '-'}; job processes "
          f"at once at most: {busiest}; left afterwards: {left}, zombies: {zombies}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="repeats, each with a fresh server and cache (default 3)")
    parser.add_argument("--sessions", type=int, default=0,
                        help="instead: N sessions press Run at once on one server")
    parser.add_argument("--chromium", default=CHROMIUM,
                        help=f"Chromium executable (default {CHROMIUM})")
    args = parser.parse_args()
    if not os.access(args.chromium, os.X_OK):
        sys.exit(f"Chromium is not installed at {args.chromium}: "
                 "sudo apt-get install chromium (or --chromium PATH)")
    print(f"Python {platform.python_version()}, Dash {dash.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    results: list[dict[str, float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium,
                                             args=CHROMIUM_ARGS, headless=True)
        try:
            if args.sessions:
                with tempfile.TemporaryDirectory(prefix="etsim-bench-dashboard-") as tmp:
                    proc, url = start_server(Path(tmp))
                    try:
                        sessions_at_once(browser, url, proc.pid, args.sessions)
                    finally:
                        stop_server(proc)
                return
            for i in range(args.repeat):
                with tempfile.TemporaryDirectory(prefix="etsim-bench-dashboard-") as tmp:
                    proc, url = start_server(Path(tmp))
                    try:
                        result = one_repeat(browser, url)
                    finally:
                        stop_server(proc)
                results.append(result)
                print(f"repeat {i + 1}: " + ", ".join(f"{k} {v:.2f} s"
                                                      for k, v in result.items()))
        finally:
            browser.close()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    print(f"over {len(results)} repeats, each with a fresh server and cache (seconds: the"
          " model run as the page reports it, the others from pressing Run):")
    print(f"{'':>12} {'min':>7} {'median':>7}")
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"{key:>12} {min(values):7.2f} {statistics.median(values):7.2f}")


if __name__ == "__main__":
    main()
