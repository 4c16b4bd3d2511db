"""serflow_eval.suite_goals: the per-task goals and suite means, against hand-computed values."""

from __future__ import annotations

import pandas as pd
import pytest

from serflow_eval.suite_goals import main, suite_mean, task_goals

T_975_2 = 4.302652729911275  # Student t, 97.5 %, 2 degrees of freedom


def _per_seed() -> pd.DataFrame:
    rows = []
    costs = {("A", "h"): [10, 12, 14], ("A", "p"): [9, 11, 13],
             ("B", "h"): [10, 12, 14], ("B", "p"): [11, 13, 15]}
    viol = {("A", "h"): [0.01] * 3, ("A", "p"): [0.012, 0.008, 0.010],
            ("B", "h"): [0.01] * 3, ("B", "p"): [0.02, 0.021, 0.019]}
    for (task, policy), values in costs.items():
        for seed, cost in enumerate(values):
            rows.append({"task": task, "split": "test", "policy": policy, "seed": seed,
                         "cost_usd": float(cost),
                         "slo_violation_rate": viol[(task, policy)][seed]})
    return pd.DataFrame(rows)


def test_task_goals_by_hand() -> None:
    goals = task_goals(_per_seed(), "p", "h").set_index("task")
    assert goals.loc["A", "cost_ratio"] == pytest.approx(33 / 36)
    assert goals.loc["B", "cost_ratio"] == pytest.approx(39 / 36)
    assert goals.loc["A", "violation_diff"] == pytest.approx(0.0, abs=1e-15)
    assert goals.loc["A", "violation_diff_ci95"] == pytest.approx(T_975_2 * 0.002 / 3 ** 0.5)
    assert goals.loc["B", "violation_diff"] == pytest.approx(0.01)
    assert goals.loc["B", "violation_diff_ci95"] == pytest.approx(T_975_2 * 0.001 / 3 ** 0.5)
    assert goals.loc["A", ["violations_ok", "cost_ok"]].tolist() == [True, True]
    assert goals.loc["B", ["violations_ok", "cost_ok"]].tolist() == [False, False]
    mean = suite_mean(task_goals(_per_seed(), "p", "h"))
    assert mean["cost_ratio"] == pytest.approx(1.0)
    # per-seed mean differences over the two tasks: 0.006, 0.0045, 0.0045
    assert mean["violation_diff"] == pytest.approx(0.005)
    assert mean["violation_diff_ci95"] == pytest.approx(T_975_2 * 0.000866025 / 3 ** 0.5,
                                                        rel=1e-5)


def test_cli(tmp_path, capsys) -> None:  # noqa: ANN001
    path = tmp_path / "per_seed.csv"
    _per_seed().to_csv(path, index=False)
    assert main([str(path), "--policy", "p", "--heuristic", "h", "--ablation", "h"]) == 0
    out = capsys.readouterr().out
    assert "| A | test | 0.917 ± " in out and "1 of 2 (B not)" in out
    with pytest.raises(SystemExit):
        main([str(path), "--policy", "nope", "--heuristic", "h"])
    assert "no rows of policy 'nope'" in capsys.readouterr().err
