"""Normalized scores of a benchmark suite: the share of the heuristic-to-oracle cost headroom
that a policy closes on each task, with paired 95 % CIs over seeds, and the suite mean.

Definitions (docs/SUITE.md). Seed ``i`` means ``env.reset(seed=i)`` for every policy (common
random numbers), so costs are compared seed by seed. On task t, with ``h``, ``p`` and ``o``
the episode costs of the heuristic, the policy and the task's oracle point:

* the **oracle point** is, of the given specs whose prefix is ``oracle`` (``oracle:u=0.85``,
  ...), the one with the lowest mean cost among those whose mean SLO violation rate is at most
  the heuristic's on that task (none qualifies: the task has no score);
* the **score** is ``R_t = mean_i(h_ti - p_ti) / mean_i(h_ti - o_ti)``: 0 is the heuristic,
  1 the oracle point, below 0 dearer than the heuristic (undefined without headroom,
  ``mean_i(h_ti - o_ti) <= 0``);
* its **CI** is the delta method for a ratio of paired means: each seed's influence
  ``z_ti = ((h_ti - p_ti) - R_t (h_ti - o_ti)) / mean_i(h_ti - o_ti)``, half-width
  ``t_{0.975, n-1} * sd(z_t) / sqrt(n)`` over the n seeds;
* the **suite score** is the mean of ``R_t`` over the scored tasks, its CI the same rule on
  the per-seed mean influence ``z_i = mean_t z_ti`` (the seeds are common to all tasks).

Costs relative to the heuristic (``mean_i p_ti / mean_i h_ti``), reported with or without an
oracle, use the same ratio estimator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from serflow_eval.metrics import mean_ci

ORACLE_PREFIX = "oracle"
#: per-seed metrics the tables report per task (mean and 95 % CI over seeds)
TASK_METRICS = ("cost_usd", "slo_violation_rate", "latency_p95_s")


def is_oracle(spec: str, prefix: str = ORACLE_PREFIX) -> bool:
    """True for specs ``oracle`` and ``oracle:...`` (the policies that know the trace)."""
    return spec.partition(":")[0] == prefix


def ratio_influence(num: np.ndarray, den: np.ndarray) -> tuple[float, np.ndarray]:
    """``R = mean(num) / mean(den)`` of paired samples and each sample's influence
    ``(num_i - R den_i) / mean(den)`` (its first-order effect on R; they sum to 0)."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    ratio = a.mean() / b.mean()
    return float(ratio), (a - ratio * b) / b.mean()


def half_width(influence: np.ndarray) -> float:
    """95 % Student-t half-width of a mean whose per-seed influences are given (NaN with
    fewer than two seeds)."""
    z = np.asarray(influence, dtype=float)
    if z.size < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, z.size - 1) * z.std(ddof=1) / np.sqrt(z.size))


def _costs(per_seed: pd.DataFrame, task: str, policy: str, seeds: Sequence[int]) -> np.ndarray:
    rows = per_seed[(per_seed["task"] == task) & (per_seed["policy"] == policy)]
    return rows.set_index("seed").loc[list(seeds), "cost_usd"].to_numpy(dtype=float)


def _seeds(per_seed: pd.DataFrame, task: str) -> list[int]:
    """The seeds every policy ran on ``task`` (the paired comparisons use these)."""
    rows = per_seed[per_seed["task"] == task]
    common = None
    for _, group in rows.groupby("policy", sort=False):
        seeds = set(group["seed"])
        common = seeds if common is None else common & seeds
    return sorted(common or ())


def oracle_points(per_seed: pd.DataFrame, heuristic: str,
                  prefix: str = ORACLE_PREFIX) -> pd.DataFrame:
    """Per task: the chosen oracle spec (``""`` where none qualifies), its mean cost and
    violation rate, the heuristic's, the headroom ``mean(h - o) / mean(h)`` in % and a note
    saying why a task has no score."""
    rows = []
    for task, group in per_seed.groupby("task", sort=False):
        means = group.groupby("policy", sort=False)[["cost_usd", "slo_violation_rate"]].mean()
        if heuristic not in means.index:
            raise ValueError(f"task {task!r}: the heuristic {heuristic!r} was not run; "
                             f"policies: {list(means.index)}")
        h_cost, h_viol = means.loc[heuristic]
        specs = [s for s in means.index if is_oracle(s, prefix)]
        fair = [s for s in specs if means.loc[s, "slo_violation_rate"] <= h_viol]
        row = {"task": task, "heuristic_cost_usd": h_cost, "heuristic_violation_rate": h_viol,
               "oracle_specs": len(specs), "oracle": "", "oracle_cost_usd": np.nan,
               "oracle_violation_rate": np.nan, "headroom_pct": np.nan, "note": ""}
        if not specs:
            row["note"] = "no oracle spec run"
        elif not fair:
            row["note"] = (f"every oracle spec has more violations than {heuristic} "
                           f"({100 * h_viol:.3f} %)")
        else:
            best = min(fair, key=lambda s: means.loc[s, "cost_usd"])  # first of equals
            seeds = _seeds(per_seed, task)
            h = _costs(per_seed, task, heuristic, seeds)
            o = _costs(per_seed, task, best, seeds)
            row.update(oracle=best, oracle_cost_usd=means.loc[best, "cost_usd"],
                       oracle_violation_rate=means.loc[best, "slo_violation_rate"],
                       headroom_pct=100.0 * (h - o).mean() / h.mean())
            if not (h - o).mean() > 0:
                row["note"] = f"no headroom: {best} costs no less than {heuristic}"
        rows.append(row)
    return pd.DataFrame(rows)


