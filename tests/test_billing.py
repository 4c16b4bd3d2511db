"""Billing rules: VM per-second with a 60 s minimum, function per-ms rounding, cold starts,
keep-alive expiry and concurrency throttling."""

from __future__ import annotations

import numpy as np
import pytest

from serflow_env import SerflowEnv, SerflowVectorEnv
from serflow_env.reference import ReferenceVectorEnv, checks
from serflow_env.scenario import INSTANCE_PRICES_PER_HOUR
from serflow_env.traces import Trace
from tests import theory
from tests.conftest import actions, constant, scenario, stage

PRICE_GB_S = 0.0000166667
PRICE_REQ = 0.2e-6


def _env(stages, trace, **extra) -> SerflowEnv:
    env = SerflowEnv(scenario(stages, trace, **extra))
    env.reset(seed=0)
    return env


def test_vm_up_for_10_s_bills_60_s_and_longer_bills_per_second():
    price = INSTANCE_PRICES_PER_HOUR["c6i.large"] / 3600
    env = _env([stage("a", max_vms=10), stage("b", max_vms=10)], constant(0.0),
               vm={"boot_s": 0.0, "min_billed_s": 60.0}, faas={"prewarm": False})
    _, _, _, _, info = env.step(np.r_[-0.8, -1, 1, 1])  # 1 VM on stage a, 10 s
    _, _, _, _, info2 = env.step(np.r_[-1, -1, 1, 1])  # removed
    assert info["cost_vm_usd"] + info2["cost_vm_usd"] == pytest.approx(60 * price)
    env.reset(seed=0)
    total = 0.0
    for _ in range(10):  # 100 s
        total += env.step(np.r_[-0.8, -1, 1, 1])[4]["cost_vm_usd"]
    total += env.step(np.r_[-1, -1, 1, 1])[4]["cost_vm_usd"]
    assert total == pytest.approx(100 * price)


def test_booting_vm_is_billed_but_does_not_serve():
    env = _env([stage("a", max_vms=10), stage("b", max_vms=10)], constant(5.0),
               vm={"boot_s": 30.0, "min_billed_s": 0.0}, faas={"prewarm": False})
    served_vm = []
    for _ in range(5):
        info = env.step(np.r_[-0.8, -1, -1, -1])[4]
        served_vm.append(info["faas_invocations"])
        assert info["cost_vm_usd"] > 0
    # during boot everything went to functions; afterwards nothing did
    assert served_vm[0] > 0 and served_vm[1] > 0 and served_vm[-1] == 0


def _det_stage(name, mean, exit_p=1.0):
    return stage(name, exit_probability=exit_p, faas_mean=mean, faas_dist="deterministic",
                 faas_memory_mb=1024)


def _exact(rate: int) -> Trace:
    return Trace(np.full(3600, float(rate)), 1.0, "exact", "exact-constant")


def test_function_duration_rounded_up_per_ms_and_request_fee():
    env = _env([_det_stage("a", 0.1003), _det_stage("b", 0.05)], _exact(10),
               faas={"prewarm": True, "cold_start": {"distribution": "deterministic",
                                                     "mean_s": 1.0}})
    info = env.step(actions(2, -1.0, 1.0))[4]
    n, cold = info["faas_invocations"], info["faas_cold_starts"]
    assert n == 100 and cold == 0  # prewarmed containers cover the constant traffic
    expected = n * (0.101 * 1.0 * PRICE_GB_S + PRICE_REQ)
    assert info["cost_faas_usd"] == pytest.approx(expected, rel=1e-9)


def test_cold_start_initialisation_is_billed():
    env = _env([_det_stage("a", 0.2), _det_stage("b", 0.05)], constant(10.0),
               faas={"prewarm": False, "cold_start": {"distribution": "deterministic",
                                                      "mean_s": 1.5}})
    info = env.step(actions(2, -1.0, 1.0))[4]
    n, cold = info["faas_invocations"], info["faas_cold_starts"]
    assert cold > 0
    expected = (n * 0.2 + cold * 1.5) * PRICE_GB_S + n * PRICE_REQ
    assert info["cost_faas_usd"] == pytest.approx(expected, rel=1e-9)
    assert info["slo_violations"] > 0  # a 1.5 s cold start misses the 1 s deadline


def _burst_trace(active_seconds: list[tuple[int, int]], rate: int = 10) -> Trace:
    values = np.zeros(3600)
    for start, end in active_seconds:
        values[start:end] = rate
    return Trace(values, 1.0, "exact", "bursts")


