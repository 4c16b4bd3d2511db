"""Memory and context in training: the SB3 context wrapper (terminal observations across an
autoreset), the trained agent with context features or an LSTM (RecurrentPPO) replaying its
training env as a Policy, and RecurrentPPO's reproducibility."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")

from agents.policy import make_policy  # noqa: E402
from agents.rl.clock import PolicyClock  # noqa: E402
from agents.rl.context import ContextVecEnv  # noqa: E402
from serflow_env import SerflowVectorEnv, make_sb3_vec_env  # noqa: E402
from serflow_env.context import TraceContext, trace_clock  # noqa: E402
from serflow_env.scenario import load_scenario  # noqa: E402
from serflow_eval.training import (  # noqa: E402
    TrainConfig,
    make_training_env,
    parameters_vector,
    resolve,
    train,
)

SHORT = {"episode_steps": 20}
TINY = {"n_steps": 32, "batch_size": 32, "n_epochs": 2}
LSTM = {"policy_kwargs": "dict(lstm_hidden_size=8, net_arch=[16])"}


def tiny(algo: str, out: Path, **hyperparams: object) -> TrainConfig:
    """2 envs, 20-step episodes of one trace from its start (so a policy knows the clock)."""
    return TrainConfig(algo=algo, out=str(out), overrides=dict(SHORT), num_envs=2,
                       timesteps=128, traces=["sine_1h.txt"], random_start=False,
                       hyperparams={**TINY, **hyperparams}, eval_freq=0, checkpoint_freq=0,
                       progress_bar=False, tensorboard=False, heuristic=None)


def test_vec_wrapper_terminal_observation_has_the_finished_episodes_clock() -> None:
    scenario = load_scenario("default", episode_steps=5,
                             **{"arrivals.trace": ["sine_1h.txt", "square_1h.txt"],
                                "arrivals.random_start": True})
    env = ContextVecEnv(make_sb3_vec_env(scenario, num_envs=3, seed=2), "time+forecast")
    obs = env.reset()
    engine = env.engine
    ctx = TraceContext.for_params(engine.params, "time+forecast")
    assert obs.shape[1] == env.observation_space.shape[0] == env.venv.observation_space.shape[0] + 4
    idx, start = engine.state.trace_idx.copy(), engine.state.trace_start_s.copy()
    for step in range(1, 6):
        obs, _, dones, infos = env.step(np.zeros((3, 6), dtype=np.float32))
        if step < 5:
            np.testing.assert_allclose(obs[:, -4:], ctx.features(*trace_clock(
                engine.params, engine.state)), rtol=1e-6)
    assert dones.all()
    end = ctx.features(idx, start + 5 * 10.0)
    for i in range(3):
        np.testing.assert_allclose(infos[i]["terminal_observation"][-4:], end[i], rtol=1e-6)
    # the new episodes' observations carry their own clock
    np.testing.assert_allclose(obs[:, -4:], ctx.features(engine.state.trace_idx,
                                                         engine.state.trace_start_s), rtol=1e-6)


def test_policy_clock_needs_a_known_start() -> None:
    scenario = load_scenario("default", **{"arrivals.trace": ["sine_1h.txt", "square_1h.txt"],
                                           "arrivals.random_start": False})
    with pytest.raises(ValueError, match="trace clock"):
        PolicyClock(scenario, "forecast", 100.0)
    one = scenario.with_overrides(**{"arrivals.trace": "sine_1h.txt", "episode_steps": 3})
    clock = PolicyClock(one, "forecast", 100.0)
    clock.reset({"start_s": 600.0})
    rows = [clock(2) for _ in range(4)]  # 3 steps of the first episode, then an autoreset
    want = clock.context.features(np.zeros(4, int), np.array([600.0, 610.0, 620.0, 0.0]))
    np.testing.assert_allclose(np.concatenate([row[:1] for row in rows]), want)


def replay(cfg: TrainConfig, algo: str, tmp_path: Path, steps: int = 45) -> None:
    """The saved agent as a Policy on the native vector env takes the same actions as the
    model inside its training stack, across two autoresets."""
    model = train(cfg, log=lambda _: None)
    setup = resolve(cfg)
    policy = make_policy(f"{algo}:{tmp_path / 'run' / 'final_model.zip'}", setup.train_scenario)
    env = make_training_env(setup, seed=21, stats_path=tmp_path / "run" / "vecnormalize.pkl")
    env.training = False
    obs = env.reset()
    native = SerflowVectorEnv(2, scenario=setup.train_scenario)
    raw, info = native.reset(seed=21)
    policy.reset(2)
    state, starts = None, np.ones(2, dtype=bool)
    base = raw.shape[1]
    for _ in range(steps):
        if algo == "recurrentppo":
            agent_action, state = model.predict(obs, state=state, episode_start=starts,
                                                deterministic=True)
        else:
            agent_action, _ = model.predict(obs, deterministic=True)
        obs, _, starts, _ = env.step(agent_action)
        raw, _, _, _, info = native.step(policy.act(raw, info))
        original = env.get_original_obs()
        width = original.shape[1] // setup.frame_stack
        np.testing.assert_allclose(original[:, -width:][:, :base], raw, rtol=1e-6)


@pytest.mark.parametrize("context", ["time", "forecast"])
def test_context_agent_replays_its_training_env(context: str, tmp_path: Path) -> None:
    cfg = tiny("ppo", tmp_path / "run", context=context, frame_stack=2)
    replay(cfg, "ppo", tmp_path)


def test_recurrent_agent_replays_its_training_env(tmp_path: Path) -> None:
    cfg = tiny("recurrentppo", tmp_path / "run", **LSTM)
    replay(cfg, "recurrentppo", tmp_path)
    with pytest.raises(ValueError, match="RECURRENTPPO model"):
        make_policy(f"ppo:{tmp_path / 'run' / 'final_model.zip'}",
                    load_scenario("default"))


@pytest.mark.slow
def test_recurrent_same_seed_same_learning_curve(tmp_path: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    try:
        runs = [train(replace(tiny("recurrentppo", tmp_path / f"r{i}", **LSTM), seed=seed,
                              torch_threads=1), log=lambda _: None)
                for i, seed in enumerate((5, 5, 6))]
    finally:
        torch.set_num_threads(threads)
    curves = [(tmp_path / f"r{i}" / "training.csv").read_text().splitlines() for i in range(3)]
    no_time = [[",".join(c for j, c in enumerate(line.split(",")) if j != 1) for line in curve]
               for curve in curves]
    assert no_time[0] == no_time[1]
    np.testing.assert_array_equal(parameters_vector(runs[0]), parameters_vector(runs[1]))
    assert not np.array_equal(parameters_vector(runs[0]), parameters_vector(runs[2]))
