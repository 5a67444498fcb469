"""``etsim calibrate``: fit behavioural parameters to the observed market's moments.

Simulated method of moments on the sweep machinery. A calibration file names a base
scenario, the behavioural parameters to fit (keys of ``[trading]``, and the speculators'
``financial.activity``; never a policy fact) with bounds, and the search::

    name = "calibrate-history"
    scenario = "china-history"
    seed = 2021
    replicates = 3                 # seeds per candidate; moments averaged over them

    [overrides]                    # fixed for every run, as in an experiment file
    scale = 0.05

    [parameters."trading.base_activity"]
    range = [0.002, 0.05]
    # integer = true               # for whole-number keys (trading.foresight_years)

    [search]
    candidates = 16                # round 1: the scenario's values + a Latin hypercube
    rounds = 2                     # refinement rounds after round 1
    refine_candidates = 8          # candidates per refinement round
    keep = 2                       # best candidates so far refined around
    shrink = 0.5                   # the box around them halves each round
    final_replicates = 10          # seeds of the best candidate for the report

    [fit]
    in_sample = [2021, 2022, 2023]       # years whose moments the objective counts
    out_of_sample = [2024, 2025]         # reported beside them, never fitted

    [weights]                      # weight of each moment family (default: moments.py)
    mean_price = 1.0

    [targets.mean_price]           # optional: replace observed values (a recovery test,
    2025 = 80.0                    # newer data)

Objective of a candidate: the moments (``experiments.moments``) of each replicate run,
averaged over replicates, against the observed targets; the weighted mean of the
families' mean squared relative errors over the in-sample years. Replicate r has the
same seed at every candidate (common random numbers), so candidates differ by their
parameters, not their draws.

Output folder::

    calibration.json      what the calibration is (digest, parameters, bounds, weights)
    experiment.toml       a copy of the calibration file
    rounds/round-N/       a sweep folder per round (runs/, tables/, summary.parquet)
    rounds/final/         the best candidate with final_replicates seeds
    candidates.parquet    one row per candidate: round, parameters, objectives
    candidates.csv        the same as text
    fitted.toml           the fitted values as a scenario snippet
    fitted.json           the same with objectives and the moment error table
    report.html           the validation report (``experiments.calibrate_report``)

Re-running into the same folder resumes: finished runs of every round are skipped (the
rounds' candidates are determined by the seeds and the finished runs' results).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from etsim.experiments.experiment import (
    Experiment,
    ExperimentError,
    Plan,
    _flatten_factors,
    _flatten_overrides,
    _quote,
    base_scenario,
    build_plan,
)
from etsim.experiments.moments import (
    DEFAULT_WEIGHTS,
    MOMENTS,
    moment_errors,
    objective,
    observed_targets,
    replace_targets,
    run_moments,
)
from etsim.experiments.sweep import (
    SweepError,
    assemble_summary,
    check_workers,
    connect,
    disconnect,
    run_plan,
)
from etsim.model.messages import shown_name
from etsim.model.results import (
    cannot_write,
    check_output_folder,
    read_json_file,
    read_table,
    write_file_atomic,
    write_json_atomic,
)
from etsim.model.scenario import (
    FinancialTradersConfig,
    Scenario,
    ScenarioError,
    TradingConfig,
    format_validation_error,
    load_scenario,
    read_toml_file,
)

CALIBRATION_FILE = "calibration.json"
CANDIDATES_FILE = "candidates.parquet"
FITTED_TOML = "fitted.toml"
FITTED_JSON = "fitted.json"
KEPT_TABLES = ["market_daily", "market_years"]
# behavioural keys outside [trading] that may be fitted: how often speculators act
EXTRA_BEHAVIOURAL = {"financial.activity": FinancialTradersConfig.model_fields["activity"]}


def behavioural_parameters() -> dict[str, type]:
    """The keys a calibration may fit and their type (float or int).

    Every number in ``[trading]`` (how firms form orders and expectations, how active
    they are) and ``financial.activity``. Policy facts (allocation, penalty, compliance
    rules, market rules) are never fitted: they are observed, not behaviour.
    """
    keys: dict[str, type] = {}
    for name, info in TradingConfig.model_fields.items():
        if info.annotation in (float, int):
            keys[f"trading.{name}"] = info.annotation
    for key, info in EXTRA_BEHAVIOURAL.items():
        keys[key] = info.annotation
    return keys


# --- the calibration file -------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ParameterSpec(_Strict):
    """One fitted parameter: its bounds."""

    range: tuple[float, float] = Field(strict=False)  # TOML gives a list
    integer: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> ParameterSpec:
        low, high = self.range
        if not low < high:
            raise ValueError(f"range: must be [low, high] with low < high, got [{low:g}, "
                             f"{high:g}]")
        if self.integer and not (float(low).is_integer() and float(high).is_integer()):
            raise ValueError("range: an integer parameter needs whole-number bounds")
        return self


class SearchSpec(_Strict):
    """How candidates are chosen (``[search]``)."""

    method: typing.Literal["smm"] = "smm"
    candidates: int = Field(default=16, ge=1, le=10_000)
    rounds: int = Field(default=2, ge=0, le=50)
    refine_candidates: int = Field(default=8, ge=1, le=10_000)
    keep: int = Field(default=2, ge=1, le=100)
    shrink: float = Field(default=0.5, gt=0, lt=1)
    final_replicates: int = Field(default=10, ge=1, le=1_000)


class FitSpec(_Strict):
    """Which years are fitted and which are only reported (``[fit]``)."""

    in_sample: list[int] = Field(default_factory=lambda: [2021, 2022, 2023], min_length=1)
    out_of_sample: list[int] = Field(default_factory=lambda: [2024, 2025])

    @model_validator(mode="after")
    def _apart(self) -> FitSpec:
        both = sorted(set(self.in_sample) & set(self.out_of_sample))
        if both:
            raise ValueError(f"out_of_sample: {both[0]} is in-sample too (a year is fitted "
                             "or held out, not both)")
        return self


class Calibration(_Strict):
    """A whole calibration file."""

    name: str = Field(min_length=1)
    description: str = ""
    scenario: str = Field(min_length=1)
    seed: int = Field(default=0, ge=0)
    replicates: int = Field(default=3, ge=1, le=1_000)
    overrides: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, ParameterSpec] = Field(min_length=1)
    search: SearchSpec = Field(default_factory=SearchSpec)
    fit: FitSpec = Field(default_factory=FitSpec)
    weights: dict[str, float] = Field(default_factory=dict)
    targets: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys(self) -> Calibration:
        allowed = behavioural_parameters()
        for key, spec in self.parameters.items():
            if key not in allowed:
                near = difflib.get_close_matches(key, list(allowed), n=2)
                guess = f"did you mean {' or '.join(near)}? " if near else ""
                what = ("is not a behavioural parameter (policy stays fixed)"
                        if _is_scenario_key(key) and not key.startswith("trading.")
                        else "is not a parameter")
                raise ValueError(f"parameters.{_quote(key)}: {what}; {guess}allowed: the "
                                 "numbers of [trading], financial.activity")
            if allowed[key] is int and not spec.integer:
                raise ValueError(f"parameters.{_quote(key)}.integer: {key} takes whole "
                                 "numbers: add integer = true")
        for section, table in (("weights", self.weights), ("targets", self.targets)):
            for moment in table:
                if moment not in MOMENTS:
                    raise ValueError(f"{section}.{moment}: not a moment; moments are "
                                     f"{', '.join(MOMENTS)}")
        for moment, weight in self.weights.items():
            if weight < 0:
                raise ValueError(f"weights.{moment}: must be >= 0, got {weight:g}")
        for moment, years in self.targets.items():
            for year in years:
                if not year.isdigit():
                    raise ValueError(f"targets.{moment}.{year}: keys are years like 2023")
        return self

    def weight_table(self) -> dict[str, float]:
        """Weights of every moment family: the file's, else the defaults."""
        return {**DEFAULT_WEIGHTS, **self.weights}

    def target_table(self) -> pd.DataFrame:
        """The observed targets with the file's replacements."""
        targets = observed_targets()
        if self.targets:
            targets = replace_targets(targets, {m: {int(y): v for y, v in years.items()}
                                                for m, years in self.targets.items()})
        return targets

    def digest(self) -> str:
        """A hash of what the calibration computes (less its description)."""
        data = self.model_dump(mode="json", exclude={"description"})
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_scenario_key(key: str) -> bool:
    return key.split(".")[0] in Scenario.model_fields


