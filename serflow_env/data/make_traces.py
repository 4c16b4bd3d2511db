"""Regenerate the small synthetic traces shipped in serflow_env/data/traces/.

Each per-second trace is built by a serflow_env.traces generator (expected counts per second),
realised as integer arrivals with ``sample_counts(np.random.default_rng(seed))`` and written in
LIBRA format. A synthetic week of Azure Functions 2019 invocation counts (one CSV per day, the
dataset's per-minute format, read by ``load_azure_trace``) is built from the same generators:
see :func:`azure_week`. The script prints, and writes to README.md, the measured mean and peak
rate of each file, so the folder is reproducible bit for bit:

    python -m serflow_env.data.make_traces

They are found by file name, so ``arrivals.trace: traces/diurnal_2h.txt`` (or just the file
name) works from any directory and in a non-editable install.
"""

from __future__ import annotations

import argparse
import hashlib
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from serflow_env.arrivals import SHIPPED_TRACE_DIR
from serflow_env.traces import AZURE_MINUTES, generate, save_azure_trace, save_libra_trace

COMMAND = "python -m serflow_env.data.make_traces"

# (file name, description, generator spec, sampling seed)
TRACES: list[tuple[str, str, dict[str, Any], int]] = [
    (
        "diurnal_2h.txt",
        "compressed day (period 7200 s), peak/mean 2, slow log-normal noise 0.15",
        {
            "generator": "diurnal",
            "duration_s": 7200,
            "mean_rate": 100.0,
            "peak_to_mean": 2.0,
            "period_s": 7200.0,
            "noise": 0.15,
            "seed": 1,
        },
        101,
    ),
    (
        "bursty_mmpp_1h.txt",
        "3-state MMPP, rates 40/150/400 req/s, mean sojourns 100/60/24 s",
        {
            "generator": "mmpp",
            "duration_s": 3600,
            "rates": [40.0, 150.0, 400.0],
            "mean_sojourn_s": [100.0, 60.0, 24.0],
            "seed": 2,
        },
        102,
    ),
    (
        "flash_crowd_1h.txt",
        "base 60 req/s, ramp at 900 s over 60 s to 500 req/s, hold 120 s, decay tau 400 s",
        {
            "generator": "flash_crowd",
            "duration_s": 3600,
            "base_rate": 60.0,
            "peak_rate": 500.0,
            "start_s": 900.0,
            "ramp_s": 60.0,
            "hold_s": 120.0,
            "decay_s": 400.0,
        },
        103,
    ),
    (
        "sine_1h.txt",
        "sine, mean 100 req/s, amplitude 80 req/s, period 600 s",
        {
            "generator": "sine",
            "duration_s": 3600,
            "mean_rate": 100.0,
            "amplitude": 80.0,
            "period_s": 600.0,
        },
        104,
    ),
    (
        "square_1h.txt",
        "square wave 200 req/s / 30 req/s, period 600 s, duty 0.5 (starts high)",
        {
            "generator": "square",
            "duration_s": 3600,
            "low_rate": 30.0,
            "high_rate": 200.0,
            "period_s": 600.0,
            "duty": 0.5,
        },
        105,
    ),
]


#: the synthetic Azure week: one file per day, Monday (d01) to Sunday (d07)
AZURE_FILE = "azure_functions_2019_d{day:02d}.csv"
AZURE_DAYS = 7
#: day-of-week load factors of the user-driven functions, Monday..Sunday (weekends quieter)
WEEKDAY_FACTORS = (1.0, 1.04, 1.06, 1.02, 0.94, 0.62, 0.55)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
AZURE_SEED = 301  # the Poisson realisation of the per-minute expected counts
AZURE_DESCRIPTION = ("A synthetic week, one day per file (Mon d01 .. Sun "
                     "d07): an HTTP function (diurnal, trough 04:00, peak/mean 2.5, weekday "
                     "factors {factors}), a timer (30/min plus 900 every 15 min) and a queue "
                     "function (MMPP 5/20/80 req/s x weekday factor)")


def _per_minute(per_second: np.ndarray) -> np.ndarray:
    """(days * 1440,) expected invocations per minute from per-second expected counts."""
    return per_second.reshape(-1, 60).sum(axis=1)


