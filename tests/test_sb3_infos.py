"""The SB3 adapter's per-env infos are views of the step's arrays: the same values a per-env
dict held, through SB3's wrappers; the training callback's sums stay bit-identical; and the
end-to-end benchmark accounts for its time."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3.common.vec_env import (  # noqa: E402
    VecFrameStack,
    VecMonitor,
    VecNormalize,
)

from serflow_env import SerflowVectorEnv, make_sb3_vec_env  # noqa: E402
from serflow_env.latency import cdf_grid_s  # noqa: E402
from serflow_env.observation import INFO_KEYS  # noqa: E402
from serflow_env.sb3 import STEP_INFO_KEYS, StepInfo, batched_info, info_columns  # noqa: E402
from serflow_env.scenario import load_scenario  # noqa: E402
from serflow_eval.callbacks import ServingMetricsCallback  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

EPISODE = 4


def actions(steps: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (steps, n, 6)).astype(np.float32)


def test_views_hold_what_the_native_env_reported_and_mark_truncation() -> None:
    n = 3
    adapter = make_sb3_vec_env(num_envs=n, seed=7, episode_steps=EPISODE)
    native = SerflowVectorEnv(n, scenario=load_scenario("default", episode_steps=EPISODE))
    adapter.reset()
    native.reset(seed=7)
    for t, a in enumerate(actions(EPISODE, n)):
        _, reward, dones, infos = adapter.step(a)
        _, native_reward, _, truncated, info = native.step(a)
        np.testing.assert_array_equal(reward, native_reward.astype(np.float32))
        for i, view in enumerate(infos):
            assert set(view) == set(STEP_INFO_KEYS) | (
                {"terminal_observation", "TimeLimit.truncated"} if dones[i] else set())
            for key in INFO_KEYS:
                assert type(view[key]) is float and view[key] == float(info[key][i])
            np.testing.assert_array_equal(view["latency_cdf"], info["latency_cdf"][i])
        assert dones.all() == (t == EPISODE - 1) and (dones == truncated).all()
    for i, view in enumerate(infos):
        assert view["TimeLimit.truncated"] is True
        np.testing.assert_array_equal(view["terminal_observation"], info["final_obs"][i])


def test_view_is_a_mapping_whose_own_keys_do_not_leak_into_copies() -> None:
    batch = {"cost_usd": np.array([1.5, 2.5]), "latency_cdf": np.arange(6.0).reshape(2, 3)}
    view = StepInfo(batch, 1)
    assert view["cost_usd"] == 2.5 and view.get("missing", 7) == 7 and "missing" not in view
    np.testing.assert_array_equal(view["latency_cdf"], [3.0, 4.0, 5.0])
    copy = view.copy()
    copy["episode"] = {"r": 1.0}
    assert "episode" in copy and "episode" not in view and view.get("episode") is None
    assert len(copy) == 3 and list(copy) == ["cost_usd", "latency_cdf", "episode"]
    assert list(dict(view)) == ["cost_usd", "latency_cdf"]
    del copy["episode"]
    with pytest.raises(KeyError):
        del copy["cost_usd"]  # the step's arrays are shared, not the view's to change
    with pytest.raises(KeyError):
        view["missing"]


def test_sb3_wrappers_keep_the_views_and_their_arrays() -> None:
    n = 4
    env = VecNormalize(VecFrameStack(VecMonitor(make_sb3_vec_env(
        num_envs=n, seed=1, episode_steps=EPISODE)), 2))
    env.reset()
    for a in actions(EPISODE, n):
        _, _, dones, infos = env.step(a)
        batch = batched_info(infos)
        assert batch is not None  # VecMonitor copied the done envs' views: still views
        columns = info_columns(infos, ("cost_usd", "latency_cdf"))
        plain = info_columns([dict(info) for info in infos], ("cost_usd", "latency_cdf"))
        for key in columns:  # the arrays equal the per-env values stacked from dicts
            np.testing.assert_array_equal(columns[key], plain[key])
    assert dones.all()
    for info in infos:  # VecMonitor's episode and VecNormalize's normalised terminal obs
        assert info["episode"]["l"] == EPISODE and info["terminal_observation"].shape == (80,)
    assert batched_info([dict(i) for i in infos]) is None
    assert batched_info(infos[::-1]) is None  # not in env order: not the step's arrays


def test_training_callback_sums_are_bit_identical_to_a_loop_over_env_dicts() -> None:
    n, steps = 16, 6  # >= 8 envs: np.sum would add in eight interleaved partial sums
    sc = load_scenario("default", episode_steps=50)
    grid = cdf_grid_s(sc.slo_deadline_s, sc.latency_span * sc.slo_deadline_s)
    env = make_sb3_vec_env(sc, num_envs=n, seed=3)
    obs = env.reset()
    views, callbacks = [], []
    for _ in range(2):
        cb = ServingMetricsCallback(sc.num_stages, grid)
        cb.model = SimpleNamespace(get_vec_normalize_env=lambda: None)
        callbacks.append(cb)
    expected = dict.fromkeys(("cost", "arrived", "viol", "vms", "r_cost", "r_slo"), 0.0)
    names = {"cost": "cost_usd", "arrived": "requests_arrived", "viol": "slo_violations",
             "vms": "vms_running", "r_cost": "reward_cost", "r_slo": "reward_slo"}
    for a in actions(steps, n, seed=4):
        obs, _, dones, infos = env.step(a)
        views.append(infos)
        for cb, given in zip(callbacks, (infos, [dict(info) for info in infos])):
            cb.locals = {"infos": given, "new_obs": obs, "dones": dones}
            cb._on_step()
        for info in infos:  # the per-env Python loop the callback used to run
            for key, name in names.items():
                expected[key] += info[name]
    for cb in callbacks:
        for key, value in expected.items():
            assert cb.acc[key] == value, key  # exactly, not approximately
    np.testing.assert_array_equal(np.concatenate(callbacks[0].cdf),
                                  np.concatenate(callbacks[1].cdf))


def test_benchmark_accounts_for_the_time_of_both_runs(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_sb3
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    result = bench_sb3.measure(2, 1, tmp_path / "run")
    for name in ("cartpole", "serflow"):
        rate, parts = result[name]
        assert rate > 0
        total = parts.pop("total")
        assert all(v >= -1e-6 for v in parts.values()), parts
        # the parts are exclusive: together all of learn() but SB3's logging between rollouts
        assert 0.8 * total <= sum(parts.values()) <= total * 1.0001
    serflow_parts = result["serflow"][1]
    assert serflow_parts["native env: dynamics, observation, info"] > 0
    assert serflow_parts["action map wrapper"] > 0 and serflow_parts["training callbacks"] > 0
