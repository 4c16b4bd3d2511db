"""The quick start as a new user runs it: its output, files and plots, and a second run."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

pytest.importorskip("stable_baselines3")

import quickstart  # noqa: E402

PLOTS = ("traffic_vms.png", "latency_p95.png", "cost_components.png", "cost_vs_violations.png")


def test_quickstart_output_files_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    """One short quick start (one rollout, 60 evaluation intervals): what it prints names
    what it did and every file it wrote, and the files are there and readable."""
    run, res = tmp_path / "runs" / "quickstart", tmp_path / "results"
    code = quickstart.main(["--timesteps", "1", "--episode-steps", "60", "--seeds", "2",
                            "--run", str(run), "--out", str(res)])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert f"training into {run}" in out
    assert "for 8192 steps (--timesteps 1 rounded up to whole rollouts of 128 steps x 64 " \
        "envs)" in out
    assert "(new best)" in out and (run / "best_model.zip").is_file()  # validated in training
    assert f"evaluating {run / 'best_model.zip'}" in out
    assert "default scenario, trace diurnal (generated), fast simulator: 2 seeds x 60 " \
        "intervals of 10 s" in out
    assert f"ppo = ppo:{run / 'best_model.zip'}" in out
    assert "warning: with 2 seeds the 95 % CIs are very wide" in out
    assert max(len(line) for line in out.splitlines() if "│" in line or "─" in line) <= 100
    wrote = next(line for line in out.splitlines() if line.startswith("wrote "))
    summary = pd.read_csv(res / "summary.csv")
    assert list(summary["policy"]) == [f"ppo:{run / 'best_model.zip'}", "serflow", "libra",
                                       "faas-only", "vm-threshold"]
    for name in PLOTS:
        assert name in wrote
        image = mpimg.imread(res / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400, name
        assert image[..., :3].std() > 0.05, name  # not blank


def test_a_second_quickstart_trains_into_a_fresh_folder_or_overwrites(tmp_path: Path) -> None:
    run = tmp_path / "quickstart"
    assert quickstart.run_folder(run, overwrite=False) == (run, f"training into {run}")
    run.mkdir()
    (run / "run.json").write_text("{}")
    fresh, said = quickstart.run_folder(run, overwrite=False)
    assert fresh == tmp_path / "quickstart-2" and "already holds a run" in said \
        and "--overwrite" in said
    (tmp_path / "quickstart-2").mkdir()
    assert quickstart.run_folder(run, overwrite=False)[0] == tmp_path / "quickstart-3"
    same, said = quickstart.run_folder(run, overwrite=True)
    assert same == run and not run.exists() and "replaced" in said
