"""The one episode loop: a policy acting on a vector env of either simulator.

Every evaluation (``evaluate.py``'s runner, the fidelity harness, the RL scoring and analyses)
plays its episodes through :func:`rollout` and reduces the per-interval records its own way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.policy import Policy


@dataclass(frozen=True)
class Interval:
    """One control interval of every env: the step index, the rewards (N,) and the info."""

    step: int
    reward: np.ndarray
    info: Mapping[str, np.ndarray]


def rollout(policy: Policy, env: Any, steps: int, *, seed: int | None,
            options: Mapping[str, Any] | None = None) -> Iterator[Interval]:
    """Reset ``env`` (seed, options), then ``steps`` control steps under ``policy``.

    ``env`` is a vector env of :func:`serflow_eval.simulators.make_vector_env` (any simulator).
    The policy is reset for the env's ``num_envs`` episodes and sees the last step's info
    (None before the first step). Yields one :class:`Interval` per step; the info arrays are
    the env's own (not copied), valid until the next step.
    """
    if steps < 1:
        raise ValueError(f"steps={steps}; allowed >= 1")
    obs, _ = env.reset(seed=seed, options=dict(options) if options else None)
    policy.reset(env.num_envs)
    policy.episode_options(options)
    info: Mapping[str, np.ndarray] | None = None
    for step in range(steps):
        obs, reward, _, _, info = env.step(policy.act(obs, info))
        yield Interval(step, reward, info)
