"""Training callbacks that need only the env and SB3: the env's serving metrics in TensorBoard
(and ``training.csv``), and the step count an interruption checkpoint is consistent with.

The validation callback, which runs evaluation episodes, is :mod:`serflow_eval.validation`.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from serflow_env.observation import column, observation_size


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append one row (header written with the first row; append survives resumes)."""
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def function_share_from_obs(obs: np.ndarray, num_stages: int) -> tuple[float, float]:
    """(function-served stage executions, all stage executions), in reference-rate units.

    Uses the observation's per-stage rate and realised function share (raw observations; of
    stacked frames, the newest, which comes last).
    """
    newest = obs[:, obs.shape[1] - observation_size(num_stages):]
    rate = newest[:, column("stage_rate", num_stages=num_stages)]
    share = newest[:, column("faas_share", num_stages=num_stages)]
    return float((rate * share).sum()), float(rate.sum())


class ServingMetricsCallback(BaseCallback):
    """Logs the env's own scalars (serving/*) from the adapter's info dicts every rollout.

    Off-policy algorithms have a rollout per env step, so values are aggregated over at least
    ``min_steps`` env steps before being recorded. Rows also go to ``csv_path`` (if given).
    """

    def __init__(self, num_stages: int, min_steps: int = 1, csv_path: Path | None = None,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        self.num_stages = num_stages
        self.min_steps = min_steps
        self.csv_path = csv_path
        self._reset()

    def _reset(self) -> None:
        self.acc = dict.fromkeys(("cost", "arrived", "viol", "p95w", "vms", "faas", "stage",
                                  "r_cost", "r_slo", "n"), 0.0)

    def _on_step(self) -> bool:
        infos = self.locals.get("infos") or []
        acc = self.acc
        for info in infos:
            acc["cost"] += info["cost_usd"]
            acc["arrived"] += info["requests_arrived"]
            acc["viol"] += info["slo_violations"]
            acc["p95w"] += info["latency_p95_s"] * info["requests_arrived"]
            acc["vms"] += info["vms_running"]
            acc["r_cost"] += info["reward_cost"]
            acc["r_slo"] += info["reward_slo"]
            acc["n"] += 1
        vn = self.model.get_vec_normalize_env()
        raw = vn.get_original_obs() if vn is not None else self.locals.get("new_obs")
        dones = np.asarray(self.locals.get("dones", np.zeros(len(infos), bool)), dtype=bool)
        if raw is not None and len(raw) == len(dones) and (~dones).any():
            faas, stage = function_share_from_obs(np.asarray(raw)[~dones], self.num_stages)
            acc["faas"] += faas
            acc["stage"] += stage
        return True

    def _on_rollout_end(self) -> None:
        acc = self.acc
        if acc["n"] < self.min_steps or acc["arrived"] <= 0:
            return
        arrived = acc["arrived"]
        values = {
            "serving/cost_per_1k_requests": 1000.0 * acc["cost"] / arrived,
            "serving/violation_rate": acc["viol"] / arrived,
            "serving/latency_p95_s": acc["p95w"] / arrived,
            "serving/vms_running": acc["vms"] / acc["n"],
            "serving/function_share": acc["faas"] / max(acc["stage"], 1e-12),
            "serving/reward_cost_per_step": acc["r_cost"] / acc["n"],
            "serving/reward_slo_per_step": acc["r_slo"] / acc["n"],
        }
        for key, value in values.items():
            self.logger.record(key, value)
        if self.csv_path is not None:
            episodes = list(self.model.ep_info_buffer or [])
            ep_return = float(np.mean([e["r"] for e in episodes])) if episodes else float("nan")
            row = {"timesteps": self.num_timesteps, "time": time.time(),
                   "episode_return": ep_return}
            row.update({k.split("/", 1)[1]: v for k, v in values.items()})
            append_csv(self.csv_path, row)
        self._reset()


class RolloutMarkCallback(BaseCallback):
    """Tracks the last step count the model's training state is consistent with.

    On-policy algorithms train only on whole rollouts: an interrupted rollout is discarded, so
    the interruption checkpoint carries the step count at the start of the current rollout.
    Off-policy algorithms store a transition just after the callbacks of its step: when an
    interruption lands in a callback, that step's transition is not in the replay buffer and
    is not counted either. Must come first in the callback list.
    """

    def __init__(self) -> None:
        super().__init__(0)
        self.rollout_start = 0
        self._step_seen = -1
        self._buffer_mark: tuple[int, bool] | None = None

    def _init_callback(self) -> None:
        self.rollout_start = self.num_timesteps

    def _on_rollout_start(self) -> None:
        self.rollout_start = self.num_timesteps

    def _on_step(self) -> bool:
        buffer = getattr(self.model, "replay_buffer", None)
        if buffer is not None:
            self._buffer_mark = (buffer.pos, buffer.full)
            self._step_seen = self.num_timesteps
        return True

    def consistent_steps(self) -> int:
        """Steps to record in an interruption checkpoint."""
        buffer = getattr(self.model, "replay_buffer", None)
        if buffer is None:
            return self.rollout_start
        steps = self.model.num_timesteps
        if steps == self._step_seen and (buffer.pos, buffer.full) == self._buffer_mark:
            return steps - self.model.n_envs  # interrupted before the transition was stored
        return steps
