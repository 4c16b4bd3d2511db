"""Training on a benchmark suite: one agent per preset (``train.py --suite v1:default``).

An agent's observation and action sizes depend on its preset's number of stages, so a suite is
learned by one agent per preset. The agent of preset P trains on the suite's ``train`` tasks
whose scenario is P and is validated (checkpoint selection) on its ``validation`` tasks of P;
the ``test`` tasks are never read.

How the envs hold the tasks: a native vector env holds one scenario, and the tasks of a preset
differ in scale, exit drift, episode length and ``set`` overrides (scenario fields, not only the
trace). Tasks whose scenarios differ *only* in their trace share one native vector env whose
``arrivals.trace`` lists their windows (the env draws one per episode, uniformly, and replays it
from its start, as the suite evaluation does); the other groups get their own native env, and
:class:`ConcatVecEnv` shows SB3 the groups side by side as one ``VecEnv``. The ``num_envs``
envs are shared out over the groups in proportion to their tasks, so every task has the same
expected share of the experience. (One native env per task would be exact too, but a native
env step has a fixed cost: five 13-env parts step 3.6x slower per env than one 64-env env.)

Checkpoint selection (:func:`suite_rank_key`): every ``eval_freq`` env steps the agent
(deterministic) and, once, the heuristic play ``eval_episodes`` seeds of every validation
task. A checkpoint is *admissible* when its violation rate, averaged over the validation
tasks, is at most the heuristic's average (``tolerance`` 0); among admissible checkpoints the
one with the lowest mean cost relative to the heuristic (mean over tasks of cost / heuristic's
cost) is ``best_model.zip``; while none is admissible, the one with the smallest violation
excess is kept.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from agents.policy import known_policies, make_policy
from agents.rl.actions import make_action_map
from agents.rl.config import load_hyperparams, split_hyperparams
from agents.rl.lagrangian import DualAscentCallback
from agents.rl.policy import current_policy
from serflow_env.latency import scenario_cdf_grid_s
from serflow_env.normalisation import reward_reference_rate
from serflow_env.sb3 import STEP_INFO_KEYS, SerflowSB3VecEnv, StepInfo, make_sb3_vec_env
from serflow_env.scenario import Scenario
from serflow_env.suite import (
    RESERVED_KEYS,
    BuiltTask,
    SuiteError,
    build_tasks,
    load_suite,
)
from serflow_eval.callbacks import append_csv
from serflow_eval.model_files import save_model
from serflow_eval.scoring import ServingMetrics, run_policy
from serflow_eval.train_config import TrainConfig, fixed_slo_target

#: the validation's violation tolerance (violation rate, averaged over tasks) of the selection
SELECTION_TOLERANCE = 0.0
SELECTION_RULE = ("best_model: lowest mean (over validation tasks) cost / heuristic's cost "
                  "among checkpoints whose mean violation rate over the validation tasks is "
                  "<= the heuristic's + {tol:g}; while none is, the smallest violation excess")


# --------------------------------------------------------------------------------------------
# What to train on


def parse_suite_option(text: str) -> tuple[str, str]:
    """``--suite SUITE:PRESET`` as (suite, preset); SUITE is a shipped name or a YAML path."""
    suite, sep, preset = str(text).rpartition(":")
    if not sep or not suite or not preset:
        raise ValueError(f"--suite={text!r}: expected SUITE:PRESET, e.g. v1:default (one agent "
                         "per preset: its observation size depends on the preset's stages)")
    return suite, preset


def _is_reserved(key: str) -> bool:
    return any(key == r or key.startswith(r + ".") for r in RESERVED_KEYS)


@dataclass(frozen=True)
class SuitePlan:
    """A preset's tasks of a suite: the envs to train on and the tasks to validate on."""

    suite: str  # the suite's name
    version: int
    source: str  # the suite file
    preset: str
    train: tuple[BuiltTask, ...]
    validation: tuple[BuiltTask, ...]
    env_counts: tuple[int, ...]  # envs per train task, in task order
    reference_rate: float  # reward.reference_rate of every task (one observation scale)

    def groups(self) -> list[tuple[Scenario, list[str], int]]:
        """(scenario, its tasks, envs) per native vector env: tasks whose scenarios are equal
        but for the trace share one, its ``arrivals.trace`` the list of their windows."""
        marker = self.train[0].scenario.arrivals.trace  # one object: compared by identity
        found: list[tuple[Scenario, list[BuiltTask], int]] = []
        for task, count in zip(self.train, self.env_counts):
            key = task.scenario.with_overrides(**{"arrivals.trace": marker, "name": "key"})
            for i, (other, members, envs) in enumerate(found):
                if other == key:
                    found[i] = (other, [*members, task], envs + count)
                    break
            else:
                found.append((key, [task], count))
        return [(members[0].scenario.with_overrides(**{
                    "arrivals.trace": [t.scenario.arrivals.trace for t in members],
                    "name": "+".join(t.name for t in members)}) if len(members) > 1
                 else members[0].scenario, [t.name for t in members], envs)
                for _, members, envs in found]

    def describe(self) -> dict[str, Any]:
        """What run.json records under ``suite``."""
        return {"name": self.suite, "version": self.version, "source": self.source,
                "preset": self.preset,
                "train_tasks": [t.name for t in self.train],
                "validation_tasks": [t.name for t in self.validation],
                "native_envs": [{"tasks": names, "envs": envs}
                                for _, names, envs in self.groups()],
                "selection": SELECTION_RULE.format(tol=SELECTION_TOLERANCE)}

    def vec_env(self, seed: int) -> ConcatVecEnv:
        """One SB3 ``VecEnv`` over the train tasks' native vector envs (seeds from ``seed``)."""
        parts = [make_sb3_vec_env(scenario, num_envs=n) for scenario, _, n in self.groups()]
        env = ConcatVecEnv(parts)
        env.seed(seed)
        return env


