"""One control step of the vectorized SERFLOW queueing model: ``step(params, state, action,
rngs)``, which updates the state it is given (see its docstring) and returns per-env outputs.

Shapes: N environments, K stages, T ticks per control step. Every per-env quantity is an array
with a leading N axis; the only Python loops are over ticks and stages (never over envs).

Model, per tick of ``dt`` seconds (how faithful it is: the README's model section and
docs/FIDELITY.md):

* Arrivals come from a trace: exact per-second counts are released as they are, spread evenly
  within their second; rate traces draw Poisson counts. Each request's exit stage is decided
  after each stage by a binomial draw from the exit stream with the current exit probabilities.
* Within a tick a request passes all stages (stage latencies are far below a tick); only VM
  overload makes it wait across ticks, in a FIFO backlog.
* Routing (``routing.mode``): in share mode a weighted round-robin load balancer sends the
  chosen share of each stage's requests to functions, the rest to the stage's VM pool; in cap
  mode the VMs take the first requests of each tick up to a rate cap, the rest go to functions
  (:mod:`serflow_env.rate_cap`). With no VM running, all go to functions.
* VM pool: ``c = running VMs * slots`` servers of mean service time ``m``. The backlog follows
  the fluid ``b' = max(0, b + arrivals - c dt / m)``, capped at the queue limit (excess dropped);
  requests served from the backlog wait its drain time (uniform within the tick; at the limit
  the stationary law of a diffusion reflected at 0 and at the limit);
  waiting below saturation is pointwise-stationary M/G/c (Erlang-C with Kimura's M/M/c-M/D/c
  interpolation, arrival variability by Whitt's QNA, cut at the queue limit's drain time),
  evaluated per control interval. VMs boot for ``boot_s`` and are billed per second
  from launch with a ``min_billed_s`` minimum; removals take the youngest VMs first (booting
  ones before running ones) and stop billing.
* Functions: containers live ``keep_alive_s`` after their last use, so a stage's pool is the
  running maximum of its concurrency over the keep-alive: each step draws its maximum (the
  extremes of the M/G/inf concurrency), and one that passes the containers alive starts the
  difference cold (at steady load too, as the top containers expire between visits). Where
  the traffic outgrows the ready containers they are a loss system: an invocation that finds
  them all busy (Erlang-B) starts a new container cold, ready ``cold_start`` later (when in
  the tick, from the arrivals' position in it), so bursts on a cold pool make cold-start
  storms, and their requests reach the next stage late (into the next step if need be).
  Cold starts are billed and added to latency. The account concurrency limit is a loss
  system: invocations are throttled (dropped) with the Erlang-B blocking probability of the
  offered concurrency of all stages.
  Billed duration is rounded up to the billing granularity and includes initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from serflow_env.functions import serve_functions
from serflow_env.params import Params
from serflow_env.queueing import limited_wait_mean, mgc_wait
from serflow_env.rate_cap import (
    capped_stage,
    capped_waits,
    idle_faas_share,
    limit_waits,
    overflow_concentration,
    route_capped,
)
from serflow_env.routing import decode_action, exit_probabilities, route_stage, split_continuing
from serflow_env.scans import mean_std_ticks
from serflow_env.state import State
from serflow_env.totals import IntervalTotals
from serflow_env.vm_pool import apply_vm_targets, vm_queue, vm_timeline


def _arrival_position(params: Params, arrived_at: np.ndarray | None, inflow: np.ndarray,
                      to_faas: np.ndarray) -> Callable[[np.ndarray], np.ndarray | None]:
    """The mean position within each tick (T, len(rows)) of the function invocations of some
    envs, for :func:`serve_functions`: the stage's arrivals' (``arrived_at``, None: 1/2) in
    share mode, whose round-robin split keeps their timing; in cap mode the overflow, the
    last ``to_faas / inflow`` of the tick's arrivals: 1 - f (1 - p) for arrivals at mean
    position p (1 - f / 2 for uniform ones)."""
    def position(rows: np.ndarray) -> np.ndarray | None:
        at = None if arrived_at is None else arrived_at[:, rows]
        if not params.cap_routing:
            return at
        share = to_faas[:, rows] / np.maximum(inflow[:, rows], 1.0)
        return 1.0 - np.minimum(share, 1.0) * (1.0 - (0.5 if at is None else at))
    return position


def step(params: Params, state: State, action: np.ndarray,
         rngs: dict[str, np.random.Generator]) -> tuple[State, dict[str, np.ndarray]]:
    """Advance all envs by one control interval under ``action`` (N, 2K) in [-1, 1].

    Returns ``(state, outputs)``: the SAME State object it was given, advanced, and a dict of
    per-env outputs (costs, counts, latency, stats). The input state is mutated, not copied:
    its ring buffers, backlogs and totals are modified in place, some other fields
    (``time_s``, ``steps``, ``drift``, ``vm_running``, ...) are replaced by new arrays, and
    ``clock`` advances; call ``state.copy()`` first to keep the old state. ``params`` and
    ``action`` are not modified. All randomness comes from ``rngs`` (which advance), so
    (state, action, rngs) determine the result.

    Ticks are vectorized too: each stage's whole interval is computed with array scans
    (cumulative sums and running extrema), stage after stage.
    """
    s = state
    n, k, dt, ticks = s.time_s.shape[0], params.num_stages, params.dt, params.ticks_per_step
    targets, routing = decode_action(params, action)
    out: dict[str, np.ndarray] = {
        "cost_vm": np.zeros(n), "cost_faas": np.zeros(n), "cost_transfer": np.zeros(n),
        "vm_seconds": np.zeros(n), "vm_launches": np.zeros(n),
    }
    apply_vm_targets(params, s, targets, out)
    servers_t, billable = vm_timeline(params, s, ticks)
    out["cost_vm"] += (billable * params.vm_price_per_s).sum(axis=1) * dt
    out["vm_seconds"] += billable.sum(axis=1) * dt

    # keep-alive ring: one block per control step; the oldest block has expired
    block = (s.clock // ticks) % params.ka_blocks
    s.ka_ring[block] = 0
    # containers alive at step start (K, N)
    live_before = s.ka_ring.max(axis=0).T.astype(np.float64, order="C")

    probs = exit_probabilities(params, s)
    fresh, expected = _tick_arrivals(params, s, rngs["arrivals"])
    acc = IntervalTotals.zeros(k, n)
    noise = rngs["service"].standard_normal((k, n))  # billed-duration noise per stage

    inflow, fluid = fresh, expected
    arrived_at: np.ndarray | None = None  # arrivals' mean position per tick (None: 1/2)
    capped = []  # cap mode: the stage-envs whose waits run the per-tick rules, their ticks
    for i in range(k):
        if params.cap_routing:
            to_faas, to_vm, fluid_faas, fluid_vm, no_vm, acc.stage_in[i], budget = \
                route_capped(params, s, i, inflow, fluid, servers_t[i], routing[:, i])
        else:
            to_faas, to_vm, fluid_faas, fluid_vm, no_vm, acc.stage_in[i] = route_stage(
                params, s, i, inflow, fluid, servers_t[i], routing[:, i])
        vm_done, vm_out, moved = vm_queue(params, s, i, to_vm, fluid_vm, servers_t[i], no_vm,
                                           acc)
        concentration = None
        if params.cap_routing:
            selected = capped_stage(params, i, fluid, to_vm, fluid_vm, servers_t[i], budget,
                                    acc)
            if selected is not None:
                capped.append(selected)
            concentration = overflow_concentration(params, i, inflow, to_faas)
        to_faas[0] += moved  # with no VM at step start the waiting requests go to functions
        faas_done, kept, done_at = serve_functions(
            params, s, i, to_faas, live_before[i], block, acc, rngs["service"], noise[i],
            concentration, _arrival_position(params, arrived_at, inflow, to_faas))
        finished = vm_done + faas_done
        if i == k - 1:
            acc.exits[i] = finished.sum(axis=0)
            break
        arrived_at = None  # the next stage's arrivals' mean position in each tick
        if done_at is not None:  # a storm's requests finish late: VMs' spread over the tick
            arrived_at = (0.5 * vm_done + done_at * faas_done) / np.maximum(finished, 1e-12)
        inflow, total, acc.continued[i] = split_continuing(finished, rngs["exits"],
                                                            1.0 - probs[:, i])
        acc.exits[i] = total - acc.continued[i]
        fluid = (vm_out + fluid_faas * kept) * (1.0 - probs[:, i])
    transient = None  # cap mode: the transient mean waits where the cap binds (K, N)
    if params.cap_routing:  # the per-tick rules of every stage's waits at once
        transient = capped_waits(params, n, capped, acc)
    s.concurrency = np.ascontiguousarray(acc.conc_now.T)
    s.clock += ticks
    s.time_s = s.time_s + ticks * dt
    completed = acc.exits.sum(axis=0)

    out["cost_faas"] += acc.served_faas.sum(axis=0) * params.price_request \
        + acc.faas_gb_s * params.price_gb_s
    handled = acc.served_vm + acc.served_faas
    idle_share = (idle_faas_share(routing, s.vm_running) if params.cap_routing else routing).T
    share_faas = np.where(handled > 0, acc.served_faas / np.maximum(handled, 1), idle_share)
    if k > 1:
        out["cost_transfer"] += (acc.continued[:-1] * params.transfer_gb[:, None]
                                 * _transfer_price(params, share_faas)).sum(axis=0)

    if params.drift_vol > 0:  # Ornstein-Uhlenbeck drift of the exit logits
        decay = math.exp(-ticks * dt / params.drift_reversion_s)
        s.drift = s.drift * decay + params.drift_vol * math.sqrt(1 - decay * decay) \
            * rngs["drift"].standard_normal(s.drift.shape)
    s.steps = s.steps + 1
    out.update(_interval_outputs(params, s, acc, fresh, completed, share_faas, routing, probs,
                                  transient))
    out["cost"] = out["cost_vm"] + out["cost_faas"] + out["cost_transfer"]
    out["reward"] = -(params.w_cost * out["cost"] / params.cost_scale
                      + params.w_slo * out["violations"] / params.request_scale)
    s.prev_action = np.asarray(action, dtype=np.float32).copy()
    return s, out


def _tick_arrivals(params: Params, s: State, rng: np.random.Generator
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


def _transfer_price(params: Params, share_faas: np.ndarray) -> np.ndarray:
    """$/GB of the activation sent from stage k to k + 1 (K-1, N), mixed by the route shares
    (VM or functions) on both sides."""
    a, b = share_faas[:-1], share_faas[1:]
    p = params.transfer_price
    return (1.0 - a) * ((1.0 - b) * p[0, 0] + b * p[0, 1]) + a * ((1.0 - b) * p[1, 0]
                                                                 + b * p[1, 1])


def _vm_arrival_scv(params: Params, acc: IntervalTotals, probs: np.ndarray,
                    routing: np.ndarray) -> np.ndarray:
    """Squared coefficient of variation of the inter-arrival times each stage's VM pool sees
    (K, N), by Whitt's QNA (Bell Syst. Tech. J. 62, 1983). Stage 1's stream is Poisson (1).
    In share mode the round-robin split keeping a share q for the VMs smooths a stream of
    scv a to q a (keeping every 2nd of a Poisson stream: Erlang-2, 1/2); in cap mode the VMs
    see the stage's stream as it is while they take it. A VM pool at utilisation rho with c
    servers passes on ``1 + (1 - rho^2)(ca^2 - 1) + rho^2 (cs^2 - 1) / sqrt(c)`` (a busy pool
    with regular service smooths its stream); functions pass on a Poisson stream (their
    service times, long against the gaps between invocations, shuffle the order); the two
    merge weighted by their counts, and the exits thin the merge to ``r c^2 + 1 - r`` (r the
    share going on)."""
    # with y = scv - 1 of the stage's stream, every step above is linear: the VMs see
    # 1 + keep (y + 1) - 1 (keep = 1 in cap mode), the next stage's stream has
    # y' = go_on vm_share ((1 - rho^2)(VM input - 1) + rho^2 (cs^2 - 1) / sqrt(c)), so the
    # coefficients are (K, N) array operations and only y' = P y + Q runs over the stages
    servers = acc.mean_servers
    rho = np.minimum(acc.lam * params.vm_mean_s[:, None] / np.maximum(servers, 1e-12), 1.0)
    rho2 = rho * rho
    if params.cap_routing:
        keep = np.ones_like(rho)
    else:
        keep = np.clip(1.0 - routing.T, 0.0, 1.0)
        keep = np.where(keep > 0, keep, 1.0)
    handled = acc.served_vm + acc.served_faas
    vm_share = np.where(handled > 0, acc.served_vm / np.maximum(handled, 1.0), 0.0)
    carry = (1.0 - probs.T[:-1]) * vm_share[:-1]  # (K-1, N): going on, from the VMs
    smooth = (1.0 - rho2) * keep  # (K, N): the VM input's y passed on
    slope = carry * smooth[:-1]
    service = (params.vm_cv[:-1] ** 2 - 1.0)[:, None]
    offset = carry * ((1.0 - rho2[:-1]) * (keep[:-1] - 1.0)
                      + rho2[:-1] * service / np.sqrt(np.maximum(servers[:-1], 1.0)))
    y = np.zeros_like(rho)
    for i in range(params.num_stages - 1):
        y[i + 1] = slope[i] * y[i] + offset[i]
    return keep * (y + 1.0)


def _interval_outputs(params: Params, s: State, acc: IntervalTotals, fresh: np.ndarray,
                      completed: np.ndarray, share_faas: np.ndarray, routing: np.ndarray,
                      probs: np.ndarray, transient: np.ndarray | None = None
                      ) -> dict[str, np.ndarray]:
    """Waiting, latency, violations, reward and the per-env statistics of the interval
    (``transient``: cap mode's transient mean waits, :func:`~serflow_env.rate_cap.limit_waits`).

    Waiting is pointwise-stationary M/G/c on the interval's unsaturated ticks. Per-stage
    outputs are (N, K) views of the (K, N) accumulators.
    """
    vm_mean = params.vm_mean_s[:, None]
    lam, servers = acc.lam, acc.mean_servers
    stable = lam * vm_mean < servers
    # a round-robin split keeping a share q of a Poisson stream for the VMs smooths it:
    # inter-arrival squared coefficient of variation ~ q (keeping every 2nd: Erlang-2, 1/2)
    # (in cap mode the VMs see the stage's Poisson stream at its raw rate while they take it)
    arrival_scv = _vm_arrival_scv(params, acc, probs, routing)
    if params.cap_routing:
        wait_lam = acc.wait_lam
        stable = wait_lam * vm_mean < servers
    else:
        wait_lam = lam
    p_wait, wait_mean = mgc_wait(servers, np.where(stable, wait_lam, 0.0), vm_mean,
                                 params.vm_cv[:, None], arrival_scv)
    if params.cap_routing:
        wait_mean = limit_waits(acc, p_wait, wait_mean, transient)
    # behind a queue limit nobody waits longer than the limit's drain time: the exponential
    # wait is cut off there (only where that changes it by more than e^-20 of the limit)
    top = (params.queue_limit_per_slot * params.vm_mean_s)[:, None]
    near = np.nonzero(stable & (wait_mean > top / 20.0))
    if near[0].size:
        wait_mean[near] = limited_wait_mean(wait_mean[near], top[near[0], 0])
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
    rate_mean, rate_std = mean_std_ticks(fresh / params.dt)
    served_vm = acc.served_vm > 0
    vm_share_w = 1.0 - acc.backlog_share
    utilisation = acc.saturated + (1.0 - acc.saturated) * np.where(
        servers > 0, np.minimum(lam * vm_mean / np.maximum(servers, 1e-12), 1.0), 0.0)
    return {
        "arrived": arrived,
        "completed": completed_i,
        "dropped": dropped,
        "throttled": throttled,
        "in_system": s.backlog.sum(axis=1) + s.faas_late.sum(axis=(0, 1)).astype(np.int64),
        "violations": violations,
        "violation_probability": violation_p,
        "latency_quantiles": quantiles,
        "latency_cdf": stats.cdf,
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
