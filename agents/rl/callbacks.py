"""Training callback that needs only SB3: the step count an interruption checkpoint is
consistent with.

The callbacks that measure serving (the env's metrics in TensorBoard, validation episodes) are
:mod:`serflow_eval.callbacks`.
"""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


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
