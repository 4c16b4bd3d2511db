"""Cap-mode routing (``routing.mode: cap``): the per-tick allowance, worked by hand, and the
fast model's per-tick counts against the reference's per-request routing."""

from __future__ import annotations

import numpy as np
import pytest

from serflow_env import SerflowVectorEnv
from serflow_env.reference import ReferenceVectorEnv
from serflow_env.scenario import ScenarioError, load_scenario
from serflow_env.traces import Trace
from tests.conftest import constant, scenario, stage


def test_allowance_carries_the_fraction_by_hand():
    """A cap of 17.5 requests per tick: 17 then 18, nothing left over."""
    from serflow_env.rate_cap import cap_allowance

    allow, carry = cap_allowance(np.array([[17.5], [17.5]]), np.array([0.0]))
    np.testing.assert_array_equal(allow[:, 0], [17.0, 18.0])
    assert carry[0] == 0.0
    allow, carry = cap_allowance(np.array([[0.4], [0.4], [0.4]]), np.array([0.5]))
    np.testing.assert_array_equal(allow[:, 0], [0.0, 1.0, 0.0])  # 0.9, 1.3, 1.7
    assert carry[0] == pytest.approx(0.7)


def _one_stage(trace, cap_mode: bool = True, **extra) -> dict:
    """Stage 0 only (exit 1 after it): 1 VM of 2 slots, 0.1 s service, 20 requests/s."""
    stages = [stage("a", 1.0, vm_mean=0.1, vm_dist="deterministic", slots_per_vm=2,
                    initial_vms=1, max_vms=4), stage("b")]
    return scenario(stages, trace, routing={"mode": "cap" if cap_mode else "share"},
                    episode_steps=20, **extra)


EXACT_25 = Trace(np.full(600, 25.0), 1.0, "exact", "exact-25")


@pytest.mark.parametrize("env_cls", [SerflowVectorEnv, ReferenceVectorEnv])
def test_hand_computed_tick_example(env_cls):
    """25 requests in every 1-s tick, cap 0.875 x 20 requests/s = 17.5 per tick: the VMs
    take 17, 18, 17, ... (175 of 250 per 10-s interval), functions the other 75."""
    env = env_cls(1, scenario=_one_stage(EXACT_25))
    env.reset(seed=0)
    a = np.array([[-0.5, -1.0, -0.125, -1.0]], np.float32)  # 1 VM; cap 0.875 of max_cap 2
    for _ in range(3):
        _, _, _, _, info = env.step(a)
        assert info["requests_arrived"][0] == 250
        assert info["faas_invocations"][0] == 75
        assert info["stage_faas_share"][0, 0] == pytest.approx(0.3)


def test_no_running_vm_sends_everything_to_functions():
    env = SerflowVectorEnv(1, scenario=_one_stage(EXACT_25, vm={"boot_s": 30.0}))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([[-1.0, -1.0, 1.0, 1.0]], np.float32))  # 0 VMs
    assert info["faas_invocations"][0] == 250
    # two VMs launched: they boot for 30 s (3 intervals), so all runs in functions until then
    a = np.array([[0.0, -1.0, 1.0, 1.0]], np.float32)
    for _ in range(3):
        _, _, _, _, info = env.step(a)
        assert info["faas_invocations"][0] == 250
    _, _, _, _, info = env.step(a)
    assert info["faas_invocations"][0] == 0  # cap 2 x 40 requests/s: all on the VMs


def _routing_counts(env_cls, spec, actions) -> np.ndarray:
    env = env_cls(3, scenario=spec)
    env.reset(seed=11)
    counts = []
    for a in actions:
        _, _, _, _, info = env.step(np.tile(a, (3, 1)))
        counts.append(info["faas_invocations"] + info["requests_throttled"])
    return np.array(counts)


def test_fast_and_reference_route_the_same_counts():
    """Poisson arrivals (common random numbers), caps below and above capacity, VMs that
    boot mid-interval (boot 25 s): the requests each simulator sends to functions at the only
    stage are the same, interval by interval (the allowance depends on the tick's requests and
    the running VMs only)."""
    spec = _one_stage(constant(30.0), vm={"boot_s": 25.0, "min_billed_s": 0.0})
    low = np.array([-0.5, -1.0, -0.4, -1.0], np.float32)  # 1 VM, cap 0.6
    high = np.array([0.5, -1.0, 0.1, -1.0], np.float32)  # 3 VMs, cap 1.1 (VMs may queue)
    actions = [low] * 3 + [high] * 6 + [low] * 2
    fast = _routing_counts(SerflowVectorEnv, spec, actions)
    ref = _routing_counts(ReferenceVectorEnv, spec, actions)
    np.testing.assert_array_equal(fast, ref)
    # 1 VM at cap 0.6; 1 VM at cap 1.1 while the two new ones boot (ready at 55 s, mid-step
    # 5); then 3 VMs at cap 1.1 take everything
    assert np.all(fast[:3] > 100) and np.all(fast[3:5] > 20)
    assert np.all(fast[5] < fast[4]) and np.all(fast[6:9] == 0)


