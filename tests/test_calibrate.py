"""``etsim calibrate`` with tiny budgets on the classroom scenario: end to end on a
LocalCluster with one worker, the three outputs, --resume, the objective of a candidate
closer to the target, the search's candidates, and bad input (exit status 2, nothing
written)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from etsim.experiments.calibrate import (
    behavioural_parameters,
    first_round_points,
    prepare,
    refine_points,
    run_calibration,
    run_round,
)
from etsim.experiments.cli import main
from etsim.experiments.experiment import run_seed
from etsim.experiments.moments import run_moments
from etsim.experiments.sweep import connect, disconnect, finished_runs
from etsim.model.market import CarbonMarketModel
from etsim.model.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]

# 3 candidates in round 1, 2 in one refinement round, the best with 2 seeds: 7 runs of
# the classroom market (about half a second each). Classroom's 2025 has no trades, so
# the fit is on 2026 (its targets given in the file) and 2025 is held out.
TINY = """
name = "tiny"
scenario = "classroom"
seed = 5
replicates = 1

[parameters."trading.base_activity"]
range = [0.005, 0.3]

[parameters."trading.fundamental_weight"]
range = [0.3, 0.9]

[search]
candidates = 3
rounds = 1
refine_candidates = 2
final_replicates = 2

[fit]
in_sample = [2026]
out_of_sample = [2025]

[targets.mean_price]
2026 = 120.0

