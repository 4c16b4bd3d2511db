"""Training sweeps on Ray Tune: seeds x hyperparameters x tasks, locally or on a cluster.

    python -m serflow_eval.tune sweep.yml                  # a local Ray on this machine
    python -m serflow_eval.tune sweep.yml --address auto   # join a running Ray cluster
    python -m serflow_eval.tune sweep.yml --resume         # continue an interrupted sweep

Every trial runs :func:`serflow_eval.training.train` (the code ``train.py`` runs) with its
configuration, on ``cpus_per_trial`` CPUs and as many torch threads, into its own run folder
``STORAGE/NAME/TRIAL/run`` (models, VecNormalize stats, TensorBoard, learning curves). Each
validation (every ``eval_freq`` steps) is reported to Tune (``tune.report``) with the columns of
``evaluations.csv``. ``--resume`` restores the sweep (``Tuner.restore``): finished trials are
kept, interrupted ones continue from their newest training checkpoint (or start again if they
had none). At the end ``STORAGE/NAME/results.csv`` holds one row per trial and the best
configuration is printed. The sweep file (YAML)::

    name: ppo-seeds-lr          # experiment folder under storage
    storage: sweeps             # default: sweeps (relative to the current folder)
    metric: agent_return        # an evaluations.csv column (default agent_return)
    mode: max                   # max or min (default max)
    num_samples: 1              # repeats of the grid; random draws per repeat
    cpus_per_trial: 1
    max_concurrent_trials: null # default: as many as the CPUs allow
    train:                      # TrainConfig fields for every trial (not out)
      algo: ppo
      timesteps: 20000
      eval_freq: 5000
    search:                     # TrainConfig fields to vary; hyperparams.KEY, overrides.KEY
      seed: {grid: [0, 1, 2]}
      scenario: {grid: [default, branchynet-resnet]}
      hyperparams.learning_rate: {loguniform: [1.0e-4, 1.0e-3]}
      overrides.reward.w_slo: {choice: [5, 10, 20]}

Search kinds: ``grid`` (every value), ``choice`` (one drawn), ``uniform``/``loguniform``
``[low, high]`` and ``randint`` ``[low, high)``. Relative file paths are resolved against the
current folder before the trials start; on a cluster they must exist on every node.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import shutil
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from agents.rl.policy import RUN_FILE
from serflow_eval.ray_session import import_ray, ray_session
from serflow_eval.training import TrainConfig, latest_checkpoint, resume, train

SEARCH_KINDS = ("grid", "choice", "uniform", "loguniform", "randint")
#: TrainConfig fields that hold mappings, searchable per key as FIELD.KEY
MAPPING_FIELDS = ("hyperparams", "overrides")
#: TrainConfig fields that may name files (resolved against the launch folder)
PATH_FIELDS = ("scenario", "traces", "eval_trace", "hyperparams_file")
#: the sweep sets these itself
SWEEP_SET = ("out", "progress_bar", "torch_threads")


@dataclass
class SweepSpec:
    """A sweep file: the shared training fields, the search space and how to run it."""

    name: str
    train: dict[str, Any]
    search: dict[str, dict[str, Any]]
    storage: str = "sweeps"
    metric: str = "agent_return"
    mode: str = "max"
    num_samples: int = 1
    cpus_per_trial: int = 1
    max_concurrent_trials: int | None = None

    @property
    def folder(self) -> Path:
        return Path(self.storage).resolve() / self.name

    def validate(self) -> None:
        train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
        if not self.name or "/" in self.name:
            raise ValueError(f"sweep name={self.name!r}: give a folder name (no '/')")
        for key in self.train:
            if key not in train_fields or key in SWEEP_SET:
                raise ValueError(f"sweep train.{key}: not a settable TrainConfig field; allowed: "
                                 f"{sorted(train_fields - set(SWEEP_SET))}")
        for key, spec in self.search.items():
            name, _, sub = key.partition(".")
            if name not in train_fields or name in SWEEP_SET or (sub and name not in
                                                                 MAPPING_FIELDS):
                raise ValueError(f"sweep search.{key}: not a TrainConfig field (mappings as "
                                 f"{'/'.join(MAPPING_FIELDS)}.KEY)")
            if not isinstance(spec, Mapping) or len(spec) != 1 or \
                    next(iter(spec)) not in SEARCH_KINDS:
                raise ValueError(f"sweep search.{key}={spec!r}: give one of "
                                 f"{', '.join(SEARCH_KINDS)}, e.g. {{grid: [0, 1]}}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"sweep mode={self.mode!r}: allowed max, min")
        for name in ("num_samples", "cpus_per_trial"):
            if getattr(self, name) < 1:
                raise ValueError(f"sweep {name}={getattr(self, name)}: allowed >= 1")
        if self.max_concurrent_trials is not None and self.max_concurrent_trials < 1:
            raise ValueError(f"sweep max_concurrent_trials={self.max_concurrent_trials}: "
                             "allowed >= 1 or null")
        if self.train.get("eval_freq", 1) < 1:
            raise ValueError("sweep train.eval_freq=0: trials report their validations, so "
                             "it must be >= 1")


def load_sweep(path: str | Path) -> SweepSpec:
    """A sweep file, checked (ValueError names the bad field)."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    known = {f.name for f in dataclasses.fields(SweepSpec)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"sweep file {path}: unknown keys {unknown}; allowed {sorted(known)}")
    data.setdefault("name", Path(path).stem)
    data["train"] = dict(data.get("train") or {})
    data["search"] = dict(data.get("search") or {})
    spec = SweepSpec(**data)
    spec.validate()
    return spec


