"""Bad input to the ``etsim`` command: one line on stderr, exit status 2, nothing written.

Every case runs ``etsim.experiments.cli.main`` in this process (fast) and checks the
whole contract: exit status 2; exactly one stderr line, ``etsim: error: ...``, of at most
300 characters, naming the file or argument and the key; nothing on stdout; and nothing
written: the folder it ran in and the output's parent are as they were (no output
folder, no hidden staging folder, no report). A few cases run ``python -m etsim`` in a
subprocess for the real exit status.

The corpus: ``bad_inputs/scenarios/*.toml`` (through ``validate`` and ``run``) and
``bad_inputs/experiments/*.toml`` (through ``sweep``); each file's ``# expect:`` lines
are fragments its message must contain. What is not a small text file (other encodings,
thousands of digits or levels, unreadable files, output folders that cannot be written,
a full disk, corrupt results) is made here.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import subprocess
import sys
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from etsim.experiments import sweep
from etsim.experiments.cli import main
from etsim.model.market import CarbonMarketModel
from etsim.model.results import run_record, write_results
from etsim.model.scenario import AbatementOption, Scenario, SectorConfig

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "bad_inputs"
SCENARIOS = sorted((CORPUS / "scenarios").glob("*.toml"))
EXPERIMENTS = sorted((CORPUS / "experiments").glob("*.toml"))
LINE_LIMIT = 300
DIGITS = "9" * 5000  # past Python's int-to-str limit (4,300 digits)
TINY_EXPERIMENT = 'scenario = "classroom"\nreplicates = {n}\n[overrides]\nscale = 0.1\n'


# --- the contract ----------------------------------------------------------------------------


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) below ``folder``, hidden ones too."""
    def contents(path: Path) -> bytes | None:
        if path.is_symlink():
            return f"-> {os.readlink(path)}".encode()
        if path.is_dir():
            return None
        with open(path, "rb") as file:  # not Path.read_bytes: tests make that fail
            return file.read()

    return {str(p.relative_to(folder)): contents(p) for p in sorted(folder.rglob("*"))}


Refused = Callable[..., str]


