"""Train, checkpoint and resume PPO/SAC agents on the native vector env (SB3 adapter).

A run folder ``runs/NAME`` holds: ``run.json`` (the full configuration, for resuming and for
the policy loader), ``final_model.zip`` + ``vecnormalize.pkl``, ``best_model.zip`` +
``best_model_vecnormalize.pkl`` (best on the validation trace), ``checkpoints/`` (model,
VecNormalize stats and, for SAC, the replay buffer every ``checkpoint_freq`` steps and on
Ctrl-C), ``tb/`` (TensorBoard), ``training.csv`` and ``evaluations.csv`` (learning curves).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.rl.actions import (
    ActionMap,
    ActionMapVecWrapper,
    action_map_spec,
    make_action_map,
    parse_action_map,
)
from agents.rl.callbacks import RolloutMarkCallback
from agents.rl.config import (
    ALGOS,
    check_algo,
    load_hyperparams,
    scaled_traces,
    split_hyperparams,
)
from agents.rl.policy import RUN_FILE, algo_class
from serflow_env import ENV_ID, make_sb3_vec_env, reward_reference_rate
from serflow_env.assignments import parse_assignments
from serflow_env.latency import cdf_grid_s
from serflow_env.scenario import Scenario, load_scenario
from serflow_eval.callbacks import HeuristicEvalCallback, ServingMetricsCallback
from serflow_eval.cli import SET_HELP, flag, scenario_overrides
from serflow_eval.scoring import eval_scenario

CHECKPOINT_PREFIX = "rl_model"


@dataclass
class TrainConfig:
    """Everything a run needs; saved as ``run.json`` so ``--resume`` rebuilds it exactly."""

    algo: str = field(metadata=flag("algorithm (required unless --resume)", choices=ALGOS))
    out: str = field(metadata=flag("run folder, e.g. runs/NAME (required unless --resume)"))
    scenario: str | None = field(default=None, metadata=flag(
        "preset or YAML path (default: the yml's env_kwargs.scenario, else default)"))
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
            "the agent's action parameterisation, KIND[:KEY=VALUE...]: load (per-stage "
            "utilisation targets relative to the monitored load, e.g. "
            "load:utilisation=0.8:hold_s=300) or raw (the env's action); settings and "
            "defaults: agents/rl/actions.py", metavar="MAP", parse=parse_action_map,
            value_type=str))
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


@dataclass
class Setup:
    """What a config resolves to: hyperparameters, scenarios and sizes."""

    algo_kwargs: dict[str, Any]
    normalize: dict[str, Any]
    frame_stack: int
    policy: str
    timesteps: int
    num_envs: int
    train_scenario: Scenario
    eval_scenario: Scenario
    reference_rate: float
    scenario_name: str
    base_overrides: dict[str, Any]
    action_map: ActionMap


def resolve(cfg: TrainConfig) -> Setup:
    """Hyperparameters (yml + overrides) and the training and validation scenarios."""
    cfg.validate()
    hp = load_hyperparams(cfg.algo, cfg.hyperparams_file)
    hp.update(cfg.hyperparams)
    zoo, algo_kwargs = split_hyperparams(hp)
    env_kwargs = dict(zoo.get("env_kwargs") or {})
    unknown = sorted(set(env_kwargs) - {"scenario", "overrides"})
    if unknown:
        raise ValueError(f"hyperparameters env_kwargs: unknown keys {unknown}; "
                         "allowed ['scenario', 'overrides']")
    scenario_name = cfg.scenario or env_kwargs.get("scenario") or "default"
    base_overrides = dict(env_kwargs.get("overrides") or {})
    base_overrides.update(cfg.overrides)
    train_overrides = dict(base_overrides)
    if cfg.traces:
        train_overrides["arrivals.trace"] = scaled_traces(cfg.traces, cfg.trace_scales)
    train_overrides["arrivals.random_start"] = cfg.random_start
    train_scenario = load_scenario(scenario_name, **train_overrides)
    reference_rate = reward_reference_rate(train_scenario)
    # validation: the same reward normalisation as training, so returns are comparable
    eval_overrides = {k: v for k, v in base_overrides.items() if k != "arrivals.trace"}
    eval_overrides.setdefault("reward.reference_rate", reference_rate)
    trace = cfg.eval_trace
    if trace is None:
        first = train_scenario.arrivals.trace
        first = first[0] if isinstance(first, list) else first
        eval_overrides["arrivals.trace"] = first
    val = eval_scenario(scenario_name, trace, eval_overrides, cfg.eval_steps)
    timesteps = cfg.timesteps or int(float(zoo.get("n_timesteps", 0)))
    if timesteps < 1:
        raise ValueError("--timesteps: not given and the yml has no n_timesteps")
    frame_stack = zoo.get("frame_stack", 1)
    if isinstance(frame_stack, bool) or not isinstance(frame_stack, int) \
            or not 1 <= frame_stack <= 64:
        raise ValueError(f"hyperparameter frame_stack={frame_stack!r}; allowed 1..64")
    return Setup(algo_kwargs=algo_kwargs, normalize=zoo["normalize"], frame_stack=frame_stack,
                 policy=zoo.get("policy", "MlpPolicy"), timesteps=timesteps,
                 num_envs=int(cfg.num_envs or zoo.get("n_envs", 8)),
                 train_scenario=train_scenario, eval_scenario=val,
                 reference_rate=reference_rate, scenario_name=scenario_name,
                 base_overrides=base_overrides,
                 action_map=make_action_map(cfg.action_map, train_scenario, reference_rate))


def make_training_env(setup: Setup, seed: int, stats_path: Path | None = None) -> Any:
    """SB3 VecEnv: native vector env -> VecMonitor (raw returns) -> action map -> frame stack
    -> VecNormalize."""
    from stable_baselines3.common.vec_env import VecFrameStack, VecMonitor, VecNormalize

    env = VecMonitor(make_sb3_vec_env(setup.train_scenario, num_envs=setup.num_envs, seed=seed))
    if setup.action_map.kind != "raw":
        env = ActionMapVecWrapper(env, setup.action_map)
    if setup.frame_stack > 1:
        env = VecFrameStack(env, setup.frame_stack)
    if stats_path is not None:
        env = VecNormalize.load(str(stats_path), env)
        env.training = True
    elif setup.normalize:
        env = VecNormalize(env, **setup.normalize)
    return env


def _callbacks(cfg: TrainConfig, setup: Setup, out: Path, log: Any) -> tuple[list, Any]:
    from stable_baselines3.common.callbacks import CheckpointCallback

    mark = RolloutMarkCallback()
    min_steps = 1 if cfg.algo == "ppo" else setup.train_scenario.episode_steps * setup.num_envs
    train = setup.train_scenario
    grid = cdf_grid_s(train.slo_deadline_s, train.latency_span * train.slo_deadline_s)
    callbacks: list = [mark, ServingMetricsCallback(train.num_stages, grid,
                                                    min_steps=min_steps,
                                                    csv_path=out / "training.csv")]
    if cfg.checkpoint_freq:
        callbacks.append(CheckpointCallback(
            save_freq=max(cfg.checkpoint_freq // setup.num_envs, 1),
            save_path=str(out / "checkpoints"), name_prefix=CHECKPOINT_PREFIX,
            save_replay_buffer=True, save_vecnormalize=True))
    if cfg.eval_freq:
        callbacks.append(HeuristicEvalCallback(
            setup.eval_scenario, out, setup.reference_rate, setup.action_map.spec(),
            cfg.eval_freq,
            episodes=cfg.eval_episodes, frame_stack=setup.frame_stack, seed=cfg.eval_seed,
            heuristic=cfg.heuristic, log=log))
    return callbacks, mark


def checkpoint_paths(out: Path, steps: int) -> dict[str, Path]:
    """File names CheckpointCallback uses for ``steps``."""
    folder = out / "checkpoints"
    return {"model": folder / f"{CHECKPOINT_PREFIX}_{steps}_steps.zip",
            "vecnormalize": folder / f"{CHECKPOINT_PREFIX}_vecnormalize_{steps}_steps.pkl",
            "replay_buffer": folder / f"{CHECKPOINT_PREFIX}_replay_buffer_{steps}_steps.pkl"}


def latest_checkpoint(out: Path) -> int | None:
    """Step count of the newest checkpoint in ``out/checkpoints``, or None."""
    pattern = re.compile(rf"{CHECKPOINT_PREFIX}_(\d+)_steps\.zip")
    steps = [int(m.group(1)) for p in (out / "checkpoints").glob("*.zip")
             if (m := pattern.fullmatch(p.name))]
    return max(steps) if steps else None


def save_checkpoint(model: Any, out: Path, steps: int) -> Path:
    """Model, VecNormalize stats and (off-policy) replay buffer under CheckpointCallback names."""
    paths = checkpoint_paths(out, steps)
    paths["model"].parent.mkdir(parents=True, exist_ok=True)
    model.num_timesteps = steps
    model.save(paths["model"])
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.save(str(paths["vecnormalize"]))
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        model.save_replay_buffer(paths["replay_buffer"])
    return paths["model"]


def _write_run_file(cfg: TrainConfig, setup: Setup, out: Path) -> None:
    import stable_baselines3

    info = {
        "config": dataclasses.asdict(cfg),
        "algo": cfg.algo,
        "env_id": ENV_ID,
        "scenario": setup.scenario_name,
        "scenario_overrides": setup.base_overrides,
        "reference_rate": setup.reference_rate,
        "action_map": setup.action_map.spec(),
        "normalize": bool(setup.normalize),
        "frame_stack": setup.frame_stack,
        "num_envs": setup.num_envs,
        "timesteps": setup.timesteps,
        "train_traces": [str(getattr(t, "name", t)) for t in
                         (setup.train_scenario.arrivals.trace
                          if isinstance(setup.train_scenario.arrivals.trace, list)
                          else [setup.train_scenario.arrivals.trace])],
        "stable_baselines3": stable_baselines3.__version__,
    }
    with open(out / RUN_FILE, "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2, default=str)


def _learn(model: Any, cfg: TrainConfig, setup: Setup, out: Path, reset: bool,
           log: Any, extra: list | None = None) -> Any:
    """model.learn up to ``setup.timesteps`` in total; Ctrl-C saves a checkpoint."""
    callbacks, mark = _callbacks(cfg, setup, out, log)
    callbacks += list(extra or [])
    remaining = setup.timesteps - (0 if reset else model.num_timesteps)
    try:
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=callbacks,
                        reset_num_timesteps=reset, tb_log_name=cfg.algo,
                        progress_bar=cfg.progress_bar)
    except KeyboardInterrupt:
        steps = mark.consistent_steps()
        path = save_checkpoint(model, out, steps)
        log(f"interrupted at {steps} steps: checkpoint saved to {path}; continue with "
            f"`python train.py --resume {out}`")
        raise
    model.save(out / "final_model.zip")
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.save(str(out / "vecnormalize.pkl"))
    log(f"done: {model.num_timesteps} steps; models in {out}")
    return model


def train(cfg: TrainConfig, log: Any = print, callbacks: list | None = None) -> Any:
    """Train a new agent into ``cfg.out`` (which must not hold a run yet); ``callbacks`` are
    extra SB3 callbacks."""
    import torch

    torch.set_num_threads(cfg.torch_threads)
    setup = resolve(cfg)
    out = Path(cfg.out)
    if (out / RUN_FILE).exists():
        raise FileExistsError(f"--out {out}: already holds a run; use --resume {out} to "
                              "continue it, or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    _write_run_file(cfg, setup, out)
    env = make_training_env(setup, seed=cfg.seed)
    kwargs = dict(setup.algo_kwargs)
    model = algo_class(cfg.algo)(
        setup.policy, env, seed=cfg.seed, device="cpu", verbose=0,
        tensorboard_log=str(out / "tb") if cfg.tensorboard else None, **kwargs)
    log(f"training {cfg.algo} on {setup.scenario_name} ({setup.num_envs} envs, "
        f"{setup.timesteps} steps, reference rate {setup.reference_rate:.1f} req/s) -> {out}")
    return _learn(model, cfg, setup, out, reset=True, log=log, extra=callbacks)


def load_config(out: Path) -> TrainConfig:
    path = Path(out) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--resume {out}: no {RUN_FILE} there (not a training run)")
    with open(path, encoding="utf-8") as fh:
        return TrainConfig(**json.load(fh)["config"])


def resume(out: str | Path, timesteps: int | None = None, progress_bar: bool | None = None,
           log: Any = print, callbacks: list | None = None) -> Any:
    """Continue the run in ``out`` from its newest checkpoint up to its total step count
    (or ``timesteps`` if given), replay buffer and VecNormalize stats included."""
    import torch

    out = Path(out)
    cfg = load_config(out)
    if timesteps is not None:
        cfg.timesteps = timesteps
    if progress_bar is not None:
        cfg.progress_bar = progress_bar
    torch.set_num_threads(cfg.torch_threads)
    setup = resolve(cfg)
    steps = latest_checkpoint(out)
    if steps is None:
        raise FileNotFoundError(f"--resume {out}: no checkpoint in {out / 'checkpoints'}")
    paths = checkpoint_paths(out, steps)
    stats = paths["vecnormalize"] if paths["vecnormalize"].is_file() else None
    # new episodes with a fresh, reproducible seed (the env state is not checkpointed)
    env = make_training_env(setup, seed=cfg.seed + steps, stats_path=stats)
    model = algo_class(cfg.algo).load(paths["model"], env=env, device="cpu",
                                      tensorboard_log=str(out / "tb") if cfg.tensorboard
                                      else None)
    if cfg.algo == "sac":
        if not paths["replay_buffer"].is_file():
            raise FileNotFoundError(f"--resume {out}: replay buffer {paths['replay_buffer']} "
                                    "is missing")
        model.load_replay_buffer(paths["replay_buffer"])
    log(f"resuming {cfg.algo} from {paths['model']} at {model.num_timesteps} steps "
        f"(target {setup.timesteps})")
    _write_run_file(cfg, setup, out)
    return _learn(model, cfg, setup, out, reset=False, log=log, extra=callbacks)


def parameters_vector(model: Any) -> np.ndarray:
    """All policy parameters as one vector (for reproducibility checks)."""
    return np.concatenate([p.detach().cpu().numpy().ravel()
                           for p in model.policy.parameters()])
