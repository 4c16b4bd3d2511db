"""Evaluation units (one policy on one seed of one scenario) as Ray tasks.

:func:`ray_run_policies` has :func:`serflow_eval.runner.run_policies`'s signature and returns
the same frame, row for row: each unit builds its policy and plays its episode exactly as the
serial loop does (seed ``i`` is ``env.reset(seed=i)``), only on another core or node. Policies
that read files (``ppo:PATH.zip``) need the path on every node (a shared folder on a cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from agents import make_policy
from serflow_env.scenario import Scenario
from serflow_eval.ray_session import import_ray
from serflow_eval.runner import run_episode


def play_unit(spec: str, scenario: Scenario, seed: int, steps: int, simulator: str,
              options: Mapping[str, Any] | None) -> pd.DataFrame:
    """One (policy, seed) unit, the body of a Ray task: the serial runner's rows for it."""
    policy = make_policy(spec, scenario)
    return run_episode(policy, spec, scenario, seed, steps, simulator=simulator, options=options)


def ray_run_policies(specs: Sequence[str], scenario: Scenario, seeds: Sequence[int], steps: int,
                     *, simulator: str = "fast", options: Mapping[str, Any] | None = None,
                     on_step: Callable[[], None] | None = None) -> pd.DataFrame:
    """Every policy on every seed, one Ray task (1 CPU) per unit, in the serial order.

    Needs an initialised Ray (:func:`serflow_eval.ray_session.ray_session`). ``on_step`` is
    called ``steps`` times as each unit finishes (units report when done, not per step).
    """
    ray = import_ray()
    for spec in specs:  # bad specs and missing model files fail here, before any task runs
        make_policy(spec, scenario)
    task = ray.remote(num_cpus=1)(play_unit)
    scenario_ref = ray.put(scenario)
    refs = [task.remote(spec, scenario_ref, seed, steps, simulator, options)
            for spec in specs for seed in seeds]
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        if on_step is not None:
            for _ in range(steps * len(done)):
                on_step()
    return pd.concat(ray.get(refs), ignore_index=True)
