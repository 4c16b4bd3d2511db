"""The ``load`` action map as a Gymnasium wrapper of the single env (built through rl-zoo3's
``env_wrapper`` key) and as the SB3 vector wrapper training uses: both apply the same map."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents import make_policy
from agents.rl.actions import ActionMapWrapper, make_action_map
from agents.rl.vec_actions import ActionMapVecWrapper
from serflow_env import ENV_ID, make_sb3_vec_env, reward_reference_rate
from serflow_env.scenario import load_scenario

SCENARIO = {"episode_steps": 15}


def zoo_wrapped_env(settings: dict) -> gym.Env:
    rl_zoo3_utils = pytest.importorskip("rl_zoo3.utils")
    wrap = rl_zoo3_utils.get_wrapper_class(
        {"env_wrapper": [{"agents.rl.actions.ActionMapWrapper": settings}]})
    return wrap(gym.make(ENV_ID, scenario=load_scenario("default", **SCENARIO)))


def test_single_env_wrapper_from_the_rl_zoo3_key_acts_like_the_load_map_policy() -> None:
    wrapped = zoo_wrapped_env({"kind": "load", "utilisation": 0.8, "hold_s": 60.0})
    assert isinstance(wrapped, ActionMapWrapper)
    scenario = load_scenario("default", **SCENARIO)
    # the same map applied by a policy (agent action 0) on the plain single env
    plain = gym.make(ENV_ID, scenario=scenario)
    policy = make_policy("load-map", scenario, utilisation=0.8, hold_s=60.0)
    obs_w, _ = wrapped.reset(seed=5)
    obs_p, _ = plain.reset(seed=5)
    policy.reset(1)
    zero = np.zeros(wrapped.action_space.shape, dtype=np.float32)
    vms = []
    for _ in range(15):
        obs_w, r_w, *_ , info_w = wrapped.step(zero)
        obs_p, r_p, *_ = plain.step(policy.act(obs_p[None, :], None)[0])
        np.testing.assert_array_equal(obs_w, obs_p)
        assert r_w == r_p
        vms.append(info_w["vms_running"] + info_w["vms_booting"])
    assert max(vms) > 0  # the map provisioned VMs from the monitored load


def test_vector_wrapper_matches_the_single_env_wrapper() -> None:
    scenario = load_scenario("default", **SCENARIO)
    single = ActionMapWrapper(gym.make(ENV_ID, scenario=scenario), smooth=0.5)
    amap = make_action_map({"kind": "load", "smooth": 0.5}, scenario,
                           reward_reference_rate(scenario))
    venv = ActionMapVecWrapper(make_sb3_vec_env(scenario, num_envs=1, seed=9), amap)
    obs_v = venv.reset()
    obs_s, _ = single.reset(seed=9)
    np.testing.assert_array_equal(obs_v[0], obs_s)
    rng = np.random.default_rng(0)
    for _ in range(10):
        a = rng.uniform(-1, 1, size=(1, 6)).astype(np.float32)
        obs_v, r_v, _, _ = venv.step(a)
        obs_s, r_s, *_ = single.step(a[0])
        np.testing.assert_array_equal(obs_v[0], obs_s)
        assert np.float32(r_s) == r_v[0]


def test_wrapper_rejects_a_bad_setting() -> None:
    with pytest.raises(ValueError, match="utilisation=2.0"):
        zoo_wrapped_env({"utilisation": 2.0})


def test_load_map_sets_the_room_as_a_cap_in_cap_mode() -> None:
    """Cap mode: the routing half becomes the cap r_k less the backlog to drain, relative to
    the running VMs' capacity (share mode: the share of the monitored load beyond the room)."""
    from serflow_env.observation import column, observation_size

    out = {}
    for mode in ("share", "cap"):
        scenario = load_scenario("default", **{"routing.mode": mode, "routing.max_cap": 2.0})
        amap = make_action_map({"kind": "load"}, scenario, 100.0)
        obs = np.zeros((1, observation_size(3)))
        obs[0, 0] = 1.0  # monitored traffic: not a fresh episode
        obs[0, column("stage_rate", num_stages=3)] = [1.0, 0.4, 0.2]  # x 100 requests/s
        obs[0, column("vms_running", num_stages=3)] = np.array([2, 1, 0]) / 20.0
        obs[0, column("queue", num_stages=3)] = [10.0 / (2 * 20), 0.0, 0.0]
        route = amap(obs, np.zeros((1, 6), np.float32))[0, 3:]
        out[mode] = (route + 1.0) / 2.0 * (2.0 if mode == "cap" else 1.0)
    capacity = np.array([2 / 0.040, 2 / 0.060, 2 / 0.080])  # slots / mean service time
    # stage 1: room 0.7 x 2 VMs x 50/s - 10 queued / 10 s = 69 requests/s of 100 capacity
    np.testing.assert_allclose(out["cap"][:2], [69.0 / (2 * capacity[0]), 0.7], rtol=1e-6)
    np.testing.assert_allclose(out["share"][:2], [1.0 - 69.0 / 100.0,
                                                  1.0 - 0.7 * capacity[1] / 40.0], atol=1e-6)


