"""train.py --suite SUITE:PRESET (one agent per preset) and the ppo-suite:DIR policy spec.

A small suite in a temporary folder (generated traces, episodes of tens of steps) stands in
for v1, so the per-task settings can be checked against what they must do to the envs: a
scale multiplies the arrivals, an episode length is where that task's envs reset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from serflow_env.observation import observation_size

pytest.importorskip("stable_baselines3")

from agents.policy import make_policy  # noqa: E402
from serflow_env.suite import build_tasks, load_suite  # noqa: E402
from serflow_eval.scoring import ServingMetrics  # noqa: E402
from serflow_eval.suite_training import (  # noqa: E402
    compare_to_heuristic,
    parse_suite_option,
    share_envs,
    suite_plan,
    suite_rank_key,
)
from serflow_eval.train_config import TrainConfig  # noqa: E402

SINE = {"generator": "sine", "duration_s": 600, "mean_rate": 100.0, "amplitude": 20.0,
        "period_s": 300.0}
OVERRIDES = {"reward.reference_rate": 100.0}


def _suite_file(folder: Path) -> Path:
    tasks = [
        {"name": "a", "split": "train", "trace": SINE, "episode_steps": 20},
        {"name": "a-other-seed", "split": "train", "trace": dict(SINE), "episode_steps": 20},
        {"name": "b-scaled", "split": "train", "trace": SINE, "scale": 3.0, "episode_steps": 30,
         "exit_drift": {"volatility": 0.0}},
        {"name": "t8-train", "split": "train", "scenario": "transformer-8", "trace": SINE,
         "episode_steps": 20},
        {"name": "val-a", "split": "validation", "trace": SINE, "episode_steps": 20},
        {"name": "val-b", "split": "validation", "trace": SINE, "scale": 0.5,
         "episode_steps": 20},
        {"name": "t8-val", "split": "validation", "scenario": "transformer-8", "trace": SINE,
         "episode_steps": 20},
        {"name": "test-a", "split": "test", "trace": SINE, "episode_steps": 20},
        {"name": "t8-test", "split": "test", "scenario": "transformer-8", "trace": SINE,
         "episode_steps": 20},
    ]
    path = folder / "mini.yaml"
    path.write_text(yaml.safe_dump({"name": "mini", "version": 1, "tasks": tasks}))
    return path


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _suite_file(tmp_path_factory.mktemp("suite"))


def test_plan_takes_the_presets_train_and_validation_tasks(suite_file: Path) -> None:
    plan = suite_plan(f"{suite_file}:default", OVERRIDES, num_envs=7)
    assert [t.name for t in plan.train] == ["a", "a-other-seed", "b-scaled"]
    assert [t.name for t in plan.validation] == ["val-a", "val-b"]
    assert plan.env_counts == (3, 2, 2) and sum(plan.env_counts) == 7
    t8 = suite_plan(f"{suite_file}:transformer-8", OVERRIDES, num_envs=2)
    assert [t.name for t in t8.train] == ["t8-train"]
    assert [t.name for t in t8.validation] == ["t8-val"]
    # the shipped v1: its task list, split by preset
    v1 = load_suite("v1")
    expect = {s: [t.name for t in v1.select([s]) if t.scenario == "transformer-8"]
              for s in ("train", "validation")}
    try:
        plan = suite_plan("v1:transformer-8", OVERRIDES, num_envs=64)
    except ValueError as exc:
        if "is absent" in str(exc):
            pytest.skip(str(exc))  # the LIBRA traces are not shipped
        raise
    assert [t.name for t in plan.train] == expect["train"]
    assert [t.name for t in plan.validation] == expect["validation"]
    half = {t.name: t.scenario for t in plan.train}["wits-21600-t8"]
    assert (half.arrivals.scale, half.episode_steps) == (0.5, 540)


def test_tasks_that_differ_only_in_trace_share_a_native_env(suite_file: Path) -> None:
    plan = suite_plan(f"{suite_file}:default", OVERRIDES, num_envs=7)
    groups = plan.groups()
    assert [(names, envs) for _, names, envs in groups] == [(["a", "a-other-seed"], 5),
                                                           (["b-scaled"], 2)]
    assert len(groups[0][0].arrivals.trace) == 2  # one of the two windows per episode


def test_per_task_scale_and_episode_length_reach_the_envs(suite_file: Path) -> None:
    """Envs of ``b-scaled`` (scale 3, 30 steps) get three times the arrivals of ``a``'s (same
    sine, scale 1) and reset after 30 steps, the others after 20; every env sees the fixed
    reference rate."""
    plan = suite_plan(f"{suite_file}:default", OVERRIDES, num_envs=24)
    groups = plan.groups()
    env = plan.vec_env(seed=3)
    env.reset()
    lo, hi = env.offsets[1], env.offsets[2]  # b-scaled's envs
    assert [names for _, names, _ in groups][1] == ["b-scaled"]
    action = np.zeros((env.num_envs, 6), dtype=np.float32)
    arrived = np.zeros(env.num_envs)
    done_at: dict[int, list[int]] = {}
    for step in range(1, 31):
        _, _, dones, infos = env.step(action)
        if step <= 20:
            arrived += [info["requests_arrived"] for info in infos]
        for i in np.flatnonzero(dones):
            done_at.setdefault(int(i), []).append(step)
    # every env replays the same sine from its start (a and a-other-seed share its spec)
    ratio = arrived[lo:hi].mean() / arrived[:lo].mean()
    assert 2.7 < ratio < 3.3
    assert all(done_at[i] == [20] for i in range(lo))
    assert all(done_at[i] == [30] for i in range(lo, hi))
    assert all(t.scenario.reward.reference_rate == 100.0 for t in plan.train)
    assert groups[1][0].exit_drift.volatility == 0.0  # b-scaled's exit drift
    assert groups[0][0].exit_drift.volatility > 0.0  # the preset's


def test_concat_env_is_seeded_per_part(suite_file: Path) -> None:
    plan = suite_plan(f"{suite_file}:default", OVERRIDES, num_envs=4)
    runs = []
    for seed in (1, 1, 2):
        env = plan.vec_env(seed=seed)
        env.reset()
        action = np.zeros((4, 6), dtype=np.float32)
        runs.append(np.stack([env.step(action)[0] for _ in range(5)]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def _metrics(cost: float, violation_rate: float) -> ServingMetrics:
    return ServingMetrics("p", 1, 1, 1000.0, cost, cost, violation_rate, 0.1, 1.0, 0.1, -1.0)


def test_selection_rule() -> None:
    heuristic = {"x": _metrics(10.0, 0.01), "y": _metrics(20.0, 0.02)}
    cheap_but_late = compare_to_heuristic({"x": _metrics(8.0, 0.03), "y": _metrics(16.0, 0.02)},
                                          heuristic)
    admissible = compare_to_heuristic({"x": _metrics(9.0, 0.005), "y": _metrics(22.0, 0.02)},
                                      heuristic)
    cheaper = compare_to_heuristic({"x": _metrics(9.0, 0.01), "y": _metrics(19.0, 0.02)},
                                   heuristic)
    assert admissible.cost_vs_heuristic == pytest.approx((0.9 + 1.1) / 2)
    assert cheap_but_late.violation_excess == pytest.approx(0.01)
    assert suite_rank_key(admissible) > suite_rank_key(cheap_but_late)
    assert suite_rank_key(cheaper) > suite_rank_key(admissible)


@pytest.mark.parametrize("option, message", [
    ("v1", "expected SUITE:PRESET"),
    ("v1:nope", "has no task on preset 'nope'; its presets: branchynet-resnet, default, "
                "transformer-8"),
    ("nosuch:default", "unknown suite 'nosuch'"),
])
def test_bad_suite_option_is_one_line(option: str, message: str) -> None:
    with pytest.raises(ValueError, match="^--suite") as info:
        if ":" not in option:
            parse_suite_option(option)
        suite_plan(option, OVERRIDES, num_envs=8)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_train_cli_rejects_contradicting_options(suite_file: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    import train

    for extra, message in ((["--suite", "v1:nope"], "its presets"),
                           (["--suite", f"{suite_file}:default", "--trace", "sine_1h.txt"],
                            "--trace with --suite"),
                           (["--suite", f"{suite_file}:default", "--set",
                             "arrivals.scale=2"], "--set arrivals.scale with --suite"),
                           (["--suite", f"{suite_file}:default", "--num-envs", "2"],
                            "--num-envs=2; allowed >= 3")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--algo", "ppo", "--out", str(tmp_path / "run"), *extra])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert share_envs(5, 2) == (3, 2)


# --------------------------------------------------------------------------------------------
# End to end: tiny runs per preset, then the ppo-suite spec


def _tiny_train(suite_file: Path, preset: str, out: Path, eval_freq: int) -> None:
    from serflow_eval.training import train

    cfg = TrainConfig(algo="ppo", out=str(out), suite=f"{suite_file}:{preset}",
                      timesteps=96, num_envs=3 if preset == "default" else 2,
                      hyperparams={"n_steps": 16, "batch_size": 16, "n_epochs": 1},
                      eval_freq=eval_freq, eval_episodes=1, checkpoint_freq=0,
                      progress_bar=False, tensorboard=False)
    train(cfg, log=lambda _: None)


@pytest.fixture(scope="module")
def trained_runs(suite_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    _tiny_train(suite_file, "default", folder / "default", eval_freq=40)
    return folder


@pytest.mark.slow
def test_tiny_suite_run_validates_on_its_validation_tasks(trained_runs: Path) -> None:
    run = json.loads((trained_runs / "default" / "run.json").read_text())
    assert run["suite"]["preset"] == "default"
    assert run["suite"]["train_tasks"] == ["a", "a-other-seed", "b-scaled"]
    assert run["suite"]["validation_tasks"] == ["val-a", "val-b"]
    assert run["train_traces"][0].startswith("sine")
    assert (trained_runs / "default" / "best_model.zip").is_file()
    header = (trained_runs / "default" / "evaluations.csv").read_text().splitlines()[0]
    tasks = {column.split(":")[0] for column in header.split(",") if ":" in column}
    assert tasks == {"val-a", "val-b"}  # never a test task


def _untrained_run(suite_file: Path, preset: str, out: Path) -> None:
    """A run folder as train.py --suite writes it, with an untrained PPO model (the spec's
    tests need the files, not the learning)."""
    from stable_baselines3 import PPO

    from agents.rl.actions import action_map_spec

    plan = suite_plan(f"{suite_file}:{preset}", OVERRIDES, num_envs=len(
        load_suite(suite_file).select(["train"])))
    out.mkdir(parents=True)
    PPO("MlpPolicy", plan.vec_env(0), n_steps=16, device="cpu").save(out / "final_model.zip")
    (out / "run.json").write_text(json.dumps({
        "algo": "ppo", "reference_rate": 100.0, "action_map": action_map_spec("load"),
        "frame_stack": 1, "normalize": False, "suite": plan.describe()}))


@pytest.fixture(scope="module")
def suite_runs(suite_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    _untrained_run(suite_file, "default", folder / "default")
    _untrained_run(suite_file, "transformer-8", folder / "t8")
    return folder


def test_suite_spec_picks_the_presets_model(suite_file: Path, suite_runs: Path) -> None:
    tasks = {t.name: t for t in build_tasks(load_suite(suite_file), ["test"])[0]}
    for task, stages in (("test-a", 3), ("t8-test", 8)):
        policy = make_policy(f"ppo-suite:{suite_runs}@final_model", tasks[task].scenario)
        assert policy.model.observation_space.shape == (observation_size(stages),)
        obs = np.zeros((1, observation_size(stages)), dtype=np.float32)
        policy.reset(1)
        assert policy.act(obs, None).shape == (1, 2 * stages)


def test_suite_spec_errors(suite_file: Path, suite_runs: Path, tmp_path: Path) -> None:
    tasks = {t.name: t for t in build_tasks(load_suite(suite_file), ["test"])[0]}
    only_default = tmp_path / "only-default"
    only_default.mkdir()
    (only_default / "default").symlink_to(suite_runs / "default")
    with pytest.raises(FileNotFoundError, match=r"no run for preset 'transformer-8' \(scenario "
                       r"'mini/t8-test'\) in .*; runs there: default$"):
        make_policy(f"ppo-suite:{only_default}", tasks["t8-test"].scenario)
    with pytest.raises(FileNotFoundError, match="best_model.zip not found"):
        make_policy(f"ppo-suite:{suite_runs}", tasks["t8-test"].scenario)  # only final_model
    with pytest.raises(ValueError, match="holds a PPO run; use ppo-suite"):
        make_policy(f"sac-suite:{suite_runs}", tasks["test-a"].scenario)
    with pytest.raises(FileNotFoundError, match="no train.py --suite run"):
        make_policy(f"ppo-suite:{tmp_path}", tasks["test-a"].scenario)


def test_suite_evaluation_runs_the_per_preset_agents(suite_file: Path, suite_runs: Path,
                                                     tmp_path: Path) -> None:
    from serflow_eval.suite_eval import evaluate_suite

    tasks = build_tasks(load_suite(suite_file), ["test"])[0]
    spec = f"ppo-suite:{suite_runs}@final_model"
    result = evaluate_suite(tasks, ["serflow", "load-map", spec], [0], "serflow")
    assert sorted(result.per_seed.groupby(["task", "policy"]).size().index.tolist()) == sorted(
        (t, p) for t in ("test-a", "t8-test") for p in ("serflow", "load-map", spec))
    only_default = tmp_path / "only-default"
    only_default.mkdir()
    (only_default / "default").symlink_to(suite_runs / "default")
    played: list[str] = []
    with pytest.raises(FileNotFoundError, match="no run for preset 'transformer-8'"):
        evaluate_suite(tasks, ["serflow", f"ppo-suite:{only_default}@final_model"], [0],
                       "serflow", on_unit=lambda: played.append("unit"))
    assert not played  # the missing preset is found before any unit runs
