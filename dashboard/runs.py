"""Runs for the dashboard: levers -> scenario overrides -> results tables, cached on disk.

The dashboard's levers are a small JSON-friendly dict (it lives in the browser session's
``dcc.Store``). :func:`lever_overrides` turns them into the dotted-key overrides of
``docs/scenario-reference.md``, emitting an override only where a lever differs from the
scenario's own value, so untouched levers leave the scenario exactly as shipped.

Results are cached on disk by ``Scenario.digest()`` and seed (one entry per table), so a
repeated run is instant, a run made on one page can be read on every other page, and
nothing is held in module-level state shared between browser sessions.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from etsim import CarbonMarketModel, ScenarioError, load_scenario
from etsim.dashboard import jobs
from etsim.dashboard.jobs import JobError
from etsim.model.scenario import Scenario, schedule_value

DEFAULT_SCENARIO = "china-2024"
# The default Explore run: the three sectors that join in 2024 (power switched off).
NEW_SECTORS = ("steel", "cement", "aluminium")
CACHE_ENV = "ETSIM_DASHBOARD_CACHE"
CACHE_SIZE_LIMIT = 2 * 1024**3  # bytes; least recently used runs are evicted first
# Progress reports per run: each is a write to the job cache, so not one per day.
PROGRESS_REPORTS = 25

Progress = Callable[[int, int], None]


class LeverError(ValueError):
    """A lever value or combination the dashboard cannot turn into a scenario."""


# --- levers -----------------------------------------------------------------------------


def _lever_sectors(sectors: Sequence[str]) -> list[str]:
    """Sectors the tightening and absolute-cap levers act on: the industrial ones.

    Power keeps its own benchmark path unless it is the only sector chosen.
    """
    industrial = [s for s in sectors if s != "power"]
    return industrial or list(sectors)


def _rule_table(rule: Any) -> dict[int, str]:
    if isinstance(rule, dict):
        return {int(year): str(value) for year, value in sorted(rule.items(), key=lambda kv:
                                                                   int(kv[0]))}
    return {0: str(rule)}


def _cap_rule(rule: Any, cap_year: int | None, start_year: int) -> str | dict[str, str]:
    """A sector's rule schedule with an absolute cap from ``cap_year`` (None: no cap).

    The rules before the cap year are kept; without a cap, absolute_cap years fall back
    to intensity benchmarks.
    """
    rules = _rule_table(rule)  # a single rule is keyed by year 0 (every year)
    if cap_year is None:
        rules = {y: ("intensity" if r == "absolute_cap" else r) for y, r in rules.items()}
    else:
        rules = {y: r for y, r in rules.items() if y < cap_year}
        rules[cap_year] = "absolute_cap"
    if 0 in rules:
        before = rules.pop(0)
        later = [y for y in rules if y]
        if not later:
            return before
        if start_year < min(later):  # the every-year rule holds until the first listed year
            rules[start_year] = before
    if len(set(rules.values())) == 1:
        return next(iter(rules.values()))
    return {str(y): r for y, r in sorted(rules.items())}


def _schedule_last(schedule: Any) -> float:
    if isinstance(schedule, dict):
        return float(schedule[max(schedule, key=int)])
    return float(schedule)


def format_paid_share(schedule: Any) -> str:
    """A paid-share schedule as the text of its lever, in percent.

    Args:
        schedule: A share (0.1) or a year table ({"2026": 0.05, "2030": 0.2}).

    Returns:
        ``"10"`` or ``"2026: 5, 2030: 20"``.
    """
    def pct(value: Any) -> str:
        return f"{float(value) * 100:g}"

    if isinstance(schedule, dict):
        return ", ".join(f"{int(y)}: {pct(v)}" for y, v in sorted(schedule.items(),
                                                                   key=lambda kv: int(kv[0])))
    return pct(schedule)


def parse_paid_share(text: str | float | None) -> float | dict[str, float]:
    """Read the paid-share lever: a percentage, or years with percentages.

    Args:
        text: ``"10"`` (10% every year) or ``"2026: 5, 2028: 10, 2030: 20"``; empty is 0.

    Returns:
        A share (0.1) or a year table of shares ({"2026": 0.05, ...}).

    Raises:
        LeverError: The text is neither form, or a share is outside 0-100%.
    """
    hint = ("Paid share path: write a percentage such as 10, or years and percentages "
            "such as 2026: 5, 2028: 10, 2030: 20")
    if text is None or (isinstance(text, str) and not text.strip()):
        return 0.0
    if isinstance(text, int | float):
        text = str(text)
    cleaned = text.strip().strip("{}")
    if ":" not in cleaned and "=" not in cleaned:
        try:
            value = float(cleaned.rstrip("%"))
        except ValueError:
            raise LeverError(f"{hint} (got {text!r})") from None
        _check_pct(value, hint)
        return value / 100
    table: dict[str, float] = {}
    for part in re.split(r"[,;]", cleaned):
        if not part.strip():
            continue
        pieces = re.split(r"[:=]", part)
        if len(pieces) != 2:
            raise LeverError(f"{hint} (got {text!r})")
        try:
            year, value = int(pieces[0].strip()), float(pieces[1].strip().rstrip("%"))
        except ValueError:
            raise LeverError(f"{hint} (got {text!r})") from None
        _check_pct(value, hint)
        table[str(year)] = value / 100
    if not table:
        raise LeverError(f"{hint} (got {text!r})")
    return dict(sorted(table.items()))


def _check_pct(value: float, hint: str) -> None:
    if not 0 <= value < 100:
        raise LeverError(f"{hint}; each share must be at least 0 and below 100% (got {value:g})")


def _same_share(a: Any, b: Any) -> bool:
    if isinstance(a, dict) != isinstance(b, dict):
        return False
    if isinstance(a, dict):
        return ({int(k): round(float(v), 9) for k, v in a.items()}
                == {int(k): round(float(v), 9) for k, v in b.items()})
    return abs(float(a) - float(b)) < 1e-12


def natural_firm_count(scenario: Scenario, sectors: Iterable[str]) -> int:
    """Firms the scenario gives the chosen sectors at its own ``scale`` (as the model counts).

    Args:
        scenario: The scenario.
        sectors: The chosen sectors; counted as switched on (as :func:`lever_overrides`
            does), the scenario's other sectors as off.
    """
    chosen = set(sectors)
    switched = {name: config.model_copy(update={"enabled": name in chosen})
                for name, config in scenario.sectors.items()}
    return sum(scenario.model_copy(update={"sectors": switched}).firm_counts().values())


def scenario_levers(scenario: str | Scenario, sectors: Sequence[str] | None = None
                    ) -> dict[str, Any]:
    """The lever values that describe a scenario as it stands.

    Args:
        scenario: A shipped scenario name (or path) or a loaded Scenario.
        sectors: Sectors to switch on instead of the scenario's own (None: its own).

    Returns:
        The levers dict (JSON-friendly): scenario, sectors, tightening_pct,
        absolute_cap, cap_year, paid_share, reserve_policy, release_price, absorb_price,
        set_aside_pct, initial_reserve_pct, banking, banking_limit_t, penalty_multiple,
        price_limit_pct, n_firms, seed.
    """
    sc = load_scenario(scenario) if not isinstance(scenario, Scenario) else scenario
    name = scenario if isinstance(scenario, str) else sc.name
    chosen = list(sectors) if sectors is not None else sc.simulated_sectors()
    lever_sectors = _lever_sectors(chosen) or sc.simulated_sectors()
    first = sc.sectors[lever_sectors[0]].allocation
    rules = _rule_table(first.rule)
    cap_years = [year for year, rule in rules.items() if rule == "absolute_cap"]
    paid_sector = sc.sectors[chosen[0] if chosen else lever_sectors[0]].allocation
    pool = sc.reserve_pool
    return {
        "scenario": name,
        "sectors": chosen,
        "tightening_pct": round(_schedule_last(first.tightening) * 100, 6),
        "absolute_cap": bool(cap_years),
        "cap_year": max(min(cap_years), sc.start_year) if cap_years else
        min(max(2027, sc.start_year), sc.end_year),
        "paid_share": format_paid_share(paid_sector.paid_share),
        "reserve_policy": pool.policy,
        "release_price": pool.release_price,
        "absorb_price": pool.absorb_price,
        "set_aside_pct": round(pool.set_aside_share * 100, 6),
        "initial_reserve_pct": round(pool.initial_holdings_share * 100, 6),
        "banking": sc.compliance.banking,
        "banking_limit_t": sc.compliance.banking_limit_t,
        "penalty_multiple": sc.penalty.multiple,
        "price_limit_pct": round(sc.market.price_limit * 100, 6),
        "n_firms": natural_firm_count(sc, chosen),
        "seed": sc.seed,
    }


def default_levers(scenario: str = DEFAULT_SCENARIO) -> dict[str, Any]:
    """A scenario's levers with only the sectors that join in 2024 switched on.

    For ``china-2024`` this is the default Explore run: steel, cement and aluminium,
    2024-2030, power off.
    """
    sc = load_scenario(scenario)
    chosen = [s for s in sc.simulated_sectors() if s in NEW_SECTORS] or sc.simulated_sectors()
    return scenario_levers(sc if not isinstance(scenario, str) else scenario, chosen)


def _number(levers: dict[str, Any], key: str, label: str, *, integer: bool = False,
            optional: bool = False) -> float | int | None:
    value = levers.get(key)
    if value is None or value == "":
        if optional:
            return None
        raise LeverError(f"{label}: a number is needed")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LeverError(f"{label}: a number is needed (got {value!r})") from None
    if integer:
        if number != int(number):
            raise LeverError(f"{label}: a whole number is needed (got {value!r})")
        return int(number)
    return number


def lever_overrides(levers: dict[str, Any]) -> dict[str, Any]:
    """The scenario overrides (dotted keys) that the levers ask for.

    Only levers that differ from the scenario's own values produce overrides, so the
    scenario's schedules (paid share paths, rule tables) survive untouched levers.

    Args:
        levers: The levers dict of :func:`scenario_levers`.

    Returns:
        Dotted-key overrides for ``load_scenario``, e.g.
        ``{"sectors.power.enabled": False, "sectors.steel.allocation.tightening": 0.03}``.

    Raises:
        LeverError: A lever value is missing, not a number, or the combination makes no
            sense (no sector chosen, a firm count the sectors cannot have).
        ScenarioError: The scenario itself cannot be loaded.
    """
    name = levers.get("scenario") or DEFAULT_SCENARIO
    base = load_scenario(name)
    sectors = [s for s in (levers.get("sectors") or []) if s in base.sectors]
    if not sectors:
        raise LeverError("Sectors: choose at least one sector")
    own = scenario_levers(base, sectors)
    out: dict[str, Any] = {}
    enabled = set(base.simulated_sectors())
    for sector in sorted(set(sectors) | enabled):
        if (sector in sectors) != (sector in enabled):
            out[f"sectors.{sector}.enabled"] = sector in sectors

    lever_sectors = _lever_sectors(sectors)
    tightening = _number(levers, "tightening_pct", "Benchmark tightening (% a year)")
    assert tightening is not None
    if not 0 <= tightening < 100:
        raise LeverError(f"Benchmark tightening: must be at least 0 and below 100% a year "
                         f"(got {tightening:g})")
    if abs(tightening - own["tightening_pct"]) > 1e-9:
        for sector in lever_sectors:
            out[f"sectors.{sector}.allocation.tightening"] = tightening / 100

    cap_on = bool(levers.get("absolute_cap"))
    cap_year = _number(levers, "cap_year", "Absolute cap year", integer=True)
    assert cap_year is not None
    if cap_on and not base.start_year <= cap_year <= base.end_year:
        raise LeverError(f"Absolute cap year: must lie in the scenario's compliance years, "
                         f"{base.start_year}-{base.end_year} (got {cap_year})")
    if cap_on != own["absolute_cap"] or (cap_on and cap_year != own["cap_year"]):
        for sector in lever_sectors:
            out[f"sectors.{sector}.allocation.rule"] = _cap_rule(
                base.sectors[sector].allocation.rule, cap_year if cap_on else None,
                base.start_year)

    paid = parse_paid_share(levers.get("paid_share"))
    if not _same_share(paid, parse_paid_share(own["paid_share"])):
        for sector in sectors:
            out[f"sectors.{sector}.allocation.paid_share"] = paid

    policy = levers.get("reserve_policy") or "none"
    if policy != own["reserve_policy"]:
        out["reserve_pool.policy"] = policy
    for key, dotted, label, scale in (
        ("release_price", "reserve_pool.release_price", "Reserve release price", 1.0),
        ("absorb_price", "reserve_pool.absorb_price", "Reserve absorb price", 1.0),
        ("set_aside_pct", "reserve_pool.set_aside_share", "Reserve set-aside (%)", 100.0),
        ("initial_reserve_pct", "reserve_pool.initial_holdings_share",
         "Reserve initial holdings (%)", 100.0),
        ("penalty_multiple", "penalty.multiple", "Penalty multiple", 1.0),
        ("price_limit_pct", "market.price_limit", "Daily price limit (%)", 100.0),
    ):
        value = _number(levers, key, label)
        assert value is not None
        if abs(value - float(own[key])) > 1e-9:
            out[dotted] = value / scale

    banking = bool(levers.get("banking"))
    if banking != own["banking"]:
        out["compliance.banking"] = banking
    limit = _number(levers, "banking_limit_t", "Banking limit (t)", optional=True)
    if limit != own["banking_limit_t"]:
        if limit is not None and limit < 0:
            raise LeverError(f"Banking limit: must be 0 t or more (got {limit:g})")
        out["compliance.banking_limit_t"] = limit

    n_firms = _number(levers, "n_firms", "Number of firms", integer=True)
    assert n_firms is not None
    natural = own["n_firms"]
    if n_firms != natural:
        if n_firms < len(sectors):
            raise LeverError(f"Number of firms: at least one per chosen sector, so at least "
                             f"{len(sectors)} (got {n_firms})")
        scale = base.scale * n_firms / natural
        if scale > 10:
            raise LeverError(f"Number of firms: at most 10 times the scenario's "
                             f"{natural:,} for these sectors, {10 * natural:,} (got {n_firms:,})")
        out["scale"] = scale
    return out


def resolve(levers: dict[str, Any]) -> tuple[Scenario, int, dict[str, Any]]:
    """The scenario, seed and overrides the levers describe.

    Raises:
        LeverError: A lever is invalid (see :func:`lever_overrides`).
        ScenarioError: The combination breaks the scenario schema (its message names the
            key and the rule).
    """
    overrides = lever_overrides(levers)
    seed = _number(levers, "seed", "Seed", integer=True)
    assert seed is not None
    if seed < 0:
        raise LeverError(f"Seed: must be 0 or more (got {seed})")
    scenario = load_scenario(levers.get("scenario") or DEFAULT_SCENARIO, overrides or None)
    return scenario, seed, overrides


def lever_error_message(error: Exception) -> str:
    """The one-line text shown on the page for a bad lever or scenario."""
    if isinstance(error, LeverError | ScenarioError):
        return str(error)
    return f"The run failed: {type(error).__name__}: {error}"


# --- cache ------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Folder of the results cache: ``$ETSIM_DASHBOARD_CACHE`` or the user's cache folder."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.access(os.path.dirname(base) or ".", os.W_OK) and not os.path.isdir(base):
        base = tempfile.gettempdir()
    return Path(base) / "etsim" / "dashboard-runs"


def _open_cache() -> Any:
    # Opened per use: a diskcache handle must not cross a fork into the worker process.
    import diskcache

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return diskcache.Cache(str(folder), size_limit=CACHE_SIZE_LIMIT,
                           eviction_policy="least-recently-used")


def run_key(scenario: Scenario, seed: int, book_days: Sequence[str] = ()) -> str:
    """Cache key of a run: the scenario's digest and the seed (and recorded book days)."""
    key = f"{scenario.digest()}-{seed}"
    if book_days:
        key += "-book-" + "_".join(sorted(book_days))
    return key


