"""The exact dynamic programme over VM counts, the VM targets that replay its plan, and a
per-VM bill of any target sequence.

State: the VMs serving in interval t, ``s_t`` in [0, max_vms]. A serving VM costs one
VM-interval; a VM that starts serving at t was launched ``B`` intervals before and billed for
them, so a rise ``s_t > s_{t-1}`` costs ``B`` VM-intervals per VM; removals are free and
instant. Before interval B nothing launched can serve, so there ``s_t <= s_{t-1}``
(``s_{-1}`` the VMs running at reset). With ``c_t(s)`` the cost of interval t at s serving
VMs (VMs plus overflow in functions) and ``a = B`` VM-intervals:

    V_t(s) = c_t(s) + min( min_{s' >= s} V_{t-1}(s'),  a s + min_{s' < s} (V_{t-1}(s') - a s') )

The two inner minima are a suffix minimum and an exclusive prefix minimum over s', so a step
is O(max_vms) and a stage O(T max_vms); all stages run together as (K, S + 1) arrays. Keeping
a VM idle through a gap of g intervals costs g VM-intervals against B for a relaunch: the
recursion chooses between them itself (the tests check it against brute force over every
target sequence). Among equally cheap predecessors the backtrack keeps the larger count (a VM
kept rather than removed and relaunched).

A plan replays through VM targets (running plus booting VMs): each rise of ``s`` at t is a
launch at step t - B. In an optimal plan no VM is removed while another boots (keeping the
removed one instead is cheaper), so the targets stay within max_vms and the env's rule of
removing the youngest VMs first removes running ones, as planned.
"""

from __future__ import annotations

import bisect

import numpy as np


def solve(costs: np.ndarray, launch_cost: np.ndarray, boot_intervals: int,
          initial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest serving counts (K, T) and their costs (K,) for interval costs (K, T, S + 1)
    (inf where a count is not allowed), the $ of one launch (K,), the boot in whole intervals
    and the VMs running at the start (K,)."""
    k, steps, width = costs.shape
    if steps < 1:
        raise ValueError("oracle: no interval to plan")
    counts = np.arange(width, dtype=float)
    a = np.asarray(launch_cost, dtype=float)[:, None]
    ramp = a * counts[None, :]
    start = np.asarray(initial, dtype=np.int64)
    value = np.full((k, steps, width), np.inf)
    prev = np.where(counts[None, :] == start[:, None], 0.0, np.inf)
    for t in range(steps):
        best = np.minimum.accumulate(prev[:, ::-1], axis=1)[:, ::-1]  # s' >= s: no launch
        if t >= boot_intervals:
            lower = np.minimum.accumulate(prev - ramp, axis=1)  # min over s' <= s
            np.minimum(best[:, 1:], ramp[:, 1:] + lower[:, :-1], out=best[:, 1:])
        prev = costs[:, t] + best
        value[:, t] = prev
    plan = np.empty((k, steps), dtype=np.int64)
    rows = np.arange(k)
    plan[:, -1] = _largest_argmin(value[:, -1])
    for t in range(steps - 1, 0, -1):
        rise = np.maximum(plan[:, t][:, None] - counts[None, :], 0.0)
        if t < boot_intervals:
            rise = np.where(rise > 0, np.inf, 0.0)
        plan[:, t - 1] = _largest_argmin(value[:, t - 1] + a * rise)
    if not np.all(np.isfinite(value[rows, -1, plan[:, -1]])):
        raise ValueError("oracle: no feasible plan (every VM count has infinite cost)")
    return plan, plan_cost(costs, launch_cost, boot_intervals, initial, plan)


def _largest_argmin(values: np.ndarray) -> np.ndarray:
    """Per row (K, S + 1), the largest index whose value is within rounding of the minimum."""
    low = values.min(axis=1, keepdims=True)
    near = values <= low + 1e-10 * np.maximum(np.abs(low), 1e-12)
    return values.shape[1] - 1 - np.argmax(near[:, ::-1], axis=1)


def launches(plan: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """(K, T) VMs that start serving in each interval (rises of the plan over the last one)."""
    before = np.concatenate([np.asarray(initial)[:, None], plan[:, :-1]], axis=1)
    return np.maximum(plan - before, 0)


def plan_cost(costs: np.ndarray, launch_cost: np.ndarray, boot_intervals: int,
              initial: np.ndarray, plan: np.ndarray) -> np.ndarray:
    """(K,) cost of serving counts ``plan`` (K, T): interval costs plus launches (inf where a
    rise comes before a launch could have booted)."""
    k, steps = plan.shape
    rises = launches(plan, initial)
    interval = costs[np.arange(k)[:, None], np.arange(steps)[None, :], plan].sum(axis=1)
    early = rises[:, :boot_intervals].sum(axis=1) > 0
    return np.where(early, np.inf, interval + launch_cost * rises.sum(axis=1))


def vm_targets(plan: np.ndarray, boot_intervals: int, initial: np.ndarray) -> np.ndarray:
    """(K, T) VM targets (running plus booting) that replay ``plan``: at step t the serving
    count plus the launches made at steps t - B + 1 .. t (those serving at t + 1 .. t + B)."""
    rises = launches(plan, initial)
    k, steps = plan.shape
    cum = np.concatenate([np.zeros((k, 1), dtype=np.int64), np.cumsum(rises, axis=1)], axis=1)
    t = np.arange(steps)
    ahead = np.minimum(t + boot_intervals, steps - 1)
    return plan + cum[:, ahead + 1] - cum[:, t + 1]


def fleet_bill(targets: np.ndarray, initial: int, boot_intervals: int, min_billed_s: float,
               interval_s: float) -> tuple[np.ndarray, float]:
    """VMs serving per interval (T,) and VM-seconds billed for one stage's target sequence,
    VM by VM: launches and removals at control steps, the youngest removed first (booting
    before running), a launch serving ``boot_intervals`` steps later, each VM billed
    ``max(lifetime, min_billed_s)`` (those running at reset: their lifetime, no minimum)."""
    launched: list[float] = [-np.inf] * int(initial)  # launch steps, oldest first
    billed = 0.0
    serving = np.zeros(len(targets), dtype=np.int64)

    def bill(launch: float, end: int) -> float:
        if launch == -np.inf:
            return end * interval_s
        return max((end - launch) * interval_s, min_billed_s)

    for t, target in enumerate(np.asarray(targets, dtype=np.int64)):
        while len(launched) > target:
            billed += bill(launched.pop(), t)
        launched.extend([float(t)] * (int(target) - len(launched)))
        serving[t] = bisect.bisect_right(launched, t - boot_intervals)
    billed += sum(bill(launch, len(targets)) for launch in launched)
    return serving, billed
