"""Configuration of RL training: rl-zoo3 style hyperparameter files and trace specs.

Hyperparameters live in ``agents/hyperparams/{ppo,sac,recurrentppo}.yml`` keyed by the env
id, in the format rl-zoo3 reads (``n_envs``, ``n_timesteps``, ``policy``, ``normalize``,
``frame_stack``, ``policy_kwargs`` as a ``dict(...)`` string, ``lin_3e-4`` schedules,
``env_kwargs``; plus this project's ``context``, :mod:`serflow_env.context`), so
``python -m rl_zoo3.train -conf agents/hyperparams/ppo.yml`` and ``train.py`` share one source
of truth.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from serflow_env import ENV_ID
from serflow_env.assignments import parse_value
from serflow_env.traces import Trace

HYPERPARAMS_DIR = Path(__file__).resolve().parent.parent / "hyperparams"
ALGOS = ("ppo", "sac", "recurrentppo")
ON_POLICY = ("ppo", "recurrentppo")  # trained in whole rollouts of n_steps x n_envs

#: keys of the yml that are not constructor arguments of the SB3 algorithm
ZOO_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "env_kwargs", "frame_stack",
            "context")
SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf")


def check_algo(algo: str) -> str:
    if algo not in ALGOS:
        raise ValueError(f"--algo={algo!r}; allowed {list(ALGOS)}")
    return algo


def load_hyperparams(algo: str, path: str | Path | None = None,
                     env_id: str = ENV_ID) -> dict[str, Any]:
    """The yml entry for ``env_id`` (a fresh dict) from ``path`` or the shipped file."""
    path = Path(path) if path is not None else HYPERPARAMS_DIR / f"{check_algo(algo)}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"hyperparameter file not found: {path}")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if env_id not in data:
        raise ValueError(f"{path}: no entry for env id {env_id!r}; keys: {sorted(data)}")
    return dict(data[env_id])


def _eval_literal(text: str, field: str) -> Any:
    """Evaluate ``dict(a=1, b=[64, 64])`` or a Python literal without ``eval``.

    Only literals, ``dict(...)`` calls and ``nn.ReLU``-style activation names are accepted.
    """
    from torch import nn

    def conv(node: ast.AST) -> Any:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "dict" and not node.args:
            return {kw.arg: conv(kw.value) for kw in node.keywords}
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "nn" and hasattr(nn, node.attr):
            return getattr(nn, node.attr)
        if isinstance(node, ast.Dict):
            return {conv(k): conv(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [conv(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        return ast.literal_eval(node)

    try:
        return conv(ast.parse(text, mode="eval").body)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"hyperparameter {field}={text!r}: expected a literal or "
                         f"dict(...) expression: {exc}") from exc


def linear_schedule(initial: float) -> Callable[[float], float]:
    """rl-zoo3's ``lin_X``: X * progress_remaining."""
    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial
    return schedule


def split_hyperparams(hp: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(zoo settings, algorithm kwargs) from a yml entry, with schedules and kwargs decoded."""
    zoo = {k: hp[k] for k in ZOO_KEYS if k in hp}
    algo_kwargs: dict[str, Any] = {}
    for key, value in hp.items():
        if key in ZOO_KEYS:
            continue
        if key in SCHEDULE_KEYS and isinstance(value, str):
            value = parse_value(value)  # e.g. 3e-4 from a yml without !!float
        if key in SCHEDULE_KEYS and isinstance(value, str):
            kind, _, number = value.partition("_")
            if kind != "lin":
                raise ValueError(f"hyperparameter {key}={value!r}: expected a number or lin_X")
            value = linear_schedule(float(number))
        elif key in ("policy_kwargs", "replay_buffer_kwargs") and isinstance(value, str):
            value = _eval_literal(value, key)
        elif key == "train_freq" and isinstance(value, list):
            value = tuple(value)
        algo_kwargs[key] = value
    normalize = zoo.get("normalize", False)
    if isinstance(normalize, str):
        normalize = _eval_literal(normalize, "normalize")
    if normalize is True:
        normalize = {"norm_obs": True, "norm_reward": True}
    zoo["normalize"] = dict(normalize) if normalize else {}
    if zoo["normalize"] and "gamma" in algo_kwargs:
        zoo["normalize"]["gamma"] = algo_kwargs["gamma"]
    return zoo, algo_kwargs


_WINDOW = re.compile(r"^(?P<path>.+?)@(?P<start>\d+(\.\d*)?)?:(?P<end>\d+(\.\d*)?)?$")


def parse_trace_spec(spec: str) -> str | Trace:
    """A trace file, optionally windowed: ``PATH`` or ``PATH@START:END`` (seconds).

    ``wits_logs.txt@0:27000`` is the first 27,000 s of the file, ``...@27000:`` the rest. A
    plain path is returned as it is (the env resolves it, also under ``traces/``).
    """
    match = _WINDOW.match(spec)
    if not match:
        if "@" in spec:
            raise ValueError(f"--trace {spec!r}: expected PATH or PATH@START:END in seconds")
        return spec
    from serflow_env.arrivals import resolve_trace

    trace = resolve_trace(match["path"])  # also finds the shipped traces/ by file name
    start = float(match["start"] or 0.0)
    end = float(match["end"]) if match["end"] else trace.duration_s
    if not 0 <= start < end <= trace.duration_s:
        raise ValueError(f"--trace {spec!r}: window [{start:g}, {end:g}) must lie within "
                         f"[0, {trace.duration_s:g}] s and be non-empty")
    window = trace.window(start, end - start)
    return Trace(window.values, window.resolution_s, window.arrival_process,
                 f"{trace.name}@{start:g}:{end:g}", window.origin_s)


def scaled_traces(specs: Sequence[str], scales: Sequence[float]) -> list[str | Trace]:
    """Every trace at every traffic scale (scale 1 kept as it is; others as Poisson rates)."""
    from serflow_env.arrivals import resolve_trace

    result: list[str | Trace] = []
    for spec in specs:
        base = parse_trace_spec(spec)
        for scale in scales:
            if not 0 < scale <= 1000:
                raise ValueError(f"--trace-scales: {scale} is out of range; allowed (0, 1000]")
            if scale == 1.0:
                result.append(base)
                continue
            trace = resolve_trace(base)
            result.append(Trace(trace.values * scale, trace.resolution_s, "poisson",
                                f"{trace.name}x{scale:g}", trace.origin_s))
    return result
