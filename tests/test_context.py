"""Context features (serflow_env/context.py): the causal Holt forecast against a brute-force
recursion and known signals, causality, the O(1) lookup, the time of day on the source's
clock, and the Gymnasium wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from agents.rl.config import parse_trace_spec
from serflow_env import SerflowEnv
from serflow_env.arrivals import TraceTable
from serflow_env.context import (
    ContextObservation,
    ContextSpec,
    TraceContext,
    holt_forecast,
    trace_clock,
)
from serflow_env.observation import observation_size
from serflow_env.scenario import load_scenario
from serflow_env.traces import Trace


def brute_force_holt(y: np.ndarray, alpha: float, beta: float, horizons: np.ndarray
                     ) -> np.ndarray:
    """Holt's recursion written out second by second (textbook form)."""
    rows = [np.zeros(horizons.size)]
    level, trend = y[0], 0.0
    for t, value in enumerate(y):
        if t > 0:
            new_level = alpha * value + (1 - alpha) * (level + trend)
            trend = beta * (new_level - level) + (1 - beta) * trend
            level = new_level
        rows.append(level + trend * (horizons + 1) / 2)  # mean of l + k b, k = 1..h
    return np.array(rows)


def true_mean_ahead(signal: np.ndarray, t: int, h: int) -> float:
    return float(signal[t:t + h].mean())


def test_holt_filter_equals_the_recursion() -> None:
    y = np.random.default_rng(3).poisson(120.0, 2000).astype(float)
    horizons = np.array([10.0, 100.0])
    np.testing.assert_allclose(holt_forecast(y, 0.05, 0.01, horizons),
                               brute_force_holt(y, 0.05, 0.01, horizons), atol=1e-8)


def test_forecast_of_a_linear_ramp_is_exact_after_warm_up() -> None:
    # Holt's trend model holds a ramp exactly: level y[t-1], trend the slope
    t = np.arange(6000)
    ramp = 40.0 + 0.02 * t
    table = holt_forecast(ramp, 0.05, 0.002, np.array([10.0, 100.0]))
    for s in (4000, 5000, 5800):
        assert table[s, 0] == pytest.approx(true_mean_ahead(ramp, s, 10), rel=1e-3)
        assert table[s, 1] == pytest.approx(true_mean_ahead(ramp, s, 100), rel=1e-3)


def test_forecast_follows_a_noisy_sine_better_than_the_last_window() -> None:
    """Poisson arrivals around a sine (100 +- 50 req/s, 30-min period): the forecast of the
    mean over the next h seconds beats the mean of the last h seconds (the naive forecast)
    and errs by under a fifth of the amplitude."""
    t = np.arange(20_000)
    amp = 50.0
    sine = 100.0 + amp * np.sin(2 * np.pi * t / 1800.0)
    y = np.random.default_rng(0).poisson(sine).astype(float)
    starts = np.arange(5000, 19_000, 7)
    for h in (10, 100):
        table = holt_forecast(y, 0.05, 0.002, np.array([float(h)]))[:, 0]
        truth = np.array([true_mean_ahead(sine, s, h) for s in starts])
        naive = np.array([y[s - h:s].mean() for s in starts])
        rmse = np.sqrt(np.mean((table[starts] - truth) ** 2))
        assert rmse < np.sqrt(np.mean((naive - truth) ** 2))
        assert rmse < 0.2 * amp


def test_forecast_is_causal() -> None:
    rng = np.random.default_rng(0)
    y = rng.poisson(80.0, 3000).astype(float)
    for cut in (1, 500, 2999):
        other = y.copy()
        other[cut:] = rng.poisson(300.0, 3000 - cut)  # the future changes
        a = holt_forecast(y, 0.02, 0.002, np.array([10.0]))
        b = holt_forecast(other, 0.02, 0.002, np.array([10.0]))
        # rows 0..cut use seconds < cut only: unchanged; row cut + 1 sees the change
        np.testing.assert_array_equal(a[:cut + 1], b[:cut + 1])
        assert a[cut + 1, 0] != b[cut + 1, 0]
    # the same through the traces of an env: trace 1 differs from trace 0 after 1000 s
    base = Trace(y, 1.0, "exact", "a")
    changed = Trace(np.concatenate([y[:1000], y[1000:] * 3]), 1.0, "exact", "b")
    ctx = TraceContext(TraceTable.build([base, changed], 1.0), "forecast", 10.0, 1.0, 100.0)
    pos = np.array([0.0, 10.0, 500.0, 1000.0, 1001.0])
    early = ctx.features(np.zeros(5, int), pos)
    late = ctx.features(np.ones(5, int), pos)
    np.testing.assert_array_equal(early[:4], late[:4])
    assert np.all(early[4] != late[4])


