"""What a training run is: :class:`TrainConfig`, saved as ``run.json`` and read by ``train.py``.

Its fields carry their command-line help (``serflow_eval.cli.flag``), so ``train.py``'s options
are derived from it. Kept apart from :mod:`serflow_eval.training` so that reading a config
(and ``train.py --help``) does not load torch and stable-baselines3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.rl.actions import action_map_spec, parse_action_map
from agents.rl.config import ALGOS, check_algo
from serflow_env.assignments import parse_assignments
from serflow_eval.cli import SET_HELP, flag, scenario_overrides


@dataclass
class TrainConfig:
    """Everything a run needs; saved as ``run.json`` so ``--resume`` rebuilds it exactly."""

    algo: str = field(metadata=flag("algorithm (required unless --resume)", choices=ALGOS))
    out: str = field(metadata=flag("run folder, e.g. runs/NAME (required unless --resume)"))
    scenario: str | None = field(default=None, metadata=flag(
        "preset or YAML path (default: the yml's env_kwargs.scenario, else default)"))
    suite: str | None = field(default=None, metadata=flag(
        "train on a suite's train tasks of one preset and select checkpoints on its validation "
        "tasks, SUITE:PRESET, e.g. v1:default (one agent per preset; "
        "serflow_eval/suite_training.py)", metavar="SUITE:PRESET"))
    traces: list[str] = field(default_factory=list, metadata=flag(
        "training trace, PATH or PATH@START:END seconds; repeat for several (one drawn per "
        "episode; default: the scenario's own)", name="--trace", metavar="T", repeat=True))
    trace_scales: list[float] = field(default_factory=lambda: [1.0], metadata=flag(
        "traffic scalings: every trace is also used at each of these loads", metavar="X"))
    random_start: bool = field(default=True, metadata=flag(
        "start episodes at the trace start (default: random training windows)"))
    overrides: dict[str, Any] = field(default_factory=dict, metadata=flag(
        SET_HELP, name="--set", metavar="KEY=VALUE", parse=scenario_overrides))
    timesteps: int | None = field(default=None, metadata=flag(
        "total env steps (default: the yml's n_timesteps; rounded up to whole rollouts)"))
    num_envs: int | None = field(default=None, metadata=flag(
        "parallel envs (default: the yml's n_envs)"))
    seed: int = field(default=0, metadata=flag("seed of the envs and the agent"))
    action_map: dict[str, Any] = field(
        default_factory=lambda: action_map_spec("load"), metadata=flag(
            "the agent's action mode, KIND[:KEY=VALUE...]: load (per-stage utilisation "
            "targets relative to the monitored load, e.g. load:utilisation=0.8:hold_s=300), "
            "delta (changes of the VM targets of at most step VMs per interval, e.g. "
            "delta:step=2) or raw (the env's action); settings and defaults: "
            "agents/rl/actions.py", metavar="MAP", parse=parse_action_map,
            value_type=str))
    slo_target: str | None = field(default=None, metadata=flag(
        "hold the SLO by a Lagrangian multiplier instead of the fixed reward.w_slo: the target "
        "violations per resolved request, e.g. 0.0005, or 'heuristic' (the --heuristic's rate "
        "on the validation traffic); PPO only; see agents/rl/lagrangian.py", metavar="RATE"))
    dual_lr: float = field(default=0.1, metadata=flag(
        "--slo-target: step of the multiplier's dual ascent (log lambda per rollout)"))
    hyperparams: dict[str, Any] = field(default_factory=dict, metadata=flag(
        "override the yml's hyperparameters, rl-zoo3 style", metavar="KEY:VALUE",
        parse=lambda items: parse_assignments(items, "--hyperparams", sep=":")))
    hyperparams_file: str | None = field(default=None, metadata=flag(
        "another rl-zoo3 style yml (default: agents/hyperparams/ALGO.yml)"))
    eval_trace: str | None = field(default=None, metadata=flag(
        "validation trace PATH[@START:END] (default: the first training trace)"))
    eval_steps: int | None = field(default=None, metadata=flag(
        "control steps of the validation episode (default: the whole trace)"))
    eval_freq: int = field(default=50_000, metadata=flag(
        "env steps between validations; 0 disables"))
    eval_episodes: int = field(default=4, metadata=flag("validation episodes (envs)"))
    eval_seed: int = field(default=100, metadata=flag("seed of the validation envs"))
    heuristic: str | None = field(default="serflow", metadata=flag(
        "policy scored beside the agent on the validation trace ('' to skip)",
        parse=lambda text: text or None))
    checkpoint_freq: int = field(default=100_000, metadata=flag(
        "env steps between checkpoints; 0 disables"))
    progress_bar: bool = field(default=True, metadata=flag("hide the progress bar"))
    torch_threads: int = field(default=1, metadata=flag("torch CPU threads"))
    tensorboard: bool = field(default=True, metadata=flag("write no TensorBoard logs"))

    def validate(self) -> None:
        check_algo(self.algo)
        for name in ("timesteps", "num_envs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')}={value}; allowed >= 1")
        for name in ("eval_freq", "checkpoint_freq"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')}={getattr(self, name)}; "
                                 "allowed >= 0 (0 disables)")
        if self.eval_episodes < 1:
            raise ValueError(f"--eval-episodes={self.eval_episodes}; allowed >= 1")
        if self.torch_threads < 1:
            raise ValueError(f"--torch-threads={self.torch_threads}; allowed >= 1")
        if self.seed < 0:
            raise ValueError(f"--seed={self.seed}; allowed >= 0")
        if self.slo_target is not None:
            if self.algo != "ppo":
                raise ValueError(f"--slo-target with --algo {self.algo}: PPO only (a replay "
                                 "buffer keeps rewards weighted by old multipliers)")
            target = fixed_slo_target(self.slo_target)
            if target is None and not self.heuristic:
                raise ValueError("--slo-target heuristic needs a --heuristic to measure")
        if not 0 < self.dual_lr <= 10:
            raise ValueError(f"--dual-lr={self.dual_lr}; allowed (0, 10]")


def fixed_slo_target(text: str | float) -> float | None:
    """``--slo-target`` as a rate in (0, 1); None for ``heuristic`` (measured when training
    starts)."""
    if str(text).strip().lower() == "heuristic":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--slo-target={text!r}; allowed a rate in (0, 1) (violations per "
                         "resolved request) or 'heuristic'") from None
    if not 0 < value < 1:
        raise ValueError(f"--slo-target={text!r}; allowed a rate in (0, 1) (violations per "
                         "resolved request) or 'heuristic'")
    return value
