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

# Per-sector levers: the levers dict holds them under "SECTOR.FIELD" keys (the URL's too).
SECTOR_FIELDS = ("tightening_pct", "cap_year", "cap_mt", "cap_decline_pct", "paid_share",
                 "pre_allocation_pct")
# Year-table levers: a percentage, or "YEAR: PERCENT, ..." (see parse_schedule).
SCHEDULE_FIELDS = frozenset({"tightening_pct", "paid_share"})


class Range:
    """The allowed values of a numeric lever: its label, unit and bounds, for messages.

    Args:
        label: The lever's name on the page.
        unit: Its unit as shown ("CNY/t", "% a year").
        low: Smallest allowed value.
        high: Largest allowed value.
        integer: Whole numbers only.
        optional: Empty is allowed (means "unset", e.g. no banking limit).
        high_open: ``high`` itself is not allowed (shares below 100%).
        empty: What an empty field means, for the page (optional levers).
    """

    def __init__(self, label: str, unit: str, low: float, high: float, *,
                 integer: bool = False, optional: bool = False, high_open: bool = False,
                 empty: str = "") -> None:
        self.label, self.unit, self.low, self.high = label, unit, low, high
        self.integer, self.optional, self.high_open, self.empty = (integer, optional,
                                                                   high_open, empty)

    def text(self) -> str:
        """The allowed range as words: ``0 to below 100 %``."""
        unit = f" {self.unit}" if self.unit else ""
        unit = unit.replace(" %", "%")
        fmt = "{:.0f}" if self.integer else "{:,g}"  # years read 2024, not 2,024
        top = f"below {fmt.format(self.high)}" if self.high_open else fmt.format(self.high)
        kind = "a whole number" if self.integer else ""
        extra = f", or empty for {self.empty}" if self.optional and self.empty else ""
        if self.high == float("inf"):
            return f"{kind or 'a number'} of at least {self.low:,g}{unit}{extra}"
        return f"{kind} from {fmt.format(self.low)} to {top}{unit}{extra}".strip()

    def check(self, value: Any) -> float | int | None:
        """The value as a number, or LeverError with the range (one message)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.optional:
                return None
            raise LeverError(f"{self.label}: enter a value {self.text()}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise LeverError(f"{self.label}: must be {self.text()} (got {value!r})") from None
        inside = self.low <= number and (number < self.high if self.high_open
                                         else number <= self.high)
        if not inside or (self.integer and number != int(number)):
            raise LeverError(f"{self.label}: must be {self.text()} (got {value!r})")
        return int(number) if self.integer else number


GLOBAL_RANGES: dict[str, Range] = {
    "release_price": Range("Reserve: release above", "CNY/t", 1, 10_000),
    "absorb_price": Range("Reserve: buy back below", "CNY/t", 0, 10_000),
    "set_aside_pct": Range("Reserve: set aside each year", "% of quota", 0, 99),
    "initial_reserve_pct": Range("Reserve: initial holdings", "% of the first year's quota",
                                 0, 100),
    "banking_limit_t": Range("Banking limit", "t per firm", 0, float("inf"), optional=True,
                             empty="no limit"),
    "penalty_multiple": Range("Penalty", "x the mean price", 0, 100),
    "price_limit_pct": Range("Daily price limit", "%", 1, 100),
    "seed": Range("Seed", "", 0, 2**31 - 1, integer=True),
}


def sector_range(sector: str, field: str, scenario: Scenario | None = None) -> Range:
    """The allowed values of a sector lever (the cap year's bounds are the scenario's)."""
    start, end = (scenario.start_year, scenario.end_year) if scenario else (1990, 2100)
    return {
        "tightening_pct": Range(f"{sector}: benchmark tightening", "% a year", 0, 50),
        "cap_year": Range(f"{sector}: absolute cap from year", "", start, end, integer=True,
                          optional=True, empty="no absolute cap"),
        "cap_mt": Range(f"{sector}: cap in its first year", "Mt CO2 at full scale", 0.001,
                        100_000, optional=True,
                        empty="the sector's verified emissions of the year before"),
        "cap_decline_pct": Range(f"{sector}: cap decline", "% a year", 0, 50),
        "paid_share": Range(f"{sector}: paid share (auction)", "% of quota", 0, 100,
                            high_open=True),
        "pre_allocation_pct": Range(f"{sector}: pre-allocation", "% of the basis", 0, 100),
    }[field]


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
    if len(set(rules.values())) == 1 and min(rules) <= start_year:
        return next(iter(rules.values()))
    if min(rules) > start_year:  # a cap from a later year: the years before keep intensity
        rules[start_year] = "intensity"
    return {str(y): r for y, r in sorted(rules.items())}


def rule_text(rule: Any) -> str:
    """A rule schedule in words: ``verified_emissions 2024, intensity from 2025``."""
    table = _rule_table(rule)
    if list(table) == [0]:
        return table[0].replace("_", " ")
    return ", ".join(f"{r.replace('_', ' ')} from {y}" for y, r in table.items())


def format_schedule(schedule: Any) -> str:
    """A share schedule as the text of its lever, in percent.

    Args:
        schedule: A share (0.1) or a year table ({"2026": 0.05, "2030": 0.2}).

    Returns:
        ``"10"`` or ``"2026: 5, 2030: 20"``.
    """
    def pct(value: Any) -> str:
        return f"{round(float(value) * 100, 9):g}"

    if isinstance(schedule, dict):
        return ", ".join(f"{int(y)}: {pct(v)}" for y, v in sorted(schedule.items(),
                                                                   key=lambda kv: int(kv[0])))
    return pct(schedule)


format_paid_share = format_schedule


def parse_schedule(text: str | float | None, limits: Range,
                   start_year: int | None = None) -> float | dict[str, float]:
    """Read a year-table lever: a percentage, or years with percentages.

    A table is honoured as written: ``2028: 20`` is 20% from 2028 and 0% before it (the
    scenario's own rule would otherwise carry the first listed value back to the first
    year).

    Args:
        text: ``"10"`` (10% every year) or ``"2026: 5, 2028: 10, 2030: 20"``; empty is 0.
        limits: The lever's range (label, unit, bounds) for messages.
        start_year: The scenario's first year; a table starting later gets 0 before.

    Returns:
        A share (0.1) or a year table of shares ({"2026": 0.05, ...}).

    Raises:
        LeverError: The text is neither form, or a value is outside the lever's range.
    """
    hint = (f"{limits.label}: write a percentage such as 10, or years and percentages such "
            f"as 2026: 5, 2028: 10; each {limits.text()}")
    if text is None or (isinstance(text, str) and not text.strip()):
        return 0.0
    if isinstance(text, int | float):
        text = str(text)
    cleaned = text.strip().strip("{}")
    if ":" not in cleaned and "=" not in cleaned:
        value = _schedule_number(cleaned, limits, hint, text)
        return value / 100
    table: dict[int, float] = {}
    for part in re.split(r"[,;]", cleaned):
        if not part.strip():
            continue
        pieces = re.split(r"[:=]", part)
        if len(pieces) != 2:
            raise LeverError(f"{hint} (got {text!r})")
        try:
            year = int(pieces[0].strip())
        except ValueError:
            raise LeverError(f"{hint} (got {text!r})") from None
        if not 1990 <= year <= 2100:
            raise LeverError(f"{hint}; years from 1990 to 2100 (got {year})")
        table[year] = _schedule_number(pieces[1], limits, hint, text) / 100
    if not table:
        raise LeverError(f"{hint} (got {text!r})")
    if start_year is not None and min(table) > start_year:
        table[start_year] = 0.0
    return {str(y): v for y, v in sorted(table.items())}


def _schedule_number(piece: str, limits: Range, hint: str, text: str) -> float:
    try:
        value = float(piece.strip().rstrip("%"))
    except ValueError:
        raise LeverError(f"{hint} (got {text!r})") from None
    inside = limits.low <= value and (value < limits.high if limits.high_open
                                      else value <= limits.high)
    if not inside:
        raise LeverError(f"{limits.label}: each value must be {limits.text()} "
                         f"(got {value:g})")
    return value


def parse_paid_share(text: str | float | None) -> float | dict[str, float]:
    """Read a paid-share lever (see :func:`parse_schedule`), without a scenario's years."""
    return parse_schedule(text, sector_range("Paid share", "paid_share"))


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


