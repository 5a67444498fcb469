"""Experiment files: schema, sampling and the list of runs of a sweep.

An experiment is a TOML file naming a base scenario, the levers (policy choices) and
uncertainties (states of the world) to vary, how to sample them, the number of
replicates and which per-run tables to keep::

    name = "tightening"
    scenario = "china-2024"          # a shipped name or a path (relative to this file)
    seed = 2024                      # every sample and every run's seed derive from it
    replicates = 3                   # runs per parameter point, each with its own seed
    sampling = "grid"                # grid | random | latin_hypercube | sobol
    # samples = 32                   # parameter points for random, latin_hypercube, sobol
    common_random_numbers = true     # replicate r has the same seed at every point

    [overrides]                      # fixed for every run (scenario override keys)
    scale = 0.1

    [levers."sectors.*.allocation.tightening"]
    name = "tightening"              # column name in the summary (default: the key)
    values = [0.0, 0.01, 0.02, 0.03]
    # range = [0.0, 0.05]            # instead of values; grid needs steps = N
    # also = ["sectors.*.allocation.cap_decline"]   # keys that take the same value

    [uncertainties."sectors.*.demand_growth"]
    range = [-0.01, 0.03]
    steps = 3

    [outputs]
    tables = ["market_years", "market_daily"]   # or ["all"]; run summaries always kept

Factor keys are the scenario's dotted override keys (``model.scenario.apply_overrides``:
``*`` stands for every entry, a number for a list entry). ``"penalty.multiple" = [5, 7]``
is short for ``values = [5, 7]``, and unquoted dotted keys (``[levers.penalty]
multiple = [5, 7]``) work too.

Sampling is deterministic: the same file gives the same parameter points, run ids and
seeds on any machine, whatever the number of workers. A run's seed comes from the
experiment's seed and the run's (point, replicate) index through
``numpy.random.SeedSequence``; its id is a hash of its point, parameters and replicate.
Every run's scenario is validated before anything runs, so a bad lever key or value
fails at once with one line naming the file and the key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from etsim.model.messages import shown, shown_name
from etsim.model.results import TABLES
from etsim.model.scenario import (
    Scenario,
    ScenarioError,
    format_validation_error,
    load_scenario,
    read_toml_file,
)

SAMPLING_METHODS = ("grid", "random", "latin_hypercube", "sobol")
# keys that make a table a factor spec rather than a namespace of dotted keys
SPEC_KEYS = frozenset({"name", "values", "labels", "range", "steps", "integer", "also"})
# summary columns that are not parameters (a factor's name may not take one of these)
RUN_COLUMNS = ("run_id", "point", "replicate", "seed", "status", "error", "wall_time_s")
HEADLINE_COLUMNS = (
    "mean_price", "emissions", "abatement", "abatement_cost", "compliance_rate",
    "price_volatility", "penalties", "efficiency", "volume", "bank_end",
)
HEADLINE_PREFIXES = ("mean_price_", "output_")
MAX_RUNS = 1_000_000


class ExperimentError(ScenarioError):
    """An experiment that cannot be used: one line naming the file, the key and the rule.

    A subclass of ScenarioError, so the ``etsim`` command prints it and exits with 2.
    """


class _Strict(BaseModel):
    # strict: "5" is not a number and "yes" is not a boolean in an experiment file;
    # allow_inf_nan: a range is finite
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class FactorSpec(_Strict):
    """One lever or uncertainty: a list of values or a numeric range."""

    name: str | None = Field(default=None, min_length=1)
    values: list[Any] | None = Field(default=None, min_length=1)
    labels: list[str] | None = None
    range: tuple[float, float] | None = Field(default=None, strict=False)  # TOML gives a list
    steps: int | None = Field(default=None, ge=2, le=10_000)
    integer: bool = False
    also: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> FactorSpec:
        if (self.values is None) == (self.range is None):
            raise ValueError("values: give either values = [...] or range = [low, high]")
        if self.values is not None:
            if self.steps is not None or self.integer:
                raise ValueError("steps: steps and integer go with range, not with values")
            if self.labels is not None:
                if len(self.labels) != len(self.values):
                    raise ValueError("labels: needs one label for each of the values")
                if len(set(self.labels)) != len(self.labels):
                    raise ValueError("labels: must all differ")
            elif any(isinstance(v, dict | list) for v in self.values):
                raise ValueError("labels: values that are tables or lists need labels = [...]")
            else:
                kinds = {_scalar_kind(v) for v in self.values}
                if len(kinds) > 1:
                    raise ValueError("values: must be all numbers, all text or all booleans")
        else:
            assert self.range is not None
            low, high = self.range
            if self.labels is not None:
                raise ValueError("labels: labels go with values, not with range")
            if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
                raise ValueError("range: must be [low, high] with low < high")
            if self.integer and not (float(low).is_integer() and float(high).is_integer()):
                raise ValueError("range: an integer range needs whole-number bounds")
        for key in self.also:
            if not key or not all(key.replace("__", ".").split(".")):
                raise ValueError("also: each entry must be a dotted key like penalty.multiple")
        return self


def _scalar_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


class Outputs(_Strict):
    """Per-run tables to keep beside the summary (``[outputs]``)."""

    tables: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> Outputs:
        for name in self.tables:
            if name != "all" and name not in TABLES:
                raise ValueError(f"tables: must be names from {', '.join(TABLES)}, or \"all\"")
        return self

    def resolved(self) -> tuple[str, ...]:
        """The table names to keep, ``all`` expanded."""
        if "all" in self.tables:
            return TABLES
        return tuple(name for name in TABLES if name in self.tables)


class Experiment(_Strict):
    """A whole experiment file (after dotted keys in levers and overrides are flattened)."""

    name: str = Field(min_length=1)
    description: str = ""
    scenario: str = Field(min_length=1)
    seed: int = Field(default=0, ge=0)
    replicates: int = Field(default=1, ge=1, le=100_000)
    sampling: Literal["grid", "random", "latin_hypercube", "sobol"] = "grid"
    samples: int | None = Field(default=None, ge=1, le=MAX_RUNS)
    common_random_numbers: bool = False
    overrides: dict[str, Any] = Field(default_factory=dict)
    levers: dict[str, FactorSpec] = Field(default_factory=dict)
    uncertainties: dict[str, FactorSpec] = Field(default_factory=dict)
    outputs: Outputs = Field(default_factory=Outputs)

    @model_validator(mode="after")
    def _design(self) -> Experiment:
        specs = {**self.levers, **self.uncertainties}
        for key in self.levers:
            if key in self.uncertainties:
                raise ValueError(f"uncertainties.{_quote(key)}: is a lever too (vary a key in "
                                 "one place)")
        if self.sampling == "grid":
            if self.samples is not None:
                raise ValueError("samples: grid sampling takes every combination; "
                                 "samples goes with random, latin_hypercube or sobol")
            for key, spec in specs.items():
                if spec.range is not None and spec.steps is None:
                    raise ValueError(f"{_where(self, key)}.steps: grid sampling needs steps = N "
                                     "with a range (or give values = [...])")
        else:
            if self.samples is None:
                raise ValueError(f"samples: {self.sampling} sampling needs samples = N "
                                 "(the number of parameter points)")
            for key, spec in specs.items():
                if spec.steps is not None:
                    raise ValueError(f"{_where(self, key)}.steps: steps goes with grid sampling "
                                     f"only, not {self.sampling}")
        if self.sampling == "sobol":
            if not specs:
                raise ValueError("sampling: sobol sampling needs at least one factor")
            assert self.samples is not None
            if self.samples & (self.samples - 1):
                raise ValueError("samples: sobol sampling needs a power of 2 (e.g. 16, 32, 64)")
            for key, spec in specs.items():
                if spec.range is None:
                    raise ValueError(f"{_where(self, key)}.values: sobol sampling needs a "
                                     "range = [low, high] for every factor")
        columns: set[str] = set()
        for section, table in (("levers", self.levers), ("uncertainties", self.uncertainties)):
            for key, spec in table.items():
                column = spec.name or key
                where = f"{section}.{_quote(key)}.name"
                if column in columns:
                    raise ValueError(f"{where}: two factors share the column name '{column}'")
                if column in RUN_COLUMNS or column in HEADLINE_COLUMNS or column.startswith(
                        HEADLINE_PREFIXES):
                    reserved = ", ".join([*RUN_COLUMNS, *HEADLINE_COLUMNS]) + (
                        " and names starting with " + " or ".join(HEADLINE_PREFIXES))
                    raise ValueError(f"{where}: '{column}' is taken by the summary ({reserved}); "
                                     "give the factor another name")
                columns.add(column)
        return self


def _where(experiment: Experiment, key: str) -> str:
    section = "levers" if key in experiment.levers else "uncertainties"
    return f"{section}.{_quote(key)}"


# --- reading ---------------------------------------------------------------------------


def _quote(part: Any) -> str:
    text = str(part)
    return f'"{text}"' if any(c in text for c in ".*") else text


def _flatten_factors(table: Any, prefix: str = "") -> Any:
    """Turn nested tables of factors into {dotted key: spec}; lists are value lists."""
    if not isinstance(table, dict):
        return table
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, list):
            flat[dotted] = {"values": value}
        elif isinstance(value, dict) and not (SPEC_KEYS & value.keys()) and value and all(
                isinstance(v, dict | list) for v in value.values()):
            flat.update(_flatten_factors(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _flatten_overrides(table: Any, prefix: str = "") -> Any:
    """Turn nested override tables into {dotted key: value}; year tables stay values."""
    if not isinstance(table, dict):
        return table
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        is_year_table = isinstance(value, dict) and all(str(k).isdigit() for k in value)
        if isinstance(value, dict) and value and not is_year_table:
            flat.update(_flatten_overrides(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _names_key(text: str) -> bool:
    """Whether a cross-key message's prefix is a key path (levers may be quoted keys)."""
    return " " not in text and text.split(".")[0] in Experiment.model_fields


