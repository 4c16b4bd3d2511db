"""Losing work: an interrupted checkpoint write leaves no truncated file, resume skips
unreadable checkpoints, a failed start leaves no run.json, and bad hyperparameters or a
model of the other algorithm get one-line errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")

import stable_baselines3.common.base_class as sb3_base  # noqa: E402

from agents.policy import make_policy  # noqa: E402
from serflow_env.scenario import load_scenario  # noqa: E402
from serflow_eval.model_files import replaced_atomically  # noqa: E402
from serflow_eval.training import checkpoint_steps, resume, train  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.test_train import tiny_config  # noqa: E402
from train import main as train_main  # noqa: E402


def test_replaced_atomically_keeps_the_old_file_when_the_write_is_interrupted(
        tmp_path: Path) -> None:
    path = tmp_path / "model.zip"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), replaced_atomically(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".zip" and tmp != path
        tmp.write_bytes(b"")  # a write cut short
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]
    with replaced_atomically(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]


def test_ctrl_c_while_a_checkpoint_is_written_then_resume(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Ctrl-C lands inside the model write of the 128-step checkpoint (deterministically: the
    zip writer is replaced by one that writes nothing and raises)."""
    real_save = sb3_base.save_to_zip_file
    interrupted = []

    def save_then_interrupt(path, *args, **kwargs):  # noqa: ANN001, ANN202
        if "rl_model_128_steps" in str(path) and not interrupted:
            interrupted.append(path)
            Path(path).write_bytes(b"")  # the 0-byte file a cut write leaves
            raise KeyboardInterrupt
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(sb3_base, "save_to_zip_file", save_then_interrupt)
    out = tmp_path / "run"
    logs: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config("ppo", out, eval_freq=0), log=logs.append)
    assert interrupted
    # the interrupted rollout (64..128) is discarded: the handler's checkpoint is at 64 steps
    assert checkpoint_steps(out) == [64]
    assert "checkpoint saved to" in logs[-1] and "rl_model_64_steps.zip" in logs[-1]
    # only whole files (the 128-step stats were written before the model, which never was)
    files = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert files == ["rl_model_64_steps.zip", "rl_model_vecnormalize_128_steps.pkl",
                     "rl_model_vecnormalize_64_steps.pkl"], files
    assert zipfile.is_zipfile(out / "checkpoints" / "rl_model_64_steps.zip")
    monkeypatch.setattr(sb3_base, "save_to_zip_file", real_save)

    # a crash of an older version (or a full disk) left unreadable newer checkpoints
    (out / "checkpoints" / "rl_model_192_steps.zip").write_bytes(b"")
    (out / "checkpoints" / "rl_model_128_steps.zip").write_bytes(b"not a zip")
    logs.clear()
    model = resume(out, log=logs.append)
    warnings = [line for line in logs if line.startswith("warning:")]
    assert len(warnings) == 2, logs
    assert "192 steps" in warnings[0] and "rl_model_vecnormalize_192_steps.pkl is missing" \
        in warnings[0]
    assert "128 steps" in warnings[1] and "rl_model_128_steps.zip" in warnings[1]
    assert any("at 64 steps" in line for line in logs), logs
    assert model.num_timesteps == 256
    # every model file written is a whole zip, and no temporary file is left
    for path in out.rglob("*.zip"):
        if path.name not in ("rl_model_128_steps.zip", "rl_model_192_steps.zip"):
            assert zipfile.is_zipfile(path), path
    assert not list(out.rglob(".*.tmp*")), list(out.rglob(".*"))

    # a PPO model loaded as SAC: one line naming the algorithm it holds
    with pytest.raises(ValueError, match="holds a PPO model; use ppo:"):
        make_policy(f"sac:{out / 'final_model.zip'}", load_scenario("default"))


def test_a_failed_start_leaves_nothing_that_blocks_the_corrected_command(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        train_main(["--algo", "ppo", "--out", str(out), "--set", "episode_steps=20",
                    "--num-envs", "2", "--timesteps", "64", "--no-progress-bar",
                    "--hyperparams", "learning_rat:1e-3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "['learning_rat']" in err and "unknown to PPO" in err and "learning_rate" in err
    assert not (out / "run.json").exists()
    with pytest.raises(ValueError, match="PPO rejects them"):
        train(tiny_config("ppo", out, hyperparams={"n_steps": 32, "batch_size": 32,
                                                   "policy_kwargs": {"net_arc": [8]}}),
              log=lambda _: None)
    assert not (out / "run.json").exists()
    # the corrected command runs; 100 steps are rounded up to whole rollouts (64), and said so
    logs: list[str] = []
    model = train(tiny_config("ppo", out, timesteps=100, eval_freq=0, checkpoint_freq=0),
                  log=logs.append)
    assert model.num_timesteps == 128
    assert "128 steps (--timesteps 100 rounded up to whole rollouts of 32 steps x 2 envs)" \
        in logs[0], logs[0]
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tiny_config("ppo", out), log=lambda _: None)
    # the README's way of running a trained agent from Python works on this model (VecNormalize
    # and a stack of 4 frames, which PPO.load(...).predict(obs) on the env's obs cannot take)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("<!-- load-policy-example -->")[1].split("```python")[1]
    example = example.split("```")[0].replace("runs/quickstart/best_model.zip",
                                              str(out / "final_model.zip"))
    assert model.observation_space.shape[0] > 7 + 11 * 3  # frames stacked
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["truncated"].all() and namespace["info"]["cost_usd"].shape == (4,)
