"""Episode summaries per policy and seed, their means with 95 % confidence intervals, and
paired (common-random-number) comparisons between policies."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from serflow_env.latency import QUANTILES, quantiles_from_cdf

CDF_PREFIX = "latency_cdf@"

#: summary metrics, in the order of summary.csv (each gets ``_mean`` and ``_ci95`` columns)
METRICS = (
    "cost_usd", "cost_per_1k_requests", "slo_violation_rate", "latency_p50_s",
    "latency_p95_s", "latency_p99_s", "vm_hours", "faas_invocations", "faas_cold_starts",
    "cost_vm_usd", "cost_faas_usd", "cost_transfer_usd", "requests", "requests_dropped",
)


def pooled_latency_quantiles(cdf: np.ndarray, completed: np.ndarray, grid_s: np.ndarray,
                             cap_s: float | None = None) -> np.ndarray:
    """The project's latency p50/p95/p99 of an episode (or of several pooled): the quantiles
    of all its completed requests.

    Definition: each control interval reports the CDF of its completed requests' latency at
    the points ``grid_s`` (G,) (info ``latency_cdf``: the fast model's own distribution, the
    reference simulator's empirical one). The episode's distribution is their mixture weighted
    by the requests completed in each interval, F(x) = sum_t n_t F_t(x) / sum_t n_t; its
    quantiles are read off by log-linear interpolation between grid points, the env's own
    rule per interval (:func:`serflow_env.latency.quantiles_from_cdf`), and are ``cap_s``
    (default the last grid point) where F never reaches the level. For the reference this is
    the quantile over all requests up to the interpolation between grid points; the fidelity
    harness takes the reference's quantiles over all requests exactly.

    ``cdf`` is (T, ..., G) and ``completed`` (T, ...), intervals first; the mixture is taken
    over axis 0, giving (..., 3). Where no request completed in any interval the result is 0.
    A mean of per-interval quantiles (what a policy observes each interval) is a different,
    biased quantity: intervals of a heavy tail weigh in with their p95 only.
    """
    c = np.asarray(cdf, dtype=float)
    w = np.asarray(completed, dtype=float)
    grid = np.asarray(grid_s, dtype=float)
    if c.shape[:w.ndim] != w.shape or c.ndim != w.ndim + 1 or c.shape[-1] != grid.size:
        raise ValueError(f"pooled_latency_quantiles: cdf {c.shape} must be completed "
                         f"{w.shape} plus one axis of the {grid.size} grid points")
    total = w.sum(axis=0)
    mixture = (c * w[..., None]).sum(axis=0) / np.maximum(total, 1e-300)[..., None]
    cap = float(grid[-1]) if cap_s is None else float(cap_s)
    q = quantiles_from_cdf(mixture, grid, QUANTILES, cap)
    return np.where((total > 0)[..., None], q, 0.0)


def cdf_columns(grid_s: np.ndarray) -> list[str]:
    """Timeseries column names of an interval's latency CDF at ``grid_s``: ``latency_cdf@X``
    with X the grid point in seconds (so a timeseries.csv carries its own grid)."""
    return [f"{CDF_PREFIX}{x!r}" for x in np.asarray(grid_s, dtype=float).tolist()]


def cdf_grid_of(frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The CDF columns of a timeseries and their grid (seconds), as :func:`cdf_columns`."""
    names = [c for c in frame.columns if str(c).startswith(CDF_PREFIX)]
    if not names:
        raise ValueError(f"timeseries: no {CDF_PREFIX}* columns (the per-interval latency "
                         "CDF the pooled quantiles need); record them with serflow_eval.runner")
    return names, np.array([float(c[len(CDF_PREFIX):]) for c in names])


def episode_summary(timeseries: pd.DataFrame) -> pd.DataFrame:
    """One row per (policy, seed) with every metric of :data:`METRICS`."""
    rows = []
    for (policy, seed), ep in timeseries.groupby(["policy", "seed"], sort=False):
        requests = ep["requests_arrived"].sum()
        cost = ep["cost_usd"].sum()
        names, grid = cdf_grid_of(ep)
        quant = pooled_latency_quantiles(ep[names].to_numpy(), ep["requests_completed"]
                                         .to_numpy(), grid)
        rows.append({
            "policy": policy, "seed": seed,
            "cost_usd": cost,
            "cost_per_1k_requests": 1000.0 * cost / requests if requests > 0 else np.nan,
            "slo_violation_rate": ep["slo_violations"].sum() / requests if requests > 0
            else np.nan,
            "latency_p50_s": quant[0], "latency_p95_s": quant[1], "latency_p99_s": quant[2],
            "vm_hours": ep["vm_seconds"].sum() / 3600.0,
            "faas_invocations": ep["faas_invocations"].sum(),
            "faas_cold_starts": ep["faas_cold_starts"].sum(),
            "cost_vm_usd": ep["cost_vm_usd"].sum(),
            "cost_faas_usd": ep["cost_faas_usd"].sum(),
            "cost_transfer_usd": ep["cost_transfer_usd"].sum(),
            "requests": requests,
            "requests_dropped": ep["requests_dropped"].sum(),
        })
    return pd.DataFrame(rows)


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its 95 % Student-t confidence interval (NaN with one value)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float("nan")
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(half)


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """summary.csv: one row per policy (in run order), ``{metric}_mean`` and ``_ci95``."""
    rows = []
    for policy, group in per_seed.groupby("policy", sort=False):
        row: dict[str, object] = {"policy": policy, "seeds": len(group)}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_ci95"] = mean_ci(group[metric].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def paired_comparisons(per_seed: pd.DataFrame, reference: str,
                       claim_ratio: float | None = None) -> pd.DataFrame:
    """``reference`` against every other policy, seed by seed (common random numbers).

    ``cost_ratio`` = reference cost / other cost per seed; ``violation_diff_pp`` = reference
    violation rate minus the other's, in percentage points. ``violations_no_worse``: mean
    difference <= 0; ``violations_not_sig_worse``: the difference's 95 % CI reaches 0 or
    below (the mean alone when there is one seed). With ``claim_ratio`` (a claimed cost ratio,
    e.g. the paper's 0.77 for "over 23 % less"): ``cost_claim``, mean ratio at most
    ``claim_ratio``, and ``claim_holds``, cost claim and no worse.
    """
    ref = per_seed[per_seed["policy"] == reference].set_index("seed")
    rows = []
    for other, group in per_seed.groupby("policy", sort=False):
        if other == reference:
            continue
        g = group.set_index("seed")
        seeds = ref.index.intersection(g.index)
        ratio = ref.loc[seeds, "cost_usd"] / g.loc[seeds, "cost_usd"]
        diff = 100.0 * (ref.loc[seeds, "slo_violation_rate"]
                        - g.loc[seeds, "slo_violation_rate"])
        r_mean, r_ci = mean_ci(ratio.to_numpy())
        d_mean, d_ci = mean_ci(diff.to_numpy())
        row = {
            "policy": reference, "baseline": other, "seeds": len(seeds),
            "cost_ratio_mean": r_mean, "cost_ratio_ci95": r_ci,
            "saving_pct_mean": 100.0 * (1.0 - r_mean),
            "violation_diff_pp_mean": d_mean, "violation_diff_pp_ci95": d_ci,
            "violations_no_worse": bool(d_mean <= 0.0),
            "violations_not_sig_worse": bool(d_mean - np.nan_to_num(d_ci) <= 0.0),
        }
        if claim_ratio is not None:
            row["cost_claim"] = bool(r_mean <= claim_ratio)
            row["claim_holds"] = bool(r_mean <= claim_ratio and d_mean <= 0.0)
        rows.append(row)
    return pd.DataFrame(rows)
