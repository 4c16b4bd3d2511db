"""A stage's functions: throttling at the account concurrency limit, the warm pool and its
keep-alive, cold starts (storms on a cold pool) and billed GB-seconds."""

from __future__ import annotations

import numpy as np
from scipy import special

from serflow_env.params import Params
from serflow_env.queueing import erlang_b
from serflow_env.scans import running
from serflow_env.state import State
from serflow_env.totals import IntervalTotals


def serve_functions(params: Params, s: State, i: int, invocations: np.ndarray, ready0: np.ndarray,
               block: int, acc: IntervalTotals, rng: np.random.Generator, noise: np.ndarray,
               concentration: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | float]:
    """Stage i's functions: invocations (T, N) allowed under the concurrency limit, the kept
    share of the fluid (1 unless throttled), warm pool, cold starts and GB-seconds.

    ``concentration`` (T, N), at least 1, multiplies the concurrency where the invocations
    arrive within part of the tick (cap mode's overflow: :mod:`serflow_env.rate_cap`)."""
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
    # the pool of a stage keeps every container used within the keep-alive and reuses the most
    # recently used, so its size is the running maximum of the concurrency over the keep-alive
    # window: each step records its own maximum (drawn), and a step whose maximum exceeds the
    # containers alive starts the difference cold
    n_step = allowed.sum(axis=0)
    # the ticks near the step's busiest (within a standard deviation) set its maximum
    conc_max = conc.max(axis=0)
    near = conc >= conc_max - np.sqrt(conc_max)
    near_n = np.where(near, allowed, 0.0).sum(axis=0)
    near_conc = np.where(near, conc, 0.0).sum(axis=0) / np.maximum(near.sum(axis=0), 1)
    top = step_maximum(near_conc, near_n, rng.standard_exponential(n_step.size))
    # containers still initialising (started cold in earlier steps) are alive, not ready
    starting = s.faas_starting[i]  # (J, N)
    waiting = starting.sum(axis=0)
    ready_now = np.maximum(ready0 - waiting, 0.0)
    n_cold = np.maximum(top - ready0, 0.0)
    used_last = top.copy()
    live_mean = np.maximum(top, ready0)
    # a storm: where the traffic's mean concurrency outgrows the ready containers, every
    # request that finds them all busy starts a container until the new ones are ready
    rows = np.flatnonzero(conc_max > ready_now)
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
        # containers used: the ready ones the traffic needed, plus every one started cold
        base = np.minimum(ready0[rows], top[rows])
        used = running(np.add, cold)
        used += base
        live_mean[rows] = np.maximum(used, ready0[rows]).sum(axis=0) / used.shape[0]
        used_last[rows] = np.maximum(top[rows], used[-1])
        n_cold[rows] = cold.sum(axis=0)
    if carried is not None:
        s.faas_starting[i] = carried
    s.ka_ring[block, :, i] = used_last
    n_allowed = allowed.sum(axis=0)
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
    return allowed, kept


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
    a = np.maximum(mean_conc, 1e-9)
    log_a = np.log(a)
    # g(m) = E in logs: target + m log a - log m! + log(1 - a / (m + 1)) = 0
    target = np.log(np.maximum(arrivals, 1e-9) / np.maximum(exp_draw, 1e-300))
    target -= a
    root = np.sqrt(a)
    # start from the Gaussian solution of n phi(x) x / a = E (x from 2.5)
    x2 = target + a
    x2 -= 0.5 * log_a
    x2 += np.log(2.5 / np.sqrt(2.0 * np.pi) / root)
    x2 *= 2.0
    m = np.sqrt(np.maximum(x2, 1.0))
    m *= root
    m += a
    for _ in range(iterations):
        # log m! by Stirling's series (error below 0.003 from m = 0)
        m1 = m + 1.0
        log_m1 = np.log(m1)
        gap = m1 - a
        g = target + m * log_a
        g -= (m + 0.5) * log_m1 - m1 + 0.9189385332046727 + 1.0 / (12.0 * m1)
        g += np.log(gap)
        g -= log_m1
        slope = log_a - log_m1 + 0.5 / m1 + a / (m1 * gap)  # digamma(m + 1) ~ log - 1/2
        np.minimum(slope, -1e-3, out=slope)
        m -= g / slope
        np.maximum(m, a, out=m)
    top = np.minimum(np.ceil(m - 1e-6), arrivals)
    return np.where(arrivals > 0, np.maximum(top, 1.0), 0.0)


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