def azure_week() -> list[list[tuple[str, str, str, str, np.ndarray]]]:
    """Seven days of per-minute invocation counts in the Azure 2019 layout, three functions:

    * HTTP-triggered, user driven: ``diurnal`` (period one day, trough at 04:00, peak/mean 2.5,
      mean 60 req/s, noise 0.15) times the day's :data:`WEEKDAY_FACTORS`;
    * timer-triggered: 30 invocations a minute plus a batch of 900 every 15 minutes, every day;
    * queue-triggered: a 3-state ``mmpp`` (5/20/80 req/s, mean sojourns 3600/1200/300 s) times
      the day's factor.

    Expected counts per minute are realised as Poisson counts (seed :data:`AZURE_SEED`).
    Returns one list of ``(owner, app, function, trigger, counts)`` rows per day.
    """
    seconds = AZURE_DAYS * 86400
    factor = np.repeat(np.array(WEEKDAY_FACTORS), AZURE_MINUTES)
    http = _per_minute(generate({
        "generator": "diurnal", "duration_s": seconds, "mean_rate": 60.0, "peak_to_mean": 2.5,
        "period_s": 86400.0, "phase_s": 4 * 3600.0, "noise": 0.15, "seed": 201,
    }).values) * factor
    minute = np.arange(AZURE_DAYS * AZURE_MINUTES)
    timer = 30.0 + 900.0 * (minute % 15 == 0)
    queue = _per_minute(generate({
        "generator": "mmpp", "duration_s": seconds, "rates": [5.0, 20.0, 80.0],
        "mean_sojourn_s": [3600.0, 1200.0, 300.0], "seed": 202,
    }).values) * factor
    rng = np.random.default_rng(AZURE_SEED)
    counts = [rng.poisson(expected) for expected in (http, timer, queue)]

    def digest(text: str) -> str:  # the dataset's anonymised names are SHA-256 hex digests
        return hashlib.sha256(f"serflow-synthetic-{text}".encode()).hexdigest()

    owner, app = digest("owner"), digest("app")
    functions = [(digest("http"), "http"), (digest("timer"), "timer"), (digest("queue"), "queue")]
    days = []
    for day in range(AZURE_DAYS):
        cut = slice(day * AZURE_MINUTES, (day + 1) * AZURE_MINUTES)
        days.append([(owner, app, fn, trigger, c[cut]) for (fn, trigger), c in
                     zip(functions, counts)])
    return days


def main(argv: list[str] | None = None) -> None:
    """Generate every trace into --out, print its statistics and write README.md there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SHIPPED_TRACE_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    for filename, description, spec, seed in TRACES:
        trace = generate(spec).sample_counts(np.random.default_rng(seed))
        save_libra_trace(trace, args.out / filename)
        rows.append(
            f"| `{filename}` | {description} | {trace.duration_s:.0f} | "
            f"{trace.mean_rate:.1f} | {trace.peak_rate:.0f} |"
        )
        print(
            f"{filename:22s} {trace.duration_s:6.0f} s  mean {trace.mean_rate:7.2f} req/s  "
            f"peak {trace.peak_rate:5.0f} req/s  ({(args.out / filename).stat().st_size} bytes)"
        )

    from serflow_env.traces import load_azure_trace  # needs pandas, as Azure CSVs do

    azure_rows = []
    for day, functions in enumerate(azure_week(), start=1):
        filename = AZURE_FILE.format(day=day)
        save_azure_trace(functions, args.out / filename)
        trace = load_azure_trace(args.out / filename)  # what a scenario replays: all rows
        azure_rows.append(f"| `{filename}` | {DAY_NAMES[day - 1]} | {trace.duration_s:.0f} | "
                          f"{trace.mean_rate:.1f} | {trace.peak_rate:.0f} |")
        print(
            f"{filename:30s} {trace.duration_s:6.0f} s  mean {trace.mean_rate:7.2f} req/s  "
            f"peak {trace.peak_rate:5.0f} req/s (per minute)  "
            f"({(args.out / filename).stat().st_size} bytes)"
        )

    readme = "\n".join(
        [
            "# Synthetic request traces",
            "",
            "Per-second request counts in LIBRA format (line n = requests in second n), load",
            "with `serflow_env.traces.load_libra_trace`. Each file is a generator from",
            "`serflow_env/traces.py` realised as a Poisson process with a fixed seed; mean and",
            "peak are measured on the files (req/s). Generated by `make_traces.py`, which",
            "also writes this README; regenerate everything with:",
            "",
            "```",
            COMMAND,
            "```",
            "",
            "| file | what | seconds | mean | peak |",
            "|---|---|---|---|---|",
            *rows,
            "",
            textwrap.fill(
                "Azure Functions 2019 format (`HashOwner,HashApp,HashFunction,Trigger,1..1440`: "
                "invocations per minute of one day, one row per function), load with "
                "`serflow_env.traces.load_azure_trace` (all rows summed; a Poisson process "
                "within each minute). " + AZURE_DESCRIPTION.format(
                    factors="/".join(f"{f:g}" for f in WEEKDAY_FACTORS))
                + "; mean and peak in req/s (peak: the busiest minute):", width=82),
            "",
            "| file | day | seconds | mean | peak |",
            "|---|---|---|---|---|",
            *azure_rows,
            "",
            "The real LIBRA traces (`wits_logs.txt`, `sin_logs.txt`, `square_load.txt`) are not",
            "copied here; they live in `../shared/traces/` and load with the same function.",
            "",
        ]
    )
    (args.out / "README.md").write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    main()