[targets.deadline_share]
2026 = 0.5
"""


def _write(folder: Path, text: str, name: str = "tiny.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_worker() -> tuple:
    dask = connect(1, None)  # a LocalCluster of one worker process on loopback
    yield dask
    disconnect(*dask)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory, one_worker: tuple) -> Path:
    folder = tmp_path_factory.mktemp("calibrate")
    path = _write(folder, TINY)
    out = folder / "out"
    address = one_worker[1].scheduler_address
    assert main(["calibrate", str(path), "--out", str(out), "--scheduler", address,
                 "--quiet"]) == 0
    return out


def test_writes_fitted_values_candidates_and_report(calibrated: Path) -> None:
    fitted = tomllib.loads((calibrated / "fitted.toml").read_text(encoding="utf-8"))
    values = fitted["trading"]
    assert 0.005 <= values["base_activity"] <= 0.3
    assert 0.3 <= values["fundamental_weight"] <= 0.9
    # the snippet is valid scenario input
    load_scenario("classroom", {f"trading.{k}": v for k, v in values.items()})
    record = json.loads((calibrated / "fitted.json").read_text(encoding="utf-8"))
    assert record["parameters"] == {f"trading.{k}": v for k, v in values.items()}
    samples = {row["sample"] for row in record["moments"]}
    assert samples == {"in", "out", "-"}  # 2026 fitted, 2025 held out, the rest shown
    candidates = pd.read_parquet(calibrated / "candidates.parquet")
    assert list(candidates["round"]) == ["round-1"] * 3 + ["round-2"] * 2
    assert candidates["objective"].notna().all()
    # the fitted values are the best candidate's
    best = candidates.sort_values("objective").iloc[0]
    assert best["trading.base_activity"] == pytest.approx(values["base_activity"], rel=1e-5)
    assert pd.read_csv(calibrated / "candidates.csv").shape == candidates.shape
    report = (calibrated / "report.html").read_text(encoding="utf-8")
    assert "Moment errors" in report and "ICAP via World Carbon Pricing Database" in report
    assert "<script src=" not in report  # self-contained
    assert report.count("calibrate-year-") >= 4 and "calibrate-month-price" in report
    # the final round ran the best candidate with final_replicates seeds
    assert len(finished_runs(calibrated / "rounds" / "final")) == 2


def test_resume_skips_finished_runs(calibrated: Path, one_worker: tuple) -> None:
    before = {p: p.stat().st_mtime_ns for p in calibrated.rglob("runs/*.parquet")}
    first = json.loads((calibrated / "fitted.json").read_text(encoding="utf-8"))
    result = run_calibration(calibrated / "experiment.toml", calibrated, resume=True,
                             dask=one_worker)
    assert (result.computed, result.skipped, result.failed) == (0, 7, 0)
    assert {p: p.stat().st_mtime_ns for p in calibrated.rglob("runs/*.parquet")} == before
    again = json.loads((calibrated / "fitted.json").read_text(encoding="utf-8"))
    assert again["parameters"] == first["parameters"]
    assert again["objective"] == first["objective"]


def test_resume_needs_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, TINY)
    assert main(["calibrate", str(path), "--out", str(tmp_path / "none"), "--resume",
                 "--workers", "1"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_objective_is_lower_for_the_candidate_that_made_the_targets(tmp_path: Path) -> None:
    # targets: the moments of a run at base_activity 0.3 with replicate 0's seed; the
    # candidate with those values reproduces them exactly, one with 0.01 does not
    truth = {"trading.base_activity": 0.3, "trading.fundamental_weight": 0.7}
    setup = prepare(_write(tmp_path, TINY))
    seed = run_seed(setup.experiment("truth", 1), 0, 0)
    model = CarbonMarketModel(load_scenario("classroom", truth), seed=seed)
    model.run()
    moments = run_moments(model.results())
    in_2026 = moments[(moments["year"] == 2026) & moments["value"].notna()]
    assert {"mean_price", "volume", "deadline_share", "q4_share"} <= set(in_2026["moment"])
    targets = "".join(f"\n[targets.{row.moment}]\n2026 = {row.value!r}\n"
                      for row in in_2026.itertuples())
    text = TINY.split("[targets.mean_price]")[0] + targets
    setup = prepare(_write(tmp_path, text, "truth.toml"))
    far = {"trading.base_activity": 0.01, "trading.fundamental_weight": 0.7}
    done = run_round(setup, "check", [far, truth], tmp_path / "out", 1, None)
    objective = done.candidates.set_index("candidate")["objective"]
    assert objective[1] == 0.0
    assert objective[0] > 0.01


def test_candidates_stay_in_bounds_and_refine_around_the_best(tmp_path: Path) -> None:
    setup = prepare(_write(tmp_path, TINY.replace("candidates = 3", "candidates = 9")))
    first = first_round_points(setup)
    # the scenario's own values first (clipped into the bounds), then a Latin hypercube
    assert first[0] == {"trading.base_activity": 0.01, "trading.fundamental_weight": 0.7}
    assert len(first) == 9
    activity = sorted(p["trading.base_activity"] for p in first[1:])
    strata = [int((a - 0.005) / (0.295 / 8)) for a in activity]
    assert strata == list(range(8))  # one candidate in each eighth of the range
    assert first_round_points(setup) == first  # deterministic from the seed
    centre = {"trading.base_activity": 0.29, "trading.fundamental_weight": 0.5}
    refined = refine_points(setup, 2, [centre], first)
    assert len(refined) == 2
    for point in refined:  # half-width 0.5 x range / 2 around the centre, in bounds
        assert 0.29 - 0.295 / 4 <= point["trading.base_activity"] <= 0.3
        assert 0.5 - 0.6 / 4 <= point["trading.fundamental_weight"] <= 0.5 + 0.6 / 4


def test_behavioural_parameters_are_trading_and_activity_only() -> None:
    keys = behavioural_parameters()
    assert "trading.base_activity" in keys and "financial.activity" in keys
    assert keys["trading.foresight_years"] is int
    assert all(k.startswith("trading.") or k == "financial.activity" for k in keys)
    assert "penalty.multiple" not in keys


# (change to the tiny file, fragments of the one-line message)
BAD = {
    "unknown_parameter": (('"trading.base_activity"', '"trading.activity_rate"'),
                          ("parameters.\"trading.activity_rate\"", "is not a parameter",
                           "did you mean", "trading.base_activity", "[trading]")),
    "policy_key": (('"trading.base_activity"', '"penalty.multiple"'),
                   ("parameters.\"penalty.multiple\"", "not a behavioural parameter",
                    "[trading], financial.activity")),
    "bounds_reversed": (("range = [0.005, 0.3]", "range = [0.3, 0.005]"),
                        ("parameters.\"trading.base_activity\".range", "low < high")),
    "bound_outside_schema": (("range = [0.005, 0.3]", "range = [0.005, 1.5]"),
                             ("parameters.\"trading.base_activity\".range", "1.5")),
    "no_target_in_sample": (("in_sample = [2026]", "in_sample = [2027]"),
                            ("fit.in_sample", "2027", "observed years are 2021")),
    "year_outside_the_runs": (("out_of_sample = [2025]", "out_of_sample = [2024]"),
                              ("fit.out_of_sample", "2024", "2025-2027")),
    "year_in_both": (("out_of_sample = [2025]", "out_of_sample = [2026]"),
                     ("fit.out_of_sample", "2026")),
    "unknown_weight": (("[fit]", "[weights]\nprice = 1.0\n\n[fit]"),
                       ("weights.price", "mean_price")),
    "unknown_search_key": (("rounds = 1", "round = 1"), ("search.round", "rounds")),
    "integer_without_flag": (('"trading.base_activity"', '"trading.foresight_years"'),
                             ("trading.foresight_years", "integer = true")),
    "unknown_scenario": (('scenario = "classroom"', 'scenario = "atlantis"'),
                         ("key 'scenario'", "atlantis")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_and_writes_nothing(case: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (old, new), fragments = BAD[case]
    assert old in TINY
    path = _write(tmp_path, TINY.replace(old, new, 1))
    out = tmp_path / "out"
    assert main(["calibrate", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("etsim: error: ")
    assert "tiny.toml" in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not out.exists()


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.toml: no such calibration file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_folder_of_another_calibration_is_refused(calibrated: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, TINY.replace("seed = 5", "seed = 6"))
    before = sorted(p.name for p in calibrated.iterdir())
    assert main(["calibrate", str(path), "--out", str(calibrated), "--workers", "1"]) == 2
    assert "holds another calibration" in capsys.readouterr().err
    assert sorted(p.name for p in calibrated.iterdir()) == before


def test_shipped_calibration_file_is_valid() -> None:
    # it aims at china-history; until that scenario ships, check its schema and keys
    from etsim.experiments.calibrate import read_calibration

    cal = read_calibration(REPO / "experiments" / "calibrate-history.toml")
    assert cal.scenario == "china-history"
    assert cal.fit.in_sample == [2021, 2022, 2023] and cal.fit.out_of_sample == [2024, 2025]
    assert set(cal.parameters) <= set(behavioural_parameters())


def test_whole_number_parameters_get_every_value_equally(tmp_path: Path) -> None:
    text = TINY.replace("candidates = 3", "candidates = 9").replace(
        "[search]", '[parameters."trading.foresight_years"]\nrange = [1, 4]\ninteger = true\n\n'
        "[search]")
    setup = prepare(_write(tmp_path, text))
    years = [p["trading.foresight_years"] for p in first_round_points(setup)[1:]]
    # 8 Latin hypercube strata over 1-4: each whole number twice
    assert sorted(years) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert all(isinstance(y, int) for y in years)
