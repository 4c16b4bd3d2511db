"""Score policies on a held-out trace window: cost, violation rate, p95 latency.

Used by the training's evaluation callback (agent and heuristic on the validation window) and
as a command to compare trained agents with the heuristics on a trace the agents never saw::

    python -m serflow_eval.scoring --trace /work/shared/traces/wits_logs.txt@30600:45000 \
        --policies serflow ppo:runs/ppo/best_model.zip --episodes 4 --seed 100
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agents.policy import Policy, make_policy
from agents.rl.config import parse_trace_spec
from serflow_env.arrivals import resolve_trace
from serflow_env.latency import scenario_cdf_grid_s
from serflow_env.scenario import Scenario, load_scenario
from serflow_eval.cli import (
    add_policies_argument,
    add_set_argument,
    policy_list,
    scenario_overrides,
)
from serflow_eval.metrics import pooled_latency_quantiles
from serflow_eval.rollout import rollout
from serflow_eval.simulators import make_vector_env


@dataclass(frozen=True)
class ServingMetrics:
    """Totals over all evaluated episodes (each env of the vector env is one episode)."""

    policy: str
    episodes: int
    steps: int
    requests: float
    cost_usd: float
    cost_per_1k_requests: float  # $ per 1,000 arrived requests
    violation_rate: float  # SLO violations (late, throttled, dropped) / arrived requests
    p95_latency_s: float  # serflow_eval.metrics.pooled_latency_quantiles, episodes pooled
    vms_running: float  # mean VMs running over intervals and envs
    function_share: float  # share of stage executions served by functions
    episode_return: float  # mean undiscounted return per episode (the env's reward)
    requests_resolved: float = float("nan")  # completed, dropped or throttled

    @property
    def violations_per_resolved(self) -> float:
        """SLO violations per resolved request (the rate a Lagrangian SLO target is in)."""
        return self.violation_rate * self.requests / max(self.requests_resolved, 1.0)


def eval_scenario(base: str | Scenario, trace_spec: str | None,
                  overrides: Mapping[str, Any] | None = None,
                  steps: int | None = None) -> Scenario:
    """``base`` with ``overrides``, replaying ``trace_spec`` once from its start in one episode.

    Without ``steps`` the episode covers the whole trace (window); no random start.
    """
    over = dict(overrides or {})
    over["arrivals.random_start"] = False
    if trace_spec is not None:
        over["arrivals.trace"] = parse_trace_spec(trace_spec)
    scenario = load_scenario(base, **over)
    if steps is None:
        traces = scenario.arrivals.trace
        first = traces[0] if isinstance(traces, list) else traces
        duration = resolve_trace(first, scenario.arrivals.format).duration_s
        steps = max(1, math.floor(duration * scenario.arrivals.time_warp
                                  / scenario.control_interval_s))
    if steps < 1:
        raise ValueError(f"evaluation steps={steps}; allowed >= 1")
    return scenario.with_overrides(episode_steps=int(steps))


def run_policy(policy: Policy, scenario: Scenario, episodes: int, seed: int,
               name: str | None = None, simulator: str = "fast") -> ServingMetrics:
    """Run ``episodes`` envs of ``scenario`` (one episode each, seeds from ``seed``) on the
    ``fast`` model or the per-request ``reference`` simulator."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes}; allowed >= 1")
    venv = make_vector_env(simulator, scenario, episodes)
    steps = scenario.episode_steps
    tot = {"cost": 0.0, "arrived": 0.0, "viol": 0.0, "vms": 0.0,
           "faas": 0.0, "stage": 0.0, "reward": 0.0, "resolved": 0.0}
    cdfs, completed = [], []
    for interval in rollout(policy, venv, steps, seed=seed):
        info, reward = interval.info, interval.reward
        arrived = info["requests_arrived"]
        tot["cost"] += float(info["cost_usd"].sum())
        tot["arrived"] += float(arrived.sum())
        tot["viol"] += float(info["slo_violations"].sum())
        tot["resolved"] += float((info["requests_completed"] + info["requests_dropped"]).sum())
        cdfs.append(np.array(info["latency_cdf"], dtype=float))
        completed.append(np.array(info["requests_completed"], dtype=float))
        tot["vms"] += float(info["vms_running"].sum())
        tot["faas"] += float((info["stage_requests"] * info["stage_faas_share"]).sum())
        tot["stage"] += float(info["stage_requests"].sum())
        tot["reward"] += float(reward.sum())
    venv.close()
    arrived = max(tot["arrived"], 1.0)
    span = scenario.latency_span * scenario.slo_deadline_s
    return ServingMetrics(
        policy=name or getattr(policy, "name", type(policy).__name__),
        episodes=episodes, steps=steps, requests=tot["arrived"], cost_usd=tot["cost"],
        cost_per_1k_requests=1000.0 * tot["cost"] / arrived,
        violation_rate=tot["viol"] / arrived,
        p95_latency_s=float(pooled_latency_quantiles(
            np.concatenate(cdfs), np.concatenate(completed),
            scenario_cdf_grid_s(scenario), span)[1]),
        vms_running=tot["vms"] / (steps * episodes),
        function_share=tot["faas"] / max(tot["stage"], 1.0),
        episode_return=tot["reward"] / episodes,
        requests_resolved=tot["resolved"],
    )


def markdown_table(rows: Sequence[ServingMetrics], reference: str | None = None) -> str:
    """A table of the metrics; with ``reference`` also each policy's cost change vs it."""
    ref = next((r for r in rows if r.policy == reference), None)
    head = "| policy | $ per 1k requests | violation rate | p95 latency (s) | VMs | function " \
           "share | return |"
    sep = "|---|---|---|---|---|---|---|"
    if ref is not None:
        head += f" cost vs {reference} |"
        sep += "---|"
    lines = [head, sep]
    for r in rows:
        line = (f"| {r.policy} | {r.cost_per_1k_requests:.5f} | {100 * r.violation_rate:.3f} % "
                f"| {r.p95_latency_s:.3f} | {r.vms_running:.2f} | {r.function_share:.3f} "
                f"| {r.episode_return:.1f} |")
        if ref is not None:
            change = r.cost_usd / ref.cost_usd - 1.0
            line += f" {100 * change:+.1f} % |"
        lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default", help="preset name or YAML path")
    parser.add_argument("--trace", default=None,
                        help="held-out trace, PATH or PATH@START:END seconds (default: the "
                             "scenario's own trace)")
    add_policies_argument(parser, "policy specs, e.g. serflow faas-only "
                          "ppo:runs/x/best_model.zip; the first is the reference", required=True)
    parser.add_argument("--episodes", type=int, default=4, help="envs (seeds) per policy")
    parser.add_argument("--steps", type=int, default=None,
                        help="control steps per episode (default: the whole trace)")
    parser.add_argument("--seed", type=int, default=100)
    add_set_argument(parser)
    parser.add_argument("--json", default=None, help="also write the metrics to this file")
    args = parser.parse_args(argv)
    try:
        overrides = scenario_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    specs = policy_list(args.policies)
    scenario = eval_scenario(args.scenario, args.trace, overrides, args.steps)
    rows = []
    for spec in specs:
        policy = make_policy(spec, scenario)
        rows.append(run_policy(policy, scenario, args.episodes, args.seed, name=spec))
        print(f"{spec}: {rows[-1]}", flush=True)
    print(markdown_table(rows, reference=specs[0]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"scenario": args.scenario, "trace": args.trace, "seed": args.seed,
                       "episodes": args.episodes, "rows": [asdict(r) for r in rows]}, fh,
                      indent=2)


if __name__ == "__main__":
    main()