def _allowed_keys(loc: tuple[Any, ...]) -> list[str] | None:
    if not loc:
        return sorted(Experiment.model_fields)
    if loc[0] in ("levers", "uncertainties") and len(loc) == 2:
        return sorted(FactorSpec.model_fields)
    if loc == ("outputs",):
        return sorted(Outputs.model_fields)
    return None


def read_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file (its schema only; see ``plan_runs``).

    Args:
        path: The experiment TOML file.

    Returns:
        The experiment; ``name`` defaults to the file's stem.

    Raises:
        ExperimentError: The file is missing, unreadable, not UTF-8, not TOML, or breaks
            the schema.
    """
    path = Path(path)
    raw, source = read_toml_file(path, "experiment", ExperimentError)
    raw.setdefault("name", path.stem)
    for section in ("levers", "uncertainties", "overrides", "outputs"):
        if section in raw and not isinstance(raw[section], dict):
            raise ExperimentError(f"{source}: key '{section}' must be a table")
    for section in ("levers", "uncertainties"):
        if section in raw:
            raw[section] = _flatten_factors(raw[section])
    if "overrides" in raw:
        raw["overrides"] = _flatten_overrides(raw["overrides"])
    try:
        return Experiment.model_validate(raw)
    except ValidationError as err:
        raise ExperimentError(
            format_validation_error(source, err, _allowed_keys, _quote, _names_key)
        ) from None


# --- factors and sampling ----------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    """A lever or uncertainty as the sweep uses it.

    Attributes:
        key: The dotted override key (the table key in the file).
        column: Its column in the summary table.
        kind: ``lever`` or ``uncertainty``.
        keys: Every override key that takes its value (``key`` and ``also``).
        values: The listed values, or None for a range.
        labels: Labels shown in the summary instead of the values, or None.
        low: Lower bound of a range.
        high: Upper bound of a range.
        integer: Whether a range takes whole numbers.
        steps: Grid points across a range.
    """

    key: str
    column: str
    kind: str
    keys: tuple[str, ...]
    values: tuple[Any, ...] | None = None
    labels: tuple[str, ...] | None = None
    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    steps: int | None = None

    @property
    def categorical(self) -> bool:
        """Whether its values are listed (not sampled from a range)."""
        return self.values is not None

    def grid(self) -> list[Any]:
        """The factor's values on a grid: the list, or ``steps`` points across the range."""
        if self.values is not None:
            return list(self.values)
        assert self.steps is not None
        points = np.linspace(self.low, self.high, self.steps)
        if self.integer:
            return sorted({int(round(p)) for p in points})
        return [_tidy(p) for p in points]

    def from_unit(self, u: float) -> Any:
        """The value at quantile ``u`` in [0, 1) of the factor's (uniform) distribution."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.integer:
            low, high = int(self.low), int(self.high)
            return min(low + int(u * (high - low + 1)), high)
        return float(self.low + u * (self.high - self.low))

    def column_value(self, value: Any) -> Any:
        """What the summary shows for a value: its label if the factor has labels."""
        if self.labels is not None and self.values is not None:
            return self.labels[self.values.index(value)]
        return value


def _tidy(value: float) -> float:
    # linspace leaves 0.030000000000000002; 12 significant digits read as typed
    return float(f"{float(value):.12g}")


def factors(experiment: Experiment) -> list[Factor]:
    """The experiment's levers, then its uncertainties, in file order."""
    result = []
    for kind, specs in (("lever", experiment.levers), ("uncertainty", experiment.uncertainties)):
        for key, spec in specs.items():
            low, high = spec.range if spec.range is not None else (0.0, 0.0)
            values = spec.values
            if values is not None and all(_scalar_kind(v) == "number" for v in values) and any(
                    isinstance(v, float) for v in values):
                values = [float(v) for v in values]  # one column type in the summary
            result.append(Factor(
                key=key, column=spec.name or key, kind=kind,
                keys=(key, *spec.also),
                values=tuple(values) if values is not None else None,
                labels=tuple(spec.labels) if spec.labels is not None else None,
                low=low, high=high, integer=spec.integer, steps=spec.steps,
            ))
    return result


