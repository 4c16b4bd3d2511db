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
  requests served from the backlog wait its drain time (uniform within the tick);
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
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from serflow_env import distributions
from serflow_env.arrivals import TraceTable, resolve_traces
from serflow_env.latency import QUANTILES, LatencyModel, MomentLatency
from serflow_env.queueing import erlang_b, mgc_wait
from serflow_env.scans import running
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
    # (K, J, N) containers started cold that become ready in each of the next J ticks: alive
    # (in ka_ring) but not yet usable, carried over the end of a control step
    faas_starting: np.ndarray
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
        # int32: container counts fit, and its maximum over the blocks (every step) is
        # twice as fast as over int64
        ka_ring=np.zeros((params.ka_blocks, n, k), dtype=np.int32),
        faas_starting=np.zeros((k, params.cold_ready.size, n)),
        concurrency=np.zeros((n, k)),
        prev_action=np.zeros((n, 2 * k), dtype=np.float32),
        total_arrived=zeros_i(n),
        total_completed=zeros_i(n),
        total_dropped=zeros_i(n),
    )
    return reset_envs(params, state, np.ones(n, dtype=bool), rngs)


RESET_OPTIONS = ("start_s", "trace_index")


def validate_reset_options(params: Params, options: Mapping[str, Any] | None) -> None:
    """Check ``reset(options=...)``: ``start_s`` (trace second, >= 0) and ``trace_index``."""
    if not options:
        return
    unknown = sorted(set(options) - set(RESET_OPTIONS))
    if unknown:
        raise ValueError(f"reset options: unknown {unknown}; allowed {list(RESET_OPTIONS)}")
    if "trace_index" in options:
        idx = options["trace_index"]
        count = len(params.traces.lengths)
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) \
                or not 0 <= idx < count:
            raise ValueError(f"reset options: trace_index={idx!r}; allowed 0...{count - 1}")
    if "start_s" in options:
        start = options["start_s"]
        if isinstance(start, bool) or not isinstance(start, (int, float, np.integer,
                                                              np.floating)) \
                or not np.isfinite(start) or start < 0:
            raise ValueError(f"reset options: start_s={start!r}; allowed [0, inf)")


