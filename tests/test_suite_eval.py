"""evaluate.py --suite end to end: units, the oracle point and scores recomputed from the
written per-seed results, the no-oracle fallback, skipped tasks, errors, serial == Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import evaluate
from agents import make_policy
from agents.policy import _REGISTRY
from serflow_env.suite import build_tasks, load_suite
from serflow_eval.suite_eval import run_suite_units, suite_units

TASKS = [
    {"name": "steady", "split": "test", "episode_steps": 30,
     "trace": {"generator": "constant", "duration_s": 300, "rate": 80.0}},
    {"name": "bursty", "split": "test", "scenario": "branchynet-resnet", "episode_steps": 30,
     "trace": {"generator": "mmpp", "duration_s": 300, "rates": [30.0, 200.0],
               "mean_sojourn_s": 60.0, "seed": 1}},
    {"name": "later", "split": "validation", "episode_steps": 30, "trace": "sine_1h.txt@0:300"},
]


@pytest.fixture
def suite_file(tmp_path) -> Path:
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump({"name": "mini", "version": 1, "tasks": TASKS}))
    return path


@pytest.fixture
def stand_in_oracle(monkeypatch):
    """A stand-in registered as ``oracle`` for the plumbing only (not an optimum): vm-peak at
    the utilisation ``oracle:u=X`` names, so specs differ in cost and violations."""
    def factory(scenario, arg, **kw):
        u = float(arg.partition("=")[2])
        return make_policy(f"vm-peak:utilisation={u}", scenario)

    monkeypatch.setitem(_REGISTRY, "oracle", factory)


def test_suite_run_scores_match_a_recomputation_from_per_seed(suite_file, tmp_path, capsys,
                                                              stand_in_oracle):
    """The oracle point, scores and relative costs in the CSVs, recomputed from per_seed.csv
    by their definitions (heuristic: faas-only, which the stand-ins undercut)."""
    out = tmp_path / "out"
    specs = ["faas-only", "serflow", "oracle:u=0.5", "oracle:u=0.95"]
    assert evaluate.main(["--suite", str(suite_file), "--policies", ",".join(specs),
                          "--heuristic", "faas-only", "--seeds", "2", "--no-progress",
                          "--out", str(out)]) == 0
    per_seed = pd.read_csv(out / "per_seed.csv")
    assert len(per_seed) == 2 * len(specs) * 2  # test split: 2 tasks x 4 policies x 2 seeds
    assert list(dict.fromkeys(per_seed["task"])) == ["steady", "bursty"]
    tasks = pd.read_csv(out / "tasks.csv").set_index(["task", "policy"])
    points = pd.read_csv(out / "oracle_points.csv", keep_default_na=False).set_index("task")
    scored = 0
    for task, group in per_seed.groupby("task"):
        means = group.groupby("policy")[["cost_usd", "slo_violation_rate"]].mean()
        fair = means.loc[["oracle:u=0.5", "oracle:u=0.95"]]
        fair = fair[fair["slo_violation_rate"] <= means.loc["faas-only", "slo_violation_rate"]]
        expected = "" if fair.empty else fair["cost_usd"].idxmin()
        assert points.loc[task, "oracle"] == expected
        h, p = means.loc["faas-only", "cost_usd"], means.loc["serflow", "cost_usd"]
        if expected and h > means.loc[expected, "cost_usd"]:
            scored += 1
            o = means.loc[expected, "cost_usd"]
            assert tasks.loc[(task, "serflow"), "score_mean"] == pytest.approx((h - p) / (h - o))
            assert tasks.loc[(task, expected), "score_mean"] == pytest.approx(1.0)
            assert tasks.loc[(task, "faas-only"), "score_mean"] == 0.0
        else:
            assert np.isnan(tasks.loc[(task, "serflow"), "score_mean"])
        assert tasks.loc[(task, "serflow"), "cost_vs_heuristic_mean"] == pytest.approx(p / h)
    assert scored >= 1  # the selection and the score were exercised, not only their absence
    scores = pd.read_csv(out / "scores.csv").set_index("policy")
    task_scores = tasks.xs("serflow", level="policy")["score_mean"].dropna()
    assert scores.loc["serflow", "score_mean"] == pytest.approx(task_scores.mean())
    assert scores.loc["serflow", "score_tasks"] == len(task_scores) == scored
    assert (out / "suite_scores.png").stat().st_size > 0
    text = capsys.readouterr().out
    assert "oracle point per task" in text and "suite means over tasks" in text
    assert "no oracle spec given" not in text


def test_without_an_oracle_the_run_says_so_and_plots_relative_costs(suite_file, tmp_path,
                                                                    capsys):
    out = tmp_path / "out"
    assert evaluate.main(["--suite", str(suite_file), "--split", "validation", "--policies",
                          "libra,serflow", "--seeds", "1", "--no-progress", "--out",
                          str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "no oracle spec given" in text and "costs are shown relative to the heuristic" in text
    assert (out / "suite_relative_cost.png").exists() and not (out / "suite_scores.png").exists()
    tasks = pd.read_csv(out / "tasks.csv")
    assert list(tasks["task"]) == ["later", "later"] and tasks["score_mean"].isna().all()


def test_skipped_tasks_are_printed_and_listed(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "version": 1, "tasks": [
        TASKS[0], {**TASKS[0], "name": "gone", "trace": "absent_logs.txt@0:300"}]}))
    out = tmp_path / "out"
    assert evaluate.main(["--suite", str(path), "--policies", "serflow", "--seeds", "1",
                          "--no-progress", "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "skipped task 'gone' (test): trace file 'absent_logs.txt' is absent" in text
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped["task"]) == ["gone"] and list(skipped["file"]) == ["absent_logs.txt"]


def test_suite_arguments_are_checked(suite_file, capsys):
    for argv, message in (
        (["--suite", "v1", "--trace", "x.txt"], "excludes --trace"),
        (["--suite", "v1", "--episode-steps", "5"], "excludes --episode-steps"),
        (["--split", "train"], "--split, --tasks and --heuristic need --suite"),
        (["--suite", "v1", "--heuristic", "libra", "--policies", "serflow"],
         "--heuristic 'libra' must be one of --policies"),
    ):
        with pytest.raises(SystemExit):
            evaluate.main(argv)
        assert message in capsys.readouterr().err
    assert evaluate.main(["--suite", "v9", "--no-progress"]) == 2
    assert "unknown suite 'v9'" in capsys.readouterr().out
    assert evaluate.main(["--suite", str(suite_file), "--tasks", "zz", "--no-progress"]) == 2
    assert "no task(s) ['zz']" in capsys.readouterr().out
    assert evaluate.main(["--suite", str(suite_file), "--set", "arrivals.random_start=true",
                          "--no-progress"]) == 2
    assert "'arrivals.random_start' cannot be set" in capsys.readouterr().out


def test_unit_seeds_are_common_random_numbers(suite_file):
    """Seed i of a unit is env.reset(seed=i): the same seed gives the same row, another seed
    other Poisson arrivals on the same trace window."""
    built, _ = build_tasks(load_suite(suite_file), ["test"], ["bursty"])
    rows = run_suite_units(suite_units(built, ["faas-only"], [0, 1, 0]))
    pd.testing.assert_series_equal(rows.iloc[0], rows.iloc[2], check_names=False)
    assert rows.loc[0, "requests"] != rows.loc[1, "requests"]
    assert np.isclose(rows.loc[0, "requests"], rows.loc[1, "requests"], rtol=0.1)


def test_ray_suite_units_equal_the_serial_ones(suite_file, ray_local, tmp_path):
    """--ray runs each (task, policy, seed) unit as a Ray task: the serial rows exactly
    (ray_local skips where Ray is not installed)."""
    from serflow_eval.ray_eval import ray_run_suite_units

    built, _ = build_tasks(load_suite(suite_file), None, ["steady", "later"])
    units = suite_units(built, ["serflow", "libra"], [0, 2])
    calls = []
    serial = run_suite_units(units)
    parallel = ray_run_suite_units(units, on_unit=lambda: calls.append(1))
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    assert len(calls) == len(units)
    args = ["--suite", str(suite_file), "--tasks", "bursty", "--policies", "serflow,faas-only",
            "--seeds", "2", "--no-progress"]
    assert evaluate.main(args + ["--out", str(tmp_path / "serial")]) == 0
    assert evaluate.main(args + ["--ray", "--out", str(tmp_path / "ray")]) == 0
    for name in ("per_seed.csv", "tasks.csv", "scores.csv", "oracle_points.csv"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
