"""The heuristics: valid batched actions, and each one's defining behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents import make_policy
from agents.heuristics.ewma import EwmaRate, folded_normal_mean
from agents.heuristics.libra import Libra
from agents.heuristics.profiling import profile_stages
from agents.heuristics.serflow import Serflow, expected_carry
from agents.heuristics.simple import VmPeak, VmThreshold
from serflow_env import SerflowVectorEnv
from serflow_env.params import make_params
from serflow_env.routing import decode_action
from serflow_env.scenario import available_scenarios, load_scenario
from serflow_env.traces import Trace
from tests.conftest import scenario as scenario_spec
from tests.conftest import stage

HEURISTICS = ("serflow", "libra", "faas-only", "vm-threshold", "vm-peak")


def exact_trace(values) -> Trace:
    return Trace(np.asarray(values, dtype=float), 1.0, "exact", "exact-test")


def rollout(policy_spec, scenario, steps: int, num_envs: int = 1, seed: int = 0, **kwargs):
    """Play a policy; return (actions decoded per step, infos per step, the policy)."""
    env = SerflowVectorEnv(num_envs, scenario=scenario)
    policy = make_policy(policy_spec, env.scenario, **kwargs)
    params = make_params(env.scenario)
    obs, _ = env.reset(seed=seed)
    policy.reset(num_envs)
    info = None
    decoded, infos = [], []
    for _ in range(steps):
        action = policy.act(obs, info)
        decoded.append(decode_action(params, np.asarray(action, dtype=np.float64)))
        obs, _, _, _, info = env.step(action)
        infos.append(info)
    return decoded, infos, policy


@pytest.mark.parametrize("mode", ["share", "cap"])
@pytest.mark.parametrize("name", available_scenarios())
@pytest.mark.parametrize("spec", HEURISTICS + ("load-map",))
def test_actions_are_valid_for_n_envs(spec, name, mode):
    env = SerflowVectorEnv(4, scenario=name, episode_steps=6, overrides={"routing.mode": mode})
    policy = make_policy(spec, env.scenario)
    obs, _ = env.reset(seed=1)
    policy.reset(4)
    info = None
    for _ in range(6):
        action = policy.act(obs, info)
        assert action.shape == (4, 2 * env.scenario.num_stages)
        assert action.dtype == np.float32
        assert np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1.0)
        assert env.single_action_space.contains(action[0])
        obs, _, _, _, info = env.step(action)


def test_unknown_parameter_in_spec_is_rejected_by_name():
    sc = load_scenario("default")
    with pytest.raises(ValueError, match="utilisatoin"):
        make_policy("serflow:utilisatoin=0.5", sc)
    with pytest.raises(ValueError, match="utilisation"):
        make_policy("serflow:utilisation=abc", sc)
    with pytest.raises(ValueError, match="utilisation"):
        make_policy("serflow:utilisation=1.5", sc)
    assert make_policy("serflow:utilisation=0.6:burst_z=2", sc).utilisation == 0.6


def test_profile_matches_hand_computation():
    spec = scenario_spec([stage("a", 0.5, vm_mean=0.05, faas_mean=0.08), stage("b", 1.0)],
                         {"generator": "constant", "duration_s": 100, "rate": 10})
    prof = profile_stages(load_scenario(spec))
    c_f = 2.0 * (0.08 + 0.0005) * 0.0000166667 + 0.2e-6  # 2 GB, billed mean + 0.5 ms
    assert prof.faas_cost_per_request[0] == pytest.approx(c_f)
    assert prof.vm_capacity_rps[0] == pytest.approx(2 / 0.05)
    assert prof.tcip_rps[0] == pytest.approx(0.085 / 3600 / c_f)
    np.testing.assert_allclose(prof.base_reach, [1.0, 0.5])
    np.testing.assert_allclose(prof.scip(np.array([2 * prof.tcip_rps[0]]))[0, 0], 0.5)


@pytest.mark.parametrize("mode, route", [("share", 1.0), ("cap", 0.0)])
def test_faas_only_never_launches_vms_and_serves_everything_in_functions(mode, route):
    sc = load_scenario("branchynet-resnet", **{"routing.mode": mode})
    decoded, infos, _ = rollout("faas-only", sc, 20, num_envs=3)
    for (targets, routing), info in zip(decoded, infos):
        assert np.all(targets == 0) and np.all(routing == route)
        assert np.all(info["vms_running"] == 0) and np.all(info["vms_booting"] == 0)
        assert np.all(info["faas_invocations"] == info["stage_requests"].sum(axis=1))
        assert np.all(info["cost_vm_usd"] == 0)


def _one_stage_heavy(rate: float, initial_vms: int = 1, steps: int = 60) -> dict:
    return scenario_spec(
        [stage("a", 0.5, initial_vms=initial_vms, max_vms=30), stage("b", 1.0, max_vms=30)],
        exact_trace(np.full(7200, rate)), episode_steps=steps)


def test_vm_threshold_scales_out_under_load_and_in_when_idle():
    # 150 req/s on 1 VM of 40 req/s capacity: utilisation far above 70 %
    decoded, infos, _ = rollout("vm-threshold", _one_stage_heavy(150.0), 30)
    first, last = decoded[0][0][0], decoded[-1][0][0]
    assert first[0] == 1 and np.all(decoded[0][1] == 0.0)
    assert last[0] >= math.ceil(150 / (0.5 * 40))  # brought towards 50 % utilisation
    assert infos[-1]["stage_utilisation"][0, 0] < 0.7
    assert all(np.all(shares == 0.0) for _, shares in decoded)  # VMs only
    # 5 req/s on 10 VMs: utilisation far below 30 % -> scale in to the minimum
    decoded, _, _ = rollout("vm-threshold", _one_stage_heavy(5.0, initial_vms=10), 5)
    assert decoded[0][0][0, 0] == 10 and decoded[-1][0][0, 0] == 1


def test_vm_threshold_reads_overload_when_the_env_gauge_reads_zero():
    # 1 VM at 600 req/s: the queue hits its limit for whole intervals
    decoded, infos, _ = rollout("vm-threshold", _one_stage_heavy(600.0), 3)
    assert decoded[-1][0][0, 0] == 30  # asked for the maximum
    assert infos[0]["stage_queue"][0, 0] > 0


def test_vm_peak_provisions_the_trace_peak_and_never_changes():
    values = np.r_[np.full(1000, 50.0), np.full(10, 200.0), np.full(1000, 50.0)]
    spec = scenario_spec([stage("a", 0.5, max_vms=30), stage("b", 1.0, max_vms=30)],
                         exact_trace(values), episode_steps=30)
    policy = VmPeak(load_scenario(spec))
    assert policy.peak_rate == 200.0
    # stage a: 200 req/s at 80 % of 40 req/s per VM; stage b: half the requests
    np.testing.assert_array_equal(policy.vm_counts, [math.ceil(200 / 32), math.ceil(100 / 32)])
    decoded, _, _ = rollout("vm-peak", spec, 20, num_envs=2)
    for targets, shares in decoded:
        np.testing.assert_array_equal(targets, np.tile(policy.vm_counts, (2, 1)))
        assert np.all(shares == 0.0)


def test_ewma_follows_libra_formulas():
    tracker = EwmaRate(0.2, 0.2)
    tracker.reset((1,))
    tracker.update(np.array([100.0]))
    assert tracker.mean[0] == 100.0 and tracker.std[0] == 0.0
    tracker.update(np.array([150.0]))
    assert tracker.std[0] == pytest.approx(0.2 * 50.0)
    assert tracker.mean[0] == pytest.approx(110.0)
    tracker.update(np.array([110.0]), within_std=np.array([0.0]))
    assert tracker.std[0] == pytest.approx(0.8 * 10.0)


def test_folded_normal_and_expected_carry_match_monte_carlo():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, 400_000)
    assert folded_normal_mean(np.array(3.0), np.array(2.0)) == pytest.approx(
        np.abs(x).mean(), rel=0.01)
    lam = rng.normal(100.0, 30.0, 400_000)
    carry = expected_carry(np.array([[100.0]]), np.array([[30.0]]), np.array([40.0]), 4)[0, 0]
    for n in range(4):
        mc = np.clip(lam - n * 40.0, 0.0, 40.0).mean()
        assert carry[n] == pytest.approx(mc, rel=0.02, abs=0.05)
    assert np.all(np.diff(carry) <= 0)


def _ramp_scenario(steps: int) -> dict:
    values = np.r_[np.linspace(50.0, 650.0, 1200), np.full(6000, 650.0)].round()
    return scenario_spec([stage("a", 0.5, max_vms=40), stage("b", 0.0, max_vms=40),
                          stage("c", 1.0, vm_mean=0.1, max_vms=40)],
                         exact_trace(values), episode_steps=steps)


def test_libra_recomputes_vms_every_300_s_only():
    decoded, _, policy = rollout("libra", _ramp_scenario(100), 100)
    assert policy.period_steps == 30
    targets = np.array([t[0] for t, _ in decoded])  # (steps, K)
    changes = np.flatnonzero(np.any(np.diff(targets, axis=0) != 0, axis=1)) + 1
    # decisions at the first monitored interval (step 1), then every 30 intervals
    assert set(changes) <= {1, 31, 61, 91}
    assert {31, 61, 91} <= set(changes)  # the ramp raises the rate between decisions
    shares = np.array([s[0] for _, s in decoded])
    assert np.all(shares == shares[:, :1])  # the same function share at every stage


def test_libra_sizes_every_stage_for_the_whole_traffic():
    spec = scenario_spec([stage("a", 0.9, max_vms=40), stage("b", 1.0, vm_mean=0.1,
                                                                 max_vms=40)],
                         exact_trace(np.full(7200, 100.0)), episode_steps=5)
    decoded, _, policy = rollout("libra", spec, 3)
    # a constant exact trace: vm_share = 100 req/s, stage b sized as if all requests reach it
    assert policy.vm_share[0] == pytest.approx(100.0)
    np.testing.assert_array_equal(decoded[1][0][0], [math.ceil(100 * 0.05 / 2),
                                                     math.ceil(100 * 0.1 / 2)])


def test_libra_sends_everything_to_functions_until_vms_are_up():
    decoded, infos, _ = rollout("libra", _ramp_scenario(20), 20)
    booting = [i for i, info in enumerate(infos) if info["stage_vms_running"][0].min() == 0]
    for i in booting[1:]:  # the action after an interval with a pool not up yet
        if i + 1 < len(decoded):
            assert np.all(decoded[i + 1][1] == 1.0)
    assert np.any(decoded[-1][1] < 1.0)  # once up, VMs get traffic


def _sparse_deep_stage(steps: int) -> dict:
    # 200 req/s; 2 % of requests reach stage b (4 req/s, below its T-CIP of about 8 req/s)
    return scenario_spec([stage("a", 0.98, max_vms=30), stage("b", 1.0, max_vms=30)],
                         exact_trace(np.full(7200, 200.0)), episode_steps=steps)


def test_serflow_keeps_vms_on_a_busy_first_stage_and_functions_on_a_sparse_deep_one():
    sc = load_scenario(_sparse_deep_stage(40))
    prof = profile_stages(sc)
    assert 200 * 0.02 < prof.tcip_rps[1] < 200.0
    decoded, infos, policy = rollout("serflow", sc, 40, num_envs=2)
    targets, shares = decoded[-1]
    per_vm = policy.per_vm[0]
    assert np.all(targets[:, 0] >= math.floor(200 / per_vm))
    assert np.all(targets[:, 1] == 0) and np.all(shares[:, 1] == 1.0)
    assert np.all(shares[:, 0] < 0.5)
    last = infos[-1]
    assert np.all(last["stage_vms_running"][:, 0] >= math.floor(200 / per_vm))
    assert np.all(last["stage_faas_share"][:, 1] == 1.0)


def test_serflow_sends_traffic_to_functions_while_vms_boot():
    decoded, infos, _ = rollout("serflow", _sparse_deep_stage(15), 15)
    for i, info in enumerate(infos[:-1]):
        if info["stage_vms_running"][0, 0] == 0:
            assert decoded[i + 1][1][0, 0] == 1.0
    # boot takes 100 s (10 intervals): VMs serve afterwards
    assert infos[-1]["stage_vms_running"][0, 0] > 0


def test_serflow_scale_in_waits_for_the_hold():
    values = np.r_[np.full(600, 200.0), np.full(6600, 20.0)]
    spec = scenario_spec([stage("a", 0.5, max_vms=30), stage("b", 1.0, max_vms=30)],
                         exact_trace(values), episode_steps=100)
    decoded, _, policy = rollout("serflow", spec, 100)
    targets = np.array([t[0, 0] for t, _ in decoded])
    peak = int(targets[:60].max())
    drop = int(np.argmax(targets[60:] < peak)) + 60
    assert targets[-1] < peak
    assert drop - 60 >= policy.hold_steps  # not before the lower count was wanted that long


def test_a_policy_refuses_a_routing_mode_it_does_not_support():
    class ShareOnly(Libra):
        name = "share-only"
        routing_modes = ("share",)

    sc = load_scenario("default", **{"routing.mode": "cap"})
    with pytest.raises(ValueError, match=r"^policy 'share-only': routing.mode='cap' is not "
                                         r"supported; allowed share$"):
        ShareOnly(sc)


def _cap_rollout(spec, scenario: dict, steps: int):
    """Like rollout, in cap mode; per step the caps, the running VMs' capacity, the booting VMs,
    the provision rate after the action, the VM targets and the running VMs of env 0."""
    scenario = dict(scenario, routing={"mode": "cap", "max_cap": 2.0})
    env = SerflowVectorEnv(1, scenario=scenario)
    policy = make_policy(spec, env.scenario)
    params = make_params(env.scenario)
    capacity = profile_stages(env.scenario).vm_capacity_rps
    obs, _ = env.reset(seed=0)
    policy.reset(1)
    info, rows = None, []
    for _ in range(steps):
        action = policy.act(obs, info)
        targets, caps = decode_action(params, np.asarray(action, dtype=np.float64))
        vms = env.engine.state.vm_running[0].copy()
        rows.append((caps[0], vms * capacity, env.engine.state.vm_booting[0].copy(),
                     getattr(policy, "provision_for", np.zeros(1))[0], targets[0], vms))
        obs, _, _, _, info = env.step(action)
    return rows, policy


def test_libra_cap_is_its_provision_rate_held_until_new_vms_boot():
    """LIBRA's manager: the first provision_for = 0.8 * vm_share requests of each second go to
    the VMs, provision_for updated only once newly launched VMs have booted."""
    rows, policy = _cap_rollout("libra", _ramp_scenario(80), 80)
    held = updated = 0
    for (caps, running, booting, provision, _, _), (_, _, _, before, _, _) in zip(rows[1:],
                                                                                 rows):
        if booting.any():  # new VMs still booting: the old provision rate is kept
            assert provision == before
            held += 1
        elif provision != before:
            updated += 1
        # the same requests/s at every stage with a running VM (LIBRA's whole-model VMs)
        up = running > 0
        np.testing.assert_allclose((caps * running)[up],
                                   np.minimum(provision, 2.0 * running[up]), rtol=1e-5)
    assert held > 10 and updated >= 2
    assert policy.provision_for[0] == pytest.approx(0.8 * policy.vm_share[0])


def test_libra_cap_holds_while_the_vms_it_requests_now_are_not_booting_yet():
    """The info LIBRA sees predates its action: in the interval it requests more VMs none is
    booting yet, and the old pool must not be asked to carry the new rate (LIBRA's simulator
    keeps provision_for until the new VMs are up); once they run, the new rate applies."""
    rows, policy = _cap_rollout("libra", _ramp_scenario(80), 80)
    requests = switches = 0
    for i in range(1, len(rows)):
        _, _, booting, provision, targets, vms = rows[i]
        before = rows[i - 1][3]
        if np.any(targets > vms) and not booting.any():  # VMs requested in this interval
            assert provision == before
            requests += 1
            # the first later interval with them all running and none booting switches
            up = next(j for j in range(i + 1, len(rows))
                      if np.all(rows[j][5] >= targets) and not rows[j][2].any())
            assert rows[up][3] != before
            assert all(rows[j][3] == before for j in range(i, up))
            switches += 1
    assert requests >= 2 and switches == requests  # the first provisioning and the ramp's


def test_serflow_cap_is_its_utilisation_target():
    rows, policy = _cap_rollout("serflow", _sparse_deep_stage(30), 30)
    caps, running, _, _, _, _ = rows[-1]
    assert running[0] > 0 and running[1] == 0
    assert caps[0] == pytest.approx(policy.utilisation, abs=0.02)  # less any backlog


def test_policies_reject_bad_parameters():
    sc = load_scenario("default")
    with pytest.raises(ValueError, match="utilisation"):
        Serflow(sc, utilisation=0.0)
    with pytest.raises(ValueError, match="period_s"):
        Libra(sc, period_s=1.0)
    with pytest.raises(ValueError, match="target"):
        VmThreshold(sc, upper=0.7, lower=0.3, target=0.9)
    with pytest.raises(ValueError, match="alpha"):
        EwmaRate(alpha=0.0)
