"""Ray Tune training sweeps (serflow_eval.tune): the sweep file, a tiny local sweep, restore."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT

pytest.importorskip("ray")

from serflow_eval.tune import load_sweep, run_sweep, trial_config  # noqa: E402

TINY = {
    "name": "tiny",
    "metric": "agent_return",
    "train": {"algo": "ppo", "timesteps": 256, "num_envs": 2,
              "hyperparams": {"n_steps": 64, "batch_size": 64}, "eval_freq": 128,
              "eval_steps": 10, "eval_episodes": 1, "heuristic": "", "checkpoint_freq": 128},
    "search": {"seed": {"grid": [0, 1]}, "hyperparams.learning_rate": {"choice": [3e-4]}},
}


def write_sweep(tmp_path: Path, **changes) -> Path:
    spec = {**TINY, "storage": str(tmp_path / "sweeps"), **changes}
    path = tmp_path / "sweep.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sweep_file_errors_name_the_field(tmp_path):
    for changes, needle in (({"train": {"out": "x"}}, "train.out"),
                            ({"search": {"learning_rate": {"grid": [1]}}}, "search.learning_rate"),
                            ({"search": {"seed": [0, 1]}}, "search.seed"),
                            ({"mode": "best"}, "mode='best'"),
                            ({"train": {"eval_freq": 0}}, "eval_freq=0"),
                            ({"trials": 3}, "unknown keys ['trials']")):
        with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("(", r"\(")):
            load_sweep(write_sweep(tmp_path, **changes))


def test_trial_config_puts_searched_keys_into_the_mappings(tmp_path):
    spec = load_sweep(write_sweep(tmp_path))
    cfg = trial_config({**spec.train, "overrides": {"faas.keep_alive_s": 60},
                        "action_map": "load:utilisation=0.8"},
                       {"seed": 3, "hyperparams.learning_rate": 1e-3,
                        "overrides.reward.w_slo": 20}, tmp_path / "run", cpus=2)
    assert cfg.seed == 3 and cfg.torch_threads == 2 and cfg.out == str(tmp_path / "run")
    assert cfg.hyperparams == {"n_steps": 64, "batch_size": 64, "learning_rate": 1e-3}
    assert cfg.overrides == {"faas.keep_alive_s": 60, "reward.w_slo": 20}
    assert cfg.action_map["kind"] == "load" and cfg.action_map["utilisation"] == 0.8
    assert not cfg.progress_bar


# 17 s (Ray Tune's start-up per trial): -m slow; the config and CLI tests stay in the default run
@pytest.mark.slow
def test_tiny_sweep_reports_every_validation_keeps_runs_and_restores(ray_local, tmp_path):
    spec = load_sweep(write_sweep(tmp_path))
    table = run_sweep(spec)
    assert sorted(table["seed"]) == [0, 1]
    assert (table["timesteps"] == 256).all() and (table["error"].fillna("") == "").all()
    for run in table["run"]:
        run = Path(run)
        for name in ("final_model.zip", "vecnormalize.pkl", "best_model.zip", "run.json"):
            assert (run / name).is_file(), run / name
        assert any((run / "tb").rglob("events.out.tfevents.*"))
        evaluations = pd.read_csv(run / "evaluations.csv")
        assert list(evaluations["timesteps"]) == [128, 256]  # each one reported
        best = evaluations["agent_return"].max()
        row = table[table["run"] == str(run)].iloc[0]
        assert row["best_agent_return"] == pytest.approx(best)
    assert pd.read_csv(spec.folder / "results.csv").shape[0] == 2
    with pytest.raises(FileExistsError, match="--resume"):
        run_sweep(spec)
    restored = run_sweep(spec, resume_sweep=True)  # nothing left to run: the same table
    pd.testing.assert_frame_equal(restored.drop(columns="error"), table.drop(columns="error"))


@pytest.mark.slow
def test_interrupted_sweep_resumes_from_the_trial_checkpoints(tmp_path):
    train = {**TINY["train"], "timesteps": 4096, "eval_freq": 1024, "checkpoint_freq": 512}
    path = write_sweep(tmp_path, train=train)
    spec = load_sweep(path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "serflow_eval.tune", str(path), "--num-cpus", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(spec.folder.glob("*/run/checkpoints/rl_model_1024_steps.zip")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) in (0, -signal.SIGINT, 130)
    first = {p.parent.parent.name: len(pd.read_csv(p.parent.parent / "evaluations.csv"))
             for p in spec.folder.glob("*/run/checkpoints/rl_model_1024_steps.zip")}
    assert first and all(n < 4 for n in first.values())  # stopped part way
    resumed = subprocess.run(cmd[:4] + ["--resume"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    table = pd.read_csv(spec.folder / "results.csv")
    assert (table["timesteps"] == 4096).all()
    for run in table["run"]:
        steps = list(pd.read_csv(Path(run) / "evaluations.csv")["timesteps"])
        assert steps == sorted(steps) and steps[-1] == 4096 and steps[0] == 1024
