"""Action modes: how the agent's action maps onto the env's action (agent side; the env is
unchanged).

One array implementation per mode (:class:`ActionMap`, (N, 2K) actions and (N, D) raw
observations) behind three thin shells, so every mode works wherever the env does:
:class:`ActionMapWrapper`, a Gymnasium ``ActionWrapper`` of the single env (rl-zoo3's
``env_wrapper``); :class:`VectorActionMapWrapper`, a Gymnasium ``VectorActionWrapper`` of the
native vector env (RLlib, CleanRL-style loops); and
:class:`agents.rl.vec_actions.ActionMapVecWrapper`, an SB3 ``VecEnvWrapper`` of the vector env's
SB3 adapter (``train.py``). Every mode keeps the env's action space, ``Box(-1, 1, (2K,))``; the
agent's ``a[k]`` is about stage k's VMs and ``a[K + k]`` about its routing. Select one with
``train.py --action-map KIND[:KEY=VALUE...]``; a trained model's ``run.json`` records it and
``agents.make_policy("ppo:...")`` applies it again. This module does not import
stable-baselines3, so command lines can read action-map specs without loading torch.

``raw``: the env's own action (absolute VM target per stage; function share or VM rate cap per
stage, by ``routing.mode``).

``delta`` (:class:`DeltaMap`): ``a[k]`` *changes* stage k's VM target by ``a[k] * step`` VMs
per interval (at most ``step``), from the target sent last interval (read from the
observation's previous action; at an episode start from the VMs running and booting); the
target is continuous and the env rounds it, so a small steady action adds up (0.1 VM per
interval is a VM every 10 intervals) and a deterministic policy can act as finely as a
stochastic one; the routing half is the env's own. The target is a state the agent moves step
by step, so exploration noise nudges it instead of jumping it across the range every
interval.

``serflow`` (:class:`SerflowResidualMap`): a residual on the SERFLOW heuristic
(:class:`agents.heuristics.serflow.Serflow`), which the map runs on the monitored signals it
reads back from the observation. ``a[k]`` sets stage k's utilisation target,
``utilisation * span ** a[k]`` (at most 1), which sizes both the heuristic's VM count rule and
its routing room; ``a[K + k]`` multiplies stage k's routing room (the rate the running VMs may
take) by ``route_span ** a[K + k]``. A zero action is the heuristic's own decision, so learning
starts from it and the map's ablation is the heuristic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from agents.heuristics.profiling import profile_stages
from agents.heuristics.serflow import Serflow
from serflow_env.assignments import parse_assignments
from serflow_env.normalisation import reward_reference_rate
from serflow_env.observation import GLOBAL_FEATURES, column
from serflow_env.scenario import Scenario

ACTION_MAPS = ("raw", "delta", "load", "serflow")


def fresh_episodes(obs: np.ndarray) -> np.ndarray:
    """Envs whose (raw, unstacked) observation is a reset one: nothing monitored yet, (N,)."""
    return ~np.any(obs[:, :len(GLOBAL_FEATURES)] != 0.0, axis=1)


class ActionMap:
    """Agent action (N, 2K) in [-1, 1] + raw observation (training units) -> env action."""

    kind = "raw"

    def __init__(self, scenario: Scenario, reference_rate: float) -> None:
        self.num_stages = scenario.num_stages
        self.reference_rate = float(reference_rate)

    def reset(self, num_envs: int) -> None:
        """Forget per-env memory (new episodes everywhere)."""

    def __call__(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(actions, dtype=np.float32), -1.0, 1.0)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind}


class LoadRelativeMap(ActionMap):
    """Utilisation-style actions with VM hysteresis (see the module docstring)."""

    kind = "load"

    def __init__(self, scenario: Scenario, reference_rate: float, utilisation: float = 0.75,
                 span: float = 2.0, hold_s: float = 300.0, route_mid: float = 0.7,
                 route_half: float = 0.3, smooth: float = 1.0) -> None:
        super().__init__(scenario, reference_rate)
        checks = (("utilisation", utilisation, 0.05, 1.0), ("span", span, 1.0, 20.0),
                  ("hold_s", hold_s, 0.0, 86_400.0), ("route_mid", route_mid, 0.05, 1.0),
                  ("route_half", route_half, 0.0, 1.0), ("smooth", smooth, 0.01, 1.0))
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ValueError(f"action map {name}={value!r}; allowed [{low}, {high}]")
        self.utilisation, self.span, self.hold_s = float(utilisation), float(span), float(hold_s)
        self.route_mid, self.route_half = float(route_mid), float(route_half)
        self.smooth = float(smooth)
        profile = profile_stages(scenario)
        self.capacity = profile.vm_capacity_rps
        self.slots = profile.slots
        self.max_vms = profile.max_vms.astype(float)
        self.interval = scenario.control_interval_s
        self.cap_routing = scenario.routing.mode == "cap"
        self.max_cap = scenario.routing.max_cap
        self.hold_steps = math.ceil(hold_s / self.interval - 1e-9)
        # the observation columns the map reads: stage rates, VMs running, queues (K each)
        self.gather = np.concatenate([column(name, num_stages=self.num_stages)
                                      for name in ("stage_rate", "vms_running", "queue")])
        self.reset(0)

    def reset(self, num_envs: int) -> None:
        self.target = np.zeros((num_envs, self.num_stages))
        self.lower_for = np.zeros((num_envs, self.num_stages), dtype=np.int64)
        self.provision = np.zeros((num_envs, self.num_stages))  # smoothed provisioning action

    def __call__(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        n, k = a.shape[0], self.num_stages
        if self.target.shape[0] != n:
            self.reset(n)
        obs = np.asarray(obs)
        fresh = fresh_episodes(obs)
        provision = self.smooth * a[:, :k] + (1.0 - self.smooth) * self.provision
        if fresh.any():  # episode starts: no memory
            self.target[fresh] = 0.0
            self.lower_for[fresh] = 0
            provision[fresh] = a[fresh, :k]
        self.provision = provision
        signals = obs[:, self.gather].astype(np.float64)  # the three (N, K) blocks at once
        load = signals[:, :k] * self.reference_rate  # requests/s
        util = self.utilisation * self.span ** (-provision)
        wanted = np.minimum(np.round(load / (self.capacity * util)), self.max_vms)
        lower = wanted < self.target
        self.lower_for = np.where(lower, self.lower_for + 1, 0)
        scale_in = lower & (self.lower_for >= self.hold_steps)
        self.target = np.where((wanted > self.target) | scale_in, wanted, self.target)
        self.lower_for[scale_in] = 0
        running = signals[:, k:2 * k] * self.max_vms
        queued = signals[:, 2 * k:] * self.slots * self.max_vms / self.interval
        route = np.clip(self.route_mid + self.route_half * a[:, k:], 0.05, 1.0)
        room = np.maximum(running * self.capacity * route - queued, 0.0)
        a_vm = 2.0 * self.target / self.max_vms - 1.0
        if self.cap_routing:
            full = running * self.capacity
            cap = np.where(full > 0, room / np.maximum(full, 1e-12), route)
            a_share = 2.0 * np.minimum(cap, self.max_cap) / self.max_cap - 1.0
            return np.concatenate([a_vm, a_share], axis=1).astype(np.float32)
        to_vm = np.where(load > 0, np.minimum(load, room) / np.maximum(load, 1e-12),
                         (running > 0).astype(float))
        a_share = 2.0 * (1.0 - to_vm) - 1.0
        return np.concatenate([a_vm, a_share], axis=1).astype(np.float32)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "utilisation": self.utilisation, "span": self.span,
                "hold_s": self.hold_s, "route_mid": self.route_mid,
                "route_half": self.route_half, "smooth": self.smooth}


class DeltaMap(ActionMap):
    """Relative VM targets: each interval moves stage k's (continuous) target by
    ``a[k] * step`` VMs (module docstring); memoryless, as the target sent last interval is in
    the observation (the env's previous action, float32: its rounding error is ~1e-6 VMs)."""

    kind = "delta"

    def __init__(self, scenario: Scenario, reference_rate: float, step: float = 1.0) -> None:
        super().__init__(scenario, reference_rate)
        if not 0.01 <= step <= 10_000:
            raise ValueError(f"action map step={step!r}; allowed [0.01, 10000] VMs")
        self.step = float(step)
        self.max_vms = profile_stages(scenario).max_vms.astype(float)
        k = self.num_stages
        self.prev_vm = column("prev_vm_action", num_stages=k)
        self.vms = np.concatenate([column("vms_running", num_stages=k),
                                   column("vms_booting", num_stages=k)])

    def __call__(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        obs = np.asarray(obs)
        k = self.num_stages
        base = (obs[:, self.prev_vm].astype(np.float64) + 1.0) * 0.5 * self.max_vms
        fresh = fresh_episodes(obs)
        if fresh.any():  # no action yet: start from the VMs there are
            vms = obs[fresh][:, self.vms].astype(np.float64)
            base[fresh] = np.rint((vms[:, :k] + vms[:, k:]) * self.max_vms)
        target = np.clip(base + a[:, :k] * self.step, 0.0, self.max_vms)
        a_vm = 2.0 * target / self.max_vms - 1.0  # the env rounds it to whole VMs
        return np.concatenate([a_vm, a[:, k:]], axis=1).astype(np.float32)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step}


class SerflowResidualMap(ActionMap):
    """The agent's action as a per-stage adjustment of the SERFLOW heuristic (module
    docstring); keeps the heuristic's memory (rate trackers, scale-in hold) per env."""

    kind = "serflow"

    def __init__(self, scenario: Scenario, reference_rate: float, utilisation: float = 0.75,
                 span: float = 1.3, route_span: float = 1.5, scale_in_hold_s: float = 120.0,
                 burst_z: float = 1.0) -> None:
        super().__init__(scenario, reference_rate)
        checks = (("utilisation", utilisation, 0.05, 1.0), ("span", span, 1.0, 10.0),
                  ("route_span", route_span, 1.0, 10.0))
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ValueError(f"action map {name}={value!r}; allowed [{low}, {high}]")
        self.utilisation, self.span = float(utilisation), float(span)
        self.route_span, self.scale_in_hold_s = float(route_span), float(scale_in_hold_s)
        self.heuristic = Serflow(scenario, utilisation=utilisation,
                                 scale_in_hold_s=scale_in_hold_s, burst_z=burst_z)
        profile = self.heuristic.profile
        self.interval = scenario.control_interval_s
        k = self.num_stages
        self.rate_column = column("rate")
        self.gather = np.concatenate([column(name, num_stages=k) for name in
                                      ("stage_rate", "vms_running", "vms_booting", "queue")])
        # observation units back to the monitored signals: rates, VMs, queued requests
        self.scales = np.concatenate([
            np.full(k, self.reference_rate * self.interval), profile.max_vms,
            profile.max_vms, profile.slots * profile.max_vms]).astype(float)
        self.reset(0)

    def reset(self, num_envs: int) -> None:
        self.heuristic.reset(num_envs)

    def monitored(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """The info arrays the heuristic reads, rebuilt from the raw observation (training
        units): requests arrived and entering each stage, VMs running and booting, queues."""
        k = self.num_stages
        signals = obs[:, self.gather].astype(np.float64) * self.scales
        arrived = obs[:, self.rate_column].astype(np.float64) \
            * self.reference_rate * self.interval
        return {"requests_arrived": arrived, "stage_requests": signals[:, :k],
                "stage_vms_running": signals[:, k:2 * k],
                "stage_vms_booting": signals[:, 2 * k:3 * k], "stage_queue": signals[:, 3 * k:]}

    def __call__(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        obs = np.asarray(obs)
        n, k = a.shape[0], self.num_stages
        if self.heuristic.vm_targets.shape[0] != n:
            self.reset(n)
        fresh = fresh_episodes(obs)
        if fresh.all():
            self.heuristic.forget(fresh)
            return self.heuristic.initial_action(n).astype(np.float32)
        utilisation = np.minimum(self.utilisation * self.span ** a[:, :k], 1.0)
        room_scale = self.route_span ** a[:, k:]
        out = self.heuristic.decide(obs, self.monitored(obs), utilisation, room_scale)
        if fresh.any():  # episodes that restarted: as the heuristic after a reset
            self.heuristic.forget(fresh)
            out[fresh] = self.heuristic.initial_action(int(fresh.sum()))
        return out.astype(np.float32)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "utilisation": self.utilisation, "span": self.span,
                "route_span": self.route_span,
                "scale_in_hold_s": self.scale_in_hold_s,
                "burst_z": self.heuristic.burst_z}


#: train.py's settings of each map unless ``--action-map KIND:KEY=VALUE`` says otherwise
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {"raw": {}, "delta": {}, "load": {"smooth": 0.2},
                                              "serflow": {}}


def action_map_spec(kind: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The spec train.py saves: ``kind``, its training defaults, then ``args``."""
    if kind not in ACTION_MAPS:
        raise ValueError(f"--action-map={kind!r}; allowed {list(ACTION_MAPS)}")
    return {"kind": kind, **TRAIN_DEFAULTS[kind], **dict(args or {})}


def parse_action_map(text: str) -> dict[str, Any]:
    """``KIND[:KEY=VALUE...]`` (e.g. ``load:utilisation=0.8:hold_s=300``) into its spec."""
    kind, _, settings = str(text).partition(":")
    return action_map_spec(kind.strip(), parse_assignments(
        filter(None, settings.split(":")), f"--action-map {text!r}"))


def make_action_map(spec: Mapping[str, Any] | str | None, scenario: Scenario,
                    reference_rate: float) -> ActionMap:
    """An action map from its spec (``run.json``'s ``action_map``); None means raw."""
    if spec is None:
        return ActionMap(scenario, reference_rate)
    data = {"kind": spec} if isinstance(spec, str) else dict(spec)
    kind = data.pop("kind", "raw")
    if kind == "raw":
        return ActionMap(scenario, reference_rate)
    if kind == "load":
        return LoadRelativeMap(scenario, reference_rate, **data)
    if kind == "delta":
        return DeltaMap(scenario, reference_rate, **data)
    if kind == "serflow":
        return SerflowResidualMap(scenario, reference_rate, **data)
    raise ValueError(f"action map {kind!r}; allowed {list(ACTION_MAPS)}")


def env_action_map(env: gym.Env | gym.vector.VectorEnv, kind: str,
                   reference_rate: float | None, settings: Mapping[str, Any]) -> ActionMap:
    """The action map a wrapper of ``env`` puts in front of it: built for the env's scenario,
    at ``reference_rate`` or, if None, the scenario's (the rate its observation is normalised
    by)."""
    scenario = env.unwrapped.scenario
    ref = reward_reference_rate(scenario) if reference_rate is None else reference_rate
    return make_action_map({"kind": kind, **settings}, scenario, ref)


class VectorActionMapWrapper(gym.vector.VectorActionWrapper):
    """The native vector env (:class:`~serflow_env.SerflowVectorEnv`, or any vector env of
    the scenario) with an action map in front, for Gymnasium vector-env loops (RLlib,
    CleanRL). Same arguments as :class:`ActionMapWrapper`; it reads the raw observations, so
    wrap before any observation normalisation."""

    def __init__(self, env: gym.vector.VectorEnv, kind: str = "load",
                 reference_rate: float | None = None, **settings: Any) -> None:
        super().__init__(env)
        self.action_map = env_action_map(env, kind, reference_rate, settings)
        self._obs: np.ndarray | None = None

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.action_map.reset(self.num_envs)
        self._obs = obs
        return obs, info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(actions)
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def actions(self, actions: np.ndarray) -> np.ndarray:
        if self._obs is None:
            raise RuntimeError("VectorActionMapWrapper: step before reset")
        return self.action_map(self._obs, np.asarray(actions))


class ActionMapWrapper(gym.ActionWrapper):
    """The single env with an action map in front: the agent acts in the map's action space.

    Usable wherever Gymnasium wrappers go, e.g. rl-zoo3's ``env_wrapper`` hyperparameter::

        env_wrapper:
          - agents.rl.actions.ActionMapWrapper: {kind: load, smooth: 0.2}

    ``kind`` and ``settings`` are an action-map spec (:func:`make_action_map`);
    ``reference_rate`` defaults to the env scenario's (the rate its observation is normalised
    by). The map reads the raw observation, so wrap before any observation normalisation.
    """

    def __init__(self, env: gym.Env, kind: str = "load", reference_rate: float | None = None,
                 **settings: Any) -> None:
        super().__init__(env)
        self.action_map = env_action_map(env, kind, reference_rate, settings)
        self._obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.action_map.reset(1)
        self._obs = obs
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def action(self, action: np.ndarray) -> np.ndarray:
        if self._obs is None:
            raise RuntimeError("ActionMapWrapper: step before reset")
        return self.action_map(self._obs[None, :], np.asarray(action)[None, :])[0]
