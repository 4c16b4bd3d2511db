"""Arrival traces as arrays the vectorized model can index for many environments at once.

Each trace becomes a per-second array of counts (scaled) and its running sum. The expected
number of arrivals between trace positions x0 and x1 (in trace seconds, wrapping around the end)
is the difference of the piecewise-linear cumulative count. "exact" traces release
``floor(C(x1)) - floor(C(x0))`` requests, so every count is used as it is (spread evenly within
its second); "poisson" traces draw a Poisson number with that mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serflow_env.scenario import ArrivalConfig, ScenarioError
from serflow_env.traces import Trace, generate, load_trace

#: the generated traces shipped with the package (``traces/NAME.txt`` or ``NAME.txt`` names them)
SHIPPED_TRACE_DIR = Path(__file__).resolve().parent / "data" / "traces"


def resolve_trace(spec: object, fmt: str = "auto") -> Trace:
    """Turn one scenario trace entry (Trace, generator mapping or file path) into a Trace."""
    if isinstance(spec, Trace):
        return spec
    if isinstance(spec, Mapping):
        return generate(spec)
    path = Path(str(spec)).expanduser()
    if not path.exists() and not path.is_absolute() and path.parent in (Path(), Path("traces")):
        shipped = SHIPPED_TRACE_DIR / path.name
        if shipped.exists():
            path = shipped
    if not path.exists():
        raise FileNotFoundError(
            f"arrivals.trace: trace file not found: {spec!s} (looked in the working directory "
            f"and among the shipped traces in {SHIPPED_TRACE_DIR})"
        )
    return load_trace(path, format=fmt)


def resolve_traces(config: ArrivalConfig) -> list[Trace]:
    """All traces a scenario names (one, or several to sample from per episode)."""
    entries = config.trace if isinstance(config.trace, (list, tuple)) else [config.trace]
    return [resolve_trace(entry, config.format) for entry in entries]


@dataclass(frozen=True)
class TraceTable:
    """Padded per-second arrays of several traces, for gathering by trace index."""

    per_second: np.ndarray  # (M, Lmax) scaled requests in each trace second
    cumulative: np.ndarray  # (M, Lmax + 1) running sum, cumulative[:, 0] = 0
    lengths: np.ndarray  # (M,) trace length in seconds
    totals: np.ndarray  # (M,) requests in one pass of the trace
    exact: np.ndarray  # (M,) bool: counts used as they are (else Poisson)
    mean_rate: float  # requests/s averaged over the traces (scaled)
    names: tuple[str, ...]
    origins: tuple[float, ...] = ()  # source second of each trace's start (Trace.origin_s)

    @classmethod
    def build(cls, traces: Sequence[Trace], scale: float) -> TraceTable:
        if not traces:
            raise ScenarioError("arrivals.trace: no traces given")
        per_sec = [np.asarray(t.rate_per_second(), dtype=float) * scale for t in traces]
        lengths = np.array([len(p) for p in per_sec], dtype=np.int64)
        if np.any(lengths == 0):
            raise ScenarioError("arrivals.trace: a trace has no seconds")
        width = int(lengths.max())
        table = np.zeros((len(per_sec), width))
        for i, p in enumerate(per_sec):
            table[i, : len(p)] = p
        cumulative = np.concatenate([np.zeros((len(per_sec), 1)), np.cumsum(table, axis=1)], 1)
        totals = cumulative[np.arange(len(per_sec)), lengths]
        exact = np.array([t.arrival_process == "exact" for t in traces])
        mean_rate = float(np.mean(totals / lengths))
        return cls(table, cumulative, lengths, totals, exact, mean_rate,
                   tuple(t.name for t in traces), tuple(float(t.origin_s) for t in traces))

    def cumulative_at(self, trace_idx: np.ndarray, position_s: np.ndarray) -> np.ndarray:
        """Expected requests from trace start to ``position_s`` (trace seconds), wrapping.

        ``trace_idx`` and ``position_s`` broadcast against each other.
        """
        if self.lengths.size == 1:  # one trace: scalar parameters, 1-D lookups (hot path)
            laps, within = _laps(position_s, self.lengths[0])
            second = within.astype(np.int64)
            values = (laps * self.totals[0] + self.cumulative[0][second]
                      + (within - second) * self.per_second[0][second])
            shape = np.broadcast_shapes(np.shape(trace_idx), np.shape(values))
            return values if np.shape(values) == shape else np.broadcast_to(values, shape).copy()
        laps, within = _laps(position_s, self.lengths[trace_idx])
        second = within.astype(np.int64)
        frac = within - second
        return (laps * self.totals[trace_idx] + self.cumulative[trace_idx, second]
                + frac * self.per_second[trace_idx, second])


def _laps(position_s: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole laps of the trace and the position within the lap, in [0, length).

    Like ``np.divmod`` for non-negative positions, but more than ten times faster; a
    position a rounding error below a lap boundary counts as the boundary.
    """
    laps = np.floor(np.divide(position_s, length))
    within = np.maximum(position_s - laps * length, 0.0)
    return laps, within
