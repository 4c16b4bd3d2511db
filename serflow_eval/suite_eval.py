"""Evaluate policies on a benchmark suite: every (task, policy, seed) unit, per-task tables,
normalized scores against the heuristic and the oracle point, CSVs and a plot.

    python evaluate.py --suite v1 --split test \
        --policies serflow,libra,faas-only,vm-threshold,vm-peak,oracle:u=0.85 --seeds 3

A unit is :func:`play_suite_unit`: one policy on one seed of one task's scenario (seed ``i``
is ``env.reset(seed=i)`` for every policy: common random numbers). Units run one after
another or as Ray tasks (``--ray``, :func:`serflow_eval.ray_eval.ray_run_suite_units`) with
the same results. Scores and their CIs: :mod:`serflow_eval.suite_scores`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from agents import make_policy
from serflow_env.scenario import Scenario
from serflow_env.suite import BuiltTask, SkippedTask, Suite
from serflow_eval.metrics import episode_summary
from serflow_eval.model_files import replaced_atomically
from serflow_eval.runner import run_episode
from serflow_eval.suite_scores import (
    ORACLE_PREFIX,
    is_oracle,
    oracle_points,
    suite_table,
    task_table,
)

#: a unit: (task name, split, scenario, policy spec, seed)
Unit = tuple[str, str, Scenario, str, int]
UNIT_COLUMNS = ("task", "split", "policy", "seed")


def play_suite_unit(task: str, split: str, scenario: Scenario, spec: str, seed: int,
                    simulator: str = "fast") -> dict[str, Any]:
    """One (task, policy, seed) unit: the policy's whole episode on the task's scenario from
    the start of its trace window, summarised (a per_seed.csv row)."""
    policy = make_policy(spec, scenario)
    timeseries = run_episode(policy, spec, scenario, seed, scenario.episode_steps,
                             simulator=simulator)
    row = episode_summary(timeseries).iloc[0].to_dict()
    return {"task": task, "split": split, **row}


def suite_units(tasks: Sequence[BuiltTask], specs: Sequence[str],
                seeds: Sequence[int]) -> list[Unit]:
    """Every (task, policy, seed), task by task, policy by policy, seed by seed."""
    return [(t.name, t.task.split, t.scenario, spec, seed)
            for t in tasks for spec in specs for seed in seeds]


def run_suite_units(units: Sequence[Unit], simulator: str = "fast",
                    on_unit: Callable[[], None] | None = None) -> pd.DataFrame:
    """The units one after another: one per_seed row each, in the units' order."""
    rows = []
    for unit in units:
        rows.append(play_suite_unit(*unit, simulator=simulator))
        if on_unit is not None:
            on_unit()
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SuiteResult:
    """What a suite evaluation measured and scored."""

    per_seed: pd.DataFrame  # one row per (task, policy, seed)
    tasks: pd.DataFrame  # one row per (task, policy): means, CIs, score, oracle point
    scores: pd.DataFrame  # one row per policy: the suite means
    points: pd.DataFrame  # one row per task: the oracle point and headroom
    heuristic: str
    has_oracle: bool


def score_suite(per_seed: pd.DataFrame, heuristic: str,
                prefix: str = ORACLE_PREFIX) -> SuiteResult:
    """Tables and scores of measured units (see :mod:`serflow_eval.suite_scores`)."""
    tasks, influences = task_table(per_seed, heuristic, prefix)
    return SuiteResult(per_seed, tasks, suite_table(per_seed, tasks, influences),
                       oracle_points(per_seed, heuristic, prefix), heuristic,
                       any(is_oracle(p, prefix) for p in per_seed["policy"].unique()))