@pytest.fixture
def refused(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Refused:
    """``refused(*args, cwd=..., expect=[...])``: run ``etsim ARGS`` in ``cwd`` (default
    ``tmp_path``), check the bad-input contract and the fragments; the error line."""

    def check(*args: str, cwd: Path | None = None, expect: tuple[str, ...] = ()) -> str:
        cwd = cwd or tmp_path
        monkeypatch.chdir(cwd)
        before = {folder: _tree(folder) for folder in {cwd, tmp_path}}
        code = main(list(args))
        captured = capsys.readouterr()
        lines = captured.err.splitlines()  # also splits at \u2028 and friends
        assert code == 2, captured.err
        assert len(lines) == 1, captured.err
        line = lines[0]
        assert line.startswith("etsim: error: "), line
        assert len(line) <= LINE_LIMIT, f"{len(line)} characters: {line}"
        assert captured.out == ""
        for fragment in expect:
            assert fragment in line, f"{fragment!r} not in {line!r}"
        for folder, tree in before.items():  # nothing written, nothing left behind
            assert _tree(folder) == tree, f"{folder} changed"
        return line

    return check


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a model is built: the output must be checked before the run."""

    def built(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was built before the output folder was checked")

    monkeypatch.setattr(CarbonMarketModel, "__init__", built)
    monkeypatch.setattr(sweep, "run_one", built)


def _expected(path: Path) -> tuple[str, ...]:
    text = path.read_text(encoding="utf-8")
    return tuple(line.removeprefix("# expect: ") for line in text.splitlines()
                 if line.startswith("# expect: "))


def _fail_os(monkeypatch: pytest.MonkeyPatch, target: object, name: str, code: int,
             when: Callable[[object], bool] = lambda _: True) -> None:
    """Make ``target.name`` raise OSError(code) for the arguments ``when`` accepts."""
    real = getattr(target, name)

    def failing(first: object, *args: object, **kwargs: object) -> object:
        if when(first):
            raise OSError(code, os.strerror(code), str(first))
        return real(first, *args, **kwargs)

    monkeypatch.setattr(target, name, failing)


def _under(folder: Path) -> Callable[[object], bool]:
    return lambda path: os.path.abspath(path).startswith(str(folder))


# --- the corpus ----------------------------------------------------------------------------


def test_corpus_is_there_and_every_file_expects_something() -> None:
    assert len(SCENARIOS) >= 40 and len(EXPERIMENTS) >= 15
    for path in [*SCENARIOS, *EXPERIMENTS]:
        assert _expected(path), f"{path.name} has no '# expect:' line"
        assert path.stat().st_size < 4096, f"{path.name} is not a small file"


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_file(refused: Refused, tmp_path: Path, command: str, path: Path) -> None:
    name = str(path.relative_to(CORPUS))
    args = ["validate", name] if command == "validate" else [
        "run", name, "--out", str(tmp_path / "out"), "--quiet"]
    refused(*args, cwd=CORPUS, expect=(name, *_expected(path)))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_file(refused: Refused, tmp_path: Path, path: Path) -> None:
    name = str(path.relative_to(CORPUS))
    refused("sweep", name, "--out", str(tmp_path / "out"), "--workers", "1", "--quiet",
            cwd=CORPUS, expect=(name, *_expected(path)))


# --- files that are not UTF-8 TOML, or cannot be read -----------------------------------------

ENCODED = {
    "latin1": ('name = "café"\n'.encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    "cp1252_quotes": ("description = “quoted”\n".encode("cp1252"), "not UTF-8 text"),
    "utf16": ('name = "x"\n'.encode("utf-16"), "not UTF-8 text (UTF-16 text)"),
    "utf16_be": ('name = "x"\n'.encode("utf-16-be"), "not valid TOML"),  # NULs and ASCII
    "utf32": ('name = "x"\n'.encode("utf-32"), "not UTF-8 text"),
    "binary": (bytes(range(256)), "not UTF-8 text (byte 0x80"),
    "gzip": (gzip.compress(b'name = "x"\n', mtime=0), "not UTF-8 text"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text"),
    "nul_byte": (b'name = "x"\x00\n', "not valid TOML"),
    "empty_but_control": (b"\x1b[31m\n", "not valid TOML"),
}


@pytest.mark.parametrize("command", ["validate", "sweep"])
@pytest.mark.parametrize("kind", sorted(ENCODED))
def test_file_not_utf8_toml(refused: Refused, tmp_path: Path, command: str,
                            kind: str) -> None:
    data, fragment = ENCODED[kind]
    (tmp_path / f"{kind}.toml").write_bytes(data)
    args = ["validate", f"{kind}.toml"] if command == "validate" else [
        "sweep", f"{kind}.toml", "--out", "out", "--workers", "1"]
    refused(*args, expect=(f"{kind}.toml", fragment))


# a file too big or too deep for the parsers: made here, not committed
GENERATED = {
    "seed_digits": (f"seed = {DIGITS}\n", ("line 1, key 'seed'", "2^63-1")),
    "firms_digits": (f"[sectors.steel]\nfirms = {'1' * 10_000}\n",
                     ("line 2, key 'firms'", "2^63-1")),
    "array_5000_deep": ("x = " + "[" * 5000 + "]" * 5000 + "\n",
                        ("line 1, key 'x'", "nest at most 32")),
    "table_3000_deep": ("x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
                        ("line 1, key 'x'", "nest at most 32")),
    "array_100_deep": ("[auction]\nmonths = " + "[" * 100 + "]" * 100 + "\n",
                       ("key 'auction.months.0.0", "nest at most 32")),
    "value_100k": ('[market]\norder_expiry = "' + "d" * 100_000 + '"\n',
                   ("market.order_expiry", "...")),
    "key_100k": ('[penalty]\n"' + "m" * 100_000 + '" = 5\n', ("unknown key 'penalty.mmm",)),
}
EXPERIMENT_GENERATED = {
    "replicates_digits": (f'scenario = "classroom"\nreplicates = {DIGITS}\n',
                          ("line 2, key 'replicates'", "2^63-1")),
    "values_5000_deep": ('scenario = "classroom"\n[levers]\npenalty = '
                         + "[" * 5000 + "]" * 5000 + "\n", ("line 3", "nest at most 32")),
    "scenario_100k": ('scenario = "' + "s" * 100_000 + '"\n', ("key 'scenario'", "not found")),
}


@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_scenario_too_big_or_deep(refused: Refused, tmp_path: Path, kind: str) -> None:
    text, fragments = GENERATED[kind]
    (tmp_path / f"{kind}.toml").write_text(text, encoding="utf-8")
    refused("validate", f"{kind}.toml", expect=(f"{kind}.toml", *fragments))


@pytest.mark.parametrize("kind", sorted(EXPERIMENT_GENERATED))
def test_experiment_too_big_or_deep(refused: Refused, tmp_path: Path, kind: str) -> None:
    text, fragments = EXPERIMENT_GENERATED[kind]
    (tmp_path / f"{kind}.toml").write_text(text, encoding="utf-8")
    refused("sweep", f"{kind}.toml", "--out", "out", expect=(f"{kind}.toml", *fragments))


@pytest.mark.parametrize(("args", "fragments"), [
    (["validate", "folder.toml"], ("folder.toml: is a folder; give the scenario file",)),
    (["run", "folder.toml", "--quiet"], ("folder.toml: is a folder",)),
    (["sweep", "folder.toml", "--out", "out"], ("folder.toml: is a folder; give the experiment",)),
    (["validate", "x" * 100_000], ("scenario 'xxx", "not found")),  # a name, too long
    (["validate", "y" * 5000 + ".toml"], ("yyy", "no such scenario file")),  # too long
    (["validate", "nul\x00byte.toml"], ("nul\\x00byte.toml: no such scenario file",)),
    (["validate", "line\nbreak.toml"], ("line\\nbreak.toml: no such",)),
    (["sweep", "missing.toml"], ("missing.toml: no such experiment file",)),
    (["report", "missing"], ("missing: no such folder",)),
])
def test_file_that_cannot_be_read(refused: Refused, tmp_path: Path, args: list[str],
                                  fragments: tuple[str, ...]) -> None:
    (tmp_path / "folder.toml").mkdir()
    refused(*args, expect=fragments)


@pytest.mark.parametrize("command", ["validate", "run", "sweep"])
def test_permission_denied(refused: Refused, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    # root reads a chmod 000 file: the refusal is simulated
    (tmp_path / "locked.toml").write_text('scenario = "classroom"\n')
    _fail_os(monkeypatch, Path, "read_bytes", errno.EACCES,
             lambda path: Path(str(path)).name == "locked.toml")
    args = {"validate": ["validate", "locked.toml"], "run": ["run", "locked.toml", "--quiet"],
            "sweep": ["sweep", "locked.toml", "--out", "out"]}[command]
    refused(*args, expect=("locked.toml: cannot read the", "(Permission denied)"))


# --- --set arguments -------------------------------------------------------------------------

SETTINGS = {
    "penalty.multiple=abc": ("'penalty.multiple'", "valid number", "(got 'abc')"),
    "penalty.multiple=-inf": ("'penalty.multiple'", "finite"),
    "penalty.multipel=5": ("unknown key 'penalty.multipel'", "deduct_shortfall, multiple"),
    "penalty.multiple.x=1": ("'multiple' is not a table",),
    "penalty..multiple=1": ("a key path like penalty.multiple",),
    "sectors.steel.abatement.9.capital_cost=1": ("'9' must be an index from 0 to",),
    "sectors.*.allocation.tightening=1.5": ("allocation.tightening'", "below 1"),
    "sectors.steel.allocation.tightening={02026=0.01}": ("'02026'", "ASCII digits"),
    'sectors.steel.allocation.tightening={"２０２６"=0.01}': ("'２０２６'", "ASCII digits"),
    "sectors.*.enabled=false": ("key 'sectors'", "at least one sector"),
    "reserve_pool.release_price=10": ("'reserve_pool.absorb_price'", "below release_price"),
    "seed=99999999999999999999": ("key 'seed'", "2^63-1"),
    f"seed={DIGITS}": ("2^63-1", "thousands of digits"),
    "penalty.multiple=" + "[" * 5000 + "]" * 5000: ("nest at most 32",),
    "penalty.multiple=" + "x" * 100_000: ("'penalty.multiple'", "..."),
    "market.order_expiry=week": ("'market.order_expiry'", "'day' or 'gtc'"),
    "trading.strategy_mix={steel={zip=nan}}": ("'trading.strategy_mix.steel.zip'", "finite"),
    "scale=0": ("key 'scale'", "greater than 0"),
}


@pytest.mark.parametrize("setting", sorted(SETTINGS), ids=lambda s: s[:40])
def test_set_argument_is_named(refused: Refused, setting: str) -> None:
    # the --set argument is named (clipped if long), not the scenario file
    line = refused("run", "classroom", "--set", setting, "--quiet",
                   expect=(f"--set {setting[:30]}", *SETTINGS[setting]))
    assert "classroom.toml" not in line


def test_a_bad_file_with_a_good_set_names_the_file(refused: Refused) -> None:
    bad = CORPUS / "scenarios" / "price_nan.toml"
    line = refused("run", str(bad), "--set", "penalty.multiple=7", "--quiet",
                   expect=("price_nan.toml", "'market.initial_price'"))
    assert "--set" not in line


def test_the_last_of_two_sets_of_one_key_is_named(refused: Refused) -> None:
    refused("run", "classroom", "--set", "penalty.multiple=5", "--set",
            "penalty.multiple=nan", "--quiet", expect=("--set penalty.multiple=nan:", "finite"))


def _shapes(annotation: object) -> list[str]:
    """TOML templates ({0} = the bad number) reaching every float an annotation holds."""
    origin = typing.get_origin(annotation)
    if annotation is float:
        return ["{0}"]
    if origin in (typing.Union, types.UnionType):  # a schedule: a number or a year table
        return [shape for arg in typing.get_args(annotation) for shape in _shapes(arg)]
    if origin is dict:
        return ["{{ 2026 = " + shape + " }}" for shape in _shapes(typing.get_args(annotation)[1])]
    if origin is tuple:  # a [low, high] range
        return [f"[{shape}, {shape}]" for shape in _shapes(typing.get_args(annotation)[0])]
    return []


def _float_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(key, TOML template) for every float of the scenario schema, on classroom's steel."""
    for name, field in model.model_fields.items():
        key, annotation = f"{prefix}{name}", field.annotation
        if name == "sectors":
            yield from _float_keys(SectorConfig, "sectors.steel.")
        elif name == "abatement":
            yield from _float_keys(AbatementOption, f"{key}.0.")
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _float_keys(annotation, f"{key}.")
        else:
            yield from ((key, shape) for shape in _shapes(annotation))


FLOAT_KEYS = list(_float_keys(Scenario))


def test_every_float_of_the_schema_is_reached() -> None:
    # scale, sector keys, abatement ranges, schedules both ways, tables of shares
    keys = {key for key, _ in FLOAT_KEYS}
    assert len(FLOAT_KEYS) >= 80
    assert {"scale", "penalty.multiple", "sectors.steel.benchmark", "market.initial_price",
            "sectors.steel.abatement.0.capital_cost_range", "sectors.steel.provinces",
            "trading.strategy_mix", "compliance.banking_limit_t"} <= keys
    assert ("sectors.steel.allocation.tightening", "{{ 2026 = {0} }}") in FLOAT_KEYS


@pytest.mark.parametrize("number", ["inf", "nan"])
@pytest.mark.parametrize(("key", "shape"), FLOAT_KEYS, ids=[f"{k}={s}" for k, s in FLOAT_KEYS])
def test_every_float_refuses_a_non_finite_number(refused: Refused, key: str, shape: str,
                                                 number: str) -> None:
    # accepted by validate before, then a crash or NaN penalties and cash
    setting = f"{key}={shape.format(number)}"
    refused("run", "classroom", "--set", setting, "--quiet",
            expect=(f"--set {setting}:", f"key '{key}", "finite number", f"(got {number})"))


# --- output folders: checked before the model runs ------------------------------------------


RUN = ["run", "classroom", "--quiet", "--out"]
SWEEP = ["sweep", "experiment.toml", "--quiet", "--out"]


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize(("args", "fragments"), [
    ([*RUN, "afile/out"], ("--out afile/out: afile is a file, not a folder",)),
    ([*RUN, "afile/a/b/out"], ("--out afile/a/b/out: afile is a file",)),
    ([*RUN, "n" * 300], ("is not a possible folder name", "255 bytes")),
    ([*RUN, "o" * 100_000], ("not a possible folder name",)),
    ([*RUN, "link"], ("--out link already exists",)),  # a dangling link
    ([*RUN, "afile"], ("--out afile already exists",)),
    ([*SWEEP, "afile/out"], ("afile/out: afile is a file, not a folder",)),
    ([*SWEEP, "afile"], ("afile: exists and is not a folder",)),
    ([*SWEEP, "s" * 300], ("is not a possible folder name",)),
    ([*SWEEP, "other"], ("other: exists and is not a sweep folder",)),
    (["report", "afile"], ("afile: a file, not a folder",)),
])
def test_output_that_cannot_be_a_folder(refused: Refused, tmp_path: Path, args: list[str],
                                        fragments: tuple[str, ...]) -> None:
    (tmp_path / "afile").write_text("a plain file")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    (tmp_path / "experiment.toml").write_text(TINY_EXPERIMENT.format(n=1))
    refused(*args, expect=fragments)


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
@pytest.mark.parametrize("command", ["run", "run-default", "sweep", "sweep-existing"])
def test_output_on_a_file_system_that_refuses(refused: Refused, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, command: str,
                                              code: int) -> None:
    # a read-only file system, a folder without permission, a full disk: simulated (the
    # tests run as root), by refusing every folder made below tmp_path/ro
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "sweep").mkdir()
    (tmp_path / "experiment.toml").write_text(TINY_EXPERIMENT.format(n=1))
    _fail_os(monkeypatch, os, "mkdir", code, _under(ro))
    args, cwd, named = {
        "run": ([*RUN, "ro/new/out"], tmp_path, "--out ro/new/out: cannot write in ro "),
        "run-default": (["run", "classroom", "--quiet"], ro, "runs/classroom-seed1: cannot "),
        "sweep": ([*SWEEP, "ro/out"], tmp_path, "ro/out: cannot write in ro "),
        "sweep-existing": ([*SWEEP, "ro/sweep"], tmp_path, "ro/sweep: cannot write in ro/sw"),
    }[command]
    if command == "run-default":
        (ro / "experiment.toml").write_text("")
    refused(*args, cwd=cwd, expect=(named, f"({os.strerror(code)})"))


