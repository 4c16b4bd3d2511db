"""The per-request reference simulator: interface, determinism, billing, functions, queues,
transfers, and the loss system it must reproduce exactly (Erlang-B)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serflow_env import SerflowVectorEnv
from serflow_env.reference import ReferenceVectorEnv, checks
from serflow_env.scenario import INSTANCE_PRICES_PER_HOUR
from serflow_env.traces import Trace
from tests import theory
from tests.conftest import actions, constant, scenario, stage

PRICE_GB_S = 0.0000166667
PRICE_REQ = 0.2e-6
VM_PRICE_S = INSTANCE_PRICES_PER_HOUR["c6i.large"] / 3600


def _env(spec, num_envs: int = 1, seed: int = 0, **overrides) -> ReferenceVectorEnv:
    env = ReferenceVectorEnv(num_envs, scenario=spec, overrides=overrides)
    env.reset(seed=seed)
    return env


def _step(env: ReferenceVectorEnv, action) -> dict:
    a = np.asarray(action, dtype=np.float32)
    return env.step(np.tile(a, (env.num_envs, 1)) if a.ndim == 1 else a)[4]


def _exact(values: np.ndarray) -> Trace:
    return Trace(np.asarray(values, dtype=float), 1.0, "exact", "exact-test")


def _det_stage(name: str, mean: float, exit_p: float = 1.0, **extra) -> dict:
    return stage(name, exit_probability=exit_p, faas_mean=mean, faas_dist="deterministic",
                 faas_memory_mb=1024, **extra)


# ------------------------------------------------------------------ interface
def test_interface_matches_the_fast_vector_env():
    fast = SerflowVectorEnv(2, scenario="default", episode_steps=5)
    ref = ReferenceVectorEnv(2, scenario="default", episode_steps=5)
    assert ref.single_observation_space == fast.single_observation_space
    assert ref.single_action_space == fast.single_action_space
    obs_f, _ = fast.reset(seed=3)
    obs_r, _ = ref.reset(seed=3)
    np.testing.assert_array_equal(obs_r, obs_f)  # both start from the neutral observation
    a = np.tile(np.r_[np.full(3, -0.5), np.full(3, 0.0)].astype(np.float32), (2, 1))
    obs_f, r_f, te_f, tr_f, info_f = fast.step(a)
    obs_r, r_r, te_r, tr_r, info_r = ref.step(a)
    assert obs_r.shape == obs_f.shape and obs_r.dtype == np.float32
    assert ref.observation_space.contains(obs_r)
    assert set(info_r) == set(info_f)
    for key, value in info_f.items():
        assert np.shape(info_r[key]) == np.shape(value), key
    assert r_r.shape == r_f.shape and r_r.dtype == np.float64
    assert not te_r.any() and not tr_r.any()


def test_bad_input_is_rejected_with_clear_errors():
    env = ReferenceVectorEnv(1, scenario="default")
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros((1, 6), np.float32))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((1, 5), np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.full((1, 6), np.nan, np.float32))
    with pytest.raises(ValueError, match="unknown"):
        env.reset(seed=0, options={"speed": 2})
    with pytest.raises(ValueError, match="start_s"):
        env.reset(seed=0, options={"start_s": -1.0})
    with pytest.raises(ValueError, match="num_envs"):
        ReferenceVectorEnv(0, scenario="default")
    strict = ReferenceVectorEnv(1, scenario="default", action_out_of_range="error")
    strict.reset(seed=0)
    with pytest.raises(ValueError, match="outside the allowed range"):
        strict.step(np.full((1, 6), 1.5, np.float32))


@pytest.mark.parametrize("mode", ["share", "cap"])
def test_same_seed_same_result_and_other_seeds_differ(mode):
    def run(seed: int) -> list[dict]:
        env = _env("default", num_envs=2, seed=seed, **{"routing.mode": mode})
        a = np.r_[np.full(3, -0.6), np.full(3, -0.2)]
        return [_step(env, a) for _ in range(15)]

    first, again, other = run(11), run(11), run(12)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert any(not np.array_equal(a["cost_usd"], b["cost_usd"]) for a, b in zip(first, other))


@pytest.mark.parametrize("overrides, options", [
    ({}, None),
    ({"arrivals.random_start": True, "arrivals.time_warp": 2.5,
      "arrivals.trace": ["traces/bursty_mmpp_1h.txt", {"generator": "sine", "duration_s": 900,
                                                       "mean_rate": 80.0, "amplitude": 40.0}]},
     None),
    ({"arrivals.trace": "traces/square_1h.txt"}, {"start_s": 250.0, "trace_index": 0}),
])
def test_common_random_numbers_with_the_fast_model(overrides, options):
    """Same seed: the same trace windows, arrivals per interval and exit-probability path."""
    fast = SerflowVectorEnv(3, scenario="default", overrides=overrides)
    ref = ReferenceVectorEnv(3, scenario="default", overrides=overrides)
    fast.reset(seed=5, options=options)
    ref.reset(seed=5, options=options)
    np.testing.assert_array_equal(ref.state.trace_start_s, fast.engine.state.trace_start_s)
    a = np.tile(np.r_[np.full(3, -0.5), np.full(3, 0.0)].astype(np.float32), (3, 1))
    for _ in range(8):
        info_f, info_r = fast.step(a)[4], ref.step(a)[4]
        np.testing.assert_array_equal(info_r["requests_arrived"], info_f["requests_arrived"])
        np.testing.assert_allclose(info_r["stage_exit_probability"],
                                   info_f["stage_exit_probability"], rtol=1e-12)


def test_autoreset_same_step_returns_final_obs_and_info():
    env = ReferenceVectorEnv(2, scenario="default", episode_steps=3)
    env.reset(seed=0)
    a = np.zeros((2, 6), np.float32)
    completed = np.zeros(2)
    for _ in range(2):
        _, _, _, truncated, info = env.step(a)
        assert not truncated.any()
        completed += info["requests_completed"]
    obs, _, _, truncated, info = env.step(a)
    completed += info["requests_completed"]
    assert truncated.all() and info["_final_obs"].all() and info["_final_info"].all()
    assert info["final_info"][1]["requests_arrived"] == info["requests_arrived"][1]
    assert np.all(obs[:, 0] == 0.0)  # the next episode's neutral first observation
    assert not np.array_equal(info["final_obs"][0], obs[0])
    assert all(sim.t == 0.0 for sim in env.sims)
    # the finished episode's latencies stay available until the next one completes requests
    assert env.episode_latencies(0).size == completed[0]
    assert env.step(a)[4]["requests_arrived"].sum() > 0


@pytest.mark.parametrize("mode", ["share", "cap"])
def test_requests_are_conserved(mode):
    env = _env("default", num_envs=2, **{"routing.mode": mode})
    arrived = done = dropped = 0
    for step in range(40):
        share = -1.0 if step < 20 else 0.6  # VMs boot at 100 s; then shift to functions
        info = _step(env, np.r_[np.full(3, -0.7), np.full(3, share)])
        arrived += info["requests_arrived"]
        done += info["requests_completed"]
        dropped += info["requests_dropped"]
        np.testing.assert_array_equal(arrived, done + dropped + info["requests_in_system"])


# ------------------------------------------------------------------ VMs
def test_vm_minimum_billing_then_per_second():
    spec = scenario([stage("a", max_vms=10), stage("b", max_vms=10)], constant(0.0),
                    vm={"boot_s": 0.0, "min_billed_s": 60.0}, faas={"prewarm": False})
    env = _env(spec)
    up = np.r_[-0.8, -1, 1, 1]  # one VM on stage a
    down = np.r_[-1, -1, 1, 1]
    billed = _step(env, up)["cost_vm_usd"] + _step(env, down)["cost_vm_usd"]
    assert billed[0] == pytest.approx(60 * VM_PRICE_S)
    env.reset(seed=0)
    total = sum(_step(env, up)["cost_vm_usd"][0] for _ in range(10))
    total += _step(env, down)["cost_vm_usd"][0]
    assert total == pytest.approx(100 * VM_PRICE_S)


def test_removal_takes_the_youngest_booting_vms_first():
    """Two VMs launched at 0 s run from 15 s; two launched at 10 s are still booting at 20 s.
    Scaling back to 2 at 20 s removes those two, so stage a keeps serving on VMs."""
    spec = scenario([stage("a", max_vms=4), stage("b", max_vms=4)], constant(20.0),
                    vm={"boot_s": 15.0, "min_billed_s": 60.0}, faas={"prewarm": False})
    env = _env(spec)
    two, four, none = np.r_[0.0, -1, -1, -1], np.r_[1.0, -1, -1, -1], np.r_[-1.0, -1, -1, -1]
    info = _step(env, two)
    assert (info["vms_running"][0], info["vms_booting"][0]) == (0, 2)
    info = _step(env, four)
    assert (info["vms_running"][0], info["vms_booting"][0]) == (2, 2)
    info = _step(env, two)
    assert (info["vms_running"][0], info["vms_booting"][0]) == (2, 0)
    assert info["stage_faas_share"][0, 0] == 0.0  # no gap: the running VMs were kept
    total = 0.0
    for _ in range(3):  # until 60 s
        total += _step(env, two)["cost_vm_usd"][0]
    total += _step(env, none)["cost_vm_usd"][0]
    # each VM is billed at least 60 s: the removed ones 60 s, the kept ones 60 s of life
    assert total == pytest.approx(0.0)  # all 240 s were prepaid at launch
    env.reset(seed=0)
    charged = sum(_step(env, a)["cost_vm_usd"][0] for a in (two, four, two, two, two, two, none))
    assert charged == pytest.approx(4 * 60 * VM_PRICE_S)


def test_booting_vms_are_billed_but_do_not_serve():
    spec = scenario([stage("a", max_vms=10), stage("b", max_vms=10)], constant(5.0),
                    vm={"boot_s": 30.0, "min_billed_s": 0.0}, faas={"prewarm": False})
    env = _env(spec)
    on_functions = []
    for _ in range(5):
        info = _step(env, np.r_[-0.8, -1, -1, -1])
        on_functions.append(info["faas_invocations"][0])
        assert info["cost_vm_usd"][0] == pytest.approx(10 * VM_PRICE_S)
    assert on_functions[0] > 0 and on_functions[1] > 0 and on_functions[-1] == 0


def test_queue_limit_drops_and_bounds_the_wait():
    """One slot of 0.1 s at 30 req/s, at most 2 waiting: about 2/3 dropped, wait <= 0.2 s."""
    one = stage("a", vm_mean=0.1, vm_dist="deterministic", slots_per_vm=1, max_vms=1,
                initial_vms=1, queue_limit_per_slot=2)
    spec = scenario([one, stage("b", max_vms=1)], constant(30.0))
    env = _env(spec)
    arrived = dropped = 0
    for _ in range(30):
        info = _step(env, np.r_[1.0, -1, -1, -1])
        arrived += info["requests_arrived"][0]
        dropped += info["requests_dropped"][0]
        assert info["stage_queue"][0, 0] <= 2.0
        assert info["latency_p99_s"][0] <= 0.3 + 1e-9  # two ahead plus its own service
        assert info["requests_throttled"][0] == 0 and info["faas_invocations"][0] == 0
    assert dropped / arrived == pytest.approx(2 / 3, abs=0.03)


# ------------------------------------------------------------------ functions
def test_function_duration_rounded_up_and_initialisation_billed():
    spec = scenario([_det_stage("a", 0.1003), _det_stage("b", 0.05)], _exact(np.full(600, 10)),
                    faas={"prewarm": False,
                          "cold_start": {"distribution": "deterministic", "mean_s": 1.0}})
    env = _env(spec)
    info = _step(env, actions(2, -1.0, 1.0))
    n, cold = info["faas_invocations"][0], info["faas_cold_starts"][0]
    assert n == 100 and cold > 0
    # init + service = 1.1003 s billed as 1.101 s = 1.0 s of init + 0.101 s
    expected = n * (0.101 * PRICE_GB_S + PRICE_REQ) + cold * 1.0 * PRICE_GB_S
    assert info["cost_faas_usd"][0] == pytest.approx(expected, rel=1e-9)
    assert info["slo_violations"][0] == cold  # a 1.1 s cold request misses the 1 s deadline


@pytest.mark.parametrize("gap_s, cold_expected", [(25, False), (70, True)])
def test_keep_alive_expiry_per_container(gap_s, cold_expected):
    """One request at second 0 and one at second ``gap_s``; containers live 30 s idle."""
    values = np.zeros(200)
    values[0] = values[gap_s] = 1
    spec = scenario([_det_stage("a", 0.1), _det_stage("b", 0.1)], _exact(values),
                    faas={"prewarm": False, "keep_alive_s": 30.0,
                          "cold_start": {"distribution": "deterministic", "mean_s": 1.0}})
    env = _env(spec)
    colds = [_step(env, actions(2, -1.0, 1.0))["faas_cold_starts"][0] for _ in range(8)]
    assert colds[0] == 1
    assert colds[gap_s // 10] == (1 if cold_expected else 0)
    assert sum(colds) == (2 if cold_expected else 1)


@pytest.mark.parametrize("prewarm", [True, False])
def test_prewarm_starts_episodes_with_warm_containers(prewarm):
    spec = scenario([_det_stage("a", 0.01), _det_stage("b", 0.01)], _exact(np.full(60, 1)),
                    faas={"prewarm": prewarm,
                          "cold_start": {"distribution": "deterministic", "mean_s": 0.01}})
    info = _step(_env(spec), actions(2, -1.0, 1.0))
    assert info["faas_invocations"][0] == 10
    assert info["faas_cold_starts"][0] == (0 if prewarm else 1)


@pytest.mark.parametrize("limit, load", [(10, 5.0), (10, 8.0), (20, 18.0)])
def test_concurrency_limit_throttles_like_erlang_b(limit, load):
    """FaaS-only, Poisson arrivals, log-normal service: throttling is a loss system, whose
    blocking does not depend on the service distribution beyond its mean (Erlang-B, from
    tests/theory.py); within 10 % + 0.2 pp, as the fast model in test_billing."""
    expected = theory.erlang_b(limit, load)
    got = checks.loss_fraction(ReferenceVectorEnv, limit, load)
    assert abs(got - expected) <= 0.10 * expected + 0.002


# ------------------------------------------------------------------ transfers and exits
def test_transfer_delay_and_charge_between_stages():
    """VM-only, deterministic service, no waiting: every latency is s1 + delay + s2, and every
    request moved to stage 2 is charged for its activation (at departure)."""
    first = stage("a", exit_probability=0.0, vm_mean=0.05, vm_dist="deterministic",
                  activation_mb=2.0, initial_vms=5, max_vms=5)
    second = stage("b", vm_mean=0.07, vm_dist="deterministic", initial_vms=5, max_vms=5)
    link = {"bandwidth_mb_s": 100.0, "rtt_s": 0.01, "price_per_gb": 0.05}
    values = np.r_[np.full(30, 3), np.zeros(570)]  # traffic stops after 30 s
    env = _env(scenario([first, second], _exact(values), transfer={"vm_to_vm": link}))
    expected = 0.05 + (2.0 / 100.0 + 0.01) + 0.07
    moved = charged = 0.0
    for step in range(5):
        info = _step(env, actions(2, 1.0, -1.0))
        if step < 3:
            for q in ("latency_p50_s", "latency_p95_s", "latency_p99_s"):
                assert info[q][0] == pytest.approx(expected, abs=1e-9)
        moved += info["stage_requests"][0, 1]
        charged += info["cost_transfer_usd"][0]
    assert moved == 90
    assert charged == pytest.approx(moved * 2.0 / 1024 * 0.05, rel=1e-12)


def test_exit_shares_follow_the_exit_probabilities():
    spec = scenario([stage("a", exit_probability=0.7), stage("b", exit_probability=0.5),
                     stage("c")], constant(300.0))
    env = _env(spec)
    reach = np.zeros(3)
    for _ in range(20):
        reach += _step(env, actions(3, -1.0, 1.0))["stage_requests"][0]
    reach /= reach[0]
    np.testing.assert_allclose(reach, [1.0, 0.3, 0.15], atol=0.01)


def test_no_running_vm_sends_everything_and_the_waiting_queue_to_functions():
    one = stage("a", vm_mean=0.5, vm_dist="deterministic", slots_per_vm=1, max_vms=1,
                initial_vms=1, queue_limit_per_slot=1000)
    env = _env(scenario([one, stage("b", max_vms=1)], constant(20.0)))
    info = _step(env, np.r_[1.0, -1, -1, -1])  # 20 req/s on a 2 req/s VM: a queue builds
    waiting = info["requests_in_system"][0]
    assert waiting > 100
    info = _step(env, np.r_[-1.0, -1, -1, -1])  # VM removed: queue and new arrivals to FaaS
    assert info["faas_invocations"][0] >= waiting + info["requests_arrived"][0] - 5
    assert info["requests_in_system"][0] < 20


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_trace_counts_are_replayed_as_they_are(seed):
    values = np.arange(100) % 7
    env = _env(scenario([stage("a"), stage("b")], _exact(values)), seed=seed)
    got = [_step(env, actions(2, -1.0, 1.0))["requests_arrived"][0] for _ in range(10)]
    assert got == [int(values[10 * i: 10 * i + 10].sum()) for i in range(10)]


def test_poisson_arrival_times_have_exponential_gaps():
    """Within a constant-rate trace the gaps between arrivals are exponential (Poisson)."""
    env = _env(scenario([stage("a"), stage("b")], constant(50.0)))
    sim = env.sims[0]
    gaps = []
    for _ in range(20):
        _step(env, actions(2, -1.0, 1.0))
        gaps.append(np.diff(sim._arrivals))
    g = np.concatenate(gaps)
    assert g.mean() == pytest.approx(1 / 50, rel=0.03)
    assert g.std() / g.mean() == pytest.approx(1.0, abs=0.04)  # cv of an exponential
    assert np.mean(g < math.log(2) / 50) == pytest.approx(0.5, abs=0.02)  # its median
