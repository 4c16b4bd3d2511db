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
