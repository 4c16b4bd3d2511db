"""An independent lower bound on the oracle's programme: its LP relaxation, solved by HiGHS.

Per stage, variables ``s_t`` (serving VMs, real in [0, max_vms]), ``r_t >= s_t - s_{t-1}``
(launches, >= 0; 0 before the boot time allows one) and ``z_t`` (function cost). The cost of
interval t is convex in s (a sum of ``(L - u c s)^+`` terms), so ``z_t`` lies above every chord
of its values at consecutive integers: equal to them at integer s, so any integer plan costs
the same here as in the dynamic programme, and the LP optimum is at most the DP's.
With ``integer=True`` the same model is solved as a MILP (``scipy.optimize.milp``): the DP's
optimum exactly, an independent check on small instances.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from agents.oracle.problem import StageProblems


def stage_bound(problems: StageProblems, stage: int, integer: bool = False) -> float:
    """The LP relaxation's optimum (or the MILP's, ``integer=True``) of one stage, in $."""
    steps = problems.num_intervals
    top = int(problems.max_vms[stage])
    over = problems.overflow[stage][:, : top + 1] * (problems.faas_weight
                                                     * problems.faas_cost_per_request[stage])
    vm = problems.vm_interval_cost[stage]
    launch = float(problems.launch_cost[stage])
    start = float(problems.initial_vms[stage])
    # variables: s (T), r (T), z (T)
    cost = np.concatenate([np.full(steps, vm), np.full(steps, launch), np.ones(steps)])
    t = np.arange(steps)
    rows, cols, vals, lower, upper = [], [], [], [], []
    # r_t - s_t + s_{t-1} >= 0 (s_{-1} = start)
    rows += [t, t, t[1:]]
    cols += [steps + t, t, t[1:] - 1]
    vals += [np.ones(steps), -np.ones(steps), np.ones(steps - 1)]
    lower.append(np.r_[-start, np.zeros(steps - 1)])
    upper.append(np.full(steps, np.inf))
    n = steps
    # z_t - slope_tj s_t >= over_t(j) - slope_tj j for the chords that rise above 0
    slope = np.diff(over, axis=1)  # (T, top)
    tt, jj = np.nonzero(over[:, :-1] > 0) if top > 0 else (np.zeros(0, int), np.zeros(0, int))
    m = tt.size
    rows += [n + np.arange(m), n + np.arange(m)]
    cols += [2 * steps + tt, tt]
    vals += [np.ones(m), -slope[tt, jj]]
    lower.append(over[tt, jj] - slope[tt, jj] * jj)
    upper.append(np.full(m, np.inf))
    matrix = sparse.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(n + m, 3 * steps))
    launch_max = np.where(t < problems.boot_intervals, 0.0, np.inf)
    bounds = Bounds(np.zeros(3 * steps),
                    np.concatenate([np.full(steps, float(top)), launch_max,
                                    np.full(steps, np.inf)]))
    integrality = np.r_[np.ones(steps), np.zeros(2 * steps)] if integer else None
    result = milp(cost, constraints=LinearConstraint(matrix, np.concatenate(lower),
                                                     np.concatenate(upper)),
                  bounds=bounds, integrality=integrality)
    if not result.success:
        raise RuntimeError(f"oracle bound: HiGHS failed on stage {stage}: {result.message}")
    return float(result.fun)


def lp_bound(problems: StageProblems) -> np.ndarray:
    """(K,) the LP relaxation's optimum of every stage: a lower bound on the DP's costs."""
    return np.array([stage_bound(problems, k) for k in range(problems.num_stages)])