def test_routing_mode_and_max_cap_are_validated():
    with pytest.raises(ScenarioError, match=r"routing.mode='caps'; allowed share, cap"):
        load_scenario("default", **{"routing.mode": "caps"})
    with pytest.raises(ScenarioError, match=r"routing.max_cap=1.0 is out of range"):
        load_scenario("default", **{"routing.max_cap": 1.0})


def test_share_and_cap_decode_the_routing_half():
    from serflow_env.params import make_params
    from serflow_env.routing import decode_action

    a = np.array([[0.0, 0.0, 0.0, 0.5, -1.0, 1.0]])
    for mode, expected in (("share", [0.75, 0.0, 1.0]), ("cap", [2.25, 0.0, 3.0])):
        params = make_params(load_scenario("default", **{"routing.mode": mode,
                                                         "routing.max_cap": 3.0}))
        _, route = decode_action(params, a)
        np.testing.assert_allclose(route[0], expected)


@pytest.mark.parametrize("lam, servers, tau", [(32.6, 2, 0.6), (20.0, 2, 0.8), (160.0, 6, 0.75)])
def test_transient_wait_is_the_mean_of_the_shifted_running_maximum(lam, servers, tau):
    """transient_wait's closed form against a Monte Carlo of its definition: a Brownian motion
    (drift lam - mu c, variance rate lam + mu c cv^2), E[(max_{u<=s} X_u - h)^+] / mu c with
    h = (servers + 1) / 2, averaged over s uniform on [0, tau]."""
    from serflow_env.rate_cap import transient_wait

    mean_s, cv = 0.08 if servers == 2 else 0.04, 0.6
    mu_c = servers / mean_s
    theta, var = lam - mu_c, lam + mu_c * cv * cv
    rng = np.random.default_rng(0)
    paths, steps = 20_000, 800
    dt = tau / steps
    x = np.cumsum(theta * dt + np.sqrt(var * dt) * rng.standard_normal((paths, steps)), axis=1)
    running_max = np.maximum.accumulate(np.maximum(x, 0.0), axis=1)
    s = rng.integers(0, steps, paths)  # an arrival time uniform on the window, per path
    mc = np.maximum(running_max[np.arange(paths), s] - (servers + 1) / 2, 0.0).mean() / mu_c
    got = transient_wait(np.array(lam), np.array(float(servers)), mean_s, cv, np.array(tau))
    # the discrete maximum falls short of the continuous one by about 0.58 sigma sqrt(dt)
    assert float(got) == pytest.approx(mc, rel=0.05, abs=0.58 * np.sqrt(var * dt) / mu_c)


def test_expected_capped_is_the_mean_of_a_capped_normal_count():
    from serflow_env.rate_cap import expected_capped

    fluid = np.array([[10.0, 40.0, 45.0, 60.0, 200.0]])
    budget = np.array([[30.0, 40.0, 40.0, 40.0, 20.0]])
    draws = np.random.default_rng(1).normal(fluid, np.sqrt(fluid), (400_000, 5))
    np.testing.assert_allclose(expected_capped(fluid, budget)[0],
                               np.minimum(draws, budget[0]).mean(axis=0), rtol=2e-3)


def _capped_tick_wait(lam: float, servers: int, mean_s: float, cv: float, allowance: int,
                      ticks: int, rng: np.random.Generator) -> float:
    """Mean wait of the requests a capped VM pool takes in a 1-s tick, per request: Poisson
    arrivals at ``lam``, the first ``allowance`` of the tick to ``servers`` FIFO servers
    that start empty, log-normal service; ``ticks`` independent ticks."""
    import heapq

    sigma2 = np.log1p(cv * cv)
    total, count = 0.0, 0
    for _ in range(ticks):
        n = rng.poisson(lam)
        times = np.sort(rng.uniform(0.0, 1.0, n))[:allowance]
        service = rng.lognormal(np.log(mean_s) - sigma2 / 2, np.sqrt(sigma2), times.size)
        free = [0.0] * servers
        for t, s in zip(times, service):
            start = max(heapq.heappop(free), t)
            total += start - t
            heapq.heappush(free, start + s)
        count += times.size
    return total / count


@pytest.mark.parametrize("lam, servers, mean_s, allowance", [
    (60.0, 2, 0.04, 37), (30.0, 2, 0.08, 18), (120.0, 4, 0.04, 75), (167.0, 4, 0.06, 66)])
def test_transient_wait_matches_a_per_request_capped_tick(lam, servers, mean_s, allowance):
    """transient_wait at tau = allowance / lam against the capped tick simulated request by
    request (h = (servers + 1) / 2; h = servers / 2 was 5-17 % high for two servers)."""
    from serflow_env.rate_cap import transient_wait

    simulated = _capped_tick_wait(lam, servers, mean_s, 0.6, allowance, 3000,
                                  np.random.default_rng(3))
    got = transient_wait(np.array(lam), np.array(float(servers)), mean_s, 0.6,
                         np.array(min(allowance / lam, 1.0)))
    assert float(got) == pytest.approx(simulated, rel=0.06)
