"""The vectorized SERFLOW queueing model: pure array functions of (params, state, action, rng).

Shapes: N environments, K stages, T ticks per control step. Every per-env quantity is an array
with a leading N axis; the only Python loops are over ticks and stages (never over envs).

Model, per tick of ``dt`` seconds (see docs/MODEL_APPROXIMATIONS in the README):

* Arrivals come from a trace: exact per-second counts are released as they are, spread evenly
  within their second; rate traces draw Poisson counts. Each request's exit stage is decided
  after each stage by a binomial draw from the exit stream with the current exit probabilities.
* Within a tick a request passes all stages (stage latencies are far below a tick); only VM
  overload makes it wait across ticks, in a FIFO backlog.
* Routing: a weighted round-robin load balancer sends the chosen share of each stage's requests
  to functions, the rest to the stage's VM pool; with no VM running, all go to functions.
* VM pool: ``c = running VMs * slots`` servers of mean service time ``m``. The backlog follows
  the fluid ``b' = max(0, b + arrivals - c dt / m)``, capped at the queue limit (excess dropped);
  waiting below saturation is pointwise-stationary M/G/c (Erlang-C with the Allen-Cunneen
  factor), evaluated per control interval. VMs boot for ``boot_s`` and are billed per second
  from launch with a ``min_billed_s`` minimum; removals take the youngest VMs first (booting
  ones before running ones) and stop billing.
* Functions: a warm pool keeps ``a + z sqrt(a)`` containers for a mean concurrency ``a`` (its
  peak); containers live ``keep_alive_s`` after their last use. Ready containers are a loss
  system: an invocation that finds them all busy (Erlang-B) starts a new container cold, ready
  ``cold_start`` later, so bursts on a cold pool make cold-start storms. Cold starts are
  billed and added to latency. The account concurrency limit is a loss system: invocations
  are throttled (dropped) with the Erlang-B blocking probability of the offered concurrency
  of all stages.
  Billed duration is rounded up to the billing granularity and includes initialisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np

from serflow_env import distributions
from serflow_env.arrivals import TraceTable, resolve_traces
from serflow_env.latency import QUANTILES, LatencyModel, MomentLatency
from serflow_env.queueing import erlang_b, mgc_wait
from serflow_env.scenario import Scenario, ServiceTime

STREAMS = ("arrivals", "exits", "service", "drift", "episode")


@dataclass(frozen=True)
class Params:
    """Static arrays derived once from a scenario."""

    scenario: Scenario
    num_stages: int
    dt: float
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
    faas_cv: np.ndarray
    faas_gb: np.ndarray
    faas_billed_s: np.ndarray  # mean billed duration per invocation (rounded up)
    faas_billed_var: np.ndarray  # variance of one invocation's duration
    cold_billed_s: float
    cold_var: float
    cold_mean_s: float
    price_gb_s: float
    price_request: float
    concurrency_limit: float
    headroom: float
    cold_ready: np.ndarray  # (J,) share of containers started cold that are ready j+1 ticks on
    prewarm: bool
    transfer_gb: np.ndarray  # (K-1,) activation size in GB
    transfer_price: np.ndarray  # (2, 2) $/GB by (from route, to route)
    # rings
    boot_ticks: int
    young_ticks: int
    ka_blocks: int  # keep-alive ring: one block per control step
    # exits
    schedule_t: np.ndarray  # (P,) seconds
    schedule_logit: np.ndarray  # (P, K-1)
    base_logit: np.ndarray  # (K-1,)
    base_reach: np.ndarray  # (K,) share of requests reaching each stage at the base exits
    drift_vol: float
    drift_reversion_s: float
    latency: LatencyModel | MomentLatency
    reference_rate: float
    cost_scale: float
    request_scale: float
    w_cost: float
    w_slo: float


def _ready_delay(cold_start: ServiceTime, dt: float) -> np.ndarray:
    """w[j] = P(a container started cold in a tick is first usable j + 1 ticks later).

    It starts at a uniform time U within the tick and is ready after the cold-start time X;
    it serves from the tick after: j + 1 = floor(U + X / dt) + 1.
    """
    u = (np.arange(256) + 0.5) / 256
    horizon = int(np.ceil(float(np.max(distributions.sample(
        cold_start, np.random.default_rng(0), 4096))) / dt)) + 2
    edges = np.arange(horizon + 1)[:, None] - u[None, :]
    mass = np.diff(distributions.cdf(cold_start, np.maximum(edges, 0.0) * dt), axis=0)
    w = mass.mean(axis=1)
    return w / w.sum()


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
        scenario=sc,
        num_stages=k,
        dt=dt,
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
        faas_cv=np.array([t.effective_cv for t in faas_times]),
        faas_gb=gb,
        faas_billed_s=faas_billed,
        faas_billed_var=faas_var,
        cold_billed_s=distributions.expected_rounded_up(cold, gran),
        cold_var=(cold.mean_s * cold.effective_cv) ** 2,
        cold_mean_s=cold.mean_s,
        price_gb_s=sc.faas.price_per_gb_s,
        price_request=sc.faas.price_per_request,
        concurrency_limit=float(sc.faas.concurrency_limit),
        headroom=sc.faas.burst_headroom,
        cold_ready=_ready_delay(cold, dt),
        prewarm=sc.faas.prewarm,
        transfer_gb=np.array([s.activation_mb / 1024.0 for s in stages[:-1]]),
        transfer_price=transfer_price,
        boot_ticks=math.ceil(sc.vm.boot_s / dt - 1e-9),
        young_ticks=math.ceil(sc.vm.min_billed_s / dt - 1e-9),
        ka_blocks=math.ceil(sc.faas.keep_alive_s / sc.control_interval_s - 1e-9) + 1,
        schedule_t=sched_t,
        schedule_logit=sched_logit,
        base_logit=sched_logit[0],
        base_reach=reach,
        drift_vol=sc.exit_drift.volatility,
        drift_reversion_s=sc.exit_drift.reversion_s,
        latency=MomentLatency(sc) if sc.latency_model == "moments" else LatencyModel(sc),
        reference_rate=reference_rate,
        cost_scale=max(reference_rate * interval * per_request, 1e-12),
        request_scale=max(reference_rate * interval, 1e-12),
        w_cost=sc.reward.w_cost,
        w_slo=sc.reward.w_slo,
    )


@dataclass
class State:
    """Dynamic arrays of N environments. Ring buffers are indexed by the shared ``clock``."""

    clock: int
    time_s: np.ndarray  # (N,) episode time
    steps: np.ndarray  # (N,) control steps taken this episode
    trace_idx: np.ndarray  # (N,) which trace
    trace_start_s: np.ndarray  # (N,) trace position at episode start, trace seconds
    drift: np.ndarray  # (N, K-1) logit drift of the exit probabilities
    vm_running: np.ndarray  # (N, K)
    vm_booting: np.ndarray  # (N, K)
    boot_ring: np.ndarray  # (B, N, K) VMs finishing boot at each future tick
    vm_young: np.ndarray  # (N, K) VMs still inside their minimum billed time
    young_ring: np.ndarray  # (Y, N, K) young VMs leaving that state at each future tick
    backlog: np.ndarray  # (N, K) requests waiting in the VM queue (integer)
    backlog_fluid: np.ndarray  # (N, K) the fluid backlog it follows
    lb_carry: np.ndarray  # (N, K) weighted round-robin remainder
    ka_ring: np.ndarray  # (A, N, K) containers needed per keep-alive block
    concurrency: np.ndarray  # (N, K) function concurrency in the last tick
    prev_action: np.ndarray  # (N, 2K)
    last_obs_stats: dict = field(default_factory=dict)
    # running totals (for conservation checks)
    total_arrived: np.ndarray = None  # type: ignore[assignment]
    total_completed: np.ndarray = None  # type: ignore[assignment]
    total_dropped: np.ndarray = None  # type: ignore[assignment]

    def copy(self) -> State:
        return replace(self, **{
            f.name: (getattr(self, f.name).copy() if isinstance(getattr(self, f.name), np.ndarray)
                     else dict(getattr(self, f.name)) if isinstance(getattr(self, f.name), dict)
                     else getattr(self, f.name))
            for f in fields(self)
        })


def make_rngs(seed: int | None) -> dict[str, np.random.Generator]:
    """Independent generators per stream (arrivals, exits, service, drift, episode)."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


