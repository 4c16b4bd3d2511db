"""A stable-baselines3 ``VecEnv`` over the native vector environment.

SB3 expects auto-reset on done, the last observation of a finished episode in
``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"] = True`` for
time-limit ends so that PPO/SAC bootstrap from it. Episodes here end only by truncation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from serflow_env.engine import ScenarioLike
from serflow_env.observation import INFO_KEYS
from serflow_env.vector_env import SerflowVectorEnv


class SerflowSB3VecEnv(VecEnv):
    """Adapter: SB3's step_async/step_wait protocol on a :class:`SerflowVectorEnv`."""

    def __init__(self, venv: SerflowVectorEnv) -> None:
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space,
                         venv.single_action_space)
        self._actions: np.ndarray | None = None
        self.render_mode = None

    # --- core protocol
    def reset(self) -> np.ndarray:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        options = self._options[0] if self._options and self._options[0] else None
        obs, _ = self.venv.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait called without step_async")
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        columns = {key: info[key] for key in INFO_KEYS}
        cdf = info["latency_cdf"]  # the interval's latency CDF, for pooled quantiles
        infos: list[dict[str, Any]] = [
            {**{key: float(col[i]) for key, col in columns.items()}, "latency_cdf": cdf[i]}
            for i in range(self.num_envs)
        ]
        if dones.any():
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    # --- attribute plumbing (one shared engine: every index sees the same object)
    def _indices(self, indices: None | int | Iterable[int]) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: None | int | Iterable[int] = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any,
                 indices: None | int | Iterable[int] = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any,
                   indices: None | int | Iterable[int] = None, **method_kwargs: Any) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: None | int | Iterable[int] = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


def make_sb3_vec_env(scenario: ScenarioLike = "default", num_envs: int = 8,
                     seed: int | None = None, overrides: Mapping[str, Any] | None = None,
                     **kwargs: Any) -> SerflowSB3VecEnv:
    """An SB3 ``VecEnv`` of ``num_envs`` SERFLOW envs (one native vector env underneath)."""
    venv = SerflowVectorEnv(num_envs=num_envs, scenario=scenario, overrides=overrides, **kwargs)
    env = SerflowSB3VecEnv(venv)
    if seed is not None:
        env.seed(seed)
    return env
