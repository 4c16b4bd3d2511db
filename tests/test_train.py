"""train.py and the PPO/SAC agents: smoke runs, checkpoints and resume, reproducibility, the
saved model as a Policy, rl-zoo3, and a short learning test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, constant

pytest.importorskip("stable_baselines3")

from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

from agents.policy import make_policy  # noqa: E402
from agents.rl.config import parse_trace_spec, split_hyperparams  # noqa: E402
from agents.rl.policy import RLPolicy  # noqa: E402
from serflow_env import SerflowVectorEnv, reference_rate_factors  # noqa: E402
from serflow_env.arrivals import SHIPPED_TRACE_DIR  # noqa: E402
from serflow_env.scenario import load_scenario  # noqa: E402
from serflow_eval.scoring import eval_scenario, run_policy  # noqa: E402
from serflow_eval.training import (  # noqa: E402
    TrainConfig,
    latest_checkpoint,
    parameters_vector,
    resume,
    train,
)
from train import main as train_main  # noqa: E402

SHORT = {"episode_steps": 20}
TINY_HP = {
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
    "sac": {"learning_starts": 32, "batch_size": 32, "buffer_size": 2000, "gradient_steps": 1},
}


def tiny_config(algo: str, out: Path, **extra: object) -> TrainConfig:
    """2 envs, 20-step episodes, PPO rollouts of 64 steps."""
    fields = dict(algo=algo, out=str(out), overrides=dict(SHORT), num_envs=2, timesteps=256,
                  hyperparams=dict(TINY_HP[algo]), eval_freq=128, eval_episodes=2,
                  eval_steps=20, checkpoint_freq=64, progress_bar=False, tensorboard=False,
                  heuristic="serflow")
    fields.update(extra)
    return TrainConfig(**fields)


def run_train_py(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def cli_args(algo: str, out: Path, timesteps: int = 256) -> list[str]:
    hp = [f"{k}:{v}" for k, v in TINY_HP[algo].items()]
    return ["--algo", algo, "--out", str(out), "--trace", "sine_1h.txt",
            "--trace", "square_1h.txt", "--trace-scales", "0.5", "1.0",
            "--set", "episode_steps=20", "--timesteps", str(timesteps),
            "--num-envs", "2", "--seed", "3", "--eval-freq", "128", "--eval-episodes", "2",
            "--eval-trace", "sine_1h.txt@0:600", "--checkpoint-freq", "64",
            "--no-progress-bar", "--hyperparams", *hp]


@pytest.mark.parametrize("algo", ["ppo", pytest.param("sac", marks=pytest.mark.slow)])
def test_train_py_smoke_and_saved_model_runs_as_policy(algo: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    action_map = "load" if algo == "ppo" else "raw"  # cover both parameterisations
    result = run_train_py(*cli_args(algo, out), "--action-map", action_map)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("run.json", "final_model.zip", "vecnormalize.pkl", "best_model.zip",
                 "best_model_vecnormalize.pkl", "training.csv", "evaluations.csv"):
        assert (out / name).is_file(), name
    assert "[eval] heuristic serflow" in result.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["algo"] == algo and run["num_envs"] == 2
    assert run["action_map"]["kind"] == action_map
    assert len(run["train_traces"]) == 4  # 2 traces x 2 traffic scales
    steps = latest_checkpoint(out)
    assert steps is not None and steps >= 192
    if algo == "sac":
        assert (out / "checkpoints" / f"rl_model_replay_buffer_{steps}_steps.pkl").is_file()
    # the saved model runs as a Policy on the vector env (as evaluate.py does)
    scenario = load_scenario("default", episode_steps=15)
    policy = make_policy(f"{algo}:{out / 'best_model.zip'}", scenario)
    assert isinstance(policy, RLPolicy) and policy.normalizer is not None
    venv = SerflowVectorEnv(3, scenario=scenario)
    obs, _ = venv.reset(seed=0)
    policy.reset(3)
    actions = policy.act(obs, None)
    assert actions.shape == (3, 6) and actions.dtype == np.float32
    assert np.all(np.abs(actions) <= 1.0)
    # deterministic: the same observation gives the same action
    assert np.array_equal(actions, policy.act(obs, None))
    metrics = run_policy(policy, scenario, episodes=2, seed=1)
    assert metrics.steps == 15 and metrics.requests > 0 and metrics.cost_usd > 0


class StopAt(BaseCallback):
    """Raises KeyboardInterrupt (as Ctrl-C does) once ``steps`` env steps are reached."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.steps:
            raise KeyboardInterrupt
        return True