def cached_tables(key: str, names: Sequence[str] | None = None
                  ) -> dict[str, pd.DataFrame] | None:
    """Tables of a cached run, or None when the run is not (or no longer) in the cache."""
    with _open_cache() as cache:
        meta = cache.get(f"{key}/meta")
        if meta is None:
            return None
        wanted = [n for n in (names or meta["tables"]) if n in meta["tables"]]
        tables = {}
        for name in wanted:
            frame = cache.get(f"{key}/{name}")
            if frame is None:  # evicted half-way: treat the run as gone
                return None
            tables[name] = frame
        return tables


def cached_meta(key: str) -> dict[str, Any] | None:
    """The run's record (scenario name, firms, deadlines, ...) if it is cached."""
    with _open_cache() as cache:
        return cache.get(f"{key}/meta")


def _store(key: str, tables: dict[str, pd.DataFrame], meta: dict[str, Any]) -> None:
    with _open_cache() as cache:
        for name, frame in tables.items():
            cache.set(f"{key}/{name}", frame)
        cache.set(f"{key}/meta", {**meta, "tables": list(tables)})  # written last: complete


def memo(key: str, compute: Callable[[], Any]) -> Any:
    """A value derived from a run (a network layout, ...), computed once and cached.

    Args:
        key: Cache key; start it with the run's key so it names the run it comes from.
        compute: Makes the value on a miss.
    """
    with _open_cache() as cache:
        value = cache.get(f"{key}/memo")
    if value is None:
        value = compute()
        with _open_cache() as cache:
            cache.set(f"{key}/memo", value)
    return value


