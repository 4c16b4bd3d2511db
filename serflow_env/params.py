"""Static parameters of the fast model: the numbers and arrays derived once from a scenario
(prices per second, ring lengths, exit schedule, reward scales, the latency model)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from serflow_env import distributions
from serflow_env.arrivals import TraceTable, resolve_traces
from serflow_env.latency import FourierLatency, LatencyModel, MomentLatency
from serflow_env.scenario import Scenario, ServiceTime


@dataclass(frozen=True)
class Params:
    """Static numbers and arrays derived once from a scenario (the scenario itself is not
    kept: everything the model reads is here)."""

    num_stages: int
    dt: float
    control_interval_s: float
    slo_deadline_s: float
    ticks_per_step: int
    episode_steps: int
    traces: TraceTable
    time_warp: float
    random_start: bool
    # stages (K,)
    vm_mean_s: np.ndarray
    vm_cv: np.ndarray
    vm_price_per_s: np.ndarray
    slots: np.ndarray
    max_vms: np.ndarray
    queue_limit_per_slot: np.ndarray
    initial_vms: np.ndarray
    faas_mean_s: np.ndarray
    faas_gb: np.ndarray
    faas_billed_s: np.ndarray  # mean billed duration per invocation (rounded up)
    faas_billed_var: np.ndarray  # variance of one invocation's duration
    cold_billed_s: float
    cold_var: float
    price_gb_s: float
    price_request: float
    concurrency_limit: float
    headroom: float
    cold_ready: np.ndarray  # (J,) share of containers started cold that are ready j+1 ticks on
    cold_ready_shifted: np.ndarray  # (S, J) the same for arrivals late or early in the tick
    cold_ready_position: np.ndarray  # (S, J) mean position in its tick at which they are
    cold_done_position: np.ndarray  # (J,) that for arrivals in the middle of the tick
    prewarm: bool
    transfer_gb: np.ndarray  # (K-1,) activation size in GB
    transfer_price: np.ndarray  # (2, 2) $/GB by (from route, to route)
    min_billed_s: float  # a launched VM is billed at least this long
    # rings
    boot_ticks: int
    young_ticks: int
    ka_blocks: int  # keep-alive ring: one block per control step
    # exits
    schedule_t: np.ndarray  # (P,) seconds
    schedule_logit: np.ndarray  # (P, K-1)
    base_reach: np.ndarray  # (K,) share of requests reaching each stage at the base exits
    drift_vol: float
    drift_reversion_s: float
    latency: LatencyModel
    reference_rate: float
    cost_scale: float
    request_scale: float
    w_cost: float
    w_slo: float
    # routing: cap mode (a per-tick VM rate cap) or share mode (a function share per interval)
    cap_routing: bool
    max_cap: float  # cap mode: the largest cap, a fraction of the running VMs' capacity


READY_SHIFTS = np.linspace(-0.5, 0.5, 11)  # arrivals' mean position in a tick, less 1/2


def _ready_delay(cold_start: ServiceTime, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernels w[s, j] = P(a container started cold in a tick becomes ready within the j-th
    tick after it, so usable from the next) for arrivals whose mean position in the tick is
    1/2 + READY_SHIFTS[s], and the mean position p[s, j] within that tick at which they do.

    It starts at U + shift (U uniform in the tick) and is ready after the cold-start time X,
    at r = U + shift + X / dt ticks: j = floor(r) (at least 0). Arrivals that come late in
    their tick (a storm's requests reaching the next stage, cap mode's overflow) start
    containers that are ready later; and as the cold-start time's density rises steeply,
    those ready within a tick are mostly ready late in it.
    """
    sub, u = 16, (np.arange(128) + 0.5) / 128
    horizon = int(np.ceil(float(np.max(distributions.sample(
        cold_start, np.random.default_rng(0), 4096))) / dt)) + 3
    fine = np.arange(horizon * sub + 1) / sub
    frac = (np.arange(sub) + 0.5) / sub
    kernels = np.empty((READY_SHIFTS.size, horizon))
    positions = np.empty((READY_SHIFTS.size, horizon))
    for row, shift in enumerate(READY_SHIFTS):
        start = u + shift
        cdf = distributions.cdf(cold_start, np.maximum(fine[:, None] - start[None, :], 0.0)
                                * dt)
        mass = np.diff(cdf, axis=0).mean(axis=1).reshape(horizon, sub)
        mass[0, 0] += cdf[0].mean()  # an early start ready within its own tick
        total = mass.sum(axis=1)
        kernels[row] = total / total.sum()
        positions[row] = np.where(total > 0, (mass * frac).sum(axis=1)
                                  / np.maximum(total, 1e-300), 0.5)
    return kernels, positions


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def make_params(scenario: Scenario) -> Params:
    """Derive the static arrays of a scenario (traces loaded, prices per second, rings)."""
    sc = scenario
    stages = sc.stages
    dt = sc.tick_s
    traces = TraceTable.build(resolve_traces(sc.arrivals), sc.arrivals.scale)
    gran = sc.faas.billing_granularity_s
    faas_times = [s.faas_service_time for s in stages]
    faas_billed = np.array([distributions.expected_rounded_up(t, gran) for t in faas_times])
    faas_var = np.array([(t.mean_s * t.effective_cv) ** 2 for t in faas_times])
    cold = sc.faas.cold_start
    ready, done_position = _ready_delay(cold, dt)
    k = len(stages)
    if sc.exit_drift.schedule:
        sched_t = np.array([float(t) for t, _ in sc.exit_drift.schedule])
        sched_logit = _logit(np.array([list(p) for _, p in sc.exit_drift.schedule]))
    else:
        sched_t = np.zeros(1)
        sched_logit = _logit(np.array([[s.exit_probability for s in stages[:-1]]]))
    reference_rate = max(sc.reward.reference_rate or traces.mean_rate, 1e-6)
    interval = sc.control_interval_s
    # expected warm function cost of one request through the mean path, at the base exits
    reach = np.cumprod(np.r_[1.0, 1.0 - np.array([s.exit_probability for s in stages[:-1]])])
    gb = np.array([s.faas_memory_mb / 1024.0 for s in stages])
    per_request = float(np.sum(reach * (faas_billed * gb * sc.faas.price_per_gb_s
                                        + sc.faas.price_per_request)))
    link = sc.transfer
    transfer_price = np.array([
        [link.vm_to_vm.price_per_gb, link.cross_service.price_per_gb],
        [link.cross_service.price_per_gb, link.faas_to_faas.price_per_gb],
    ])
    return Params(
        num_stages=k,
        dt=dt,
        control_interval_s=interval,
        slo_deadline_s=sc.slo_deadline_s,
        ticks_per_step=sc.ticks_per_step,
        episode_steps=sc.episode_steps,
        traces=traces,
        time_warp=sc.arrivals.time_warp,
        random_start=sc.arrivals.random_start,
        vm_mean_s=np.array([s.vm_service.mean_s for s in stages]),
        vm_cv=np.array([s.vm_service.effective_cv for s in stages]),
        vm_price_per_s=np.array([s.vm_price_per_hour / 3600.0 for s in stages]),
        slots=np.array([s.slots_per_vm for s in stages], dtype=np.int64),
        max_vms=np.array([s.max_vms for s in stages], dtype=np.int64),
        queue_limit_per_slot=np.array([s.queue_limit_per_slot for s in stages], dtype=np.int64),
        initial_vms=np.array([s.initial_vms for s in stages], dtype=np.int64),
        faas_mean_s=np.array([t.mean_s for t in faas_times]),
        faas_gb=gb,
        faas_billed_s=faas_billed,
        faas_billed_var=faas_var,
        cold_billed_s=distributions.expected_rounded_up(cold, gran),
        cold_var=(cold.mean_s * cold.effective_cv) ** 2,
        price_gb_s=sc.faas.price_per_gb_s,
        price_request=sc.faas.price_per_request,
        concurrency_limit=float(sc.faas.concurrency_limit),
        headroom=sc.faas.burst_headroom,
        cold_ready=ready[READY_SHIFTS.size // 2],
        cold_ready_shifted=ready,
        cold_ready_position=done_position,
        cold_done_position=done_position[READY_SHIFTS.size // 2],
        prewarm=sc.faas.prewarm,
        transfer_gb=np.array([s.activation_mb / 1024.0 for s in stages[:-1]]),
        transfer_price=transfer_price,
        min_billed_s=sc.vm.min_billed_s,
        boot_ticks=math.ceil(sc.vm.boot_s / dt - 1e-9),
        young_ticks=math.ceil(sc.vm.min_billed_s / dt - 1e-9),
        ka_blocks=math.ceil(sc.faas.keep_alive_s / sc.control_interval_s - 1e-9) + 1,
        schedule_t=sched_t,
        schedule_logit=sched_logit,
        base_reach=reach,
        drift_vol=sc.exit_drift.volatility,
        drift_reversion_s=sc.exit_drift.reversion_s,
        latency=MomentLatency(sc) if sc.latency_model == "moments" else FourierLatency(sc),
        reference_rate=reference_rate,
        cost_scale=max(reference_rate * interval * per_request, 1e-12),
        request_scale=max(reference_rate * interval, 1e-12),
        w_cost=sc.reward.w_cost,
        w_slo=sc.reward.w_slo,
        cap_routing=sc.routing.mode == "cap",
        max_cap=sc.routing.max_cap,
    )
