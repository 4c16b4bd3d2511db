"""Queueing theory the tests check both simulators against, written once and independently of
serflow_env (which has its own, vectorised formulas in serflow_env.queueing: checking the model
against those would check it against itself).

Each formula is the textbook form (Kleinrock, Queueing Systems I, ch. 3), in plain Python
floats, so a reader can check it line by line.
"""

from __future__ import annotations

import math


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of an M/G/c/c loss system with offered load ``a`` (Erlang's loss
    formula, by its recursion B(n) = a B(n-1) / (n + a B(n-1)), B(0) = 1). It depends on the
    service distribution only through its mean (insensitivity)."""
    if c < 0 or a < 0:
        raise ValueError(f"erlang_b: c={c}, a={a}; allowed c >= 0, a >= 0")
    b = 1.0
    for n in range(1, c + 1):
        b = a * b / (n + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """P(wait > 0) in M/M/c with offered load ``a`` = lambda / mu < c (the explicit sum)."""
    if c < 1 or not 0 <= a < c:
        raise ValueError(f"erlang_c: c={c}, a={a}; allowed c >= 1, 0 <= a < c")
    top = a**c / math.factorial(c) / (1 - a / c)
    return top / (sum(a**n / math.factorial(n) for n in range(c)) + top)


def mmc_mean_wait(c: int, a: float, mean_service: float = 1.0) -> float:
    """Mean wait in queue E[W] of M/M/c (over all customers): C(c, a) / (c mu - lambda), i.e.
    C(c, a) * mean_service / (c - a)."""
    return erlang_c(c, a) * mean_service / (c - a)


def mmc_sojourn_tail(c: int, a: float, t: float, mean_service: float = 1.0) -> float:
    """P(W + S > t) in FIFO M/M/c: the wait W is 0 with probability 1 - C(c, a), else
    exponential of rate theta = (c - a) / mean_service; the service S is exponential of rate
    mu = 1 / mean_service, so W + S given a wait is hypoexponential:
    P(W + S > t) = (1 - C) e^(-mu t) + C (theta e^(-mu t) - mu e^(-theta t)) / (theta - mu)
    (its limit (1 + mu t) e^(-mu t) when theta = mu)."""
    p_wait = erlang_c(c, a)
    mu, theta = 1.0 / mean_service, (c - a) / mean_service
    if abs(theta - mu) < 1e-12 * mu:
        waited = (1.0 + mu * t) * math.exp(-mu * t)
    else:
        waited = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1.0 - p_wait) * math.exp(-mu * t) + p_wait * waited


def mmc_sojourn_quantile(c: int, a: float, level: float, mean_service: float = 1.0) -> float:
    """The ``level`` quantile of the sojourn time W + S of FIFO M/M/c (bisection on
    :func:`mmc_sojourn_tail`, to a relative 1e-12)."""
    lo, hi = 0.0, mean_service
    while mmc_sojourn_tail(c, a, hi, mean_service) > 1.0 - level:
        hi *= 2.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mmc_sojourn_tail(c, a, mid, mean_service) > 1.0 - level \
            else (lo, mid)
    return 0.5 * (lo + hi)
