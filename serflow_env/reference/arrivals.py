"""Individual arrival times of one control interval, from the scenario's trace.

The trace is replayed as in the fast model (``serflow_env.arrivals``): trace position
``start + t / time_warp`` (wrapping), piecewise-linear expected cumulative count. What differs is
that every request gets its own time:

* "exact" traces release ``floor(C(x1)) - floor(C(x0))`` requests in each tick, as the fast
  model does, each at a uniformly random point of the tick's expected-count mass (so uniformly
  within its trace second when a tick is one trace second);
* "poisson" traces are an inhomogeneous Poisson process with the trace's piecewise-constant
  rate: a Poisson count per tick, then times by inverting the cumulative at uniform draws.
"""

from __future__ import annotations

import numpy as np

from serflow_env.arrivals import TraceTable


def interval_arrivals(table: TraceTable, trace_idx: int, start_s: float, time_s: float,
                      ticks: int, tick_s: float, time_warp: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted arrival times (simulated seconds) in ``[time_s, time_s + ticks * tick_s)`` and the
    number of arrivals per tick (ticks,)."""
    pos0 = start_s + time_s / time_warp
    pos = pos0 + np.arange(ticks + 1) * (tick_s / time_warp)
    idx = np.full(ticks + 1, trace_idx)
    cum = table.cumulative_at(idx, pos)
    if table.exact[trace_idx]:
        counts = np.diff(np.floor(cum + 1e-9)).astype(np.int64)
    else:
        counts = rng.poisson(np.maximum(np.diff(cum), 0.0))
    total = int(counts.sum())
    if total == 0:
        return np.empty(0), counts
    low = np.repeat(cum[:-1], counts)
    width = np.repeat(np.diff(cum), counts)
    targets = np.sort(low + rng.random(total) * width)
    # invert the piecewise-linear cumulative between its kinks (whole trace seconds)
    kinks = np.arange(np.floor(pos[0]) + 1.0, pos[-1])
    xs = np.concatenate([pos[:1], kinks, pos[-1:]])
    cs = table.cumulative_at(np.full(xs.size, trace_idx), xs)
    seg = np.clip(np.searchsorted(cs, targets, side="right") - 1, 0, xs.size - 2)
    rise = cs[seg + 1] - cs[seg]
    frac = np.where(rise > 0, (targets - cs[seg]) / np.where(rise > 0, rise, 1.0), 0.0)
    positions = xs[seg] + np.clip(frac, 0.0, 1.0) * (xs[seg + 1] - xs[seg])
    times = time_s + (positions - pos0) * time_warp
    end = time_s + ticks * tick_s
    return np.clip(times, time_s, np.nextafter(end, time_s)), counts