def _allowed_keys(loc: tuple[Any, ...]) -> list[str] | None:
    models: dict[tuple[Any, ...], Any] = {(): Calibration, ("search",): SearchSpec,
                                          ("fit",): FitSpec}
    if len(loc) == 2 and loc[0] == "parameters":
        return sorted(ParameterSpec.model_fields)
    model = models.get(tuple(loc))
    return sorted(model.model_fields) if model is not None else None


def read_calibration(path: str | Path) -> Calibration:
    """Read and check a calibration file (its schema and parameter keys).

    Raises:
        ExperimentError: The file is missing, unreadable, not TOML, or breaks the schema:
            one line naming the file and the key.
    """
    path = Path(path)
    raw, source = read_toml_file(path, "calibration", ExperimentError)
    raw.setdefault("name", path.stem)
    for section in ("parameters", "overrides", "search", "fit", "weights", "targets"):
        if section in raw and not isinstance(raw[section], dict):
            raise ExperimentError(f"{source}: key '{section}' must be a table")
    if "parameters" in raw:
        raw["parameters"] = _flatten_factors(raw["parameters"])
    if "overrides" in raw:
        raw["overrides"] = _flatten_overrides(raw["overrides"])
    try:
        return Calibration.model_validate(raw)
    except ValidationError as err:
        raise ExperimentError(format_validation_error(
            source, err, _allowed_keys, _quote,
            lambda text: " " not in text and text.split(".")[0] in Calibration.model_fields,
        )) from None


