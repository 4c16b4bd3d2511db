"""The single SERFLOW environment (Gymnasium ``Env``): an engine with one environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from serflow_env.engine import Engine, ScenarioLike
from serflow_env.observation import action_space, observation_space


class SerflowEnv(gym.Env):
    """Cost-optimal, SLO-aware serving of an early-exit model on VMs and functions.

    Each step is one control interval. The action sets, per stage, the VM count to keep and the
    share of requests sent to functions; the reward is
    ``-(w_cost * cost / cost_scale + w_slo * violations / request_scale)``. Episodes end by
    truncation after ``episode_steps`` intervals (never by termination). See the README's env
    card and :mod:`serflow_env.observation` for the spaces and ``info`` keys.

    Args:
        scenario: a shipped preset name, a YAML path, a mapping or a Scenario.
        action_out_of_range: ``"clip"`` (default) clips actions to [-1, 1]; ``"error"`` raises.
        overrides: scenario overrides with dotted keys (``{"faas.keep_alive_s": 60}``).
        **kwargs: top-level scenario overrides (``episode_steps=100``).
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario: ScenarioLike = "default", action_out_of_range: str = "clip",
                 overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.engine = Engine(scenario, 1, action_out_of_range, overrides, **kwargs)
        self.scenario = self.engine.scenario
        self.observation_space = observation_space(self.engine.params)
        self.action_space = action_space(self.engine.params)
        self._needs_reset = True

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs, info = self.engine.reset(seed=seed, options=options)
        self._needs_reset = False
        return obs[0], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("SerflowEnv.step called before reset() or after the episode "
                               "was truncated; call reset() first")
        obs, reward, info = self.engine.step(action, batched=False)
        truncated = bool(self.engine.truncated()[0])
        self._needs_reset = truncated
        single = {key: (value[0].item() if value.ndim == 1 else value[0].copy())
                  for key, value in info.items()}
        return obs[0], float(reward[0]), False, truncated, single