def test_lookup_is_a_table_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """After construction the features come from the precomputed table (no recomputation:
    O(1) per env and step), indexed by trace and second, the second lap from the first."""
    y = np.random.default_rng(1).poisson(60.0, 900).astype(float)
    short = np.random.default_rng(2).poisson(20.0, 300).astype(float)
    ctx = TraceContext(TraceTable.build([Trace(y, 1.0, "exact"), Trace(short, 1.0, "exact")],
                                        1.0), "forecast:horizons=1/3", 10.0, 1.0, 50.0)
    import serflow_env.context as context

    monkeypatch.setattr(context, "holt_forecast", None)  # any recomputation would fail
    idx = np.array([0, 0, 1, 1, 0])
    pos = np.array([0.0, 899.0, 299.0, 300.0 + 42.0, 900.0 * 3 + 5.0])
    got = ctx.features(idx, pos)
    monkeypatch.undo()
    spec = ctx.spec
    lap2 = holt_forecast(np.concatenate([short, short]), spec.alpha, spec.beta,
                         np.array([10.0, 30.0]))
    lap2_long = holt_forecast(np.concatenate([y, y]), spec.alpha, spec.beta,
                              np.array([10.0, 30.0]))
    np.testing.assert_allclose(got[0], lap2_long[0] / 50.0, rtol=1e-6)
    np.testing.assert_allclose(got[1], lap2_long[899] / 50.0, rtol=1e-6)
    np.testing.assert_allclose(got[2], lap2[299] / 50.0, rtol=1e-6)
    np.testing.assert_allclose(got[3], lap2[300 + 42] / 50.0, rtol=1e-6)  # second lap
    np.testing.assert_allclose(got[4], lap2_long[900 + 5] / 50.0, rtol=1e-6)  # later laps


def test_time_of_day_uses_the_source_clock() -> None:
    trace = Trace(np.ones(7200), 1.0, "exact", "day", origin_s=0.0)
    window = trace.window(3600.0, 1800.0)
    assert window.origin_s == 3600.0 and window.window(600.0, 60.0).origin_s == 4200.0
    ctx = TraceContext(TraceTable.build([window], 1.0), "time:period_s=7200", 10.0, 1.0, 1.0)
    got = ctx.features(np.zeros(2, int), np.array([0.0, 900.0]))
    expected = 2 * np.pi * np.array([3600.0, 4500.0]) / 7200.0
    np.testing.assert_allclose(got, np.stack([np.sin(expected), np.cos(expected)], 1),
                               atol=1e-6)
    # a windowed trace spec keeps its start as the origin
    assert parse_trace_spec("diurnal_2h.txt@1200:2400").origin_s == 1200.0
    with pytest.raises(ValueError, match="origin_s"):
        Trace(np.ones(3), 1.0, "exact", origin_s=-1.0)


def test_spec_parsing_and_bad_input() -> None:
    spec = ContextSpec.from_value("time+forecast:period_s=3600:horizons=2/5")
    assert spec.groups == ("time", "forecast") and spec.period_s == 3600.0
    assert spec.names() == ("time_sin", "time_cos", "forecast_2", "forecast_5")
    assert ContextSpec.from_value(spec.to_dict()) == spec
    assert not ContextSpec.from_value(None).enabled and not ContextSpec.from_value("none").enabled
    for bad, match in (("weather", "groups"), ("time:period_s=0", "period_s"),
                       ("forecast:alpha=1.5", "alpha"), ("forecast:horizons=0", "horizons"),
                       ("time:colour=red", "setting"), ("time:period_s=x", "not a number")):
        with pytest.raises(ValueError, match=match):
            ContextSpec.from_value(bad)


def test_gymnasium_wrapper_appends_the_clock_features() -> None:
    scenario = load_scenario("default", episode_steps=30,
                             **{"arrivals.trace": parse_trace_spec("diurnal_2h.txt@600:4200"),
                                "arrivals.random_start": True})
    env = ContextObservation(SerflowEnv(scenario=scenario), "time+forecast")
    obs, _ = env.reset(seed=4)
    base = observation_size(scenario.num_stages)
    assert obs.shape == (base + 4,) and env.observation_space.contains(obs)
    engine = env.unwrapped.engine
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    idx, pos = trace_clock(engine.params, engine.state)
    assert pos[0] == engine.state.trace_start_s[0] + 50.0
    phase = 2 * np.pi * (600.0 + pos[0]) / 86400.0
    np.testing.assert_allclose(obs[base:base + 2], [np.sin(phase), np.cos(phase)], atol=1e-6)
    ctx = TraceContext.for_params(engine.params, "forecast")
    np.testing.assert_allclose(obs[base + 2:], ctx.features(idx, pos)[0], rtol=1e-6)


def test_forecast_check_scores_a_ramp() -> None:
    from serflow_eval.forecast_check import forecast_errors, main

    ramp = 40.0 + 0.02 * np.arange(8000)
    rows = forecast_errors(ramp, ContextSpec.from_value("forecast"), 10.0, warm_up_s=4000)
    for row in rows:  # Holt holds a ramp; the last window lags it by h seconds
        assert row["holt_rmse"] < 0.01 and row["naive_rmse"] == pytest.approx(
            0.02 * row["horizon_s"], rel=1e-6)
    assert main(["--trace", "sine_1h.txt@0:1800"]) == 0