# --- planning ---------------------------------------------------------------------------------


@dataclass
class Setup:
    """A checked calibration: its file, base scenario and the pieces each round needs."""

    calibration: Calibration
    source: Path
    text: str
    base: Scenario
    targets: pd.DataFrame
    weights: dict[str, float]

    @property
    def keys(self) -> list[str]:
        """The fitted parameters' keys, in file order."""
        return list(self.calibration.parameters)

    def experiment(self, label: str, replicates: int) -> Experiment:
        """The experiment a round runs: the parameters as levers, market tables kept."""
        cal = self.calibration
        return Experiment.model_validate({
            "name": f"{cal.name}-{label}", "scenario": cal.scenario, "seed": cal.seed,
            "replicates": replicates, "sampling": "grid", "common_random_numbers": True,
            "overrides": cal.overrides,
            "levers": {key: {"range": list(spec.range), "steps": 2,
                             "integer": spec.integer}
                       for key, spec in cal.parameters.items()},
            "outputs": {"tables": KEPT_TABLES},
        })

    def plan(self, label: str, points: list[dict[str, Any]], replicates: int) -> Plan:
        """The runs of a round's candidates (every run's scenario checked)."""
        design = json.dumps({"label": label, "points": points}, sort_keys=True)
        return build_plan(self.experiment(label, replicates), self.source, points, self.base,
                          design=design)