def _sampling_seed(experiment: Experiment) -> np.random.SeedSequence:
    return np.random.SeedSequence(experiment.seed, spawn_key=(0,))


def sample_points(experiment: Experiment) -> list[dict[str, Any]]:
    """The parameter points of the experiment, deterministic from its seed.

    Args:
        experiment: A checked experiment.

    Returns:
        One dict per point mapping each factor's key to its value (not its label);
        a single empty point when there are no factors.

    Raises:
        ExperimentError: Sobol sampling without SALib installed, or too many runs.
    """
    try:
        return _sample(experiment)
    except ValueError as err:
        raise ExperimentError(f"{shown_name(experiment.name)}: {err}") from None


def _sample(experiment: Experiment) -> list[dict[str, Any]]:
    fs = factors(experiment)
    n = experiment.samples or 0
    if experiment.sampling == "grid":
        size = math.prod(len(f.grid()) for f in fs)
        if size * experiment.replicates > MAX_RUNS:
            raise ValueError(f"the grid gives {size:,} points x {experiment.replicates} "
                             f"replicates, more than {MAX_RUNS:,} runs")
        return [dict(zip([f.key for f in fs], combo, strict=True))
                for combo in itertools.product(*(f.grid() for f in fs))]
    if n * experiment.replicates > MAX_RUNS:
        raise ValueError(f"samples x replicates gives more than {MAX_RUNS:,} runs")
    rng = np.random.default_rng(_sampling_seed(experiment))
    if experiment.sampling == "random":
        unit = rng.random((n, len(fs)))
    elif experiment.sampling == "latin_hypercube":
        # one draw in each of n equal strata per factor, strata shuffled per factor
        unit = np.empty((n, len(fs)))
        for column in range(len(fs)):
            unit[:, column] = (rng.permutation(n) + rng.random(n)) / n
    else:
        return _sobol_points(experiment, fs)
    return [{f.key: f.from_unit(float(u)) for f, u in zip(fs, row, strict=True)} for row in unit]


