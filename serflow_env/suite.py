"""Benchmark suites: named tasks (a scenario, a fixed trace window, a scale, exit drift), each
in a ``train``, ``validation`` or ``test`` split.

A task turns into a :class:`~serflow_env.scenario.Scenario` that replays one trace window from
its start (``arrivals.random_start`` false), so the seeds of an evaluation vary only what is
random in the env (Poisson arrivals of rate traces, exits, service times, exit drift) and a
policy that knows the trace can plan the window. Suite files are YAML, validated like
scenarios: a bad field raises :class:`SuiteError` (one line naming the field, the value and the
allowed range), unknown keys are rejected. Shipped suites live in ``serflow_env/suites/`` and
are found by name (``v1``); the format is documented in docs/SUITE.md. A task whose trace file
is absent (the LIBRA traces are not shipped) is skipped with a message naming the task and
the file, never silently::

    python -m serflow_env.suite v1            # the tasks, and which are skipped here
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from serflow_env.arrivals import SHIPPED_TRACE_DIR
from serflow_env.assignments import parse_assignments
from serflow_env.scenario import Scenario, ScenarioError, _check_range, load_scenario
from serflow_env.traces import Trace, generate, load_trace

SUITE_DIR = Path(__file__).resolve().parent / "suites"
SPLITS = ("train", "validation", "test")
#: environment variable: folders (os.pathsep-separated) searched first for trace files
TRACE_PATH_VAR = "SERFLOW_TRACE_PATH"
#: ``shared/traces`` beside the checkout this package was imported from (editable installs)
CHECKOUT_SHARED_TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"

SUITE_FIELDS = ("name", "version", "description", "defaults", "tasks")
TASK_FIELDS = ("name", "split", "description", "scenario", "trace", "scale", "exit_drift",
               "episode_steps", "set")
#: task fields a suite's ``defaults`` may give (a task's own value wins; ``set`` lists add up)
DEFAULT_FIELDS = ("scenario", "scale", "exit_drift", "episode_steps", "set")
FILE_TRACE_FIELDS = ("file", "start_s", "duration_s", "repeat", "format")
EXIT_DRIFT_FIELDS = ("volatility", "reversion_s", "schedule")
#: scenario keys a task sets through its own fields, not through ``set``
RESERVED_KEYS = {"arrivals.trace": "trace", "arrivals.scale": "scale",
                 "arrivals.random_start": "none: suite tasks always start at the window's start",
                 "episode_steps": "episode_steps", "exit_drift": "exit_drift"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_WINDOW = re.compile(r"^(?P<path>.+)@(?P<start>[0-9.]*):(?P<end>[0-9.]*)$")


class SuiteError(ScenarioError):
    """A suite file or one of its tasks is malformed (the message names the field)."""


class TraceFileMissing(FileNotFoundError):
    """A task's trace file is on none of the search path's folders."""

    def __init__(self, file: str, folders: list[Path]) -> None:
        self.file = file
        self.folders = folders
        super().__init__(f"trace file {file!r} not found in {', '.join(map(str, folders))}")


# --------------------------------------------------------------------------------------------
# The format


@dataclass(frozen=True)
class TraceSpec:
    """Where a task's requests come from: a generator spec, or a window of a trace file.

    ``generator``: a :func:`serflow_env.traces.generate` spec (``{generator: mmpp, seed: 3,
    ...}``), replayed from its first second. ``file``: a LIBRA or Azure trace found on the
    search path (:func:`trace_search_path`), its window ``[start_s, start_s + duration_s)``
    (default: to the end); ``repeat`` loops the window when the episode is longer.
    """

    generator: Mapping[str, Any] | None = None
    file: str | None = None
    start_s: float = 0.0  # trace seconds, a multiple of the trace's bin width
    duration_s: float | None = None  # None: to the end of the trace
    repeat: bool = False
    format: str = "auto"  # auto | libra | azure

    @property
    def label(self) -> str:
        """The trace as a reader knows it: ``diurnal(seed=11)`` or ``wits_logs.txt@0:7200``."""
        if self.generator is not None:
            gen = self.generator
            name = gen.get("name") or gen["generator"]
            return f"{name} (generated, seed {gen['seed']})" if "seed" in gen \
                else f"{name} (generated)"
        name = Path(str(self.file)).name
        if self.start_s == 0 and self.duration_s is None:
            return name + (" (looped)" if self.repeat else "")
        end = "" if self.duration_s is None else f"{self.start_s + self.duration_s:g}"
        return f"{name}@{self.start_s:g}:{end}" + (" (looped)" if self.repeat else "")


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite, as written in the file (defaults applied)."""

    name: str
    split: str  # train | validation | test
    scenario: str  # preset name or YAML path (relative: to the suite file's folder, then cwd)
    trace: TraceSpec
    scale: float = 1.0  # arrivals.scale: multiplies the trace's counts, (0, 1000]
    exit_drift: Mapping[str, Any] = field(default_factory=dict)  # ExitDrift fields to set
    episode_steps: int | None = None  # control intervals; None: the scenario's
    set: tuple[str, ...] = ()  # further scenario overrides, KEY=VALUE as with --set
    description: str = ""
    where: str = field(default="", compare=False)  # "tasks[3] (name)", for error messages


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of tasks."""

    name: str
    version: int
    tasks: tuple[SuiteTask, ...]
    description: str = ""
    source: Path | None = None  # the file it was read from

    def select(self, splits: Iterable[str] | None = None,
               names: Iterable[str] | None = None) -> list[SuiteTask]:
        """The tasks in ``splits`` (default all) and, if given, named in ``names``, in file
        order; an unknown split or task name raises SuiteError."""
        split_list = list(SPLITS if splits is None else splits)
        for split in split_list:
            if split not in SPLITS:
                raise SuiteError(f"split={split!r}; allowed {', '.join(SPLITS)}")
        tasks = [t for t in self.tasks if t.split in split_list]
        if names is not None:
            wanted = list(names)
            known = {t.name for t in self.tasks}
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise SuiteError(f"suite {self.name!r}: no task(s) {unknown}; tasks: "
                                 f"{[t.name for t in self.tasks]}")
            tasks = [t for t in tasks if t.name in wanted]
        return tasks


# --------------------------------------------------------------------------------------------
# Reading and validating


def _mapping(where: str, value: Any, allowed: Iterable[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SuiteError(f"{where}: expected a mapping, got {value!r}")
    unknown = sorted(str(k) for k in set(value) - set(allowed))
    if unknown:
        raise SuiteError(f"{where}: unknown field(s) {unknown}; allowed {sorted(allowed)}")
    return dict(value)


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise SuiteError(f"{where}={value!r}: expected a name of letters, digits, '_', '.' "
                         "or '-' (starting with a letter or digit)")
    return value


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SuiteError(f"{where}={value!r}: expected a string")
    return value


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SuiteError(f"{where}={value!r}: expected true or false")
    return value


def _trace_spec(where: str, value: Any) -> TraceSpec:
    """A task's ``trace``: ``PATH``, ``PATH@START:END``, a generator mapping or a file mapping."""
    if isinstance(value, str):
        match = _WINDOW.match(value)
        if not match:
            if "@" in value or not value.strip():
                raise SuiteError(f"{where}={value!r}: expected PATH or PATH@START:END (seconds)")
            return TraceSpec(file=value)
        try:
            start = float(match["start"] or 0.0)
            end = float(match["end"]) if match["end"] else None
        except ValueError as exc:
            raise SuiteError(f"{where}={value!r}: expected PATH@START:END in seconds") from exc
        if end is not None and not end > start:
            raise SuiteError(f"{where}={value!r}: the window's END must exceed its START")
        value = {"file": match["path"], "start_s": start,
                 **({"duration_s": end - start} if end is not None else {})}
    if isinstance(value, Mapping) and "generator" in value:
        spec = dict(value)
        try:
            generate(spec)  # validates the generator's arguments now (it takes milliseconds)
        except (TypeError, ValueError) as exc:
            raise SuiteError(f"{where}: {exc}") from exc
        return TraceSpec(generator=spec)
    if isinstance(value, Mapping) and "file" in value:
        data = _mapping(where, value, FILE_TRACE_FIELDS)
        file = data["file"]
        if not isinstance(file, str) or not file.strip():
            raise SuiteError(f"{where}.file={file!r}: expected a path or file name")
        start = data.get("start_s", 0.0)
        _check_range(f"{where}.start_s", start, 0.0)
        duration = data.get("duration_s")
        if duration is not None:
            _check_range(f"{where}.duration_s", duration, 0.0, low_open=True)
        fmt = data.get("format", "auto")
        if fmt not in ("auto", "libra", "azure"):
            raise SuiteError(f"{where}.format={fmt!r}; allowed auto, libra, azure")
        repeat = _bool(f"{where}.repeat", data.get("repeat", False))
        return TraceSpec(file=file, start_s=float(start),
                         duration_s=None if duration is None else float(duration),
                         repeat=repeat, format=fmt)
    raise SuiteError(f"{where}={value!r}: expected a file (PATH, PATH@START:END or {{file: "
                     "PATH, start_s: ..., duration_s: ...}) or a generator spec "
                     "({generator: NAME, ...})")