@pytest.mark.parametrize("algo", ["ppo", pytest.param("sac", marks=pytest.mark.slow)])
def test_interrupt_then_resume_reaches_the_same_step_count(algo: str, tmp_path: Path) -> None:
    full = train(tiny_config(algo, tmp_path / "full", eval_freq=0), log=lambda _: None)
    cfg = tiny_config(algo, tmp_path / "cut", eval_freq=0, checkpoint_freq=0)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, log=lambda _: None, callbacks=[StopAt(100)])
    saved = latest_checkpoint(tmp_path / "cut")
    if algo == "ppo":
        assert saved == 64  # the interrupted rollout (64..100) is discarded
    else:  # the step interrupted in its callback was not stored, so it is not counted
        assert saved == 98
        buffer = tmp_path / "cut" / "checkpoints" / "rl_model_replay_buffer_98_steps.pkl"
        assert buffer.is_file()
    model = resume(tmp_path / "cut", log=lambda _: None)
    assert model.num_timesteps == full.num_timesteps
    if algo == "sac":  # replay buffer carried over: every transition since step 0 is in it
        assert model.replay_buffer.size() * 2 == model.num_timesteps
    assert (tmp_path / "cut" / "final_model.zip").is_file()
    make_policy(f"{algo}:{tmp_path / 'cut' / 'final_model.zip'}", load_scenario("default"))


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = cli_args("ppo", out, timesteps=10**7)
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while latest_checkpoint(out) is None and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert latest_checkpoint(out) is not None, "no checkpoint written"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "checkpoint saved" in stdout
    steps = latest_checkpoint(out)
    assert steps is not None and steps % 64 == 0  # a whole number of PPO rollouts
    result = run_train_py("--resume", str(out), "--timesteps", str(steps + 128),
                          "--no-progress-bar")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming ppo from" in result.stdout and f"at {steps} steps" in result.stdout
    assert f"done: {steps + 128} steps" in result.stdout