def draw_episode_starts(params: Params, rngs: dict[str, np.random.Generator], count: int,
                        options: Mapping[str, Any] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Trace index and start second of ``count`` new episodes, from the episode stream.

    ``options`` (an explicit ``reset(options=...)``) fix ``trace_index`` and/or ``start_s``
    for all of them; the stream is drawn either way, so a seed's later episodes do not depend
    on the options. Both simulators call this, so they start their episodes alike.
    """
    validate_reset_options(params, options)
    ep = rngs["episode"]
    tt = params.traces
    idx = (ep.integers(0, len(tt.lengths), size=count) if len(tt.lengths) > 1
           else np.zeros(count, dtype=np.int64))
    start = (np.floor(ep.random(count) * tt.lengths[idx]) if params.random_start
             else np.zeros(count))
    if options and "trace_index" in options:
        idx = np.full(count, int(options["trace_index"]), dtype=np.int64)
    if options and "start_s" in options:
        start = np.full(count, float(options["start_s"]))
    return idx, start


def reset_envs(params: Params, state: State, mask: np.ndarray,
               rngs: dict[str, np.random.Generator],
               options: Mapping[str, Any] | None = None) -> State:
    """Reset the environments where ``mask`` is true; the others are untouched.

    ``options`` (see :func:`draw_episode_starts`) apply before anything is sized from the
    episode's start (the function prewarm reads the first second of traffic).
    """
    validate_reset_options(params, options)
    s = state.copy()
    m = np.asarray(mask, dtype=bool)
    count = int(m.sum())
    if count == 0:
        return s
    tt = params.traces
    idx, start = draw_episode_starts(params, rngs, count, options)
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
    s.faas_starting[:, :, m] = 0.0
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


# --- scans over the tick axis ------------------------------------------------------------------
# Inside a step the per-tick arrays are laid out (T, N): ticks first, so that each tick is one
# contiguous row of N envs. Scans over the T ticks are then T vector operations on rows, and
# reductions over ticks sum rows; both are several times faster than numpy's scans and
# reductions along a short last axis of an (N, T) array. Counts are float64 arrays holding
# integers (exact below 2**53), which avoids int/float conversions in the mixed arithmetic.


def _diff_ticks(cum: np.ndarray) -> np.ndarray:
    """Per-tick increments of a running total from zero (the inverse of a running sum)."""
    out = cum.copy()
    np.subtract(cum[1:], cum[:-1], out=out[1:])
    return out


def _previous_ticks(first: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The value before each tick (T, M): row t holds x[t - 1], row 0 holds ``first``."""
    out = np.empty_like(x)
    out[0] = first
    out[1:] = x[:-1]
    return out


def _mean_std_ticks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation over the tick axis 0 of a (T, N) array, as
    ``x.mean(axis=0)`` and ``x.std(axis=0)`` compute them, without their Python overhead."""
    ticks = x.shape[0]
    mean = x.sum(axis=0) / ticks
    dev = x - mean
    np.multiply(dev, dev, out=dev)
    return mean, np.sqrt(dev.sum(axis=0) / ticks)


@dataclass
class _Totals:
    """Per-stage results of one interval, (K, N) arrays filled stage by stage, and per-env
    sums over the stages (N,)."""

    stage_in: np.ndarray
    served_vm: np.ndarray
    served_faas: np.ndarray
    exits: np.ndarray
    cold_starts: np.ndarray
    continued: np.ndarray
    lam: np.ndarray  # mean VM arrival rate over the unsaturated ticks
    saturated: np.ndarray  # share of VM-serving ticks with an overload backlog
    mean_servers: np.ndarray
    backlog_share: np.ndarray
    backlog_delay: np.ndarray  # mean delay behind the backlog of the delayed requests
    backlog_delay_m2: np.ndarray  # its second and third raw moments
    backlog_delay_m3: np.ndarray
    warm: np.ndarray
    conc_now: np.ndarray
    dropped: np.ndarray  # the last three are (N,): sums over the stages
    throttled: np.ndarray
    faas_gb_s: np.ndarray

    @classmethod
    def zeros(cls, k: int, n: int) -> _Totals:
        """All zero, in two allocations (views of one (15, K, N) and one (3, N) array)."""
        names = [f.name for f in fields(cls)]
        per_stage = np.zeros((len(names) - 3, k, n))
        per_env = np.zeros((3, n))
        return cls(*per_stage, *per_env)


def _vm_timeline(params: Params, s: State, ticks: int) -> tuple[np.ndarray, np.ndarray]:
    """VM servers (running VMs x slots) per stage and tick (K, T, N), and the billable
    VM-ticks of the step (N, K).

    Boot completions and billing-minimum expiries scheduled within the step are taken from
    the rings (and cleared there). Launches and removals happen only at step start. Without
    a boot completing in the step, the servers are a read-only broadcast over the ticks.
    """
    slots = s.clock + np.arange(ticks)
    k, n = params.num_stages, s.vm_running.shape[0]
    done = None
    # the rings hold exactly the booting / young VMs, so without any there is nothing to read
    if params.boot_ticks > 0 and s.vm_booting.any():
        idx = slots % s.boot_ring.shape[0]
        done = s.boot_ring[idx]  # (T, N, K)
        s.boot_ring[idx] = 0
    if done is not None and done.any():
        servers = np.empty((k, ticks, n))  # running VMs, then their slots
        servers[:] = done.transpose(2, 0, 1)  # boots completed per tick (K, T, N)
        servers[:, 0] += s.vm_running.T
        running(np.add, servers.transpose(1, 0, 2), in_place=True)  # over the ticks
        now = servers[:, -1].T.astype(np.int64)
        s.vm_booting = s.vm_booting - (now - s.vm_running)
        s.vm_running = now
        servers *= params.slots[:, None, None]
    else:
        per_stage = (s.vm_running * params.slots).T.astype(np.float64)
        servers = np.broadcast_to(per_stage[:, None, :], (k, ticks, n))
    billable = ticks * (s.vm_running + s.vm_booting)
    if params.young_ticks > 0 and s.vm_young.any():
        idx = slots % s.young_ring.shape[0]
        expiring = s.young_ring[idx]  # (T, N, K)
        s.young_ring[idx] = 0
        # young VMs in tick t: vm_young minus the expiries up to t; summed over the ticks
        young = ticks * s.vm_young
        if expiring.any():
            weights = np.arange(ticks, 0, -1)
            young = young - (weights @ expiring.reshape(ticks, -1)).reshape(young.shape)
            s.vm_young = s.vm_young - expiring.sum(axis=0)
        billable = billable - young
    return servers, billable


def _arrivals(params: Params, s: State, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
    """Requests arriving in each tick (T, N) and the arrival intensity (expected counts)."""
    tt = params.traces
    ticks, warp = params.ticks_per_step, params.time_warp
    pos = (s.trace_start_s + s.time_s / warp)[None, :] \
        + (np.arange(ticks + 1) * (params.dt / warp))[:, None]
    cum = tt.cumulative_at(s.trace_idx[None, :], pos)  # (T + 1, N)
    expected = cum[1:] - cum[:-1]
    floored = np.floor(cum + 1e-9)
    fresh = floored[1:] - floored[:-1]
    exact = tt.exact[s.trace_idx]
    if not exact.all():
        # drawn env-major, as the reference simulator does (common random numbers)
        drawn = rng.poisson(np.maximum(expected.T, 0.0)).T.astype(np.float64, order="C")
        fresh = np.where(exact[None, :], fresh, drawn) if exact.any() else drawn
    return fresh, expected


def _route(params: Params, s: State, i: int, inflow: np.ndarray, fluid: np.ndarray,
           servers: np.ndarray, share: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted round-robin split of stage i's requests (T, N) between functions and VMs.

    Returns (to functions, to VMs, their fluid intensities, ticks without a VM, requests in).
    With no VM running in a tick, all of its requests go to functions.
    """
    cum_in = running(np.add, inflow)
    cum_faas = cum_in * share
    cum_faas += s.lb_carry[:, i]
    np.floor(cum_faas, out=cum_faas)
    to_faas = _diff_ticks(cum_faas)
    total_in = cum_in[-1]
    s.lb_carry[:, i] = s.lb_carry[:, i] + share * total_in - cum_faas[-1]
    no_vm = servers == 0
    if no_vm.any():
        to_faas = np.where(no_vm, inflow, to_faas)
        fluid_faas = np.where(no_vm, fluid, fluid * share)
    else:
        fluid_faas = fluid * share
    return to_faas, inflow - to_faas, fluid_faas, fluid - fluid_faas, no_vm, total_in


def _vm_queue(params: Params, s: State, i: int, to_vm: np.ndarray, fluid_vm: np.ndarray,
              servers: np.ndarray, no_vm: np.ndarray, acc: _Totals
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage i's VM pool over the interval: requests served per tick (T, N), the fluid
    leaving the pool (T, N) and the waiting requests moved to functions (N,).

    Envs whose fluid backlog stays empty (arrivals below capacity, nothing queued) serve
    every request in its tick; only the others (usually few) run the backlog scans.
    """
    ticks = to_vm.shape[0]
    backlog0 = s.backlog[:, i].astype(np.float64)
    start_no_vm = no_vm[0]
    moved = np.where(start_no_vm, backlog0, 0.0)
    b0 = backlog0 - moved
    bf0 = np.where(start_no_vm, 0.0, s.backlog_fluid[:, i])
    per_tick = params.dt / params.vm_mean_s[i]
    steady = servers.strides[0] == 0  # a broadcast row: no VM finished booting in the step
    if steady:
        capacity = (servers[0] * per_tick)[None, :]  # (1, N): the same in every tick
        servers_sum = ticks * servers[0]
    else:
        capacity = servers * per_tick
        servers_sum = servers.sum(axis=0)
    excess = fluid_vm - capacity
    rows = np.flatnonzero((excess.max(axis=0) > 0) | (bf0 > 0) | (b0 > 0))

    # envs without a backlog: fluid_vm and servers are 0 in ticks without a VM
    vm_done, vm_out = to_vm, np.maximum(fluid_vm, 0.0)
    lam_sum = fluid_vm.sum(axis=0)
    s.backlog[:, i] = 0
    s.backlog_fluid[:, i] = 0.0
    acc.served_vm[i] = vm_done.sum(axis=0)
    if rows.size == 0 and steady and not start_no_vm.any():  # every tick served, none full
        acc.lam[i] = lam_sum / (ticks * params.dt)  # (saturated stays 0)
        acc.mean_servers[i] = servers[0]
        return vm_done, vm_out, moved
    n_ok = ticks - no_vm.sum(axis=0)
    n_full = np.zeros_like(backlog0)
    if rows.size:
        vm_done = vm_done.copy()
        _overloaded(params, s, i, rows, acc, excess[:, rows], to_vm[:, rows],
                    fluid_vm[:, rows], servers[:, rows],
                    np.broadcast_to(capacity, servers.shape)[:, rows], no_vm[:, rows],
                    b0[rows], bf0[rows], vm_done, vm_out, n_ok, n_full, lam_sum, servers_sum)
        acc.served_vm[i] = vm_done.sum(axis=0)
    acc.saturated[i] = n_full / np.maximum(n_ok + n_full, 1)
    acc.lam[i] = np.where(n_ok > 0, lam_sum / np.maximum(n_ok * params.dt, 1e-12), 0.0)
    acc.mean_servers[i] = np.where(n_ok > 0, servers_sum / np.maximum(n_ok, 1), 0.0)
    return vm_done, vm_out, moved


def _overloaded(params: Params, s: State, i: int, rows: np.ndarray, acc: _Totals,
                excess: np.ndarray, to_vm: np.ndarray, fluid_vm: np.ndarray,
                servers: np.ndarray, capacity: np.ndarray, no_vm: np.ndarray,
                b0: np.ndarray, bf0: np.ndarray, vm_done: np.ndarray, vm_out: np.ndarray,
                n_ok: np.ndarray, n_full: np.ndarray, lam_sum: np.ndarray,
                servers_sum: np.ndarray) -> None:
    """Backlog dynamics of the envs ``rows`` (M) of stage i, written into the full arrays.

    The fluid backlog follows the capped Lindley recursion; the integer backlog follows it
    (``_following_integer_backlog``), or, where the queue hit its limit, serves at capacity
    and drops the excess. Ticks with a backlog count as saturated; the requests served from
    the backlog wait the drain time of the fluid backlog (uniform within their tick): the
    latency model gets the mean and the second and third moments of that delay.
    """
    limit = params.queue_limit_per_slot[i] * np.maximum(servers, 1.0)
    bf, full = _capped_lindley(excess, bf0, limit)
    target = np.minimum(np.rint(bf), limit)
    backlog, done = _following_integer_backlog(target, to_vm, b0)
    hit = np.flatnonzero(full)
    if hit.size:  # the queue hit its limit: serve at capacity, drop the excess
        backlog[:, hit], done[:, hit], over = _drop_over_limit(
            to_vm[:, hit], b0[hit], target[:, hit], limit[:, hit], capacity[:, hit])
        acc.dropped[rows[hit]] += over.sum(axis=0)
    s.backlog[rows, i] = backlog[-1]
    s.backlog_fluid[rows, i] = bf[-1]
    bf_prev = _previous_ticks(bf0, bf)
    b_prev = _previous_ticks(b0, backlog)
    overloaded = bf > 0
    serving = ~no_vm
    ok = ~overloaded & serving
    n_ok[rows] = ok.sum(axis=0)
    n_full[rows] = (overloaded & serving).sum(axis=0)
    lam_sum[rows] = np.where(ok, fluid_vm + bf_prev, 0.0).sum(axis=0)
    servers_sum[rows] = np.where(ok, servers, 0.0).sum(axis=0)
    # the requests served from the backlog in a tick wait the drain time of the fluid
    # backlog, which moves linearly from a (tick start) to b (tick end): uniform on [a, b]
    # (weighting the tick's arrivals instead agreed worse with the reference in closed loop)
    per_server = params.vm_mean_s[i] / np.maximum(servers, 1.0)
    a, b = bf_prev * per_server, bf * per_server
    delayed = np.where(overloaded, done, np.minimum(b_prev, done))
    n_delayed = delayed.sum(axis=0)
    weight = delayed / np.maximum(n_delayed, 1)
    acc.backlog_share[i, rows] = n_delayed / np.maximum(done.sum(axis=0), 1)
    # the backlog's spread around the fluid path: each busy tick adds the variance of its
    # arrivals (Poisson) and services (cv^2 per service), from 0 at the last tick without a
    # backlog (a diffusion approximation); none where the queue hit its limit
    inc = np.where(overloaded, fluid_vm + capacity * params.vm_cv[i] ** 2, 0.0)
    total = running(np.add, inc, in_place=True)
    since_idle = running(np.maximum, np.where(overloaded, 0.0, total), in_place=True)
    var_d = (total - since_idle) * per_server * per_server
    var_d[:, full] = 0.0
    mean_d = 0.5 * (a + b)
    acc.backlog_delay[i, rows] = (weight * mean_d).sum(axis=0)
    acc.backlog_delay_m2[i, rows] = (weight * ((a * a + a * b + b * b) / 3.0 + var_d)
                                     ).sum(axis=0)
    acc.backlog_delay_m3[i, rows] = (weight * ((a + b) * (a * a + b * b) / 4.0
                                               + 3.0 * mean_d * var_d)).sum(axis=0)
    vm_done[:, rows] = done
    vm_out[:, rows] = np.maximum(bf_prev + fluid_vm - bf, 0.0)


def _functions(params: Params, s: State, i: int, invocations: np.ndarray, ready0: np.ndarray,
               block: int, acc: _Totals, rng: np.random.Generator, noise: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray | float]:
    """Stage i's functions: invocations (T, N) allowed under the concurrency limit, the kept
    share of the fluid (1 unless throttled), warm pool, cold starts and GB-seconds."""
    mean_f = params.faas_mean_s[i] / params.dt
    offered = invocations * mean_f  # mean concurrency the invocations ask for
    acc.conc_now[i] = offered[-1]
    others = np.zeros(offered.shape[1])  # the other stages' concurrency (this step's or last)
    for j in range(params.num_stages):
        if j != i:
            others += acc.conc_now[j] if j < i else s.concurrency[:, j]
    allowed, kept, conc = invocations, 1.0, offered
    busy_level = 0.5 * params.concurrency_limit  # below, blocking is negligible
    busy_ticks = None
    if offered.max() + others.max() > busy_level:  # a bound first: usually far below
        total = offered + others
        busy_ticks = total > busy_level
    if busy_ticks is not None and busy_ticks.any():
        # the account limit is a loss system: Erlang-B (insensitive to the service-time
        # distribution) gives the share of invocations throttled
        blocked = erlang_b(np.full(int(busy_ticks.sum()), params.concurrency_limit),
                           total[busy_ticks])
        allowed = invocations.copy()
        allowed[busy_ticks] -= rng.binomial(invocations[busy_ticks].astype(np.int64), blocked)
        acc.throttled += (invocations - allowed).sum(axis=0)
        kept = np.where(invocations > 0, allowed / np.maximum(invocations, 1), 1.0)
        conc = allowed * mean_f
    # containers a warm pool keeps: the peak concurrency a + z sqrt(a) (capped by the
    # invocations, at least 1 with any); requests that find every ready container busy start
    # a new one cold
    peak = np.sqrt(conc)  # the containers needed per tick, then their running peak
    peak *= params.headroom
    peak += conc
    np.ceil(peak, out=peak)
    np.minimum(peak, allowed, out=peak)
    np.maximum(peak, np.minimum(allowed, 1.0), out=peak)
    running(np.maximum, peak, in_place=True)
    live = np.maximum(peak, ready0)
    used_last = peak[-1].copy()
    n_cold = np.zeros_like(used_last)
    # containers still initialising (started cold in earlier steps) are alive, not ready
    starting = s.faas_starting[i]  # (J, N)
    waiting = starting.sum(axis=0)
    ready_now = np.maximum(ready0 - waiting, 0.0)
    # x + 3 sqrt(x) rises with x, so the peak concurrency decides whether any tick may
    # outgrow the ready containers
    conc_max = conc.max(axis=0)
    rows = np.flatnonzero(conc_max + 3.0 * np.sqrt(conc_max) > ready_now)
    carried = None
    if np.any(waiting > 0):  # starting containers move on by one step
        ticks, span = invocations.shape[0], starting.shape[0]
        carried = np.zeros_like(starting)
        carried[:max(span - ticks, 0)] = starting[ticks:]
    if rows.size:
        cold, still = _cold_starts(allowed[:, rows], conc[:, rows], ready_now[rows],
                                   starting[:, rows], params.cold_ready, rng)
        if carried is None:
            carried = np.zeros_like(starting)
        carried[:, rows] = still
        # containers used this step (they stay warm for keep_alive_s): the ready ones the
        # peak needed, plus every container a cold start created
        used = np.maximum(peak[:, rows], np.minimum(ready0[rows], peak[:, rows])
                          + running(np.add, cold))
        live[:, rows] = np.maximum(ready0[rows], used)
        used_last[rows] = used[-1]
        n_cold[rows] = cold.sum(axis=0)
    if carried is not None:
        s.faas_starting[i] = carried
    s.ka_ring[block, :, i] = used_last
    n_allowed = allowed.sum(axis=0)
    acc.cold_starts[i] = n_cold
    acc.served_faas[i] = n_allowed
    acc.warm[i] = live.sum(axis=0) / live.shape[0]
    busy = n_allowed * params.faas_billed_s[i] \
        + np.sqrt(n_allowed * params.faas_billed_var[i]) * noise
    gb_s = np.maximum(busy, 0.0)
    if rows.size:  # initialisations: their own noise, drawn only where there were any
        init = n_cold[rows] * params.cold_billed_s + np.sqrt(n_cold[rows] * params.cold_var) \
            * rng.standard_normal(rows.size)
        gb_s[rows] += np.maximum(init, 0.0)
    acc.faas_gb_s += gb_s * params.faas_gb[i]
    return allowed, kept


def _transfer_price(params: Params, share_faas: np.ndarray) -> np.ndarray:
    """$/GB of the activation sent from stage k to k + 1 (K-1, N), mixed by the route shares
    (VM or functions) on both sides."""
    a, b = share_faas[:-1], share_faas[1:]
    p = params.transfer_price
    return (1.0 - a) * ((1.0 - b) * p[0, 0] + b * p[0, 1]) + a * ((1.0 - b) * p[1, 0]
                                                                 + b * p[1, 1])


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
    servers_t, billable = _vm_timeline(params, s, ticks)
    out["cost_vm"] += (billable * params.vm_price_per_s).sum(axis=1) * dt
    out["vm_seconds"] += billable.sum(axis=1) * dt

    # keep-alive ring: one block per control step; the oldest block has expired
    block = (s.clock // ticks) % params.ka_blocks
    s.ka_ring[block] = 0
    # containers alive at step start (K, N)
    live_before = s.ka_ring.max(axis=0).T.astype(np.float64, order="C")

    probs = exit_probabilities(params, s)
    fresh, expected = _arrivals(params, s, rngs["arrivals"])
    acc = _Totals.zeros(k, n)
    noise = rngs["service"].standard_normal((k, n))  # billed-duration noise per stage

    inflow, fluid = fresh, expected
    for i in range(k):
        to_faas, to_vm, fluid_faas, fluid_vm, no_vm, acc.stage_in[i] = _route(
            params, s, i, inflow, fluid, servers_t[i], shares[:, i])
        vm_done, vm_out, moved = _vm_queue(params, s, i, to_vm, fluid_vm, servers_t[i], no_vm,
                                           acc)
        to_faas[0] += moved  # with no VM at step start the waiting requests go to functions
        allowed, kept = _functions(params, s, i, to_faas, live_before[i], block, acc,
                                   rngs["service"], noise[i])
        finished = vm_done + allowed
        if i == k - 1:
            acc.exits[i] = finished.sum(axis=0)
            break
        inflow, total, acc.continued[i] = _split_continuing(finished, rngs["exits"],
                                                            1.0 - probs[:, i])
        acc.exits[i] = total - acc.continued[i]
        fluid = (vm_out + fluid_faas * kept) * (1.0 - probs[:, i])
    s.concurrency = np.ascontiguousarray(acc.conc_now.T)
    s.clock += ticks
    s.time_s = s.time_s + ticks * dt
    completed = acc.exits.sum(axis=0)

    out["cost_faas"] += acc.served_faas.sum(axis=0) * params.price_request \
        + acc.faas_gb_s * params.price_gb_s
    handled = acc.served_vm + acc.served_faas
    share_faas = np.where(handled > 0, acc.served_faas / np.maximum(handled, 1), shares.T)
    if k > 1:
        out["cost_transfer"] += (acc.continued[:-1] * params.transfer_gb[:, None]
                                 * _transfer_price(params, share_faas)).sum(axis=0)

    if params.drift_vol > 0:  # Ornstein-Uhlenbeck drift of the exit logits
        decay = math.exp(-ticks * dt / params.drift_reversion_s)
        s.drift = s.drift * decay + params.drift_vol * math.sqrt(1 - decay * decay) \
            * rngs["drift"].standard_normal(s.drift.shape)
    s.steps = s.steps + 1
    out.update(_interval_outputs(params, s, acc, fresh, completed, share_faas, shares, probs))
    out["cost"] = out["cost_vm"] + out["cost_faas"] + out["cost_transfer"]
    out["reward"] = -(params.w_cost * out["cost"] / params.cost_scale
                      + params.w_slo * out["violations"] / params.request_scale)
    s.prev_action = np.asarray(action, dtype=np.float32).copy()
    return s, out


def _interval_outputs(params: Params, s: State, acc: _Totals, fresh: np.ndarray,
                      completed: np.ndarray, share_faas: np.ndarray, shares: np.ndarray,
                      probs: np.ndarray) -> dict[str, np.ndarray]:
    """Waiting, latency, violations, reward and the per-env statistics of the interval.

    Waiting is pointwise-stationary M/G/c on the interval's unsaturated ticks. Per-stage
    outputs are (N, K) views of the (K, N) accumulators.
    """
    vm_mean = params.vm_mean_s[:, None]
    lam, servers = acc.lam, acc.mean_servers
    stable = lam * vm_mean < servers
    # a round-robin split keeping a share q of a Poisson stream for the VMs smooths it:
    # inter-arrival squared coefficient of variation ~ q (keeping every 2nd: Erlang-2, 1/2)
    vm_keep = np.clip(1.0 - shares.T, 0.0, 1.0)
    p_wait, wait_mean = mgc_wait(servers, np.where(stable, lam, 0.0), vm_mean,
                                 params.vm_cv[:, None], np.where(vm_keep > 0, vm_keep, 1.0))
    p_wait = np.where(stable, p_wait, 0.0)
    wait_mean = np.where(stable, wait_mean, 0.0)
    cold_share = np.minimum(acc.cold_starts / np.maximum(acc.served_faas, 1), 1.0)
    exit_w = acc.exits / np.maximum(completed, 1)
    stats = params.latency.compute(share_faas.T, p_wait.T, wait_mean.T, acc.backlog_share.T,
                                   acc.backlog_delay.T, cold_share.T, exit_w.T,
                                   backlog_delay_m2=acc.backlog_delay_m2.T,
                                   backlog_delay_m3=acc.backlog_delay_m3.T)
    has_done = completed > 0
    violation_p = np.where(has_done, stats.violation_probability, 0.0)
    arrived = fresh.sum(axis=0).astype(np.int64)
    completed_i = completed.astype(np.int64)
    dropped = acc.dropped.astype(np.int64)
    throttled = acc.throttled.astype(np.int64)
    violations = completed * violation_p + dropped + throttled
    quantiles = np.where(has_done[:, None], stats.quantiles_s, 0.0)
    s.total_arrived += arrived
    s.total_completed += completed_i
    s.total_dropped += dropped + throttled
    rate_mean, rate_std = _mean_std_ticks(fresh / params.dt)
    served_vm = acc.served_vm > 0
    vm_share_w = 1.0 - acc.backlog_share
    utilisation = acc.saturated + (1.0 - acc.saturated) * np.where(
        servers > 0, np.minimum(lam * vm_mean / np.maximum(servers, 1e-12), 1.0), 0.0)
    return {
        "arrived": arrived,
        "completed": completed_i,
        "dropped": dropped,
        "throttled": throttled,
        "in_system": s.backlog.sum(axis=1),
        "violations": violations,
        "violation_probability": violation_p,
        "latency_quantiles": quantiles,
        "rate_mean": rate_mean,
        "rate_std": rate_std,
        "stage_arrivals": acc.stage_in.T.astype(np.int64),
        "served_vm": acc.served_vm.T.astype(np.int64),
        "served_faas": acc.served_faas.T.astype(np.int64),
        "faas_share": share_faas.T,
        "cold_starts": acc.cold_starts.T.astype(np.int64),
        "exits": acc.exits.T.astype(np.int64),
        "queue": s.backlog + (p_wait * lam * wait_mean).T,
        "wait_probability": np.where(served_vm, p_wait * vm_share_w + acc.backlog_share,
                                     0.0).T,
        "wait_mean_s": np.where(served_vm, p_wait * wait_mean * vm_share_w
                                + acc.backlog_share * acc.backlog_delay, 0.0).T,
        # overloaded ticks count as fully utilised (the servers never idle there)
        "utilisation": utilisation.T,
        "warm_containers": acc.warm.T,
        "vm_running": s.vm_running.copy(),
        "vm_booting": s.vm_booting.copy(),
        "exit_probabilities": probs,
    }


def _capped_lindley(x: np.ndarray, start: np.ndarray, limit: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """b_t = min(limit_t, max(0, b_{t-1} + x_t)) over the ticks (T, M), and whether the
    uncapped recursion exceeded the limit in some tick (M,)."""
    out = np.empty_like(x)
    b = start
    hit = np.zeros(start.shape, dtype=bool)
    for t in range(x.shape[0]):
        b = np.maximum(b + x[t], 0.0)
        hit |= b > limit[t]
        b = np.minimum(b, limit[t], out=out[t])
    return out, hit


def _following_integer_backlog(target: np.ndarray, to_vm: np.ndarray,
                               start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer backlog b_t <= target_t (T, M) that never serves more than it holds.

    Served so far S_t is the running max of (b_0 + arrivals so far - target_t), so served
    per tick is never negative and b_t = b_0 + arrivals so far - S_t >= 0.
    """
    cum_in = running(np.add, to_vm)
    cum_in += start
    served_total = running(np.maximum, np.maximum(cum_in - target, 0.0))
    return cum_in - served_total, _diff_ticks(served_total)


def _split_continuing(finished: np.ndarray, rng: np.random.Generator, p_continue: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Requests (T, N) that go on to the next stage: a binomial draw per env over the interval,
    spread over its ticks in proportion to the requests finished in each tick. Also returns
    the finished and the continuing totals (N,).

    Each request continues independently with ``p_continue``, so the interval total is
    exactly Binomial(sum finished, p); the spread keeps 0 <= continuing_t <= finished_t.
    """
    cum = running(np.add, finished)
    total = cum[-1].copy()
    going = rng.binomial(total.astype(np.int64), p_continue).astype(np.float64)
    share = going / np.maximum(total, 1)
    cum *= share  # cum is this function's own array: reused in place
    cum += 1e-9
    cum_going = np.floor(cum, out=cum)
    cum_going[-1] = going
    return _diff_ticks(cum_going), total, going


def _cold_starts(allowed: np.ndarray, concurrency: np.ndarray, ready0: np.ndarray,
                 starting: np.ndarray, ready_delay: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Cold starts per tick (T, M) for envs whose traffic may outgrow their ready containers,
    and the containers still initialising at the end of the step (J, M), by the tick (from
    the next step's start) they become ready; ``starting`` (J, M) is that from the last step.

    Ready containers form a loss system: an invocation finds all of them busy with the
    Erlang-B probability of the offered concurrency, and then starts a new container, which
    becomes usable after its cold start (spread over the next ticks by ``ready_delay``). A
    burst on a cold pool therefore makes a cold-start storm, as on Lambda: requests keep
    starting containers until the first ones are ready.
    """
    ticks, m = allowed.shape
    span = ready_delay.size
    cold = np.zeros_like(allowed)
    pending = np.zeros((ticks + span + 1, m))
    pending[:span] = starting
    ready = ready0.astype(float)
    delay = ready_delay[:, None]
    for t in range(ticks):
        ready += pending[t]
        blocked = erlang_b(ready, concurrency[t])
        cold[t] = rng.binomial(allowed[t].astype(np.int64),
                               np.where(allowed[t] > 0, blocked, 0.0))
        pending[t + 1: t + 1 + span] += cold[t] * delay
    return cold, pending[ticks: ticks + span]


def _drop_over_limit(to_vm: np.ndarray, start: np.ndarray, target: np.ndarray,
                     limit: np.ndarray, capacity: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tick-by-tick integer queue (T, M) at its limit: serve at most the tick's capacity
    (carrying its fraction), keep up to the limit, drop the rest."""
    backlog = np.empty_like(to_vm)
    served = np.empty_like(to_vm)
    over = np.empty_like(to_vm)
    b = start.copy()
    carry = np.zeros(b.shape)
    for t in range(to_vm.shape[0]):
        have = b + to_vm[t]
        budget = capacity[t] + carry
        can = np.floor(budget)
        done = np.minimum(np.maximum(have - target[t], 0.0), can)
        carry = np.where(done < can, 0.0, budget - can)
        keep = have - done
        drop = np.maximum(keep - limit[t], 0.0)
        served[t] = done
        b = keep - drop
        over[t] = drop
        backlog[t] = b
    return backlog, served, over


QUANTILE_NAMES = tuple(f"latency_p{int(q * 100)}_s" for q in QUANTILES)
