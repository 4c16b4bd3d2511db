"""Constrained PPO: a Lagrangian multiplier on the SLO-violation rate, in SB3 without a fork.

The env's reward is ``-(w_cost * cost / cost_scale + w_slo * violations / request_scale)`` with
a fixed SLO weight ``w_slo``. To hold a violation rate ``d`` (violations per resolved request:
completed, dropped or throttled) instead, the agent minimises cost subject to
``rate <= d`` through the Lagrangian ``cost + lambda * (rate - d)``: it sees the reward with the
multiplier in place of ``w_slo``,

    r_lambda = -(w_cost * cost / cost_scale + lambda * violations / request_scale)

(:class:`LagrangianReward`, an SB3 ``VecEnvWrapper`` that recomputes the reward from the
step's info arrays; the env and its scenario are unchanged), and after every rollout the
multiplier follows dual ascent on the rate measured over that rollout
(:class:`DualAscentCallback`, :func:`dual_step`)::

    log lambda <- log lambda + lr * (rate - d) / (rate + d),  clipped to [lambda_min, lambda_max]

The step is the dual gradient ``rate - d`` made scale-free and bounded: rates span orders of
magnitude (0.01 % to several %), a rollout's rate is noisy, and a rollout without violations
must not drive lambda to zero at once; in log space lambda stays positive and moves by at most
``lr`` (a factor ``e**lr``) per rollout. It stands still where the measured rate equals the
target, rises while the policy violates more often and falls while it violates less (so cost
weighs more). For PPO only: an off-policy replay buffer keeps rewards computed with old
multipliers.

The multiplier is saved with the model (``model.dual_state``, which SB3 stores in the zip), so
checkpoints carry the lambda they were trained with and a resumed run continues from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from serflow_env.sb3 import info_columns

LAMBDA_MIN, LAMBDA_MAX = 1e-3, 1e6  # the multiplier's range (the env's w_slo allows [0, 1e6])
#: the info keys the wrapper reads
KEYS = ("reward_cost", "slo_violations", "requests_completed", "requests_dropped")


def dual_step(lam: float, rate: float, target: float, lr: float,
              bounds: tuple[float, float] = (LAMBDA_MIN, LAMBDA_MAX)) -> float:
    """One dual-ascent step of the multiplier (module docstring) from a measured ``rate``."""
    if not target > 0:
        raise ValueError(f"slo target={target!r}; allowed > 0 (violations per request)")
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"measured violation rate={rate!r}; expected a finite rate >= 0")
    step = lr * (rate - target) / (rate + target)
    return float(min(max(lam * math.exp(step), bounds[0]), bounds[1]))


class LagrangianReward(VecEnvWrapper):
    """The reward with the current multiplier as the SLO weight, and the rate it measures.

    Wraps the native vector env's SB3 adapter (or VecMonitor over it, which then records the
    env's own fixed-weight returns): the step's ``reward_cost`` and ``slo_violations`` give
    ``r_lambda = reward_cost - lam * slo_violations / request_scale``; violations and resolved
    requests accumulate until :meth:`take_rate`.
    """

    def __init__(self, venv: VecEnv, request_scale: float, lam: float) -> None:
        super().__init__(venv)
        if not request_scale > 0:
            raise ValueError(f"request_scale={request_scale!r}; allowed > 0")
        self.request_scale = float(request_scale)
        self.lam = float(lam)
        self.violations = 0.0
        self.resolved = 0.0

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self) -> Any:
        obs, _, dones, infos = self.venv.step_wait()
        cols = info_columns(infos, KEYS)
        violations = np.asarray(cols["slo_violations"], dtype=np.float64)
        rewards = cols["reward_cost"] - self.lam * violations / self.request_scale
        self.violations += float(violations.sum())
        self.resolved += float(np.sum(cols["requests_completed"] + cols["requests_dropped"]))
        return obs, rewards.astype(np.float32), dones, infos

    def take_rate(self) -> tuple[float, float]:
        """(violations per resolved request, resolved requests) since the last call; resets."""
        resolved, violations = self.resolved, self.violations
        self.violations = self.resolved = 0.0
        return (violations / resolved if resolved > 0 else 0.0), resolved


def find_wrapper(env: VecEnv) -> LagrangianReward | None:
    """The :class:`LagrangianReward` in an SB3 wrapper chain, or None."""
    while True:
        if isinstance(env, LagrangianReward):
            return env
        if not isinstance(env, VecEnvWrapper):
            return None
        env = env.venv


class DualAscentCallback(BaseCallback):
    """After each rollout: measure the violation rate, step the multiplier (:func:`dual_step`),
    hand it to the :class:`LagrangianReward` in the training env, log ``dual/*`` and keep
    ``model.dual_state`` (saved in the model zip; a loaded model's state is resumed).

    ``on_update(row)`` is called with each update's figures (e.g. to append a CSV).
    """

    def __init__(self, target: float, lam: float, lr: float = 0.1,
                 on_update: Callable[[dict[str, float]], None] | None = None,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        if not 0 < target < 1:
            raise ValueError(f"--slo-target={target!r}; allowed (0, 1) violations per request")
        if not 0 < lr <= 10:
            raise ValueError(f"--dual-lr={lr!r}; allowed (0, 10]")
        self.target = float(target)
        self.lam = float(min(max(lam, LAMBDA_MIN), LAMBDA_MAX))
        self.lr = float(lr)
        self.updates = 0
        self.on_update = on_update
        self.wrapper: LagrangianReward | None = None

    def _init_callback(self) -> None:
        self.wrapper = find_wrapper(self.training_env)
        if self.wrapper is None:
            raise ValueError("DualAscentCallback: the training env has no LagrangianReward")
        saved = getattr(self.model, "dual_state", None)
        if saved:  # a resumed model: continue from its multiplier
            self.lam, self.updates = float(saved["lambda"]), int(saved["updates"])
        self.wrapper.lam = self.lam
        self.wrapper.take_rate()  # forget what was stepped before training
        self._save_state(float("nan"))

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        assert self.wrapper is not None
        rate, resolved = self.wrapper.take_rate()
        if resolved <= 0:
            return
        self.lam = dual_step(self.lam, rate, self.target, self.lr)
        self.updates += 1
        self.wrapper.lam = self.lam
        self._save_state(rate)
        for key, value in (("dual/lambda", self.lam), ("dual/violation_rate", rate),
                           ("dual/target", self.target)):
            self.logger.record(key, value)
        if self.on_update is not None:
            self.on_update({"timesteps": self.num_timesteps, "lambda": self.lam,
                            "violation_rate": rate, "target": self.target,
                            "resolved_requests": resolved})

    def _save_state(self, rate: float) -> None:
        self.model.dual_state = {"lambda": self.lam, "target": self.target, "lr": self.lr,
                                 "updates": self.updates, "last_rate": rate}
