"""Per-stage results of one control interval, filled stage by stage during a step."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class IntervalTotals:
    """Per-stage results of one interval, (K, N) arrays filled stage by stage, and per-env
    sums over the stages (N,)."""

    stage_in: np.ndarray
    served_vm: np.ndarray
    served_faas: np.ndarray
    exits: np.ndarray
    cold_starts: np.ndarray
    continued: np.ndarray
    lam: np.ndarray  # mean VM arrival rate over the unsaturated ticks
    wait_lam: np.ndarray  # cap mode: the rate the VMs' Erlang-C sees (serflow_env.rate_cap)
    wait_bind: np.ndarray  # cap mode: share of VM requests in ticks where the cap binds
    wait_tau: np.ndarray  # cap mode: their mean time to the cap within the tick (s)
    saturated: np.ndarray  # share of VM-serving ticks with an overload backlog
    mean_servers: np.ndarray
    backlog_share: np.ndarray
    backlog_delay: np.ndarray  # mean delay behind the backlog of the delayed requests
    backlog_delay_m2: np.ndarray  # its second and third raw moments
    backlog_delay_m3: np.ndarray
    warm: np.ndarray
    conc_now: np.ndarray
    dropped: np.ndarray  # the last three are (N,): sums over the stages
    throttled: np.ndarray
    faas_gb_s: np.ndarray

    @classmethod
    def zeros(cls, k: int, n: int) -> IntervalTotals:
        """All zero, in two allocations (views of one (18, K, N) and one (3, N) array)."""
        names = [f.name for f in fields(cls)]
        per_stage = np.zeros((len(names) - 3, k, n))
        per_env = np.zeros((3, n))
        return cls(*per_stage, *per_env)
