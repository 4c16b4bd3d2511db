"""What a controller monitors, read from the vector env's ``info`` of the last interval."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from agents.heuristics.profiling import StageProfile
from serflow_env.observation import column


def _get(info: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in info:
        raise KeyError(f"info: missing key {key!r}; heuristics need the env's monitored "
                       "signals (pass the info of the last step, or None right after reset)")
    return np.asarray(info[key], dtype=float)


def stage_rates(info: Mapping[str, np.ndarray], interval_s: float) -> np.ndarray:
    """Requests/s that entered each stage over the last interval, (N, K)."""
    return _get(info, "stage_requests") / interval_s


def total_rate(info: Mapping[str, np.ndarray], interval_s: float) -> np.ndarray:
    """Requests/s that arrived over the last interval, (N,)."""
    return _get(info, "requests_arrived") / interval_s


def tick_rate_std(obs: np.ndarray, info: Mapping[str, np.ndarray],
                  interval_s: float) -> np.ndarray:
    """Std (N,) of the per-tick arrival rate within the last interval (per second at 1 s ticks).

    The observation holds it divided by the reference rate (column ``rate_std``), next to the
    mean rate divided by the same (column ``rate``); their ratio times the monitored mean rate
    undoes the unknown reference.
    """
    obs = np.asarray(obs, dtype=float)
    mean_ratio = obs[:, column("rate")]
    return np.where(mean_ratio > 0, obs[:, column("rate_std")] / np.maximum(mean_ratio, 1e-12),
                    0.0) \
        * total_rate(info, interval_s)


def stage_tick_rate_std(obs: np.ndarray, info: Mapping[str, np.ndarray],
                        interval_s: float) -> np.ndarray:
    """Per-tick rate std per stage (N, K), from the total's by binomial thinning.

    A stage reached by a share ``r`` of requests sees per-tick counts with variance
    ``r^2 Var(N) + r (1 - r) E[N]`` (per-tick counts N, rates at 1 s ticks); ``r`` is the
    observed reach of the last interval.
    """
    total = total_rate(info, interval_s)
    reach = stage_rates(info, interval_s) / np.maximum(total, 1e-12)[:, None]
    reach = np.clip(reach, 0.0, 1.0)
    sigma = tick_rate_std(obs, info, interval_s)[:, None]
    return np.sqrt((reach * sigma) ** 2 + reach * (1.0 - reach) * total[:, None])


def vms(info: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """VMs running and booting per stage at the end of the last interval, (N, K) each."""
    return _get(info, "stage_vms_running"), _get(info, "stage_vms_booting")


def offered_utilisation(info: Mapping[str, np.ndarray], profile: StageProfile,
                        interval_s: float, vm_fraction: np.ndarray) -> np.ndarray:
    """VM utilisation per stage (N, K) from the monitored counts, not the env's gauge.

    Load is the stage's request rate times ``vm_fraction`` (the share of it the controller
    meant for VMs, (N, K) or scalar) plus the backlog still queued (to drain within the next
    interval), over the running VMs' capacity (profiled service time). It reads above 1 under
    overload, as a CPU monitor reads 100 %; ``info["stage_utilisation"]`` reads 0 when a stage
    is overloaded for a whole interval, so threshold scaling cannot rely on it. A stage
    without a running VM reads 0 when it has no load and +inf otherwise.
    """
    load = stage_rates(info, interval_s) * vm_fraction + _get(info, "stage_queue") / interval_s
    running, _ = vms(info)
    capacity = running * profile.vm_capacity_rps[None, :]
    safe = np.maximum(capacity, 1e-12)
    return np.where(capacity > 0, load / safe, np.where(load > 0, np.inf, 0.0))
