"""Play policies on common random numbers and record every control interval.

Common random numbers: seed ``i`` always means ``env.reset(seed=i)`` on a fresh one-env vector
env, for every policy. The env draws each random stream (arrivals, exits, service noise,
drift, episode start) from its own generator, so two policies see the same arrivals, window
and drift; exit draws are binomial in policy-dependent counts, so they coincide only while
the counts do. Seed ``i``'s result does not depend on how many seeds are run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from agents import Policy, make_policy
from serflow_env.latency import scenario_cdf_grid_s
from serflow_env.scenario import Scenario
from serflow_eval.metrics import cdf_columns
from serflow_eval.rollout import rollout
from serflow_eval.simulators import make_vector_env

#: per-env info keys recorded each interval (scalars per env)
SCALAR_KEYS = (
    "requests_arrived", "requests_completed", "requests_dropped", "requests_throttled",
    "cost_usd", "cost_vm_usd", "cost_faas_usd", "cost_transfer_usd", "slo_violations",
    "violation_rate", "latency_p50_s", "latency_p95_s", "latency_p99_s", "vms_running",
    "vms_booting", "vm_seconds", "faas_invocations", "faas_cold_starts",
)
#: per-stage info keys recorded each interval, as columns ``s{k}_{name}`` (k from 1)
STAGE_KEYS = {
    "stage_requests": "requests", "stage_vms_running": "vms_running",
    "stage_vms_booting": "vms_booting", "stage_faas_share": "faas_share",
    "stage_utilisation": "utilisation", "stage_cold_starts": "cold_starts",
}


def run_episode(policy: Policy, label: str, scenario: Scenario, seed: int, steps: int, *,
                simulator: str = "fast", options: Mapping[str, Any] | None = None,
                on_step: Callable[[], None] | None = None) -> pd.DataFrame:
    """One episode of ``steps`` intervals of ``policy`` on seed ``seed``: one row each."""
    env = make_vector_env(simulator, scenario, 1)
    interval = scenario.control_interval_s
    columns: dict[str, list[float]] = {key: [] for key in SCALAR_KEYS}
    k = scenario.num_stages
    stage_cols = {f"s{j + 1}_{name}": (key, j) for key, name in STAGE_KEYS.items()
                  for j in range(k)}
    columns.update({name: [] for name in stage_cols})
    cdf_rows = []
    for step in rollout(policy, env, steps, seed=seed, options=options):
        info = step.info
        for key in SCALAR_KEYS:
            columns[key].append(float(np.asarray(info[key])[0]))
        for name, (key, j) in stage_cols.items():
            columns[name].append(float(np.asarray(info[key])[0, j]))
        cdf_rows.append(np.asarray(info["latency_cdf"], dtype=float)[0])
        if on_step is not None:
            on_step()
    frame = pd.DataFrame(columns)
    # the interval's latency CDF, for the pooled quantiles of serflow_eval.metrics
    grid = scenario_cdf_grid_s(scenario)
    cdf = pd.DataFrame(np.array(cdf_rows).reshape(steps, grid.size), columns=cdf_columns(grid))
    frame = pd.concat([frame, cdf], axis=1)
    frame.insert(0, "time_s", (np.arange(steps) + 1) * interval)
    frame.insert(0, "step", np.arange(steps))
    frame.insert(0, "seed", seed)
    frame.insert(0, "policy", label)
    frame["rate_rps"] = frame["requests_arrived"] / interval
    return frame


def run_policies(specs: Sequence[str], scenario: Scenario, seeds: Sequence[int], steps: int, *,
                 simulator: str = "fast", options: Mapping[str, Any] | None = None,
                 on_step: Callable[[], None] | None = None) -> pd.DataFrame:
    """Every policy on every seed (same seeds for all: common random numbers)."""
    frames = []
    for spec in specs:
        policy = make_policy(spec, scenario)
        frames += [run_episode(policy, spec, scenario, seed, steps, simulator=simulator,
                               options=options, on_step=on_step) for seed in seeds]
    return pd.concat(frames, ignore_index=True)