def _absolute(value: Any) -> Any:
    """A path relative to the current folder made absolute (``PATH@START:END`` kept)."""
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    if not isinstance(value, str):
        return value
    path, at, window = value.partition("@")
    return str(Path(path).resolve()) + at + window if Path(path).is_file() else value


def search_space(spec: SweepSpec) -> dict[str, Any]:
    """The Tune ``param_space``: the search keys as Tune domains."""
    from ray import tune

    space: dict[str, Any] = {}
    for key, entry in spec.search.items():
        kind, values = next(iter(entry.items()))
        if kind in ("grid", "choice"):
            values = [_absolute(v) for v in values]
            space[key] = tune.grid_search(values) if kind == "grid" else tune.choice(values)
        else:
            if not isinstance(values, Sequence) or len(values) != 2:
                raise ValueError(f"sweep search.{key}: {kind} takes [low, high], got {values!r}")
            space[key] = getattr(tune, kind)(*values)
    return space


def trial_config(train_fields: Mapping[str, Any], trial: Mapping[str, Any], out: Path,
                 cpus: int) -> TrainConfig:
    """The TrainConfig of one trial: the shared fields, then the trial's searched values."""
    hints = typing.get_type_hints(TrainConfig)
    values = {k: _absolute(v) if k in PATH_FIELDS else v for k, v in train_fields.items()}
    for name in MAPPING_FIELDS:
        values[name] = dict(values.get(name) or {})
    for key, value in trial.items():
        name, _, sub = key.partition(".")
        if sub:
            values[name][sub] = value
        else:
            values[name] = value
    for f in dataclasses.fields(TrainConfig):  # text forms of the CLI (action_map "load:...")
        meta = f.metadata.get("cli")
        if meta is not None and meta.value_type is str and isinstance(values.get(f.name), str) \
                and hints[f.name] is not str:
            values[f.name] = meta.parse(values[f.name])
    return TrainConfig(**values, out=str(out), progress_bar=False, torch_threads=cpus)


def last_evaluation(csv_path: Path) -> dict[str, float]:
    """The newest row of a run's ``evaluations.csv`` as numbers (wall-clock time left out)."""
    with open(csv_path, encoding="utf-8") as fh:
        row = list(csv.DictReader(fh))[-1]
    return {k: float(v) for k, v in row.items() if k != "time"}


def report_callback(eval_freq: int, csv_path: Path) -> Any:
    """An SB3 callback that reports each new validation to Tune, after the validation ran.

    It follows :class:`~serflow_eval.callbacks.HeuristicEvalCallback`'s schedule (every
    ``eval_freq`` steps from the start or the resumed step) and runs after it in the list.
    """
    from ray import tune
    from stable_baselines3.common.callbacks import BaseCallback

    class TuneReport(BaseCallback):
        def _init_callback(self) -> None:
            self.last_eval = self.num_timesteps

        def _on_step(self) -> bool:
            if self.num_timesteps - self.last_eval >= eval_freq:
                self.last_eval = self.num_timesteps
                tune.report(last_evaluation(csv_path))
            return True

    return TuneReport()