def prepare(path: str | Path) -> Setup:
    """Read a calibration file and check everything that can be checked before a run.

    Raises:
        ExperimentError: A bad file, parameter key or bound, scenario or override, or
            in-sample years without a weighted target; nothing is written.
    """
    path = Path(path)
    cal = read_calibration(path)
    source = shown_name(path)
    # the base scenario through the experiment machinery (relative paths, overrides)
    base = base_scenario(Experiment.model_validate({
        "name": cal.name, "scenario": cal.scenario, "overrides": cal.overrides}), path)
    for key, spec in cal.parameters.items():
        for bound in spec.range:
            value = int(bound) if spec.integer else float(bound)
            try:
                load_scenario(base, {key: value})
            except ScenarioError as err:
                reason = str(err).split(": ", 1)[-1]
                raise ExperimentError(f"{source}: key 'parameters.{_quote(key)}.range': "
                                      f"bound {value:g} is not allowed ({reason})") from None
    last = base.end_year + base.compliance.deadline_year_offset  # the settlement year
    for part in ("in_sample", "out_of_sample"):
        outside = [y for y in getattr(cal.fit, part) if not base.start_year <= y <= last]
        if outside:
            raise ExperimentError(f"{source}: key 'fit.{part}': {outside[0]} is not a year "
                                  f"of the scenario's runs ({base.start_year}-{last})")
    weights = cal.weight_table()
    targets = cal.target_table()
    counted = targets[targets["year"].isin(cal.fit.in_sample)]
    if not any(weights.get(m, 0) > 0 for m in counted["moment"]):
        years = ", ".join(map(str, cal.fit.in_sample))
        observed = ", ".join(map(str, sorted(targets["year"].unique())))
        raise ExperimentError(f"{source}: key 'fit.in_sample': no weighted observed moment "
                              f"in {years}; observed years are {observed}")
    text = path.read_text(encoding="utf-8")
    return Setup(calibration=cal, source=path, text=text, base=base, targets=targets,
                 weights=weights)


def _baseline_point(setup: Setup) -> dict[str, Any]:
    """The scenario's own values of the parameters, clipped into the bounds."""
    data = setup.base.model_dump()
    point = {}
    for key, spec in setup.calibration.parameters.items():
        section, name = key.split(".", 1)
        value = float(data[section][name])
        value = min(max(value, spec.range[0]), spec.range[1])
        point[key] = int(round(value)) if spec.integer else value
    return point


