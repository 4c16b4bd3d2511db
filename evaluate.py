"""Compare serving policies side by side on the SERFLOW environment.

    python evaluate.py                       # default scenario, built-in trace -> results/
    python evaluate.py --scenario branchynet-resnet --trace bursty_mmpp_1h.txt@0:1800 \
        --policies serflow,libra,faas-only,vm-threshold --seeds 5 --random-start --out DIR
    python evaluate.py --sweep --out DIR     # exit skew x traffic level
    python evaluate.py --ray [--address auto] # units as Ray tasks: local cores or a cluster
    python evaluate.py --suite v1 --split test --policies serflow,libra,oracle:u=0.85
                                             # a benchmark suite: normalized scores per task

Every policy runs on the same seeds (seed i: ``env.reset(seed=i)``; common random numbers),
so differences come from the policy. Writes ``summary.csv`` (mean and 95 % CI over seeds per
policy), ``per_seed.csv``, ``comparisons.csv`` (the first policy against each other one, seed
by seed), ``timeseries.csv`` (every control interval) and plots, and prints the table. Policies
are built by :func:`agents.make_policy` (``serflow``, ``libra``, ``faas-only``,
``vm-threshold``, ``vm-peak``, ``load-map`` (the RL agents' load action map with a zero agent
action, an ablation), ``oracle:u=0.85`` (the perfect-foresight optimum: it reads the trace
ahead, so it is starred and refuses ``--random-start``), and trained agents as
``ppo:PATH.zip`` / ``sac:PATH.zip`` / ``recurrentppo:PATH.zip``). Traces:
a file, a shipped one by name (``traces/NAME.txt``), or ``PATH@START:END`` seconds of it.
With ``--suite``: every (task, policy, seed) of the split, per-task tables and normalized
scores against the heuristic and the oracle point (``serflow_eval.suite_eval``,
docs/SUITE.md), written to ``results/suite-NAME-SPLIT`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console

from serflow_env.scenario import Scenario, ScenarioError, load_scenario
from serflow_env.suite import SPLITS
from serflow_eval.cli import (
    add_policies_argument,
    add_set_argument,
    policy_list,
    scenario_overrides,
)
from serflow_eval.simulators import SIMULATORS, SimulatorUnavailable
from serflow_eval.table import make_console, print_tables

DEFAULT_POLICIES = "serflow,libra,faas-only,vm-threshold,vm-peak"
DEFAULT_SWEEP_POLICIES = "serflow,libra,faas-only"


def _float_list(name: str, text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise SystemExit(f"{name}: expected comma-separated numbers, got {text!r}") from exc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario",
                        help="preset name or YAML path (default: default)")
    parser.add_argument("--trace", help="trace file (LIBRA or Azure format), PATH or "
                        "PATH@START:END seconds as in train.py; overrides arrivals.trace "
                        "(default: the scenario's own, generated)")
    add_policies_argument(parser, f"policy specs; the first is compared with the others "
                          f"(default: {DEFAULT_POLICIES}; with --sweep: "
                          f"{DEFAULT_SWEEP_POLICIES})")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--out", help="output folder (default: results; with --suite: "
                        "results/suite-NAME-SPLIT)")
    parser.add_argument("--episode-steps", type=int,
                        help="control intervals per episode (default: the scenario's)")
    parser.add_argument("--start-s", type=float, help="trace position of every episode start")
    parser.add_argument("--random-start", action="store_true",
                        help="start each seed's episode at a random point of the trace")
    add_set_argument(parser)
    parser.add_argument("--simulator", default="fast", choices=SIMULATORS,
                        help="fast (vectorized model) or reference (per-request simulator)")
    parser.add_argument("--sweep", action="store_true",
                        help="sweep exit skew and traffic level instead of one evaluation")
    parser.add_argument("--sweep-exit-probs", default="0,0.2,0.4,0.6,0.8",
                        help="internal exit probabilities of the sweep")
    parser.add_argument("--sweep-scales", default="0.5,1,2",
                        help="traffic multipliers of the sweep")
    parser.add_argument("--suite", help="run a benchmark suite instead of one scenario: a "
                        "shipped one by name (v1) or a suite YAML path (docs/SUITE.md)")
    parser.add_argument("--split", default="test", choices=(*SPLITS, "all"),
                        help="with --suite: the tasks of this split (default: test)")
    parser.add_argument("--tasks", help="with --suite: only these tasks (comma-separated)")
    parser.add_argument("--heuristic", default="serflow",
                        help="with --suite: the policy that scores 0 (default: serflow; one of "
                        "--policies); the oracle point, 1, is the cheapest oracle:... spec at "
                        "no more violations than it")
    parser.add_argument("--ray", action="store_true",
                        help="run the (policy, seed) units as Ray tasks (same results)")
    parser.add_argument("--address", help="with --ray: join this Ray cluster ('auto' or "
                        "HOST:PORT; default: a local Ray on this machine)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.address and not args.ray:
        parser.error("--address needs --ray")
    if not 1 <= args.seeds <= 10_000:
        parser.error(f"--seeds={args.seeds}: allowed 1..10000")
    if args.first_seed < 0:
        parser.error(f"--first-seed={args.first_seed}: allowed >= 0")
    if args.episode_steps is not None and not 1 <= args.episode_steps <= 10**6:
        parser.error(f"--episode-steps={args.episode_steps}: allowed 1..1000000")
    if args.start_s is not None and not args.start_s >= 0:
        parser.error(f"--start-s={args.start_s}: allowed [0, inf)")
    if args.start_s is not None and args.random_start:
        parser.error("--start-s and --random-start exclude each other")
    if args.suite:
        given = [flag for flag, value in (("--sweep", args.sweep), ("--scenario", args.scenario),
                 ("--trace", args.trace), ("--episode-steps", args.episode_steps),
                 ("--start-s", args.start_s), ("--random-start", args.random_start)) if value]
        if given:
            parser.error(f"--suite sets each task's scenario, trace window and episode; it "
                         f"excludes {', '.join(given)}")
    elif args.tasks or args.split != "test" or args.heuristic != "serflow":
        parser.error("--split, --tasks and --heuristic need --suite")
    if args.policies is None:
        args.policies = [DEFAULT_SWEEP_POLICIES if args.sweep else DEFAULT_POLICIES]
    args.policy_list = policy_list(args.policies)
    if not args.policy_list:
        parser.error("--policies: give at least one policy")
    twice = sorted({p for p in args.policy_list if args.policy_list.count(p) > 1})
    if twice:
        parser.error(f"--policies: listed twice: {twice}")
    try:
        args.overrides = scenario_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    if args.sweep and len(args.policy_list) < 2:
        parser.error("--sweep needs at least two policies (the first is compared)")
    if args.suite and args.heuristic not in args.policy_list:
        parser.error(f"--heuristic {args.heuristic!r} must be one of --policies "
                     f"{args.policy_list}")
    if args.out is None:
        args.out = (f"results/suite-{Path(args.suite).stem}-{args.split}" if args.suite
                    else "results")
    return args


def build_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario with the command line's overrides applied."""
    from agents.rl.config import parse_trace_spec

    overrides: dict[str, Any] = {}
    if args.trace:
        overrides["arrivals.trace"] = parse_trace_spec(args.trace)
    if args.episode_steps is not None:
        overrides["episode_steps"] = args.episode_steps
    if args.random_start:
        overrides["arrivals.random_start"] = True
    overrides.update(args.overrides)
    return load_scenario(args.scenario or "default", **overrides)


