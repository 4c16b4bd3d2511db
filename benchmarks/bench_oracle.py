"""Wall time of the oracle's programme and its LP bound on a long trace, per preset.

    python benchmarks/bench_oracle.py [--trace ../shared/traces/wits_logs.txt] [--steps 4500]
                                      [--u 0.85] [--repeats 3]

For each preset over ``--steps`` control intervals of ``--trace`` (default: a generated
12.5-hour diurnal trace, so no file is needed): the time to build the per-stage tables, the
dynamic programme over all stages together and one stage at a time (best of ``--repeats``),
the whole :func:`agents.oracle.policy.plan_oracle`, and HiGHS's LP relaxation, with the DP's
and the LP's optima and their largest relative gap.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from agents.oracle.bound import lp_bound
from agents.oracle.dp import solve
from agents.oracle.policy import plan_oracle
from agents.oracle.problem import StageProblems, build_problems
from serflow_env.scenario import Scenario, load_scenario

PRESETS = ("default", "branchynet-resnet", "transformer-8")


def best_time(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def solve_stages(problems: StageProblems, costs: np.ndarray, stages: slice) -> np.ndarray:
    """The programme's costs of the ``stages`` of ``problems``, solved together."""
    return solve(costs[stages], problems.launch_cost[stages], problems.boot_intervals,
                 problems.initial_vms[stages])[1]


def measure(name: str, scenario: Scenario, u: float, repeats: int) -> str:
    build = best_time(partial(build_problems, scenario, u), 1)
    problems = build_problems(scenario, u)
    costs = problems.interval_costs()
    k = problems.num_stages
    together = best_time(partial(solve_stages, problems, costs, slice(None)), repeats)
    alone = [best_time(partial(solve_stages, problems, costs, slice(i, i + 1)), repeats)
             for i in range(k)]
    whole = best_time(partial(plan_oracle, scenario, u), 1)
    objective = solve_stages(problems, costs, slice(None))
    start = time.perf_counter()
    bound = lp_bound(problems)
    lp_s = time.perf_counter() - start
    gap = float(((objective - bound) / objective).max())
    return (f"{name}: {problems.num_intervals} intervals, {k} stages, max_vms "
            f"{int(problems.max_vms.max())}: tables {build * 1e3:.0f} ms, DP all stages "
            f"{together * 1e3:.0f} ms, one stage at a time "
            f"{', '.join(f'{t * 1e3:.0f}' for t in alone)} ms, plan_oracle "
            f"{whole * 1e3:.0f} ms, LP {lp_s * 1e3:.0f} ms; DP ${objective.sum():.4f}, "
            f"LP ${bound.sum():.4f}, largest gap {gap:.1e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", help="trace file (default: a generated 12.5 h diurnal one)")
    parser.add_argument("--steps", type=int, default=4500, help="control intervals (4500)")
    parser.add_argument("--u", type=float, default=0.85, help="utilisation bound (0.85)")
    parser.add_argument("--repeats", type=int, default=3, help="timings: best of (3)")
    args = parser.parse_args(argv)
    trace = args.trace or {"generator": "diurnal", "duration_s": args.steps * 10,
                           "mean_rate": 140.0, "peak_to_mean": 2.0, "period_s": 43_200.0,
                           "noise": 0.1, "seed": 1}
    for name in PRESETS:
        scenario = load_scenario(name, episode_steps=args.steps, **{"arrivals.trace": trace})
        print(measure(name, scenario, args.u, args.repeats), flush=True)


if __name__ == "__main__":
    main()
