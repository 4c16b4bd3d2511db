"""One policy interface for heuristics and trained agents, acting on all N envs at once.

A policy sees only what a real controller sees: the observation (N, D) and the monitored
signals of the last interval (the vector env's ``info`` arrays). It never sees the trace's
future (except ``oracle``, :mod:`agents.oracle`: a perfect-foresight bound, starred in tables).
It may use the scenario for offline knowledge (prices, profiled service times, limits).

What the routing half of the action means depends on the scenario's ``routing.mode``: function
shares (``share``) or VM rate caps as fractions of the running VMs' capacity (``cap``). Each
policy lists the modes it acts in (``routing_modes``) and refuses the others when built.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from serflow_env.scenario import Scenario

Info = Mapping[str, np.ndarray]


class Policy(ABC):
    """Maps a batch of observations (and last-interval info) to a batch of actions."""

    name: str = "policy"
    routing_modes: tuple[str, ...] = ("share",)  # the routing.mode values it acts in

    def __init__(self, scenario: Scenario) -> None:
        mode = scenario.routing.mode
        if mode not in self.routing_modes:
            raise ValueError(f"policy {self.name!r}: routing.mode={mode!r} is not supported; "
                             f"allowed {', '.join(self.routing_modes)}")
        self.scenario = scenario
        self.num_stages = scenario.num_stages
        self.num_envs = 0
        self.cap_routing = mode == "cap"
        self.max_cap = scenario.routing.max_cap

    def reset(self, num_envs: int) -> None:
        """Start new episodes for ``num_envs`` envs (clears any per-env memory)."""
        self.num_envs = num_envs

    def episode_options(self, options: Mapping[str, Any] | None) -> None:
        """The env's reset options of the episodes just started (``start_s``,
        ``trace_index``), told after :meth:`reset`, for policies that keep the trace clock;
        ignored by default."""
        return None

    @abstractmethod
    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        """Actions (N, 2K) float32 in [-1, 1] for observations (N, D).

        ``info`` is the vector env's info of the last step (arrays with a leading N axis), or
        None right after reset.
        """

    # helpers shared by heuristics: the inverse of the env's action decoding
    def vm_only_route(self) -> float:
        """The routing that keeps everything on VMs: share 0, or the largest cap."""
        return self.max_cap if self.cap_routing else 0.0

    def room_cap(self, room_rps: np.ndarray, running: np.ndarray,
                 capacity_rps: np.ndarray) -> np.ndarray:
        """Cap mode: a rate the running VMs may take (requests/s, (N, K)) as the cap, a
        fraction of their capacity ``running * capacity_rps`` (0 where none runs)."""
        full = running * capacity_rps
        return np.where(full > 0, np.maximum(room_rps, 0.0) / np.maximum(full, 1e-12), 0.0)

    def encode(self, vm_targets: np.ndarray, routing: np.ndarray) -> np.ndarray:
        """Actions for VM targets (N, K) and the routing (N, K): function shares in share
        mode, VM rate caps (fractions of the running VMs' capacity, up to ``max_cap``) in cap
        mode (exact inverse of the env's decoding)."""
        max_vms = np.array([s.max_vms for s in self.scenario.stages], dtype=float)
        vms = np.clip(np.asarray(vm_targets, dtype=float), 0, max_vms)
        a_vm = vms / max_vms * 2.0 - 1.0
        top = self.max_cap if self.cap_routing else 1.0
        a_route = np.clip(np.asarray(routing, dtype=float), 0.0, top) / top * 2.0 - 1.0
        return np.concatenate([a_vm, a_route], axis=1).astype(np.float32)


PolicyFactory = Callable[[Scenario, str], Policy]
_REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(prefix: str, factory: PolicyFactory) -> None:
    """Register a factory for specs ``prefix`` or ``prefix:ARG`` (e.g. ``ppo:run/model.zip``)."""
    _REGISTRY[prefix] = factory


def make_policy(spec: str, scenario: Scenario, **kwargs: Any) -> Policy:
    """Build a policy from a spec such as ``serflow``, ``libra`` or ``ppo:PATH.zip``."""
    import agents  # noqa: F401  (registers the built-in policies)

    prefix, _, arg = spec.partition(":")
    if prefix not in _REGISTRY:
        raise ValueError(f"unknown policy {spec!r}; known: {sorted(_REGISTRY)} "
                         "(trained agents as ppo:PATH.zip, sac:PATH.zip or "
                         "recurrentppo:PATH.zip)")
    return _REGISTRY[prefix](scenario, arg, **kwargs)


def known_policies() -> list[str]:
    import agents  # noqa: F401

    return sorted(_REGISTRY)


def split_policy_specs(tokens: Sequence[str]) -> list[str]:
    """Policy specs from command-line tokens, separated by spaces and/or commas.

    A comma separates two specs only where the text after it starts a known policy, so a
    spec's own commas stay (``fixed:3/2/1,0.2``): ``["serflow,libra", "fixed:4,0.3"]`` gives
    ``["serflow", "libra", "fixed:4,0.3"]``.
    """
    known = set(known_policies())
    specs: list[str] = []
    for token in tokens:
        pieces = [piece.strip() for piece in str(token).split(",") if piece.strip()]
        current: str | None = None
        for piece in pieces:
            if current is None or piece.partition(":")[0] in known:
                if current:
                    specs.append(current)
                current = piece
            else:
                current = f"{current},{piece}"
        if current:
            specs.append(current)
    return specs