def test_delta_moves_each_vm_target_by_at_most_step_from_the_vms_there_are() -> None:
    """The env's VMs (running + booting: removals and launches act at once) are the rounded
    running sum of a * step clipped to [0, max_vms], from the initial VMs, restarting from
    them after an autoreset; small steady actions add up."""
    from agents.rl.actions import VectorActionMapWrapper
    from serflow_env import SerflowVectorEnv
    from tests.conftest import constant, scenario, stage

    stages = [stage("a", 0.5, slots_per_vm=1, max_vms=6, initial_vms=2),
              stage("b", 1.0, slots_per_vm=1, max_vms=9, initial_vms=0)]
    sc = load_scenario(scenario(stages, constant(20.0), episode_steps=12))
    env = VectorActionMapWrapper(SerflowVectorEnv(2, scenario=sc), kind="delta", step=2.5)
    env.reset(seed=1)
    rng = np.random.default_rng(3)
    start = [[2.0, 0.0], [2.0, 0.0]]
    target = [row[:] for row in start]
    for t in range(20):
        if t == 12:  # the autoreset step started new episodes: from the initial VMs again
            target = [row[:] for row in start]
        a = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
        if t >= 15:  # env 0, stage 0 (at 0 VMs then): 0.15 VM per interval
            a[0, 0] = 0.06
        for i in range(2):  # the running sum, written out per env and stage
            for k, top in enumerate((6.0, 9.0)):
                target[i][k] = min(max(target[i][k] + float(a[i, k]) * 2.5, 0.0), top)
        _, _, _, truncated, info = env.step(a)
        got = info["stage_vms_running"] + info["stage_vms_booting"]
        if t == 11:
            assert truncated.all()
            got = np.stack([f["stage_vms_running"] + f["stage_vms_booting"]
                            for f in info["final_info"]])
        np.testing.assert_array_equal(got, np.rint(target), err_msg=f"step {t}")
    assert got[0, 0] == 1  # 0.15, 0.3, 0.45 VMs ask for none, 0.6 and 0.75 for one


@pytest.mark.parametrize("kind", ["raw", "delta", "load", "serflow"])
def test_the_three_shells_apply_the_same_map(kind: str) -> None:
    """Single-env Gymnasium wrapper, Gymnasium vector wrapper and SB3 VecEnv wrapper of one
    mode: the same observations and rewards for the same agent actions."""
    from agents.rl.actions import VectorActionMapWrapper
    from serflow_env import SerflowVectorEnv

    scenario = load_scenario("default", **SCENARIO)
    single = ActionMapWrapper(gym.make(ENV_ID, scenario=scenario), kind=kind)
    vector = VectorActionMapWrapper(SerflowVectorEnv(1, scenario=scenario), kind=kind)
    amap = make_action_map({"kind": kind}, scenario, reward_reference_rate(scenario))
    sb3 = ActionMapVecWrapper(make_sb3_vec_env(scenario, num_envs=1, seed=4), amap)
    obs_s, _ = single.reset(seed=4)
    obs_v, _ = vector.reset(seed=4)
    obs_b = sb3.reset()
    rng = np.random.default_rng(1)
    for t in range(20):  # the vector envs across the autoreset after 15 steps
        a = rng.uniform(-1, 1, size=(1, 6)).astype(np.float32)
        obs_v, r_v, *_ = vector.step(a)
        obs_b, r_b, *_ = sb3.step(a)
        np.testing.assert_array_equal(obs_b, obs_v)
        assert r_b[0] == np.float32(r_v[0])
        if t < 14:  # the single env's episode (the vector envs reset at its last step)
            obs_s, r_s, *_ = single.step(a[0])
            np.testing.assert_array_equal(obs_v[0], obs_s)
            assert r_v[0] == r_s


def test_delta_rejects_a_bad_step() -> None:
    with pytest.raises(ValueError, match="step=0.001"):
        make_action_map({"kind": "delta", "step": 0.001}, load_scenario("default"), 100.0)


