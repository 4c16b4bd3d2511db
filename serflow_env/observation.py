"""Observation, action and info layout shared by the single and the vector environment.

Observation (float32, ``7 + 11 K`` values), only what a real controller can monitor:

=====  ==========================================================================
index  meaning (over the last control interval)
=====  ==========================================================================
0      stage-1 arrival rate / reference rate
1      std of the per-tick arrival rate / reference rate
2      SLO violations / arrivals (late, throttled or dropped)
3-5    latency p50, p95, p99 / deadline
6      dropped or throttled requests / arrivals
then, per stage k (11 values each, stage-major):
+0     observed reach fraction: requests entering stage k / entering stage 1
+1     stage-k request rate / reference rate
+2     VMs running / max VMs;  +3 VMs booting / max VMs
+4     VM utilisation (offered load / servers)
+5     VM queue (waiting requests) / (slots * max VMs)
+6     live function containers / reference concurrency of the stage
+7     realised share of requests served in functions (in cap mode: the overflow share)
+8     share of function requests that met a cold start
+9,10  previous action for the stage (VM target, routing: share or cap), in [-1, 1]
=====  ==========================================================================

All values are clipped to [-1, 1e6] (the space's bounds); none reaches them in practice.

Action (float32 ``Box(-1, 1, (2K,))``): ``a[k]`` sets stage k's VM target
``round((a[k] + 1) / 2 * max_vms_k)``; ``a[K + k]`` sets the share of stage-k requests sent to
functions, ``(a[K + k] + 1) / 2`` (``routing.mode: share``), or the VM rate cap,
``(a[K + k] + 1) / 2 * routing.max_cap`` times the running VMs' capacity (``routing.mode:
cap``, :mod:`serflow_env.rate_cap`). Both modes share this observation layout: in cap mode
column +7 is the realised overflow share, which with the utilisation (+4) and the queue (+5)
tells a controller whether its cap binds. Values outside [-1, 1] are clipped (or rejected with
``action_out_of_range="error"``); NaN and wrong shapes raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from serflow_env.params import Params
from serflow_env.state import State

GLOBAL_FEATURES = ("rate", "rate_std", "violation_rate", "p50", "p95", "p99", "drop_rate")
STAGE_FEATURES = ("reach", "stage_rate", "vms_running", "vms_booting", "utilisation", "queue",
                  "warm", "faas_share", "cold_share", "prev_vm_action", "prev_faas_action")

INFO_KEYS = (
    "cost_usd", "cost_vm_usd", "cost_faas_usd", "cost_transfer_usd",
    "requests_arrived", "requests_completed", "requests_dropped", "requests_throttled",
    "requests_in_system", "slo_violations", "violation_rate",
    "latency_p50_s", "latency_p95_s", "latency_p99_s",
    "vms_running", "vms_booting", "faas_warm", "faas_invocations", "faas_cold_starts",
    "vm_seconds", "reward_cost", "reward_slo",
)


OBS_LOW, OBS_HIGH = -1.0, 1e6  # observations are clipped to this (documented) range


def observation_size(num_stages: int) -> int:
    """Features in one observation of a scenario with ``num_stages`` stages."""
    return len(GLOBAL_FEATURES) + len(STAGE_FEATURES) * num_stages


def column(name: str, stage: int | None = None,
           num_stages: int | None = None) -> int | np.ndarray:
    """Index of feature ``name`` in the (unstacked) observation.

    A global feature (:data:`GLOBAL_FEATURES`) gives one index. A stage feature
    (:data:`STAGE_FEATURES`) gives stage ``stage``'s index (0-based), or, with ``stage`` None,
    the indices of all ``num_stages`` stages as an int array (K,), so ``obs[:, column(...)]``
    is (N, K).
    """
    if name in GLOBAL_FEATURES:
        if stage is not None:
            raise ValueError(f"column {name!r}: a global feature has no stage, got stage={stage}")
        return GLOBAL_FEATURES.index(name)
    if name not in STAGE_FEATURES:
        raise ValueError(f"column name={name!r}; allowed {list(GLOBAL_FEATURES)} or "
                         f"{list(STAGE_FEATURES)}")
    offset = len(GLOBAL_FEATURES) + STAGE_FEATURES.index(name)
    if stage is not None:
        if stage < 0 or (num_stages is not None and stage >= num_stages):
            raise ValueError(f"column {name!r}: stage={stage}; allowed [0, "
                             f"{'K' if num_stages is None else num_stages - 1}]")
        return offset + len(STAGE_FEATURES) * stage
    if num_stages is None or num_stages < 1:
        raise ValueError(f"column {name!r}: give stage or num_stages >= 1, got "
                         f"num_stages={num_stages}")
    return offset + len(STAGE_FEATURES) * np.arange(num_stages)


def observation_space(params: Params) -> spaces.Box:
    dim = observation_size(params.num_stages)
    return spaces.Box(OBS_LOW, OBS_HIGH, shape=(dim,), dtype=np.float32)


def action_space(params: Params) -> spaces.Box:
    return spaces.Box(-1.0, 1.0, shape=(2 * params.num_stages,), dtype=np.float32)


def validate_actions(actions: object, num_envs: int, num_stages: int, mode: str,
                     batched: bool) -> np.ndarray:
    """Check shape and values of actions; return a float64 (N, 2K) array in [-1, 1]."""
    expected = (num_envs, 2 * num_stages) if batched else (2 * num_stages,)
    try:
        a = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"action: expected a float array of shape {expected}: {exc}") from exc
    if a.shape != expected:
        raise ValueError(
            f"action: expected shape {expected} (per stage a VM target then a function share, "
            f"each in [-1, 1]), got shape {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0].tolist()
        raise ValueError(f"action: non-finite value {float(a[tuple(bad)])} at index {bad}")
    if mode == "error" and (np.any(a < -1.0) or np.any(a > 1.0)):
        bad = np.argwhere((a < -1.0) | (a > 1.0))[0].tolist()
        raise ValueError(
            f"action: value {float(a[tuple(bad)])} at index {bad} is outside the allowed range "
            "[-1, 1] (use action_out_of_range='clip' to clip instead)"
        )
    a = np.clip(a, -1.0, 1.0)
    return a if batched else a[None, :]


def neutral_output(params: Params, state: State) -> dict[str, np.ndarray]:
    """Interval outputs for a freshly reset state (no interval observed yet)."""
    n, k = state.time_s.shape[0], params.num_stages
    zeros = np.zeros(n)
    zk = np.zeros((n, k))
    return {
        "rate_mean": zeros, "rate_std": zeros, "violations": zeros, "arrived": zeros,
        "latency_quantiles": np.zeros((n, 3)), "dropped": zeros, "throttled": zeros,
        "stage_arrivals": zk, "vm_running": state.vm_running, "vm_booting": state.vm_booting,
        "utilisation": zk, "queue": state.backlog.astype(float), "warm_containers": zk,
        "faas_share": zk, "cold_starts": zk, "served_faas": zk,
    }


def build_observation(params: Params, state: State, out: dict[str, np.ndarray]) -> np.ndarray:
    """Observation (N, 7 + 11K) float32 from the last interval's outputs.

    Each feature is written straight into its float32 column (stage features are the
    columns ``7 + 11 k + j``, written as one (N, K, 11) block), then the whole array is
    clipped to the space's bounds.
    """
    n, k = state.time_s.shape[0], params.num_stages
    ref = params.reference_rate
    arrived = np.maximum(out["arrived"], 1)
    obs = np.empty((n, observation_size(k)), dtype=np.float32)
    obs[:, 0] = out["rate_mean"] / ref
    obs[:, 1] = out["rate_std"] / ref
    obs[:, 2] = out["violations"] / arrived
    obs[:, 3:6] = out["latency_quantiles"] / params.slo_deadline_s
    obs[:, 6] = (out["dropped"] + out["throttled"]) / arrived
    stage_in = np.asarray(out["stage_arrivals"], dtype=float)
    first = stage_in[:, :1]
    max_vms = params.max_vms.astype(float)
    served_faas = out["served_faas"]
    per_stage = (
        np.where(first > 0, stage_in / np.maximum(first, 1), 0.0),
        stage_in / params.control_interval_s / ref,
        out["vm_running"] / max_vms,
        out["vm_booting"] / max_vms,
        out["utilisation"],
        out["queue"] / (params.slots * max_vms),
        out["warm_containers"] / (ref * params.faas_mean_s + 1.0),
        out["faas_share"],
        np.where(served_faas > 0, out["cold_starts"] / np.maximum(served_faas, 1), 0.0),
        state.prev_action[:, :k],
        state.prev_action[:, k:],
    )
    # the stage columns as an (N, K, features) view: splitting the last axis of this slice
    # never needs a copy, so reshape returns a view; one stacked write instead of 11 strided
    stage_view = obs[:, len(GLOBAL_FEATURES):].reshape(n, k, len(STAGE_FEATURES))
    stage_view[...] = np.stack(per_stage, axis=-1)
    np.clip(obs, OBS_LOW, OBS_HIGH, out=obs)
    return obs


def build_info(params: Params, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-env info arrays (N,) with the documented keys, plus per-stage arrays (N, K)."""
    q = out["latency_quantiles"]
    dropped_all = out["dropped"] + out["throttled"]
    info = {
        "cost_usd": out["cost"],
        "cost_vm_usd": out["cost_vm"],
        "cost_faas_usd": out["cost_faas"],
        "cost_transfer_usd": out["cost_transfer"],
        "requests_arrived": out["arrived"],
        "requests_completed": out["completed"],
        "requests_dropped": dropped_all,
        "requests_throttled": out["throttled"],
        "requests_in_system": out["in_system"],
        "slo_violations": out["violations"],
        # per request resolved in the interval (completed, dropped or throttled), in [0, 1];
        # per arrival it would exceed 1 while a backlog drains
        "violation_rate": out["violations"] / np.maximum(out["completed"] + dropped_all, 1),
        "latency_p50_s": q[:, 0],
        "latency_p95_s": q[:, 1],
        "latency_p99_s": q[:, 2],
        "latency_cdf": out["latency_cdf"],
        "vms_running": out["vm_running"].sum(axis=1),
        "vms_booting": out["vm_booting"].sum(axis=1),
        "faas_warm": out["warm_containers"].sum(axis=1),
        "faas_invocations": out["served_faas"].sum(axis=1),
        "faas_cold_starts": out["cold_starts"].sum(axis=1),
        "vm_seconds": out["vm_seconds"],
        "reward_cost": -params.w_cost * out["cost"] / params.cost_scale,
        "reward_slo": -params.w_slo * out["violations"] / params.request_scale,
        "stage_requests": out["stage_arrivals"],
        "stage_vms_running": out["vm_running"],
        "stage_vms_booting": out["vm_booting"],
        "stage_faas_share": out["faas_share"],
        "stage_cold_starts": out["cold_starts"],
        "stage_queue": out["queue"],
        "stage_wait_probability": out["wait_probability"],
        "stage_wait_mean_s": out["wait_mean_s"],
        "stage_utilisation": out["utilisation"],
        "stage_exit_probability": out["exit_probabilities"],
    }
    return info
