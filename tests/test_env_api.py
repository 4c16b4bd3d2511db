"""Gymnasium and SB3 conventions: checkers, registration, spaces, autoreset, the SB3 adapter."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import serflow_env
from serflow_env import ENV_ID, SerflowEnv, SerflowVectorEnv, make_sb3_vec_env
from serflow_env.scenario import available_scenarios, load_scenario


def _checked_without_warnings(checker, *args, **kwargs) -> list[str]:
    """Run an env checker; return the warnings it raised (its soft complaints: bounds,
    dtypes, unsymmetric or unnormalised action spaces, seeding), hard failures raise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checker(*args, **kwargs)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize("name", available_scenarios())
def test_gymnasium_check_env_on_every_preset(name):
    env = SerflowEnv(name, episode_steps=5)
    assert _checked_without_warnings(check_env, env, skip_render_check=True) == []
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(first, again)
    for _ in range(5):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(reward)
    assert truncated and not terminated  # the episode ends by its time limit


def test_sb3_check_env():
    env = SerflowEnv(episode_steps=5)
    assert _checked_without_warnings(sb3_check_env, env, warn=True) == []
    # SB3 wants a symmetric, normalised action space for its Gaussian policies
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)


def test_registration_is_idempotent_and_make_works():
    import importlib

    importlib.reload(serflow_env)
    env = gym.make("serflow/Serflow-v2", scenario="branchynet-resnet", episode_steps=3)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.unwrapped.scenario.name == "branchynet-resnet"


def test_make_with_yaml_path_and_dotted_overrides(tmp_path):
    from serflow_env.scenario import SCENARIO_DIR

    path = tmp_path / "mine.yaml"
    path.write_text((SCENARIO_DIR / "default.yaml").read_text())
    env = gym.make("serflow/Serflow-v2", scenario=str(path),
                   overrides={"faas.keep_alive_s": 30.0}, episode_steps=7)
    assert env.unwrapped.scenario.faas.keep_alive_s == 30.0
    assert env.unwrapped.scenario.episode_steps == 7


def test_make_vec_returns_native_vector_env_with_declared_autoreset():
    venv = gym.make_vec("serflow/Serflow-v2", num_envs=3, vectorization_mode="vector_entry_point")
    assert isinstance(venv, SerflowVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=1)
    assert obs.shape == (3,) + venv.single_observation_space.shape
    assert obs.dtype == np.float32


def test_episode_ends_by_truncation_and_same_step_autoreset():
    venv = SerflowVectorEnv(2, episode_steps=3)
    venv.reset(seed=0)
    a = np.zeros((2, venv.single_action_space.shape[0]), np.float32)
    for _ in range(3):
        obs, reward, terminated, truncated, info = venv.step(a)
        assert not terminated.any()
    assert truncated.all()
    assert info["_final_obs"].all()
    # the returned observation is the first of the next episode (no interval observed yet)
    assert np.all(obs[:, 0] == 0.0)
    assert info["final_obs"][0][0] > 0.0  # the last interval saw traffic
    assert venv.engine.state.steps.tolist() == [0, 0]


def test_single_env_refuses_step_after_truncation():
    env = SerflowEnv(episode_steps=1)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    assert truncated and not terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


def test_info_has_documented_keys():
    env = SerflowEnv(episode_steps=2)
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    for key in ("cost_usd", "cost_vm_usd", "cost_faas_usd", "cost_transfer_usd",
                "requests_arrived", "requests_completed", "requests_dropped", "slo_violations",
                "latency_p50_s", "latency_p95_s", "latency_p99_s", "vms_running",
                "vms_booting", "faas_warm"):
        assert key in info
        assert np.isfinite(info[key])
    assert info["cost_usd"] == pytest.approx(
        info["cost_vm_usd"] + info["cost_faas_usd"] + info["cost_transfer_usd"])


def test_sb3_adapter_fills_terminal_observation_and_timelimit():
    env = make_sb3_vec_env(num_envs=3, seed=4, episode_steps=2)
    obs = env.reset()
    assert obs.shape == (3, env.observation_space.shape[0])
    a = np.zeros((3, env.action_space.shape[0]), np.float32)
    _, _, dones, infos = env.step(a)
    assert not dones.any() and "terminal_observation" not in infos[0]
    _, rewards, dones, infos = env.step(a)
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == env.observation_space.shape
    assert rewards.dtype == np.float32


def test_sb3_ppo_learns_a_few_steps_on_the_adapter():
    from stable_baselines3 import PPO

    env = make_sb3_vec_env(num_envs=4, seed=0, episode_steps=8)
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64


def test_observation_column_and_reference_rate_accessors() -> None:
    from serflow_env import reward_reference_rate
    from serflow_env.observation import column

    scenario = load_scenario("default", **{"reward.reference_rate": 80.0})
    venv = SerflowVectorEnv(1, scenario=scenario)
    venv.reset(seed=1)
    k = scenario.num_stages
    obs, *_, info = venv.step(np.zeros((1, 2 * k), dtype=np.float32))
    assert reward_reference_rate(scenario) == 80.0
    interval = scenario.control_interval_s
    # the columns read back the info's monitored quantities in their documented units
    np.testing.assert_allclose(obs[0, column("rate")] * 80.0,
                               info["requests_arrived"][0] / interval, rtol=1e-5)
    np.testing.assert_allclose(obs[0, column("stage_rate", num_stages=k)] * 80.0,
                               info["stage_requests"][0] / interval, rtol=1e-5)
    np.testing.assert_allclose(obs[0, column("faas_share", num_stages=k)],
                               info["stage_faas_share"][0], rtol=1e-6)
    assert column("queue", stage=1) == column("queue", num_stages=k)[1]
    with pytest.raises(ValueError, match="name='nope'"):
        column("nope")


def test_render_mode_and_spec_follow_gymnasium_habits():
    """gym.make accepts render_mode (None, 'ansi'); spec.max_episode_steps is the scenario's
    episode length and matches where the env truncates, without a second TimeLimit."""
    import gymnasium as gym

    env = gym.make(ENV_ID, render_mode=None, episode_steps=4)
    env.reset(seed=0)
    assert env.spec.max_episode_steps == 4 and env.render() is None
    assert "TimeLimit" not in str(env)
    env = gym.make(ENV_ID, render_mode="ansi", episode_steps=4)
    env.reset(seed=0)
    assert env.render() == "t=0 s: episode start (no interval yet)"
    truncated, steps = False, 0
    while not truncated:
        _, _, _, truncated, info = env.step(env.action_space.sample())
        steps += 1
    assert steps == env.spec.max_episode_steps
    text = env.render()
    assert text.startswith("t=40 s: ") and f"p95 {info['latency_p95_s']:.3f} s" in text
    assert f"{info['requests_arrived'] / 10:.1f} req/s" in text
    with pytest.raises(ValueError, match="render_mode='human'"):
        gym.make(ENV_ID, render_mode="human")
    venv = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
                        render_mode="ansi", episode_steps=4)
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    lines = venv.render()
    assert len(lines) == 2 and all(line.startswith("t=10 s: ") for line in lines)
