"""Terminal tables of an evaluation (rich)."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.table import Table

#: (metric, header, multiplier, format) of the printed summary
COLUMNS = (
    ("cost_usd", "cost $", 1.0, "{:.3f}"),
    ("cost_per_1k_requests", "$/1k req", 1.0, "{:.5f}"),
    ("slo_violation_rate", "violations %", 100.0, "{:.3f}"),
    ("latency_p50_s", "p50 s", 1.0, "{:.3f}"),
    ("latency_p95_s", "p95 s", 1.0, "{:.3f}"),
    ("latency_p99_s", "p99 s", 1.0, "{:.3f}"),
    ("vm_hours", "VM-h", 1.0, "{:.2f}"),
    ("faas_invocations", "FaaS inv.", 1.0, "{:.0f}"),
    ("faas_cold_starts", "cold starts", 1.0, "{:.0f}"),
)


def _cell(mean: float, ci: float, scale: float, fmt: str) -> str:
    text = fmt.format(mean * scale)
    if not math.isnan(ci):
        text += " ± " + fmt.replace("+", "").format(ci * scale)
    return text


def summary_table(summary: pd.DataFrame, title: str) -> Table:
    """The summary (mean ± 95 % CI over seeds) as a rich table."""
    table = Table(title=title)
    table.add_column("policy", style="bold")
    for _, header, _, _ in COLUMNS:
        table.add_column(header, justify="right")
    for _, row in summary.iterrows():
        table.add_row(str(row["policy"]), *[
            _cell(row[f"{m}_mean"], row[f"{m}_ci95"], scale, fmt)
            for m, _, scale, fmt in COLUMNS])
    return table


def comparison_table(comparisons: pd.DataFrame) -> Table:
    """Paired comparisons of the first policy against the others."""
    table = Table(title="Paired comparison (same seeds): cost ratio and violation difference")
    for header in ("policy", "vs", "cost ratio", "saving %", "violations diff (pp)",
                   "cost <= 0.77x", "violations no worse (mean / 95 % CI)"):
        table.add_column(header, justify="right")
    for _, row in comparisons.iterrows():
        table.add_row(str(row["policy"]), str(row["baseline"]),
                      _cell(row["cost_ratio_mean"], row["cost_ratio_ci95"], 1.0, "{:.3f}"),
                      f"{row['saving_pct_mean']:.1f}",
                      _cell(row["violation_diff_pp_mean"], row["violation_diff_pp_ci95"], 1.0,
                            "{:+.3f}"),
                      "yes" if row["cost_claim"] else "no",
                      ("yes" if row["violations_no_worse"] else "no") + " / "
                      + ("yes" if row["violations_not_sig_worse"] else "no"))
    return table


def make_console() -> Console:
    """A console wide enough for the summary even when output is not a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=170)


def print_tables(summary: pd.DataFrame, comparisons: pd.DataFrame | None, title: str,
                 console: Console | None = None) -> None:
    console = console or make_console()
    console.print(summary_table(summary, title))
    if comparisons is not None and len(comparisons):
        console.print(comparison_table(comparisons))
