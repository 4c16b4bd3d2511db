"""A stage's VM pool: launches and removals (boot and minimum-billing rings), the servers per
tick, and the FIFO queue in front of them (fluid backlog, integer backlog, drops at the limit,
the delay behind an overload backlog)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from serflow_env.params import Params
from serflow_env.queueing import reflected_queue_moments
from serflow_env.scans import diff_ticks, previous_ticks, running
from serflow_env.state import State
from serflow_env.totals import IntervalTotals


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
        launch_cost = launch * params.vm_price_per_s * params.min_billed_s
        out["cost_vm"] += launch_cost.sum(axis=1)
        out["vm_seconds"] += (launch * params.min_billed_s).sum(axis=1)
        if params.boot_ticks == 0:
            s.vm_running += launch
        else:
            s.boot_ring[(s.clock + params.boot_ticks) % s.boot_ring.shape[0]] += launch
            s.vm_booting += launch
        if params.young_ticks > 0:
            s.young_ring[(s.clock + params.young_ticks) % s.young_ring.shape[0]] += launch
            s.vm_young += launch
    out["vm_launches"] += launch.sum(axis=1)


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


def vm_timeline(params: Params, s: State, ticks: int) -> tuple[np.ndarray, np.ndarray]:
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


def vm_queue(params: Params, s: State, i: int, to_vm: np.ndarray, fluid_vm: np.ndarray,
              servers: np.ndarray, no_vm: np.ndarray, acc: IntervalTotals
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
        o = _overloaded(params, i, excess[:, rows], to_vm[:, rows], fluid_vm[:, rows],
                        servers[:, rows], np.broadcast_to(capacity, servers.shape)[:, rows],
                        no_vm[:, rows], b0[rows], bf0[rows])
        s.backlog[rows, i] = o.backlog
        s.backlog_fluid[rows, i] = o.backlog_fluid
        acc.dropped[rows] += o.dropped
        acc.backlog_share[i, rows] = o.delayed_share
        acc.backlog_delay[i, rows] = o.delay_mean
        acc.backlog_delay_m2[i, rows] = o.delay_m2
        acc.backlog_delay_m3[i, rows] = o.delay_m3
        n_ok[rows] = o.ok_ticks
        n_full[rows] = o.full_ticks
        lam_sum[rows] = o.lam_sum
        servers_sum[rows] = o.servers_sum
        vm_done = vm_done.copy()
        vm_done[:, rows] = o.served
        vm_out[:, rows] = o.outflow
        acc.served_vm[i] = vm_done.sum(axis=0)
    acc.saturated[i] = n_full / np.maximum(n_ok + n_full, 1)
    acc.lam[i] = np.where(n_ok > 0, lam_sum / np.maximum(n_ok * params.dt, 1e-12), 0.0)
    acc.mean_servers[i] = np.where(n_ok > 0, servers_sum / np.maximum(n_ok, 1), 0.0)
    return vm_done, vm_out, moved


class Overload(NamedTuple):
    """Results of :func:`_overloaded` for the envs it was given (M,) or their ticks (T, M)."""

    served: np.ndarray  # (T, M) requests served per tick
    outflow: np.ndarray  # (T, M) fluid leaving the pool per tick
    backlog: np.ndarray  # integer backlog at the end of the step
    backlog_fluid: np.ndarray  # fluid backlog at the end of the step
    dropped: np.ndarray  # requests dropped at the queue limit
    ok_ticks: np.ndarray  # ticks with a VM and no backlog (quasi-stationary M/G/c)
    full_ticks: np.ndarray  # ticks with a VM and a backlog (saturated)
    lam_sum: np.ndarray  # expected VM arrivals over the ok ticks
    servers_sum: np.ndarray  # servers summed over the ok ticks
    delayed_share: np.ndarray  # share of the served requests delayed behind the backlog
    delay_mean: np.ndarray  # mean of that delay, and its second and third raw moments
    delay_m2: np.ndarray
    delay_m3: np.ndarray


def _overloaded(params: Params, i: int, excess: np.ndarray, to_vm: np.ndarray,
                fluid_vm: np.ndarray, servers: np.ndarray, capacity: np.ndarray,
                no_vm: np.ndarray, b0: np.ndarray, bf0: np.ndarray) -> Overload:
    """Backlog dynamics over the ticks (T, M) of stage i's envs that may queue (M of them).

    ``excess`` is the fluid arrivals minus the capacity per tick; ``b0`` and ``bf0`` are the
    integer and fluid backlogs at step start. The fluid backlog follows the capped Lindley
    recursion; the integer backlog follows it (``_following_integer_backlog``), or, where the
    queue hit its limit, serves at capacity and drops the excess. Ticks with a backlog count
    as saturated; the requests served from the backlog wait the drain time of the fluid
    backlog (uniform within their tick): the latency model gets the mean and the second and
    third moments of that delay.
    """
    limit = params.queue_limit_per_slot[i] * np.maximum(servers, 1.0)
    bf, full = _capped_lindley(excess, bf0, limit)
    target = np.minimum(np.rint(bf), limit)
    backlog, done = _following_integer_backlog(target, to_vm, b0)
    hit = np.flatnonzero(full)
    dropped = np.zeros(b0.shape)
    if hit.size:  # the queue hit its limit: serve at capacity, drop the excess
        backlog[:, hit], done[:, hit], over = _drop_over_limit(
            to_vm[:, hit], b0[hit], target[:, hit], limit[:, hit], capacity[:, hit])
        dropped[hit] = over.sum(axis=0)
    bf_prev = previous_ticks(bf0, bf)
    b_prev = previous_ticks(b0, backlog)
    overloaded = bf > 0
    serving = ~no_vm
    ok = ~overloaded & serving
    # the requests served from the backlog in a tick wait the drain time of the fluid
    # backlog, which moves linearly from a (tick start) to b (tick end): uniform on [a, b]
    # (weighting the tick's arrivals instead agreed worse with the reference in closed loop)
    per_server = params.vm_mean_s[i] / np.maximum(servers, 1.0)
    a, b = bf_prev * per_server, bf * per_server
    delayed = np.where(overloaded, done, np.minimum(b_prev, done))
    n_delayed = delayed.sum(axis=0)
    weight = delayed / np.maximum(n_delayed, 1)
    # the backlog's spread around the fluid path: each busy tick adds the variance of its
    # arrivals (Poisson) and services (cv^2 per service), from 0 at the last tick without a
    # backlog (a diffusion approximation); none where the queue hit its limit
    inc = np.where(overloaded, fluid_vm + capacity * params.vm_cv[i] ** 2, 0.0)
    total = running(np.add, inc, in_place=True)
    since_idle = running(np.maximum, np.where(overloaded, 0.0, total), in_place=True)
    var_d = (total - since_idle) * per_server * per_server
    var_d[:, full] = 0.0
    mean_d = 0.5 * (a + b)
    # the queue cannot outgrow its limit: the delay lies in [0, limit x per_server], so its
    # variance is at most mean (top - mean) (Bhatia-Davis); the spread is capped to that
    top = limit * per_server
    var_u = (b - a) ** 2 / 12.0
    var_d = np.minimum(var_d, np.maximum(mean_d * (top - mean_d) - var_u, 0.0))
    m2 = (a * a + a * b + b * b) / 3.0 + var_d
    m3 = (a + b) * (a * a + b * b) / 4.0 + 3.0 * mean_d * var_d
    # a fluid backlog at its limit: the queue is a diffusion reflected at 0 and at the limit
    # (drift: the tick's excess; variance: its arrivals' and services'), which it reaches
    # within a few drain times; the requests it admits find its stationary law, not the limit
    at_limit = overloaded & (bf >= limit * (1.0 - 1e-9)) & (excess > 0)
    if at_limit.any():
        spread = fluid_vm[at_limit] + capacity[at_limit] * params.vm_cv[i] ** 2  # per tick
        kappa = 2.0 * excess[at_limit] / np.maximum(spread, 1e-12)
        x1, x2, x3 = reflected_queue_moments(kappa, limit[at_limit])
        ps = per_server[at_limit]
        mean_d[at_limit] = x1 * ps
        m2[at_limit] = x2 * ps * ps
        m3[at_limit] = x3 * ps * ps * ps
    # what the fluid backlog lets through, never more than the capacity: at the queue limit
    # the excess is dropped, not passed on to the next stage
    outflow = np.minimum(np.maximum(bf_prev + fluid_vm - bf, 0.0), capacity)
    return Overload(
        served=done,
        outflow=outflow,
        backlog=backlog[-1],
        backlog_fluid=bf[-1],
        dropped=dropped,
        ok_ticks=ok.sum(axis=0),
        full_ticks=(overloaded & serving).sum(axis=0),
        lam_sum=np.where(ok, fluid_vm + bf_prev, 0.0).sum(axis=0),
        servers_sum=np.where(ok, servers, 0.0).sum(axis=0),
        delayed_share=n_delayed / np.maximum(done.sum(axis=0), 1),
        delay_mean=(weight * mean_d).sum(axis=0),
        delay_m2=(weight * m2).sum(axis=0),
        delay_m3=(weight * m3).sum(axis=0),
    )


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
    return cum_in - served_total, diff_ticks(served_total)


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
