"""Same seed, same trajectory; the vector env with N = 1 follows the single env exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from serflow_env import SerflowEnv, SerflowVectorEnv


def _rollout_single(seed: int, steps: int, scenario: str = "default"):
    env = SerflowEnv(scenario, episode_steps=steps)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    out = [obs]
    for _ in range(steps):
        obs, reward, _, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        out.append(np.r_[obs, reward, info["cost_usd"], info["slo_violations"]])
    return np.concatenate(out), env


def test_same_seed_same_trajectory_and_different_seed_differs():
    a, _ = _rollout_single(5, 20)
    b, _ = _rollout_single(5, 20)
    c, _ = _rollout_single(6, 20)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_reset_with_seed_restarts_the_streams():
    env = SerflowEnv(episode_steps=10)
    first = []
    for _ in range(2):
        env.reset(seed=9)
        first.append(env.step(np.zeros(env.action_space.shape))[0])
    np.testing.assert_array_equal(first[0], first[1])


def _state_arrays(state) -> dict:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
            if isinstance(getattr(state, f.name), (np.ndarray, int))}


@pytest.mark.parametrize("mode", ["share", "cap"])
def test_vector_env_with_one_env_equals_single_env_including_state(mode):
    for scenario in ("default", "transformer-8"):
        routing = {"routing.mode": mode}
        single = SerflowEnv(scenario, episode_steps=15, overrides=routing)
        vector = SerflowVectorEnv(1, scenario=scenario, episode_steps=15, overrides=routing)
        o1, _ = single.reset(seed=3)
        o2, _ = vector.reset(seed=3)
        np.testing.assert_array_equal(o1, o2[0])
        rng = np.random.default_rng(0)
        for _ in range(15):
            a = rng.uniform(-1, 1, single.action_space.shape).astype(np.float32)
            o1, r1, _, t1, i1 = single.step(a)
            o2, r2, _, t2, i2 = vector.step(a[None])
            assert t1 == t2[0]
            if not t1:  # at the horizon the vector env has already auto-reset
                s1, s2 = _state_arrays(single.engine.state), _state_arrays(vector.engine.state)
                for key in s1:
                    np.testing.assert_array_equal(s1[key], s2[key], err_msg=key)
                np.testing.assert_array_equal(o1, o2[0])
            else:
                np.testing.assert_array_equal(o1, i2["final_obs"][0])
            assert r1 == r2[0]
            for key, value in i1.items():
                np.testing.assert_array_equal(value, i2[key][0], err_msg=key)


@pytest.mark.parametrize("mode", ["share", "cap"])
def test_vector_env_same_seed_same_batch_trajectory(mode):
    def run(seed):
        venv = SerflowVectorEnv(8, episode_steps=6, overrides={"routing.mode": mode})
        venv.reset(seed=seed)
        rng = np.random.default_rng(1)
        rewards = []
        for _ in range(12):  # crosses an autoreset
            _, r, _, _, _ = venv.step(rng.uniform(-1, 1, venv.action_space.shape))
            rewards.append(r)
        return np.array(rewards)

    np.testing.assert_array_equal(run(2), run(2))
    assert not np.array_equal(run(2), run(3))
