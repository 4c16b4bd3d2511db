"""Figures of an evaluation: traffic and provisioning, p95 against the SLO, cost by component,
cost against violations, and the sweep's savings. Matplotlib with the Agg backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FormatStrFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

DPI = 80


#: per stage: line width and style, so coinciding stage lines stay visible (wide under narrow)
STAGE_LINES = (dict(lw=3.2, ls="-"), dict(lw=2.0, ls="--"), dict(lw=1.2, ls=":"),
               dict(lw=1.0, ls="-."))


def _stage_count(timeseries: pd.DataFrame) -> int:
    return sum(1 for c in timeseries.columns if c.startswith("s") and c.endswith("_vms_running")
               and c[1:-len("_vms_running")].isdigit())


def _stage_style(j: int, k: int) -> dict:
    style = dict(STAGE_LINES[j % len(STAGE_LINES)])
    style["color"] = plt.cm.tab10(j % 10) if k <= 10 else plt.cm.viridis(0.85 * j / (k - 1))
    return style


def _label(policy: str, labels: Mapping[str, str] | None) -> str:
    return (labels or {}).get(policy, policy)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_traffic(timeseries: pd.DataFrame, seed: int, path: Path,
                 labels: Mapping[str, str] | None = None) -> Path:
    """Per policy: arrival rate with VMs per stage (left), function share per stage (right)."""
    data = timeseries[timeseries["seed"] == seed]
    policies = list(dict.fromkeys(data["policy"]))
    k = _stage_count(data)
    vm_cols = [f"s{j + 1}_vms_running" for j in range(k)]
    vm_top = max(1.0, float(data[vm_cols].to_numpy().max())) * 1.08
    fig, axes = plt.subplots(len(policies), 2, figsize=(11, 2.1 * len(policies) + 0.6),
                             sharex=True, squeeze=False, layout="constrained")
    for row, policy in enumerate(policies):
        ep = data[data["policy"] == policy]
        minutes = ep["time_s"] / 60.0
        name = _label(policy, labels)
        ax = axes[row, 0]
        ax.fill_between(minutes, ep["rate_rps"], color="0.85", step="pre",
                        label="arrivals (req/s, left axis)")
        ax.set_ylabel("req/s")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{name}: arrivals and VMs running", fontsize=9, loc="left")
        twin = ax.twinx()
        for j in range(k):
            twin.step(minutes, ep[vm_cols[j]], where="pre", **_stage_style(j, k),
                      label=f"stage {j + 1} VMs")
        twin.set_ylim(-0.02 * vm_top, vm_top)
        twin.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        twin.set_ylabel("VMs")
        share = axes[row, 1]
        for j in range(k):
            share.step(minutes, ep[f"s{j + 1}_faas_share"], where="pre", **_stage_style(j, k),
                       label=f"stage {j + 1}")
        share.set_ylim(-0.05, 1.05)
        share.set_ylabel("function share")
        share.set_title(f"{name}: share of requests on functions", fontsize=9, loc="left")
        if row == 0:
            handles = ax.get_legend_handles_labels()
            twin_handles = twin.get_legend_handles_labels()
            fig.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1],
                       loc="outside upper center", ncol=k + 1, fontsize=8, frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("time (min)")
    return _save(fig, path)


def plot_latency(timeseries: pd.DataFrame, seed: int, deadline_s: float, path: Path,
                 labels: Mapping[str, str] | None = None) -> Path:
    """p95 latency of each interval against the SLO deadline (log axis, plain numbers)."""
    data = timeseries[timeseries["seed"] == seed]
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for policy, ep in data.groupby("policy", sort=False):
        ax.plot(ep["time_s"] / 60.0, ep["latency_p95_s"], lw=1.0,
                label=_label(str(policy), labels))
    ax.axhline(deadline_s, color="crimson", ls="--", lw=1.2, label="SLO deadline")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("p95 latency per interval (s)")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="y", which="major", color="0.9", lw=0.8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(f"p95 latency against the SLO (seed {seed})", fontsize=10)
    return _save(fig, path)


def plot_cost_components(summary: pd.DataFrame, path: Path,
                         labels: Mapping[str, str] | None = None) -> Path:
    """Mean episode cost per policy split into VMs, functions and transfers (95 % CI);
    components that are zero for every policy are left out."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(summary))
    bottom = np.zeros(len(summary))
    for part, color, name in (("cost_vm_usd", "tab:blue", "VMs"),
                              ("cost_faas_usd", "tab:orange", "functions"),
                              ("cost_transfer_usd", "tab:gray", "transfers")):
        values = summary[f"{part}_mean"].to_numpy()
        if not np.any(values > 0):
            continue
        ax.bar(x, values, bottom=bottom, color=color, label=name)
        bottom += values
    mean = summary["cost_usd_mean"].to_numpy()
    ci = np.nan_to_num(summary["cost_usd_ci95"].to_numpy())
    ax.errorbar(x, mean, yerr=[np.minimum(ci, mean), ci], fmt="none", ecolor="k", capsize=3,
                lw=1)
    names = [_label(str(p), labels) for p in summary["policy"]]
    ax.set_xticks(x, names, rotation=20 if max(map(len, names)) > 10 else 0, ha="right"
                  if max(map(len, names)) > 10 else "center")
    ax.set_ylabel("cost per episode ($)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Cost by component (mean over seeds, 95 % CI)", fontsize=10)
    return _save(fig, path)


