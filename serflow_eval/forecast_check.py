"""How good the context forecast (:mod:`serflow_env.context`) is on a trace: its error
against the realised mean rate ahead, beside the naive forecast (the mean of the last ``h``
seconds), per horizon.

    python -m serflow_eval.forecast_check --trace ../shared/traces/wits_logs.txt@27000:30600
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from agents.rl.config import parse_trace_spec
from serflow_env.arrivals import resolve_trace
from serflow_env.context import ContextSpec, holt_forecast


def forecast_errors(rates: np.ndarray, spec: ContextSpec, interval_s: float,
                    warm_up_s: int) -> list[dict[str, float]]:
    """Per horizon: RMSE (req/s) of the Holt forecast and of the naive forecast of the mean
    rate over the next ``h`` control intervals, at every second from ``warm_up_s`` on."""
    y = np.asarray(rates, dtype=float)
    rows = []
    cum = np.concatenate([[0.0], np.cumsum(y)])
    for h in spec.horizons:
        span = int(round(h * interval_s))
        t = np.arange(max(warm_up_s, span), y.size - span + 1)
        truth = (cum[t + span] - cum[t]) / span
        naive = (cum[t] - cum[t - span]) / span
        holt = holt_forecast(y, spec.alpha, spec.beta, np.array([float(span)]))[t, 0]
        rows.append({"horizon_s": float(span), "points": float(t.size),
                     "holt_rmse": float(np.sqrt(np.mean((holt - truth) ** 2))),
                     "naive_rmse": float(np.sqrt(np.mean((naive - truth) ** 2))),
                     "truth_std": float(truth.std())})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trace", required=True, help="PATH or PATH@START:END seconds")
    p.add_argument("--context", default="forecast", help="context spec (serflow_env.context)")
    p.add_argument("--interval-s", type=float, default=10.0, help="control interval")
    p.add_argument("--warm-up-s", type=int, default=300, help="seconds left out at the start")
    args = p.parse_args(argv)
    spec = ContextSpec.from_value(args.context)
    trace = resolve_trace(parse_trace_spec(args.trace))
    print(f"{args.trace}: {trace.duration_s:g} s, mean {trace.mean_rate:.1f} req/s; Holt "
          f"alpha {spec.alpha:g}, beta {spec.beta:g}")
    print("| horizon (s) | Holt RMSE (req/s) | naive RMSE (last h s) | std of the truth |")
    print("|---:|---:|---:|---:|")
    for r in forecast_errors(trace.rate_per_second(), spec, args.interval_s, args.warm_up_s):
        print(f"| {r['horizon_s']:g} | {r['holt_rmse']:.2f} | {r['naive_rmse']:.2f} "
              f"| {r['truth_std']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