@pytest.mark.parametrize("gap_steps, cold_expected", [(2, False), (5, True)])
def test_keep_alive_expiry(gap_steps, cold_expected):
    """Containers used in the first interval live 30 s: a 20 s gap finds them warm, 50 s not."""
    second = 10 * (1 + gap_steps)
    trace = _burst_trace([(0, 10), (second, second + 10)])
    env = _env([_det_stage("a", 0.1), _det_stage("b", 0.1)], trace,
               faas={"prewarm": False, "keep_alive_s": 30.0})
    first = env.step(actions(2, -1.0, 1.0))[4]
    assert first["faas_cold_starts"] > 0
    for _ in range(gap_steps):
        assert env.step(actions(2, -1.0, 1.0))[4]["faas_invocations"] == 0
    again = env.step(actions(2, -1.0, 1.0))[4]
    assert again["faas_invocations"] == 100
    assert (again["faas_cold_starts"] > 0) == cold_expected


def test_concurrency_limit_throttles_and_counts_as_violations():
    """200 req/s * 0.5 s = 100 concurrent offered to a limit of 20: a loss system, whose
    blocking is Erlang-B (tests/theory.py), in both simulators."""
    faas = {"concurrency_limit": 20, "prewarm": True}
    blocking = theory.erlang_b(20, 100.0)
    assert 0.80 < blocking < 0.81
    env = _env([_det_stage("a", 0.5), _det_stage("b", 0.5)], _exact(200), faas=faas)
    info = env.step(actions(2, -1.0, 1.0))[4]
    assert info["requests_arrived"] == 2000
    assert info["requests_throttled"] == pytest.approx(blocking * 2000, rel=0.03)
    assert info["requests_dropped"] >= info["requests_throttled"]
    assert info["slo_violations"] >= info["requests_throttled"]
    assert info["faas_invocations"] == info["requests_arrived"] - info["requests_throttled"]
    ref = ReferenceVectorEnv(1, scenario=scenario([_det_stage("a", 0.5), _det_stage("b", 0.5)],
                                                  _exact(200), faas=faas))
    ref.reset(seed=0)
    ref_info = ref.step(actions(2, -1.0, 1.0, num_envs=1))[4]
    # 20 containers each start at most 10 s / 0.5 s = 20 requests in the interval
    assert ref_info["faas_invocations"][0] <= 400
    assert ref_info["requests_throttled"][0] == pytest.approx(blocking * 2000, rel=0.03)
    assert info["requests_throttled"] == pytest.approx(ref_info["requests_throttled"][0],
                                                       rel=0.03)


@pytest.mark.parametrize("limit, load", checks.LOSS_GRID)
def test_fast_model_throttles_like_erlang_b(limit, load):
    """FaaS-only, Poisson arrivals, log-normal service: the fast model's share of throttled
    requests over 100 intervals is Erlang-B's blocking (tests/theory.py) within 10 % + 0.2 pp
    (the per-request reference is held to the same in test_reference)."""
    expected = theory.erlang_b(limit, load)
    got = checks.loss_fraction(SerflowVectorEnv, limit, load)
    assert abs(got - expected) <= 0.10 * expected + 0.002


def test_containers_still_initialising_at_step_end_are_not_ready_in_the_next_step():
    """A burst in the last 2 s of an interval on a cold pool with 4 s cold starts: the
    containers started then become usable only 2-3 s into the next interval, so requests
    arriving before that start more containers (the storm outlasts the interval)."""
    trace = _burst_trace([(8, 3600)], rate=100)
    env = _env([_det_stage("a", 0.5), _det_stage("b", 0.5)], trace,
               faas={"prewarm": False, "cold_start": {"distribution": "deterministic",
                                                      "mean_s": 4.0}})
    first = env.step(actions(2, -1.0, 1.0))[4]
    assert first["faas_cold_starts"] > 0
    starting = env.engine.state.faas_starting
    assert starting[0, :, 0].sum() == pytest.approx(first["faas_cold_starts"])
    second = env.step(actions(2, -1.0, 1.0))[4]
    assert second["faas_cold_starts"] > 0
    assert env.engine.state.faas_starting.sum() == 0  # all ready within the second interval
    third = env.step(actions(2, -1.0, 1.0))[4]
    assert third["faas_cold_starts"] == 0  # the pool now covers the steady traffic