def _exit_drift(where: str, value: Any) -> dict[str, Any]:
    data = _mapping(where, value, EXIT_DRIFT_FIELDS)
    if "volatility" in data:
        _check_range(f"{where}.volatility", data["volatility"], 0.0, 5.0)
    if "reversion_s" in data:
        _check_range(f"{where}.reversion_s", data["reversion_s"], 0.0, 1e7, low_open=True)
    if "schedule" in data and not isinstance(data["schedule"], list):
        raise SuiteError(f"{where}.schedule={data['schedule']!r}: expected a list of "
                         "[time_s, [p_1, ..., p_K-1]] points")
    return data  # the schedule's points are checked against the scenario's stages at build


def _set_items(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SuiteError(f"{where}={value!r}: expected a list of KEY=VALUE strings")
    try:
        parsed = parse_assignments(value, where)
    except ValueError as exc:
        raise SuiteError(str(exc)) from exc
    for key in parsed:
        _check_not_reserved(where, key)
    return tuple(value)


def _check_not_reserved(where: str, key: str) -> None:
    for reserved, use in RESERVED_KEYS.items():
        if key == reserved or key.startswith(reserved + "."):
            raise SuiteError(f"{where}: {key!r} cannot be set here; use the task field {use}"
                             if not use.startswith("none") else
                             f"{where}: {key!r} cannot be set ({use})")


def _task(index: int, data: Any, defaults: Mapping[str, Any]) -> SuiteTask:
    name = data.get("name") if isinstance(data, Mapping) else None
    where = f"tasks[{index}]" + (f" ({name})" if isinstance(name, str) else "")
    data = _mapping(where, data, TASK_FIELDS)
    for required in ("name", "split", "trace"):
        if required not in data:
            raise SuiteError(f"{where}: missing required field {required!r}")
    split = data["split"]
    if split not in SPLITS:
        raise SuiteError(f"{where}.split={split!r}; allowed {', '.join(SPLITS)}")
    scenario = data.get("scenario", defaults.get("scenario", "default"))
    if not isinstance(scenario, str) or not scenario:
        raise SuiteError(f"{where}.scenario={scenario!r}: expected a preset name or YAML path")
    scale = data.get("scale", defaults.get("scale", 1.0))
    _check_range(f"{where}.scale", scale, 0.0, 1000.0, low_open=True)
    steps = data.get("episode_steps", defaults.get("episode_steps"))
    if steps is not None:
        _check_range(f"{where}.episode_steps", steps, 1, 10**6, integer=True)
        steps = int(steps)
    drift = {**defaults.get("exit_drift", {}),
             **_exit_drift(f"{where}.exit_drift", data.get("exit_drift", {}))}
    sets = defaults.get("set", ()) + _set_items(f"{where}.set", data.get("set", []))
    return SuiteTask(
        name=_name(f"{where}.name", data["name"]), split=split, scenario=scenario,
        trace=_trace_spec(f"{where}.trace", data["trace"]), scale=float(scale),
        exit_drift=drift, episode_steps=steps, set=sets,
        description=_text(f"{where}.description", data.get("description", "")), where=where)


def _defaults(value: Any) -> dict[str, Any]:
    data = _mapping("defaults", value, DEFAULT_FIELDS)
    if "scenario" in data and (not isinstance(data["scenario"], str) or not data["scenario"]):
        raise SuiteError(f"defaults.scenario={data['scenario']!r}: expected a preset name or "
                         "YAML path")
    if "scale" in data:
        _check_range("defaults.scale", data["scale"], 0.0, 1000.0, low_open=True)
    if "episode_steps" in data:
        _check_range("defaults.episode_steps", data["episode_steps"], 1, 10**6, integer=True)
    if "exit_drift" in data:
        data["exit_drift"] = _exit_drift("defaults.exit_drift", data["exit_drift"])
    if "set" in data:
        data["set"] = _set_items("defaults.set", data["set"])
    return data


def suite_from_dict(data: Any, source: Path | None = None) -> Suite:
    """Build and validate a suite from plain data (as YAML gives it)."""
    try:
        return _suite(data, source)
    except SuiteError:
        raise
    except ScenarioError as exc:  # a range check shared with scenarios
        raise SuiteError(str(exc)) from exc


def _suite(data: Any, source: Path | None) -> Suite:
    data = _mapping("suite", data, SUITE_FIELDS)
    for required in ("name", "version", "tasks"):
        if required not in data:
            raise SuiteError(f"suite: missing required field {required!r}")
    name = _name("name", data["name"])
    _check_range("version", data["version"], 1, 10**6, integer=True)
    defaults = _defaults(data.get("defaults", {}))
    tasks_data = data["tasks"]
    if not isinstance(tasks_data, list) or not tasks_data:
        raise SuiteError(f"tasks={tasks_data!r}: expected a non-empty list of tasks")
    tasks = tuple(_task(i, t, defaults) for i, t in enumerate(tasks_data))
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            raise SuiteError(f"{task.where}.name={task.name!r}: task names must be unique")
        seen.add(task.name)
    return Suite(name=name, version=int(data["version"]), tasks=tasks,
                 description=_text("description", data.get("description", "")), source=source)


def available_suites() -> list[str]:
    """Names of the shipped suites."""
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def load_suite(suite: str | os.PathLike[str]) -> Suite:
    """A shipped suite by name (``v1``) or a suite YAML file by path."""
    path = Path(suite)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        path = SUITE_DIR / f"{suite}.yaml"
        if not path.exists():
            raise SuiteError(f"unknown suite {str(suite)!r}; shipped suites: "
                             f"{available_suites()} (or give a path to a .yaml file)")
    if not path.is_file():
        raise FileNotFoundError(f"suite file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    try:
        return suite_from_dict(data, path.resolve())
    except ScenarioError as exc:
        raise SuiteError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Trace files and building scenarios


def trace_search_path(suite_dir: Path | None = None) -> list[Path]:
    """The folders a relative trace file is looked up in, in this order: each folder of
    ``$SERFLOW_TRACE_PATH``; the suite file's folder; the working directory;
    ``../shared/traces`` from the working directory; ``shared/traces`` beside this checkout;
    the traces shipped with the package. A path with folders (``data/x.txt``) is joined to
    each; an absolute path is used as it is."""
    env = [Path(p) for p in os.environ.get(TRACE_PATH_VAR, "").split(os.pathsep) if p]
    cwd = Path.cwd()
    folders = [*env, *([suite_dir] if suite_dir is not None else []), cwd,
               cwd.parent / "shared" / "traces", CHECKOUT_SHARED_TRACES, SHIPPED_TRACE_DIR]
    unique: list[Path] = []
    for folder in folders:
        if folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    return unique


def find_trace_file(file: str, folders: list[Path]) -> Path:
    """The first existing ``folder / file`` (``file`` itself when absolute), or
    :class:`TraceFileMissing`."""
    path = Path(file).expanduser()
    candidates = [path] if path.is_absolute() else [folder / path for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TraceFileMissing(file, [path.parent] if path.is_absolute() else folders)


def _episode_trace(task: SuiteTask, needed_s: float, folders: list[Path]) -> Trace:
    """The trace the task's episode replays: exactly its ``needed_s`` seconds (rounded up to
    whole bins) of the window, from the window's start."""
    spec, where = task.trace, f"{task.where}.trace"
    if spec.generator is not None:
        trace = generate(spec.generator)
    else:
        trace = load_trace(find_trace_file(str(spec.file), folders), format=spec.format)
    res, total = trace.resolution_s, trace.duration_s
    start = spec.start_s
    end = total if spec.duration_s is None else start + spec.duration_s
    if not start < end <= total:
        raise SuiteError(f"{where}: window [{start:g}, {end:g}) s must lie within the trace's "
                         f"[0, {total:g}] s")
    for name, value in (("start_s", start), ("duration_s", end - start)):
        if not math.isclose(value / res, round(value / res), abs_tol=1e-9):
            raise SuiteError(f"{where}.{name}={value:g}: must be a multiple of the trace's "
                             f"{res:g} s bins")
    bins = math.ceil(needed_s / res - 1e-9)
    if bins * res > end - start + 1e-9 and not spec.repeat:
        raise SuiteError(
            f"{task.where}: the episode replays {needed_s:g} trace seconds but the trace "
            f"window {spec.label} holds {end - start:g} s; lower episode_steps, widen the "
            "window or set trace.repeat: true")
    window = trace.window(start, end - start).window(0.0, bins * res)  # loops when repeat
    return Trace(window.values, res, window.arrival_process, spec.label, window.origin_s)


def _scenario_ref(task: SuiteTask, suite_dir: Path | None) -> str | Path:
    path = Path(task.scenario)
    if path.suffix in (".yaml", ".yml") and not path.is_absolute() and suite_dir is not None:
        beside = suite_dir / path
        if beside.is_file():
            return beside
    return task.scenario


def build_scenario(task: SuiteTask, suite: Suite, folders: list[Path] | None = None,
                   overrides: Mapping[str, Any] | None = None) -> Scenario:
    """The task's scenario: its preset with the task's scale, exit drift, episode length and
    ``set`` overrides (then ``overrides``), replaying its trace window from the start.

    Raises :class:`TraceFileMissing` when the trace file is absent, SuiteError otherwise."""
    suite_dir = suite.source.parent if suite.source is not None else None
    folders = trace_search_path(suite_dir) if folders is None else folders
    over: dict[str, Any] = {"arrivals.random_start": False, "arrivals.scale": task.scale}
    if task.episode_steps is not None:
        over["episode_steps"] = task.episode_steps
    over.update({f"exit_drift.{k}": v for k, v in task.exit_drift.items()})
    try:
        over.update(parse_assignments(task.set, f"{task.where}.set"))
        for key in overrides or {}:
            _check_not_reserved("--set", key)
        over.update(overrides or {})
        base = load_scenario(_scenario_ref(task, suite_dir), **over)
        needed_s = base.episode_steps * base.control_interval_s / base.arrivals.time_warp
        trace = _episode_trace(task, needed_s, folders)
        return base.with_overrides(**{"arrivals.trace": trace,
                                      "name": f"{suite.name}/{task.name}"})
    except TraceFileMissing:
        raise
    except SuiteError as exc:
        raise SuiteError(f"{_label(suite)}: {exc}") from exc
    except (ScenarioError, ValueError, TypeError, FileNotFoundError) as exc:
        raise SuiteError(f"{_label(suite)}: {task.where}: {exc}") from exc


def _label(suite: Suite) -> str:
    return str(suite.source) if suite.source is not None else f"suite {suite.name!r}"


@dataclass(frozen=True)
class BuiltTask:
    """A task with its scenario, ready to run."""

    task: SuiteTask
    scenario: Scenario

    @property
    def name(self) -> str:
        return self.task.name


@dataclass(frozen=True)
class SkippedTask:
    """A task left out because its trace file is absent."""

    task: str
    split: str
    file: str
    message: str


def _print_skip(message: str) -> None:
    print(message, file=sys.stderr)


def build_tasks(suite: Suite, splits: Iterable[str] | None = None,
                names: Iterable[str] | None = None, *, folders: list[Path] | None = None,
                overrides: Mapping[str, Any] | None = None,
                on_skip: Callable[[str], None] | None = _print_skip,
                ) -> tuple[list[BuiltTask], list[SkippedTask]]:
    """The scenarios of the selected tasks and the tasks skipped for an absent trace file.

    Each skipped task is reported through ``on_skip`` (default: a line on stderr) with the
    task's name and the file; pass ``on_skip=None`` only when the caller reports them."""
    suite_dir = suite.source.parent if suite.source is not None else None
    folders = trace_search_path(suite_dir) if folders is None else folders
    built: list[BuiltTask] = []
    skipped: list[SkippedTask] = []
    for task in suite.select(splits, names):
        try:
            built.append(BuiltTask(task, build_scenario(task, suite, folders, overrides)))
        except TraceFileMissing as exc:
            message = (f"skipped task {task.name!r} ({task.split}): trace file {exc.file!r} "
                       f"is absent (looked in {', '.join(map(str, exc.folders))})")
            skipped.append(SkippedTask(task.name, task.split, exc.file, message))
            if on_skip is not None:
                on_skip(message)
    return built, skipped


# --------------------------------------------------------------------------------------------
# Listing a suite


def describe(task: SuiteTask) -> dict[str, str]:
    """A task's row for tables: split, scenario, trace, scale, exit drift, episode steps."""
    drift = ", ".join(
        f"schedule of {len(v)} points" if k == "schedule" else f"{k} {v:g}"
        for k, v in task.exit_drift.items()) or "preset's"
    return {"task": task.name, "split": task.split, "scenario": task.scenario,
            "trace": task.trace.label, "scale": f"{task.scale:g}", "exit drift": drift,
            "steps": "preset's" if task.episode_steps is None else str(task.episode_steps),
            "set": " ".join(task.set), "what": task.description}


def markdown_table(suite: Suite, splits: Iterable[str] | None = None) -> str:
    """The suite's tasks as a Markdown table (docs/SUITE.md's is made by this)."""
    rows = [describe(t) for t in suite.select(splits)]
    columns = ["task", "split", "scenario", "trace", "scale", "exit drift", "steps", "what"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[c] + (f" ({row['set']})" if c == "what" and row["set"]
                                          else "") for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """List a suite's tasks (a Markdown table) and the ones skipped on this machine."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("suite", help=f"shipped suite ({', '.join(available_suites())}) or path")
    parser.add_argument("--split", choices=SPLITS, action="append",
                        help="only this split (repeatable; default all)")
    args = parser.parse_args(argv)
    try:
        suite = load_suite(args.suite)
        print(f"suite {suite.name} (version {suite.version}): {suite.description}")
        print(markdown_table(suite, args.split))
        built, skipped = build_tasks(suite, args.split)
    except (SuiteError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(built)} tasks build here, {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
