"""The trace clock of a trained policy with context features (:mod:`serflow_env.context`).

During evaluation a policy sees only observations, so :class:`PolicyClock` counts the
intervals since the episodes began, from the reset options' ``start_s`` (0 by default) of the
scenario's one trace. No torch or stable-baselines3 here: loading heuristics stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from serflow_env.context import ContextSpec, TraceContext
from serflow_env.params import make_params
from serflow_env.scenario import Scenario


class PolicyClock:
    """Context features for a policy acting on a scenario's envs (evaluation).

    Counts the steps since :meth:`reset`: step ``k`` is interval ``k mod episode_steps`` of
    episode ``k // episode_steps``, at trace second ``start + interval * step_s`` where the
    first episode starts at the reset options' ``start_s`` (0 by default) and later ones (the
    env's autoresets) at 0. So the scenario must replay one trace from a fixed start
    (``arrivals.random_start`` false), as every evaluation here does.
    """

    def __init__(self, scenario: Scenario, spec: ContextSpec | Mapping[str, Any] | str,
                 reference_rate: float) -> None:
        params = make_params(scenario)
        if params.random_start or len(params.traces.lengths) != 1:
            raise ValueError(
                f"context features: scenario {scenario.name!r} starts episodes at random "
                "positions or draws one of several traces, so a policy cannot know the trace "
                "clock; evaluate with one trace and arrivals.random_start false")
        self.context = TraceContext.for_params(params, spec, reference_rate)
        self.episode_steps = int(params.episode_steps)
        self.start_s = 0.0
        self.calls = 0

    def reset(self, options: Mapping[str, Any] | None = None) -> None:
        """New episodes (``options``: the env's reset options, ``start_s`` read)."""
        self.start_s = float((options or {}).get("start_s", 0.0))
        self.calls = 0

    def __call__(self, num_envs: int) -> np.ndarray:
        """Features (N, F) of the observation the policy acts on now."""
        episode, interval = divmod(self.calls, self.episode_steps)
        self.calls += 1
        pos = (self.start_s if episode == 0 else 0.0) + interval * self.context.step_s
        return self.context.features(np.zeros(num_envs, dtype=np.int64),
                                     np.full(num_envs, pos))