def share_envs(num_envs: int, tasks: int) -> tuple[int, ...]:
    """``num_envs`` shared out over ``tasks`` as evenly as possible (the first ones get one
    more)."""
    if num_envs < tasks:
        raise ValueError(f"--num-envs={num_envs}; allowed >= {tasks} (one env per train task "
                         "at least)")
    return tuple(num_envs // tasks + (i < num_envs % tasks) for i in range(tasks))


def suite_plan(option: str, overrides: Mapping[str, Any], num_envs: int,
               user_overrides: Mapping[str, Any] | None = None) -> SuitePlan:
    """The plan of ``--suite SUITE:PRESET``: its train and validation tasks with
    ``overrides`` (the hyperparameter file's env overrides; the suite's own fields -- trace,
    scale, exit drift, episode length -- win over them) and ``user_overrides`` (``--set``; one
    on a task field is an error) applied to every task's scenario."""
    name, preset = parse_suite_option(option)
    try:
        suite = load_suite(name)
    except (SuiteError, FileNotFoundError) as exc:
        raise ValueError(f"--suite={option!r}: {exc}") from None
    presets = sorted({t.scenario for t in suite.tasks})
    if preset not in presets:
        raise ValueError(f"--suite={option!r}: suite {suite.name!r} has no task on preset "
                         f"{preset!r}; its presets: {', '.join(presets)}")
    over = {k: v for k, v in overrides.items() if not _is_reserved(k)}
    over.update(user_overrides or {})
    splits: dict[str, list[BuiltTask]] = {}
    for split in ("train", "validation"):
        names = [t.name for t in suite.select([split]) if t.scenario == preset]
        try:
            built, skipped = build_tasks(suite, [split], names, overrides=over)
        except SuiteError as exc:
            raise ValueError(f"--suite={option!r}: {exc}") from None
        if skipped:
            raise ValueError(f"--suite={option!r}: {skipped[0].message}")
        if not built:
            raise ValueError(f"--suite={option!r}: suite {suite.name!r} has no {split} task "
                             f"on preset {preset!r}")
        splits[split] = built
    ref = float(over.get("reward.reference_rate",
                         reward_reference_rate(splits["train"][0].scenario)))
    fixed = {s: [replace(t, scenario=t.scenario.with_overrides(
        **{"reward.reference_rate": ref})) for t in tasks] for s, tasks in splits.items()}
    _check_compatible([*fixed["train"], *fixed["validation"]], option)
    return SuitePlan(suite=suite.name, version=suite.version, source=str(suite.source),
                     preset=preset, train=tuple(fixed["train"]),
                     validation=tuple(fixed["validation"]),
                     env_counts=share_envs(num_envs, len(fixed["train"])), reference_rate=ref)


def _check_compatible(tasks: Sequence[BuiltTask], option: str) -> None:
    """One agent fits every task: same stages (observation and action sizes) and latency grid."""
    first = tasks[0]
    grid = scenario_cdf_grid_s(first.scenario)
    for task in tasks[1:]:
        if task.scenario.num_stages != first.scenario.num_stages or not np.array_equal(
                scenario_cdf_grid_s(task.scenario), grid):
            raise ValueError(f"--suite={option!r}: tasks {first.name!r} and {task.name!r} "
                             "differ in stages or latency grid; one agent cannot play both")


def check_suite_config(cfg: TrainConfig) -> None:
    """Options that contradict ``--suite`` (it gives the traffic and the validation)."""
    for name, flag in (("traces", "--trace"), ("eval_trace", "--eval-trace"),
                       ("eval_steps", "--eval-steps"), ("scenario", "--scenario")):
        if getattr(cfg, name):
            raise ValueError(f"{flag} with --suite {cfg.suite}: the suite's tasks give the "
                             "scenario, traffic and validation; drop it")
    for key in cfg.overrides:
        if _is_reserved(key):
            raise ValueError(f"--set {key} with --suite {cfg.suite}: set by the suite's tasks "
                             "(trace, scale, exit drift, episode length)")


def resolve_suite(cfg: TrainConfig, base: Any) -> Any:
    """The :class:`~serflow_eval.training.Setup` of a ``--suite`` run: ``base`` (what the
    config resolves to without the suite: hyperparameters, sizes) with the plan's first train
    and validation tasks as its scenarios and the plan itself. The hyperparameter file's env
    overrides apply to every task except those on the suite's own fields (its default
    training traces, random starts)."""
    check_suite_config(cfg)
    if base.context.enabled:
        raise ValueError("hyperparameter 'context': trace-clock features are not supported with "
                         "--suite (its tasks have different traces and clocks); drop one of them")
    hp = load_hyperparams(cfg.algo, cfg.hyperparams_file)
    hp.update(cfg.hyperparams)
    env_kwargs = split_hyperparams(hp)[0].get("env_kwargs") or {}
    yml_overrides = dict(env_kwargs.get("overrides") or {})
    plan = suite_plan(cfg.suite, yml_overrides, base.num_envs, cfg.overrides)
    train = plan.train[0].scenario
    return replace(base, train_scenario=train, eval_scenario=plan.validation[0].scenario,
                   reference_rate=plan.reference_rate, scenario_name=plan.preset,
                   action_map=make_action_map(cfg.action_map, train, plan.reference_rate),
                   suite=plan)


# --------------------------------------------------------------------------------------------
# Several native vector envs as one SB3 VecEnv


class ConcatVecEnv(VecEnv):
    """SB3 ``VecEnv`` of native vector envs side by side (envs in part order).

    Actions are split by part, observations, rewards and dones concatenated; the infos are
    :class:`~serflow_env.sb3.StepInfo` views of one batch concatenated from the parts'
    batches, so callbacks and reward wrappers keep reading the step's arrays at once. Seeds:
    part ``j`` is seeded with ``seed + (envs before it)``.
    """

    def __init__(self, parts: Sequence[SerflowSB3VecEnv]) -> None:
        if not parts:
            raise ValueError("ConcatVecEnv: no part")
        first = parts[0]
        for part in parts[1:]:
            if part.observation_space != first.observation_space \
                    or part.action_space != first.action_space:
                raise ValueError("ConcatVecEnv: the parts' observation or action spaces differ")
        self.parts = list(parts)
        counts = [p.num_envs for p in parts]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        super().__init__(int(self.offsets[-1]), first.observation_space, first.action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        if seed is not None:
            for part, offset in zip(self.parts, self.offsets):
                part.seed(int(seed) + int(offset))
        obs = np.concatenate([part.reset() for part in self.parts])
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[StepInfo]]:
        if self._actions is None:
            raise RuntimeError("step_wait called without step_async")
        results = []
        for part, lo, hi in zip(self.parts, self.offsets[:-1], self.offsets[1:]):
            part.step_async(self._actions[lo:hi])
            results.append(part.step_wait())
        self._actions = None
        batch = {key: np.concatenate([np.asarray(r[3][0].batch[key]) for r in results])
                 for key in STEP_INFO_KEYS}
        infos = [StepInfo(batch, i, info.extra)
                 for i, info in enumerate(info for r in results for info in r[3])]
        return (np.concatenate([r[0] for r in results]),
                np.concatenate([r[1] for r in results]),
                np.concatenate([r[2] for r in results]), infos)

    def close(self) -> None:
        for part in self.parts:
            part.close()

    def _locate(self, indices: None | int | Iterable[int]) -> list[tuple[int, int]]:
        """(part, index in it) of each env index."""
        if indices is None:
            indices = range(self.num_envs)
        elif isinstance(indices, int):
            indices = [indices]
        located = []
        for i in indices:
            j = int(np.searchsorted(self.offsets, i, side="right")) - 1
            located.append((j, int(i - self.offsets[j])))
        return located

    def get_attr(self, attr_name: str, indices: None | int | Iterable[int] = None) -> list[Any]:
        return [self.parts[j].get_attr(attr_name, k)[0] for j, k in self._locate(indices)]

    def set_attr(self, attr_name: str, value: Any,
                 indices: None | int | Iterable[int] = None) -> None:
        for j, k in self._locate(indices):
            self.parts[j].set_attr(attr_name, value, k)

    def env_method(self, method_name: str, *method_args: Any,
                   indices: None | int | Iterable[int] = None, **method_kwargs: Any) -> list[Any]:
        return [self.parts[j].env_method(method_name, *method_args, indices=k,
                                         **method_kwargs)[0]
                for j, k in self._locate(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: None | int | Iterable[int] = None,
                       ) -> list[bool]:
        return [False for _ in self._locate(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs


# --------------------------------------------------------------------------------------------
# Validation on the preset's validation tasks


@dataclass(frozen=True)
class SuiteValidation:
    """The agent against the heuristic on every validation task."""

    cost_vs_heuristic: float  # mean over tasks of agent cost / heuristic cost
    violation_excess: float  # mean over tasks of agent - heuristic violation rate
    violation_rate: float  # mean over tasks of the agent's violation rate
    episode_return: float  # mean over tasks of the agent's mean return
    per_task: dict[str, ServingMetrics]


def suite_rank_key(result: SuiteValidation, tolerance: float = SELECTION_TOLERANCE,
                   ) -> tuple[int, float]:
    """Larger is better: admissible checkpoints (mean violation excess <= ``tolerance``) by
    low mean relative cost, then the others by small violation excess."""
    if result.violation_excess <= tolerance:
        return (1, -result.cost_vs_heuristic)
    return (0, -result.violation_excess)


def compare_to_heuristic(agent: Mapping[str, ServingMetrics],
                         heuristic: Mapping[str, ServingMetrics]) -> SuiteValidation:
    """Per-task agent metrics against the heuristic's, averaged over tasks."""
    names = list(heuristic)
    return SuiteValidation(
        cost_vs_heuristic=float(np.mean([agent[n].cost_usd / heuristic[n].cost_usd
                                         for n in names])),
        violation_excess=float(np.mean([agent[n].violation_rate - heuristic[n].violation_rate
                                        for n in names])),
        violation_rate=float(np.mean([agent[n].violation_rate for n in names])),
        episode_return=float(np.mean([agent[n].episode_return for n in names])),
        per_task=dict(agent))


def score_tasks(make: Callable[[BuiltTask], Any], tasks: Sequence[BuiltTask], episodes: int,
                seed: int, name: str) -> dict[str, ServingMetrics]:
    """``make(task)``'s policy on ``episodes`` seeds (from ``seed``) of every task."""
    return {t.name: run_policy(make(t), t.scenario, episodes, seed, name=name) for t in tasks}


class SuiteEvalCallback(BaseCallback):
    """Every ``eval_freq`` env steps: the agent (deterministic) on every validation task
    against the heuristic (scored once); keeps ``best_model.zip`` by :func:`suite_rank_key`
    and appends a row per evaluation to ``evaluations.csv`` (means and per-task columns)."""

    def __init__(self, tasks: Sequence[BuiltTask], out: Path, train_reference_rate: float,
                 action_map: dict[str, Any] | None, eval_freq: int, episodes: int,
                 frame_stack: int, seed: int, heuristic: Mapping[str, ServingMetrics],
                 log: Callable[[str], None] = print,
                 tolerance: float = SELECTION_TOLERANCE) -> None:
        super().__init__(0)
        self.tasks = list(tasks)
        self.out = Path(out)
        self.train_reference_rate = train_reference_rate
        self.action_map = action_map
        self.eval_freq = eval_freq
        self.episodes = episodes
        self.frame_stack = frame_stack
        self.seed = seed
        self.heuristic = dict(heuristic)
        self.log = log
        self.tolerance = tolerance
        self.csv_path = self.out / "evaluations.csv"
        self.best_key: tuple[int, float] | None = None
        self.last_eval = 0

    def _init_callback(self) -> None:
        self.last_eval = self.num_timesteps
        self.best_key = self._previous_best()

    def _previous_best(self) -> tuple[int, float] | None:
        """On resume: the best key among the evaluations already in the csv."""
        if not self.csv_path.exists() or not (self.out / "best_model.zip").exists():
            return None
        with open(self.csv_path, encoding="utf-8") as fh:
            keys = [(int(r["best_rank_class"]), float(r["best_rank_value"]))
                    for r in csv.DictReader(fh)]
        return max(keys) if keys else None

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last_eval >= self.eval_freq:
            self.last_eval = self.num_timesteps
            self.evaluate()
        return True

    def evaluate(self) -> SuiteValidation:
        agent = score_tasks(lambda t: current_policy(
            self.model, t.scenario, self.train_reference_rate, self.action_map,
            self.frame_stack), self.tasks, self.episodes, self.seed, "agent")
        result = compare_to_heuristic(agent, self.heuristic)
        key = suite_rank_key(result, self.tolerance)
        improved = self.best_key is None or key > self.best_key
        if improved:
            self.best_key = key
            save_model(self.model, self.out / "best_model.zip",
                       self.out / "best_model_vecnormalize.pkl")
        for name, value in (("cost_vs_heuristic", result.cost_vs_heuristic),
                            ("violation_excess", result.violation_excess),
                            ("agent_violation_rate", result.violation_rate),
                            ("agent_episode_return", result.episode_return)):
            self.logger.record(f"eval/{name}", value)
        row: dict[str, Any] = {
            "timesteps": self.num_timesteps, "time": time.time(),
            "cost_vs_heuristic": result.cost_vs_heuristic,
            "violation_excess": result.violation_excess,
            "agent_violation_rate": result.violation_rate,
            "agent_return": result.episode_return,
            "best_rank_class": key[0], "best_rank_value": key[1], "new_best": int(improved)}
        for name, metrics in agent.items():
            heur = self.heuristic[name]
            row[f"{name}:cost_vs_heuristic"] = metrics.cost_usd / heur.cost_usd
            row[f"{name}:agent_violation_rate"] = metrics.violation_rate
            row[f"{name}:heuristic_violation_rate"] = heur.violation_rate
        append_csv(self.csv_path, row)
        self.log(f"[eval] {self.num_timesteps} steps on {len(self.tasks)} validation tasks: "
                 f"cost / heuristic {result.cost_vs_heuristic:.3f}, violations "
                 f"{100 * result.violation_rate:.3f} % ({100 * result.violation_excess:+.3f} "
                 f"pp vs heuristic){' (new best)' if improved else ''}")
        self.logger.dump(self.num_timesteps)
        return result


def suite_callbacks(cfg: TrainConfig, setup: Any, out: Path, log: Callable[[str], None],
                    ) -> list[BaseCallback]:
    """The validation (and ``--slo-target``'s dual ascent) of a ``--suite`` run; the
    heuristic is scored on the validation tasks once, when training starts."""
    plan: SuitePlan = setup.suite
    callbacks: list[BaseCallback] = []
    heuristic: dict[str, ServingMetrics] | None = None
    if cfg.heuristic and (cfg.eval_freq or cfg.slo_target is not None):
        if cfg.heuristic not in known_policies():
            raise ValueError(f"--heuristic {cfg.heuristic!r} with --suite: not a registered "
                             f"policy; known: {known_policies()}")
        heuristic = score_tasks(lambda t: make_policy(cfg.heuristic, t.scenario),
                                plan.validation, cfg.eval_episodes, cfg.eval_seed,
                                cfg.heuristic)
        for name, m in heuristic.items():
            log(f"[eval] heuristic {cfg.heuristic} on {name}: cost/1k "
                f"{m.cost_per_1k_requests:.5f} $, violations {100 * m.violation_rate:.3f} %")
    if cfg.eval_freq:
        if heuristic is None:
            raise ValueError("--suite needs a --heuristic to select checkpoints against")
        callbacks.append(SuiteEvalCallback(
            plan.validation, out, plan.reference_rate, setup.action_map.spec(), cfg.eval_freq,
            cfg.eval_episodes, setup.frame_stack, cfg.eval_seed, heuristic, log=log))
    if cfg.slo_target is not None:
        target = fixed_slo_target(cfg.slo_target)
        if target is None:
            if heuristic is None:
                raise ValueError("--slo-target heuristic needs a --heuristic to measure")
            target = pooled_violations_per_resolved(heuristic.values())
        log(f"[dual] SLO target {target:.3g} violations per resolved request; lambda starts "
            f"at w_slo = {setup.train_scenario.reward.w_slo:g}")
        callbacks.append(DualAscentCallback(
            target, lam=setup.train_scenario.reward.w_slo, lr=cfg.dual_lr,
            on_update=lambda row: append_csv(out / "dual.csv", row)))
    return callbacks


def pooled_violations_per_resolved(metrics: Iterable[ServingMetrics]) -> float:
    """Violations per resolved request over all the tasks' requests (``--slo-target
    heuristic`` on a suite)."""
    items = list(metrics)
    violations = sum(m.violation_rate * m.requests for m in items)
    resolved = sum(m.requests_resolved for m in items)
    if not violations > 0:
        raise ValueError("--slo-target heuristic: the heuristic had no SLO violations on the "
                         "validation tasks; give the target as a rate")
    return violations / resolved
