"""Figures of an evaluation: traffic and provisioning, p95 against the SLO, cost by component,
cost against violations, and the sweep's savings. Matplotlib with the Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 80


def _stage_count(timeseries: pd.DataFrame) -> int:
    return sum(1 for c in timeseries.columns if c.startswith("s") and c.endswith("_vms_running")
               and c[1:-len("_vms_running")].isdigit())


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_traffic(timeseries: pd.DataFrame, seed: int, path: Path) -> Path:
    """Per policy: arrival rate with VMs per stage (left), function share per stage (right)."""
    data = timeseries[timeseries["seed"] == seed]
    policies = list(dict.fromkeys(data["policy"]))
    k = _stage_count(data)
    fig, axes = plt.subplots(len(policies), 2, figsize=(11, 2.1 * len(policies) + 0.4),
                             sharex=True, squeeze=False)
    colors = plt.cm.viridis(np.linspace(0, 0.85, k))
    for row, policy in enumerate(policies):
        ep = data[data["policy"] == policy]
        minutes = ep["time_s"] / 60.0
        ax = axes[row, 0]
        ax.fill_between(minutes, ep["rate_rps"], color="0.85", step="pre", label="arrivals")
        ax.set_ylabel("req/s")
        ax.set_title(f"{policy}: traffic and VMs running", fontsize=9, loc="left")
        twin = ax.twinx()
        for j in range(k):
            twin.step(minutes, ep[f"s{j + 1}_vms_running"], color=colors[j], lw=1.2,
                      label=f"stage {j + 1} VMs")
        twin.set_ylabel("VMs")
        share = axes[row, 1]
        for j in range(k):
            share.step(minutes, ep[f"s{j + 1}_faas_share"], color=colors[j], lw=1.0,
                       label=f"stage {j + 1}")
        share.set_ylim(-0.05, 1.05)
        share.set_ylabel("function share")
        share.set_title(f"{policy}: share of requests served by functions", fontsize=9,
                        loc="left")
        if row == 0:
            twin.legend(loc="upper right", fontsize=7, ncol=min(k, 4))
            share.legend(loc="upper right", fontsize=7, ncol=min(k, 4))
    for ax in axes[-1]:
        ax.set_xlabel("time (min)")
    return _save(fig, path)


def plot_latency(timeseries: pd.DataFrame, seed: int, deadline_s: float, path: Path) -> Path:
    """p95 latency of each interval against the SLO deadline."""
    data = timeseries[timeseries["seed"] == seed]
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for policy, ep in data.groupby("policy", sort=False):
        ax.plot(ep["time_s"] / 60.0, ep["latency_p95_s"], lw=1.0, label=policy)
    ax.axhline(deadline_s, color="crimson", ls="--", lw=1.2, label="SLO deadline")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("p95 latency per interval (s)")
    ax.set_yscale("log")
    ax.legend(fontsize=8, ncol=3)
    ax.set_title(f"p95 latency against the SLO (seed {seed})", fontsize=10)
    return _save(fig, path)


def plot_cost_components(summary: pd.DataFrame, path: Path) -> Path:
    """Mean episode cost per policy split into VMs, functions and transfers (95 % CI)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(summary))
    bottom = np.zeros(len(summary))
    for part, color in (("cost_vm_usd", "tab:blue"), ("cost_faas_usd", "tab:orange"),
                        ("cost_transfer_usd", "tab:gray")):
        values = summary[f"{part}_mean"].to_numpy()
        ax.bar(x, values, bottom=bottom, color=color, label=part[5:-4].replace("_", " "))
        bottom += values
    ax.errorbar(x, summary["cost_usd_mean"], yerr=np.nan_to_num(summary["cost_usd_ci95"]),
                fmt="none", ecolor="k", capsize=3, lw=1)
    ax.set_xticks(x, summary["policy"], rotation=15)
    ax.set_ylabel("cost per episode ($)")
    ax.legend(fontsize=8)
    ax.set_title("Cost by component (mean over seeds, 95 % CI)", fontsize=10)
    return _save(fig, path)


def plot_cost_vs_violations(summary: pd.DataFrame, path: Path) -> Path:
    """Each policy's mean cost against its mean SLO violation rate, with 95 % CIs."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for _, row in summary.iterrows():
        ax.errorbar(100.0 * row["slo_violation_rate_mean"], row["cost_usd_mean"],
                    xerr=100.0 * np.nan_to_num(row["slo_violation_rate_ci95"]),
                    yerr=np.nan_to_num(row["cost_usd_ci95"]), fmt="o", capsize=3,
                    label=row["policy"])
    ax.set_xlabel("SLO violation rate (%)")
    ax.set_ylabel("cost per episode ($)")
    ax.legend(fontsize=8)
    ax.set_title("Cost against SLO violations", fontsize=10)
    return _save(fig, path)


def plot_sweep(sweep: pd.DataFrame, path: Path, claim_saving_pct: float = 23.0) -> Path:
    """Saving of the reference policy over each baseline against the exit probability,
    one line per traffic scale (top), and the violation-rate difference (bottom).

    Hollow markers: the reference violates the SLO more often than the baseline there.
    """
    baselines = list(dict.fromkeys(sweep["baseline"]))
    reference = sweep["policy"].iloc[0]
    fig, axes = plt.subplots(2, len(baselines), figsize=(5.2 * len(baselines), 6.4),
                             sharex=True, squeeze=False)
    scales = sorted(sweep["scale"].unique())
    colors = plt.cm.plasma(np.linspace(0, 0.85, len(scales)))
    for col, baseline in enumerate(baselines):
        top, bottom = axes[0, col], axes[1, col]
        for scale, color in zip(scales, colors):
            d = sweep[(sweep["baseline"] == baseline) & (sweep["scale"] == scale)]
            d = d.sort_values("exit_probability")
            p = d["exit_probability"].to_numpy()
            top.errorbar(p, d["saving_pct_mean"], yerr=100.0 * np.nan_to_num(
                d["cost_ratio_ci95"]), color=color, lw=1.2, capsize=2,
                label=f"traffic x{scale:g}")
            worse = d["violation_diff_pp_mean"].to_numpy() > 0
            top.scatter(p[~worse], d["saving_pct_mean"].to_numpy()[~worse], color=color, s=22)
            top.scatter(p[worse], d["saving_pct_mean"].to_numpy()[worse], facecolors="white",
                        edgecolors=color, s=22)
            bottom.errorbar(p, d["violation_diff_pp_mean"],
                            yerr=np.nan_to_num(d["violation_diff_pp_ci95"]), color=color,
                            lw=1.2, capsize=2, marker="o", ms=3)
        top.axhline(claim_saving_pct, color="crimson", ls="--", lw=1,
                    label=f"paper: {claim_saving_pct:g} %")
        top.axhline(0.0, color="k", lw=0.6)
        bottom.axhline(0.0, color="k", lw=0.6)
        top.set_title(f"{reference} vs {baseline}", fontsize=10)
        top.set_ylabel("cost saving (%)")
        bottom.set_ylabel("violation rate difference (pp)")
        bottom.set_xlabel("internal exit probability p (every stage but the last)")
        if col == 0:
            top.legend(fontsize=7)
    return _save(fig, path)
