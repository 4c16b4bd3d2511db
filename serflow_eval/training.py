"""Train, checkpoint and resume PPO/SAC agents on the native vector env (SB3 adapter).

A run folder ``runs/NAME`` holds: ``run.json`` (the full configuration, for resuming and for
the policy loader), ``final_model.zip`` + ``vecnormalize.pkl``, ``best_model.zip`` +
``best_model_vecnormalize.pkl`` (best on the validation trace), ``checkpoints/`` (model,
VecNormalize stats and, for SAC, the replay buffer every ``checkpoint_freq`` steps and on
Ctrl-C), ``tb/`` (TensorBoard), ``training.csv`` and ``evaluations.csv`` (learning curves).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import CheckpointCallback

from agents.policy import known_policies, make_policy
from agents.rl.actions import (
    ActionMap,
    make_action_map,
)
from agents.rl.callbacks import RolloutMarkCallback
from agents.rl.config import (
    ON_POLICY,
    ZOO_KEYS,
    load_hyperparams,
    scaled_traces,
    split_hyperparams,
)
from agents.rl.context import ContextVecEnv
from agents.rl.lagrangian import DualAscentCallback, LagrangianReward
from agents.rl.policy import RUN_FILE, algo_class
from agents.rl.vec_actions import ActionMapVecWrapper
from serflow_env import ENV_ID, make_sb3_vec_env, reward_reference_rate
from serflow_env.context import ContextSpec
from serflow_env.latency import scenario_cdf_grid_s
from serflow_env.normalisation import reward_scales
from serflow_env.scenario import Scenario, load_scenario
from serflow_eval.callbacks import HeuristicEvalCallback, ServingMetricsCallback, append_csv
from serflow_eval.model_files import replaced_atomically, save_model
from serflow_eval.scoring import ServingMetrics, eval_scenario, run_policy
from serflow_eval.train_config import TrainConfig, fixed_slo_target

CHECKPOINT_PREFIX = "rl_model"


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
    lagrangian: bool = False  # --slo-target: the reward's SLO weight is a learned multiplier
    context: ContextSpec = ContextSpec()  # observation features from the trace clock
    suite: Any = None  # --suite: the preset's tasks (serflow_eval.suite_training.SuitePlan)


def resolve(cfg: TrainConfig) -> Setup:
    """Hyperparameters (yml + overrides) and the training and validation scenarios."""
    cfg.validate()
    if cfg.suite:  # the same hyperparameters and sizes, the suite's tasks as scenarios
        from serflow_eval.suite_training import resolve_suite

        return resolve_suite(cfg, resolve(dataclasses.replace(cfg, suite=None)))
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
                 action_map=make_action_map(cfg.action_map, train_scenario, reference_rate),
                 lagrangian=cfg.slo_target is not None,
                 context=ContextSpec.from_value(zoo.get("context")))


def make_training_env(setup: Setup, seed: int, stats_path: Path | None = None) -> Any:
    """SB3 VecEnv: native vector env -> [context features] -> VecMonitor (the env's own
    returns) -> [Lagrangian reward] -> action map -> frame stack -> VecNormalize."""
    from stable_baselines3.common.vec_env import VecFrameStack, VecMonitor, VecNormalize

    env = (setup.suite.vec_env(seed) if setup.suite is not None else
           make_sb3_vec_env(setup.train_scenario, num_envs=setup.num_envs, seed=seed))
    if setup.context.enabled:
        env = ContextVecEnv(env, setup.context)
    env = VecMonitor(env)
    if setup.lagrangian:  # the multiplier starts at w_slo; DualAscentCallback moves it
        env = LagrangianReward(env, request_scale=reward_scales(setup.train_scenario)[1],
                               lam=setup.train_scenario.reward.w_slo)
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
    mark = RolloutMarkCallback()
    min_steps = 1 if cfg.algo in ON_POLICY else setup.train_scenario.episode_steps * setup.num_envs
    train = setup.train_scenario
    grid = scenario_cdf_grid_s(train)
    callbacks: list = [mark, ServingMetricsCallback(train.num_stages, grid,
                                                    min_steps=min_steps,
                                                    csv_path=out / "training.csv")]
    if cfg.checkpoint_freq:
        callbacks.append(AtomicCheckpointCallback(
            save_freq=max(cfg.checkpoint_freq // setup.num_envs, 1),
            save_path=str(out / "checkpoints"), name_prefix=CHECKPOINT_PREFIX,
            save_replay_buffer=True, save_vecnormalize=True))
    if setup.suite is not None:  # validation on the preset's validation tasks
        from serflow_eval.suite_training import suite_callbacks

        return callbacks + suite_callbacks(cfg, setup, out, log), mark
    heuristic = heuristic_metrics(cfg, setup, log) if cfg.heuristic and (
        cfg.eval_freq or cfg.slo_target is not None) else None
    if cfg.eval_freq:
        callbacks.append(HeuristicEvalCallback(
            setup.eval_scenario, out, setup.reference_rate, setup.action_map.spec(),
            cfg.eval_freq,
            episodes=cfg.eval_episodes, frame_stack=setup.frame_stack, seed=cfg.eval_seed,
            context=setup.context.to_dict() if setup.context.enabled else None,
            heuristic=cfg.heuristic if heuristic is not None else None, log=log,
            heuristic_metrics=heuristic))
    if cfg.slo_target is not None:
        target = fixed_slo_target(cfg.slo_target)
        if target is None:
            target = heuristic_slo_target(cfg, heuristic)
        log(f"[dual] SLO target {target:.3g} violations per resolved request; lambda starts "
            f"at w_slo = {setup.train_scenario.reward.w_slo:g}")
        callbacks.append(DualAscentCallback(
            target, lam=setup.train_scenario.reward.w_slo, lr=cfg.dual_lr,
            on_update=lambda row: append_csv(out / "dual.csv", row)))
    return callbacks, mark


def heuristic_metrics(cfg: TrainConfig, setup: Setup, log: Any) -> ServingMetrics | None:
    """The ``--heuristic`` on the validation scenario (episodes and seed of the validation),
    scored once per run; None if it is not a registered policy."""
    name = cfg.heuristic
    if name not in known_policies():
        log(f"[eval] heuristic {name!r} is not registered (known: {known_policies()}); "
            "evaluating the agent alone, best model by return")
        return None
    metrics = run_policy(make_policy(name, setup.eval_scenario), setup.eval_scenario,
                         cfg.eval_episodes, cfg.eval_seed, name=name)
    log(f"[eval] heuristic {name}: cost/1k {metrics.cost_per_1k_requests:.5f} $, "
        f"violations {100 * metrics.violation_rate:.3f} %, p95 {metrics.p95_latency_s:.3f} s, "
        f"return {metrics.episode_return:.1f}")
    return metrics


def heuristic_slo_target(cfg: TrainConfig, heuristic: ServingMetrics | None) -> float:
    """``--slo-target heuristic``: the heuristic's violations per resolved request on the
    validation traffic."""
    if heuristic is None:
        raise ValueError(f"--slo-target heuristic: --heuristic {cfg.heuristic!r} is not a "
                         f"registered policy; known: {known_policies()}")
    rate = heuristic.violations_per_resolved
    if not rate > 0:
        raise ValueError(f"--slo-target heuristic: {heuristic.policy} had no SLO violations "
                         "on the validation traffic; give the target as a rate")
    return rate


def checkpoint_paths(out: Path, steps: int) -> dict[str, Path]:
    """File names CheckpointCallback uses for ``steps``."""
    folder = out / "checkpoints"
    return {"model": folder / f"{CHECKPOINT_PREFIX}_{steps}_steps.zip",
            "vecnormalize": folder / f"{CHECKPOINT_PREFIX}_vecnormalize_{steps}_steps.pkl",
            "replay_buffer": folder / f"{CHECKPOINT_PREFIX}_replay_buffer_{steps}_steps.pkl"}


def checkpoint_steps(out: Path) -> list[int]:
    """Step counts of the checkpoints in ``out/checkpoints``, ascending."""
    pattern = re.compile(rf"{CHECKPOINT_PREFIX}_(\d+)_steps\.zip")
    return sorted(int(m.group(1)) for p in (out / "checkpoints").glob("*.zip")
                  if (m := pattern.fullmatch(p.name)))


def latest_checkpoint(out: Path) -> int | None:
    """Step count of the newest checkpoint in ``out/checkpoints``, or None."""
    steps = checkpoint_steps(out)
    return steps[-1] if steps else None


def save_checkpoint(model: Any, out: Path, steps: int) -> Path:
    """Model, VecNormalize stats and (off-policy) replay buffer under CheckpointCallback names,
    each file atomically and the model last (see :mod:`serflow_eval.model_files`)."""
    paths = checkpoint_paths(out, steps)
    model.num_timesteps = steps
    return save_model(model, paths["model"], paths["vecnormalize"], paths["replay_buffer"])


class AtomicCheckpointCallback(CheckpointCallback):
    """SB3's CheckpointCallback (same schedule and file names) writing through
    :func:`save_checkpoint`, so Ctrl-C during a save never leaves a truncated file."""

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            path = save_checkpoint(self.model, Path(self.save_path).parent, self.num_timesteps)
            if self.verbose >= 2:
                print(f"Saving model checkpoint to {path}")
        return True


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
        "routing_mode": setup.train_scenario.routing.mode,
        "normalize": bool(setup.normalize),
        "frame_stack": setup.frame_stack,
        "context": setup.context.to_dict() if setup.context.enabled else None,
        "num_envs": setup.num_envs,
        "timesteps": setup.timesteps,
        "train_traces": [str(getattr(t, "name", t)) for t in
                         (setup.train_scenario.arrivals.trace
                          if isinstance(setup.train_scenario.arrivals.trace, list)
                          else [setup.train_scenario.arrivals.trace])],
        "stable_baselines3": stable_baselines3.__version__,
    }
    if setup.suite is not None:
        info["suite"] = setup.suite.describe()
        info["train_traces"] = [t.task.trace.label for t in setup.suite.train]
    with replaced_atomically(out / RUN_FILE) as tmp:
        tmp.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")


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
    save_model(model, out / "final_model.zip", out / "vecnormalize.pkl")
    log(f"done: {model.num_timesteps} steps; models in {out}")
    return model


def rounded_timesteps(algo: str, algo_kwargs: dict[str, Any], timesteps: int,
                      num_envs: int) -> int:
    """The env steps SB3 actually trains for ``timesteps``: whole rollouts of
    ``n_steps x num_envs`` (PPO) or whole vector steps of ``num_envs`` (SAC)."""
    chunk = num_envs * (int(algo_kwargs.get("n_steps", 2048)) if algo in ON_POLICY else 1)
    return -(-timesteps // chunk) * chunk


def _holds_a_run(out: Path) -> bool:
    """Whether ``out`` holds a run worth keeping: its run.json and a saved model."""
    saved = (out / "final_model.zip").is_file() or (out / "best_model.zip").is_file() \
        or bool(checkpoint_steps(out))
    return (out / RUN_FILE).is_file() and saved


def _make_model(cfg: TrainConfig, setup: Setup, env: Any, out: Path) -> Any:
    """The SB3 model; unknown or ill-typed hyperparameters give one-line errors."""
    cls = algo_class(cfg.algo)
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "policy", "env"}
    unknown = sorted(set(setup.algo_kwargs) - allowed)
    if unknown:
        raise ValueError(f"hyperparameters {unknown}: unknown to {cfg.algo.upper()}; allowed "
                         f"{sorted(allowed - {'seed', 'device', 'verbose', 'tensorboard_log'})}"
                         " and the rl-zoo3 keys " + str(list(ZOO_KEYS)))
    try:
        return cls(setup.policy, env, seed=cfg.seed, device="cpu", verbose=0,
                   tensorboard_log=str(out / "tb") if cfg.tensorboard else None,
                   **setup.algo_kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ValueError(f"hyperparameters: {cfg.algo.upper()} rejects them: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from exc


def train(cfg: TrainConfig, log: Any = print, callbacks: list | None = None) -> Any:
    """Train a new agent into ``cfg.out`` (which must not hold a run with a saved model yet);
    ``callbacks`` are extra SB3 callbacks. ``run.json`` is written once the model is built, so
    a failed start leaves nothing that blocks the corrected command."""
    import torch

    torch.set_num_threads(cfg.torch_threads)
    setup = resolve(cfg)
    out = Path(cfg.out)
    if _holds_a_run(out):
        raise FileExistsError(f"--out {out}: already holds a run; use --resume {out} to "
                              "continue it, or choose another folder")
    env = make_training_env(setup, seed=cfg.seed)
    model = _make_model(cfg, setup, env, out)
    out.mkdir(parents=True, exist_ok=True)
    _write_run_file(cfg, setup, out)
    steps = rounded_timesteps(cfg.algo, setup.algo_kwargs, setup.timesteps, setup.num_envs)
    unit = (f"rollouts of {setup.algo_kwargs.get('n_steps', 2048)} steps x {setup.num_envs} "
            "envs" if cfg.algo in ON_POLICY else f"vector steps of {setup.num_envs} envs")
    rounding = ("" if steps == setup.timesteps
                else f" (--timesteps {setup.timesteps} rounded up to whole {unit})")
    log(f"training {cfg.algo} on {setup.scenario_name} for {steps} steps{rounding} with "
        f"{setup.num_envs} envs, reference rate {setup.reference_rate:.1f} req/s -> {out}")
    return _learn(model, cfg, setup, out, reset=True, log=log, extra=callbacks)


def load_config(out: Path) -> TrainConfig:
    path = Path(out) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--resume {out}: no {RUN_FILE} there (not a training run)")
    with open(path, encoding="utf-8") as fh:
        return TrainConfig(**json.load(fh)["config"])


class UnreadableCheckpoint(Exception):
    """A checkpoint file that is missing, truncated or not what its name says."""


def load_checkpoint(cfg: TrainConfig, setup: Setup, out: Path, steps: int) -> Any:
    """The model of checkpoint ``steps`` on a fresh training env with its VecNormalize stats
    (and, for SAC, its replay buffer); :class:`UnreadableCheckpoint` names a bad file."""
    paths = checkpoint_paths(out, steps)
    stats = paths["vecnormalize"] if paths["vecnormalize"].is_file() else None
    if stats is None and setup.normalize:
        raise UnreadableCheckpoint(f"{paths['vecnormalize']} is missing")
    current = paths["model"]
    try:
        # new episodes with a fresh, reproducible seed (the env state is not checkpointed)
        current = stats or current
        env = make_training_env(setup, seed=cfg.seed + steps, stats_path=stats)
        current = paths["model"]
        model = algo_class(cfg.algo).load(paths["model"], env=env, device="cpu",
                                          tensorboard_log=str(out / "tb") if cfg.tensorboard
                                          else None)
        if cfg.algo == "sac":
            current = paths["replay_buffer"]
            if not current.is_file():
                raise FileNotFoundError("missing")
            model.load_replay_buffer(current)
    except (OSError, EOFError, ValueError, KeyError, AttributeError, TypeError,
            zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        raise UnreadableCheckpoint(f"{current}: {type(exc).__name__}: {exc}") from exc
    return model


def resume(out: str | Path, timesteps: int | None = None, progress_bar: bool | None = None,
           log: Any = print, callbacks: list | None = None) -> Any:
    """Continue the run in ``out`` from its newest readable checkpoint up to its total step
    count (or ``timesteps`` if given), replay buffer and VecNormalize stats included.
    Unreadable checkpoints (e.g. truncated by a crash) are skipped with a warning."""
    import torch

    out = Path(out)
    cfg = load_config(out)
    if timesteps is not None:
        cfg.timesteps = timesteps
    if progress_bar is not None:
        cfg.progress_bar = progress_bar
    torch.set_num_threads(cfg.torch_threads)
    setup = resolve(cfg)
    model = None
    for steps in checkpoint_steps(out)[::-1]:
        try:
            model = load_checkpoint(cfg, setup, out, steps)
            break
        except UnreadableCheckpoint as exc:
            log(f"warning: skipping the checkpoint at {steps} steps: {exc}")
    if model is None:
        raise FileNotFoundError(f"--resume {out}: no readable checkpoint in "
                                f"{out / 'checkpoints'}; start the run again with --out {out}")
    log(f"resuming {cfg.algo} from {checkpoint_paths(out, steps)['model']} at "
        f"{model.num_timesteps} steps (target {setup.timesteps})")
    _write_run_file(cfg, setup, out)
    return _learn(model, cfg, setup, out, reset=False, log=log, extra=callbacks)


def parameters_vector(model: Any) -> np.ndarray:
    """All policy parameters as one vector (for reproducibility checks)."""
    return np.concatenate([p.detach().cpu().numpy().ravel()
                           for p in model.policy.parameters()])
