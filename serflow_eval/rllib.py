"""RLlib PPO on the native vector env (its vector entry point, NEXT_STEP autoreset).

RLlib (Ray >= 2.52) builds the env with ``gym.make_vec(..., vectorization_mode=
"vector_entry_point")`` when ``gym_env_vectorize_mode`` is ``VECTOR_ENTRY_POINT``, so its env
runner steps :class:`serflow_env.SerflowVectorEnv` as arrays; RLlib expects ``NEXT_STEP``
autoreset, which the env config asks for. :func:`ppo_config` is the 2-core layout: sampling
and learning in the driver (``num_env_runners=0``, ``num_learners=0``)::

    from serflow_eval.rllib import ppo_config
    algo = ppo_config(num_envs=16).build_algo()
    for _ in range(10):
        print(algo.train()["env_runners"]["episode_return_mean"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import serflow_env
from serflow_eval.ray_session import import_ray


def ppo_config(scenario: str = "default", num_envs: int = 8, *,
               overrides: Mapping[str, Any] | None = None, rollout_steps: int = 128,
               minibatch_size: int = 256, num_epochs: int = 10, lr: float = 3e-4,
               hidden: Sequence[int] = (64, 64), seed: int = 0) -> Any:
    """A ``PPOConfig`` for ``serflow/Serflow-v2``: ``num_envs`` envs in one vector env,
    ``rollout_steps`` steps of each per iteration, an MLP of ``hidden`` units (SB3's
    MlpPolicy size by default), all in the driver process (2 cores suffice)."""
    import_ray()
    import gymnasium as gym
    from ray.rllib.algorithms.ppo import PPOConfig

    if num_envs < 1 or rollout_steps < 1:
        raise ValueError(f"num_envs={num_envs}, rollout_steps={rollout_steps}: allowed >= 1")
    env_config = {"scenario": scenario, "overrides": dict(overrides or {}),
                  "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP.value}
    return (
        PPOConfig()
        .environment(serflow_env.ENV_ID, env_config=env_config)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs,
                     gym_env_vectorize_mode=gym.VectorizeMode.VECTOR_ENTRY_POINT,
                     rollout_fragment_length=rollout_steps)
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=num_envs * rollout_steps,
                  minibatch_size=minibatch_size, num_epochs=num_epochs, lr=lr)
        .rl_module(model_config={"fcnet_hiddens": list(hidden),
                                 "head_fcnet_hiddens": []})
        .debugging(seed=seed)
    )
