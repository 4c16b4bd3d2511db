"""Context features (:mod:`serflow_env.context`) in training: :class:`ContextVecEnv` appends
them to the observations of the SB3 adapter (:class:`~serflow_env.sb3.SerflowSB3VecEnv`),
reading each env's trace clock from the engine's state, also for the terminal observation of
an episode that the adapter already auto-reset. A trained policy gets the same features from
:class:`agents.rl.clock.PolicyClock`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper

from serflow_env.context import ContextSpec, TraceContext, extended_space, trace_clock
from serflow_env.sb3 import SerflowSB3VecEnv


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
