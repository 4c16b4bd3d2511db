"""Trained agents as :class:`~agents.policy.Policy`: ``ppo:PATH.zip``, ``sac:PATH.zip``,
``recurrentppo:PATH.zip`` (sb3-contrib's RecurrentPPO: its LSTM state is carried per env and
reset at episode starts).

The policy loads the SB3 zip and the VecNormalize statistics saved beside it, normalises
observations itself and acts deterministically, so ``evaluate.py`` and the reference simulator
run it like any heuristic. Observation features that are divided by the scenario's reference
rate (arrival rate, its spread, stage rates, warm containers) are put back on the training
run's reference rate (``run.json`` beside the model), so the agent sees absolute request rates
whatever trace the evaluation scenario uses.
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.policy import Info, Policy, register_policy
from agents.rl.actions import fresh_episodes, make_action_map
from agents.rl.clock import PolicyClock
from serflow_env.context import ContextSpec
from serflow_env.normalisation import reference_rate_factors, reward_reference_rate
from serflow_env.observation import observation_size
from serflow_env.scenario import RoutingConfig, Scenario

RUN_FILE = "run.json"


@dataclass(frozen=True)
class ObsNormalizer:
    """SB3 VecNormalize's observation transform, frozen: clip((x - mean) / sqrt(var + eps))."""

    mean: np.ndarray
    var: np.ndarray
    clip: float
    epsilon: float

    @classmethod
    def from_vec_normalize(cls, vn: Any) -> ObsNormalizer | None:
        if not getattr(vn, "norm_obs", False):
            return None
        rms = vn.obs_rms
        return cls(np.array(rms.mean, dtype=np.float64), np.array(rms.var, dtype=np.float64),
                   float(vn.clip_obs), float(vn.epsilon))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        z = (obs - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(z, -self.clip, self.clip).astype(np.float32)


class RLPolicy(Policy):
    """A stable-baselines3 model acting deterministically on normalised observations."""

    name = "rl"

    def __init__(self, scenario: Scenario, model: Any, normalizer: ObsNormalizer | None,
                 train_reference_rate: float | None = None,
                 action_map: Mapping[str, Any] | str | None = None, frame_stack: int = 1,
                 name: str = "rl", train_routing_mode: str = "share",
                 context: Mapping[str, Any] | str | None = None) -> None:
        """``context``: the run's context features (:mod:`serflow_env.context`), appended to
        the observation from the trace clock the policy keeps (:class:`PolicyClock`)."""
        # the load map turns the agent's action into either mode's routing; a raw agent's
        # routing half means what it meant in training
        kind = action_map if isinstance(action_map, str) else (action_map or {}).get("kind")
        self.name = name
        self.routing_modes = (("share", "cap") if kind in ("load", "serflow")
                              else (train_routing_mode,))
        super().__init__(scenario)
        expected = 2 * scenario.num_stages
        spec = ContextSpec.from_value(context)
        obs_dim = observation_size(scenario.num_stages) + spec.size()
        if model.observation_space.shape != (obs_dim * frame_stack,):
            raise ValueError(
                f"model: its observation space {model.observation_space.shape} does not fit "
                f"scenario {scenario.name!r} ({obs_dim} features x {frame_stack} frames)")
        if model.action_space.shape != (expected,):
            raise ValueError(
                f"model: its action space {model.action_space.shape} does not fit scenario "
                f"{scenario.name!r} with {scenario.num_stages} stages (expected ({expected},))")
        self.model = model
        self.normalizer = normalizer
        self.rescale = (None if train_reference_rate is None
                        else reference_rate_factors(scenario, train_reference_rate))
        if action_map is not None and train_reference_rate is None:
            raise ValueError("action_map needs the training reference rate (run.json)")
        self.action_map = make_action_map(action_map, scenario, train_reference_rate or 1.0)
        self.frame_stack = frame_stack
        self.history = np.zeros((0, obs_dim * frame_stack))
        self.name = name
        self.clock = (PolicyClock(scenario, spec, train_reference_rate or 1.0)
                      if spec.enabled else None)
        self.recurrent = hasattr(model.policy, "lstm_actor")  # sb3-contrib's RecurrentPPO
        self.lstm_state: Any = None
        self.calls = 0

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self.action_map.reset(num_envs)
        self.history = np.zeros((num_envs, self.history.shape[1]))
        self.lstm_state = None
        self.calls = 0
        if self.clock is not None:
            self.clock.reset()

    def episode_options(self, options: Mapping[str, Any] | None) -> None:
        if self.clock is not None:
            self.clock.reset(options)

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float64)
        if self.rescale is not None:
            x = x * self.rescale  # observation in training units
        fresh = fresh_episodes(x)
        seen = x if self.clock is None else np.concatenate([x, self.clock(x.shape[0])], axis=1)
        norm = self.normalizer
        if norm is not None and self.frame_stack > 1 and norm.mean.shape[0] == seen.shape[1]:
            z = self._stack(norm(seen), fresh)  # rl-zoo3 order: normalise, then stack
        else:
            z = self._stack(seen, fresh)
            z = norm(z) if norm is not None else z.astype(np.float32)
        if self.recurrent:
            # episodes start at reset and every episode_steps after (the env's autoresets)
            start = np.full(x.shape[0], self.calls % self.scenario.episode_steps == 0)
            actions, self.lstm_state = self.model.predict(
                z, state=self.lstm_state, episode_start=start, deterministic=True)
        else:
            actions, _ = self.model.predict(z, deterministic=True)
        self.calls += 1
        return self.action_map(x, np.asarray(actions, dtype=np.float32))


    def _stack(self, x: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """The last ``frame_stack`` observations, oldest first, as SB3's VecFrameStack does
        (zeros before an episode's first observation, ``fresh`` rows)."""
        if self.frame_stack == 1:
            return x
        if self.history.shape[0] != x.shape[0]:
            self.history = np.zeros((x.shape[0], self.history.shape[1]))
        self.history[fresh] = 0.0
        d = x.shape[1]
        self.history = np.concatenate([self.history[:, d:], x], axis=1)
        return self.history


def current_policy(model: Any, scenario: Scenario, train_reference_rate: float,
                   action_map: dict[str, Any] | None = None,
                   frame_stack: int | None = None,
                   context: Mapping[str, Any] | None = None) -> RLPolicy:
    """The model being trained, with a frozen copy of its current observation statistics
    (``frame_stack`` None: inferred from the model's observation size)."""
    if frame_stack is None:
        frame_stack = infer_frame_stack(model, scenario, context)
    vn = model.get_vec_normalize_env()
    normalizer = ObsNormalizer.from_vec_normalize(vn) if vn is not None else None
    return RLPolicy(scenario, model, normalizer, train_reference_rate, action_map,
                    frame_stack=frame_stack, name="agent",
                    train_routing_mode=scenario.routing.mode, context=context)


# --------------------------------------------------------------------------------------------
# Loading from disk


def find_vecnormalize(model_path: Path) -> Path | None:
    """The VecNormalize stats saved with ``model_path``, or None.

    Looked up, in order: ``<stem>_vecnormalize.pkl`` (best model), the CheckpointCallback name
    ``<prefix>_vecnormalize_<N>_steps.pkl``, ``vecnormalize.pkl`` in the same folder, and
    rl-zoo3's ``<stem>/vecnormalize.pkl``.
    """
    folder, stem = model_path.parent, model_path.stem
    candidates = [folder / f"{stem}_vecnormalize.pkl"]
    match = re.fullmatch(r"(?P<prefix>.+)_(?P<steps>\d+)_steps", stem)
    if match:
        candidates.append(folder / f"{match['prefix']}_vecnormalize_{match['steps']}_steps.pkl")
    candidates += [folder / "vecnormalize.pkl", folder / stem / "vecnormalize.pkl"]
    return next((c for c in candidates if c.is_file()), None)


def read_run_info(model_path: Path) -> dict[str, Any]:
    """``run.json`` written by train.py beside the model (or one folder up), else {}."""
    for folder in (model_path.parent, model_path.parent.parent):
        path = folder / RUN_FILE
        if path.is_file():
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
    return {}


def load_normalizer(path: Path) -> ObsNormalizer | None:
    with open(path, "rb") as fh:
        vn = pickle.load(fh)  # VecNormalize pickles without its venv
    return ObsNormalizer.from_vec_normalize(vn)


def algo_class(algo: str) -> type:
    from stable_baselines3 import PPO, SAC

    if algo == "recurrentppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    classes = {"ppo": PPO, "sac": SAC}
    if algo not in classes:
        raise ValueError(f"algo {algo!r}; allowed {sorted(classes)}")
    return classes[algo]


def load_rl_policy(algo: str, scenario: Scenario, path: str, **kwargs: Any) -> RLPolicy:
    """Factory for ``ppo:PATH.zip`` / ``sac:PATH.zip``."""
    if not path:
        raise ValueError(f"policy spec {algo}: give the model file as {algo}:PATH.zip")
    model_path = Path(path)
    if model_path.suffix != ".zip" and model_path.with_suffix(".zip").is_file():
        model_path = model_path.with_suffix(".zip")
    if not model_path.is_file():
        raise FileNotFoundError(f"policy spec {algo}:{path}: model file not found")
    saved = saved_algo(model_path)
    if saved is not None and saved != algo:
        raise ValueError(f"policy spec {algo}:{path}: the file holds a {saved.upper()} model; "
                         f"use {saved}:{path}")
    custom = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    try:
        model = algo_class(algo).load(str(model_path), device="cpu", custom_objects=custom)
    except (OSError, EOFError, KeyError, AttributeError, zipfile.BadZipFile) as exc:
        raise ValueError(f"policy spec {algo}:{path}: not a readable {algo.upper()} model "
                         f"({type(exc).__name__}: {exc})") from exc
    stats = find_vecnormalize(model_path)
    normalizer = load_normalizer(stats) if stats is not None else None
    run = read_run_info(model_path)
    if stats is None and run.get("normalize", True):
        warnings.warn(f"{model_path}: no VecNormalize stats found beside it; acting on raw "
                      "observations", stacklevel=2)
    frame_stack = run.get("frame_stack")
    if frame_stack is None:  # e.g. an rl-zoo3 model
        frame_stack = infer_frame_stack(model, scenario, run.get("context"))
    # the routing mode it was trained in: run.json's (train.py runs before it was recorded
    # trained in share mode); without run.json (e.g. rl-zoo3) the env's default
    mode = run.get("routing_mode", "share") if run else RoutingConfig().mode
    return RLPolicy(scenario, model, normalizer, run.get("reference_rate"),
                    run.get("action_map"), frame_stack=int(frame_stack),
                    name=f"{algo}:{model_path}", train_routing_mode=mode,
                    context=run.get("context"))


def saved_algo(model_path: Path) -> str | None:
    """Which algorithm (``ppo``/``sac``/``recurrentppo``) saved the SB3 zip, from its ``data``
    entry (PPO has ``gae_lambda``, SAC ``buffer_size``, RecurrentPPO a recurrent policy class);
    None if the file does not say."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if "Recurrent" in str(data.get("policy_class", "")):
        return "recurrentppo"
    if "gae_lambda" in data:
        return "ppo"
    if "buffer_size" in data:
        return "sac"
    return None


def infer_frame_stack(model: Any, scenario: Scenario,
                      context: Mapping[str, Any] | str | None = None) -> int:
    """Frames the model's observation stacks, from its size and the scenario's features
    (and the run's context features)."""
    size = observation_size(scenario.num_stages) + ContextSpec.from_value(context).size()
    return max(1, model.observation_space.shape[0] // size)


def _factory(algo: str):  # noqa: ANN202
    def make(scenario: Scenario, arg: str, **kwargs: Any) -> RLPolicy:
        return load_rl_policy(algo, scenario, arg, **kwargs)
    return make


class LoadMapPolicy(Policy):
    """Ablation: the ``load`` action map with a constant zero agent action (no learning).

    What the map alone does (utilisation 0.75, routing cap 0.7 of running capacity, 300 s
    scale-in hold), so results can separate the map's share from what the agent learned.
    """

    name = "load-map"
    routing_modes = ("share", "cap")

    def __init__(self, scenario: Scenario, reference_rate: float | None = None,
                 **settings: float) -> None:
        """``settings``: the map's own (``utilisation``, ``route_mid``, ``hold_s``, ...)."""
        super().__init__(scenario)
        ref = reference_rate or reward_reference_rate(scenario)
        self.action_map = make_action_map({"kind": "load", **settings}, scenario, ref)

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self.action_map.reset(num_envs)

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        zero = np.zeros((obs.shape[0], 2 * self.num_stages), dtype=np.float32)
        return self.action_map(np.asarray(obs, dtype=np.float64), zero)


def _load_map(scenario: Scenario, arg: str, **kwargs: Any) -> LoadMapPolicy:
    if arg:
        raise ValueError(f"policy 'load-map' takes no argument after ':', got {arg!r}")
    return LoadMapPolicy(scenario, **kwargs)


register_policy("ppo", _factory("ppo"))
register_policy("sac", _factory("sac"))
register_policy("recurrentppo", _factory("recurrentppo"))
register_policy("load-map", _load_map)