def deadline_dates(scenario: Scenario, market_daily: pd.DataFrame) -> list[str]:
    """Dates of the compliance deadlines (the last trading day of each deadline month)."""
    c = scenario.compliance
    dates = pd.to_datetime(market_daily["date"])
    out = []
    for year in range(scenario.start_year, scenario.end_year + 1):
        in_month = dates[(dates.dt.year == year + c.deadline_year_offset)
                         & (dates.dt.month == c.deadline_month)]
        if len(in_month):
            out.append(in_month.max().strftime("%Y-%m-%d"))
    return out


def run_meta(scenario: Scenario, seed: int, tables: dict[str, pd.DataFrame],
             wall_time: float) -> dict[str, Any]:
    """The run's record kept beside its tables: what the views need besides the tables."""
    verified_rule: dict[str, list[str]] = {}
    for year in range(scenario.start_year, scenario.end_year + 1):
        verified_rule[str(year)] = [
            name for name in scenario.simulated_sectors()
            if schedule_value(scenario.sectors[name].allocation.rule, year)
            == "verified_emissions"
        ]
    return {
        "scenario": scenario.name,
        "digest": scenario.digest(),
        "seed": seed,
        "start_year": scenario.start_year,
        "end_year": scenario.end_year,
        "sectors": scenario.simulated_sectors(),
        "firms": int(len(tables["firms"])),
        "deadlines": deadline_dates(scenario, tables["market_daily"]),
        "verified_rule_sectors": verified_rule,
        "include_indirect": scenario.scope.include_indirect,
        "wall_time_s": round(wall_time, 2),
    }


