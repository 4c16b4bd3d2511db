"""Arrivals of one control interval: per-tick counts (as the fast model draws them) and
individual arrival times.

The trace is replayed as in the fast model (``serflow_env.dynamics.step``): trace position
``start + t / time_warp`` (wrapping), piecewise-linear expected cumulative count ``C``.
:func:`tick_counts` returns, for all envs at once, exactly the fast model's per-tick counts:
``floor(C(x1)) - floor(C(x0))`` for "exact" traces and Poisson draws for "poisson" traces, from
the same generator and in the same shape, so both simulators see the same counts for the same
seed. :func:`arrival_times` then gives every request its own time: uniformly at random in the
tick's expected-count mass (the inverse of ``C`` at uniform draws). For a Poisson trace a
Poisson count with iid positions from the rate is exactly an inhomogeneous Poisson process;
for an "exact" per-second trace with 1 s ticks it spreads each second's count uniformly at
random within the second.
"""

from __future__ import annotations

import numpy as np

from serflow_env.arrivals import TraceTable


def trace_positions(trace_start_s: np.ndarray, time_s: np.ndarray, ticks: int, tick_s: float,
                    time_warp: float) -> np.ndarray:
    """Trace positions (N, ticks + 1) of the tick boundaries of the envs' next interval."""
    return (trace_start_s + time_s / time_warp)[:, None] \
        + np.arange(ticks + 1)[None, :] * (tick_s / time_warp)


def tick_counts(table: TraceTable, trace_idx: np.ndarray, positions: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Requests arriving in each tick (N, ticks), drawn exactly as the fast model does."""
    n, width = positions.shape
    cum = table.cumulative_at(np.repeat(trace_idx, width), positions.ravel()).reshape(n, width)
    counts = np.diff(np.floor(cum + 1e-9), axis=1).astype(np.int64)
    exact = table.exact[trace_idx]
    if not exact.all():
        drawn = rng.poisson(np.maximum(np.diff(cum, axis=1), 0.0))
        counts = np.where(exact[:, None], counts, drawn)
    return counts


def arrival_times(table: TraceTable, trace_idx: int, positions: np.ndarray,
                  counts: np.ndarray, time_s: float, time_warp: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times (simulated seconds) of ``counts[j]`` requests in each tick j, for
    one env whose tick boundaries are at trace ``positions`` (ticks + 1,)."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0)
    idx = np.full(positions.size, trace_idx)
    cum = table.cumulative_at(idx, positions)
    low = np.repeat(cum[:-1], counts)
    width = np.repeat(np.diff(cum), counts)
    targets = np.sort(low + rng.random(total) * width)
    # invert the piecewise-linear cumulative between its kinks (whole trace seconds)
    kinks = np.arange(np.floor(positions[0]) + 1.0, positions[-1])
    xs = np.concatenate([positions[:1], kinks, positions[-1:]])
    cs = table.cumulative_at(np.full(xs.size, trace_idx), xs)
    seg = np.clip(np.searchsorted(cs, targets, side="right") - 1, 0, xs.size - 2)
    rise = cs[seg + 1] - cs[seg]
    frac = np.where(rise > 0, (targets - cs[seg]) / np.where(rise > 0, rise, 1.0), 0.0)
    at = xs[seg] + np.clip(frac, 0.0, 1.0) * (xs[seg + 1] - xs[seg])
    times = time_s + (at - positions[0]) * time_warp
    end = time_s + (positions[-1] - positions[0]) * time_warp
    return np.clip(times, time_s, np.nextafter(end, time_s))