def init_state(params: Params, num_envs: int, rngs: dict[str, np.random.Generator]) -> State:
    """A fresh state for ``num_envs`` environments (all reset)."""
    n, k = num_envs, params.num_stages
    zeros_i = lambda *shape: np.zeros(shape, dtype=np.int64)  # noqa: E731
    state = State(
        clock=0,
        time_s=np.zeros(n),
        steps=zeros_i(n),
        trace_idx=zeros_i(n),
        trace_start_s=np.zeros(n),
        drift=np.zeros((n, k - 1)),
        vm_running=zeros_i(n, k),
        vm_booting=zeros_i(n, k),
        boot_ring=zeros_i(max(params.boot_ticks + 1, params.ticks_per_step), n, k),
        vm_young=zeros_i(n, k),
        young_ring=zeros_i(max(params.young_ticks + 1, params.ticks_per_step), n, k),
        backlog=zeros_i(n, k),
        backlog_fluid=np.zeros((n, k)),
        lb_carry=np.zeros((n, k)),
        ka_ring=zeros_i(params.ka_blocks, n, k),
        concurrency=np.zeros((n, k)),
        prev_action=np.zeros((n, 2 * k), dtype=np.float32),
        total_arrived=zeros_i(n),
        total_completed=zeros_i(n),
        total_dropped=zeros_i(n),
    )
    return reset_envs(params, state, np.ones(n, dtype=bool), rngs)


