"""Wall time of the suite benchmark: suite v1's test split with the five heuristics (and the
oracle specs where ``agents`` knows the ``oracle`` policy), 3 seeds, units one after another.

    python benchmarks/bench_suite.py                      # the issue's budget: <= 10 min
    python benchmarks/bench_suite.py --policies serflow,libra --seeds 1 --ray
    python benchmarks/bench_suite.py --agents load-map,ppo-suite:runs/v1-ppo   # + the agents

Runs exactly ``python evaluate.py --suite ...`` (printed first) and reports the wall time, the
units and the env steps per second, with the machine's load average before and after (on a
shared machine the time depends on the other jobs).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import evaluate  # noqa: E402
from agents.policy import known_policies  # noqa: E402
from serflow_env.suite import build_tasks, load_suite  # noqa: E402

HEURISTICS = "serflow,libra,faas-only,vm-threshold,vm-peak"
#: the candidate grid's lowest-violation corner, always among the oracle points: a grid of the
#: validation tasks' winners alone left 3 of 8 test tasks without a point at no more
#: violations than the heuristic (quiet traffic, where the oracle's cold pools violate most)
SAFEST_ORACLE = "oracle:u=0.8:faas_weight=30"
#: oracle points of the cost-vs-violation curve, used when the oracle policy is registered:
#: the validation split's choice (step 1 of docs/regenerate/RESULTS_SUITE.sh: of 16 candidates
#: u in {0.8, 0.85, 0.9, 0.95} x faas_weight in {1, 3, 10, 30}, those that were some validation
#: task's oracle point, 2 seeds, fast model of 2026-12-02 before the per-level cold starts)
#: and SAFEST_ORACLE
ORACLE_SPECS = ",".join(["oracle:u=0.8:faas_weight=3", "oracle:u=0.9:faas_weight=3",
                         "oracle:u=0.95:faas_weight=3", "oracle:u=0.85:faas_weight=3",
                         "oracle:u=0.85:faas_weight=1", "oracle:u=0.8:faas_weight=1",
                         "oracle:u=0.95:faas_weight=10", SAFEST_ORACLE])
BUDGET_S = 600.0


def chosen_oracle_specs(run_dir: Path) -> list[str]:
    """The distinct oracle specs that were some task's oracle point in an ``evaluate.py
    --suite`` run (its ``oracle_points.csv``), in the order first chosen, then
    :data:`SAFEST_ORACLE` if absent: the grid picked on a split other than the one it is then
    used on."""
    path = run_dir / "oracle_points.csv"
    if not path.is_file():
        raise SystemExit(f"--oracle-grid-from: {path} does not exist (run evaluate.py --suite "
                         "with oracle:... specs first)")
    chosen = pd.read_csv(path, keep_default_na=False)["oracle"]
    specs = list(dict.fromkeys(s for s in chosen if s))
    if not specs:
        raise SystemExit(f"--oracle-grid-from: no task of {path} has an oracle point")
    return specs + ([SAFEST_ORACLE] if SAFEST_ORACLE not in specs else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="v1")
    parser.add_argument("--split", default="test")
    parser.add_argument("--policies", help=f"default: {HEURISTICS}, plus {ORACLE_SPECS} where "
                        "the oracle policy is registered")
    parser.add_argument("--agents", help="policy specs added to the policies, e.g. "
                        "load-map,ppo-suite:runs/v1-ppo (one trained agent per preset: "
                        "agents/rl/suite_policy.py)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="units as Ray tasks")
    parser.add_argument("--out", default="results/bench-suite")
    parser.add_argument("--oracle-grid-from", metavar="DIR",
                        help="use as oracle points the specs chosen on another split's run "
                        "(DIR/oracle_points.csv of an evaluate.py --suite run, e.g. the "
                        "validation split's with a wider grid) instead of the default grid")
    args = parser.parse_args(argv)
    oracle_specs = ORACLE_SPECS
    if args.oracle_grid_from:
        oracle_specs = ",".join(chosen_oracle_specs(Path(args.oracle_grid_from)))
        print(f"oracle points chosen on {args.oracle_grid_from}: {oracle_specs}")
    policies = args.policies or (HEURISTICS + ("," + oracle_specs if "oracle" in
                                               known_policies() else ""))
    if args.agents:
        policies += "," + args.agents
    if args.policies is None and "oracle" not in known_policies():
        print("note: no 'oracle' policy is registered; running the heuristics only")
    command = ["--suite", args.suite, "--split", args.split, "--policies", policies,
               "--seeds", str(args.seeds), "--out", args.out, "--no-progress"]
    if args.ray:
        command.append("--ray")
    print("command: python evaluate.py " + shlex.join(command), flush=True)
    tasks, _ = build_tasks(load_suite(args.suite), [args.split], on_skip=None)
    n_policies = len(evaluate.parse_args(command).policy_list)
    units = len(tasks) * n_policies * args.seeds
    steps = sum(t.scenario.episode_steps for t in tasks) * n_policies * args.seeds
    load_before = os.getloadavg()
    started = time.perf_counter()
    code = evaluate.main(command)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    print(f"\n{len(tasks)} tasks x {n_policies} policies x {args.seeds} seeds = {units} units, "
          f"{steps} env steps: {wall:.1f} s wall ({wall / max(units, 1):.2f} s per unit, "
          f"{steps / wall:.0f} steps/s), {'within' if wall <= BUDGET_S else 'OVER'} the "
          f"{BUDGET_S:.0f} s budget; {os.cpu_count()} cores, load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    return code


if __name__ == "__main__":
    sys.exit(main())
