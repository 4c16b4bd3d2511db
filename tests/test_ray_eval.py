"""evaluate.py --ray: (policy, seed) units as Ray tasks give the serial run's results exactly."""

from __future__ import annotations

import pandas as pd
import pytest

import evaluate
from serflow_env.scenario import load_scenario
from serflow_eval.runner import run_policies

pytest.importorskip("ray")


# 16 s with Ray's start-up: -m slow; Ray suite units against the serial run stay in the default
# run (tests/test_suite_eval.py)
@pytest.mark.slow
def test_ray_units_equal_the_serial_run_row_for_row(ray_local, tmp_path):
    from serflow_eval.ray_eval import ray_run_policies
    from serflow_eval.training import TrainConfig, train

    # a (barely) trained PPO agent too: torch, VecNormalize stats and a model file in the tasks
    train(TrainConfig(algo="ppo", out=str(tmp_path / "ppo"), timesteps=128, num_envs=2,
                      hyperparams={"n_steps": 64, "batch_size": 64}, eval_freq=0,
                      checkpoint_freq=0, progress_bar=False, tensorboard=False),
          log=lambda _: None)
    sc = load_scenario("branchynet-resnet", episode_steps=12)
    specs = ["serflow", "faas-only", "vm-threshold", f"ppo:{tmp_path / 'ppo' / 'final_model.zip'}"]
    seeds = [0, 3]
    serial = run_policies(specs, sc, seeds, 12)
    calls = []
    parallel = ray_run_policies(specs, sc, seeds, 12, on_step=lambda: calls.append(1))
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    assert len(calls) == len(specs) * len(seeds) * 12  # the progress bar sees every step


def test_evaluate_cli_with_ray_writes_the_serial_tables(ray_local, tmp_path):
    args = ["--policies", "serflow,libra", "--seeds", "2", "--episode-steps", "8",
            "--no-progress"]
    assert evaluate.main(args + ["--out", str(tmp_path / "serial")]) == 0
    assert evaluate.main(args + ["--ray", "--out", str(tmp_path / "ray")]) == 0
    for name in ("per_seed.csv", "summary.csv", "comparisons.csv", "timeseries.csv"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
    sweep = ["--sweep", "--sweep-exit-probs", "0.2", "--sweep-scales", "0.5,2"]
    assert evaluate.main(args + sweep + ["--out", str(tmp_path / "s1")]) == 0
    assert evaluate.main(args + sweep + ["--ray", "--out", str(tmp_path / "s2")]) == 0
    assert (tmp_path / "s1" / "sweep.csv").read_bytes() == \
        (tmp_path / "s2" / "sweep.csv").read_bytes()


def test_ray_rejects_a_bad_policy_before_running_anything(ray_local):
    from serflow_eval.ray_eval import ray_run_policies

    with pytest.raises(ValueError, match="unknown policy"):
        ray_run_policies(["serflow", "nope"], load_scenario("default"), [0], 2)
    with pytest.raises(SystemExit):
        evaluate.main(["--address", "auto"])
