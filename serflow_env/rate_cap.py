"""Cap-mode routing (``routing.mode: cap``): a per-tick VM rate cap with overflow to functions,
as LIBRA's and SERFLOW's load balancers route.

The action sets per stage a cap as a fraction of the running VMs' service capacity
(``running VMs * slots / mean VM service time``). Each tick the stage's VMs may take
``cap * capacity * tick_s`` requests: the whole part of that budget plus the fractional
remainder carried from the last tick (so the long-run rate is exact), and the first requests of
the tick up to it go to the VMs, the rest to functions at once. VMs still booting do not count;
with no VM running, every request goes to functions. Both simulators use
:func:`tick_budget` and :func:`cap_allowance`, so their allowances are identical.

How the VM queue sees the capped stream (checked against the per-request reference by the
``cap-burst`` fidelity case): the VMs receive the *first* requests of each tick, so when the
cap binds they receive the stage's full stream (Poisson at its raw rate lambda) for the first
``tau = A / lambda`` of the tick (A the allowance) and nothing after; the queue then empties.

* The expected VM arrivals per tick are ``E[min(N, budget)]`` with N the stage's requests in
  the tick (normal approximation of a Poisson count, mean = variance = the fluid intensity);
  the fluid backlog of :func:`serflow_env.vm_pool.vm_queue` follows them (it forms only when
  the cap exceeds the capacity).
* Ticks whose raw rate is below the VMs' capacity wait as M/G/c (Erlang-C, Allen-Cunneen with
  Poisson arrivals) at the *raw* rate, weighted by each tick's VM requests. Where the cap
  binds, the queue has only ``tau`` to build up, so the mean wait is at most the transient one
  of a reflected Brownian motion started empty (drift ``lambda - mu c``, variance rate
  ``lambda + mu c cv^2``, less (servers + 1) / 2, averaged over arrivals in ``[0, tau]``,
  :func:`transient_wait`): the Erlang-C wait is scaled down to ``min(stationary, transient)``
  for the share of VM requests in binding ticks.
* The overflow is the *last* requests of the tick: they reach the functions at the stage's raw
  rate within the end of the tick, so the functions see the concurrency of that rate while it
  lasts (:func:`overflow_concentration`), which sizes the warm pool and its cold starts.
* Ticks whose raw rate exceeds the capacity while their VM arrivals fit in it (cap <= 1) build
  a backlog inside the tick and empty it before the next: those requests count as delayed
  behind a backlog, uniform on ``[0, 2 W]`` with W the transient mean wait (mixed with the
  delays of :func:`~serflow_env.vm_pool.vm_queue`'s overload backlog).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr, ndtr

from serflow_env.params import Params
from serflow_env.scans import diff_ticks, running
from serflow_env.state import State
from serflow_env.totals import IntervalTotals

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def tick_budget(params: Params, i: int, cap: np.ndarray, servers: np.ndarray) -> np.ndarray:
    """Requests (fractional) stage i's VMs may take per tick (T, M): ``cap`` (M,) times the
    capacity of the running servers per tick (T, M) over one tick (a read-only broadcast of
    one row where ``servers`` is one, as the fast model's steady servers are)."""
    per_tick = params.dt / params.vm_mean_s[i]
    if servers.strides[0] == 0:
        return np.broadcast_to(cap * servers[0] * per_tick, servers.shape)
    return cap * servers * per_tick


def cap_allowance(budget: np.ndarray, carry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole requests the VMs take at most per tick (T, M) for per-tick budgets (T, M), and
    the fractional remainder (M,) after the last tick (``carry`` is the one before the first).

    The allowance of tick t is ``floor(carry + budget_1..t) - floor(carry + budget_1..t-1)``,
    so over any run of ticks it is the budget to within one request.
    """
    cum = running(np.add, budget)
    cum += carry
    floored = np.floor(cum + 1e-9)
    return diff_ticks(floored), np.maximum(cum[-1] - floored[-1], 0.0)


def idle_faas_share(cap: np.ndarray, vm_running: np.ndarray) -> np.ndarray:
    """Function share reported for a stage that handled no request: 0 where it has a running VM
    and a positive cap (what it would have done), else 1."""
    return np.where((cap > 0) & (vm_running > 0), 0.0, 1.0)


def route_capped(params: Params, s: State, i: int, inflow: np.ndarray, fluid: np.ndarray,
                 servers: np.ndarray, cap: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                            np.ndarray, np.ndarray]:
    """Stage i's requests (T, N) under a VM rate cap ``cap`` (N,), in :func:`route_stage`'s
    order: (to functions, to VMs, their fluid intensities, ticks without a VM, requests in),
    then the per-tick budget (T, N). The fractional remainder lives in ``s.lb_carry``."""
    budget = tick_budget(params, i, cap, servers)
    allow, s.lb_carry[:, i] = cap_allowance(budget, s.lb_carry[:, i])
    to_vm = np.minimum(inflow, allow)
    fluid_vm = expected_capped(fluid, budget)
    return (inflow - to_vm, to_vm, fluid - fluid_vm, fluid_vm, servers == 0,
            inflow.sum(axis=0), budget)


def _row_or_min(x: np.ndarray) -> np.ndarray:
    """The minimum over the ticks (axis 0) of x (T, N): its one row where x is a broadcast
    of one (as a steady stage's servers and budgets are)."""
    return x[0] if x.strides[0] == 0 else x.min(axis=0)


def _may_bind(fluid: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Envs (indices) where a count of mean and variance ``fluid`` (T, N) may exceed the
    budget in some tick (within five standard deviations)."""
    top = fluid.max(axis=0)
    return np.flatnonzero(top + 5.0 * np.sqrt(top) > _row_or_min(budget))


def expected_capped(fluid: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """E[min(N, budget)] (T, N) for a count N of mean and variance ``fluid`` (normal law)."""
    out = np.minimum(fluid, budget)
    rows = _may_bind(fluid, budget)
    if rows.size:
        sub_f, sub_b = fluid[:, rows], budget[:, rows]
        near = sub_f + 5.0 * np.sqrt(sub_f) > sub_b
        lam, cap = sub_f[near], sub_b[near]
        sd = np.maximum(np.sqrt(lam), 1e-12)
        d = (lam - cap) / sd
        over = (lam - cap) * ndtr(d) + sd * np.exp(-0.5 * d * d) * _INV_SQRT_2PI
        sub = out[:, rows]
        sub[near] = np.minimum(np.maximum(lam - over, 0.0), np.minimum(lam, cap))
        out[:, rows] = sub
    return out


def overflow_concentration(params: Params, i: int, inflow: np.ndarray,
                           to_faas: np.ndarray) -> np.ndarray | None:
    """Concurrency multiplier (T, N) of stage i's function invocations: the overflow of a tick
    arrives at the stage's raw rate within the last ``to_faas / inflow`` of it, so a function
    call of mean duration S overlaps ``min(to_faas, inflow S / tick_s)`` others instead of
    ``to_faas S / tick_s``: the ratio ``min(tick_s / S, inflow / to_faas)``, at least 1
    (None where it is 1 throughout)."""
    ticks_per_call = params.dt / params.faas_mean_s[i]
    if ticks_per_call <= 1.0 or not to_faas.any():  # None: no change
        return None
    return np.maximum(np.minimum(ticks_per_call, inflow / np.maximum(to_faas, 1.0)), 1.0)


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(4)
# the quadrature's time fractions and halved weights as (4, 1) columns over the nodes
_GL_TIMES = (0.5 * (_GL_NODES + 1.0))[:, None]
_GL_HALF_WEIGHTS = (0.5 * _GL_WEIGHTS)[:, None]


def transient_wait(lam: np.ndarray, servers: np.ndarray, mean_s: float | np.ndarray,
                   cv: float | np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Mean wait (s) of Poisson arrivals at rate ``lam`` during ``[0, tau]`` to ``servers``
    servers that start empty, in a diffusion approximation.

    The queue at time s is taken as ``(M_s - h)^+``: M_s the running maximum of a Brownian
    motion from 0 with drift theta = lam - mu c and variance rate sigma^2 = lam + mu c cv^2 (the
    law of the reflected one at time s), less ``h = (servers + 1) / 2`` requests for the
    servers the stream must fill first (the drift is larger than theta while some idle; h = 0
    would assume them busy from the start, h = servers that they fill at the busy drift).
    Against a per-request simulation of the capped tick (Poisson arrivals, the first A of the
    tick to c servers from empty, log-normal service cv 0.6; tests/test_rate_cap.py) on
    c = 2, 4, 8 at 1.2-2.5x capacity and caps 0.75 and 1, h = (c + 1) / 2 is within +5 /
    -10 % (c = 2, 4: within 5 %), h = c / 2 was up to 17 % high for c = 2. With
    m = theta s, u = sigma sqrt(s), k = 2 theta / sigma^2:
    ``E[(M_s - h)^+] = u (phi(z) - z Phi(-z)) + (Phi(-z) - e^{k h} Phi(-(h + m) / u)) / k``,
    z = (h - m) / u. The wait is that queue over mu c, averaged over s (Gauss-Legendre: the
    four nodes as one (4, ...) array, summed node after node).
    """
    mu_c = np.maximum(servers / mean_s, 1e-12)
    theta = lam - mu_c
    theta = np.where(np.abs(theta) < 1e-9, 1e-9, theta)
    var = np.maximum(lam + mu_c * cv * cv, 1e-12)
    k = 2.0 * theta / var
    h = 0.5 * (servers + 1.0)
    flat = (-1,) + (1,) * max(np.ndim(theta), np.ndim(tau))  # nodes against the inputs' axes
    t = _GL_TIMES.reshape(flat) * tau  # (4, ...)
    u = np.sqrt(var * t)
    np.maximum(u, 1e-12, out=u)
    m = theta * t
    z = h - m
    z /= u
    tail = ndtr(-z)
    queue = np.exp(-0.5 * z * z)
    queue *= _INV_SQRT_2PI
    queue -= z * tail
    queue *= u
    m += h
    m /= u
    np.negative(m, out=m)
    bound = log_ndtr(m)
    bound += k * h
    np.minimum(bound, 700.0, out=bound)
    np.exp(bound, out=bound)
    np.subtract(tail, bound, out=tail)
    tail /= k
    queue += tail
    np.maximum(queue, 0.0, out=queue)
    queue *= _GL_HALF_WEIGHTS.reshape(flat)
    return np.add.reduce(queue, axis=0) / mu_c


def capped_stage(params: Params, i: int, fluid: np.ndarray, to_vm: np.ndarray,
                 fluid_vm: np.ndarray, servers: np.ndarray, budget: np.ndarray,
                 acc: IntervalTotals) -> tuple[np.ndarray, ...] | None:
    """Stage i's waiting under the cap (see the module docstring), its ticks (T, N): the
    Erlang-C rate ``acc.wait_lam[i]`` at the stream's rate, no binding share and the whole
    tick as the time to the cap. Envs whose stream stays clear of the budget and of the
    capacity in every tick (usually most) are done; the others (returned: their columns
    ``i N + env`` of the (K N) stage-env grid and their ticks of each input, None without
    any) run the per-tick rules of :func:`capped_waits` after the stage loop, all stages
    at once."""
    dt = params.dt
    per_tick = dt / params.vm_mean_s[i]
    top = fluid.max(axis=0)
    low_capacity = _row_or_min(servers) * per_tick
    rows = np.flatnonzero((top + 5.0 * np.sqrt(top) > _row_or_min(budget))
                          | (top >= low_capacity))
    total = fluid.sum(axis=0)
    acc.wait_lam[i] = np.where(total > 0, (fluid * fluid).sum(axis=0)
                               / np.maximum(total, 1e-12) / dt, 0.0)
    acc.wait_bind[i] = 0.0
    acc.wait_tau[i] = dt
    if not rows.size:
        return None
    return (rows + i * fluid.shape[1], fluid[:, rows], to_vm[:, rows], fluid_vm[:, rows],
            servers[:, rows], budget[:, rows])


def capped_waits(params: Params, n: int, selected: list[tuple[np.ndarray, ...]],
                 acc: IntervalTotals) -> np.ndarray | None:
    """The per-tick rules of the cap-mode waits (see the module docstring) for the columns
    :func:`capped_stage` selected in every stage (their columns of the (K N) stage-env grid
    and ticks (T, M), concatenated: each rule is one array operation): the binding share
    ``acc.wait_bind`` and the time to the cap ``acc.wait_tau``, the Erlang-C rate
    ``acc.wait_lam`` over the calm ticks, and the in-tick backlog delays of ticks above
    capacity, mixed into ``acc.backlog_*`` (after :func:`vm_queue
    <serflow_env.vm_pool.vm_queue>` set them). Returns the transient mean waits (K, N) that
    :func:`limit_waits` needs where ``wait_bind`` is not 0 (0 elsewhere, where any finite
    value gives the same; None where no cap binds), computed in the same call as the in-tick
    ones."""
    k = acc.wait_lam.shape[0]
    dt = params.dt
    # one transient_wait for the in-tick backlogs and for limit_waits
    parts: list[tuple[np.ndarray, ...]] = []
    burst = None
    if selected:
        rows, fluid, to_vm, fluid_vm, servers, budget = (
            np.concatenate(part, axis=-1) if len(selected) > 1 else part[0]
            for part in zip(*selected))
        burst = _binding_waits(params, n, rows, fluid, fluid_vm, servers, budget, acc)
    if burst is not None:
        mask, tau = burst
        stage = (rows // n)[None, :].repeat(fluid.shape[0], axis=0)[mask]
        parts.append((fluid[mask] / dt, servers[mask], params.vm_mean_s[stage],
                      params.vm_cv[stage], tau[mask]))
    # limit_waits weighs the transient wait by wait_bind: needed only where that is not 0
    bound = np.flatnonzero(acc.wait_bind)
    if bound.size:
        stage = bound // n
        parts.append((acc.wait_lam.reshape(-1)[bound], acc.mean_servers.reshape(-1)[bound],
                      params.vm_mean_s[stage], params.vm_cv[stage],
                      acc.wait_tau.reshape(-1)[bound]))
    if not parts:
        return None
    waits = transient_wait(*(np.concatenate(column) if len(parts) > 1 else column[0]
                             for column in zip(*parts)))
    if burst is not None:
        mask = burst[0]
        count = int(np.count_nonzero(mask))
        w = np.zeros(mask.shape)
        w[mask] = 2.0 * waits[:count]
        _mix_backlog(n, rows, mask, to_vm, w, acc)
        waits = waits[count:]
    if not bound.size:
        return None
    transient = np.zeros(k * n)
    transient[bound] = waits
    return transient.reshape(k, n)


def _binding_waits(params: Params, n: int, rows: np.ndarray, fluid: np.ndarray,
                   fluid_vm: np.ndarray, servers: np.ndarray, budget: np.ndarray,
                   acc: IntervalTotals) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`capped_waits` for the (stage, env) columns ``rows`` (of K N) whose cap may bind
    or whose stream may reach the capacity (their ticks (T, M)). Returns the ticks above
    capacity whose VM arrivals fit in it (T, M), whose in-tick backlog is mixed in after the
    transient waits, and the time to the cap (T, M) (None without such ticks)."""
    dt = params.dt
    mean_s = params.vm_mean_s[rows // n]
    tick_capacity = servers * (dt / mean_s)
    fits = (servers > 0) & (fluid_vm <= tick_capacity)  # no backlog across ticks in the fluid
    calm = fits & (fluid < tick_capacity)
    weight = np.where(calm, fluid_vm, 0.0)
    total_w = weight.sum(axis=0)
    safe_w = np.maximum(total_w, 1e-12)
    wait_lam, wait_bind, wait_tau = (a.reshape(-1) for a in (acc.wait_lam, acc.wait_bind,
                                                              acc.wait_tau))
    wait_lam[rows] = np.where(total_w > 0, (weight * fluid).sum(axis=0) / safe_w / dt, 0.0)
    # where the cap binds (probability P(N > budget), normal approximation) the VMs take the
    # stream for the first budget / N of the tick
    tau = np.minimum(budget / np.maximum(fluid, 1e-12), 1.0) * dt
    binding = weight * ndtr((fluid - budget) / np.maximum(np.sqrt(fluid), 1e-12))
    bind_w = binding.sum(axis=0)
    wait_bind[rows] = bind_w / safe_w
    wait_tau[rows] = np.where(bind_w > 0, (binding * tau).sum(axis=0)
                              / np.maximum(bind_w, 1e-12), dt)
    burst = fits & ~calm & (fluid > 0)
    if not burst.any():
        return None
    return burst, tau


def _mix_backlog(n: int, rows: np.ndarray, burst: np.ndarray, to_vm: np.ndarray,
                 w: np.ndarray, acc: IntervalTotals) -> None:
    """Mix the in-tick backlog delays, uniform on [0, w] (T, M) for the VM arrivals ``to_vm``
    of the ``burst`` ticks of the columns ``rows``, into ``acc.backlog_*``."""
    n_new = np.where(burst, to_vm, 0.0)
    count_new = n_new.sum(axis=0)
    served = acc.served_vm.reshape(-1)[rows]
    backlog_share = acc.backlog_share.reshape(-1)
    share = backlog_share[rows]
    count_old = share * served
    both = np.maximum(count_old + count_new, 1e-12)
    weighted = n_new * w  # n w, n w^2, n w^3 in turn
    moments = [weighted.sum(axis=0) / 2.0]
    for power in (3.0, 4.0):
        weighted *= w
        moments.append(weighted.sum(axis=0) / power)
    for field, new in zip((acc.backlog_delay, acc.backlog_delay_m2, acc.backlog_delay_m3),
                          moments):
        flat = field.reshape(-1)
        old = flat[rows]
        flat[rows] = np.where(count_new > 0, (count_old * old + new) / both, old)
    backlog_share[rows] = np.where(count_new > 0, np.minimum(
        (count_old + count_new) / np.maximum(served, 1), 1.0), share)


def limit_waits(acc: IntervalTotals, p_wait: np.ndarray, wait_mean: np.ndarray,
                transient: np.ndarray | None) -> np.ndarray:
    """The Erlang-C conditional mean waits (K, N) scaled so that the unconditional mean is
    ``(1 - b) W + b min(W, transient)`` with b the share of VM requests in binding ticks and
    ``transient`` the transient mean waits (K, N) :func:`capped_waits` returned (None where
    no cap binds: the waits as they are)."""
    if transient is None:
        return wait_mean
    stationary = p_wait * wait_mean
    limited = (1.0 - acc.wait_bind) * stationary \
        + acc.wait_bind * np.minimum(stationary, transient)
    with np.errstate(invalid="ignore"):  # unstable queues (infinite waits) are masked later
        return np.where(stationary > 0, wait_mean * limited / np.maximum(stationary, 1e-300),
                        wait_mean)