@pytest.mark.parametrize("algo", ["ppo", pytest.param("sac", marks=pytest.mark.slow)])
def test_same_seed_same_learning_curve(algo: str, tmp_path: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    try:
        runs = [train(tiny_config(algo, tmp_path / f"r{i}", seed=seed, eval_freq=0,
                                  checkpoint_freq=0, torch_threads=1), log=lambda _: None)
                for i, seed in enumerate((5, 5, 6))]
    finally:
        torch.set_num_threads(threads)
    curves = [(tmp_path / f"r{i}" / "training.csv").read_text().splitlines()
              for i in range(3)]
    drop_time = [[",".join(c for j, c in enumerate(line.split(",")) if j != 1) for line in curve]
                 for curve in curves]
    assert drop_time[0] == drop_time[1]
    np.testing.assert_array_equal(parameters_vector(runs[0]), parameters_vector(runs[1]))
    assert not np.array_equal(parameters_vector(runs[0]), parameters_vector(runs[2]))


def test_rate_rescaling_puts_observations_on_the_training_reference() -> None:
    trace = constant(80.0, 3600)
    train_sc = load_scenario("default", **{"arrivals.trace": trace,
                                           "reward.reference_rate": 100.0})
    eval_sc = load_scenario("default", **{"arrivals.trace": trace})  # reference = 80 req/s
    factor = reference_rate_factors(eval_sc, 100.0)
    assert factor is not None
    assert reference_rate_factors(train_sc, 100.0) is None
    obs = []
    for sc in (train_sc, eval_sc):
        venv = SerflowVectorEnv(1, scenario=sc)
        venv.reset(seed=4)
        action = np.array([[0.0, -0.5, -1.0, 0.2, 0.5, 1.0]], dtype=np.float32)
        for _ in range(3):
            o, *_ = venv.step(action)
        obs.append(o[0].astype(np.float64))
    np.testing.assert_allclose(obs[1] * factor, obs[0], rtol=1e-5, atol=1e-6)


def test_config_parsing_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    zoo, kwargs = split_hyperparams({
        "n_envs": 4, "n_timesteps": 1000, "policy": "MlpPolicy",
        "normalize": "dict(norm_obs=True, norm_reward=False)", "gamma": 0.9,
        "learning_rate": "lin_1e-3",
        "policy_kwargs": "dict(net_arch=dict(pi=[8], vf=[8]), activation_fn=nn.Tanh)"})
    assert zoo["normalize"] == {"norm_obs": True, "norm_reward": False, "gamma": 0.9}
    assert kwargs["learning_rate"](0.5) == pytest.approx(5e-4)
    assert kwargs["policy_kwargs"]["net_arch"] == {"pi": [8], "vf": [8]}
    from serflow_env.assignments import parse_assignments

    assert parse_assignments(["learning_rate:3e-4", "n_steps:256", "use_sde:true"],
                             "--hyperparams", sep=":") == {
        "learning_rate": 3e-4, "n_steps": 256, "use_sde": True}
    with pytest.raises(ValueError, match="policy_kwargs"):
        split_hyperparams({"policy_kwargs": "__import__('os')"})
    window = parse_trace_spec(str(SHIPPED_TRACE_DIR / "sine_1h.txt") + "@600:1200")
    assert len(window) == 600
    with pytest.raises(ValueError, match="window"):
        parse_trace_spec(str(SHIPPED_TRACE_DIR / "sine_1h.txt") + "@0:99999")
    scenario = eval_scenario("default", "sine_1h.txt@0:600")
    assert scenario.episode_steps == 60 and not scenario.arrivals.random_start
    for args, needle in ((["--algo", "dqn", "--out", "x"], "invalid choice"),
                         (["--algo", "ppo", "--out", str(tmp_path / "a"), "--hyperparams",
                           "n_steps"], "KEY:VALUE"),
                         (["--algo", "ppo", "--out", str(tmp_path / "b"), "--num-envs", "0"],
                          "--num-envs=0"),
                         (["--resume", str(tmp_path)], "run.json"),
                         (["--algo", "ppo", "--out", str(tmp_path / "c"), "--set",
                           "reward.w_slo=-1"], "reward.w_slo")):
        with pytest.raises(SystemExit) as exc:
            train_main(args)
        assert exc.value.code == 2, args
        assert needle in capsys.readouterr().err, args
    with pytest.raises(FileNotFoundError, match="model file not found"):
        make_policy(f"ppo:{tmp_path / 'missing.zip'}", load_scenario("default"))


def simple_scenario_overrides() -> dict:
    """One steady load that two VMs per stage serve far cheaper than functions."""
    return {"arrivals.trace": constant(60.0, 3600), "episode_steps": 60,
            "exit_drift.volatility": 0.0, "reward.reference_rate": 60.0}


@pytest.mark.slow
def test_ppo_improves_the_episode_return(tmp_path: Path) -> None:
    cfg = TrainConfig(algo="ppo", out=str(tmp_path / "learn"),
                      overrides=simple_scenario_overrides(), num_envs=8, timesteps=120_000,
                      seed=0, eval_freq=0, checkpoint_freq=0, progress_bar=False,
                      tensorboard=False, hyperparams={"n_steps": 128, "batch_size": 256},
                      action_map={"kind": "raw"})
    scenario = eval_scenario("default", None, simple_scenario_overrides(), steps=60)

    class Before(BaseCallback):
        def _on_training_start(self) -> None:
            from agents.rl.policy import current_policy

            policy = current_policy(self.model, scenario, 60.0, {"kind": "raw"})
            self.score = run_policy(policy, scenario, 4, seed=11).episode_return

        def _on_step(self) -> bool:
            return True

    before = Before()
    model = train(cfg, log=lambda _: None, callbacks=[before])
    policy = make_policy(f"ppo:{tmp_path / 'learn' / 'final_model.zip'}", scenario)
    after = run_policy(policy, scenario, 4, seed=11).episode_return
    assert model.num_timesteps >= 120_000
    # the untrained policy's mean action keeps 10 VMs per stage and half the traffic on
    # functions; the trained one must be clearly better
    assert after > before.score + 0.25 * abs(before.score), (before.score, after)


@pytest.mark.slow  # a subprocess that imports torch, SB3 and rl-zoo3 (11 s)
def test_rl_zoo3_trains_with_the_shipped_hyperparameters(tmp_path: Path) -> None:
    pytest.importorskip("rl_zoo3")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # two PPO rollouts of 2 envs x 64 steps: enough to load, train, save and reload the config
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env",
           "serflow/Serflow-v2", "--gym-packages", "serflow_env", "-n", "256",
           "-conf", str(ROOT / "agents" / "hyperparams" / "ppo.yml"), "-f", str(tmp_path),
           "--seed", "1", "--eval-freq", "-1", "--hyperparams", "n_envs:2", "n_steps:64",
           "batch_size:64"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    models = list(tmp_path.glob("ppo/serflow-Serflow-v2_*/serflow-Serflow-v2.zip"))
    assert len(models) == 1, list(tmp_path.rglob("*"))
    assert (models[0].parent / "serflow-Serflow-v2" / "vecnormalize.pkl").is_file()
    policy = make_policy(f"ppo:{models[0]}", load_scenario("default", episode_steps=10))
    assert policy.normalizer is not None
    metrics = run_policy(policy, load_scenario("default", episode_steps=10), 2, seed=0)
    assert metrics.requests > 0


def test_load_relative_action_map_provisions_holds_and_routes() -> None:
    from agents.rl.actions import LoadRelativeMap, make_action_map
    from serflow_env.observation import GLOBAL_FEATURES, STAGE_FEATURES

    # capacities 50, 33.3, 25 req/s per VM; max 20 VMs; routing as function shares (the cap
    # mode's routing: tests/test_action_wrappers.py)
    scenario = load_scenario("default", **{"routing.mode": "share"})
    amap = LoadRelativeMap(scenario, reference_rate=100.0, utilisation=0.75, hold_s=30.0)
    assert make_action_map(amap.spec(), scenario, 100.0).spec() == amap.spec()
    g, s = len(GLOBAL_FEATURES), len(STAGE_FEATURES)

    def obs(rates: list[float], running: list[float]) -> np.ndarray:
        o = np.zeros((1, g + 3 * s))
        o[0, 0] = 1.0  # something was monitored: not a fresh episode
        for k in range(3):
            o[0, g + s * k + STAGE_FEATURES.index("stage_rate")] = rates[k] / 100.0
            o[0, g + s * k + STAGE_FEATURES.index("vms_running")] = running[k] / 20.0
        return o

    amap.reset(1)
    zero = np.zeros((1, 6), dtype=np.float32)
    env_action = amap(obs([150.0, 50.0, 10.0], [0, 0, 0]), zero)
    vms = np.round((env_action[0, :3] + 1) / 2 * 20)
    np.testing.assert_array_equal(vms, [4, 2, 1])  # round(L / (C * 0.75))
    assert np.all(env_action[0, 3:] == 1.0)  # no VM running yet: all to functions
    # load halves: the target holds for hold_s (3 intervals), then follows
    for step in range(3):
        env_action = amap(obs([75.0, 25.0, 5.0], [4, 2, 1]), zero)
        vms = np.round((env_action[0, :3] + 1) / 2 * 20)
        expected = [4, 2, 1] if step < 2 else [2, 1, 0]
        np.testing.assert_array_equal(vms, expected)
    # routing: running VMs take up to running * C * 0.7 (b = 0), the rest goes to functions
    env_action = amap(obs([200.0, 25.0, 5.0], [2, 1, 1]), zero)
    share = (env_action[0, 3:] + 1) / 2
    np.testing.assert_allclose(share, [1 - 70.0 / 200.0, 1 - (100.0 / 3 * 0.7) / 25.0, 0.0],
                               atol=1e-6)
    # more provisioning action -> lower utilisation -> more VMs
    more = amap(obs([200.0, 25.0, 5.0], [2, 1, 1]), np.ones((1, 6), dtype=np.float32))
    assert np.all(more[0, :3] >= env_action[0, :3])
    # a fresh (reset) observation clears the memory
    fresh = amap(np.zeros((1, g + 3 * s)), zero)
    assert np.all(fresh[0, :3] == -1.0)
    with pytest.raises(ValueError, match="utilisation"):
        LoadRelativeMap(scenario, 100.0, utilisation=0.0)
    # smoothing: the provisioning action is an EMA (the first one of an episode taken as is),
    # so a one-interval noise spike cannot ratchet the VM target up
    smooth = LoadRelativeMap(scenario, 100.0, utilisation=0.75, hold_s=30.0, smooth=0.25)
    smooth.reset(1)
    busy = obs([150.0, 50.0, 10.0], [4, 2, 1])
    base = smooth(busy, zero)
    spike = np.zeros((1, 6), dtype=np.float32)
    spike[0, :3] = 1.0  # twice the VMs per unit of load if it were taken at once
    after = smooth(busy, spike)
    np.testing.assert_allclose(smooth.provision, 0.25)
    assert np.all(after[0, :3] <= more[0, :3])
    unsmoothed = np.round(150.0 / (50.0 * 0.75 * 2.0 ** -0.25))
    assert np.round((after[0, 0] + 1) / 2 * 20) == unsmoothed > np.round((base[0, 0] + 1) / 2 * 20)
    with pytest.raises(ValueError, match="smooth"):
        LoadRelativeMap(scenario, 100.0, smooth=0.0)
    from agents.rl.actions import action_map_spec

    assert action_map_spec("load", {"smooth": 0.5}) == {"kind": "load", "smooth": 0.5}
    with pytest.raises(ValueError, match="--action-map"):
        action_map_spec("absolute")
    # the ablation policy "load-map" is this map with a zero agent action
    fixed = make_policy("load-map", load_scenario("default", episode_steps=30))
    metrics = run_policy(fixed, load_scenario("default", episode_steps=30), 2, seed=0)
    assert metrics.vms_running > 0 and metrics.function_share < 1.0


@pytest.mark.parametrize("frame_stack, action_map", [(1, "load"), (3, "load"), (3, "delta")])
def test_policy_replays_the_training_env_exactly(frame_stack: int, action_map: str,
                                                 tmp_path: Path) -> None:
    """The saved agent as a Policy on the native vector env takes the same actions as the
    model inside its training stack (action map, frame stack, VecNormalize), across an
    autoreset."""
    from agents.rl.actions import action_map_spec
    from serflow_eval.training import make_training_env, resolve

    cfg = tiny_config("ppo", tmp_path / "run", eval_freq=0, checkpoint_freq=0,
                      hyperparams={**TINY_HP["ppo"], "frame_stack": frame_stack},
                      action_map=action_map_spec(action_map))
    model = train(cfg, log=lambda _: None)
    setup = resolve(cfg)
    policy = make_policy(f"ppo:{tmp_path / 'run' / 'final_model.zip'}", setup.train_scenario)
    env = make_training_env(setup, seed=21, stats_path=tmp_path / "run" / "vecnormalize.pkl")
    env.training = False  # frozen statistics, as the Policy has them
    obs = env.reset()
    native = SerflowVectorEnv(2, scenario=setup.train_scenario)
    raw, info = native.reset(seed=21)
    policy.reset(2)
    for _ in range(45):  # episodes of 20 steps: two autoresets
        agent_action, _ = model.predict(obs, deterministic=True)
        obs, _, _, _ = env.step(agent_action)
        raw, _, _, _, info = native.step(policy.act(raw, info))
        np.testing.assert_allclose(env.get_original_obs()[:, -raw.shape[1]:], raw, rtol=1e-6)
