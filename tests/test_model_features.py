"""Scenario features behave as modelled: trace replay, scaling, time warp, windows, exit
schedule and drift, memory-dependent function runtime, transfers and long-tailed service."""

from __future__ import annotations

import numpy as np
import pytest

from serflow_env import SerflowEnv, SerflowVectorEnv
from serflow_env.traces import Trace
from tests.conftest import actions, constant, scenario, stage


def _counts_trace(n: int = 600, seed: int = 0) -> Trace:
    values = np.random.default_rng(seed).integers(0, 40, n).astype(float)
    return Trace(values, 1.0, "exact", "counts")


def _two_stage(trace, **extra):
    return scenario([stage("a", exit_probability=0.5), stage("b")], trace, **extra)


def _arrivals(env, steps, share=1.0):
    k = env.scenario.num_stages
    return np.array([env.step(actions(k, -1.0, share))[4]["requests_arrived"]
                     for _ in range(steps)])


def test_exact_per_second_counts_are_used_as_they_are():
    trace = _counts_trace()
    env = SerflowEnv(_two_stage(trace))
    env.reset(seed=0)
    got = _arrivals(env, 20)
    np.testing.assert_array_equal(got, trace.values[:200].reshape(20, 10).sum(axis=1))


def test_sub_second_ticks_keep_exact_counts():
    trace = _counts_trace()
    env = SerflowEnv(_two_stage(trace, tick_s=0.25))
    env.reset(seed=0)
    np.testing.assert_array_equal(_arrivals(env, 5), trace.values[:50].reshape(5, 10).sum(1))


def test_scale_and_time_warp():
    trace = _counts_trace()
    scaled = SerflowEnv(_two_stage(trace, arrivals={"trace": trace, "scale": 2.0}))
    scaled.reset(seed=0)
    np.testing.assert_array_equal(_arrivals(scaled, 5), 2 * trace.values[:50].reshape(5, 10)
                                  .sum(axis=1))
    warped = SerflowEnv(_two_stage(trace, arrivals={"trace": trace, "time_warp": 2.0}))
    warped.reset(seed=0)
    # each trace second is replayed over 2 s: 10 s replay 5 trace seconds, counts kept
    expected = trace.values[:25].reshape(5, 5).sum(axis=1)
    np.testing.assert_allclose(_arrivals(warped, 5), expected, atol=1)
    both = SerflowEnv(_two_stage(trace, arrivals={"trace": trace, "time_warp": 2.0,
                                                  "scale": 2.0}))
    both.reset(seed=0)  # stretched but at the original per-second rate
    np.testing.assert_allclose(_arrivals(both, 5), 2 * expected, atol=1)


def test_random_window_start_differs_between_episodes_and_wraps():
    trace = _counts_trace(n=120)
    env = SerflowVectorEnv(16, scenario=_two_stage(trace, arrivals={
        "trace": trace, "random_start": True}), episode_steps=30)
    env.reset(seed=0)
    starts = env.engine.state.trace_start_s
    assert len(np.unique(starts)) > 8 and np.all((starts >= 0) & (starts < 120))
    total = sum(env.step(actions(2, -1, 1, 16))[4]["requests_arrived"] for _ in range(30))
    # 300 s over a 120 s trace: 2.5 laps whatever the start (wrap-around)
    assert np.all(np.abs(total - 2.5 * trace.values.sum()) <= 40 * 60)


def test_poisson_rate_trace_mean():
    env = SerflowVectorEnv(32, scenario=_two_stage(constant(50.0)))
    env.reset(seed=0)
    got = np.mean([env.step(actions(2, -1, 1, 32))[4]["requests_arrived"] for _ in range(10)])
    assert got == pytest.approx(500, rel=0.02)


def test_exit_schedule_moves_reach_fractions():
    spec = scenario([stage("a", exit_probability=0.2), stage("b")], constant(200.0),
                    exit_drift={"volatility": 0.0, "schedule": [[0, [0.2]], [300, [0.8]]]})
    env = SerflowEnv(spec, episode_steps=40)
    env.reset(seed=0)
    reach = []
    for _ in range(40):
        info = env.step(actions(2, -1, 1))[4]
        req = info["stage_requests"]
        reach.append(req[1] / req[0])
    assert np.mean(reach[:3]) == pytest.approx(0.8, abs=0.05)
    assert np.mean(reach[-5:]) == pytest.approx(0.2, abs=0.05)


def test_exit_drift_varies_reach_but_stays_a_probability():
    spec = scenario([stage("a", exit_probability=0.5), stage("b")], constant(300.0),
                    exit_drift={"volatility": 1.0, "reversion_s": 200.0})
    env = SerflowEnv(spec, episode_steps=60)
    env.reset(seed=1)
    probs = [env.step(actions(2, -1, 1))[4]["stage_exit_probability"][0] for _ in range(60)]
    assert np.std(probs) > 0.05 and np.all((np.array(probs) > 0) & (np.array(probs) < 1))


def _faas_latency(memory_mb: int) -> tuple[float, float]:
    s = stage("a", faas_memory_mb=memory_mb)
    s["faas_service"] = {"fixed_s": 0.02, "scalable_s": 1.0, "decay": 0.0015, "cv": 0.5}
    env = SerflowEnv(scenario([s, stage("b")], constant(50.0)))
    env.reset(seed=0)
    info = env.step(actions(2, -1, 1))[4]
    return info["latency_p50_s"], info["cost_faas_usd"] / info["faas_invocations"]


def test_more_function_memory_runs_faster():
    slow, _ = _faas_latency(256)
    fast, _ = _faas_latency(3008)
    assert fast < 0.5 * slow


def test_transfer_charge_only_when_crossing_services():
    priced = {"vm_to_vm": {"bandwidth_mb_s": 1250.0, "rtt_s": 0.0005, "price_per_gb": 0.0},
              "cross_service": {"bandwidth_mb_s": 150.0, "rtt_s": 0.02, "price_per_gb": 0.01},
              "faas_to_faas": {"bandwidth_mb_s": 100.0, "rtt_s": 0.03, "price_per_gb": 0.01}}
    stages = [stage("a", exit_probability=0.0, activation_mb=100.0, initial_vms=5),
              stage("b", initial_vms=5)]
    spec = scenario(stages, constant(20.0), transfer=priced)
    env = SerflowEnv(spec)
    env.reset(seed=0)
    all_vm = env.step(np.r_[-0.5, -0.5, -1, -1])[4]
    assert all_vm["cost_transfer_usd"] == 0.0
    crossing = env.step(np.r_[-0.5, -0.5, -1, 1])[4]  # stage b on functions
    gb = crossing["requests_completed"] * 100.0 / 1024
    assert crossing["cost_transfer_usd"] == pytest.approx(gb * 0.01, rel=0.05)


@pytest.mark.parametrize("latency_model", ["moments", "fourier"])
def test_long_tail_shows_in_the_violation_rate(latency_model):
    """Same mean service time, larger coefficient of variation: more late requests."""
    def violation(cv):
        s = stage("a", vm_mean=0.25, initial_vms=10, max_vms=10)
        s["vm_service"]["cv"] = cv
        env = SerflowEnv(scenario([s, stage("b", max_vms=10, initial_vms=10)], constant(20.0),
                                  latency_model=latency_model))
        env.reset(seed=0)
        return np.mean([env.step(np.r_[1, 1, -1, -1])[4]["violation_rate"] for _ in range(5)])

    assert violation(0.3) < 0.001 < violation(2.0)