def _latin_hypercube(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """n points in [0, 1)^dims, one in each of n equal strata per dimension."""
    unit = np.empty((n, dims))
    for column in range(dims):
        unit[:, column] = (rng.permutation(n) + rng.random(n)) / n
    return unit


def _sampling_bounds(setup: Setup) -> tuple[np.ndarray, np.ndarray]:
    """Each parameter's bounds for sampling; a whole-number one is widened by half a
    unit each side, so that rounding gives every whole number the same chance."""
    specs = [setup.calibration.parameters[k] for k in setup.keys]
    pad = np.array([0.5 - 1e-9 if spec.integer else 0.0 for spec in specs])
    return (np.array([spec.range[0] for spec in specs]) - pad,
            np.array([spec.range[1] for spec in specs]) + pad)


def _to_point(setup: Setup, unit_or_values: np.ndarray) -> dict[str, Any]:
    point = {}
    for key, x in zip(setup.keys, unit_or_values, strict=True):
        spec = setup.calibration.parameters[key]
        if spec.integer:
            point[key] = int(min(max(round(x), spec.range[0]), spec.range[1]))
        else:
            point[key] = float(f"{min(max(float(x), spec.range[0]), spec.range[1]):.6g}")
    return point


def first_round_points(setup: Setup) -> list[dict[str, Any]]:
    """Round 1: the scenario's current values, then a Latin hypercube over the bounds."""
    cal = setup.calibration
    rng = np.random.default_rng(np.random.SeedSequence(cal.seed, spawn_key=(2, 1)))
    low, high = _sampling_bounds(setup)
    unit = _latin_hypercube(rng, max(cal.search.candidates - 1, 0), len(setup.keys))
    points = [_baseline_point(setup)]
    points += [_to_point(setup, low + u * (high - low)) for u in unit]
    return _unique(points, [])


def refine_points(setup: Setup, number: int, ranked: list[dict[str, Any]],
                  seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A refinement round's candidates: Latin hypercubes in boxes around the best so far.

    Args:
        setup: The calibration.
        number: The round (2, 3, ...): the box's half-width is shrink^(number - 1) of
            the bounds' width.
        ranked: Candidates so far, best first.
        seen: Every candidate so far (not proposed again).
    """
    search = setup.calibration.search
    centres = ranked[:search.keep]
    if not centres:
        return []
    rng = np.random.default_rng(np.random.SeedSequence(setup.calibration.seed,
                                                       spawn_key=(2, number)))
    low, high = _sampling_bounds(setup)
    half = search.shrink ** (number - 1) * (high - low) / 2
    points = []
    shares = [search.refine_candidates // len(centres)] * len(centres)
    for i in range(search.refine_candidates % len(centres)):
        shares[i] += 1
    for centre, n in zip(centres, shares, strict=True):
        if n == 0:
            continue
        middle = np.array([float(centre[k]) for k in setup.keys])
        box_low = np.maximum(middle - half, low)
        box_high = np.minimum(middle + half, high)
        for u in _latin_hypercube(rng, n, len(setup.keys)):
            points.append(_to_point(setup, box_low + u * (box_high - box_low)))
    return _unique(points, seen)


def _unique(points: list[dict[str, Any]], seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    known = {json.dumps(p, sort_keys=True) for p in seen}
    result = []
    for point in points:
        text = json.dumps(point, sort_keys=True)
        if text not in known:
            known.add(text)
            result.append(point)
    return result


# --- one round -------------------------------------------------------------------------------


@dataclass
class RoundResult:
    """A finished round: its candidates' objectives and every run's moments."""

    label: str
    folder: Path
    candidates: pd.DataFrame
    moments: pd.DataFrame
    computed: int = 0
    skipped: int = 0
    failed: int = 0


def round_moments(folder: Path, plan: Plan) -> pd.DataFrame:
    """The yearly moments of a round's finished runs (columns point, replicate, moment,
    year, value), from the market tables each run kept."""
    summary = assemble_summary(folder)
    frames = []
    scale = float(plan.runs[0].scenario["scale"]) if plan.runs else 1.0
    ok = summary[summary["status"] == "ok"] if len(summary) else summary
    for row in ok.itertuples():
        daily = read_table(folder / "tables" / str(row.run_id) / "market_daily.parquet")
        frame = run_moments({"market_daily": daily}, scale)
        frame.insert(0, "replicate", int(row.replicate))
        frame.insert(0, "point", int(row.point))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["point", "replicate", "moment", "year", "value"])
    return pd.concat(frames, ignore_index=True)


def score_points(setup: Setup, points: list[dict[str, Any]],
                 moments: pd.DataFrame) -> pd.DataFrame:
    """Each candidate's objective in and out of sample from its runs' moments.

    Returns:
        One row per point: candidate, the parameters, replicates_ok, objective
        (in-sample; NaN if no run finished), objective_out_of_sample.
    """
    fit = setup.calibration.fit
    rows = []
    for number, point in enumerate(points):
        runs = moments[moments["point"] == number]
        row: dict[str, Any] = {"candidate": number, **point,
                               "replicates_ok": int(runs["replicate"].nunique())}
        if len(runs):
            errors = moment_errors(setup.targets, runs)
            row["objective"] = objective(errors, setup.weights, fit.in_sample)
            row["objective_out_of_sample"] = objective(errors, setup.weights,
                                                       fit.out_of_sample)
        else:
            row["objective"] = row["objective_out_of_sample"] = math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def run_round(setup: Setup, label: str, points: list[dict[str, Any]], out: Path,
              replicates: int, dask: tuple[Any, Any] | None, workers: int | None = None,
              progress: bool = False) -> RoundResult:
    """Run one round's candidates on the sweep machinery and score them.

    Args:
        setup: The calibration.
        label: The round's name (``round-1``, ``final``): its folder under ``rounds/``.
        points: The candidates.
        out: The calibration folder.
        replicates: Seeds per candidate.
        dask: An open (client, cluster), or None to run in this process.
        workers: Passed to the sweep when ``dask`` is None (1: in this process).
        progress: Show the sweep's progress bar.
    """
    plan = setup.plan(label, points, replicates)
    folder = out / "rounds" / label
    result = run_plan(plan, folder, setup.text, workers=1 if dask is None else workers,
                      progress=progress, dask=dask)
    moments = round_moments(folder, plan)
    scored = score_points(setup, points, moments)
    scored.insert(0, "round", label)
    return RoundResult(label=label, folder=folder, candidates=scored, moments=moments,
                       computed=result.computed, skipped=result.skipped,
                       failed=result.failed)


# --- the calibration -----------------------------------------------------------------------


@dataclass
class CalibrationResult:
    """What a calibration did and found."""

    out_dir: Path
    best: dict[str, Any]
    objective: float
    objective_out_of_sample: float
    rounds: list[RoundResult] = field(default_factory=list)
    wall_time_s: float = 0.0

    @property
    def computed(self) -> int:
        """Runs finished by this call."""
        return sum(r.computed for r in self.rounds)

    @property
    def skipped(self) -> int:
        """Runs already finished before this call."""
        return sum(r.skipped for r in self.rounds)

    @property
    def failed(self) -> int:
        """Runs that raised in this call."""
        return sum(r.failed for r in self.rounds)

    def describe(self) -> str:
        """A few lines for the command line."""
        values = ", ".join(f"{k} = {v:.6g}" for k, v in self.best.items())
        return (f"best: {values}\nobjective in sample {self.objective:.4g}, out of sample "
                f"{self.objective_out_of_sample:.4g}\n"
                f"{self.computed + self.skipped + self.failed} runs: {self.computed} computed,"
                f" {self.skipped} already done, {self.failed} failed in "
                f"{self.wall_time_s:.1f} s; fitted values, candidates and report.html in "
                f"{self.out_dir}")


def default_out_dir(path: str | Path) -> Path:
    """The default calibration folder: ``calibrations/NAME`` (re-running resumes)."""
    return Path("calibrations") / read_calibration(path).name


def _check_folder(setup: Setup, out: Path, resume: bool) -> None:
    if not os.path.lexists(out):
        if resume:
            raise SweepError(f"--resume: {shown_name(out)} does not exist (nothing to resume)")
        check_output_folder(out)
        return
    if not out.is_dir():
        raise SweepError(f"{shown_name(out)}: exists and is not a folder")
    check_output_folder(out)
    meta_path = out / CALIBRATION_FILE
    if meta_path.is_file():
        meta = read_json_file(meta_path)
        if meta.get("digest") != setup.calibration.digest():
            raise SweepError(f"{shown_name(out)}: holds another calibration "
                             f"({shown_name(meta.get('source'))}); choose another --out")
    elif any(not e.name.startswith(".") for e in out.iterdir()):
        raise SweepError(f"{shown_name(out)}: exists and is not a calibration folder; "
                         "choose another --out")


def _meta(setup: Setup) -> dict[str, Any]:
    cal = setup.calibration
    return {"calibration": cal.name, "description": cal.description,
            "source": str(setup.source), "digest": cal.digest(), "scenario": cal.scenario,
            "seed": cal.seed, "replicates": cal.replicates,
            "parameters": {k: {"range": list(v.range), "integer": v.integer}
                           for k, v in cal.parameters.items()},
            "search": cal.search.model_dump(), "fit": cal.fit.model_dump(),
            "weights": setup.weights}


def _ranked(table: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    finite = table[np.isfinite(table["objective"].to_numpy(dtype=float))]
    finite = finite.sort_values("objective", kind="stable")
    return [{k: _plain(row[k]) for k in keys} for _, row in finite.iterrows()]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def run_calibration(path: str | Path, out_dir: str | Path, workers: int | None = None,
                    scheduler: str | None = None, resume: bool = False,
                    progress: bool = False, dask: tuple[Any, Any] | None = None
                    ) -> CalibrationResult:
    """Fit a calibration file's parameters; write the fitted values, candidates and report.

    Everything is checked before anything runs or is written: the file, the parameter
    keys and bounds, every round-1 run's scenario, the folder.

    Args:
        path: The calibration TOML file.
        out_dir: The calibration folder; created if missing, resumed if it holds the
            same calibration.
        workers: 1 runs in this process; N starts a LocalCluster of N workers; None one
            per core.
        scheduler: An existing Dask scheduler (``tcp://HOST:PORT`` or scheduler file).
        resume: Require ``out_dir`` to exist.
        progress: Show each round's progress bar and a line per round on stderr.
        dask: An open (client, cluster) to use instead of connecting (left open).

    Returns:
        The best candidate and its objectives.

    Raises:
        ExperimentError: A bad calibration file (exit status 2).
        SweepError: Bad arguments or an output folder that does not fit (exit status 2).
    """
    started = time.perf_counter()
    check_workers(workers, scheduler)
    setup = prepare(path)
    out = Path(out_dir)
    _check_folder(setup, out, resume)
    first = first_round_points(setup)
    setup.plan("round-1", first, setup.calibration.replicates)  # every run checked now
    own = dask is None and (workers != 1 or scheduler is not None)
    if own:
        dask = connect(workers, scheduler)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_file_atomic(out / "experiment.toml",
                          lambda p: p.write_text(setup.text, encoding="utf-8"))
        write_json_atomic(out / CALIBRATION_FILE, _meta(setup))
        result = _search(setup, out, first, dask, progress, started)
    except OSError as err:
        raise cannot_write(shown_name(out), err, "finished runs are kept, and running the "
                           "same command again resumes") from None
    finally:
        if own and dask is not None:
            disconnect(*dask)
    return result


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr)


def _search(setup: Setup, out: Path, first: list[dict[str, Any]],
            dask: tuple[Any, Any] | None, progress: bool, started: float) -> CalibrationResult:
    cal = setup.calibration
    rounds: list[RoundResult] = []
    seen: list[dict[str, Any]] = []
    points = first
    for number in range(1, cal.search.rounds + 2):
        if not points:
            break
        label = f"round-{number}"
        done = run_round(setup, label, points, out, cal.replicates, dask, progress=progress)
        rounds.append(done)
        seen += points
        table = pd.concat([r.candidates for r in rounds], ignore_index=True)
        ranked = _ranked(table, setup.keys)
        best = table["objective"].min()
        _say(progress, f"{label}: {len(points)} candidates, best objective so far "
             f"{best:.4g}")
        if number <= cal.search.rounds:
            points = refine_points(setup, number + 1, ranked, seen)
    candidates = pd.concat([r.candidates for r in rounds], ignore_index=True)
    ranked = _ranked(candidates, setup.keys)
    if not ranked:
        raise SweepError(f"{shown_name(out)}: no candidate has a finished run; see the "
                         "rounds' errors/ folders")
    best = ranked[0]
    final = run_round(setup, "final", [best], out, cal.search.final_replicates, dask,
                      progress=progress)
    rounds.append(final)
    from etsim.experiments.calibrate_report import write_outputs

    row = final.candidates.iloc[0]
    result = CalibrationResult(out_dir=out, best=best, objective=float(row["objective"]),
                               objective_out_of_sample=float(row["objective_out_of_sample"]),
                               rounds=rounds)
    write_outputs(setup, out, candidates, final, result)
    result.wall_time_s = time.perf_counter() - started
    return result


def calibration_meta(out: Path) -> dict[str, Any]:
    """The ``calibration.json`` of a folder ({} if none)."""
    path = out / CALIBRATION_FILE
    return read_json_file(path) if path.is_file() else {}


def fitted_toml(setup: Setup, best: dict[str, Any], objective_in: float,
                objective_out: float) -> str:
    """The fitted values as a TOML snippet to paste into a scenario."""
    cal = setup.calibration
    lines = [f"# Fitted by etsim calibrate ({cal.name}) on {cal.scenario}: simulated method",
             f"# of moments, in-sample years {', '.join(map(str, cal.fit.in_sample))}, "
             f"objective {objective_in:.4g};",
             f"# out of sample ({', '.join(map(str, cal.fit.out_of_sample)) or 'none'}): "
             f"{objective_out:.4g}. Over {cal.search.final_replicates} seeds."]
    sections: dict[str, list[str]] = {}
    for key, value in best.items():
        section, name = key.split(".", 1)
        text = str(int(value)) if cal.parameters[key].integer else f"{float(value):.6g}"
        if "." not in text and "e" not in text and not cal.parameters[key].integer:
            text += ".0"
        sections.setdefault(section, []).append(f"{name} = {text}")
    for section, entries in sections.items():
        lines += ["", f"[{section}]", *entries]
    return "\n".join(lines) + "\n"
