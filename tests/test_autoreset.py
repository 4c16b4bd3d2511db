"""The native vector env's two autoreset modes against Gymnasium's SyncVectorEnv.

SyncVectorEnv over single envs is Gymnasium's reference implementation of each
``AutoresetMode``; with one env and the same seed the native vector env must return exactly
what it returns, step by step, across several truncations.
"""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import serflow_env  # noqa: F401  (registers the env)
from serflow_env import ENV_ID, SerflowEnv, SerflowVectorEnv
from serflow_env.reference import ReferenceVectorEnv

EPISODE = 3
STEPS = 3 * EPISODE + 2  # crosses three truncations


def actions(space: gym.Space, steps: int, seed: int) -> list[np.ndarray]:
    space.seed(seed)
    return [space.sample() for _ in range(steps)]


def rollout(venv: gym.vector.VectorEnv, seed: int) -> list[tuple]:
    obs, _ = venv.reset(seed=seed)
    out = [(obs,)]
    for a in actions(venv.action_space, STEPS, seed):
        obs, reward, terminated, truncated, info = venv.step(a)
        final = info["final_obs"][0] if info.get("_final_obs", [False])[0] else None
        out.append((obs, reward, terminated, truncated, final))
    return out


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_matches_sync_vector_env_over_single_envs(mode: AutoresetMode):
    ours = SerflowVectorEnv(1, episode_steps=EPISODE, autoreset_mode=mode)
    gyms = SyncVectorEnv([lambda: SerflowEnv(episode_steps=EPISODE)], autoreset_mode=mode)
    assert ours.metadata["autoreset_mode"] == gyms.metadata["autoreset_mode"] == mode
    got, want = rollout(ours, seed=5), rollout(gyms, seed=5)
    truncations = 0
    for step, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g[0], w[0], err_msg=f"obs at step {step}")
        if step:
            np.testing.assert_allclose(g[1], w[1], rtol=1e-12, err_msg=f"reward at {step}")
            assert g[2].tolist() == w[2].tolist() and g[3].tolist() == w[3].tolist()
            assert (g[4] is None) == (w[4] is None)
            if g[4] is not None:
                np.testing.assert_array_equal(g[4], w[4])
            truncations += int(g[3][0])
    assert truncations == 3


def test_next_step_returns_last_obs_then_reset_obs_with_zero_reward():
    venv = SerflowVectorEnv(2, episode_steps=2, autoreset_mode="next_step")
    venv.reset(seed=0)
    a = np.zeros((2, venv.single_action_space.shape[0]), np.float32)
    venv.step(a)
    obs, _, _, truncated, info = venv.step(a)
    assert truncated.all() and "final_obs" not in info
    assert np.all(obs[:, 0] > 0.0)  # the last interval's observation (it saw traffic)
    obs, reward, terminated, truncated, _ = venv.step(a)
    assert not terminated.any() and not truncated.any()
    assert reward.tolist() == [0.0, 0.0]
    assert np.all(obs[:, 0] == 0.0)  # a fresh episode: no interval observed yet
    assert venv.engine.state.steps.tolist() == [0, 0]


@pytest.mark.parametrize("venv_class", [SerflowVectorEnv, ReferenceVectorEnv])
def test_both_modes_play_the_same_episodes(venv_class):
    """NEXT_STEP only shifts the reset by one call: the episodes themselves are identical
    (in the fast and the reference simulator)."""
    same = venv_class(3, episode_steps=EPISODE)
    nxt = venv_class(3, episode_steps=EPISODE, autoreset_mode=AutoresetMode.NEXT_STEP)
    assert nxt.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    same.reset(seed=2)
    nxt.reset(seed=2)
    acts = actions(same.action_space, 2 * EPISODE, seed=2)
    for i, a in enumerate(acts):
        o1, r1, _, t1, info = same.step(a)
        o2, r2, _, t2, _ = nxt.step(a)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(np.stack(info["final_obs"]) if t1.all() else o1, o2)
        if t2.all() and i + 1 < len(acts):
            o2, r2, _, _, _ = nxt.step(a)  # the reset step: its action is ignored
            np.testing.assert_array_equal(o1, o2)
            assert not r2.any()


def test_make_vec_passes_the_mode_and_rejects_others():
    venv = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
                        autoreset_mode=AutoresetMode.NEXT_STEP)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert SerflowVectorEnv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    with pytest.raises(ValueError, match="autoreset_mode='disabled'.*SameStep, NextStep"):
        SerflowVectorEnv(1, autoreset_mode="disabled")
