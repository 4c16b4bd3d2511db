"""A stage's functions: throttling at the account concurrency limit, the warm pool and its
keep-alive, cold starts (storms on a cold pool) and billed GB-seconds."""

from __future__ import annotations

import numpy as np

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
