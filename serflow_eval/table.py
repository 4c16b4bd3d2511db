"""Terminal tables of an evaluation (rich), sized to fit 100 columns: the main metrics with
their 95 % CIs (every metric is in summary.csv), the paired comparison with its columns
explained, and a warning when too few seeds make the CIs uninformative."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from serflow_eval.labels import FUTURE_NOTE, future_label

#: (metric, header, multiplier, format, with CI) of the printed summary
COLUMNS = (
    ("cost_usd", "cost $", 1.0, "{:.3f}", True),
    ("cost_per_1k_requests", "$/1k req", 1.0, "{:.5f}", False),
    ("slo_violation_rate", "viol. %", 100.0, "{:.3f}", True),
    ("latency_p95_s", "p95 s", 1.0, "{:.3f}", False),
    ("vm_hours", "VM-h", 1.0, "{:.1f}", False),
    ("faas_invocations", "FaaS inv.", 1.0, "{:.0f}", False),
    ("faas_cold_starts", "cold st.", 1.0, "{:.0f}", False),
)
#: widest output the tables are laid out for
WIDTH = 100
COMPARISON_NOTE = (
    "cost ratio: the first policy's episode cost / the other's, seed by seed (mean ± 95 % CI); "
    "saving = 1 - ratio. violations diff: its SLO violation rate minus the other's, in "
    "percentage points. violations: 'no more' (mean diff <= 0), 'more, within noise' (the "
    "95 % CI of the diff reaches 0) or 'more'.")


def _cell(mean: float, ci: float, scale: float, fmt: str, with_ci: bool = True) -> str:
    text = fmt.format(mean * scale)
    if with_ci and not math.isnan(ci):
        text += " ± " + fmt.replace("+", "").format(ci * scale)
    return text


def _label(policy: str, labels: Mapping[str, str] | None) -> str:
    return (labels or {}).get(policy, policy)


def summary_table(summary: pd.DataFrame, labels: Mapping[str, str] | None = None) -> Table:
    """The summary (mean, ± 95 % CI over seeds where marked) as a rich table."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                  caption="mean ± 95 % CI over seeds; viol. = SLO violations, cold st. = "
                  "function cold starts; all metrics: summary.csv", caption_justify="left")
    table.add_column("policy", style="bold", no_wrap=True)
    for _, header, _, _, _ in COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    for _, row in summary.iterrows():
        table.add_row(_label(str(row["policy"]), labels), *[
            _cell(row[f"{m}_mean"], row[f"{m}_ci95"], scale, fmt, ci)
            for m, _, scale, fmt, ci in COLUMNS])
    return table


def _violations_verdict(row: pd.Series) -> str:
    if row["violations_no_worse"]:
        return "no more"
    return "more, within noise" if row["violations_not_sig_worse"] else "more"


def comparison_table(comparisons: pd.DataFrame,
                     labels: Mapping[str, str] | None = None) -> Table:
    """Paired comparisons of the first policy against the others."""
    reference = _label(str(comparisons["policy"].iloc[0]), labels)
    table = Table(title=f"{reference} against each other policy, paired on the same seeds",
                  box=box.SIMPLE_HEAD, title_justify="left", caption=COMPARISON_NOTE,
                  caption_justify="left", pad_edge=False)
    for header in ("vs", "cost ratio", "saving %", "violations diff (pp)", "violations"):
        table.add_column(header, justify="right", no_wrap=True)
    for _, row in comparisons.iterrows():
        table.add_row(_label(str(row["baseline"]), labels),
                      _cell(row["cost_ratio_mean"], row["cost_ratio_ci95"], 1.0, "{:.3f}"),
                      f"{row['saving_pct_mean']:.1f}",
                      _cell(row["violation_diff_pp_mean"], row["violation_diff_pp_ci95"], 1.0,
                            "{:+.3f}"),
                      _violations_verdict(row))
    return table


def seed_warning(summary: pd.DataFrame) -> str | None:
    """A sentence when the CIs say little: under 3 seeds, or a cost CI wider than its mean."""
    seeds = int(summary["seeds"].min())
    wide = (summary["cost_usd_ci95"] > summary["cost_usd_mean"].abs()).any()
    if seeds >= 3 and not wide:
        return None
    why = (f"with {seeds} seed{'s' if seeds != 1 else ''} the 95 % CIs are "
           + ("not defined" if seeds == 1 else "very wide (Student t, "
              f"{seeds - 1} degree{'s' if seeds != 2 else ''} of freedom)")
           if seeds < 3 else "some 95 % CIs are wider than their means")
    return f"warning: {why}; use --seeds 5 or more to tell the policies apart"


def make_console() -> Console:
    """A console at most :data:`WIDTH` columns wide (the terminal's width if narrower; 100
    when the output is not a terminal)."""
    console = Console()
    return console if console.is_terminal and console.width <= WIDTH else Console(width=WIDTH)


def print_tables(summary: pd.DataFrame, comparisons: pd.DataFrame | None, title: str,
                 console: Console | None = None,
                 labels: Mapping[str, str] | None = None) -> None:
    """Summary, comparison and, where it applies, the seed warning; ``labels`` shortens
    policy specs (the long ones are listed under the tables)."""
    console = console or make_console()
    console.print(f"[bold]{title}[/bold]")  # a line of its own: the table is narrower
    console.print(summary_table(summary, labels))
    if comparisons is not None and len(comparisons):
        console.print()
        console.print(comparison_table(comparisons, labels))
    for spec, label in (labels or {}).items():
        if label not in (spec, future_label(spec)):
            console.print(f"{label} = {spec}", soft_wrap=True)
    if any(future_label(spec) for spec in summary["policy"].astype(str).unique()):
        console.print(FUTURE_NOTE, soft_wrap=True)
    warning = seed_warning(summary)
    if warning:
        console.print(f"[yellow]{warning}[/yellow]")
