"""Gymnasium's two autoreset modes for vector envs whose envs all truncate at the same step.

Shared by the fast :class:`~serflow_env.vector_env.SerflowVectorEnv` and the reference
:class:`~serflow_env.reference.env.ReferenceVectorEnv`, so both hand episode ends to a learner
the same way:

* ``SAME_STEP`` (default, what SB3 expects): the truncating step already returns the next
  episode's first observation; the finished episode's last observation and info are in
  ``info["final_obs"]`` / ``info["final_info"]``, masked by ``info["_final_obs"]`` /
  ``info["_final_info"]``, as Gymnasium's vector envs do.
* ``NEXT_STEP`` (what RLlib expects): the truncating step returns the episode's last
  observation; the next ``step`` ignores the actions, resets every env and returns the reset
  observations with reward 0 and no termination or truncation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

SUPPORTED = (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP)


def parse_autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """``mode`` as an :class:`AutoresetMode` (also its value or name: ``"NextStep"``,
    ``"next_step"``)."""
    allowed = {m.value.lower(): m for m in SUPPORTED}
    key = mode.value if isinstance(mode, AutoresetMode) else str(mode)
    parsed = allowed.get(key.replace("_", "").lower())
    if parsed is None:
        raise ValueError(f"autoreset_mode={mode!r} is not supported; allowed: "
                         f"{', '.join(m.value for m in allowed.values())}")
    return parsed


def pending_reset_step(num_envs: int, reset_all: Callable[[], np.ndarray]) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """NEXT_STEP's step after a truncation: every env resets, none steps (envs truncate
    together, so SyncVectorEnv would do the same)."""
    done = np.zeros(num_envs, dtype=bool)
    return reset_all(), np.zeros(num_envs), done, done.copy(), {}


def same_step_autoreset(obs: np.ndarray, info: dict[str, Any], truncated: np.ndarray,
                        reset_where: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """SAME_STEP: record the truncated envs' last observation and info in ``info`` (in place)
    and return the observations with those envs reset by ``reset_where(mask)``."""
    if not truncated.any():
        return obs
    final_obs = np.empty(len(truncated), dtype=object)
    final_info = np.empty(len(truncated), dtype=object)
    for i in np.flatnonzero(truncated):  # only at episode ends, not in the hot path
        final_obs[i] = obs[i].copy()
        final_info[i] = {key: value[i] for key, value in info.items()}
    info["final_obs"], info["_final_obs"] = final_obs, truncated.copy()
    info["final_info"], info["_final_info"] = final_info, truncated.copy()
    return reset_where(truncated)
