"""RLlib PPO trains on the native vector env through its vector entry point (NEXT_STEP)."""

from __future__ import annotations

import math

import pytest
from gymnasium.vector import AutoresetMode

from serflow_env import SerflowVectorEnv

pytest.importorskip("ray.rllib")


def test_rllib_ppo_trains_on_the_vector_entry_point(ray_local):
    from serflow_eval.rllib import ppo_config

    algo = ppo_config(num_envs=4, rollout_steps=32, minibatch_size=64, num_epochs=1,
                      overrides={"episode_steps": 20}).build_algo()
    try:
        env = algo.env_runner.env.unwrapped
        assert isinstance(env, SerflowVectorEnv) and env.num_envs == 4
        assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        for _ in range(2):
            result = algo.train()
        runners = result["env_runners"]
        assert runners["num_env_steps_sampled_lifetime"] == 2 * 4 * 32
        # episodes end by truncation after episode_steps intervals; RLlib counts the NEXT_STEP
        # reset step into every episode after an env's first (21), exactly as it does over
        # Gymnasium's SyncVectorEnv of single envs (gym_env_vectorize_mode="sync")
        assert runners["episode_len_min"] == 20 and runners["episode_len_max"] == 21
        assert math.isfinite(runners["episode_return_mean"])
        assert runners["episode_return_mean"] < 0  # rewards are costs
    finally:
        algo.stop()