def test_report_into_a_read_only_folder(refused: Refused, run_dir: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    _fail_os(monkeypatch, os, "mkdir", errno.EROFS, _under(folder))
    refused("report", "run", expect=("run: cannot write in run (Read-only file system)",))


# --- a full disk while writing: one line, the staging folder removed ------------------------


def _disk_full(monkeypatch: pytest.MonkeyPatch, after: int = 0) -> None:
    """Parquet writes fail with ENOSPC after ``after`` of them succeeded."""
    real = pd.DataFrame.to_parquet
    done = [0]

    def to_parquet(self: pd.DataFrame, path: object, *args: object, **kwargs: object) -> object:
        if done[0] >= after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        done[0] += 1
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)


def test_run_on_a_full_disk(refused: Refused, monkeypatch: pytest.MonkeyPatch) -> None:
    _disk_full(monkeypatch)
    # the parents made for the folder are removed too
    refused("run", "classroom", "--set", "scale=0.2", "--out", "new/deeper/out", "--quiet",
            expect=("--out new/deeper/out: cannot write (No space left on device)",
                    "nothing was written"))


def test_sweep_on_a_full_disk_leaves_nothing(refused: Refused, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tiny.toml").write_text(TINY_EXPERIMENT.format(n=1))
    _disk_full(monkeypatch)
    refused("sweep", "tiny.toml", "--out", "sweeps/tiny", "--workers", "1", "--quiet",
            expect=("sweeps/tiny: cannot write (No space left on device)",
                    "nothing was written"))


def test_sweep_on_a_disk_full_before_any_run(refused: Refused, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tiny.toml").write_text(TINY_EXPERIMENT.format(n=1))
    _fail_os(monkeypatch, Path, "write_text", errno.ENOSPC,
             lambda path: "sweep.json" in Path(str(path)).name)
    refused("sweep", "tiny.toml", "--out", "out", "--workers", "1", "--quiet",
            expect=("out: cannot write (No space left on device)",))


def test_sweep_on_a_full_disk_keeps_finished_runs(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tiny.toml").write_text(TINY_EXPERIMENT.format(n=2))
    monkeypatch.chdir(tmp_path)
    _disk_full(monkeypatch, after=1)  # the first run's row, then the disk is full
    assert main(["sweep", "tiny.toml", "--out", "out", "--workers", "1", "--quiet"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and len(lines[0]) <= LINE_LIMIT
    assert "out: cannot write (No space left on device); finished runs are kept (1)" in (
        lines[0])
    assert len(list((tmp_path / "out" / "runs").iterdir())) == 1
    assert [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")] == []


def test_report_on_a_full_disk(refused: Refused, run_dir: Path, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(run_dir, tmp_path / "run")
    _fail_os(monkeypatch, Path, "write_text", errno.ENOSPC,
             lambda path: "report.html" in Path(str(path)).name)
    refused("report", "run", expect=("run/report.html: cannot write (No space left",))


# --- etsim report on corrupt results ---------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = CarbonMarketModel(scenario="classroom", seed=3, overrides={"scale": 0.2})
    model.run()
    return write_results(model.results(), run_record(model),
                         tmp_path_factory.mktemp("bad-report") / "run")


def _row(run_id: str) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": run_id, "point": 0, "replicate": 0, "seed": 1,
                          "status": "ok", "mean_price": 90.0, "wall_time_s": 1.0}])


CORRUPT_RUNS: dict[str, tuple[str, bytes | None, str]] = {
    # name: (file, new contents (None: a folder), what the message says)
    "run_json_not_json": ("run.json", b"{not json", "run.json: not a readable JSON file"),
    "run_json_truncated": ("run.json", None, "run.json: not a readable JSON file"),
    "run_json_empty": ("run.json", b"", "run.json: not a readable JSON file"),
    "run_json_binary": ("run.json", bytes(range(256)), "run.json: not a readable JSON"),
    "run_json_a_list": ("run.json", b"[1, 2]", "run.json: must hold a JSON object"),
    "run_json_deep": ("run.json", b"[" * 100_000 + b"]" * 100_000, "run.json: not a readable"),
    "parquet_truncated": ("market_daily.parquet", None, "market_daily.parquet: not a readable"),
    "parquet_garbage": ("firm_years.parquet", b"PAR1 not really", "firm_years.parquet: not a"),
    "parquet_empty": ("trades.parquet", b"", "trades.parquet: not a readable Parquet table"),
    "parquet_is_json": ("market_years.parquet", b'{"year": 2025}', "market_years.parquet: not"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_RUNS))
def test_report_on_a_corrupt_run(refused: Refused, run_dir: Path, tmp_path: Path,
                                 case: str) -> None:
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    name, data, fragment = CORRUPT_RUNS[case]
    path = folder / name
    if data is None:  # truncated: the first half of the real file
        data = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(data)
    refused("report", "run", expect=(f"run/{fragment}",))


SWEEP_FOLDERS: dict[str, tuple[dict[str, bytes], str]] = {
    "sweep_json_corrupt": ({"sweep.json": b"{", "runs/a.parquet": b"ok"},
                           "sweep.json: not a readable JSON file"),
    "sweep_json_a_string": ({"sweep.json": b'"a sweep"', "runs/a.parquet": b"ok"},
                            "sweep.json: must hold a JSON object"),
    "row_corrupt": ({"runs/a.parquet": b"ok", "runs/b.parquet": b"PAR1garbage"},
                    "b.parquet: not a readable Parquet table"),
    "row_truncated": ({"runs/a.parquet": b"ok", "runs/b.parquet": b"half"},
                      "b.parquet: not a readable Parquet table"),
    "summary_corrupt": ({"summary.parquet": b"\x00" * 64}, "summary.parquet: not a readable"),
    "error_record_corrupt": ({"runs/a.parquet": b"ok", "errors/c.json": b"{]"},
                             "c.json: not a readable JSON file"),
    "error_record_without_row": ({"runs/a.parquet": b"ok", "errors/c.json": b'{"run_id": 1}'},
                                 "c.json: not a failed run's record (no row)"),
}


@pytest.mark.parametrize("case", sorted(SWEEP_FOLDERS))
def test_report_on_a_corrupt_sweep(refused: Refused, tmp_path: Path, case: str) -> None:
    files, fragment = SWEEP_FOLDERS[case]
    for name, data in files.items():
        path = tmp_path / "sweep" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data == b"ok":
            _row(path.stem).to_parquet(path, index=False)
        elif data == b"half":
            _row(path.stem).to_parquet(path, index=False)
            path.write_bytes(path.read_bytes()[:100])
        else:
            path.write_bytes(data)
    refused("report", "sweep", expect=(fragment,))


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda f: None, "neither a run's results folder"),
    (lambda f: (f / "notes.txt").write_text("x"), "neither a run's results folder"),
    (lambda f: (f / "run.json").mkdir(), "neither a run's results folder"),
])
def test_report_on_a_folder_that_is_not_results(refused: Refused, tmp_path: Path,
                                                make: Callable[[Path], object],
                                                fragment: str) -> None:
    (tmp_path / "folder").mkdir()
    make(tmp_path / "folder")
    refused("report", "folder", expect=(f"folder: {fragment}",))


# --- the real exit status --------------------------------------------------------------------


def _etsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(  # this checkout's etsim
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "etsim", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "fragment"), [
    (["validate", "latin1.toml"], "latin1.toml: not UTF-8 text"),
    (["run", "classroom", "--set", "penalty.multiple=inf", "--out", "out"],
     "--set penalty.multiple=inf: key 'penalty.multiple'"),
    (["sweep", "tiny.toml", "--out", "afile/out"], "afile/out: afile is a file"),
])
def test_exit_status_is_2_in_a_real_process(tmp_path: Path, args: list[str],
                                            fragment: str) -> None:
    (tmp_path / "latin1.toml").write_bytes('name = "café"\n'.encode("latin-1"))
    (tmp_path / "tiny.toml").write_text(TINY_EXPERIMENT.format(n=1))
    (tmp_path / "afile").write_text("x")
    before = _tree(tmp_path)
    done = _etsim(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and fragment in lines[0], done.stderr
    assert len(lines[0]) <= LINE_LIMIT and done.stdout == ""
    assert _tree(tmp_path) == before
