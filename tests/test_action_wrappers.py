"""The ``load`` action map as a Gymnasium wrapper of the single env (built through rl-zoo3's
``env_wrapper`` key) and as the SB3 vector wrapper training uses: both apply the same map."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents import make_policy
from agents.rl.actions import ActionMapVecWrapper, ActionMapWrapper, make_action_map
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