def plot_cost_vs_violations(summary: pd.DataFrame, path: Path,
                            labels: Mapping[str, str] | None = None) -> Path:
    """Each policy's mean cost against its mean SLO violation rate, with 95 % CIs cut at 0
    (neither can be negative)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for _, row in summary.iterrows():
        v, v_ci = 100.0 * row["slo_violation_rate_mean"], \
            100.0 * np.nan_to_num(row["slo_violation_rate_ci95"])
        c, c_ci = row["cost_usd_mean"], np.nan_to_num(row["cost_usd_ci95"])
        ax.errorbar(v, c, xerr=[[min(v_ci, v)], [v_ci]], yerr=[[min(c_ci, c)], [c_ci]],
                    fmt="o", capsize=3, label=_label(str(row["policy"]), labels))
    right = ax.get_xlim()[1]
    ax.set_xlim(-0.03 * right, right)  # a margin, so points at 0 % are not cut in half
    ax.set_ylim(bottom=0)
    ax.axvline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("SLO violation rate (%)")
    ax.set_ylabel("cost per episode ($)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Cost against SLO violations (mean, 95 % CI)", fontsize=10)
    return _save(fig, path)


def plot_sweep(sweep: pd.DataFrame, path: Path, claim_saving_pct: float = 23.0) -> Path:
    """Saving of the reference policy over each baseline against the exit probability,
    one line per traffic scale (top), and the violation-rate difference (bottom).

    Hollow markers: the reference violates the SLO more often than the baseline there.
    """
    baselines = list(dict.fromkeys(sweep["baseline"]))
    reference = sweep["policy"].iloc[0]
    fig, axes = plt.subplots(2, len(baselines), figsize=(5.2 * len(baselines), 6.4),
                             sharex=True, squeeze=False, layout="constrained")
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


def plot_suite_scores(tasks: pd.DataFrame, column: str, path: Path, title: str,
                      labels: Mapping[str, str] | None = None,
                      reference_lines: tuple[float, ...] = (0.0, 1.0)) -> Path:
    """Per task (groups) and policy (bars): ``{column}_mean`` with its 95 % CI, e.g. the
    normalized score (0 = the heuristic, 1 = the oracle point) or the cost relative to the
    heuristic; tasks without a value show no bar. Written atomically (a temporary file
    renamed into place)."""
    from serflow_eval.model_files import replaced_atomically

    task_names = list(dict.fromkeys(tasks["task"]))
    policies = list(dict.fromkeys(tasks["policy"]))
    width = 0.8 / len(policies)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.9 * len(task_names) * max(1, len(policies)) / 3
                                        + 2.5), 4.2))
    x = np.arange(len(task_names))
    indexed = tasks.set_index(["task", "policy"])
    for j, policy in enumerate(policies):
        mean = np.array([indexed.loc[(t, policy), f"{column}_mean"] for t in task_names],
                        dtype=float)
        ci = np.nan_to_num(np.array([indexed.loc[(t, policy), f"{column}_ci95"]
                                     for t in task_names], dtype=float))
        ax.bar(x - 0.4 + (j + 0.5) * width, mean, width, yerr=ci, capsize=2,
               error_kw={"lw": 0.8}, label=_label(str(policy), labels),
               color=plt.cm.tab10(j % 10))
    for y in reference_lines:
        ax.axhline(y, color="0.3", lw=0.8, ls="-" if y == 0 else "--")
    for i, t in enumerate(task_names):
        if indexed.loc[t, f"{column}_mean"].isna().all():
            ax.text(i, 0.02, "no value", transform=ax.get_xaxis_transform(), ha="center",
                    fontsize=8, color="0.4")
    ax.set_xticks(x, task_names, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(task_names) - 0.4)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", color="0.92", lw=0.8)
    with replaced_atomically(Path(path)) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
