"""Queueing theory the tests check both simulators against, written once and independently of
serflow_env (which has its own, vectorised formulas in serflow_env.queueing: checking the model
against those would check it against itself).

Each formula is the textbook form (Kleinrock, Queueing Systems I, ch. 3), in plain Python
floats, so a reader can check it line by line.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special


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


def mdc_wait(c: int, a: float, service: float = 1.0, tol: float = 1e-13) -> tuple[float, float]:
    """(P(wait > 0), mean wait E[W]) of M/D/c with offered load ``a`` < c, exactly, from
    Crommelin's embedded chain: every customer in service at time t has left by t + D and
    every one waiting at t is still there, so the number in system one service time later is
    Q(t + D) = max(Q(t) - c, 0) + A with A ~ Poisson(a), for any t. Its stationary law is the
    time-stationary one (solved here by iterating the chain from empty to ``tol``, on states
    up to where the tail is negligible; numpy for the convolutions); P(wait) = P(Q >= c) by
    PASTA and E[W] = E[max(Q - c, 0)] / lambda by Little's law."""
    if c < 1 or not 0 < a < c:
        raise ValueError(f"mdc_wait: c={c}, a={a}; allowed c >= 1, 0 < a < c")
    size = c + 60 + int(40 * math.sqrt(a) / (1 - a / c))
    k = np.arange(size)
    arrivals = np.exp(k * math.log(a) - a - special.gammaln(k + 1.0))  # Poisson(a) pmf
    pi = np.zeros(size)
    pi[0] = 1.0
    while True:
        base = np.zeros(size)  # law of max(Q - c, 0)
        base[0] = pi[: c + 1].sum()
        base[1: size - c] = pi[c + 1:]
        nxt = np.convolve(base, arrivals)[:size]
        nxt /= nxt.sum()
        change = float(np.abs(nxt - pi).max())
        pi = nxt
        if change < tol:
            break
    p_wait = float(pi[c:].sum())
    queue = float((np.maximum(k - c, 0) * pi).sum())
    return p_wait, queue / (a / service)


def mmck_mean_wait(c: int, a: float, capacity: int, mean_service: float = 1.0) -> float:
    """Mean wait of the admitted customers of M/M/c/K (K = ``capacity`` in the system, queue
    and service): the birth-death stationary law p_n ~ a^n / (n! or c! c^(n-c)), seen by
    arrivals (PASTA) that find fewer than K; one who finds n >= c waits n - c + 1 departures
    at rate c / mean_service."""
    p = [1.0]
    for n in range(1, capacity + 1):
        p.append(p[-1] * a / min(n, c))
    admitted = sum(p[:capacity])
    waits = sum(p[n] * (n - c + 1) for n in range(c, capacity))
    return waits / admitted * mean_service / c
