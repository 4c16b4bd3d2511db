"""Single-service baselines: FaaS-only, a threshold VM autoscaler and VMs for the peak.

All act in both routing modes. FaaS-only sets share 1 / cap 0. The VM-only baselines set share
0, or in cap mode the largest cap (``routing.max_cap`` of the running VMs' capacity): their
VMs take everything up to that rate and queue; only beyond it, and while a stage has no
running VM, requests go to functions.
"""

from __future__ import annotations

import numpy as np

from agents.heuristics import monitor
from agents.heuristics.profiling import profile_stages
from agents.heuristics.spec_args import factory
from agents.policy import Info, Policy, register_policy
from serflow_env.arrivals import resolve_traces
from serflow_env.scenario import Scenario


def _check_fraction(name: str, value: float, low: float = 0.0, high: float = 1.0) -> float:
    if not low < value <= high:
        raise ValueError(f"{name}={value!r}: allowed ({low}, {high}]")
    return float(value)


class FaasOnly(Policy):
    """Every stage on functions: no VMs, function share 1 (cap 0)."""

    name = "faas-only"
    routing_modes = ("share", "cap")

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        n = obs.shape[0]
        k = self.num_stages
        return self.encode(np.zeros((n, k)), np.full((n, k), 0.0 if self.cap_routing else 1.0))


class VmThreshold(Policy):
    """VMs only, per stage: scale out above ``upper`` utilisation, in below ``lower``.

    Utilisation is the last interval's load (stage rate plus backlog) over the running VMs'
    capacity (slots / profiled mean service time), see
    :func:`agents.heuristics.monitor.offered_utilisation`. Outside the band the VM count is set
    to what brings utilisation to ``target`` (``ceil(load / (target * capacity per VM))``, at least
    ``min_vms``); inside it the count is kept. Pending (booting) VMs are not counted as
    capacity but are not launched again either, because the count follows the load, not the
    previous count. Starts at ``max(initial_vms, min_vms)``. Function share 0 (the env still
    sends a stage's requests to functions while none of its VMs is running).
    """

    name = "vm-threshold"
    routing_modes = ("share", "cap")

    def __init__(self, scenario: Scenario, upper: float = 0.7, lower: float = 0.3,
                 target: float = 0.5, min_vms: int = 1) -> None:
        super().__init__(scenario)
        self.upper = _check_fraction("upper", upper, 0.0, 10.0)
        self.lower = _check_fraction("lower", lower, 0.0, self.upper)
        self.target = _check_fraction("target", target, 0.0, 10.0)
        if not self.lower <= self.target <= self.upper:
            raise ValueError(f"target={target!r}: must lie in [lower, upper] = "
                             f"[{self.lower}, {self.upper}]")
        if isinstance(min_vms, bool) or not isinstance(min_vms, int) or min_vms < 0:
            raise ValueError(f"min_vms={min_vms!r}: allowed integers >= 0")
        self.profile = profile_stages(scenario)
        self.min_vms = np.minimum(min_vms, self.profile.max_vms)
        self.start_vms = np.maximum([s.initial_vms for s in scenario.stages], self.min_vms)
        self.interval = scenario.control_interval_s
        self.vm_targets = np.zeros((0, self.num_stages))

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self.vm_targets = np.tile(self.start_vms.astype(float), (num_envs, 1))

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        n = obs.shape[0]
        if self.vm_targets.shape[0] != n:
            self.reset(n)
        if info is not None:
            util = monitor.offered_utilisation(info, self.profile, self.interval, 1.0)
            load = monitor.stage_rates(info, self.interval) \
                + np.asarray(info["stage_queue"], dtype=float) / self.interval
            wanted = np.ceil(load / (self.target * self.profile.vm_capacity_rps[None, :]))
            wanted = np.clip(wanted, self.min_vms, self.profile.max_vms)
            outside = (util > self.upper) | (util < self.lower)
            self.vm_targets = np.where(outside, wanted, self.vm_targets)
        return self.encode(self.vm_targets, np.full((n, self.num_stages), self.vm_only_route()))


def trace_peak_rate(scenario: Scenario) -> float:
    """Largest per-second arrival rate (req/s) of the scenario's traces, as replayed.

    Offline knowledge of the whole trace (scaled by ``arrivals.scale`` and slowed by
    ``arrivals.time_warp``): only the ``vm-peak`` baseline uses it.
    """
    arrivals = scenario.arrivals
    peaks = [float(np.max(t.rate_per_second())) for t in resolve_traces(arrivals)]
    return max(peaks) * arrivals.scale / arrivals.time_warp


class VmPeak(Policy):
    """VMs only, a fixed pool per stage sized for the trace's peak (offline knowledge).

    Stage k keeps ``ceil(peak * r_k / (utilisation * capacity per VM))`` VMs, with ``peak``
    the trace's largest per-second rate (:func:`trace_peak_rate`) and ``r_k`` the reach at the
    scenario's exit probabilities, so the peak runs at ``utilisation`` (0.8 by default).
    Capped at ``max_vms``. Function share 0; until the VMs have booted, the env sends
    requests to functions.
    """

    name = "vm-peak"
    routing_modes = ("share", "cap")

    def __init__(self, scenario: Scenario, utilisation: float = 0.8) -> None:
        super().__init__(scenario)
        self.utilisation = _check_fraction("utilisation", utilisation, 0.0, 1.0)
        profile = profile_stages(scenario)
        self.peak_rate = trace_peak_rate(scenario)
        need = self.peak_rate * profile.base_reach / (self.utilisation * profile.vm_capacity_rps)
        self.vm_counts = np.minimum(np.ceil(need - 1e-9), profile.max_vms)

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        n = obs.shape[0]
        return self.encode(np.tile(self.vm_counts, (n, 1)),
                           np.full((n, self.num_stages), self.vm_only_route()))


register_policy("faas-only", factory(FaasOnly, "faas-only", {}))
register_policy("vm-threshold", factory(VmThreshold, "vm-threshold", {
    "upper": float, "lower": float, "target": float, "min_vms": int}))
register_policy("vm-peak", factory(VmPeak, "vm-peak", {"utilisation": float}))