def _every_few_days(progress: Progress, n_days: int) -> Progress:
    """``progress`` called about PROGRESS_REPORTS times in a run of ``n_days`` trading days
    (every few days and on the last), not after each day."""
    every = max(1, -(-n_days // PROGRESS_REPORTS))

    def report(days_done: int, total: int) -> None:
        if days_done % every == 0 or days_done == total:
            progress(int(days_done), int(total))

    return report


def run_tables(levers: dict[str, Any], progress: Progress | None = None,
               book_days: Sequence[str] = ()) -> dict[str, Any]:
    """Run the scenario the levers describe, or take it from the cache.

    Args:
        levers: The levers dict.
        progress: Called with (trading days done, trading days in all) as the run goes.
        book_days: Extra days ("YYYY-MM-DD") whose order book the model should record.

    Returns:
        ``{"key", "meta", "tables", "cached", "overrides"}``.

    Raises:
        LeverError, ScenarioError: Invalid levers (nothing is run).
    """
    scenario, seed, overrides = resolve(levers)
    book_days = tuple(book_days)
    key = run_key(scenario, seed, book_days)
    tables = cached_tables(key)
    if tables is not None:
        meta = cached_meta(key) or {}
        if progress:
            progress(1, 1)
        return {"key": key, "meta": meta, "tables": tables, "cached": True,
                "overrides": overrides}
    started = time.perf_counter()
    model = CarbonMarketModel(scenario=scenario, seed=seed, book_days=list(book_days) or None)
    model.run(progress=_every_few_days(progress, model.calendar.n_days) if progress else None)
    tables = model.results()
    meta = run_meta(scenario, seed, tables, time.perf_counter() - started)
    meta["overrides"] = {k: v for k, v in overrides.items()}
    _store(key, tables, meta)
    return {"key": key, "meta": meta, "tables": tables, "cached": False, "overrides": overrides}


def cached_result(levers: dict[str, Any], book_days: Sequence[str] = ()
                  ) -> dict[str, Any] | None:
    """The levers' run if the cache has it (as :func:`run_tables` returns it), else None.

    Raises:
        LeverError, ScenarioError: Invalid levers.
    """
    scenario, seed, overrides = resolve(levers)
    key = run_key(scenario, seed, tuple(book_days))
    tables = cached_tables(key)
    if tables is None:
        return None
    return {"key": key, "meta": cached_meta(key) or {}, "tables": tables, "cached": True,
            "overrides": overrides}


def run_job(report: Callable[..., None], batch: Sequence[tuple[str, dict[str, Any]]],
            cache: str | None = None) -> dict[str, Any]:
    """A dashboard job (run in a worker of :mod:`etsim.dashboard.jobs`): run each levers
    set in turn, the tables going to the results cache.

    Args:
        report: ``report(done, total, note)``: trading days done in the current run.
        batch: ``(name, levers)`` pairs, or ``(name, levers, book_days)`` to record those
            days' order books; ``name`` ("Scenario A") prefixes progress and error
            messages when there is more than one run.
        cache: The results cache folder to use (the server's, passed along as the job's
            process may have started with another environment).

    Returns:
        ``{"records": [session record per run], "cached": [bool per run]}``.

    Raises:
        JobError: A lever or scenario is invalid, or a run failed (its message names
            the run).
    """
    if cache:
        os.environ[CACHE_ENV] = cache
    records, cached = [], []
    for index, (name, levers, *days) in enumerate(batch):
        book_days = tuple(days[0]) if days else ()
        prefix = f"{name}: " if len(batch) > 1 else ""
        note = f"{name} ({index + 1} of {len(batch)})" if len(batch) > 1 else ""

        def progress(done: int, total: int, note: str = note) -> None:
            report(done, total, note)

        try:
            result = run_tables(levers, progress=progress, book_days=book_days)
        except Exception as err:  # noqa: BLE001 - the message goes to the page
            raise JobError(prefix + lever_error_message(err)) from None
        records.append(session_run(levers, result, book_days))
        cached.append(bool(result["cached"]))
    return {"records": records, "cached": cached}


def queue_runs(batch: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A page's Run: check every levers set, take the runs from the cache if it has them
    all, else queue them as one job (:func:`run_job`) in the server's job queue.

    Args:
        batch: ``(name, levers)`` or ``(name, levers, book_days)``, as :func:`run_job`
            takes them; the name prefixes messages when there are several.

    Returns:
        ``{"job", "records", "cached", "error"}``: the job to follow (``{"id": token}``)
        or None; the session records and cache flags when every run was in the cache;
        the one-line error for bad levers or a full queue, else None.
    """
    out: dict[str, Any] = {"job": None, "records": None, "cached": None, "error": None}
    for name, levers, *_ in batch:
        try:
            resolve(levers)
        except Exception as err:  # noqa: BLE001 - a message on the page
            out["error"] = (f"{name}: " if len(batch) > 1 else "") + lever_error_message(err)
            return out
    records = []
    for _, levers, *days in batch:
        book_days = tuple(days[0]) if days else ()
        result = cached_result(levers, book_days)
        if result is None:
            break
        records.append(session_run(levers, result, book_days))
    else:
        return dict(out, records=records, cached=[True] * len(records))
    try:
        out["job"] = {"id": jobs.job_queue().submit(run_job, list(batch),
                                                       str(cache_dir()))}
    except jobs.QueueFull as err:
        out["error"] = str(err)
    return out


def follow_runs(job: dict[str, Any], cancel: bool = False) -> dict[str, Any]:
    """Where a page's queued job stands (after cancelling it if asked).

    Returns:
        :func:`jobs.progress_view`'s ``{"active", "value", "max", "label", "error"}`` and
        ``job`` (the job while it is queued or running, else None), ``records`` and
        ``cached`` (the finished runs, else None).
    """
    queue = jobs.job_queue()
    status = queue.cancel(job.get("id")) if cancel else queue.status(job.get("id"))
    out = dict(jobs.progress_view(status), records=None, cached=None)
    out["job"] = job if out["active"] else None
    if status is not None and status["state"] == "done":
        out.update(records=status["result"]["records"], cached=status["result"]["cached"])
    return out


LEVER_NAMES = {
    "tightening_pct": ("tightening", "{:g}% a year"),
    "paid_share": ("paid share", "{}%"),
    "reserve_policy": ("reserve pool", "{}"),
    "release_price": ("release above", "{:g} CNY/t"),
    "absorb_price": ("buy back below", "{:g} CNY/t"),
    "set_aside_pct": ("set aside", "{:g}%"),
    "initial_reserve_pct": ("initial reserve", "{:g}%"),
    "banking": ("banking", "{}"),
    "banking_limit_t": ("banking limit", "{} t"),
    "penalty_multiple": ("penalty", "{:g} x"),
    "price_limit_pct": ("price limit", "{:g}%"),
}


def lever_changes(levers: dict[str, Any]) -> list[str]:
    """The levers set away from the scenario's own values, as short phrases."""
    try:
        base = load_scenario(levers.get("scenario") or DEFAULT_SCENARIO)
        own = scenario_levers(base, levers.get("sectors") or [])
    except ScenarioError:
        return []
    changes = []
    cap = bool(levers.get("absolute_cap"))
    if cap != own["absolute_cap"] or (cap and levers.get("cap_year") != own["cap_year"]):
        changes.append(f"absolute cap from {levers.get('cap_year')}" if cap else
                       "no absolute cap")
    for key, (name, fmt) in LEVER_NAMES.items():
        value, before = levers.get(key), own.get(key)
        if key == "paid_share":
            try:
                if _same_share(parse_paid_share(value), parse_paid_share(before)):
                    continue
            except LeverError:
                pass
        elif value == before or (isinstance(value, int | float) and isinstance(before, int | float)
                                 and abs(float(value) - float(before)) < 1e-9):
            continue
        try:
            changes.append(f"{name} {fmt.format(value)}")
        except (ValueError, TypeError):
            changes.append(f"{name} {value}")
    return changes


def run_label(levers: dict[str, Any], meta: dict[str, Any]) -> str:
    """A short human label of a run: scenario, sectors, firms, seed and changed levers."""
    sectors = ", ".join(meta.get("sectors") or levers.get("sectors") or [])
    label = (f"{meta.get('scenario', levers.get('scenario'))} ({sectors}), "
             f"{meta.get('firms', '?'):,} firms, seed {meta.get('seed', levers.get('seed'))}")
    changes = lever_changes(levers)
    return label + (f"; {', '.join(changes)}" if changes else "")


def session_run(levers: dict[str, Any], result: dict[str, Any],
                book_days: Sequence[str] = ()) -> dict[str, Any]:
    """What a browser session keeps of a run (in its ``dcc.Store``): small and JSON.

    Args:
        levers: The run's levers.
        result: What :func:`run_tables` returned.
        book_days: The days whose order book the run recorded, if chosen.
    """
    record = {"key": result["key"], "levers": levers, "label": run_label(levers, result["meta"]),
              "meta": result["meta"]}
    if book_days:
        record["book_days"] = list(book_days)
    return record


def load_session_tables(run: dict[str, Any] | None, names: Sequence[str] | None = None
                        ) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The tables of a session's run; re-run from its levers if the cache lost it.

    Args:
        run: The session's run record (:func:`session_run`), or None for the default run.
        names: Tables wanted (None: all).

    Returns:
        (tables, meta).
    """
    if run and run.get("key"):
        tables = cached_tables(run["key"], names)
        if tables is not None:
            return tables, cached_meta(run["key"]) or run.get("meta", {})
    levers = (run or {}).get("levers") or default_levers()
    result = run_tables(levers, book_days=(run or {}).get("book_days") or ())
    tables = result["tables"]
    if names is not None:
        tables = {n: tables[n] for n in names if n in tables}
    return tables, result["meta"]
