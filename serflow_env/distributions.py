"""Service-time distributions: parameters, lattice probability masses and sampling.

The fast model represents latencies on a lattice of spacing ``h`` (nearest-point rounding), so
that convolving components is exact on the lattice; the reference simulator samples them.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from serflow_env.scenario import ServiceTime


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal with the given mean and coefficient of variation."""
    sigma2 = np.log1p(cv * cv)
    return float(np.log(mean) - 0.5 * sigma2), float(np.sqrt(sigma2))


def cdf(service: ServiceTime, x: np.ndarray) -> np.ndarray:
    """P(S <= x) for the service-time distribution."""
    x = np.asarray(x, dtype=float)
    if service.distribution == "deterministic":
        return (x >= service.mean_s).astype(float)
    if service.distribution == "exponential":
        return np.where(x > 0, -np.expm1(-np.maximum(x, 0) / service.mean_s), 0.0)
    mu, sigma = lognormal_params(service.mean_s, service.cv)
    return stats.lognorm.cdf(x, s=sigma, scale=np.exp(mu))


def lattice_pmf(service: ServiceTime, step_s: float, bins: int) -> np.ndarray:
    """Masses on lattice points 0, h, 2h, ... (nearest-point rounding), shape (bins,).

    Mass beyond the last point is left out, so the sum is P(S < (bins - 0.5) h); the missing
    mass is the probability of exceeding the lattice span.
    """
    edges = (np.arange(bins + 1) - 0.5) * step_s
    edges[0] = 0.0
    return np.diff(cdf(service, edges)) + np.r_[float(service.mean_s <= 0), np.zeros(bins - 1)]


def sample(service: ServiceTime, rng: np.random.Generator,
           size: int | tuple[int, ...]) -> np.ndarray:
    """Draw service times (seconds)."""
    if service.distribution == "deterministic":
        return np.full(size, service.mean_s)
    if service.distribution == "exponential":
        return rng.exponential(service.mean_s, size)
    mu, sigma = lognormal_params(service.mean_s, service.cv)
    return rng.lognormal(mu, sigma, size)


def expected_rounded_up(service: ServiceTime, granularity_s: float) -> float:
    """E[ceil(S / g) * g]: the mean billed duration when billing rounds up to ``g``.

    Exact for deterministic times; for continuous ones the rounding adds g/2 on average (exact
    when S spans many multiples of g, which holds for ML stages billed per millisecond).
    """
    if service.distribution == "deterministic":
        return float(np.ceil(service.mean_s / granularity_s - 1e-9) * granularity_s)
    return service.mean_s + 0.5 * granularity_s
