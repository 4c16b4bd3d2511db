"""Evaluation units (one policy on one seed of one scenario, or of one suite task) as Ray tasks.

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


def ray_run_suite_units(units: Sequence[tuple[str, str, Scenario, str, int]],
                        simulator: str = "fast",
                        on_unit: Callable[[], None] | None = None) -> pd.DataFrame:
    """:func:`serflow_eval.suite_eval.run_suite_units` with each (task, policy, seed) unit a
    Ray task (1 CPU): the same rows in the same order. Each task's scenario is put in the
    object store once. Needs an initialised Ray; ``on_unit`` is called as units finish."""
    from serflow_eval.suite_eval import play_suite_unit

    ray = import_ray()
    task = ray.remote(num_cpus=1)(play_suite_unit)
    refs_by_scenario: dict[int, Any] = {}
    refs = []
    for name, split, scenario, spec, seed in units:
        if id(scenario) not in refs_by_scenario:
            refs_by_scenario[id(scenario)] = ray.put(scenario)
        ref = refs_by_scenario[id(scenario)]
        refs.append(task.remote(name, split, ref, spec, seed, simulator))
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        if on_unit is not None:
            for _ in done:
                on_unit()
    return pd.DataFrame(ray.get(refs))
