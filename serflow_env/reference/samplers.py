"""Buffered random draws for the event loop: numpy fills blocks, the loop pops scalars.

Drawing one scalar at a time from numpy costs about a microsecond; popping from a list costs
tens of nanoseconds. The order of the draws is fixed by the order of the events, so a seeded
generator still gives the same result every run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from serflow_env import distributions
from serflow_env.scenario import ServiceTime

BLOCK = 2048


class Draws:
    """A refillable stack of draws from one distribution; ``take()`` returns the next one."""

    __slots__ = ("_fill", "_stack")

    def __init__(self, fill: Callable[[int], np.ndarray]) -> None:
        self._fill = fill
        self._stack: list[float] = []

    def take(self) -> float:
        stack = self._stack
        if not stack:
            stack.extend(self._fill(BLOCK).tolist())
        return stack.pop()


def service_draws(service: ServiceTime, rng: np.random.Generator) -> Draws:
    """Service (or cold-start) times of one distribution, seconds."""
    return Draws(lambda n: distributions.sample(service, rng, n))


def uniform_draws(rng: np.random.Generator) -> Draws:
    """Uniform [0, 1) draws (exit decisions)."""
    return Draws(rng.random)