def sobol_problem(fs: list[Factor]) -> dict[str, Any]:
    """The SALib problem definition of range factors."""
    return {"num_vars": len(fs), "names": [f.column for f in fs],
            "bounds": [[f.low, f.high + (1 if f.integer else 0)] for f in fs]}


def _sobol_points(experiment: Experiment, fs: list[Factor]) -> list[dict[str, Any]]:
    try:
        from SALib.sample import sobol
    except ImportError:
        raise ValueError("sampling = \"sobol\" needs SALib (pip install SALib)") from None
    seed = int(_sampling_seed(experiment).generate_state(1)[0])
    assert experiment.samples is not None
    matrix = sobol.sample(sobol_problem(fs), experiment.samples, calc_second_order=False,
                          seed=seed)
    points = []
    for row in matrix:
        point = {}
        for f, x in zip(fs, row, strict=True):
            point[f.key] = min(int(math.floor(x)), int(f.high)) if f.integer else float(x)
        points.append(point)
    return points


# --- runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, picklable and independent of files on the worker.

    Attributes:
        run_id: Stable id: a hash of the point index, the parameters and the replicate.
        index: Position in the experiment's list of runs (point-major).
        point: Index of the parameter point.
        replicate: Replicate number at the point, from 0.
        seed: The model's seed, from the experiment seed via SeedSequence.
        parameters: Summary column of each factor to its value (or label).
        overrides: The scenario overrides of the run (fixed ones and factor values).
        scenario: The run's resolved scenario (``Scenario.model_dump(mode="json")``).
        tables: Names of the results tables to keep for this run.
        end_year: The scenario's last compliance year.
    """

    run_id: str
    index: int
    point: int
    replicate: int
    seed: int
    parameters: dict[str, Any]
    overrides: dict[str, Any]
    scenario: dict[str, Any]
    tables: tuple[str, ...]
    end_year: int


@dataclass
class Plan:
    """An experiment ready to run: its factors, points and runs, all checked."""

    experiment: Experiment
    source: Path
    factors: list[Factor]
    points: list[dict[str, Any]]
    runs: list[RunSpec] = field(default_factory=list)
    # points given by the caller (a calibration round), not sampled from the file: a
    # text that identifies them, part of the digest; empty for a sampled experiment
    design: str = ""

    def digest(self) -> str:
        """A hash of what the runs compute (the experiment less its replicate count)."""
        data = self.experiment.model_dump(mode="json", exclude={"replicates", "description"})
        if self.design:
            data["design"] = self.design
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_seed(experiment: Experiment, point: int, replicate: int) -> int:
    """The seed of a run, from the experiment's seed and the run's (point, replicate).

    With ``common_random_numbers`` every point's replicate r shares one seed, so
    differences between points are not drawn from different random streams.
    """
    key = (1, replicate) if experiment.common_random_numbers else (1, point, replicate)
    return int(np.random.SeedSequence(experiment.seed, spawn_key=key).generate_state(1)[0])


def run_id(point: int, parameters: dict[str, Any], replicate: int) -> str:
    """The stable id of a run: a hash of its point index, parameter values and replicate."""
    text = json.dumps({"point": point, "parameters": parameters, "replicate": replicate},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _scenario_reference(experiment: Experiment, folder: Path) -> str | Path:
    name = experiment.scenario
    if name.endswith(".toml") or "/" in name or "\\" in name:
        path = Path(name)
        return path if path.is_absolute() else folder / path
    return name


def _in_scenario(err: ScenarioError, base: Any) -> str:
    # the scenario's message starts with its source (the scenario's name) as a file name
    text = str(err)
    name = shown_name(base.name)
    return f"scenario {name}: {text.removeprefix(f'{name}: ')}"


def _describe(point: dict[str, Any], fs: list[Factor]) -> str:
    text = ", ".join(f"{f.key} = {shown(f.column_value(point[f.key]), 30)}" for f in fs)
    return shown(text, 80, quote=False)


def plan_runs(path: str | Path) -> Plan:
    """Read an experiment, sample its points, check every run's scenario, list its runs.

    Args:
        path: The experiment TOML file. A relative ``scenario`` path in it is read
            relative to the file's folder.

    Returns:
        The plan, runs ordered by point then replicate.

    Raises:
        ExperimentError: The file breaks the schema, the base scenario cannot be
            loaded, or a run's scenario is invalid (naming the file, the point and the
            key); nothing has run and nothing is written.
    """
    path = Path(path)
    experiment = read_experiment(path)
    base = base_scenario(experiment, path)
    try:
        points = _sample(experiment)
    except ValueError as err:
        raise ExperimentError(f"{shown_name(path)}: {err}") from None
    return build_plan(experiment, path, points, base)


def base_scenario(experiment: Experiment, path: str | Path) -> Scenario:
    """The experiment's base scenario with its fixed overrides applied.

    Args:
        experiment: A checked experiment.
        path: Its file (a relative ``scenario`` path is read from the file's folder).

    Raises:
        ExperimentError: The scenario cannot be loaded or an override is invalid.
    """
    path = Path(path)
    source = shown_name(path)
    reference = _scenario_reference(experiment, path.parent)
    try:
        base = load_scenario(reference)
    except ScenarioError as err:
        raise ExperimentError(f"{source}: key 'scenario': {err}") from None
    if experiment.overrides:
        try:
            base = load_scenario(base, experiment.overrides)
        except ScenarioError as err:
            raise ExperimentError(f"{source}: key 'overrides': {_in_scenario(err, base)}"
                                  ) from None
    return base


def build_plan(experiment: Experiment, path: str | Path, points: list[dict[str, Any]],
               base: Scenario | None = None, design: str = "") -> Plan:
    """The runs of given parameter points: every run's scenario checked, seeds and ids set.

    Args:
        experiment: A checked experiment (its factors name the points' keys).
        path: Its file, for messages and relative scenario paths.
        points: One dict per point mapping each factor's key to its value.
        base: The base scenario (default: :func:`base_scenario`).
        design: For points not sampled from the experiment (a calibration round), a
            text identifying them; it becomes part of the plan's digest.

    Raises:
        ExperimentError: A run's scenario is invalid (naming the file, the point and
            the key).
    """
    path = Path(path)
    source = shown_name(path)
    if base is None:
        base = base_scenario(experiment, path)
    fs = factors(experiment)
    tables = experiment.outputs.resolved()
    plan = Plan(experiment=experiment, source=path, factors=fs, points=points, design=design)
    for number, point in enumerate(points):
        overrides = {key: value for f in fs for key in f.keys for value in [point[f.key]]}
        try:
            scenario = load_scenario(base, overrides) if overrides else base
        except ScenarioError as err:
            raise ExperimentError(f"{source}: point {number} ({_describe(point, fs)}): "
                                  f"{_in_scenario(err, base)}") from None
        parameters = {f.column: f.column_value(point[f.key]) for f in fs}
        resolved = scenario.model_dump(mode="json")
        for replicate in range(experiment.replicates):
            plan.runs.append(RunSpec(
                run_id=run_id(number, {f.key: point[f.key] for f in fs}, replicate),
                index=len(plan.runs), point=number, replicate=replicate,
                seed=run_seed(experiment, number, replicate), parameters=parameters,
                overrides={**experiment.overrides, **overrides}, scenario=resolved,
                tables=tables, end_year=scenario.end_year,
            ))
    return plan