def run_trial(trial: dict[str, Any], train_fields: dict[str, Any], cpus: int) -> None:
    """One Tune trial: train (or, after an interruption, resume) in the trial's run folder."""
    from ray import tune

    out = Path(tune.get_context().get_trial_dir()) / "run"
    cfg = trial_config(train_fields, trial, out, cpus)
    callback = report_callback(cfg.eval_freq, out / "evaluations.csv")
    if (out / RUN_FILE).is_file() and latest_checkpoint(out) is not None:
        resume(out, progress_bar=False, callbacks=[callback])
        return
    if out.exists():  # interrupted before its first checkpoint: start again
        shutil.rmtree(out)
    train(cfg, callbacks=[callback])


def results_table(grid: Any, spec: SweepSpec) -> pd.DataFrame:
    """One row per trial: searched values, the last and best reported metric, the run folder."""
    rows = []
    for result in grid:
        history = result.metrics_dataframe
        row = {"trial": Path(result.path).name}
        row.update({key: result.config.get(key) for key in spec.search})
        last = result.metrics or {}
        row["timesteps"] = last.get("timesteps", math.nan)
        for key in (spec.metric, "agent_cost_per_1k", "agent_violation_rate"):
            row[key] = last.get(key, math.nan)
        if history is not None and spec.metric in history:
            values = history[spec.metric]
            row[f"best_{spec.metric}"] = values.max() if spec.mode == "max" else values.min()
        else:
            row[f"best_{spec.metric}"] = math.nan
        row["error"] = "" if result.error is None else type(result.error).__name__
        row["run"] = str(Path(result.path) / "run")
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values([f"best_{spec.metric}", "trial"],
                             ascending=[spec.mode == "min", True], ignore_index=True)


def run_sweep(spec: SweepSpec, resume_sweep: bool = False) -> pd.DataFrame:
    """Run (or restore and finish) the sweep on the connected Ray; returns the results table
    and writes it to ``FOLDER/results.csv``."""
    import_ray()
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, train_fields=spec.train, cpus=spec.cpus_per_trial),
        {"cpu": spec.cpus_per_trial})
    folder = spec.folder
    if resume_sweep:
        if not tune.Tuner.can_restore(str(folder)):
            raise FileNotFoundError(f"--resume: no sweep to restore in {folder}")
        tuner = tune.Tuner.restore(str(folder), trainable, resume_errored=True)
    else:
        if folder.exists():
            raise FileExistsError(f"sweep folder {folder} exists; use --resume to continue it "
                                  "or choose another name")
        tuner = tune.Tuner(
            trainable, param_space=search_space(spec),
            tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode,
                                        num_samples=spec.num_samples,
                                        max_concurrent_trials=spec.max_concurrent_trials),
            run_config=tune.RunConfig(name=spec.name, storage_path=str(folder.parent),
                                      verbose=1))
    grid = tuner.fit()
    table = results_table(grid, spec)
    table.to_csv(folder / "results.csv", index=False)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="sweep file (YAML; format in this module's docstring)")
    parser.add_argument("--address", help="join this Ray cluster ('auto' or HOST:PORT; "
                        "default: a local Ray on this machine)")
    parser.add_argument("--num-cpus", type=int,
                        help="CPUs of the local Ray (default: all of this machine's)")
    parser.add_argument("--resume", action="store_true",
                        help="restore the interrupted sweep of this file and finish it")
    args = parser.parse_args(argv)
    if args.address and args.num_cpus:
        parser.error("--num-cpus applies to a local Ray, not with --address")
    try:
        spec = load_sweep(args.sweep)
        # trials keep the launch folder as their working folder (Tune would switch to the
        # trial's), so the relative paths of scenarios and traces mean the same in each
        with ray_session(args.address, args.num_cpus, {"RAY_CHDIR_TO_TRIAL_DIR": "0"}):
            table = run_sweep(spec, resume_sweep=args.resume)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as exc:
        parser.error(str(exc))
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.drop(columns=["run"]).to_string(index=False))
    best = table.iloc[0]
    print(f"best ({spec.mode} best_{spec.metric} = {best[f'best_{spec.metric}']:.4g}): "
          + ", ".join(f"{k}={best[k]}" for k in spec.search) + f"\n  run folder: {best['run']}")
    print(f"wrote {spec.folder / 'results.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
