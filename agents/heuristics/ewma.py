"""LIBRA's exponentially weighted rate tracker (mean and spread), for N envs at once."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr


def folded_normal_mean(shift: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """E|X| for X ~ Normal(shift, sigma) (sigma = 0: |shift|)."""
    shift = np.abs(shift)
    safe = np.maximum(sigma, 1e-12)
    z = shift / safe
    smooth = safe * math.sqrt(2.0 / math.pi) * np.exp(-0.5 * z * z) \
        + shift * (1.0 - 2.0 * ndtr(-z))
    return np.where(sigma > 0, smooth, shift)


class EwmaRate:
    """EWMA of a rate and of its absolute deviation, as in LIBRA's public code.

    Per update with the observed rate ``r``: ``std <- (1 - mu) * std + mu * |mean - r|`` (with
    the mean before the update), then ``mean <- (1 - alpha) * mean + alpha * r``. ``std`` is
    thus a mean absolute deviation, LIBRA's "spread". The first update of an env sets
    ``mean = r`` and ``std = 0`` (LIBRA starts from zero; starting from the first observation
    avoids a warm-up in which the mean is a fraction of the real rate).

    LIBRA updates every second; the env is monitored per control interval. Given the
    interval's mean rate ``r`` and the std ``s`` of its per-tick (per-second) rates,
    ``|mean - r|`` is replaced by its expectation over the interval's seconds,
    ``E|Normal(mean - r, s)|`` (a folded normal), so the spread keeps the per-second burstiness
    LIBRA's spread sees. Without ``s`` it is ``|mean - r|``.
    """

    def __init__(self, alpha: float = 0.2, mu: float = 0.2) -> None:
        for name, value in (("alpha", alpha), ("mu", mu)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name}={value!r}: allowed (0, 1]")
        self.alpha = float(alpha)
        self.mu = float(mu)
        self.mean = np.zeros(0)
        self.std = np.zeros(0)
        self.seen = np.zeros(0, dtype=bool)

    def reset(self, shape: tuple[int, ...]) -> None:
        """Forget everything; track rates of the given shape ((N,) or (N, K))."""
        self.mean = np.zeros(shape)
        self.std = np.zeros(shape)
        self.seen = np.zeros(shape[:1], dtype=bool)

    def forget(self, envs: np.ndarray) -> None:
        """Forget the envs selected by the boolean mask ``envs`` (N,): their next update starts
        afresh, as after :meth:`reset` (episodes that restarted inside a vector env)."""
        self.mean[envs] = 0.0
        self.std[envs] = 0.0
        self.seen[envs] = False

    def update(self, rate: np.ndarray, within_std: np.ndarray | None = None) -> None:
        """Fold in one interval's mean rate per env (shape as given to :meth:`reset`) and,
        optionally, the std of its per-tick rates (same shape)."""
        rate = np.asarray(rate, dtype=float)
        if rate.shape != self.mean.shape:
            raise ValueError(f"rate: expected shape {self.mean.shape}, got {rate.shape}")
        within = np.zeros_like(rate) if within_std is None else np.asarray(within_std, float)
        if within.shape != rate.shape:
            raise ValueError(f"within_std: expected shape {rate.shape}, got {within.shape}")
        first = self.seen.reshape(self.seen.shape + (1,) * (rate.ndim - 1))
        deviation = folded_normal_mean(self.mean - rate, within)
        std = (1.0 - self.mu) * self.std + self.mu * deviation
        mean = (1.0 - self.alpha) * self.mean + self.alpha * rate
        self.std = np.where(first, std, folded_normal_mean(np.zeros_like(rate), within))
        self.mean = np.where(first, mean, rate)
        self.seen = np.ones_like(self.seen)
