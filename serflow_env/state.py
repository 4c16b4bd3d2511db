"""Dynamic state of N fast-model environments: random streams, initial state and resets
(episode starts from the traces, optional ``reset(options=...)``, function prewarm)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from serflow_env.params import Params

STREAMS = ("arrivals", "exits", "service", "drift", "episode")


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
    faas_starting_at: np.ndarray  # (K, J, N) their count x mean position in the tick
    # (K, J, N) requests started cold at stage k that finish there in tick j of the next step
    # (in the system until then), and their count x mean position in the tick
    faas_late: np.ndarray
    faas_late_at: np.ndarray
    faas_late_any: np.ndarray  # (K,) bool: whether faas_late may hold any (skips the scan)
    concurrency: np.ndarray  # (N, K) function concurrency in the last tick
    prev_action: np.ndarray  # (N, 2K)
    # running totals (for conservation checks)
    total_arrived: np.ndarray = None  # type: ignore[assignment]
    total_completed: np.ndarray = None  # type: ignore[assignment]
    total_dropped: np.ndarray = None  # type: ignore[assignment]

    def copy(self) -> State:
        """A copy whose arrays are independent of this state's."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{name: value.copy() if isinstance(value, np.ndarray) else value
                                for name, value in values.items()})


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
        faas_starting_at=np.zeros((k, params.cold_ready.size, n)),
        faas_late=np.zeros((k, params.cold_ready.size, n)),
        faas_late_at=np.zeros((k, params.cold_ready.size, n)),
        faas_late_any=np.zeros(k, dtype=bool),
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
    """A copy of ``state`` with the environments where ``mask`` is true reset; the others are
    as they were. The input state is not modified (``rngs`` advance).

    ``options`` (see :func:`draw_episode_starts`) apply before anything is sized from the
    episode's start (the function prewarm reads the first second of traffic); they are
    validated where they are drawn.
    """
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
    s.faas_starting_at[:, :, m] = 0.0
    s.faas_late[:, :, m] = 0.0
    s.faas_late_at[:, :, m] = 0.0
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
    return s