def _progress(total: int, disable: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="step", desc="evaluating", disable=disable, leave=False,
                mininterval=0.5)


def _runner(args: argparse.Namespace) -> Callable[..., Any]:
    if not args.ray:
        from serflow_eval.runner import run_policies

        return run_policies
    from serflow_eval.ray_eval import ray_run_policies

    return ray_run_policies


def evaluate(args: argparse.Namespace, scenario: Scenario, console: Console) -> int:
    # imported here, after argument parsing, so that --help does not load torch and matplotlib
    from serflow_eval import plots
    from serflow_eval.labels import policy_labels
    from serflow_eval.metrics import episode_summary, paired_comparisons, summarise

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    steps = scenario.episode_steps
    options = {"start_s": args.start_s} if args.start_s is not None else None
    with _progress(len(args.policy_list) * len(seeds) * steps, args.no_progress) as bar:
        ts = _runner(args)(args.policy_list, scenario, seeds, steps, simulator=args.simulator,
                          options=options, on_step=lambda: bar.update())
    per_seed = episode_summary(ts)
    summary = summarise(per_seed)
    comparisons = paired_comparisons(per_seed, args.policy_list[0])
    ts.to_csv(out / "timeseries.csv", index=False)
    per_seed.to_csv(out / "per_seed.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    comparisons.to_csv(out / "comparisons.csv", index=False)
    labels = policy_labels(args.policy_list)
    figures = [
        plots.plot_traffic(ts, seeds[0], out / "traffic_vms.png", labels),
        plots.plot_latency(ts, seeds[0], scenario.slo_deadline_s, out / "latency_p95.png",
                           labels),
        plots.plot_cost_components(summary, out / "cost_components.png", labels),
        plots.plot_cost_vs_violations(summary, out / "cost_vs_violations.png", labels),
    ]
    title = (f"{scenario.name} scenario, trace {trace_label(scenario)}, {args.simulator} "
             f"simulator: {len(seeds)} seed{'s' if len(seeds) != 1 else ''} x {steps} "
             f"intervals of {scenario.control_interval_s:g} s{_start_label(args)}")
    print_tables(summary, comparisons, title, console, labels)
    console.print(f"wrote {out}/: summary.csv, per_seed.csv, comparisons.csv, timeseries.csv; "
                  f"plots {', '.join(f.name for f in figures)}", soft_wrap=True)
    return 0


def trace_label(scenario: Scenario) -> str:
    """The scenario's trace as a reader knows it: a file name (with its window), or the
    generator that made it."""
    from serflow_env.arrivals import resolve_trace

    trace = scenario.arrivals.trace
    if isinstance(trace, list):
        return f"{len(trace)} traces (one per episode)"
    name = resolve_trace(trace).name
    return f"{name} (generated)" if isinstance(trace, dict) else name


def _start_label(args: argparse.Namespace) -> str:
    if args.random_start:
        return " from random starts"
    return f" from {args.start_s:g} s" if args.start_s is not None else ""


def sweep(args: argparse.Namespace, scenario: Scenario, console: Console) -> int:
    from serflow_eval import plots
    from serflow_eval.sweep import run_sweep

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    probs = _float_list("--sweep-exit-probs", args.sweep_exit_probs)
    scales = _float_list("--sweep-scales", args.sweep_scales)
    if not probs or not scales:
        raise SystemExit("--sweep-exit-probs and --sweep-scales need at least one value each")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    steps = scenario.episode_steps
    options = {"start_s": args.start_s} if args.start_s is not None else None
    total = len(probs) * len(scales) * len(args.policy_list) * len(seeds) * steps
    with _progress(total, args.no_progress) as bar:
        per_seed, compared = run_sweep(scenario, args.policy_list, seeds, steps, probs, scales,
                                       simulator=args.simulator, options=options,
                                       on_step=lambda: bar.update(), runner=_runner(args))
    per_seed.to_csv(out / "sweep_per_seed.csv", index=False)
    compared.to_csv(out / "sweep.csv", index=False)
    plots.plot_sweep(compared, out / "sweep_savings.png")
    cols = ["exit_probability", "scale", "baseline", "saving_pct_mean", "cost_ratio_ci95",
            "violation_diff_pp_mean", "violation_diff_pp_ci95", "claim_holds"]
    console.print(compared[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    console.print(f"wrote {out}/sweep.csv, sweep_per_seed.csv and sweep_savings.png")
    return 0


def suite(args: argparse.Namespace, console: Console) -> int:
    """Every (task, policy, seed) of the suite's split; tables, scores, CSVs and a plot."""
    from serflow_env.suite import build_tasks, load_suite
    from serflow_eval.labels import policy_labels
    from serflow_eval.suite_eval import evaluate_suite, print_suite, write_outputs

    spec = load_suite(args.suite)
    splits = None if args.split == "all" else [args.split]
    names = [n.strip() for n in args.tasks.split(",") if n.strip()] if args.tasks else None
    tasks, skipped = build_tasks(spec, splits, names, overrides=args.overrides, on_skip=None)
    for skip in skipped:  # before the run, so a long run does not hide them
        console.print(f"[yellow]{skip.message}[/yellow]", soft_wrap=True)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    units = len(tasks) * len(args.policy_list) * len(seeds)
    from tqdm import tqdm

    with tqdm(total=units, unit="unit", desc="evaluating", disable=args.no_progress,
              leave=False, mininterval=0.5) as bar:
        result = evaluate_suite(tasks, args.policy_list, seeds, args.heuristic,
                                simulator=args.simulator, use_ray=args.ray,
                                on_unit=lambda: bar.update())
    labels = policy_labels(args.policy_list)
    print_suite(result, spec, f"split {args.split}", seeds, skipped, console, labels)
    written = write_outputs(result, skipped, Path(args.out), labels)
    console.print(f"wrote {args.out}/: {', '.join(p.name for p in written)}", soft_wrap=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = make_console()
    started = time.perf_counter()
    try:
        scenario = None if args.suite else build_scenario(args)
        if args.ray:
            from serflow_eval.ray_session import ray_session
        with ray_session(args.address) if args.ray else nullcontext():
            if args.suite:
                code = suite(args, console)
            else:
                code = (sweep if args.sweep else evaluate)(args, scenario, console)
    except (ScenarioError, SimulatorUnavailable, FileNotFoundError, ValueError,
            ImportError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    console.print(f"done in {time.perf_counter() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
