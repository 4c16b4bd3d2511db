"""serflow_env: a vectorized Gymnasium environment for SLO-aware serving of early-exit models.

Importing the package registers ``serflow/Serflow-v2`` (idempotently)::

    import gymnasium as gym
    import serflow_env  # noqa: F401
    env = gym.make("serflow/Serflow-v2", scenario="branchynet-resnet")
    venv = gym.make_vec("serflow/Serflow-v2", num_envs=1024,
                        vectorization_mode="vector_entry_point")
"""

from gymnasium.envs.registration import register, registry

from serflow_env.env import SerflowEnv
from serflow_env.normalisation import reference_rate_factors, reward_reference_rate
from serflow_env.reference import ReferenceVectorEnv
from serflow_env.scenario import Scenario, ScenarioError, available_scenarios, load_scenario
from serflow_env.vector_env import SerflowVectorEnv

ENV_ID = "serflow/Serflow-v2"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="serflow_env.env:SerflowEnv",
        vector_entry_point="serflow_env.vector_env:SerflowVectorEnv",
    )


def make_sb3_vec_env(*args, **kwargs):  # noqa: ANN002, ANN003
    """Build an SB3 ``VecEnv`` over the native vector env (see :mod:`serflow_env.sb3`)."""
    from serflow_env.sb3 import make_sb3_vec_env as _make

    return _make(*args, **kwargs)


__all__ = [
    "ENV_ID",
    "Scenario",
    "ScenarioError",
    "SerflowEnv",
    "SerflowVectorEnv",
    "ReferenceVectorEnv",
    "available_scenarios",
    "load_scenario",
    "make_sb3_vec_env",
    "reference_rate_factors",
    "reward_reference_rate",
]