def evaluate_suite(tasks: Sequence[BuiltTask], specs: Sequence[str], seeds: Sequence[int],
                   heuristic: str, *, simulator: str = "fast", use_ray: bool = False,
                   on_unit: Callable[[], None] | None = None) -> SuiteResult:
    """Run every unit (serially or as Ray tasks) and score them."""
    if heuristic not in specs:
        raise ValueError(f"heuristic {heuristic!r} is not among the policies {list(specs)}")
    if not tasks:
        raise ValueError("no task to run (every selected task was skipped or none matched)")
    one_per_preset = list({t.task.scenario: t for t in tasks}.values())
    for spec in specs:  # a bad spec (or a preset's missing agent) fails before any unit runs
        for task in one_per_preset:
            make_policy(spec, task.scenario)
    units = suite_units(tasks, specs, seeds)
    if use_ray:
        from serflow_eval.ray_eval import ray_run_suite_units

        per_seed = ray_run_suite_units(units, simulator, on_unit)
    else:
        per_seed = run_suite_units(units, simulator, on_unit)
    return score_suite(per_seed, heuristic)


# --------------------------------------------------------------------------------------------
# Files


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` to ``path`` atomically (a temporary file renamed into place)."""
    with replaced_atomically(Path(path)) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def write_outputs(result: SuiteResult, skipped: Sequence[SkippedTask], out: Path,
                  labels: Mapping[str, str] | None = None) -> list[Path]:
    """per_seed.csv, tasks.csv, scores.csv, oracle_points.csv, skipped.csv (if any) and the
    plot of scores per task (or of costs relative to the heuristic without an oracle)."""
    from serflow_eval import plots

    out.mkdir(parents=True, exist_ok=True)
    written = [write_csv(result.per_seed, out / "per_seed.csv"),
               write_csv(result.tasks, out / "tasks.csv"),
               write_csv(result.scores, out / "scores.csv"),
               write_csv(result.points, out / "oracle_points.csv")]
    if skipped:
        written.append(write_csv(pd.DataFrame([vars(s) for s in skipped]),
                                 out / "skipped.csv"))
    if result.has_oracle:
        written.append(plots.plot_suite_scores(
            result.tasks, "score", out / "suite_scores.png",
            f"Normalized score per task (0 = {result.heuristic}, 1 = oracle point; 95 % CI "
            "over seeds)", labels))
    else:
        written.append(plots.plot_suite_scores(
            result.tasks, "cost_vs_heuristic", out / "suite_relative_cost.png",
            f"Cost relative to {result.heuristic} per task (mean, 95 % CI over seeds)",
            labels, reference_lines=(1.0,)))
    return written


# --------------------------------------------------------------------------------------------
# Terminal tables


def _pm(mean: float, ci: float, fmt: str, scale: float = 1.0) -> str:
    if pd.isna(mean):
        return "-"
    text = fmt.format(mean * scale)
    return text if pd.isna(ci) else f"{text} ± {fmt.format(ci * scale)}"


def _label(policy: str, labels: Mapping[str, str] | None) -> str:
    return (labels or {}).get(policy, policy)


def task_rich_table(result: SuiteResult, labels: Mapping[str, str] | None = None) -> Table:
    """Per task and policy: cost, violations, p95 and the score (or the cost relative to the
    heuristic without an oracle); ``◆`` marks the task's oracle point."""
    last = "score" if result.has_oracle else f"cost / {result.heuristic}"
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, caption_justify="left", caption=(
        "mean ± 95 % CI over seeds; viol. = SLO violation rate; p95 = pooled latency p95. "
        + (f"score = (cost_{result.heuristic} - cost) / (cost_{result.heuristic} - "
           "cost_oracle point), paired over seeds; ◆ = the task's oracle point (the cheapest "
           f"oracle spec with no more violations than {result.heuristic})."
           if result.has_oracle else f"cost / {result.heuristic}: mean cost over the "
           f"heuristic's, paired over seeds.")))
    for header in ("task", "policy"):
        table.add_column(header, no_wrap=True)
    for header in ("cost $", "viol. %", "p95 s", last):
        table.add_column(header, justify="right", no_wrap=True)
    points = result.points.set_index("task")["oracle"]
    for n, (task, group) in enumerate(result.tasks.groupby("task", sort=False)):
        if n:
            table.add_section()
        for i, (_, row) in enumerate(group.iterrows()):
            policy = str(row["policy"])
            mark = " ◆" if policy == points.get(task) else ""
            value = (_pm(row["score_mean"], row["score_ci95"], "{:.2f}") if result.has_oracle
                     else _pm(row["cost_vs_heuristic_mean"], row["cost_vs_heuristic_ci95"],
                              "{:.3f}"))
            table.add_row(str(task) if i == 0 else "", _label(policy, labels) + mark,
                          _pm(row["cost_usd_mean"], row["cost_usd_ci95"], "{:.3f}"),
                          _pm(row["slo_violation_rate_mean"], row["slo_violation_rate_ci95"],
                              "{:.2f}", 100.0),
                          f"{row['latency_p95_s_mean']:.3f}", value)
    return table


def points_rich_table(result: SuiteResult) -> Table:
    """Per task: the oracle point, the heuristic's cost and the headroom (or why none)."""
    table = Table(title=f"oracle point per task (headroom = its cost saving over "
                  f"{result.heuristic})", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for header, justify in (("task", "left"), ("oracle point", "left"),
                            (f"{result.heuristic} $", "right"), ("oracle $", "right"),
                            ("headroom %", "right"), ("note", "left")):
        table.add_column(header, justify=justify)
    for _, row in result.points.iterrows():
        table.add_row(str(row["task"]), row["oracle"] or "-",
                      f"{row['heuristic_cost_usd']:.3f}",
                      "-" if pd.isna(row["oracle_cost_usd"]) else f"{row['oracle_cost_usd']:.3f}",
                      "-" if pd.isna(row["headroom_pct"]) else f"{row['headroom_pct']:.1f}",
                      str(row["note"]))
    return table


def suite_rich_table(result: SuiteResult, labels: Mapping[str, str] | None = None) -> Table:
    """Per policy: the suite score, the cost relative to the heuristic and violations."""
    table = Table(title="suite means over tasks (95 % CI over seeds, paired)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  caption=f"viol. > {result.heuristic}: tasks where the policy's mean violation "
                  "rate exceeds the heuristic's", caption_justify="left")
    table.add_column("policy", no_wrap=True)
    columns = ([("score", "right")] if result.has_oracle else []) + [
        (f"cost / {result.heuristic}", "right"), ("viol. %", "right"),
        (f"viol. > {result.heuristic}", "right")]
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)
    for _, row in result.scores.iterrows():
        cells = []
        if result.has_oracle:
            cells.append(_pm(row["score_mean"], row["score_ci95"], "{:.2f}")
                         + f" ({row['score_tasks']} task{'s' if row['score_tasks'] != 1 else ''})")
        cells += [_pm(row["cost_vs_heuristic_mean"], row["cost_vs_heuristic_ci95"], "{:.3f}"),
                  _pm(row["slo_violation_rate_mean"], row["slo_violation_rate_ci95"], "{:.2f}",
                      100.0),
                  f"{row['tasks_more_violations']} of {row['tasks']}"]
        table.add_row(_label(str(row["policy"]), labels), *cells)
    return table


def print_suite(result: SuiteResult, suite: Suite, split_label: str, seeds: Sequence[int],
                skipped: Sequence[SkippedTask], console: Console,
                labels: Mapping[str, str] | None = None) -> None:
    """The per-task table, the oracle points (or the note that no oracle was given), the
    suite means and the skipped tasks."""
    tasks = result.tasks["task"].nunique()
    console.print(f"[bold]suite {suite.name} (version {suite.version}), {split_label}: {tasks} "
                  f"task{'s' if tasks != 1 else ''} x {result.per_seed['policy'].nunique()} "
                  f"policies x {len(seeds)} seed{'s' if len(seeds) != 1 else ''}[/bold]")
    console.print(task_rich_table(result, labels))
    if result.has_oracle:
        console.print(points_rich_table(result))
    else:
        console.print(f"[yellow]no oracle spec given (--policies ...,{ORACLE_PREFIX}:u=0.85): "
                      "normalized scores need the oracle; costs are shown relative to the "
                      f"heuristic {result.heuristic} instead[/yellow]")
    console.print(suite_rich_table(result, labels))
    for spec, label in (labels or {}).items():
        if label != spec:
            console.print(f"{label} = {spec}", soft_wrap=True)
    for skip in skipped:
        console.print(f"[yellow]{skip.message}[/yellow]", soft_wrap=True)
