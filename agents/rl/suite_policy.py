"""One trained agent per preset as one policy: ``ppo-suite:DIR`` (``sac-suite:DIR``).

``DIR`` holds one ``train.py --suite SUITE:PRESET`` run per preset (sub-folders with a
``run.json`` whose ``suite`` entry names the preset). For each scenario the policy is built for,
it finds the preset: a suite task's scenario is named ``SUITE/TASK`` (the suite's task list
says which preset the task is on), a preset's own scenario by its name; and it loads that
preset's run's ``best_model.zip`` (``ppo-suite:DIR@final_model`` for ``final_model.zip``) as
``ppo:PATH`` would. A preset without a run in ``DIR`` is a one-line error naming the preset,
the task and the presets that have one.

    python evaluate.py --suite v1 --split test --policies serflow,load-map,ppo-suite:runs/v1-ppo
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.policy import register_policy
from agents.rl.policy import RUN_FILE, RLPolicy, load_rl_policy
from serflow_env.scenario import Scenario, available_scenarios
from serflow_env.suite import SuiteError, load_suite


def suite_runs(folder: Path, spec: str) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Preset -> (run folder, its run.json) of the ``--suite`` runs directly under ``folder``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"policy spec {spec}: folder {folder} not found")
    runs: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in sorted(folder.glob(f"*/{RUN_FILE}")):
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
        suite = info.get("suite")
        if not isinstance(suite, dict) or "preset" not in suite:
            continue
        preset = suite["preset"]
        if preset in runs:
            raise ValueError(f"policy spec {spec}: two runs for preset {preset!r}: "
                             f"{runs[preset][0]} and {path.parent}")
        runs[preset] = (path.parent, info)
    if not runs:
        raise FileNotFoundError(f"policy spec {spec}: no train.py --suite run (a sub-folder "
                                f"with a run.json naming its suite preset) in {folder}")
    return runs


def scenario_preset(scenario: Scenario, runs: dict[str, tuple[Path, dict[str, Any]]],
                    spec: str) -> str:
    """The preset ``scenario`` is on: ``SUITE/TASK`` names are looked up in the suite (the
    file a run recorded, else the shipped suite of that name), other names must be a
    preset's."""
    suite_name, sep, task = scenario.name.partition("/")
    if sep:
        sources = [info["suite"].get("source") for _, info in runs.values()
                   if info["suite"].get("name") == suite_name]
        ref = next((s for s in sources if s and Path(s).is_file()), suite_name)
        try:
            tasks = {t.name: t.scenario for t in load_suite(ref).tasks}
        except (SuiteError, FileNotFoundError) as exc:
            raise ValueError(f"policy spec {spec}: scenario {scenario.name!r}: {exc}") from None
        if task not in tasks:
            raise ValueError(f"policy spec {spec}: scenario {scenario.name!r}: suite "
                             f"{suite_name!r} has no task {task!r}")
        return tasks[task]
    if scenario.name in available_scenarios():
        return scenario.name
    raise ValueError(f"policy spec {spec}: scenario {scenario.name!r} is neither a suite task "
                     "(SUITE/TASK) nor a shipped preset; cannot tell which preset's agent "
                     "plays it")


def load_suite_policy(algo: str, scenario: Scenario, arg: str, **kwargs: Any) -> RLPolicy:
    """Factory of ``ALGO-suite:DIR[@MODEL]``: the agent of ``scenario``'s preset."""
    spec = f"{algo}-suite:{arg}"
    folder, _, model = arg.partition("@")
    if not folder:
        raise ValueError(f"policy spec {spec}: give the folder of the per-preset runs, "
                         f"{algo}-suite:DIR[@best_model|@final_model]")
    model = model or "best_model"
    runs = suite_runs(Path(folder), spec)
    preset = scenario_preset(scenario, runs, spec)
    if preset not in runs:
        raise FileNotFoundError(f"policy spec {spec}: no run for preset {preset!r} (scenario "
                                f"{scenario.name!r}) in {folder}; runs there: "
                                f"{', '.join(sorted(runs))}")
    run, info = runs[preset]
    if info.get("algo") != algo:
        raise ValueError(f"policy spec {spec}: {run} holds a {str(info.get('algo')).upper()} "
                         f"run; use {info.get('algo')}-suite:{arg}")
    path = run / f"{model}.zip"
    if not path.is_file():
        raise FileNotFoundError(f"policy spec {spec}: {path} not found (preset {preset!r})")
    policy = load_rl_policy(algo, scenario, str(path), **kwargs)
    policy.name = spec
    return policy


def _factory(algo: str):  # noqa: ANN202
    def make(scenario: Scenario, arg: str, **kwargs: Any) -> RLPolicy:
        return load_suite_policy(algo, scenario, arg, **kwargs)
    return make


register_policy("ppo-suite", _factory("ppo"))
register_policy("sac-suite", _factory("sac"))
