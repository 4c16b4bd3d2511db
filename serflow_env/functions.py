"""A stage's functions: throttling at the account concurrency limit, the warm pool and its
keep-alive, cold starts and billed GB-seconds.

The pool (as the reference's: keep-alive per container, the most recently used reused) holds
every container used within the keep-alive, so its size is the running maximum of the
concurrency over that window. Each step records a draw of its own maximum concurrency in the
keep-alive ring (:func:`step_maximum`, the extremes of the M/G/inf concurrency), and a step
whose maximum passes the containers alive starts the difference cold: at steady load the top
containers expire between the concurrency's rare visits to their level, a steady stream of
cold starts. Where the traffic outgrows the ready containers, a storm (:func:`_cold_starts`):
requests that find them all busy keep starting containers until the first are ready.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from serflow_env.params import Params
from serflow_env.queueing import erlang_b
from serflow_env.scans import diff_ticks, running
from serflow_env.state import State
from serflow_env.totals import IntervalTotals


def serve_functions(params: Params, s: State, i: int, invocations: np.ndarray, ready0: np.ndarray,
               block: int, acc: IntervalTotals, rng: np.random.Generator, noise: np.ndarray,
               concentration: np.ndarray | None = None,
               position: Callable[[np.ndarray], np.ndarray | None] | None = None
               ) -> tuple[np.ndarray, np.ndarray | float, np.ndarray | None]:
    """Stage i's functions: invocations (T, N) finished per tick (those started cold finish
    later), the kept share of the fluid (1 unless throttled) and the mean position within the
    tick of the finished ones (None: the middle); warm pool, cold starts and GB-seconds in
    ``acc``.

    ``concentration`` (T, N), at least 1, multiplies the concurrency where the invocations
    arrive within part of the tick (cap mode's overflow: :mod:`serflow_env.rate_cap`).
    ``position(rows)``: the invocations' mean position within the tick (T, len(rows)), in
    [0, 1] (None: 1/2), which decides when the containers they start cold become ready;
    asked only for the envs in a cold-start storm."""
    mean_f = params.faas_mean_s[i] / params.dt
    if concentration is not None:
        mean_f = mean_f * concentration
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
    # the step's maximum concurrency (drawn) goes into the keep-alive ring; beyond the
    # containers alive, it starts the difference cold
    n_allowed = allowed.sum(axis=0)
    # the ticks near the step's busiest (within a standard deviation) set its maximum
    conc_max = conc.max(axis=0)
    near = (conc >= conc_max - np.sqrt(conc_max)).astype(np.float64)
    count = near.sum(axis=0)
    near_n = (near * allowed).sum(axis=0)
    near *= conc
    near_conc = near.sum(axis=0)
    near_conc /= np.maximum(count, 1.0)
    top = step_maximum(near_conc, near_n, rng.standard_exponential(n_allowed.size))
    # containers still initialising (started cold in earlier steps) are alive, not ready
    starting = s.faas_starting[i]  # (J, N)
    waiting = starting.sum(axis=0)
    ready_now = np.maximum(ready0 - waiting, 0.0)
    n_cold = np.maximum(top - ready0, 0.0)
    used_last = top.copy()
    live_mean = np.maximum(top, ready0)
    # a storm where a tick's mean concurrency outgrows the ready containers: every request
    # that finds them all busy starts a container until the new ones are ready
    rows = np.flatnonzero(conc_max > ready_now)
    starting_at = s.faas_starting_at[i]  # their count x mean position in the tick
    carried = carried_at = None
    if np.any(waiting > 0):  # starting containers move on by one step
        ticks = invocations.shape[0]
        carried, carried_at = _advance(starting, ticks), _advance(starting_at, ticks)
    done, done_position = allowed, None
    late_rows = np.flatnonzero(s.faas_late[i].any(axis=0)) if s.faas_late_any[i] else \
        np.zeros(0, dtype=np.int64)
    if rows.size:
        where = None if position is None else position(rows)
        cold, still, still_at, cold_at, warm_at = _cold_starts(
            allowed[:, rows], conc[:, rows], ready_now[rows], starting[:, rows],
            starting_at[:, rows],
            params.cold_ready_shifted, params.cold_ready_position, where, rng)
        if carried is None:
            carried, carried_at = np.zeros_like(starting), np.zeros_like(starting)
        carried[:, rows], carried_at[:, rows] = still, still_at
        # containers used: the ready ones the traffic needed, plus every one started cold
        base = np.minimum(ready0[rows], top[rows])
        used = running(np.add, cold)
        used += base
        live_mean[rows] = np.maximum(used, ready0[rows]).sum(axis=0) / used.shape[0]
        used_last[rows] = np.maximum(top[rows], used[-1])
        # every container beyond the live ones was started cold
        n_cold[rows] = np.maximum(cold.sum(axis=0), np.maximum(top[rows] - ready0[rows], 0.0))
        done = allowed.copy()
        done_position = np.full(allowed.shape, 0.5)
        done[:, rows], done_position[:, rows], next_late, next_late_at = \
            _finished_after_cold_starts(allowed[:, rows], cold, warm_at, params.cold_ready,
                                        params.cold_done_position)
    # requests started cold in earlier steps that finish in this one's first ticks
    late, late_at = s.faas_late[i], s.faas_late_at[i]
    if late_rows.size:
        if done is allowed:
            done, done_position = allowed.copy(), np.full(allowed.shape, 0.5)
        ticks, span = allowed.shape[0], late.shape[0]
        now = min(ticks, span)
        mine = done[:now, late_rows]
        before = mine * done_position[:now, late_rows]
        mine += late[:now, late_rows]
        before += late_at[:now, late_rows]
        done[:now, late_rows] = mine
        done_position[:now, late_rows] = np.where(mine > 0, before / np.maximum(mine, 1e-12),
                                                  0.5)
        late[:, late_rows] = _advance(late[:, late_rows], ticks)
        late_at[:, late_rows] = _advance(late_at[:, late_rows], ticks)
    if rows.size:
        late[:, rows] += next_late
        late_at[:, rows] += next_late_at
    s.faas_late_any[i] = bool(late_rows.size or rows.size)
    if carried is not None:
        s.faas_starting[i] = carried
        s.faas_starting_at[i] = carried_at
    s.ka_ring[block, :, i] = used_last
    acc.cold_starts[i] = n_cold
    acc.served_faas[i] = n_allowed
    acc.warm[i] = live_mean
    busy = n_allowed * params.faas_billed_s[i] \
        + np.sqrt(n_allowed * params.faas_billed_var[i]) * noise
    gb_s = np.maximum(busy, 0.0)
    inits = np.flatnonzero(n_cold)
    if inits.size:  # initialisations: their own noise, drawn only where there were any
        init = n_cold[inits] * params.cold_billed_s \
            + np.sqrt(n_cold[inits] * params.cold_var) * rng.standard_normal(inits.size)
        gb_s[inits] += np.maximum(init, 0.0)
    acc.faas_gb_s += gb_s * params.faas_gb[i]
    return done, kept, done_position


def _advance(ahead: np.ndarray, ticks: int) -> np.ndarray:
    """Per-tick amounts counted from the next step's start (J, ...), moved on by a step of
    ``ticks`` ticks: what falls in that step leaves, the rest moves forward, zeros behind."""
    moved = np.zeros_like(ahead)
    moved[:max(ahead.shape[0] - ticks, 0)] = ahead[ticks:]
    return moved


#: step_maximum's float32 constants (a numpy scalar costs as much to build as a small op)
_F32 = {name: np.float32(value) for name, value in {
    "start": np.log(2.5 / np.sqrt(2.0 * np.pi)), "one": 1.0, "two": 2.0, "half": 0.5,
    "half_log_2pi": 0.9189385332046727, "twelfth": 1.0 / 12.0, "below_one": 1.0 - 1e-6,
    "tiny": 1e-6, "flat": -1e-3}.items()}


def step_maximum(mean_conc: np.ndarray, arrivals: np.ndarray, exp_draw: np.ndarray,
                 iterations: int = 2) -> np.ndarray:
    """A draw of the largest concurrency a span of time reaches (shape of the inputs), for
    concurrency of mean ``mean_conc`` fed by ``arrivals`` requests in the span; ``exp_draw``
    are standard exponential draws, one per element.

    The concurrency of requests arriving at rate lambda with mean duration s is Poisson with
    mean a = lambda s (M/G/inf). It first passes above m (excursions, not counting the quick
    returns of one excursion) at the rate lambda P(N = m) (1 - a / (m + 1)): the up-crossings
    thinned by the chance that the process, pushed back down at the rate (m + 1) / s, returns
    at the rate lambda (the extremes' declumping). Taking those passages as a Poisson stream,
    the maximum stays at or below m with probability exp(-g(m)), g(m) = n P(N = m)
    (1 - a / (m + 1)) with n the span's arrivals; the draw is the smallest m above the mean
    with g(m) <= E (E the exponential draw), solved by Newton steps on the continuous g (the
    log-factorial by Stirling's series). At least 1 with any arrival, at most the arrivals.
    """
    # float32: the logs are three times faster, and the root is found to ~1e-3 of a level
    # (the float32 constants are built once, in _F32)
    c = _F32
    a = np.maximum(mean_conc, 1e-9).astype(np.float32)
    log_a = np.log(a)
    # g(m) = E in logs: target + m log a - log m! + log(1 - a / (m + 1)) = 0
    target = np.log((np.maximum(arrivals, 1e-9) / np.maximum(exp_draw, 1e-30))
                    .astype(np.float32))
    # start from the Gaussian solution of n phi(x) x / a = E (x from 2.5)
    m = target - log_a
    m += c["start"]
    m *= c["two"]
    np.maximum(m, c["one"], out=m)
    np.sqrt(m, out=m)
    m *= np.sqrt(a)
    m += a
    target -= a
    for _ in range(iterations):
        # log m! by Stirling's series (error below 0.003 from m = 0)
        m1 = m + c["one"]
        log_m1 = np.log(m1)
        inv = c["one"] / m1
        share = a * inv  # a / (m + 1) < 1
        g = m * log_a
        g += target
        g += m1
        g -= (m + c["half"]) * log_m1
        g -= c["half_log_2pi"] + c["twelfth"] * inv
        g += np.log1p(-np.minimum(share, c["below_one"]))
        # slope: log a - digamma(m + 1) + a / ((m + 1)(m + 1 - a)), digamma ~ log - 1/2
        slope = log_a - log_m1
        slope += c["half"] * inv
        slope += share / np.maximum(m1 - a, c["tiny"])
        np.minimum(slope, c["flat"], out=slope)
        g /= slope
        m -= g
        np.maximum(m, a, out=m)
    top = np.minimum(np.ceil(m.astype(np.float64) - 1e-3), arrivals)
    return np.where(arrivals > 0, np.maximum(top, 1.0), 0.0)


def _finished_after_cold_starts(allowed: np.ndarray, cold: np.ndarray,
                                position: np.ndarray | float, ready_delay: np.ndarray,
                                ready_position: np.ndarray
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Invocations finished per tick (T, M), and their mean position in it, when the ``cold``
    ones (T, M) finish after their cold start (j ticks later with ``ready_delay[j]``, at mean
    position ``ready_position[j]``) and the others in their own tick at ``position``: a
    storm's requests reach the next stage late, bunched after it. Also those finishing in the
    next step's ticks (J, M), and their count x position. Integers by rounding the running
    total over both steps."""
    ticks = allowed.shape[0]
    span = ready_delay.size
    late = np.zeros((ticks + span,) + allowed.shape[1:])
    late_at = np.zeros_like(late)  # count x position
    for j, (w, at) in enumerate(zip(ready_delay, ready_position)):
        late[j: j + ticks] += w * cold
        late_at[j: j + ticks] += (w * at) * cold
    warm = allowed - cold
    late[:ticks] += warm
    late_at[:ticks] += warm * position
    at = late_at / np.maximum(late, 1e-12)
    whole = diff_ticks(np.round(running(np.add, late)))
    at = np.clip(np.where(late > 0, at, 0.5), 0.0, 1.0)
    return whole[:ticks], at[:ticks], whole[ticks:], whole[ticks:] * at[ticks:]


def _cold_starts(allowed: np.ndarray, concurrency: np.ndarray, ready0: np.ndarray,
                 starting: np.ndarray, starting_at: np.ndarray, ready_delay: np.ndarray,
                 ready_position: np.ndarray,
                 position: np.ndarray | None, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cold starts per tick (T, M) for envs whose traffic outgrows their ready containers,
    the containers still initialising at the end of the step (J, M), by the tick (from the
    next step's start) they become ready, and their count x mean position in that tick; the
    mean positions in their tick of the cold starts and of the other invocations (T, M).
    ``starting`` / ``starting_at`` (J, M) are the first two from the last step.
    ``ready_delay`` (S, J) are the readiness kernels by the arrivals' mean position in their
    tick (``position`` (T, M), None: 1/2).

    Ready containers form a loss system: an invocation finds all of them busy with the
    Erlang-B probability of the offered concurrency, and then starts a new container, which
    becomes usable after its cold start. A burst on a cold pool therefore makes a cold-start
    storm, as on Lambda: requests keep starting containers until the first ones are ready.
    Containers become ready through a tick: an arrival at position u of it sees the blocking
    interpolated between the tick's start and end, (1 - u) B(start) + u B(end) (counting
    them only from the tick after made a storm on a cold pool a third too long against the
    per-request reference).
    """
    ticks, m = allowed.shape
    shifts, span = ready_delay.shape
    cold = np.zeros_like(allowed)
    # containers becoming ready per tick, and their count x mean position in the tick
    both = np.zeros((2, ticks + span + 1, m))
    both[0, :starting.shape[0]] = starting
    both[1, :starting.shape[0]] = starting_at
    pending, pending_at = both
    kernels = np.stack((ready_delay.T, ready_position.T))  # (2, J, S)
    draws = allowed.astype(np.int64)
    drawn = allowed > 0
    ready = ready0.astype(float)
    # the blocking is taken at two points of the tick, 1/4 and 3/4, moved by the arrivals'
    # mean position u (T, M): (2, T, M), and x^2 - x for the readiness within the tick
    if position is None:
        points = np.broadcast_to(np.array([0.25, 0.75])[:, None, None], (2, ticks, m))
    else:
        shift = position - 0.5
        points = np.empty((2, ticks, m))
        for j, point in enumerate((0.25, 0.75)):
            np.clip(point + shift, 0.0, 1.0, out=points[j])
    x_square = points * points - points
    blocking = np.empty((2, ticks, m))  # Erlang-B at the two points
    offered = np.broadcast_to(concurrency, (2, ticks, m))  # the same at both
    cold_at = np.empty(allowed.shape)  # mean positions in the tick: cold starts
    for t in range(ticks):
        ready += pending[t]
        # the containers becoming ready within the tick do so with a linear density of
        # their mean position p in it (F(x) = x + c (x^2 - x) / 2, c = 12 (p - 1/2)); the
        # blocking at the two points: cold starts come early in the tick, the others late
        nxt = pending[t + 1]
        p = np.where(nxt > 0, pending_at[t + 1] / np.maximum(nxt, 1e-12), 0.5)
        p -= 0.5
        p *= 12.0
        c = np.minimum(np.maximum(p, -2.0), 2.0)
        ready_at = c * x_square[:, t]
        ready_at /= 2
        ready_at += points[:, t]
        ready_at *= nxt
        ready_at += ready
        b = blocking[:, t]
        b[...] = erlang_b(ready_at, offered[:, t])
        b1, b2 = b
        x1, x2 = points[:, t]
        either = b1 + b2
        cold[t] = rng.binomial(draws[t], np.where(drawn[t], 0.5 * either, 0.0))
        cold_at[t] = (b1 * x1 + b2 * x2) / np.maximum(either, 1e-12)
        # the readiness kernel of the cold starts' position, interpolated between the shifts,
        # and the mean position in their tick at which they are ready (2, J, M)
        x = np.minimum(np.maximum(cold_at[t], 0.0), 1.0) * (shifts - 1)
        lo = np.minimum(x.astype(np.int64), shifts - 2)
        frac = x - lo
        kernel = kernels[:, :, lo] * (1.0 - frac)
        kernel += kernels[:, :, lo + 1] * frac
        kernel[0] *= cold[t]
        kernel[1] *= kernel[0]
        both[:, t + 1: t + 1 + span] += kernel
    b1, b2 = blocking
    x1, x2 = points
    warm_at = ((1 - b1) * x1 + (1 - b2) * x2) / np.maximum(2.0 - b1 - b2, 1e-12)
    return (cold, pending[ticks: ticks + span], pending_at[ticks: ticks + span],
            np.clip(cold_at, 0, 1), np.clip(warm_at, 0, 1))
