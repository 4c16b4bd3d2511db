"""Holds the scenario parameters, the state arrays and the random streams of N environments.

The Gymnasium classes are thin shells over this: :class:`~serflow_env.env.SerflowEnv` is an
engine with N = 1, :class:`~serflow_env.vector_env.SerflowVectorEnv` one with N envs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serflow_env import dynamics
from serflow_env.observation import (
    build_info,
    build_observation,
    neutral_output,
    validate_actions,
)
from serflow_env.params import make_params
from serflow_env.scenario import Scenario, load_scenario
from serflow_env.state import init_state, make_rngs, reset_envs

ScenarioLike = str | Path | Scenario | Mapping[str, Any]


def seed_entropy(seed: int | Sequence[int] | None) -> int | None:
    """Normalise a Gymnasium seed (int, list of one int per env, or None) to one int."""
    if seed is None:
        return None
    if isinstance(seed, (list, tuple, np.ndarray)):
        if len(seed) == 0 or any(s is None for s in seed):
            return None
        seed = int(seed[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer or None, got {seed!r}")
    return int(seed)


def validate_env_args(num_envs: object, action_out_of_range: object) -> None:
    """Check the arguments every SERFLOW vector env takes (fast and reference alike)."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) \
            or num_envs < 1:
        raise ValueError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
    if action_out_of_range not in ("clip", "error"):
        raise ValueError(
            f"action_out_of_range={action_out_of_range!r}; allowed 'clip' or 'error'")


class Engine:
    """N environments of one scenario, stepped together as arrays."""

    def __init__(self, scenario: ScenarioLike = "default", num_envs: int = 1,
                 action_out_of_range: str = "clip", overrides: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        validate_env_args(num_envs, action_out_of_range)
        self.scenario = load_scenario(scenario, **dict(overrides or {}), **kwargs)
        self.params = make_params(self.scenario)
        self.num_envs = int(num_envs)
        self.action_out_of_range = action_out_of_range
        self.rngs = make_rngs(None)
        self.state = init_state(self.params, self.num_envs, self.rngs)

    @property
    def num_stages(self) -> int:
        return self.params.num_stages

    def reset(self, seed: int | Sequence[int] | None = None,
              options: Mapping[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset all envs; a seed re-creates every random stream.

        ``options``: ``start_s`` (trace second to start at) and ``trace_index`` (which trace),
        for all envs of this reset; later autoresets draw their own.
        """
        entropy = seed_entropy(seed)
        if entropy is not None:
            self.rngs = make_rngs(entropy)
        self.state = reset_envs(self.params, self.state, np.ones(self.num_envs, bool),
                                     self.rngs, options)
        out = neutral_output(self.params, self.state)
        return build_observation(self.params, self.state, out), {}

    def step(self, actions: Any, batched: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
        """One control interval for all envs: (obs (N, D), reward (N,), info arrays)."""
        a = validate_actions(actions, self.num_envs, self.num_stages,
                             self.action_out_of_range, batched)
        self.state, out = dynamics.step(self.params, self.state, a, self.rngs)
        obs = build_observation(self.params, self.state, out)
        return obs, out["reward"], build_info(self.params, out)

    def truncated(self) -> np.ndarray:
        return self.state.steps >= self.params.episode_steps

    def reset_where(self, mask: np.ndarray) -> np.ndarray:
        """Reset the masked envs (autoreset); returns the new observations of all envs."""
        self.state = reset_envs(self.params, self.state, mask, self.rngs)
        out = neutral_output(self.params, self.state)
        return build_observation(self.params, self.state, out)