def _sector_levers(sc: Scenario, sector: str) -> dict[str, Any]:
    allocation = sc.sectors[sector].allocation
    rules = _rule_table(allocation.rule)
    cap_years = [year for year, rule in rules.items() if rule == "absolute_cap"]
    return {
        f"{sector}.tightening_pct": format_schedule(allocation.tightening),
        f"{sector}.cap_year": max(min(cap_years), sc.start_year) if cap_years else None,
        f"{sector}.cap_mt": (None if allocation.cap_base_t is None
                             else round(allocation.cap_base_t / 1e6, 6)),
        f"{sector}.cap_decline_pct": round(allocation.cap_decline * 100, 6),
        f"{sector}.paid_share": format_schedule(allocation.paid_share),
        f"{sector}.pre_allocation_pct": round(allocation.pre_allocation_share * 100, 6),
    }


def scenario_levers(scenario: str | Scenario, sectors: Sequence[str] | None = None
                    ) -> dict[str, Any]:
    """The lever values that describe a scenario as it stands.

    Args:
        scenario: A shipped scenario name (or path) or a loaded Scenario.
        sectors: Sectors to switch on instead of the scenario's own (None: its own).

    Returns:
        The levers dict (JSON-friendly): scenario, sectors, per sector of the scenario
        ``SECTOR.tightening_pct`` (text, %), ``SECTOR.cap_year`` (None: no absolute cap),
        ``SECTOR.cap_mt`` (None: the year before's verified emissions),
        ``SECTOR.cap_decline_pct``, ``SECTOR.paid_share`` (text, %),
        ``SECTOR.pre_allocation_pct``; then reserve_policy, release_price, absorb_price,
        set_aside_pct, initial_reserve_pct, banking, banking_limit_t, penalty_multiple,
        price_limit_pct, n_firms, seed.
    """
    sc = load_scenario(scenario) if not isinstance(scenario, Scenario) else scenario
    name = scenario if isinstance(scenario, str) else sc.name
    chosen = list(sectors) if sectors is not None else sc.simulated_sectors()
    pool = sc.reserve_pool
    out: dict[str, Any] = {"scenario": name, "sectors": chosen}
    for sector in sc.sectors:
        out.update(_sector_levers(sc, sector))
    out.update({
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
    })
    return out


