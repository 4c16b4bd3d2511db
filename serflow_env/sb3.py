"""A stable-baselines3 ``VecEnv`` over the native vector environment.

SB3 expects auto-reset on done, the last observation of a finished episode in
``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"] = True`` for
time-limit ends so that PPO/SAC bootstrap from it. Episodes here end only by truncation.

The per-env info dicts SB3 passes around are :class:`StepInfo` views of the step's batched
arrays: nothing is copied or converted per env unless a key is read, so a step costs the same
whatever the number of envs beyond the native env's own arrays. Code that wants the arrays
themselves (training callbacks, reward wrappers) gets them with :func:`batched_info`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from serflow_env.engine import ScenarioLike
from serflow_env.observation import INFO_KEYS
from serflow_env.vector_env import SerflowVectorEnv

#: the keys every env's info holds: the documented scalar keys and the interval's latency CDF
STEP_INFO_KEYS = (*INFO_KEYS, "latency_cdf")


class StepInfo(MutableMapping[str, Any]):
    """Env ``index``'s info of one step, read from the step's batched arrays on access.

    Scalar keys (:data:`~serflow_env.observation.INFO_KEYS`) read as Python floats,
    ``latency_cdf`` as that env's row; keys set on it (``terminal_observation``,
    ``TimeLimit.truncated``, VecMonitor's ``episode``) are its own. ``copy()`` keeps the view.
    """

    __slots__ = ("batch", "index", "extra")

    def __init__(self, batch: Mapping[str, np.ndarray], index: int,
                 extra: dict[str, Any] | None = None) -> None:
        self.batch = batch  # key -> array with a leading env axis, shared by the step's views
        self.index = index
        self.extra = extra

    def __getitem__(self, key: str) -> Any:
        extra = self.extra
        if extra is not None and key in extra:
            return extra[key]
        column = self.batch[key]
        return float(column[self.index]) if column.ndim == 1 else column[self.index]

    def get(self, key: str, default: Any = None) -> Any:  # SB3 calls it per env and step
        extra = self.extra
        if extra is not None and key in extra:
            return extra[key]
        if key in self.batch:
            return self[key]
        return default

    def __contains__(self, key: object) -> bool:
        return key in self.batch or (self.extra is not None and key in self.extra)

    def __setitem__(self, key: str, value: Any) -> None:
        if self.extra is None:
            self.extra = {}
        self.extra[key] = value

    def __delitem__(self, key: str) -> None:
        if self.extra is None or key not in self.extra:
            raise KeyError(f"{key!r}: only keys set on the view can be deleted")
        del self.extra[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.batch
        if self.extra:
            yield from (key for key in self.extra if key not in self.batch)

    def __len__(self) -> int:
        extra = self.extra or {}
        return len(self.batch) + sum(key not in self.batch for key in extra)

    def copy(self) -> StepInfo:
        """Another view of the same step (VecMonitor copies done envs' infos)."""
        return StepInfo(self.batch, self.index, dict(self.extra) if self.extra else None)

    def __repr__(self) -> str:
        return f"StepInfo({dict(self)!r})"


def batched_info(infos: Sequence[Mapping[str, Any]]) -> Mapping[str, np.ndarray] | None:
    """The step's info as arrays (leading env axis) when ``infos`` are the adapter's views of
    one step in env order (also after VecMonitor or VecNormalize); None otherwise."""
    if not infos or not isinstance(infos[0], StepInfo):
        return None
    batch = infos[0].batch
    for i, info in enumerate(infos):
        if not isinstance(info, StepInfo) or info.batch is not batch or info.index != i:
            return None
    return batch


def info_columns(infos: Sequence[Mapping[str, Any]],
                 keys: Iterable[str]) -> dict[str, np.ndarray]:
    """``keys`` of every env's info as arrays (N, ...): the adapter's own arrays when ``infos``
    are its views, else stacked from the dicts (any SB3 VecEnv)."""
    batch = batched_info(infos)
    if batch is not None:
        return {key: np.asarray(batch[key]) for key in keys}
    return {key: np.array([info[key] for info in infos]) for key in keys}


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

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[StepInfo]]:
        if self._actions is None:
            raise RuntimeError("step_wait called without step_async")
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        batch = {key: info[key] for key in STEP_INFO_KEYS}
        infos = [StepInfo(batch, i) for i in range(self.num_envs)]
        if dones.any():
            for i in np.flatnonzero(dones).tolist():
                infos[i].extra = {"terminal_observation": info["final_obs"][i],
                                  "TimeLimit.truncated": bool(truncated[i] and not terminated[i])}
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
