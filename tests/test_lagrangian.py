"""Constrained PPO (agents/rl/lagrangian.py): the dual step, its convergence to the target on a
fake env whose violation rate depends on the multiplier, the reward the agent sees, logging,
saving and resuming, and train.py with --slo-target."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from gymnasium import spaces  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.logger import configure  # noqa: E402
from stable_baselines3.common.vec_env import VecEnv  # noqa: E402

from agents.rl.lagrangian import (  # noqa: E402
    LAMBDA_MAX,
    LAMBDA_MIN,
    DualAscentCallback,
    LagrangianReward,
    dual_step,
)
from serflow_eval.training import TrainConfig, resume, train  # noqa: E402

V0, SCALE, TARGET = 0.01, 10.0, 5e-4  # fake rate v(lambda) = V0 exp(-lambda / SCALE)
LAMBDA_STAR = SCALE * math.log(V0 / TARGET)  # where v(lambda) = TARGET: 29.96
REQUESTS = 1000.0  # resolved per env and step


class RateFromLambda(VecEnv):
    """N envs whose SLO violation rate is ``V0 exp(-lambda / SCALE)`` of the multiplier the
    LagrangianReward in front of it holds now (a policy that adapts at once); binomial counts
    or, with ``noise=False``, their expected values. Infos are plain dicts."""

    render_mode = None

    def __init__(self, num_envs: int = 4, noise: bool = True, seed: int = 0) -> None:
        super().__init__(num_envs, spaces.Box(-1, 1, (1,), np.float32),
                         spaces.Box(-1, 1, (1,), np.float32))
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.wrapper: LagrangianReward | None = None

    def rate(self) -> float:
        assert self.wrapper is not None
        return V0 * math.exp(-self.wrapper.lam / SCALE)

    def reset(self) -> np.ndarray:
        return np.zeros((self.num_envs, 1), np.float32)

    def step_async(self, actions: np.ndarray) -> None:
        pass

    def step_wait(self):  # noqa: ANN201
        n, rate = self.num_envs, self.rate()
        violations = (self.rng.binomial(int(REQUESTS), rate, n).astype(float) if self.noise
                      else np.full(n, REQUESTS * rate))
        infos = [{"reward_cost": -1.0, "slo_violations": float(v),
                  "requests_completed": REQUESTS - 3.0, "requests_dropped": 3.0}
                 for v in violations]
        obs = np.zeros((n, 1), np.float32)
        return obs, np.full(n, -1.0, np.float32), np.zeros(n, bool), infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):  # noqa: ANN001, ANN201
        return [getattr(self, attr_name)] * self.num_envs

    def set_attr(self, attr_name, value, indices=None):  # noqa: ANN001, ANN201
        setattr(self, attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):  # noqa: ANN001, ANN201
        return [getattr(self, method_name)(*args, **kwargs)] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):  # noqa: ANN001, ANN201
        return [False] * self.num_envs


def fake_setup(noise: bool, lam: float = 10.0) -> tuple[PPO, LagrangianReward]:
    fake = RateFromLambda(noise=noise)
    env = LagrangianReward(fake, request_scale=REQUESTS, lam=lam)
    fake.wrapper = env
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [8]})
    return model, env


def test_dual_step_moves_lambda_towards_the_target_by_at_most_its_step() -> None:
    assert dual_step(10.0, TARGET, TARGET, 0.1) == 10.0
    assert dual_step(10.0, 3 * TARGET, TARGET, 0.1) == pytest.approx(10.0 * math.exp(0.05))
    assert dual_step(10.0, 0.0, TARGET, 0.1) == pytest.approx(10.0 * math.exp(-0.1))
    assert dual_step(10.0, 1.0, TARGET, 0.1) < 10.0 * math.exp(0.1)  # bounded step
    assert dual_step(LAMBDA_MAX, 1.0, TARGET, 0.1) == LAMBDA_MAX
    assert dual_step(LAMBDA_MIN, 0.0, TARGET, 0.1) == LAMBDA_MIN
    with pytest.raises(ValueError, match="target"):
        dual_step(1.0, 0.1, 0.0, 0.1)
    with pytest.raises(ValueError, match="rate"):
        dual_step(1.0, float("nan"), TARGET, 0.1)
    with pytest.raises(ValueError, match="slo-target"):
        DualAscentCallback(1.5, 1.0)
    with pytest.raises(ValueError, match="dual-lr"):
        DualAscentCallback(TARGET, 1.0, lr=0.0)


def test_reward_carries_lambda_as_the_slo_weight_and_counts_resolved_requests() -> None:
    fake = RateFromLambda(num_envs=3, noise=False)
    env = LagrangianReward(fake, request_scale=500.0, lam=20.0)
    fake.wrapper = env
    env.reset()
    _, rewards, _, _ = env.step(np.zeros((3, 1), np.float32))
    violations = REQUESTS * V0 * math.exp(-20.0 / SCALE)
    np.testing.assert_allclose(rewards, -1.0 - 20.0 * violations / 500.0, rtol=1e-6)
    rate, resolved = env.take_rate()
    assert resolved == 3 * REQUESTS and rate == pytest.approx(violations / REQUESTS)
    assert env.take_rate() == (0.0, 0.0)


@pytest.mark.parametrize("noise", [False, True])
def test_dual_ascent_converges_to_the_target_on_a_fake_env(noise: bool, tmp_path: Path) -> None:
    model, env = fake_setup(noise)
    rows: list[dict[str, float]] = []
    callback = DualAscentCallback(TARGET, lam=10.0, lr=0.1, on_update=rows.append)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(32 * 200, callback=callback)  # 200 rollouts of 8 steps x 4 envs
    lams = np.array([r["lambda"] for r in rows])
    assert len(rows) == 200 and lams[0] > 10.0  # v(10) = 7.4 TARGET: lambda rises
    late = rows[100:]
    rate = (sum(r["violation_rate"] * r["resolved_requests"] for r in late)
            / sum(r["resolved_requests"] for r in late))
    if noise:  # a rollout sees ~16 violations: lambda jitters around lambda*
        assert np.mean(lams[100:]) == pytest.approx(LAMBDA_STAR, rel=0.03)
        assert rate == pytest.approx(TARGET, rel=0.1)
    else:
        assert lams[-1] == pytest.approx(LAMBDA_STAR, rel=1e-4)
        assert rows[-1]["violation_rate"] == pytest.approx(TARGET, rel=1e-3)
    assert env.lam == callback.lam == model.dual_state["lambda"] == lams[-1]
    with open(tmp_path / "progress.csv", encoding="utf-8") as fh:
        logged = [float(r["dual/lambda"]) for r in csv.DictReader(fh) if r["dual/lambda"]]
    assert logged[-1] == pytest.approx(lams[-1])


def test_lambda_is_saved_with_the_model_and_a_loaded_model_continues_from_it(
        tmp_path: Path) -> None:
    model, _ = fake_setup(noise=False)
    model.learn(32 * 5, callback=DualAscentCallback(TARGET, lam=10.0))
    saved = dict(model.dual_state)
    assert saved["updates"] == 5 and saved["lambda"] > 10.0
    model.save(tmp_path / "m.zip")
    _, env = fake_setup(noise=False, lam=10.0)
    loaded = PPO.load(tmp_path / "m.zip", env=env, device="cpu")
    assert loaded.dual_state == saved
    rows: list[dict[str, float]] = []
    loaded.learn(32, callback=DualAscentCallback(TARGET, lam=10.0, on_update=rows.append),
                 reset_num_timesteps=False)
    rate = V0 * math.exp(-saved["lambda"] / SCALE)  # what the restored lambda gave
    assert rows[0]["violation_rate"] == pytest.approx(rate)
    assert rows[0]["lambda"] == pytest.approx(dual_step(saved["lambda"], rate, TARGET, 0.1))
    assert loaded.dual_state["updates"] == 6


def test_train_py_with_slo_target_logs_lambda_and_resume_continues_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = TrainConfig(algo="ppo", out=str(out), overrides={"episode_steps": 20}, num_envs=2,
                      timesteps=256, hyperparams={"n_steps": 32, "batch_size": 32,
                                                  "n_epochs": 1},
                      eval_freq=0, checkpoint_freq=128, progress_bar=False, tensorboard=False,
                      slo_target="heuristic", heuristic="serflow", eval_steps=20)
    lines: list[str] = []
    train(cfg, log=lines.append)
    assert any(line.startswith("[dual] SLO target") for line in lines)
    with open(out / "dual.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["timesteps"]) for r in rows] == [64, 128, 192, 256]
    target = float(rows[0]["target"])
    assert 0 < target < 1 and all(float(r["target"]) == target for r in rows)
    checkpoint = PPO.load(out / "checkpoints" / "rl_model_128_steps.zip", device="cpu")
    assert checkpoint.dual_state["updates"] == 1  # saved during rollout 2, after update 1
    resume(out, timesteps=320, log=lines.append)
    with open(out / "dual.csv", encoding="utf-8") as fh:
        resumed = list(csv.DictReader(fh))[len(rows):]
    # resumed from the 256-step checkpoint (after 3 updates) with the lambda it holds
    last = PPO.load(out / "checkpoints" / "rl_model_256_steps.zip", device="cpu").dual_state
    assert [int(r["timesteps"]) for r in resumed] == [320]
    assert float(resumed[0]["lambda"]) == pytest.approx(dual_step(
        last["lambda"], float(resumed[0]["violation_rate"]), target, 0.1))


@pytest.mark.parametrize("extra, message", [
    ({"algo": "sac"}, "PPO only"),
    ({"slo_target": "2"}, "allowed a rate in"),
    ({"slo_target": "often"}, "allowed a rate in"),
    ({"slo_target": "heuristic", "heuristic": None}, "needs a --heuristic"),
    ({"dual_lr": -1.0}, "dual-lr"),
])
def test_bad_slo_settings_are_one_line_errors(extra: dict, message: str) -> None:
    fields = {"algo": "ppo", "out": "x", "slo_target": "0.001", **extra}
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields).validate()