def _heuristic_and_map_actions(mode: str, agent_action: np.ndarray,
                               **heuristic: float) -> tuple[np.ndarray, np.ndarray]:
    """Actions of the ``serflow`` heuristic and of the residual map with a constant agent
    action over one episode of the native vector env (the heuristic's actions are stepped)."""
    from agents.heuristics.serflow import Serflow
    from serflow_env import SerflowVectorEnv

    scenario = load_scenario("default", **{**SCENARIO, "routing.mode": mode})
    n = 3
    amap = make_action_map({"kind": "serflow"}, scenario, reward_reference_rate(scenario))
    env = SerflowVectorEnv(n, scenario=scenario)
    policy = Serflow(scenario, **heuristic)
    (obs, _), info = env.reset(seed=2), None
    policy.reset(n)
    amap.reset(n)
    got, want = [], []
    for _ in range(SCENARIO["episode_steps"]):
        want.append(policy.act(obs, info))
        got.append(amap(obs, np.tile(agent_action, (n, 1))))
        obs, _, _, _, info = env.step(want[-1])
    return np.array(got), np.array(want)


@pytest.mark.parametrize("mode", ["share", "cap"])
def test_serflow_map_at_zero_action_is_the_heuristic(mode: str) -> None:
    """The map rebuilds the monitored signals from the observation alone; its decisions equal
    the heuristic's reading the env's info, episode starts included (float32 observations:
    routing equal to 1e-5)."""
    got, want = _heuristic_and_map_actions(mode, np.zeros(6, np.float32))
    np.testing.assert_array_equal(got[..., :3], want[..., :3])  # VM targets
    np.testing.assert_allclose(got[..., 3:], want[..., 3:], atol=1e-5)
    assert np.ptp(want[..., :3]) > 0  # the heuristic moved its VMs


def test_serflow_map_utilisation_half_is_the_heuristic_at_another_utilisation() -> None:
    """a[k] = c for every stage: the heuristic built with utilisation 0.75 * span ** c."""
    for c in (-1.0, 0.5):
        action = np.array([c, c, c, 0, 0, 0], np.float32)
        got, want = _heuristic_and_map_actions("cap", action, utilisation=0.75 * 1.3 ** c)
        np.testing.assert_array_equal(got[..., :3], want[..., :3])
        np.testing.assert_allclose(got[..., 3:], want[..., 3:], atol=1e-5)


def test_serflow_map_routing_half_scales_the_room() -> None:
    """Cap mode: a[K + k] = c multiplies the heuristic's cap by route_span ** c (up to the
    largest cap)."""
    c = -0.6
    got, want = _heuristic_and_map_actions("cap", np.array([0, 0, 0, c, c, c], np.float32))
    max_cap = load_scenario("default").routing.max_cap
    cap_got = (got[..., 3:] + 1.0) / 2.0 * max_cap
    cap_want = (want[..., 3:] + 1.0) / 2.0 * max_cap
    np.testing.assert_allclose(cap_got, np.minimum(cap_want * 1.5 ** c, max_cap), atol=1e-5)
    assert (cap_want > 0).sum() >= 5  # steps where VMs ran and the cap meant something


def test_serflow_map_restarts_only_the_envs_whose_episode_restarted() -> None:
    """A fresh (all-zero monitored) observation in one row: that env gets the heuristic's
    first action and starts its rate tracking afresh; the other env keeps its memory."""
    from agents.heuristics.serflow import Serflow

    scenario = load_scenario("default", **SCENARIO)
    amap = make_action_map({"kind": "serflow"}, scenario, reward_reference_rate(scenario))
    venv = make_sb3_vec_env(scenario, num_envs=2, seed=6)
    obs = venv.reset()
    zero = np.zeros((2, 6), np.float32)
    amap(obs, zero)
    for _ in range(5):
        obs, *_ = venv.step(amap(obs, zero))
    kept = amap.heuristic.stage_rate.mean[1].copy()
    obs[0] = 0.0  # env 0 restarted
    out = amap(obs, zero)
    np.testing.assert_array_equal(out[0], Serflow(scenario).initial_action(1)[0])
    assert not amap.heuristic.stage_rate.seen[0] and amap.heuristic.stage_rate.seen[1]
    assert not np.array_equal(amap.heuristic.stage_rate.mean[1], kept)  # env 1 updated


def test_serflow_map_rejects_a_bad_setting() -> None:
    with pytest.raises(ValueError, match="route_span=0.5"):
        make_action_map({"kind": "serflow", "route_span": 0.5}, load_scenario("default"), 100.0)
