"""Context features from the trace clock: time of day and a causal load forecast.

Optional observation features, appended after the env's own (:mod:`serflow_env.observation`),
computed from where an env is in its trace: ``position = trace_start_s + time_s / time_warp``
trace seconds, on the clock of the trace's source (``Trace.origin_s`` + position).

=========  ===================================================================================
group      features
=========  ===================================================================================
time       ``sin`` and ``cos`` of ``2 pi (origin_s + position) / period_s`` (``period_s``
           86400: the time of day)
forecast   per horizon ``h`` (control intervals, default 1 and 10): a Holt (double exponential
           smoothing) forecast of the mean arrival rate over the next ``h`` intervals /
           reference rate, made from the trace seconds already past (rolling origin: the value
           at trace second ``t`` uses seconds ``< t`` only, i.e. what a controller logging its
           own arrivals has seen)
=========  ===================================================================================

The forecast is precomputed once per trace when a :class:`TraceContext` is built (a linear
filter over the per-second rates, ``scipy.signal.lfilter``, over two laps of the trace so that
a looped trace's second lap forecasts from the first) and looked up per step by trace index and
second: O(1) per env and step whatever the trace length. Two ways to get the features:
:class:`ContextObservation` (a Gymnasium ObservationWrapper of :class:`~serflow_env.env.
SerflowEnv`) and ``agents.rl.context.ContextVecEnv`` (the SB3 VecEnv wrapper train.py uses).
They are wrappers rather than env columns so that the env's observation (and every heuristic
reading it by column) stays as it is; they read the clock from the engine's state arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from scipy.signal import lfilter, ss2tf

from serflow_env.arrivals import TraceTable
from serflow_env.params import Params
from serflow_env.state import State

GROUPS = ("time", "forecast")


@dataclass(frozen=True)
class ContextSpec:
    """Which context features and their settings; ``parse("time+forecast:period_s=7200")``."""

    groups: tuple[str, ...] = ()
    period_s: float = 86400.0  # time: the cycle's length in (source) trace seconds
    alpha: float = 0.05  # forecast: Holt level smoothing per trace second
    beta: float = 0.002  # forecast: Holt trend smoothing per trace second
    horizons: tuple[int, ...] = field(default=(1, 10))  # forecast: control intervals ahead

    def __post_init__(self) -> None:
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown or len(set(self.groups)) != len(self.groups):
            raise ValueError(f"context groups {list(self.groups)}; allowed each of "
                             f"{list(GROUPS)} at most once")
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"context period_s={self.period_s!r}; allowed > 0 (seconds)")
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"context {name}={value!r}; allowed (0, 1)")
        if not self.horizons or any(int(h) != h or not 1 <= h <= 1000 for h in self.horizons):
            raise ValueError(f"context horizons={list(self.horizons)}; allowed integers "
                             "1..1000 (control intervals), at least one")

    @property
    def enabled(self) -> bool:
        return bool(self.groups)

    def names(self) -> tuple[str, ...]:
        """Feature names in column order."""
        out: list[str] = []
        if "time" in self.groups:
            out += ["time_sin", "time_cos"]
        if "forecast" in self.groups:
            out += [f"forecast_{h}" for h in self.horizons]
        return tuple(out)

    def size(self) -> int:
        return len(self.names())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["groups"], data["horizons"] = list(self.groups), list(self.horizons)
        return data

    @classmethod
    def from_value(cls, value: ContextSpec | Mapping[str, Any] | str | None) -> ContextSpec:
        """A spec from a spec, its dict (run.json), a string (``KIND[+KIND][:KEY=VALUE...]``,
        e.g. ``forecast:horizons=1/10``, or ``none``) or None (no features)."""
        if isinstance(value, ContextSpec):
            return value
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            data = dict(value)
            data["groups"] = tuple(data.get("groups", ()))
            if "horizons" in data:
                data["horizons"] = tuple(int(h) for h in data["horizons"])
            try:
                return cls(**data)
            except TypeError as exc:
                raise ValueError(f"context {value!r}: {exc}") from None
        text = str(value).strip()
        if text.lower() in ("", "none"):
            return cls()
        head, *settings = text.split(":")
        kwargs: dict[str, Any] = {"groups": tuple(g.strip() for g in head.split("+"))}
        for item in settings:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in ("period_s", "alpha", "beta", "horizons"):
                raise ValueError(f"context {text!r}: setting {item!r}; allowed KEY=VALUE with "
                                 "KEY one of period_s, alpha, beta, horizons (e.g. "
                                 "horizons=1/10)")
            try:
                kwargs[key] = (tuple(int(h) for h in raw.split("/")) if key == "horizons"
                               else float(raw))
            except ValueError:
                raise ValueError(f"context {text!r}: {key}={raw!r} is not a number") from None
        return cls(**kwargs)


def holt_forecast(rates: np.ndarray, alpha: float, beta: float,
                  horizons_s: np.ndarray) -> np.ndarray:
    """Rolling-origin Holt forecasts of a per-second rate series ``y`` (T,).

    Returns (T + 1, H): row ``t`` is the forecast of the mean of ``y`` over the ``h`` seconds
    after ``t`` (``horizons_s``), made from ``y[:t]`` only: ``l + b (h + 1) / 2`` with Holt's
    level ``l`` and trend ``b`` after ``y[t - 1]`` (started at ``l = y[0]``, ``b = 0``). Row 0
    (nothing seen) is 0.
    """
    y = np.asarray(rates, dtype=np.float64)
    h = np.asarray(horizons_s, dtype=np.float64)
    out = np.zeros((y.size + 1, h.size))
    if y.size == 0:
        return out
    a, b = alpha, beta
    # x_t = A x_{t-1} + B y_t for x = (level, trend): as a state-space filter with state
    # x_{t-1} and output x_t, run on y - y[0] from rest (the constant y[0] with level y[0] and
    # trend 0 is a fixed point, so the level is shifted back by y[0])
    transition = np.array([[1.0 - a, 1.0 - a], [-a * b, 1.0 - a * b]])
    gain = np.array([[a], [a * b]])
    num, den = ss2tf(transition, gain, transition, gain)
    level = lfilter(num[0], den, y - y[0]) + y[0]
    trend = lfilter(num[1], den, y - y[0])
    out[1:] = level[:, None] + trend[:, None] * (h[None, :] + 1.0) / 2.0
    return out


class TraceContext:
    """The context features of a scenario's traces, looked up by (trace index, position)."""

    def __init__(self, traces: TraceTable, spec: ContextSpec | Mapping[str, Any] | str | None,
                 control_interval_s: float, time_warp: float, reference_rate: float) -> None:
        self.spec = ContextSpec.from_value(spec)
        self.lengths = np.asarray(traces.lengths, dtype=np.int64)
        origins = traces.origins or (0.0,) * len(self.lengths)
        self.origins = np.asarray(origins, dtype=np.float64)
        self.reference_rate = float(reference_rate)
        self.step_s = control_interval_s / time_warp  # trace seconds per control interval
        self.table: np.ndarray | None = None
        if "forecast" in self.spec.groups:
            horizons_s = np.asarray(self.spec.horizons, dtype=float) * self.step_s
            m, width = len(self.lengths), int(self.lengths.max())
            # (M, 2 Lmax + 1, H): two laps, row L + w of lap >= 1 forecasts from a whole lap
            table = np.zeros((m, 2 * width + 1, horizons_s.size))
            for i, length in enumerate(self.lengths.tolist()):
                y = traces.per_second[i, :length]
                table[i, :2 * length + 1] = holt_forecast(
                    np.concatenate([y, y]), self.spec.alpha, self.spec.beta, horizons_s)
            self.table = table / self.reference_rate

    @classmethod
    def for_params(cls, params: Params, spec: ContextSpec | Mapping[str, Any] | str | None,
                   reference_rate: float | None = None) -> TraceContext:
        """From an env's params (its traces, interval, warp; reference rate unless given)."""
        return cls(params.traces, spec, params.control_interval_s, params.time_warp,
                   params.reference_rate if reference_rate is None else reference_rate)

    def size(self) -> int:
        return self.spec.size()

    def features(self, trace_idx: np.ndarray, position_s: np.ndarray) -> np.ndarray:
        """Features (N, F) float32 of envs at trace ``trace_idx`` (N,), ``position_s`` (N,)
        trace seconds since the trace's start (laps included)."""
        idx = np.asarray(trace_idx, dtype=np.int64)
        pos = np.asarray(position_s, dtype=np.float64)
        cols: list[np.ndarray] = []
        if "time" in self.spec.groups:
            phase = 2.0 * np.pi * (self.origins[idx] + pos) / self.spec.period_s
            cols += [np.sin(phase)[:, None], np.cos(phase)[:, None]]
        if self.table is not None:
            second = np.floor(pos + 1e-9).astype(np.int64)
            length = self.lengths[idx]
            within = second % length
            row = np.where(second >= length, within + length, within)
            cols.append(self.table[idx, row])
        if not cols:
            return np.zeros((idx.size, 0), dtype=np.float32)
        return np.concatenate(cols, axis=1).astype(np.float32)