def default_levers(scenario: str = DEFAULT_SCENARIO) -> dict[str, Any]:
    """A scenario's levers with only the sectors that join in 2024 switched on.

    For ``china-2024`` this is the default Explore run: steel, cement and aluminium,
    2024-2030, power off.
    """
    sc = load_scenario(scenario)
    chosen = [s for s in sc.simulated_sectors() if s in NEW_SECTORS] or sc.simulated_sectors()
    return scenario_levers(sc if not isinstance(scenario, str) else scenario, chosen)


def _sector_overrides(levers: dict[str, Any], own: dict[str, Any], base: Scenario,
                      sector: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    prefix = f"sectors.{sector}.allocation"

    def lever(field: str) -> Any:
        key = f"{sector}.{field}"
        return levers[key] if key in levers else own[key]

    for field, dotted in (("tightening_pct", "tightening"), ("paid_share", "paid_share")):
        limits = sector_range(sector, field, base)
        value = parse_schedule(lever(field), limits, base.start_year)
        if not _same_share(value, parse_schedule(own[f"{sector}.{field}"], limits,
                                                 base.start_year)):
            out[f"{prefix}.{dotted}"] = value
    cap_year = sector_range(sector, "cap_year", base).check(lever("cap_year"))
    if cap_year != own[f"{sector}.cap_year"]:
        out[f"{prefix}.rule"] = _cap_rule(base.sectors[sector].allocation.rule, cap_year,
                                          base.start_year)
    cap_mt = sector_range(sector, "cap_mt", base).check(lever("cap_mt"))
    if cap_mt != own[f"{sector}.cap_mt"] and not (
            cap_mt is not None and own[f"{sector}.cap_mt"] is not None
            and abs(cap_mt - own[f"{sector}.cap_mt"]) < 1e-9):
        out[f"{prefix}.cap_base_t"] = None if cap_mt is None else cap_mt * 1e6
    for field, dotted in (("cap_decline_pct", "cap_decline"),
                          ("pre_allocation_pct", "pre_allocation_share")):
        value = sector_range(sector, field, base).check(lever(field))
        if abs(float(value) - float(own[f"{sector}.{field}"])) > 1e-9:
            out[f"{prefix}.{dotted}"] = float(value) / 100
    return out


def lever_overrides(levers: dict[str, Any]) -> dict[str, Any]:
    """The scenario overrides (dotted keys) that the levers ask for.

    Only levers that differ from the scenario's own values produce overrides, so the
    scenario's schedules (paid share paths, rule tables) survive untouched levers. A
    sector's levers act on that sector only; those of sectors not chosen are ignored.

    Args:
        levers: The levers dict of :func:`scenario_levers`.

    Returns:
        Dotted-key overrides for ``load_scenario``, e.g.
        ``{"sectors.power.enabled": False, "sectors.steel.allocation.tightening": 0.03}``.

    Raises:
        LeverError: A lever value is missing or outside its range (the message gives the
            range and unit), or the combination makes no sense (no sector chosen, a
            set-aside with no reserve policy, a firm count the sectors cannot have).
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
    for sector in sectors:
        out.update(_sector_overrides(levers, own, base, sector))

    policy = levers.get("reserve_policy") or "none"
    if policy != own["reserve_policy"]:
        out["reserve_pool.policy"] = policy
    values = {}
    for key, dotted, scale in (
        ("release_price", "reserve_pool.release_price", 1.0),
        ("absorb_price", "reserve_pool.absorb_price", 1.0),
        ("set_aside_pct", "reserve_pool.set_aside_share", 100.0),
        ("initial_reserve_pct", "reserve_pool.initial_holdings_share", 100.0),
        ("penalty_multiple", "penalty.multiple", 1.0),
        ("price_limit_pct", "market.price_limit", 100.0),
    ):
        value = GLOBAL_RANGES[key].check(levers.get(key))
        assert value is not None
        values[key] = value
        if abs(value - float(own[key])) > 1e-9:
            out[dotted] = value / scale
    if policy == "none" and (values["set_aside_pct"] > 0 or values["initial_reserve_pct"] > 0):
        raise LeverError("Reserve pool: the policy is none, so a set-aside or initial "
                         "holdings would be taken from firms and never released; choose a "
                         "policy or set both to 0%")
    if policy == "price_trigger" and values["absorb_price"] >= values["release_price"]:
        raise LeverError(f"Reserve: buy back below ({values['absorb_price']:g} CNY/t) must "
                         f"be below release above ({values['release_price']:g} CNY/t)")

    banking = bool(levers.get("banking"))
    if banking != own["banking"]:
        out["compliance.banking"] = banking
    limit = GLOBAL_RANGES["banking_limit_t"].check(levers.get("banking_limit_t"))
    if limit != own["banking_limit_t"]:
        out["compliance.banking_limit_t"] = limit

    n_firms = levers.get("n_firms")
    natural = own["n_firms"]
    firms = Range("Number of firms", "firms", len(sectors), 10 * natural,
                  integer=True).check(n_firms)
    if firms != natural:
        out["scale"] = base.scale * firms / natural
    return out


def lever_warnings(levers: dict[str, Any]) -> list[str]:
    """What the levers ask for that will not act, said before the run (the run may go).

    A price-triggered reserve with nothing to release (no initial holdings, no
    set-aside) can release only what it first buys back below its buy-back price.
    """
    notes = []
    policy = levers.get("reserve_policy")
    try:
        held = float(levers.get("initial_reserve_pct") or 0) + float(
            levers.get("set_aside_pct") or 0)
        release = f"{float(levers.get('release_price')):g}"
        absorb = f"{float(levers.get('absorb_price')):g}"
    except (TypeError, ValueError):
        return notes  # a bad number has its own message
    if policy in ("price_trigger", "bank_based") and held <= 0:
        if policy == "price_trigger":
            notes.append(
                f"Reserve pool: it holds nothing (initial holdings 0%, set-aside 0%), so "
                f"above {release} CNY/t it can release only what it has "
                f"bought back below {absorb} CNY/t; set a set-aside or "
                f"initial holdings for releases.")
        else:
            notes.append("Reserve pool: it holds nothing (initial holdings 0%, set-aside 0%), "
                         "so it can release only what it has taken in from the bank.")
    return notes


def resolve(levers: dict[str, Any]) -> tuple[Scenario, int, dict[str, Any]]:
    """The scenario, seed and overrides the levers describe.

    Raises:
        LeverError: A lever is invalid (see :func:`lever_overrides`).
        ScenarioError: The combination breaks the scenario schema (its message names the
            key and the rule).
    """
    overrides = lever_overrides(levers)
    seed = GLOBAL_RANGES["seed"].check(levers.get("seed"))
    assert seed is not None
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
    """Dates of the compliance deadlines (the last trading day of each deadline month),
    oldest first, one per deadline: the model's rule (``compliance.deadline_of``, so a
    multi-year period listed in ``compliance.deadlines`` has one date)."""
    dates = pd.to_datetime(market_daily["date"])
    out: list[str] = []
    for year in range(scenario.start_year, scenario.end_year + 1):
        due_year, month = scenario.compliance.deadline_of(year)
        in_month = dates[(dates.dt.year == due_year) & (dates.dt.month == month)]
        last_day = in_month.max().strftime("%Y-%m-%d") if len(in_month) else None
        if last_day is not None and last_day not in out:  # a period's years share one
            out.append(last_day)
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
SECTOR_LEVER_NAMES = {
    "tightening_pct": ("tightening", "{}% a year"),
    "cap_year": ("absolute cap from", "{}"),
    "cap_mt": ("cap", "{} Mt"),
    "cap_decline_pct": ("cap decline", "{:g}% a year"),
    "paid_share": ("paid share", "{}%"),
    "pre_allocation_pct": ("pre-allocation", "{:g}%"),
}


def _same(value: Any, before: Any) -> bool:
    if value == before:
        return True
    try:
        return abs(float(value) - float(before)) < 1e-9
    except (TypeError, ValueError):
        return False


def lever_changes(levers: dict[str, Any]) -> list[str]:
    """The levers set away from the scenario's own values, as short phrases
    (``steel: absolute cap from 2027``, ``reserve pool price_trigger``)."""
    try:
        base = load_scenario(levers.get("scenario") or DEFAULT_SCENARIO)
        own = scenario_levers(base, levers.get("sectors") or [])
    except ScenarioError:
        return []
    changes = []
    for sector in levers.get("sectors") or []:
        for field, (name, fmt) in SECTOR_LEVER_NAMES.items():
            key = f"{sector}.{field}"
            if key not in levers or key not in own:
                continue
            value, before = levers[key], own[key]
            if field in SCHEDULE_FIELDS:
                try:
                    limits = sector_range(sector, field, base)
                    if _same_share(parse_schedule(value, limits, base.start_year),
                                   parse_schedule(before, limits, base.start_year)):
                        continue
                except LeverError:
                    pass
            elif _same(value, before) or (value in (None, "") and before in (None, "")):
                continue
            if field == "cap_year" and value in (None, ""):
                changes.append(f"{sector}: no absolute cap")
                continue
            try:
                changes.append(f"{sector}: {name} {fmt.format(value)}")
            except (ValueError, TypeError):
                changes.append(f"{sector}: {name} {value}")
    for key, (name, fmt) in LEVER_NAMES.items():
        value, before = levers.get(key), own.get(key)
        if _same(value, before):
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
