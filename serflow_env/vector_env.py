"""The native vector environment: N SERFLOW environments stepped as arrays at once.

Gymnasium's ``SAME_STEP`` (default, SB3) and ``NEXT_STEP`` (RLlib) autoreset modes
(``autoreset_mode=``, declared in ``metadata``; :mod:`serflow_env.autoreset`). Both modes give
the same episodes (the reset draws the same random numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from serflow_env.autoreset import parse_autoreset_mode, pending_reset_step, same_step_autoreset
from serflow_env.engine import Engine, ScenarioLike
from serflow_env.observation import action_space, observation_space
from serflow_env.render import RENDER_MODES, check_render_mode, interval_text


class SerflowVectorEnv(VectorEnv):
    """N SERFLOW environments in one set of arrays (no per-env Python loop).

    Same arguments as :class:`~serflow_env.env.SerflowEnv` plus ``num_envs``. With
    ``num_envs=1`` and the same seed it follows the single environment step by step.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 1,
                "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, scenario: ScenarioLike = "default",
                 action_out_of_range: str = "clip", overrides: Mapping[str, Any] | None = None,
                 render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
                 **kwargs: Any) -> None:
        self.render_mode = check_render_mode(render_mode)
        self._last_info: dict[str, Any] | None = None
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.engine = Engine(scenario, num_envs, action_out_of_range, overrides, **kwargs)
        self.scenario = self.engine.scenario
        self.num_envs = self.engine.num_envs
        self.single_observation_space = observation_space(self.engine.params)
        self.single_action_space = action_space(self.engine.params)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._needs_reset = True
        self._autoreset_pending = False  # NEXT_STEP: the last step truncated (every env)

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._np_random_seed = seed if isinstance(seed, int) else None
        obs, info = self.engine.reset(seed=seed, options=options)
        self._needs_reset = False
        self._last_info = None
        self._autoreset_pending = False
        return obs, info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("SerflowVectorEnv.step called before reset(); call reset()")
        if self._autoreset_pending:
            self._autoreset_pending = False
            return pending_reset_step(self.num_envs, lambda: self.engine.reset_where(
                np.ones(self.num_envs, dtype=bool)))
        obs, reward, info = self.engine.step(actions, batched=True)
        self._last_info = info
        truncated = self.engine.truncated()
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._autoreset_pending = bool(truncated.any())
        else:
            obs = same_step_autoreset(obs, info, truncated, self.engine.reset_where)
        terminated = np.zeros(self.num_envs, dtype=bool)
        return obs, reward.astype(np.float64), terminated, truncated, info

    def render(self) -> tuple[str, ...] | None:
        """``render_mode='ansi'``: each env's last interval as one line; None otherwise."""
        if self.render_mode != "ansi":
            return None
        info = self._last_info
        return tuple(interval_text(None if info is None else
                                   {key: value[i] for key, value in info.items()
                                    if not key.startswith(("final_", "_final_"))},
                                   int(steps), self.scenario.control_interval_s)
                     for i, steps in enumerate(self.engine.state.steps))
