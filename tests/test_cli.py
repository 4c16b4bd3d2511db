"""One way to spell and parse the command lines: KEY=VALUE, policy lists, train.py's options."""

from __future__ import annotations

import dataclasses

import pytest

from agents.policy import split_policy_specs
from serflow_env.assignments import parse_assignments, parse_value

pytest.importorskip("stable_baselines3")

from evaluate import parse_args as evaluate_args  # noqa: E402
from serflow_eval.train_config import TrainConfig  # noqa: E402
from train import build_parser, config_from_args  # noqa: E402


def test_assignments_are_typed_yaml_and_name_their_flag() -> None:
    assert parse_assignments(["a.b=30", "c=0.5", "d=true", "e=[1, 2]", "f=x/y.txt", "g=3e-4",
                              "h={k: 1}", "a.b=31"], "--set") == {
        "a.b": 31, "c": 0.5, "d": True, "e": [1, 2], "f": "x/y.txt", "g": 3e-4, "h": {"k": 1}}
    assert parse_assignments(["n_steps:256", "lr:lin_1e-3"], "--hyperparams", sep=":") == {
        "n_steps": 256, "lr": "lin_1e-3"}
    assert parse_value("") is None and parse_value("{oops") == "{oops"  # not YAML: as given
    for bad in (["novalue"], ["=3"]):
        with pytest.raises(ValueError, match=r"--set: expected KEY=VALUE, got"):
            parse_assignments(bad, "--set")


def test_policy_lists_split_on_spaces_and_commas_but_keep_a_spec_s_own_commas() -> None:
    assert split_policy_specs(["serflow,libra", "fixed:4,0.3", "switch:3:0,1:4/3/2,0.2,vm-peak",
                               "ppo:runs/a.zip", "serflow:utilisation=0.6,,faas-only"]) == [
        "serflow", "libra", "fixed:4,0.3", "switch:3:0,1:4/3/2,0.2", "vm-peak",
        "ppo:runs/a.zip", "serflow:utilisation=0.6", "faas-only"]
    args = evaluate_args(["--policies", "serflow,libra", "--policies", "fixed:4,0.3",
                          "--set", "faas.keep_alive_s=60", "reward.w_slo=20",
                          "--set", "episode_steps=5"])
    assert args.policy_list == ["serflow", "libra", "fixed:4,0.3"]
    assert args.overrides == {"faas.keep_alive_s": 60, "reward.w_slo": 20, "episode_steps": 5}
    with pytest.raises(SystemExit):
        evaluate_args(["--policies", "serflow", "serflow"])


def test_train_cli_is_derived_from_train_config() -> None:
    """Every TrainConfig field has an option; options not given keep the dataclass default."""
    parser = build_parser()
    dests = {action.dest for action in parser._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= dests
    plain = config_from_args(parser.parse_args(["--algo", "ppo", "--out", "runs/x"]))
    assert plain == TrainConfig(algo="ppo", out="runs/x")
    cfg = config_from_args(parser.parse_args([
        "--algo", "sac", "--out", "runs/y", "--trace", "a.txt", "--trace", "b.txt@0:600",
        "--trace-scales", "0.8", "1.25", "--no-random-start", "--set", "reward.w_slo=5",
        "--action-map", "load:utilisation=0.8:hold_s=120", "--hyperparams", "gamma:0.9",
        "--heuristic", "", "--no-progress-bar", "--eval-seed", "7"]))
    assert cfg.traces == ["a.txt", "b.txt@0:600"] and cfg.trace_scales == [0.8, 1.25]
    assert not cfg.random_start and not cfg.progress_bar and cfg.tensorboard
    assert cfg.overrides == {"reward.w_slo": 5} and cfg.hyperparams == {"gamma": 0.9}
    assert cfg.action_map["kind"] == "load" and cfg.action_map["utilisation"] == 0.8
    assert cfg.action_map["hold_s"] == 120 and cfg.heuristic is None and cfg.eval_seed == 7
    raw = config_from_args(parser.parse_args(["--algo", "ppo", "--out", "r", "--action-map",
                                              "raw"]))
    assert raw.action_map == {"kind": "raw"}
    with pytest.raises(ValueError, match=r"--action-map='fast'; allowed"):
        config_from_args(parser.parse_args(["--algo", "ppo", "--out", "r", "--action-map",
                                            "fast"]))


def test_evaluate_help_loads_neither_torch_nor_matplotlib() -> None:
    """evaluate.py --help stays fast: the heavy modules are imported after parsing."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys\nimport evaluate\ntry:\n    evaluate.parse_args(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False False"
