"""Results of a run: the tables of the README's Results section, and writing them.

Views (dashboard, reports) read these tables only; they never reach into a model.
Writing is atomic: tables go to a temporary folder beside the target, which is renamed
into place when everything is written, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from etsim.agents.networks import yearly_networks
from etsim.model.equilibrium import (
    market_equilibrium,
    run_efficiency,
    static_equilibrium,
    year_efficiency,
    year_markets,
)
from etsim.model.messages import shown, shown_name
from etsim.model.scenario import ScenarioError
from etsim.model.session import EVENT_FIELDS, EVENT_NAMES

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable, Iterable

    from etsim.model.records import MarketState

TABLES = ("market_daily", "firm_years", "firms", "abatement_options", "market_years", "trades",
          "book_events", "trade_network")
BOOK_EVENT_COLUMNS = ("date", "session", "seq", "event", "order_id", "trader_id", "side",
                      "quantity", "price", "buyer_id", "seller_id", "limit_down", "limit_up")


def _book_events(model: MarketState) -> pd.DataFrame:
    """Every order, cancel and trade of the recorded trading days, in the order they
    happened (``seq`` counts within a day, block session first), for replaying a book."""
    sessions = model.session.book_log  # RecordedSession columns, one per session
    counts = [len(recorded.event) for recorded in sessions]
    day = np.repeat(np.array([recorded.day for recorded in sessions], dtype=np.int64),
                    counts)

    def joined(field: str, dtype: Any) -> np.ndarray:
        parts = [getattr(recorded, field) for recorded in sessions]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    code = joined("event", np.int64)
    # the days come in order, so an event's seq is its place after its day's first one
    first_of_day = np.searchsorted(day, day)
    columns: dict[str, Any] = {
        "date": model.calendar.date[day].astype("datetime64[s]"),
        "session": _repeated([recorded.session for recorded in sessions], counts),
        "seq": pd.arrays.IntegerArray(np.arange(len(day), dtype=np.int64) - first_of_day,
                                      np.zeros(len(day), dtype=bool)),
        "event": _decoded(list(EVENT_NAMES), code),
    }
    for field, names in EVENT_FIELDS.items():  # missing where the event has no such field
        has = np.isin(code, [EVENT_NAMES.index(name) for name in names])
        columns[field] = pd.arrays.IntegerArray(joined(field, np.int64), ~has)
    columns["price"] = joined("price", np.float64)
    for field in ("limit_down", "limit_up"):  # the session's band, on each of its events
        columns[field] = np.repeat(np.array([getattr(recorded, field) for recorded in sessions],
                                            dtype=np.float64), counts)
    return pd.DataFrame(columns)[list(BOOK_EVENT_COLUMNS)]


def _trade_frame(model: MarketState) -> pd.DataFrame:
    logs = model.trade_log.parts
    if not logs:
        return pd.DataFrame({
            "date": pd.Series(dtype="datetime64[s]"), "buyer_id": pd.Series(dtype="int64"),
            "seller_id": pd.Series(dtype="int64"), "price": pd.Series(dtype=float),
            "quantity": pd.Series(dtype="int64"), "kind": pd.Series(dtype=str),
        })
    counts = [len(log["quantity"]) for log in logs]
    day = np.repeat(np.array([log["day"] for log in logs], dtype=np.int64), counts)
    ids = model.account_id  # firm ids, then financial accounts' ids

    def to_id(rows: np.ndarray) -> np.ndarray:
        # negative rows are the auctioneer (-1) and the reserve pool (-2)
        return np.where(rows >= 0, ids[np.maximum(rows, 0)], rows)

    return pd.DataFrame({
        "date": model.calendar.date[day].astype("datetime64[s]"),
        "buyer_id": to_id(np.concatenate([log["buyer_row"] for log in logs])),
        "seller_id": to_id(np.concatenate([log["seller_row"] for log in logs])),
        "price": np.concatenate([log["price"] for log in logs]),
        "quantity": np.concatenate([log["quantity"] for log in logs]),
        "kind": _repeated([log["kind"] for log in logs], counts),
    }, copy=False)  # the columns are new arrays: not copied again into one block


def _repeated(labels: list[str], counts: list[int]) -> Any:
    """A string column that repeats ``labels[i]`` ``counts[i]`` times (``_decoded``)."""
    names = list(dict.fromkeys(labels))
    return _decoded(names, np.repeat(np.array([names.index(label) for label in labels],
                                              dtype=np.int64), counts))


def _decoded(names: list[str], codes: np.ndarray) -> Any:
    """``names[codes]`` as a string column, as pandas would store those strings: with
    Arrow-backed strings, decoded from a dictionary array (pandas converting millions of
    Python strings one by one took seconds)."""
    codes = np.asarray(codes, dtype=np.int64)
    dtype = pd.Series(np.array(names, dtype=str)).dtype
    if not len(codes):
        return pd.array([], dtype=dtype)
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return np.array(names)[codes]
    import pyarrow as pa  # pandas's own storage for these strings

    distinct = list(dict.fromkeys(names))  # a dictionary lists each string once
    codes = np.array([distinct.index(name) for name in names], dtype=np.int64)[codes]
    column = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(distinct))
    return pd.array(column.cast(pa.large_string()), dtype=dtype)


FIRM_YEAR_RECORDS = ("free_allocation", "pre_allocated", "auction_purchased", "bought", "sold",
                     "surrendered", "borrowed", "offsets_used", "bank_end", "shortfall",
                     "penalty", "deducted", "withdrawn", "owed", "misreported",
                     "misreporting_fine", "abatement", "abatement_cost", "investment")


def _firm_years(model: MarketState) -> pd.DataFrame:
    """One row per covered firm and compliance year, years ascending (built in one
    piece: each column gathered from the records of every year at once)."""
    sc = model.scenario
    fy = model.fy
    years = range(sc.start_year, sc.end_year + 1)
    covered = [np.flatnonzero(model.covered(year)) for year in years]
    rows = np.concatenate(covered)
    cols = np.repeat([model.year_index(year) for year in years],
                     [len(r) for r in covered]).astype(np.int64)
    free = fy["free_allocation"][rows, cols]
    verified = fy["verified_emissions"][rows, cols]
    output = fy["output"][rows, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        surplus_ratio = np.where(free > 0, (free - verified) / free, np.nan)
        intensity = np.where(output > 0, fy["direct_emissions"][rows, cols] / output, np.nan)
    frame = {
        "firm_id": model.firms.firm_id[rows],
        "sector": _decoded(model.sector_names, model.firms.sector[rows]),
        "province": _decoded(model.province_names, model.province[rows]),
        "year": np.repeat(np.array(list(years), dtype=np.int64), [len(r) for r in covered]),
        "output": output,
        "intensity": intensity,
        "emissions": fy["emissions"][rows, cols],
        "reported_emissions": fy["reported_emissions"][rows, cols],
        "verified_emissions": verified,
        "indirect_emissions": fy["indirect_emissions"][rows, cols],
        "benchmark": fy["benchmark"][rows, cols],
    }
    for name in FIRM_YEAR_RECORDS:
        frame[name] = fy[name][rows, cols]
    frame["surplus_ratio"] = surplus_ratio
    return pd.DataFrame(frame, copy=False)  # new arrays: not copied again into blocks


def _market_years(model: MarketState, firm_years: pd.DataFrame,
                  daily: pd.DataFrame) -> pd.DataFrame:
    sc = model.scenario
    markets = year_markets(model, range(sc.start_year, sc.end_year + 1))
    equilibrium_years, path = market_equilibrium(model, markets=markets)
    equilibrium = dict(zip(equilibrium_years.tolist(),
                           zip(path.price.tolist(), path.abatement_cost.tolist(), strict=True),
                           strict=True))
    # firm_years holds each year's rows together, years ascending: a year is a slice
    years_of = firm_years["year"].to_numpy()
    rows = []
    for year in model.years.tolist():
        in_year = daily[daily["year"] == year]
        fy = firm_years.iloc[np.searchsorted(years_of, year, side="left"):
                             np.searchsorted(years_of, year, side="right")]
        compliance = year <= sc.end_year
        obligation = (fy["surrendered"] + fy["offsets_used"] + fy["shortfall"]).sum()
        q4 = in_year[in_year["month"] >= 10]["volume"].sum()
        row = {
            "year": year,
            "free_allocation": int(fy["free_allocation"].sum()),
            "auctioned": int(model.fy["auction_purchased"][:, model.year_index(year)].sum()),
            "reserve_in": int(model.reserve.intake.get(year, 0)),
            "reserve_out": int(model.reserve.released.get(year, 0)),
            "reserve_holdings": int(model.reserve_holdings_end.get(year, 0)),
            "verified_emissions": float(fy["verified_emissions"].sum()) if compliance else np.nan,
            "bank_total": int(model.fy["bank_end"][:, model.year_index(year)].sum()),
            # over the days with listed trades: a day without has no close (NaN)
            "mean_price": float(in_year["close"].mean()),
            # the anchor of firms' expectations: the horizon price with banking
            "fundamental_price": float(in_year["fundamental_price"].mean()),
            "vwap": float((in_year["vwap"] * (in_year["volume"] - in_year["block_volume"])).sum()
                          / max((in_year["volume"] - in_year["block_volume"]).sum(), 1)),
            "volume": int(in_year["volume"].sum()),
            "q4_volume_share": float(q4 / in_year["volume"].sum()) if in_year["volume"].sum()
            else np.nan,
            "compliance_rate": float(
                (fy["surrendered"] + fy["offsets_used"]).sum() / obligation
            ) if compliance and obligation > 0 else np.nan,
            "firms_compliant_share": float((fy["shortfall"] == 0).mean())
            if compliance and len(fy) else np.nan,
            "penalties": float(fy["penalty"].sum()),
            "abatement": float(fy["abatement"].sum()),
            "abatement_cost": float(fy["abatement_cost"].sum()),
        }
        # the intertemporal equilibrium with banking and discounting, its least cost,
        # the one-year static price beside it, and the run's allocative efficiency
        row["equilibrium_price"], row["least_cost_abatement_cost"] = equilibrium.get(
            year, (np.nan, np.nan))
        row["static_equilibrium_price"] = (static_equilibrium(model, year, markets)[0]
                                           if compliance else np.nan)
        row["allocative_efficiency"] = (year_efficiency(model, year, markets)[0].efficiency
                                        if compliance else np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


ABATEMENT_COLUMNS = ("firm_id", "option", "intensity_reduction", "cost_per_t", "lead_time_years",
                     "adopted_year", "capital_cost", "operating_cost", "lifetime_years")


def _abatement_options(model: MarketState) -> pd.DataFrame:
    """One row per firm and option, the firm's options cheapest first (column arrays,
    not a row per option: 200,000 options at 50,000 firms)."""
    options = model.firms.options
    rows, ks = np.nonzero(options.valid)  # a firm's options are its first columns
    if not len(rows):
        return pd.DataFrame([], columns=list(ABATEMENT_COLUMNS)).astype({"adopted_year": "Int64"})
    adopted = options.adopted_year[rows, ks]
    # cost_per_t: the levelised cost (agents.abatement.levelised_cost, at the hurdle rate)
    return pd.DataFrame({
        "firm_id": model.firms.firm_id[rows].astype(np.int64),
        "option": [name for row in options.names for name in row],
        "intensity_reduction": options.reduction[rows, ks].astype(float),
        "cost_per_t": options.cost[rows, ks].astype(float),
        "lead_time_years": options.lead_time[rows, ks].astype(np.int64),
        "adopted_year": pd.arrays.IntegerArray(adopted.astype(np.int64), adopted < 0),
        "capital_cost": options.capital_cost[rows, ks].astype(float),
        "operating_cost": options.operating_cost[rows, ks].astype(float),
        "lifetime_years": options.lifetime[rows, ks].astype(np.int64),
    })


def build_tables(model: MarketState,
                 names: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """The results tables of a finished run.

    Args:
        model: The finished run.
        names: Only these tables (of ``TABLES``, in that order; a sweep keeps its
            headline tables and skips building the trades' network); default all.

    Raises:
        ValueError: A name that is no table.
    """
    wanted = TABLES if names is None else tuple(t for t in TABLES if t in set(names))
    unknown = set(names or ()) - set(TABLES)
    if unknown:
        raise ValueError(f"no results table {sorted(unknown)[0]!r}; tables: "
                         f"{', '.join(TABLES)}")
    tables: dict[str, pd.DataFrame] = {}
    cal = model.calendar
    daily = pd.DataFrame({
        "date": cal.date.astype("datetime64[s]"), "year": cal.year, "month": cal.month,
        **{name: model.daily[name] for name in (
            "open", "high", "low", "close", "reference_price", "vwap", "volume", "trades",
            "best_bid", "best_ask", "limit_down", "limit_up", "block_volume", "orders",
            "fundamental_price", "primary_price")},
    })
    tables["market_daily"] = daily
    if {"firm_years", "market_years"} & set(wanted):
        tables["firm_years"] = _firm_years(model)
    if "firms" in wanted:
        firms = model.firms
        tables["firms"] = pd.DataFrame({
            "firm_id": firms.firm_id,
            "sector": _decoded(model.sector_names, firms.sector),
            "entry_year": firms.entry_year,
            "capacity": firms.base_output,
            "unit": _decoded([config.unit for config in model.sector_configs], firms.sector),
            "baseline_intensity": firms.baseline_intensity,
            "indirect_intensity": firms.indirect_intensity,
            "misreports": firms.misreports,
            "annual_emissions_estimate": firms.annual_emissions,
        })
    if "abatement_options" in wanted:
        tables["abatement_options"] = _abatement_options(model)
    if "market_years" in wanted:
        tables["market_years"] = _market_years(model, tables["firm_years"], daily)
    if {"trades", "trade_network"} & set(wanted):
        tables["trades"] = _trade_frame(model)
    if "book_events" in wanted:
        tables["book_events"] = _book_events(model)
    if "trade_network" in wanted:
        tables["trade_network"] = yearly_networks(tables["trades"], model.years.tolist())
    return {name: tables[name] for name in wanted}


def run_record(model: MarketState) -> dict[str, Any]:
    """The contents of ``run.json``: scenario, seed, versions, wall time, ledger check,
    and ``allocative_efficiency``, the run's abatement-weighted allocative efficiency
    (``model.equilibrium.run_efficiency``; null when undefined)."""
    efficiency = run_efficiency(model)
    versions = {"etsim": _version("etsim"), "python": platform.python_version()}
    for package in ("mesa", "numpy", "pandas", "pyarrow", "pydantic", "networkx"):
        versions[package] = _version(package)
    return {
        "scenario": model.scenario.model_dump(mode="json"),
        "scenario_digest": model.scenario.digest(),
        "seed": model.seed_value,
        "versions": versions,
        "wall_time_s": round(model.wall_time, 3),
        "firms": model.n_firms,
        "trading_days": model.calendar.n_days,
        "invariants": model.invariants,
        "allocative_efficiency": None if np.isnan(efficiency) else round(efficiency, 6),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


class ResultsError(ScenarioError):
    """A results folder that cannot be written, or a results file that cannot be read:
    one line naming the folder or file (exit status 2 from the ``etsim`` command)."""


def write_results(tables: dict[str, pd.DataFrame], record: dict[str, Any],
                  out_dir: str | Path, *, replace: bool = False) -> Path:
    """Write the tables (Parquet) and ``run.json`` into ``out_dir``, atomically.

    Everything is written into a staging folder beside ``out_dir``, which is renamed
    into place when complete: ``out_dir`` either does not exist or holds every table.

    Args:
        tables: The results tables to write (all of ``TABLES`` or a subset).
        record: The run record (:func:`run_record`), written as ``run.json``.
        out_dir: The results folder.
        replace: Replace an existing ``out_dir`` (a sweep rewriting a run whose summary
            row was never written); by default results never overwrite anything.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        FileExistsError: ``out_dir`` exists and ``replace`` is False.
        OSError: A write failed (a full disk, ...); the staging folder and the parent
            folders this call made are removed.
    """
    out = Path(out_dir)
    if out.exists() and not replace:
        raise FileExistsError(f"{out} already exists; choose another --out folder")
    made = make_folders(out.parent)
    staging = _staging_path(out)
    try:
        staging.mkdir()  # the umask's permissions, as for any folder the user makes
        for name, frame in tables.items():
            frame.to_parquet(staging / f"{name}.parquet", index=False)
        (staging / "run.json").write_text(json.dumps(record, indent=2, default=str))
        if replace and out.exists():
            shutil.rmtree(out)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(made):  # a failed write leaves nothing behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return out


def make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; the folders made, outermost first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    made = []
    try:
        for path in reversed(missing):
            path.mkdir(exist_ok=True)
            made.append(path)
    except BaseException:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    return made


def check_output_folder(folder: str | Path, name: str | None = None) -> None:
    """Check, before any work, that a results folder can be made and written into.

    ``folder`` may exist (a sweep's, a report's) or not. Its nearest existing folder must
    be a folder (not a plain file) in which a folder can be made: a hidden one is made
    there and removed at once, so a read-only or full file system is found now, not
    after the model has run; and each name still to be made must be one the file system
    takes.

    Args:
        folder: The results folder.
        name: How messages name it, e.g. ``--out PATH`` (default: the path).

    Raises:
        ResultsError: One line naming the folder and what is wrong; nothing is left
            behind.
    """
    folder = Path(folder)
    name = name or shown_name(folder)
    existing = folder
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ResultsError(f"{name}: {shown_name(existing)} is a file, not a folder")
    try:
        longest = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not on this platform
        longest = 255
    for part in folder.relative_to(existing).parts:
        if "\0" in part or len(os.fsencode(part)) > longest:
            raise ResultsError(f"{name}: {shown(part)} is not a possible folder name "
                               f"(at most {longest} bytes, no NUL)")
    probe = _staging_path(existing / "write-check")
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as err:
        raise ResultsError(f"{name}: cannot write in {shown_name(existing)} "
                           f"({_reason(err)})") from None


def cannot_write(name: str, err: OSError, kept: str = "nothing was written") -> ResultsError:
    """The one-line error of a write that failed after the checks (a full disk, ...).

    Args:
        name: The folder or file, as messages name it.
        err: The error.
        kept: What is left of the results.
    """
    return ResultsError(f"{name}: cannot write ({_reason(err)}); {kept}")


def _reason(err: BaseException) -> str:
    """An error's reason for a message: the system's words for an OSError, else its text."""
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    return shown(text or type(err).__name__, 80, quote=False)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one Parquet table; a corrupt or truncated file is a ResultsError naming it."""
    try:
        return pd.read_parquet(path)
    except Exception as err:  # a corrupt file fails in any of pyarrow's many ways
        raise ResultsError(f"{shown_name(path)}: not a readable Parquet table "
                           f"({_reason(err)})") from None


def read_json_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON object (``run.json``, ``sweep.json``, ...); a file that is not one is
    a ResultsError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # ValueError: not UTF-8, not JSON
        raise ResultsError(f"{shown_name(path)}: not a readable JSON file "
                           f"({_reason(err)})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{shown_name(path)}: must hold a JSON object {{...}}, got "
                           f"{shown(data)}")
    return data


def read_results(out_dir: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Read a results directory back: the tables and the run record.

    Args:
        out_dir: A folder :func:`write_results` wrote (``etsim run``'s, or a sweep's
            ``tables/RUN_ID``).

    Returns:
        The tables of ``TABLES`` the folder holds (all of them for ``etsim run``; a sweep
        keeps those its experiment asks for), in that order, and ``run.json``.

    Raises:
        ResultsError: A table or ``run.json`` is missing, corrupt or truncated.
    """
    out = Path(out_dir)
    tables = {name: read_table(out / f"{name}.parquet") for name in TABLES
              if (out / f"{name}.parquet").is_file()}
    record = read_json_file(out / "run.json")
    return tables, record


# --- writing files atomically (results folders, a sweep's files) ----------------------------

# Staging copies are named ".NAME.<random>.tmp" beside their target: never read as
# results, and removable once their writer is gone (remove_temporaries).
TEMP_SUFFIX = ".tmp"


def write_file_atomic(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Write one file atomically and durably: ``target`` is replaced only by a whole file.

    Args:
        target: The file.
        write: Writes the contents to the path it is given (a staging file beside
            ``target``, renamed over it once written and flushed to disk).

    Returns:
        ``target`` as a Path.
    """
    target = Path(target)
    staging = _staging_path(target)
    try:
        write(staging)
        with open(staging, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def write_json_atomic(target: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON with :func:`write_file_atomic`."""
    text = json.dumps(data, indent=2, default=str)
    return write_file_atomic(target, lambda path: path.write_text(text))


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a writer's staging copy (never a result)."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def remove_temporaries(folder: str | Path) -> None:
    """Remove the staging files and folders a killed writer left in ``folder``.

    Only call it while no writer is at work in ``folder`` (a sweep holds its lock).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if is_temporary(entry):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _staging_path(target: Path) -> Path:
    return target.parent / f".{target.name}.{os.urandom(4).hex()}{TEMP_SUFFIX}"


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform can open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
