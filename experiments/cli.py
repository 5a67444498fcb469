"""The ``etsim`` command.

Bad input (unknown key, wrong type, impossible value, missing file, bad argument)
exits with status 2 and one line naming the file or argument, the key and what is
allowed: no traceback, and nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

# Only the standard library at module level: ``etsim --help`` and argument errors must
# not wait for pydantic, pandas or Mesa. Each command imports what it needs.
from etsim.model.messages import LINE_LIMIT, shown, shown_name


class UsageError(Exception):
    """A command-line argument that cannot be used."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        raise UsageError(message)


def _override_pairs(pairs: list[str]) -> list[tuple[str, str]]:
    """The ``--set key=value`` arguments as (key, value text); checked before any import."""
    split = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError("--set takes key=value (e.g. penalty.multiple=7), got "
                             f"{shown(pair)}")
        split.append((key.strip(), value.strip()))
    return split


def _default_out(name: str, seed: int) -> Path:
    """runs/NAME-seedN, with -2, -3 ... added so that no earlier run is overwritten. The
    scenario's name is made one safe folder name: no separators, no leading dots."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    base = Path("runs") / f"{safe or 'scenario'}-seed{seed}"
    candidate, number = base, 1
    while os.path.lexists(candidate):  # lexists: a name too long is not there
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def _cmd_run(args: argparse.Namespace) -> int:
    # Argument errors first: they need none of the imports below.
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {shown(args.seed)}")
    pairs = _override_pairs(args.set)
    chosen_out = Path(args.out) if args.out else None
    # lexists: a name the system refuses (too long) is not there; a dangling link is
    if chosen_out is not None and os.path.lexists(chosen_out):
        raise UsageError(f"--out {shown_name(chosen_out)} already exists; choose another "
                         "folder (nothing is overwritten)")

    from etsim import CarbonMarketModel
    from etsim.model.results import cannot_write, check_output_folder, run_record, write_results
    from etsim.model.scenario import load_scenario, parse_override_value

    out_name = f"--out {shown_name(chosen_out)}" if chosen_out else ""
    if chosen_out is not None:  # before the scenario and the run, not after
        check_output_folder(chosen_out, out_name)
    overrides, labels = {}, {}
    for key, text in pairs:
        labels[key] = f"--set {shown_name(f'{key}={text}')}"
        overrides[key] = parse_override_value(text, labels[key])
    scenario = load_scenario(args.scenario, overrides or None, labels)
    seed = scenario.seed if args.seed is None else args.seed
    if chosen_out is None:  # the default is always new
        out = _default_out(scenario.name, seed)
        out_name = shown_name(out)
        check_output_folder(out, out_name)
    else:
        out = chosen_out
    model = CarbonMarketModel(scenario, seed=seed)
    if sys.stderr.isatty() and not args.quiet:
        from tqdm import tqdm

        with tqdm(total=model.calendar.n_days, unit="day", desc=scenario.name) as bar:
            model.run(progress=lambda done, _total: bar.update(done - bar.n))
    else:
        model.run()
    tables = model.results()
    try:
        write_results(tables, run_record(model), out)
    except OSError as err:  # a full disk: write_results has removed what it began
        raise cannot_write(out_name, err) from None
    if not args.quiet:
        print(summary(tables, model.n_firms, model.wall_time, out))
    return 0


def summary(tables: dict[str, Any], n_firms: int, wall_time: float, out: Path) -> str:
    """A short text summary of a run: prices by year, compliance, sector balances."""
    years = tables["market_years"]
    lines = [f"{n_firms:,} firms, {len(tables['market_daily']):,} trading days, "
             f"{wall_time:.1f} s; results in {out}", "",
             "year  mean price  min-max (CNY/t)  fundamental  equilibrium  volume (Mt)"
             "  compliance"]
    daily = tables["market_daily"]
    for row in years.itertuples():
        closes = daily.loc[daily["year"] == row.year, "close"]
        compliance = "-" if row.compliance_rate != row.compliance_rate else (
            f"{100 * row.compliance_rate:.1f}%")
        equilibrium = "-" if row.equilibrium_price != row.equilibrium_price else (
            f"{row.equilibrium_price:.1f}")
        lines.append(f"{row.year}  {row.mean_price:10.2f}  {closes.min():6.2f}-{closes.max():6.2f}"
                     f"  {row.fundamental_price:11.2f}  {equilibrium:>11}"
                     f"  {row.volume / 1e6:11.2f}  {compliance:>10}")
    firm_years = tables["firm_years"]
    gap = firm_years["free_allocation"] - firm_years["verified_emissions"]
    balance = firm_years.assign(gap=gap)
    by_sector = balance.groupby("sector").agg(
        surplus=("gap", lambda g: g[g > 0].sum()), deficit=("gap", lambda g: -g[g < 0].sum())
    )
    lines += ["", "fundamental: the price anchoring expectations (the competitive path with "
              "banking and discounting over the firms' foresight, from the bank);",
              "equilibrium: the same path over the run's compliance years, ex post "
              "(static one-year prices: market_years.static_equilibrium_price).",
              "", "sector       surplus (Mt)  deficit (Mt)   (free allocation vs verified, "
              "all years)"]
    for sector, row in by_sector.iterrows():
        lines.append(f"{sector:<12} {row.surplus / 1e6:12.2f}  {row.deficit / 1e6:12.2f}")
    return "\n".join(lines)


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from etsim.model.scenario import load_scenario, shipped_scenarios

    for name in shipped_scenarios():
        scenario = load_scenario(name)
        first_line = scenario.description.strip().splitlines()[0] if scenario.description else ""
        print(f"{name:<20} {scenario.start_year}-{scenario.end_year}  {first_line}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from etsim.model.scenario import load_scenario

    scenario = load_scenario(args.file)
    counts = scenario.firm_counts()  # the firms a run of it has
    print(f"{args.file}: ok ({scenario.name}, {scenario.start_year}-{scenario.end_year}, "
          f"{sum(counts.values())} firms in {', '.join(counts)})")
    return 0


def _run_study(args: argparse.Namespace, module: str, runner: str) -> Any | None:
    """Run a batch command's study (``runner`` of ``etsim.experiments.<module>``) into
    ``--out`` (default: the module's ``default_out_dir``); its result, or None when
    interrupted: finished runs are kept and the same command resumes them, as it says."""
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be a whole number >= 1, got {shown(args.workers)}")
    study = import_module(f"etsim.experiments.{module}")
    out = Path(args.out) if args.out else study.default_out_dir(args.experiment)
    try:
        result = getattr(study, runner)(args.experiment, out, workers=args.workers,
                                        scheduler=args.scheduler, resume=args.resume,
                                        progress=sys.stderr.isatty() and not args.quiet)
    except KeyboardInterrupt:
        print(f"etsim: interrupted; finished runs are kept in {out}, and running the same "
              "command again resumes", file=sys.stderr)
        return None
    if not args.quiet:
        print(result.describe())
    return result


def _cmd_sweep(args: argparse.Namespace) -> int:
    result = _run_study(args, "sweep", "run_sweep")
    if result is None:
        return 130
    return 0 if result.ok else 1


def _cmd_calibrate(args: argparse.Namespace) -> int:
    result = _run_study(args, "calibrate", "run_calibration")
    if result is None:
        return 130
    return 0 if result.failed == 0 else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from etsim.experiments.report import write_report

    print(write_report(args.directory))
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be from 1 to 65535, got {shown(args.port)}")
    if args.lesson:
        from etsim.dashboard.classroom.lessons import LESSONS_ENV, LessonError, check_lesson

        try:
            folders = [str(check_lesson(folder).resolve()) for folder in args.lesson]
        except LessonError as err:
            raise UsageError(str(err)) from None
        # the Market page (in this process and any worker) reads the lessons from here
        os.environ[LESSONS_ENV] = os.pathsep.join(folders)
        print(f"lesson{'s' if len(folders) > 1 else ''} on the Market page: "
              f"http://{args.host}:{args.port}/market")
    from etsim.dashboard.app import run

    run(host=args.host, port=args.port)
    return 0


def _cmd_classroom(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be from 1 to 65535, got {shown(args.port)}")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {shown(args.seed)}")
    chosen_out = Path(args.out) if args.out else None
    if chosen_out is not None and os.path.lexists(chosen_out):
        raise UsageError(f"--out {shown_name(chosen_out)} already exists; choose another "
                         "folder (nothing is overwritten)")
    from etsim.dashboard.classroom.engine import ClassroomError, ClassroomSession
    from etsim.dashboard.classroom.server import serve

    try:
        session = ClassroomSession(args.scenario, seats=args.seats, pace=args.pace,
                                   leave_after=args.leave_after, seed=args.seed)
    except ClassroomError as err:
        raise UsageError(err.message) from None
    out = chosen_out or _default_out(f"lesson-{session.scenario.name}",
                                     session.model.seed_value)
    try:
        serve(session, args.host, args.port, out)
    except OSError as err:  # the port is taken, or the address is not this machine's
        raise UsageError(f"--host {shown(args.host)} --port {args.port}: cannot listen "
                         f"there ({err.strerror or err})") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``etsim``."""
    parser = _Parser(prog="etsim", description="Agent-based simulator of carbon emissions "
                     "trading, calibrated to China's national carbon market.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="one run; writes the results directory")
    run.add_argument("scenario", nargs="?", default="china-2024",
                     help="a shipped scenario name or a path to a TOML file")
    run.add_argument("--out", help="results folder (default runs/NAME-seedN; never overwritten)")
    run.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a scenario value, e.g. penalty.multiple=7 or "
                     "'sectors.*.allocation.tightening=0.03' (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.set_defaults(handler=_cmd_run)
    listing = commands.add_parser("scenarios", help="list the shipped scenarios")
    listing.set_defaults(handler=_cmd_scenarios)
    validate = commands.add_parser("validate", help="check a scenario file")
    validate.add_argument("file", help="a scenario TOML file or shipped name")
    validate.set_defaults(handler=_cmd_validate)
    sweep = commands.add_parser("sweep", help="batch runs of an experiment on Dask")
    sweep.add_argument("experiment", help="an experiment TOML file (see experiments/)")
    sweep.add_argument("--out", help="results folder (default sweeps/NAME); re-running into "
                       "it resumes")
    sweep.add_argument("--workers", type=int, help="worker processes on this machine "
                       "(default: one per core; 1 runs in this process)")
    sweep.add_argument("--scheduler", help="an existing Dask scheduler, tcp://HOST:PORT or a "
                       "scheduler file")
    sweep.add_argument("--resume", action="store_true", help="skip runs already finished")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sweep.set_defaults(handler=_cmd_sweep)
    calibrate = commands.add_parser("calibrate", help="fit behavioural parameters to the "
                                    "observed market's moments on Dask")
    calibrate.add_argument("experiment", help="a calibration TOML file (see "
                           "experiments/calibrate-history.toml)")
    calibrate.add_argument("--out", help="output folder (default calibrations/NAME); "
                           "re-running into it resumes")
    calibrate.add_argument("--workers", type=int, help="worker processes on this machine "
                           "(default: one per core; 1 runs in this process)")
    calibrate.add_argument("--scheduler", help="an existing Dask scheduler, tcp://HOST:PORT "
                           "or a scheduler file")
    calibrate.add_argument("--resume", action="store_true", help="skip runs already finished")
    calibrate.add_argument("--quiet", action="store_true", help="no progress or summary")
    calibrate.set_defaults(handler=_cmd_calibrate)
    report = commands.add_parser("report", help="self-contained HTML report of a run or sweep")
    report.add_argument("directory", help="a results folder of etsim run or etsim sweep")
    report.set_defaults(handler=_cmd_report)
    dashboard = commands.add_parser("dashboard", help="the Dash app in a browser")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind "
                           "(default 127.0.0.1, this machine only)")
    dashboard.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    dashboard.add_argument("--lesson", action="append", metavar="DIR", help="a lesson "
                           "folder 'etsim classroom' exported, to replay on the Market page "
                           "(its students' orders marked); may be given more than once")
    dashboard.set_defaults(handler=_cmd_dashboard)
    classroom = commands.add_parser("classroom", help="a live session: students trade "
                                    "against the agent firms")
    classroom.add_argument("scenario", nargs="?", default="classroom",
                           help="a shipped scenario name or a path to a TOML file "
                           "(default classroom)")
    classroom.add_argument("--host", default="127.0.0.1", help="address to bind (default "
                           "127.0.0.1, this machine only; 0.0.0.0 for the classroom network)")
    classroom.add_argument("--port", type=int, default=8060, help="port (default 8060)")
    classroom.add_argument("--seats", type=int, default=8, help="student seats, one firm "
                           "each (default 8)")
    classroom.add_argument("--pace", type=float, default=5.0, help="seconds a trading day "
                           "is open; 0 = the teacher steps each day (default 5)")
    classroom.add_argument("--leave-after", type=float, default=30.0, help="seconds without "
                           "word from a student before the agent takes the firm (default 30)")
    classroom.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    classroom.add_argument("--out", help="folder the teacher's export writes (default "
                           "runs/lesson-NAME-seedN; never overwritten)")
    classroom.set_defaults(handler=_cmd_classroom)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``etsim`` console script."""
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except UsageError as err:
        return _bad_input(err)
    except KeyboardInterrupt:
        print("etsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``etsim scenarios | head``): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as err:
        # Imported here, not at start-up, as it needs pydantic; a command that raised
        # one has imported it already.
        from etsim.model.scenario import ScenarioError

        if isinstance(err, ScenarioError):  # also ExperimentError, a subclass
            return _bad_input(err)
        raise


def _bad_input(err: Exception) -> int:
    """A bad scenario, experiment or argument: one line on stderr, exit status 2.

    Messages keep the values they echo short (:func:`shown`); the line is clipped too,
    for the few that cannot (argparse's own).
    """
    print(shown(f"etsim: error: {err}", LINE_LIMIT, quote=False), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
