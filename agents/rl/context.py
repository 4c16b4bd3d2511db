"""Context features (:mod:`serflow_env.context`) for training and for trained policies.

:class:`ContextVecEnv` appends them to the observations of the SB3 adapter
(:class:`~serflow_env.sb3.SerflowSB3VecEnv`), reading each env's trace clock from the engine's
state, also for the terminal observation of an episode that the adapter already auto-reset.
:class:`PolicyClock` gives a trained policy the same features during evaluation, where it sees
only observations: it counts the intervals since each episode's start, from the reset options'
``start_s`` (0 by default) of the scenario's one trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper

from serflow_env.context import ContextSpec, TraceContext, extended_space, trace_clock
from serflow_env.params import make_params
from serflow_env.sb3 import SerflowSB3VecEnv
from serflow_env.scenario import Scenario


class ContextVecEnv(VecEnvWrapper):
    """Appends the context features of ``spec`` to a SERFLOW SB3 VecEnv's observations.

    Wraps the adapter directly (its engine holds the clock); the reference rate of the
    forecast columns is the env's own (the scenario's ``reward.reference_rate``).
    """

    def __init__(self, venv: SerflowSB3VecEnv, spec: ContextSpec | Mapping[str, Any] | str
                 ) -> None:
        if not isinstance(venv, SerflowSB3VecEnv):
            raise ValueError(f"ContextVecEnv wraps the SERFLOW SB3 adapter directly, got "
                             f"{type(venv).__name__}")
        self.engine = venv.venv.engine
        self.context = TraceContext.for_params(self.engine.params, spec)
        super().__init__(venv, observation_space=extended_space(venv.observation_space,
                                                                self.context.size()))
        self._clock = trace_clock(self.engine.params, self.engine.state)

    def _extend(self, obs: np.ndarray) -> np.ndarray:
        self._clock = trace_clock(self.engine.params, self.engine.state)
        return np.concatenate([obs, self.context.features(*self._clock)], axis=1)

    def reset(self) -> np.ndarray:
        return self._extend(self.venv.reset())

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        idx, pos = self._clock  # before the step: the finished episodes' clock
        obs, rewards, dones, infos = self.venv.step_wait()
        if dones.any():
            done = np.flatnonzero(dones)
            # the terminal observation is one interval after the last clock of its episode
            end = self.context.features(idx[done], pos[done] + self.context.step_s)
            for row, i in enumerate(done.tolist()):
                infos[i]["terminal_observation"] = np.concatenate(
                    [infos[i]["terminal_observation"], end[row]])
        return self._extend(obs), rewards, dones, infos


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
