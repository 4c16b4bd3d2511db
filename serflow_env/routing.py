"""Where requests go: the action's VM targets and its routing half (function shares, or VM rate
caps in cap mode: :mod:`serflow_env.rate_cap`), the weighted round-robin split of a stage's
requests between functions and VMs, and the exit decisions after a stage."""

from __future__ import annotations

import numpy as np

from serflow_env.params import Params
from serflow_env.scans import diff_ticks, running
from serflow_env.state import State


def decode_action(params: Params, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map a validated (N, 2K) action in [-1, 1] to VM targets (N, K) and the routing (N, K).

    ``vms_k = round((a_k + 1) / 2 * max_vms_k)``; the routing is the function share
    ``(a_{K+k} + 1) / 2`` in share mode, the VM rate cap ``(a_{K+k} + 1) / 2 * max_cap`` (a
    fraction of the running VMs' capacity) in cap mode.
    """
    k = params.num_stages
    a = np.clip(action, -1.0, 1.0)
    targets = np.rint((a[:, :k] + 1.0) * 0.5 * params.max_vms).astype(np.int64)
    route = (a[:, k:] + 1.0) * 0.5
    if params.cap_routing:
        route *= params.max_cap
    return targets, route


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


def route_stage(params: Params, s: State, i: int, inflow: np.ndarray, fluid: np.ndarray,
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
    to_faas = diff_ticks(cum_faas)
    total_in = cum_in[-1]
    s.lb_carry[:, i] = s.lb_carry[:, i] + share * total_in - cum_faas[-1]
    no_vm = servers == 0
    if no_vm.any():
        to_faas = np.where(no_vm, inflow, to_faas)
        fluid_faas = np.where(no_vm, fluid, fluid * share)
    else:
        fluid_faas = fluid * share
    return to_faas, inflow - to_faas, fluid_faas, fluid - fluid_faas, no_vm, total_in


def split_continuing(finished: np.ndarray, rng: np.random.Generator, p_continue: np.ndarray
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
    return diff_ticks(cum_going), total, going
