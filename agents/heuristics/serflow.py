"""SERFLOW's per-stage policy (Zhang & Matta, arXiv 2510.27182): a reconstruction.

The paper's exact formulas are not public; this follows its description (see
``../shared/MODEL.md`` section 5) with every parameter stated here.

Offline (:mod:`agents.heuristics.profiling`): per stage k, the function cost per request
c_f,k, a VM's price per second and capacity, and the traffic cost indifference point
``T-CIP_k = vm_price_per_s_k / c_f,k`` (requests/s at which one VM costs what functions cost).

Online, every control interval, per stage and per env:

1. Track the stage's request rate ``lambda * r_k`` from the monitored requests entering it
   (observed exits, no exit model needed): EWMA mean ``m_k`` and spread (mean absolute
   deviation of the per-second rate) ``d_k`` as LIBRA does (``alpha = mu = 0.2``,
   :class:`agents.heuristics.ewma.EwmaRate`), and the same for the total rate ``lambda``.
   The stage's per-second spread within an interval is the total's thinned by the observed
   reach (:func:`agents.heuristics.monitor.stage_tick_rate_std`).
2. Sparsity gate (S-CIP): the observed reach ``m_k / mean(lambda)`` against
   ``S-CIP_k = T-CIP_k / mean(lambda)``. A stage below it gets no VM: its steady traffic
   is below what one VM must carry to pay for itself.
3. Steady part each VM would carry: model the next minutes' stage rate as Normal(m_k,
   sigma_k) with ``sigma_k = d_k * sqrt(pi / 2)`` (the std of a normal with that mean
   absolute deviation). VMs fill up in order, each carrying at most ``C_k = utilisation *
   slots_k / E[S_vm,k]``; the n-th VM carries on average ``E[min(C_k, (X - (n-1) C_k)^+)]``.
   Keep the VMs whose expected carried rate is at least T-CIP_k (each pays for itself
   against functions); the spread makes the last VM's carry smaller, so bursts are left to
   functions.
4. Hysteresis: scale out at once; scale in only after the lower count has been wanted for
   ``scale_in_hold_s`` (120 s: longer than the 60 s minimum billing, so a VM is not dropped
   and relaunched within one burst).
5. Routing: the running (not booting) VMs take up to ``running_k * C_k`` requests/s, less the
   backlog still queued on them (drained within one interval); the rest goes to functions,
   so overflow, bursts and traffic during VM cold starts are served by functions. The share
   is a fraction of the *next* interval's unknown rate, so it is set against a high
   estimate of it, ``max(last interval's rate, m_k + burst_z * sigma_k)`` (``burst_z = 1``):
   a rise within one standard deviation still leaves the VMs at or below ``utilisation``.
   The first interval (nothing monitored yet) goes to functions.
   In cap mode (``routing.mode: cap``) the env applies that room per tick itself: the cap of
   stage k is ``room_k / (running_k * slots_k / E[S_vm,k])``, i.e. ``utilisation`` less the
   backlog to drain, so whatever exceeds it within the interval overflows to functions at once.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from agents.heuristics import monitor
from agents.heuristics.ewma import EwmaRate
from agents.heuristics.profiling import profile_stages
from agents.heuristics.spec_args import factory
from agents.policy import Info, Policy, register_policy
from serflow_env.scenario import Scenario

MAD_TO_STD = math.sqrt(math.pi / 2.0)  # std / mean absolute deviation of a normal law


def _positive_part_mean(mean: np.ndarray, sigma: np.ndarray, level: np.ndarray) -> np.ndarray:
    """E[(X - level)^+] for X ~ Normal(mean, sigma) (sigma = 0: a point mass)."""
    diff = mean - level
    safe = np.maximum(sigma, 1e-12)
    d = diff / safe
    smooth = diff * ndtr(d) + safe * np.exp(-0.5 * d * d) / math.sqrt(2.0 * math.pi)
    return np.where(sigma > 0, smooth, np.maximum(diff, 0.0))


def expected_carry(mean: np.ndarray, sigma: np.ndarray, per_vm: np.ndarray,
                   count: int) -> np.ndarray:
    """Expected rate the n-th VM carries, n = 1..count: (N, K, count).

    ``mean``, ``sigma`` are (N, K); ``per_vm`` ((K,) or (N, K)) is what one VM carries at most.
    """
    n = np.arange(count, dtype=float)
    carry = np.broadcast_to(per_vm, mean.shape)[..., None]
    low = n * carry
    m, s = mean[..., None], sigma[..., None]
    return _positive_part_mean(m, s, low) - _positive_part_mean(m, s, low + carry)


class Serflow(Policy):
    """Per-stage cost indifference points with EWMA rate tracking (a reconstruction).

    Args (spec ``serflow:KEY=VALUE:...`` or keywords of ``make_policy``):
        alpha, mu: EWMA weights of the rate mean and spread (LIBRA's 0.2 each).
        utilisation: the most a VM carries, as a share of its capacity ``slots / E[S_vm]``
            (0.75); also the per-VM carry ``C_k`` in the VM count rule.
        scale_in_hold_s: how long a lower VM count must be wanted before VMs are removed
            (120 s).
        burst_z: routing sets the VMs' share against ``m_k + burst_z * sigma_k`` (1).
    """

    name = "serflow"
    routing_modes = ("share", "cap")

    def __init__(self, scenario: Scenario, alpha: float = 0.2, mu: float = 0.2,
                 utilisation: float = 0.75, scale_in_hold_s: float = 120.0,
                 burst_z: float = 1.0) -> None:
        super().__init__(scenario)
        if not 0.0 < utilisation <= 1.0:
            raise ValueError(f"utilisation={utilisation!r}: allowed (0, 1]")
        if not 0.0 <= scale_in_hold_s <= 86_400.0:
            raise ValueError(f"scale_in_hold_s={scale_in_hold_s!r}: allowed [0, 86400]")
        if not 0.0 <= burst_z <= 10.0:
            raise ValueError(f"burst_z={burst_z!r}: allowed [0, 10]")
        self.burst_z = float(burst_z)
        self.profile = profile_stages(scenario)
        self.interval = scenario.control_interval_s
        self.utilisation = float(utilisation)
        self.per_vm = self.utilisation * self.profile.vm_capacity_rps  # C_k, requests/s
        self.hold_steps = int(math.ceil(scale_in_hold_s / self.interval - 1e-9))
        self.stage_rate = EwmaRate(alpha, mu)
        self.total_rate = EwmaRate(alpha, mu)
        self.initial = np.array([s.initial_vms for s in scenario.stages], dtype=float)
        self._alloc(0)

    def _alloc(self, n: int) -> None:
        k = self.num_stages
        self.stage_rate.reset((n, k))
        self.total_rate.reset((n,))
        self.vm_targets = np.tile(self.initial, (n, 1))
        self.lower_for = np.zeros((n, k), dtype=np.int64)  # intervals a lower count was wanted

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self._alloc(num_envs)

    def forget(self, envs: np.ndarray) -> None:
        """Start new episodes for the envs selected by the boolean mask ``envs`` (N,) only."""
        self.stage_rate.forget(envs)
        self.total_rate.forget(envs)
        self.vm_targets[envs] = self.initial
        self.lower_for[envs] = 0

    def _all_to_functions(self, n: int) -> np.ndarray:
        """Routing (N, K) that sends every request to functions: share 1, or cap 0."""
        return np.full((n, self.num_stages), 0.0 if self.cap_routing else 1.0)

    def initial_action(self, n: int) -> np.ndarray:
        """The action of an episode's first interval (nothing monitored yet): the initial VMs,
        everything to functions."""
        return self.encode(np.tile(self.initial, (n, 1)), self._all_to_functions(n))

    def wanted_vms(self, per_vm: np.ndarray | None = None) -> np.ndarray:
        """VMs per stage (N, K) the tracked rates justify (steps 2 and 3 of the docstring);
        ``per_vm`` ((N, K) requests/s) replaces the per-VM carry ``C_k`` if given."""
        mean = self.stage_rate.mean
        sigma = self.stage_rate.std * MAD_TO_STD
        count = int(self.profile.max_vms.max())
        carry = expected_carry(mean, sigma, self.per_vm if per_vm is None else per_vm, count)
        allowed = np.arange(count)[None, :] < self.profile.max_vms[:, None]  # (K, count)
        pays = (carry >= self.profile.tcip_rps[None, :, None]) & allowed[None]
        wanted = pays.sum(axis=2).astype(float)  # carry falls with n: a prefix pays
        total = np.maximum(self.total_rate.mean, 1e-9)
        reach = mean / total[:, None]
        sparse = reach < self.profile.scip(total)
        return np.where(sparse, 0.0, wanted)

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        return self.decide(obs, info)

    def decide(self, obs: np.ndarray, info: Info | None, utilisation: np.ndarray | None = None,
               room_scale: np.ndarray | None = None) -> np.ndarray:
        """:meth:`act` with the utilisation per env and stage (N, K) in place of the fixed
        one (VM count rule and routing room), and the routing room times ``room_scale`` (N, K);
        both None: the heuristic itself. Residual agents act through these
        (:class:`agents.rl.actions.SerflowResidualMap`)."""
        n = obs.shape[0]
        if self.vm_targets.shape[0] != n:
            self.reset(n)
        if info is None:
            return self.encode(self.vm_targets, self._all_to_functions(n))
        per_vm = self.per_vm if utilisation is None \
            else utilisation * self.profile.vm_capacity_rps[None, :]
        rates = monitor.stage_rates(info, self.interval)
        self.stage_rate.update(rates, monitor.stage_tick_rate_std(obs, info, self.interval))
        self.total_rate.update(monitor.total_rate(info, self.interval),
                               monitor.tick_rate_std(obs, info, self.interval))
        wanted = self.wanted_vms(per_vm)
        lower = wanted < self.vm_targets
        self.lower_for = np.where(lower, self.lower_for + 1, 0)
        scale_in = lower & (self.lower_for >= self.hold_steps)
        self.vm_targets = np.where((wanted > self.vm_targets) | scale_in, wanted,
                                   self.vm_targets)
        self.lower_for = np.where(scale_in, 0, self.lower_for)
        running, _ = monitor.vms(info)
        queued = np.asarray(info["stage_queue"], dtype=float) / self.interval
        room = np.maximum(running * per_vm - queued, 0.0)
        if room_scale is not None:
            room = room * room_scale
        if self.cap_routing:
            return self.encode(self.vm_targets, self.room_cap(
                room, running, self.profile.vm_capacity_rps[None, :]))
        high = np.maximum(rates, self.stage_rate.mean
                          + self.burst_z * MAD_TO_STD * self.stage_rate.std)
        vm_part = np.where(high > 0, np.minimum(high, room) / np.maximum(high, 1e-12),
                           (running > 0).astype(float))
        return self.encode(self.vm_targets, 1.0 - vm_part)


register_policy("serflow", factory(Serflow, "serflow", {
    "alpha": float, "mu": float, "utilisation": float, "scale_in_hold_s": float,
    "burst_z": float}))