def task_table(per_seed: pd.DataFrame, heuristic: str,
               prefix: str = ORACLE_PREFIX) -> tuple[pd.DataFrame, dict]:
    """One row per (task, policy): each of :data:`TASK_METRICS` as mean and 95 % CI over
    seeds, the cost relative to the heuristic and the normalized score (each with its paired
    CI), the task's oracle point and headroom, and whether the policy has more violations than
    the heuristic. Also returns the per-seed influences ``{(task, policy, kind): z}`` (kind
    ``score`` or ``relative_cost``) that :func:`suite_table` combines."""
    points = oracle_points(per_seed, heuristic, prefix).set_index("task")
    rows, influences = [], {}
    for task, group in per_seed.groupby("task", sort=False):
        seeds = _seeds(per_seed, task)
        point = points.loc[task]
        h = _costs(per_seed, task, heuristic, seeds)
        o = _costs(per_seed, task, point["oracle"], seeds) if point["oracle"] else None
        scored = o is not None and (h - o).mean() > 0
        h_viol = point["heuristic_violation_rate"]
        # the same groupby means as oracle_points (a Series' own mean can differ in the last
        # bit, which flagged the heuristic as having more violations than itself)
        violations = group.groupby("policy", sort=False)["slo_violation_rate"].mean()
        for policy, runs in group.groupby("policy", sort=False):
            row: dict[str, object] = {"task": task}
            if "split" in runs:
                row["split"] = runs["split"].iloc[0]
            row.update(policy=policy, seeds=len(runs))
            for metric in TASK_METRICS:
                row[f"{metric}_mean"], row[f"{metric}_ci95"] = mean_ci(runs[metric].to_numpy())
            p = _costs(per_seed, task, policy, seeds)
            rel, z_rel = ratio_influence(p, h)
            row["cost_vs_heuristic_mean"], row["cost_vs_heuristic_ci95"] = rel, half_width(z_rel)
            influences[(task, policy, "relative_cost")] = z_rel
            if scored:
                score, z = ratio_influence(h - p, h - o)
                row["score_mean"], row["score_ci95"] = score, half_width(z)
                influences[(task, policy, "score")] = z
            else:
                row["score_mean"] = row["score_ci95"] = np.nan
            row["more_violations_than_heuristic"] = bool(violations[policy] > h_viol)
            row["oracle"] = point["oracle"]
            row["headroom_pct"] = point["headroom_pct"]
            row["note"] = point["note"]
            rows.append(row)
    return pd.DataFrame(rows), influences


def suite_table(per_seed: pd.DataFrame, tasks: pd.DataFrame, influences: dict) -> pd.DataFrame:
    """One row per policy: its suite score (the mean of its task scores over the tasks that
    have one) and mean cost relative to the heuristic (over all tasks), each with the paired
    CI of the per-seed mean influences; the mean violation rate over tasks with its CI over
    seeds; the task counts."""
    task_names = list(dict.fromkeys(tasks["task"]))
    common = _seeds(per_seed, task_names[0])
    for task in task_names[1:]:
        if _seeds(per_seed, task) != common:
            raise ValueError(f"suite_table: task {task!r} ran on seeds {_seeds(per_seed, task)}"
                             f", task {task_names[0]!r} on {common}; the paired suite CI "
                             "needs the same seeds on every task")
    rows = []
    for policy, group in tasks.groupby("policy", sort=False):
        row: dict[str, object] = {"policy": policy, "tasks": len(group)}
        for kind, column, task_set in (("score", "score", group.dropna(subset=["score_mean"])),
                                       ("relative_cost", "cost_vs_heuristic", group)):
            names = list(task_set["task"])
            row[f"{column}_tasks"] = len(names)
            if not names:
                row[f"{column}_mean"] = row[f"{column}_ci95"] = np.nan
                continue
            row[f"{column}_mean"] = float(task_set[f"{column}_mean"].mean())
            z = np.mean([influences[(t, policy, kind)] for t in names], axis=0)
            row[f"{column}_ci95"] = half_width(z)
        viol = per_seed[per_seed["policy"] == policy].pivot_table(
            index="seed", columns="task", values="slo_violation_rate").loc[common, task_names]
        row["slo_violation_rate_mean"] = float(viol.to_numpy().mean())
        row["slo_violation_rate_ci95"] = half_width(viol.mean(axis=1).to_numpy())
        row["tasks_more_violations"] = int(group["more_violations_than_heuristic"].sum())
        rows.append(row)
    return pd.DataFrame(rows)

