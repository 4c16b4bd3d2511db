"""Issue 14's generalisation goals, checked on a suite evaluation's ``per_seed.csv``.

For a learned policy (e.g. ``ppo-suite:runs/v1-ppo``), per task against the heuristic:

* **violations**: the paired difference of SLO violation rates (policy - heuristic, seed by
  seed) has a mean at most its 95 % CI half-width (no significant excess);
* **cost**: the mean cost relative to the heuristic (ratio of paired means,
  :func:`serflow_eval.suite_scores.ratio_influence`) is at most 1;

and, on the suite mean, against its ablation (``load-map``: the same action map with a zero
agent action): the learning's share, the mean over tasks of its cost relative to the ablation
(goal: at most 0.97) at a mean paired violation difference not significantly above 0.

    python -m serflow_eval.suite_goals results/suite_rl_test/per_seed.csv \
        --policy ppo-suite:runs/v1-ppo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from serflow_eval.metrics import mean_ci
from serflow_eval.suite_scores import half_width, ratio_influence

#: the issue's goal for what learning adds over the ablation: 3 % cheaper
LEARNING_GOAL = 0.97


def _paired(per_seed: pd.DataFrame, task: str, policy: str, metric: str) -> pd.Series:
    rows = per_seed[(per_seed["task"] == task) & (per_seed["policy"] == policy)]
    if rows.empty:
        raise ValueError(f"per_seed: no rows of policy {policy!r} on task {task!r}")
    return rows.set_index("seed")[metric].sort_index()


def task_goals(per_seed: pd.DataFrame, policy: str, reference: str) -> pd.DataFrame:
    """One row per task: ``policy``'s cost relative to ``reference`` and the paired
    violation-rate difference, each mean and 95 % CI over seeds, and whether each goal holds."""
    rows = []
    for task in dict.fromkeys(per_seed["task"]):
        p_cost = _paired(per_seed, task, policy, "cost_usd")
        r_cost = _paired(per_seed, task, reference, "cost_usd")
        if list(p_cost.index) != list(r_cost.index):
            raise ValueError(f"task {task!r}: {policy} ran on seeds {list(p_cost.index)}, "
                             f"{reference} on {list(r_cost.index)}; pairing needs the same")
        ratio, z = ratio_influence(p_cost.to_numpy(), r_cost.to_numpy())
        p_viol = _paired(per_seed, task, policy, "slo_violation_rate")
        r_viol = _paired(per_seed, task, reference, "slo_violation_rate")
        diff, diff_ci = mean_ci((p_viol - r_viol).to_numpy())
        split = per_seed.loc[per_seed["task"] == task, "split"].iloc[0] \
            if "split" in per_seed else ""
        rows.append({"task": task, "split": split, "cost_ratio": ratio,
                     "cost_ratio_ci95": half_width(z),
                     "violation_rate": float(p_viol.mean()),
                     "reference_violation_rate": float(r_viol.mean()),
                     "violation_diff": diff, "violation_diff_ci95": diff_ci,
                     "violations_ok": bool(diff <= (0.0 if np.isnan(diff_ci) else diff_ci)),
                     "cost_ok": bool(ratio <= 1.0), "_z": z,
                     "_viol_diff": (p_viol - r_viol).to_numpy()})
    return pd.DataFrame(rows)


def suite_mean(goals: pd.DataFrame) -> dict[str, float]:
    """Means over tasks of the cost ratio and the violation difference, with the paired CIs
    of the per-seed means over tasks (the seeds are common to all tasks)."""
    return {"cost_ratio": float(goals["cost_ratio"].mean()),
            "cost_ratio_ci95": half_width(np.mean(np.stack(goals["_z"].to_list()), axis=0)),
            "violation_diff": float(goals["violation_diff"].mean()),
            "violation_diff_ci95": mean_ci(
                np.mean(np.stack(goals["_viol_diff"].to_list()), axis=0))[1]}


def markdown(per_seed: pd.DataFrame, policy: str, heuristic: str, ablation: str) -> str:
    """The per-task goal table against the heuristic and the suite means against the
    heuristic and the ablation, as Markdown."""
    vs_h = task_goals(per_seed, policy, heuristic)
    vs_a = task_goals(per_seed, policy, ablation)
    abl_h = task_goals(per_seed, ablation, heuristic)
    lines = [f"| task | split | cost / {heuristic} | violations % ({heuristic} %) | "
             f"diff pp | goals met | cost / {ablation} |", "|---|---|---|---|---|---|---|"]
    for (_, h), (_, a) in zip(vs_h.iterrows(), vs_a.iterrows()):
        met = ("both" if h["violations_ok"] and h["cost_ok"] else
               "violations only" if h["violations_ok"] else
               "cost only" if h["cost_ok"] else "neither")
        lines.append(
            f"| {h['task']} | {h['split']} | {h['cost_ratio']:.3f} ± {h['cost_ratio_ci95']:.3f} "
            f"| {100 * h['violation_rate']:.3f} ({100 * h['reference_violation_rate']:.3f}) | "
            f"{100 * h['violation_diff']:+.3f} ± {100 * h['violation_diff_ci95']:.3f} | {met} | "
            f"{a['cost_ratio']:.3f} ± {a['cost_ratio_ci95']:.3f} |")
    lines.append("")
    for label, goals in ((f"{policy} vs {heuristic}", vs_h), (f"{ablation} vs {heuristic}",
                                                               abl_h),
                         (f"{policy} vs {ablation}", vs_a)):
        m = suite_mean(goals)
        lines.append(f"* suite mean, {label}: cost {m['cost_ratio']:.3f} ± "
                     f"{m['cost_ratio_ci95']:.3f}, violations {100 * m['violation_diff']:+.3f} "
                     f"± {100 * m['violation_diff_ci95']:.3f} pp")
    ok = vs_h["violations_ok"] & vs_h["cost_ok"]
    m = suite_mean(vs_a)
    learned = m["cost_ratio"] <= LEARNING_GOAL and m["violation_diff"] <= m["violation_diff_ci95"]
    lines += [f"* tasks meeting both goals against {heuristic}: {int(ok.sum())} of {len(ok)} "
              f"({', '.join(vs_h.loc[~ok, 'task']) or 'none'} not)",
              f"* learning goal (cost / {ablation} <= {LEARNING_GOAL} at no significant "
              f"violation excess): {'met' if learned else 'not met'}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("per_seed", help="per_seed.csv of evaluate.py --suite")
    parser.add_argument("--policy", required=True, help="the learned policy's spec")
    parser.add_argument("--heuristic", default="serflow")
    parser.add_argument("--ablation", default="load-map")
    args = parser.parse_args(argv)
    try:
        per_seed = pd.read_csv(args.per_seed)
        print(markdown(per_seed, args.policy, args.heuristic, args.ablation))
    except (OSError, ValueError, KeyError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
