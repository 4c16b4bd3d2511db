"""LIBRA (Raza et al., IC2E 2021): hybrid VM + function serving, not stage-aware.

As its public code does it, adapted to this env's control interval:

* An EWMA of the total request rate (alpha = mu = 0.2, see
  :class:`agents.heuristics.ewma.EwmaRate`). LIBRA updates it every second; here it is
  updated once per control interval with the interval's mean rate (the finest monitored
  signal), so its time constant is about
  ``interval / alpha`` (50 s at 10 s intervals) instead of 5 s; the spread keeps the
  per-second noise inside an interval through the monitored per-tick rate std (see
  :class:`agents.heuristics.ewma.EwmaRate`).
* Every ``period_s`` (300 s; the first time at the first monitored interval):
  ``vm_share = mean + spread_factor * std`` requests/s and a VM count sized for the whole
  model as if every request ran every stage ("uniform runtime"). LIBRA's VMs host the whole
  model; this env has one VM pool per stage, so a whole-model VM maps onto the stage pools
  by runtime share: stage k gets ``ceil(vm_share * E[S_vm,k] / slots_k)`` VMs, i.e. capacity
  for ``vm_share`` requests/s at *every* stage, the deep ones included (summed over stages this
  is ``ceil(vm_share / (slots / sum_k E[S_vm,k]))`` VMs up to rounding per stage).
* Routing, every interval: ``vm_fraction * vm_share`` requests/s (0.8) go to VMs once they
  are up (limited to what the running VMs carry through every stage:
  ``min_k running_k * slots_k / E[S_vm,k]``), the rest to functions. A request sent to VMs stays
  on VMs for all its stages, so the function share is the same at every stage:
  ``1 - min(1, to_vm / rate)`` with ``rate`` the last interval's total rate.
* Routing in cap mode (``routing.mode: cap``), as LIBRA's simulator (``simulator/manager.py``)
  does it every second: the first ``provision_for`` requests of each second go to the VMs, the
  rest to functions, with ``provision_for = vm_fraction * vm_share`` requests/s, updated only
  once the newly launched VMs have booted: no VM is booting and no stage's VM target (clamped
  to ``max_vms``) exceeds its running VMs (until then it keeps its old value, 0 before the
  first provisioning has booted). The target check matters in the interval of the request
  itself, whose monitored info predates it and so shows no VM booting; a scale-in (target
  at or below the running VMs) updates at once, a smaller rate being safe on the old pool.
  The env's cap is per stage and relative to the running VMs' capacity; LIBRA's VMs host
  the whole model and are sized for ``vm_share`` at every stage, so every stage gets the same
  ``provision_for`` requests/s:
  ``cap_k = provision_for / (running_k * slots_k / E[S_vm,k])`` (at most ``routing.max_cap``).
"""

from __future__ import annotations

import numpy as np

from agents.heuristics import monitor
from agents.heuristics.ewma import EwmaRate
from agents.heuristics.profiling import profile_stages
from agents.heuristics.spec_args import factory
from agents.policy import Info, Policy, register_policy
from serflow_env.scenario import Scenario


class Libra(Policy):
    """LIBRA's EWMA-provisioned hybrid; see the module docstring for the exact rules."""

    name = "libra"
    routing_modes = ("share", "cap")

    def __init__(self, scenario: Scenario, alpha: float = 0.2, mu: float = 0.2,
                 period_s: float = 300.0, vm_fraction: float = 0.8,
                 spread_factor: float = 1.0) -> None:
        super().__init__(scenario)
        if not scenario.control_interval_s <= period_s <= 86_400.0:
            raise ValueError(f"period_s={period_s!r}: allowed "
                             f"[{scenario.control_interval_s}, 86400] (one control interval "
                             "or more)")
        if not 0.0 < vm_fraction <= 1.0:
            raise ValueError(f"vm_fraction={vm_fraction!r}: allowed (0, 1]")
        if not 0.0 <= spread_factor <= 10.0:
            raise ValueError(f"spread_factor={spread_factor!r}: allowed [0, 10]")
        self.tracker = EwmaRate(alpha, mu)
        self.interval = scenario.control_interval_s
        self.period_steps = max(1, int(round(period_s / self.interval)))
        self.vm_fraction = float(vm_fraction)
        self.spread_factor = float(spread_factor)
        self.profile = profile_stages(scenario)
        self.initial = np.array([s.initial_vms for s in scenario.stages], dtype=float)
        self.max_vms = np.array([s.max_vms for s in scenario.stages], dtype=float)
        self._alloc(0)

    def _alloc(self, n: int) -> None:
        self.vm_share = np.zeros(n)  # requests/s LIBRA plans to serve on VMs
        self.provision_for = np.zeros(n)  # cap mode: requests/s the VMs take per second
        self.vm_targets = np.tile(self.initial, (n, 1))
        self.since = np.zeros(n, dtype=np.int64)  # intervals since the last provisioning
        self.decided = np.zeros(n, dtype=bool)
        self.tracker.reset((n,))

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self._alloc(num_envs)

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        n, k = obs.shape[0], self.num_stages
        if self.vm_share.shape[0] != n:
            self.reset(n)
        if info is None:  # nothing monitored yet: keep the initial VMs, serve on functions
            return self.encode(self.vm_targets, np.full((n, k), 0.0 if self.cap_routing
                                                        else 1.0))
        rate = monitor.total_rate(info, self.interval)
        self.tracker.update(rate, monitor.tick_rate_std(obs, info, self.interval))
        self.since += 1
        due = ~self.decided | (self.since >= self.period_steps)
        planned = self.tracker.mean + self.spread_factor * self.tracker.std
        self.vm_share = np.where(due, planned, self.vm_share)
        per_stage = np.ceil(self.vm_share[:, None] * self.profile.vm_mean_s[None, :]
                            / self.profile.slots[None, :] - 1e-9)
        self.vm_targets = np.where(due[:, None], per_stage, self.vm_targets)
        self.since = np.where(due, 0, self.since)
        self.decided |= due
        running, booting = monitor.vms(info)
        if self.cap_routing:
            # the info predates this action: VMs requested now are not booting yet, so a
            # target (as the env clamps it) above the running VMs also means "not booted"
            launching = np.minimum(self.vm_targets, self.max_vms[None, :]) > running
            booted = ~np.any(booting > 0, axis=1) & ~np.any(launching, axis=1)
            self.provision_for = np.where(booted, self.vm_fraction * self.vm_share,
                                          self.provision_for)
            caps = self.room_cap(np.repeat(self.provision_for[:, None], k, axis=1), running,
                                 self.profile.vm_capacity_rps[None, :])
            return self.encode(self.vm_targets, caps)
        chain_capacity = np.min(running * self.profile.vm_capacity_rps[None, :], axis=1)
        to_vm = np.minimum(self.vm_fraction * self.vm_share, chain_capacity)
        vm_part = np.where(rate > 0, np.minimum(1.0, to_vm / np.maximum(rate, 1e-12)),
                           (chain_capacity > 0).astype(float))
        return self.encode(self.vm_targets, np.repeat((1.0 - vm_part)[:, None], k, axis=1))


register_policy("libra", factory(Libra, "libra", {
    "alpha": float, "mu": float, "period_s": float, "vm_fraction": float,
    "spread_factor": float}))
