"""Deterministic policies for checks and the fidelity harness: ``fixed:V,S`` and ``switch``.

``fixed:V,S``: V VMs and routing S at every stage, every step; ``V`` and ``S`` may be
per-stage lists joined by ``/`` (e.g. ``fixed:3/2/1,0.2``). S is the function share in [0, 1]
(``routing.mode: share``) or the VM rate cap as a fraction of the running VMs' capacity in
[0, ``routing.max_cap``] (``routing.mode: cap``). ``switch:STEP:V,S:V,S``: the first
fixed action before control step STEP, the second from it on (e.g. ``switch:30:0,1:4,0.1``).
"""

from __future__ import annotations

import numpy as np

from agents.policy import Info, Policy, register_policy
from serflow_env.scenario import Scenario


def _per_stage(text: str, num_stages: int, what: str, low: float, high: float) -> np.ndarray:
    parts = text.split("/")
    if len(parts) not in (1, num_stages):
        raise ValueError(f"{what}={text!r}: give one value or {num_stages} joined by '/'")
    try:
        values = np.array([float(p) for p in parts])
    except ValueError as exc:
        raise ValueError(f"{what}={text!r}: not a number") from exc
    if np.any(values < low) or np.any(values > high) or not np.all(np.isfinite(values)):
        raise ValueError(f"{what}={text!r}: allowed range [{low}, {high}]")
    return np.broadcast_to(values, (num_stages,)).copy()


def parse_fixed(arg: str, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """``V,S`` into VM targets (K,) and the routing (K,): function shares, or VM rate caps in
    cap mode; checked against the scenario."""
    vms_text, sep, share_text = arg.partition(",")
    if not sep:
        raise ValueError(f"fixed policy argument {arg!r}: expected 'VMS,SHARE' "
                         "(e.g. fixed:4,0.3 or fixed:3/2/1,0.2)")
    k = scenario.num_stages
    max_vms = min(s.max_vms for s in scenario.stages)
    vms = _per_stage(vms_text, k, "VMS", 0, max(s.max_vms for s in scenario.stages))
    for i, s in enumerate(scenario.stages):
        if vms[i] > s.max_vms or not float(vms[i]).is_integer():
            raise ValueError(f"VMS[{i}]={vms[i]:g}: expected an integer in [0, {s.max_vms}] "
                             f"(stages[{i}].max_vms); smallest max_vms is {max_vms}")
    if scenario.routing.mode == "cap":
        return vms, _per_stage(share_text, k, "CAP", 0.0, scenario.routing.max_cap)
    return vms, _per_stage(share_text, k, "SHARE", 0.0, 1.0)


class FixedPolicy(Policy):
    """The same VM targets and routing at every step (``fixed:V,S``)."""

    name = "fixed"
    routing_modes = ("share", "cap")

    def __init__(self, scenario: Scenario, arg: str) -> None:
        super().__init__(scenario)
        vms, shares = parse_fixed(arg, scenario)
        self.action = self.encode(vms[None], shares[None])[0]

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        return np.tile(self.action, (obs.shape[0], 1))


class SwitchPolicy(Policy):
    """One fixed action before control step STEP, another from it on (``switch:STEP:A:B``)."""

    name = "switch"
    routing_modes = ("share", "cap")

    def __init__(self, scenario: Scenario, arg: str) -> None:
        super().__init__(scenario)
        parts = arg.split(":")
        if len(parts) != 3 or not parts[0].isdigit():
            raise ValueError(f"switch policy argument {arg!r}: expected 'STEP:V,S:V,S' with "
                             "STEP an integer >= 0 (e.g. switch:30:0,1:4,0.1)")
        self.switch_step = int(parts[0])
        self.before = FixedPolicy(scenario, parts[1]).action
        self.after = FixedPolicy(scenario, parts[2]).action
        self.steps = np.zeros(0, dtype=np.int64)

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self.steps = np.zeros(num_envs, dtype=np.int64)

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        if self.steps.shape[0] != obs.shape[0]:
            self.reset(obs.shape[0])
        late = (self.steps >= self.switch_step)[:, None]
        self.steps += 1
        return np.where(late, self.after, self.before).astype(np.float32)


register_policy("fixed", lambda scenario, arg, **kw: FixedPolicy(scenario, arg))
register_policy("switch", lambda scenario, arg, **kw: SwitchPolicy(scenario, arg))