def reset_envs(params: Params, state: State, mask: np.ndarray,
               rngs: dict[str, np.random.Generator]) -> State:
    """Reset the environments where ``mask`` is true; the others are untouched."""
    s = state.copy()
    m = np.asarray(mask, dtype=bool)
    count = int(m.sum())
    if count == 0:
        return s
    ep = rngs["episode"]
    tt = params.traces
    idx = (ep.integers(0, len(tt.lengths), size=count) if len(tt.lengths) > 1
           else np.zeros(count, dtype=np.int64))
    start = (np.floor(ep.random(count) * tt.lengths[idx]) if params.random_start
             else np.zeros(count))
    s.trace_idx[m] = idx
    s.trace_start_s[m] = start
    s.time_s[m] = 0.0
    s.steps[m] = 0
    s.drift[m] = 0.0
    if params.drift_vol > 0:
        s.drift[m] = rngs["drift"].normal(0.0, params.drift_vol,
                                          size=(count, params.num_stages - 1))
    s.vm_running[m] = params.initial_vms
    s.vm_booting[m] = 0
    s.boot_ring[:, m] = 0
    s.vm_young[m] = 0
    s.young_ring[:, m] = 0
    s.backlog[m] = 0
    s.backlog_fluid[m] = 0.0
    s.lb_carry[m] = 0.0
    s.ka_ring[:, m] = 0
    s.concurrency[m] = 0.0
    if params.prewarm:
        # containers for the first second's traffic if it all ran in functions
        first = tt.cumulative_at(idx, start + 1.0) - tt.cumulative_at(idx, start)
        reach = params.base_reach
        conc = first[:, None] * reach[None, :] * params.faas_mean_s[None, :]
        need = np.ceil(conc + params.headroom * np.sqrt(conc)).astype(np.int64)
        s.ka_ring[(s.clock // params.ticks_per_step - 1) % params.ka_blocks, m] = need
        s.concurrency[m] = conc
    s.prev_action[m] = 0.0
    s.total_arrived[m] = 0
    s.total_completed[m] = 0
    s.total_dropped[m] = 0
    s.last_obs_stats = {}
    return s


def decode_action(params: Params, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map a validated (N, 2K) action in [-1, 1] to VM targets (N, K) and function shares.

    ``vms_k = round((a_k + 1) / 2 * max_vms_k)`` and ``share_k = (a_{K+k} + 1) / 2``.
    """
    k = params.num_stages
    a = np.clip(action, -1.0, 1.0)
    targets = np.rint((a[:, :k] + 1.0) * 0.5 * params.max_vms).astype(np.int64)
    shares = (a[:, k:] + 1.0) * 0.5
    return targets, shares


def exit_probabilities(params: Params, state: State) -> np.ndarray:
    """Current conditional exit probabilities (N, K); the last stage is 1."""
    t = state.time_s
    sched = params.schedule_logit
    if len(params.schedule_t) == 1:
        logit = np.broadcast_to(sched[0], state.drift.shape)
    else:
        logit = np.stack([np.interp(t, params.schedule_t, sched[:, j])
                          for j in range(sched.shape[1])], axis=1)
    p = 1.0 / (1.0 + np.exp(-(logit + state.drift)))
    return np.concatenate([p, np.ones((p.shape[0], 1))], axis=1)


def _remove_youngest(ring: np.ndarray, clock: int, remove: np.ndarray) -> np.ndarray:
    """Remove ``remove`` (N, K) entries from a ring (H, N, K), newest expiry first.

    Returns how many were removed per (N, K) (at most what the ring holds).
    """
    h = ring.shape[0]
    order = (clock + h - 1 - np.arange(h)) % h  # latest expiry (youngest) first
    ordered = ring[order]
    before = np.cumsum(ordered, axis=0) - ordered
    take = np.clip(remove[None] - before, 0, ordered)
    ring[order] = ordered - take
    return take.sum(axis=0)


def apply_vm_targets(params: Params, s: State, targets: np.ndarray, out: dict) -> None:
    """Launch or remove VMs to reach the targets (in place on ``s``)."""
    alive = s.vm_running + s.vm_booting
    launch = np.maximum(targets - alive, 0)
    remove = np.maximum(alive - targets, 0)
    if np.any(remove):
        from_boot = np.zeros_like(remove)
        sel = np.any((remove > 0) & (s.vm_booting > 0), axis=1)
        if np.any(sel):
            ring = s.boot_ring[:, sel]
            from_boot[sel] = _remove_youngest(ring, s.clock, np.minimum(remove[sel],
                                                                        s.vm_booting[sel]))
            s.boot_ring[:, sel] = ring
        s.vm_booting -= from_boot
        s.vm_running -= remove - from_boot
        sel = np.any((remove > 0) & (s.vm_young > 0), axis=1)
        if np.any(sel):
            ring = s.young_ring[:, sel]
            s.vm_young[sel] -= _remove_youngest(ring, s.clock, remove[sel])
            s.young_ring[:, sel] = ring
    if np.any(launch):
        launch_cost = launch * params.vm_price_per_s * params.scenario.vm.min_billed_s
        out["cost_vm"] += launch_cost.sum(axis=1)
        out["vm_seconds"] += (launch * params.scenario.vm.min_billed_s).sum(axis=1)
        if params.boot_ticks == 0:
            s.vm_running += launch
        else:
            s.boot_ring[(s.clock + params.boot_ticks) % s.boot_ring.shape[0]] += launch
            s.vm_booting += launch
        if params.young_ticks > 0:
            s.young_ring[(s.clock + params.young_ticks) % s.young_ring.shape[0]] += launch
            s.vm_young += launch
    out["vm_launches"] += launch.sum(axis=1)


def _vm_timeline(params: Params, s: State, ticks: int) -> tuple[np.ndarray, np.ndarray]:
    """Running VMs (T, N, K) during each tick of the step and billable VMs per tick.

    Boot completions and billing-minimum expiries scheduled within the step are taken from
    the rings (and cleared there). Launches and removals happen only at step start.
    """
    slots = (s.clock + np.arange(ticks))
    if params.boot_ticks > 0:
        idx = slots % s.boot_ring.shape[0]
        done = s.boot_ring[idx]
        s.boot_ring[idx] = 0
        booted = np.cumsum(done, axis=0)
        running = s.vm_running[None] + booted
        s.vm_running = running[-1].copy()
        s.vm_booting = s.vm_booting - booted[-1]
    else:
        running = np.broadcast_to(s.vm_running, (ticks,) + s.vm_running.shape)
    alive = s.vm_running + s.vm_booting
    if params.young_ticks > 0:
        idx = slots % s.young_ring.shape[0]
        expired = np.cumsum(s.young_ring[idx], axis=0)
        s.young_ring[idx] = 0
        young = s.vm_young[None] - expired
        s.vm_young = young[-1].copy()
        billable = alive[None] - young
    else:
        billable = np.broadcast_to(alive, running.shape)
    return running, billable


def _lindley(x: np.ndarray, start: np.ndarray) -> np.ndarray:
    """b_t = max(0, b_{t-1} + x_t) for all t along axis 1, from b_0 = start (N,)."""
    cum = np.cumsum(x, axis=1)
    low = np.minimum.accumulate(np.minimum(cum, 0.0), axis=1)
    return np.maximum(start[:, None] + cum, cum - low)


def _following_integer_backlog(target: np.ndarray, to_vm: np.ndarray,
                               start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer backlog b_t <= target_t that never serves more than it holds.

    Served so far S_t is the running max of (b_0 + arrivals so far - target_t), so served
    per tick is never negative and b_t = b_0 + arrivals so far - S_t >= 0.
    """
    cum_in = start[:, None] + np.cumsum(to_vm, axis=1)
    served_total = np.maximum.accumulate(np.maximum(cum_in - target, 0), axis=1)
    backlog = cum_in - served_total
    served = np.diff(served_total, axis=1, prepend=0)
    return backlog, served


def step(params: Params, state: State, action: np.ndarray,
         rngs: dict[str, np.random.Generator]) -> tuple[State, dict[str, np.ndarray]]:
    """Advance all envs by one control interval under ``action`` (N, 2K) in [-1, 1].

    Returns the new state and a dict of per-env outputs (costs, counts, latency, stats).
    Ticks are vectorized too: each stage's whole interval is computed with array scans
    (cumulative sums and running extrema), stage after stage. For speed the state's arrays are
    updated in place and the same object is returned (``state.copy()`` first to keep the old
    one); all randomness comes from ``rngs``, so (state, action, rngs) determine the result.
    """
    s = state
    n, k, dt, ticks = s.time_s.shape[0], params.num_stages, params.dt, params.ticks_per_step
    targets, shares = decode_action(params, action)
    out: dict[str, np.ndarray] = {
        "cost_vm": np.zeros(n), "cost_faas": np.zeros(n), "cost_transfer": np.zeros(n),
        "vm_seconds": np.zeros(n), "vm_launches": np.zeros(n),
    }
    apply_vm_targets(params, s, targets, out)
    running_t, billable_t = _vm_timeline(params, s, ticks)
    out["cost_vm"] += (billable_t.sum(axis=0) * params.vm_price_per_s).sum(axis=1) * dt
    out["vm_seconds"] += billable_t.sum(axis=(0, 2)) * dt

    # keep-alive ring: one block per control step; the oldest block has expired
    block = (s.clock // ticks) % params.ka_blocks
    s.ka_ring[block] = 0
    live_before = s.ka_ring.max(axis=0)  # (N, K) containers alive at step start

    probs = exit_probabilities(params, s)
    tt = params.traces
    pos = (s.trace_start_s + s.time_s / params.time_warp)[:, None] \
        + np.arange(ticks + 1)[None, :] * (dt / params.time_warp)
    cum = tt.cumulative_at(np.repeat(s.trace_idx, ticks + 1), pos.ravel()).reshape(n, ticks + 1)
    expected = np.diff(cum, axis=1)
    fresh = np.diff(np.floor(cum + 1e-9), axis=1).astype(np.int64)
    exact = tt.exact[s.trace_idx]
    if not exact.all():
        drawn = rngs["arrivals"].poisson(np.maximum(expected, 0.0))
        fresh = np.where(exact[:, None], fresh, drawn)
    arrived = fresh.sum(axis=1)

    stage_in = np.zeros((n, k), dtype=np.int64)
    served_vm = np.zeros((n, k), dtype=np.int64)
    served_faas = np.zeros((n, k), dtype=np.int64)
    exits = np.zeros((n, k), dtype=np.int64)
    cold_starts = np.zeros((n, k), dtype=np.int64)
    continued = np.zeros((n, k), dtype=np.int64)
    dropped = np.zeros(n, dtype=np.int64)
    throttled = np.zeros(n, dtype=np.int64)
    lam = np.zeros((n, k))
    saturated_ticks = np.zeros((n, k))  # share of VM-serving ticks with an overload backlog
    mean_servers = np.zeros((n, k))
    backlog_share = np.zeros((n, k))
    backlog_delay = np.zeros((n, k))
    warm = np.zeros((n, k))
    conc_now = np.zeros((n, k))
    faas_gb_s = np.zeros(n)
    noise = rngs["service"].standard_normal((2, n, k))
    conc_limit = params.concurrency_limit

    inflow, fluid = fresh, expected
    for i in range(k):
        total_in = inflow.sum(axis=1)
        stage_in[:, i] = total_in
        running = running_t[:, :, i].T  # (N, T)
        no_vm = running == 0
        # weighted round-robin: cumulative function share, floored
        share = shares[:, i, None]
        cum_faas = np.floor(s.lb_carry[:, i, None] + share * np.cumsum(inflow, axis=1))
        wrr = np.diff(cum_faas, axis=1, prepend=0.0).astype(np.int64)
        s.lb_carry[:, i] = s.lb_carry[:, i] + shares[:, i] * total_in - cum_faas[:, -1]
        if no_vm.any():
            to_faas = np.where(no_vm, inflow, wrr)
            fluid_faas = np.where(no_vm, fluid, fluid * share)
        else:
            to_faas, fluid_faas = wrr, fluid * share
        to_vm = inflow - to_faas
        fluid_vm = fluid - fluid_faas
        # with no VM at step start the waiting requests go to functions
        moved = np.where(no_vm[:, 0], s.backlog[:, i], 0)
        b0 = s.backlog[:, i] - moved
        bf0 = np.where(no_vm[:, 0], 0.0, s.backlog_fluid[:, i])
        servers = running * params.slots[i]
        capacity = servers * (dt / params.vm_mean_s[i])
        limit = params.queue_limit_per_slot[i] * np.maximum(servers, 1)
        bf = _lindley(fluid_vm - capacity, bf0)
        over_fluid = bf > limit
        if over_fluid.any():
            bf = _capped_lindley(fluid_vm - capacity, bf0, limit)
        target = np.minimum(np.rint(bf).astype(np.int64), limit)
        backlog, vm_done = _following_integer_backlog(target, to_vm, b0)
        over = np.zeros_like(backlog)
        full = np.flatnonzero(over_fluid.any(axis=1))
        if full.size:  # the queue hit its limit: serve at capacity, drop the excess
            backlog[full], vm_done[full], over[full] = _drop_over_limit(
                to_vm[full], b0[full], target[full], limit[full], capacity[full])
        dropped += over.sum(axis=1)
        s.backlog[:, i] = backlog[:, -1]
        s.backlog_fluid[:, i] = bf[:, -1]
        served_vm[:, i] = vm_done.sum(axis=1)
        bf_prev = np.concatenate([bf0[:, None], bf[:, :-1]], axis=1)
        b_prev = np.concatenate([b0[:, None], backlog[:, :-1]], axis=1)
        overloaded = bf > 0
        ok = ~overloaded & ~no_vm
        n_ok = ok.sum(axis=1)
        n_full = (overloaded & ~no_vm).sum(axis=1)
        saturated_ticks[:, i] = n_full / np.maximum(n_ok + n_full, 1)
        lam[:, i] = np.where(n_ok > 0, (np.where(ok, fluid_vm + bf_prev, 0.0)).sum(axis=1)
                             / np.maximum(n_ok * dt, 1e-12), 0.0)
        mean_servers[:, i] = np.where(n_ok > 0, np.where(ok, servers, 0).sum(axis=1)
                                      / np.maximum(n_ok, 1), 0.0)
        delayed = np.where(overloaded, vm_done, np.minimum(b_prev, vm_done))
        drain = 0.5 * (bf_prev + bf) * params.vm_mean_s[i] / np.maximum(servers, 1)
        n_delayed = delayed.sum(axis=1)
        backlog_share[:, i] = n_delayed / np.maximum(served_vm[:, i], 1)
        backlog_delay[:, i] = (delayed * drain).sum(axis=1) / np.maximum(n_delayed, 1)
        # functions: concurrency limit, containers, cold starts
        invocations = to_faas
        invocations[:, 0] += moved
        mean_f = params.faas_mean_s[i] / dt
        offered = invocations * mean_f  # mean concurrency the invocations ask for
        conc_now[:, i] = offered[:, -1]
        others = conc_now[:, :i].sum(axis=1) + s.concurrency[:, i + 1:].sum(axis=1)
        total = offered + others[:, None]
        allowed = invocations
        busy_ticks = total > 0.5 * conc_limit  # below, Erlang-B blocking is negligible
        if busy_ticks.any():
            # the account limit is a loss system: Erlang-B (insensitive to the service-time
            # distribution) gives the share of invocations throttled
            blocked = erlang_b(np.full(int(busy_ticks.sum()), conc_limit), total[busy_ticks])
            allowed = invocations.copy()
            allowed[busy_ticks] -= rngs["service"].binomial(invocations[busy_ticks], blocked)
        throttled += (invocations - allowed).sum(axis=1)
        conc = allowed * mean_f
        # containers a warm pool keeps: the peak concurrency a + z sqrt(a) (capped by the
        # invocations); requests that find every ready container busy start a new one cold
        need = np.where(allowed > 0, np.minimum(np.ceil(conc + params.headroom * np.sqrt(conc)),
                                                allowed), 0).astype(np.int64)
        need = np.maximum(need, allowed > 0)
        ready0 = live_before[:, i]
        cold = np.zeros_like(allowed)
        risky = (conc + 3.0 * np.sqrt(conc) > ready0[:, None]) & (allowed > 0)
        rows = np.flatnonzero(risky.any(axis=1))
        if rows.size:
            cold[rows] = _cold_starts(allowed[rows], conc[rows], ready0[rows],
                                      params.cold_ready, rngs["service"])
        created = np.cumsum(cold, axis=1)
        peak = np.maximum.accumulate(need, axis=1)
        # containers used this step (they stay warm for keep_alive_s): the ready ones the
        # peak needed, plus every container a cold start created
        used = np.maximum(peak, np.minimum(ready0[:, None], peak) + created)
        s.ka_ring[block, :, i] = used[:, -1]
        live = np.maximum(ready0[:, None], used)
        n_allowed = allowed.sum(axis=1)
        n_cold = cold.sum(axis=1)
        cold_starts[:, i] = n_cold
        served_faas[:, i] = n_allowed
        warm[:, i] = live.mean(axis=1)
        busy = n_allowed * params.faas_billed_s[i] \
            + np.sqrt(n_allowed * params.faas_billed_var[i]) * noise[0, :, i]
        init = n_cold * params.cold_billed_s + np.sqrt(n_cold * params.cold_var) * noise[1, :, i]
        faas_gb_s += (np.maximum(busy, 0.0) + np.maximum(init, 0.0)) * params.faas_gb[i]
        out["cost_faas"] += n_allowed * params.price_request
        # exits after this stage
        finished = vm_done + allowed
        if i == k - 1:
            inflow = np.zeros_like(finished)
            exits[:, i] = finished.sum(axis=1)
        else:
            inflow = _split_continuing(finished, rngs["exits"], 1.0 - probs[:, i])
            exits[:, i] = (finished - inflow).sum(axis=1)
        continued[:, i] = inflow.sum(axis=1)
        kept = np.where(invocations > 0, allowed / np.maximum(invocations, 1), 1.0)
        fluid = (np.maximum(bf_prev + fluid_vm - bf, 0.0) + fluid_faas * kept) \
            * (1.0 - probs[:, i, None])
    s.concurrency = conc_now
    s.clock += ticks
    s.time_s = s.time_s + ticks * dt
    completed = exits.sum(axis=1)

    out["cost_faas"] += faas_gb_s * params.price_gb_s
    handled = served_vm + served_faas
    share_faas = np.where(handled > 0, served_faas / np.maximum(handled, 1), shares)
    if k > 1:
        src = np.stack([1.0 - share_faas[:, :-1], share_faas[:, :-1]], axis=-1)
        dst = np.stack([1.0 - share_faas[:, 1:], share_faas[:, 1:]], axis=-1)
        price = np.einsum("nkr,nks,rs->nk", src, dst, params.transfer_price)
        out["cost_transfer"] += (continued[:, :-1] * params.transfer_gb * price).sum(axis=1)

    if params.drift_vol > 0:  # Ornstein-Uhlenbeck drift of the exit logits
        decay = math.exp(-ticks * dt / params.drift_reversion_s)
        s.drift = s.drift * decay + params.drift_vol * math.sqrt(1 - decay * decay) \
            * rngs["drift"].standard_normal(s.drift.shape)
    s.steps = s.steps + 1

    # --- waiting (pointwise-stationary M/G/c on the interval's unsaturated ticks) and latency
    stable = lam * params.vm_mean_s < mean_servers
    # a round-robin split keeping a share q of a Poisson stream for the VMs smooths it:
    # inter-arrival squared coefficient of variation ~ q (keeping every 2nd: Erlang-2, 1/2)
    vm_keep = np.clip(1.0 - shares, 0.0, 1.0)
    p_wait, wait_mean = mgc_wait(mean_servers, np.where(stable, lam, 0.0), params.vm_mean_s,
                                 params.vm_cv, np.where(vm_keep > 0, vm_keep, 1.0))
    p_wait = np.where(stable, p_wait, 0.0)
    wait_mean = np.where(stable, wait_mean, 0.0)
    cold_share = np.minimum(cold_starts / np.maximum(served_faas, 1), 1.0)
    exit_w = exits / np.maximum(completed, 1)[:, None]
    stats = params.latency.compute(share_faas, p_wait, wait_mean, backlog_share, backlog_delay,
                                   cold_share, exit_w)
    has_done = completed > 0
    violation_p = np.where(has_done, stats.violation_probability, 0.0)
    violations = completed * violation_p + dropped + throttled
    quantiles = np.where(has_done[:, None], stats.quantiles_s, 0.0)

    s.total_arrived += arrived
    s.total_completed += completed
    s.total_dropped += dropped + throttled
    cost = out["cost_vm"] + out["cost_faas"] + out["cost_transfer"]
    reward = -(params.w_cost * cost / params.cost_scale
               + params.w_slo * violations / params.request_scale)
    rates = fresh / dt
    vm_share_w = 1.0 - backlog_share
    out.update({
        "cost": cost,
        "reward": reward,
        "arrived": arrived,
        "completed": completed,
        "dropped": dropped,
        "throttled": throttled,
        "in_system": s.backlog.sum(axis=1),
        "violations": violations,
        "violation_probability": violation_p,
        "latency_quantiles": quantiles,
        "rate_mean": rates.mean(axis=1),
        "rate_std": rates.std(axis=1),
        "stage_arrivals": stage_in,
        "served_vm": served_vm,
        "served_faas": served_faas,
        "faas_share": share_faas,
        "cold_starts": cold_starts,
        "exits": exits,
        "queue": s.backlog + p_wait * lam * wait_mean,
        "wait_probability": np.where(served_vm > 0, p_wait * vm_share_w + backlog_share, 0.0),
        "wait_mean_s": np.where(served_vm > 0, p_wait * wait_mean * vm_share_w
                                + backlog_share * backlog_delay, 0.0),
        # overloaded ticks count as fully utilised (the servers never idle there)
        "utilisation": saturated_ticks + (1.0 - saturated_ticks) * np.where(
            mean_servers > 0, np.minimum(lam * params.vm_mean_s
                                         / np.maximum(mean_servers, 1e-12), 1.0), 0.0),
        "warm_containers": warm,
        "vm_running": s.vm_running.copy(),
        "vm_booting": s.vm_booting.copy(),
        "exit_probabilities": probs,
    })
    s.prev_action = np.asarray(action, dtype=np.float32).copy()
    return s, out


def _split_continuing(finished: np.ndarray, rng: np.random.Generator,
                      p_continue: np.ndarray) -> np.ndarray:
    """Requests (N, T) that go on to the next stage: a binomial draw per env over the interval,
    spread over its ticks in proportion to the requests finished in each tick.

    Each request continues independently with ``p_continue``, so the interval total is
    exactly Binomial(sum finished, p); the spread keeps 0 <= continuing_t <= finished_t.
    """
    cum = np.cumsum(finished, axis=1)
    total = cum[:, -1]
    going = rng.binomial(total, p_continue)
    share = going / np.maximum(total, 1)
    cum_going = np.floor(cum * share[:, None] + 1e-9).astype(np.int64)
    cum_going[:, -1] = going
    return np.diff(cum_going, axis=1, prepend=0)


def _cold_starts(allowed: np.ndarray, concurrency: np.ndarray, ready0: np.ndarray,
                 ready_delay: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cold starts per tick (M, T) for envs whose traffic may outgrow their ready containers.

    Ready containers form a loss system: an invocation finds all of them busy with the
    Erlang-B probability of the offered concurrency, and then starts a new container, which
    becomes usable after its cold start (spread over the next ticks by ``ready_delay``). A
    burst on a cold pool therefore makes a cold-start storm, as on Lambda: requests keep
    starting containers until the first ones are ready.
    """
    m, ticks = allowed.shape
    cold = np.zeros_like(allowed)
    pending = np.zeros((m, ticks + ready_delay.size + 1))
    ready = ready0.astype(float)
    for t in range(ticks):
        ready += pending[:, t]
        blocked = erlang_b(ready, concurrency[:, t])
        cold[:, t] = rng.binomial(allowed[:, t], np.where(allowed[:, t] > 0, blocked, 0.0))
        pending[:, t + 1: t + 1 + ready_delay.size] += cold[:, t, None] * ready_delay
    return cold


def _capped_lindley(x: np.ndarray, start: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """b_t = min(limit_t, max(0, b_{t-1} + x_t)), tick by tick (only under heavy overload)."""
    out = np.empty_like(x)
    b = start.astype(float)
    for t in range(x.shape[1]):
        b = np.minimum(np.maximum(b + x[:, t], 0.0), limit[:, t])
        out[:, t] = b
    return out


def _drop_over_limit(to_vm: np.ndarray, start: np.ndarray, target: np.ndarray,
                     limit: np.ndarray, capacity: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tick-by-tick integer queue at its limit: serve at most the tick's capacity (carrying
    its fraction), keep up to the limit, drop the rest."""
    backlog = np.empty_like(to_vm)
    served = np.empty_like(to_vm)
    over = np.empty_like(to_vm)
    b = start.copy()
    carry = np.zeros(b.shape)
    for t in range(to_vm.shape[1]):
        have = b + to_vm[:, t]
        budget = capacity[:, t] + carry
        can = np.floor(budget).astype(np.int64)
        done = np.minimum(np.maximum(have - target[:, t], 0), can)
        carry = np.where(done < can, 0.0, budget - can)
        keep = have - done
        drop = np.maximum(keep - limit[:, t], 0)
        served[:, t] = done
        b = keep - drop
        over[:, t] = drop
        backlog[:, t] = b
    return backlog, served, over


QUANTILE_NAMES = tuple(f"latency_p{int(q * 100)}_s" for q in QUANTILES)
