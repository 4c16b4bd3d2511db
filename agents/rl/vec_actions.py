"""The action map as an SB3 ``VecEnvWrapper`` (the training path; see :mod:`agents.rl.actions`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from agents.rl.actions import ActionMap


class ActionMapVecWrapper(VecEnvWrapper):
    """The same map between the agent and an SB3 VecEnv (the native vector env's adapter that
    training uses); it needs raw observations: wrap it *inside* VecNormalize."""

    def __init__(self, venv: VecEnv, action_map: ActionMap) -> None:
        super().__init__(venv)
        self.action_map = action_map
        self._obs: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        self.action_map.reset(self.num_envs)
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        if self._obs is None:
            raise RuntimeError("ActionMapVecWrapper: step before reset")
        self.venv.step_async(self.action_map(self._obs, actions))

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._obs = obs
        return obs, rewards, dones, infos