def trace_clock(params: Params, state: State) -> tuple[np.ndarray, np.ndarray]:
    """Each env's (trace index, trace position in seconds) now."""
    return state.trace_idx.copy(), state.trace_start_s + state.time_s / params.time_warp


def extended_space(space: spaces.Box, extra: int) -> spaces.Box:
    """``space`` (1-D Box) with ``extra`` more columns (bounds of the env's observation)."""
    low = np.concatenate([space.low, np.full(extra, space.low.min(), dtype=space.dtype)])
    high = np.concatenate([space.high, np.full(extra, space.high.max(), dtype=space.dtype)])
    return spaces.Box(low, high, dtype=space.dtype)


class ContextObservation(gym.ObservationWrapper):
    """A :class:`~serflow_env.env.SerflowEnv` whose observation has the context features of
    ``spec`` appended (names: ``context.spec.names()``)."""

    def __init__(self, env: gym.Env, spec: ContextSpec | Mapping[str, Any] | str) -> None:
        super().__init__(env)
        engine = env.unwrapped.engine
        self.context = TraceContext.for_params(engine.params, spec)
        self.observation_space = extended_space(env.observation_space, self.context.size())

    def observation(self, observation: np.ndarray) -> np.ndarray:
        engine = self.env.unwrapped.engine
        idx, pos = trace_clock(engine.params, engine.state)
        extra = self.context.features(idx, pos)[0]
        return np.concatenate([np.asarray(observation, dtype=np.float32), extra])
