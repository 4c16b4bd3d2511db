"""Analyses behind docs/RESULTS_RL.md: how much room the heuristic leaves, and what fixed
``load`` action maps achieve without learning.

    python -m serflow_eval.analysis bound --trace ../shared/traces/wits_logs.txt --start-s 30600 \
        --duration-s 14400
    python -m serflow_eval.analysis map-grid --trace ../shared/traces/wits_logs.txt@27000:30600
    python -m serflow_eval.analysis foresight --trace ../shared/traces/wits_logs.txt@27000:30600

``bound``: VM-hours a perfect-foresight provisioner would need if it sized every stage each
control interval for that interval's mean load (stage load = rate x base reach, capacity =
slots / mean VM service time) at a given utilisation: fluid (fractional VMs) and whole VMs. It
ignores boot delays, minimum billing and queueing, so it is a floor, not a policy.

``map-grid``: the ``load`` map with a zero agent action over a grid of its settings, cost
relative to the ``serflow`` heuristic and violation rate on a validation trace.

``foresight``: one provisioning rule sized for the peak load of the next VM boot time read
from the trace (a bound no controller reaches), for that of the last boot time (causal) and,
with ``--fit-trace``, for a linear forecast of it fitted on that trace (causal), over a grid of
utilisations and routing caps; ``--route-ahead`` adds each routing on the coming interval's
load (a bound) (:mod:`agents.analysis.foresight`): what knowing the load ahead is worth.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence

import numpy as np

from agents.analysis.foresight import (
    PeakForecast,
    WindowPeakPolicy,
    boot_window,
    interval_means,
    interval_rates,
)
from agents.heuristics.profiling import profile_stages
from agents.policy import make_policy
from agents.rl.policy import LoadMapPolicy
from serflow_env.scenario import Scenario, load_scenario
from serflow_env.traces import load_trace
from serflow_eval.scoring import eval_scenario, run_policy


def provisioning_floor(scenario: Scenario, rate_per_s: np.ndarray,
                       utilisation: float) -> tuple[float, float]:
    """(fluid VM-hours, whole-VM VM-hours) for per-second request counts ``rate_per_s``."""
    if not 0.0 < utilisation <= 1.0:
        raise ValueError(f"utilisation={utilisation!r}; allowed (0, 1]")
    interval = int(round(scenario.control_interval_s))
    mean_rate = interval_means(rate_per_s, interval)  # (intervals,)
    profile = profile_stages(scenario)  # base reach and VM capacity per stage, (K,)
    vms = mean_rate[:, None] * profile.base_reach / (profile.vm_capacity_rps * utilisation)
    hours = interval / 3600.0
    return float(vms.sum() * hours), float(np.ceil(vms - 1e-9).sum() * hours)


def map_grid(scenario: Scenario, episodes: int, seed: int, utilisations: Sequence[float],
             route_mids: Sequence[float], holds: Sequence[float]) -> list[dict[str, float]]:
    """Cost relative to ``serflow`` and violations of the zero-action ``load`` map per setting."""
    ref = run_policy(make_policy("serflow", scenario), scenario, episodes, seed)
    rows = [{"policy": "serflow", "cost_rel": 0.0, "violations": ref.violation_rate}]
    for util, mid, hold in itertools.product(utilisations, route_mids, holds):
        policy = LoadMapPolicy(scenario, utilisation=util, route_mid=mid, hold_s=hold)
        m = run_policy(policy, scenario, episodes, seed)
        rows.append({"utilisation": util, "route_mid": mid, "hold_s": hold,
                     "cost_rel": m.cost_per_1k_requests / ref.cost_per_1k_requests - 1.0,
                     "violations": m.violation_rate, "vms": m.vms_running})
    return rows


def fit_forecast(base: str | Scenario, fit_trace: str) -> PeakForecast:
    """A :class:`PeakForecast` fitted on ``fit_trace`` (PATH or PATH@START:END)."""
    scenario = eval_scenario(base, fit_trace)
    return PeakForecast.fit(interval_rates(scenario), boot_window(scenario))


def foresight_grid(scenario: Scenario, episodes: int, seed: int,
                   utilisations: Sequence[float], routes: Sequence[float],
                   forecast: PeakForecast | None = None, margins: Sequence[float] = (1.0,),
                   route_ahead: bool = False,
                   simulator: str = "fast") -> list[dict[str, float | str]]:
    """Cost relative to ``serflow`` and violations of :class:`WindowPeakPolicy` looking ahead,
    behind and (given ``forecast``) at the forecast times each of ``margins``; with
    ``route_ahead`` each also routing on the coming interval's load. ``simulator``: ``fast``
    or ``reference`` (the per-request simulator)."""
    ref = run_policy(make_policy("serflow", scenario), scenario, episodes, seed,
                     simulator=simulator)
    rows: list[dict[str, float | str]] = [
        {"policy": "serflow", "cost_rel": 0.0, "violations": ref.violation_rate,
         "vms": ref.vms_running, "function_share": ref.function_share}]
    looks = [("ahead", 1.0), ("behind", 1.0)]
    if forecast is not None:
        looks += [("forecast", m) for m in margins]
    routings = (False, True) if route_ahead else (False,)
    for (look, margin), ahead, util, route in itertools.product(looks, routings, utilisations,
                                                                routes):
        policy = WindowPeakPolicy(scenario, utilisation=util, route=route, look=look,
                                  forecast=forecast if look == "forecast" else None,
                                  margin=margin, route_ahead=ahead)
        m = run_policy(policy, scenario, episodes, seed, simulator=simulator)
        row: dict[str, float | str] = {"policy": policy.name, "utilisation": util,
                                       "route": route}
        if look == "forecast":
            row["margin"] = margin
        rows.append({**row, "cost_rel": m.cost_per_1k_requests / ref.cost_per_1k_requests - 1.0,
                     "violations": m.violation_rate, "vms": m.vms_running,
                     "function_share": m.function_share})
    return rows


def _episode_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every rollout analysis takes: scenario, trace window, episodes, seed."""
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--trace", required=True, help="PATH or PATH@START:END")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=100)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bound", help="perfect-foresight VM-hour floor")
    b.add_argument("--scenario", default="default")
    b.add_argument("--trace", required=True, help="LIBRA-format trace (one count per second)")
    b.add_argument("--start-s", type=int, default=0)
    b.add_argument("--duration-s", type=int, default=None)
    b.add_argument("--utilisation", type=float, nargs="+", default=[1.0, 0.85, 0.75])
    g = _episode_arguments(sub.add_parser("map-grid",
                                          help="fixed load maps against the heuristic"))
    g.add_argument("--utilisation", type=float, nargs="+", default=[0.75, 0.85, 0.95])
    g.add_argument("--route-mid", type=float, nargs="+", default=[0.7, 0.85, 1.0])
    g.add_argument("--hold-s", type=float, nargs="+", default=[120.0, 300.0, 900.0])
    f = _episode_arguments(sub.add_parser(
        "foresight", help="the peak rule sized on the next vs the last boot time"))
    f.add_argument("--utilisation", type=float, nargs="+", default=[0.7, 0.8, 0.9, 1.0])
    f.add_argument("--route", type=float, nargs="+", default=[0.7, 0.9, 1.0])
    f.add_argument("--fit-trace", default=None,
                   help="also the forecast rule, fitted on this PATH or PATH@START:END")
    f.add_argument("--margin", type=float, nargs="+", default=[1.0, 1.2],
                   help="factors on the forecast peak")
    f.add_argument("--route-ahead", action="store_true",
                   help="also each rule routing on the coming interval's load (a bound)")
    f.add_argument("--simulator", choices=("fast", "reference"), default="fast",
                   help="the vectorized model or the per-request reference simulator")
    args = parser.parse_args(argv)
    if args.command == "bound":
        trace = load_trace(args.trace)
        if trace.resolution_s != 1.0:
            raise ValueError(f"--trace {args.trace}: bound needs one count per second, got "
                             f"{trace.resolution_s:g} s bins")
        counts = trace.values
        end = None if args.duration_s is None else args.start_s + args.duration_s
        window = np.asarray(counts[args.start_s:end], dtype=float)
        scenario = load_scenario(args.scenario)
        print(f"{len(window)} s, {window.sum():.0f} requests")
        for util in args.utilisation:
            fluid, whole = provisioning_floor(scenario, window, util)
            print(f"utilisation {util:.2f}: fluid {fluid:.1f} VM-h, whole VMs {whole:.1f} VM-h")
    else:
        scenario = eval_scenario(args.scenario, args.trace, {"reward.reference_rate": 100.0})
        if args.command == "map-grid":
            rows = map_grid(scenario, args.episodes, args.seed, args.utilisation,
                            args.route_mid, args.hold_s)
        else:
            forecast = None if args.fit_trace is None else \
                fit_forecast(args.scenario, args.fit_trace)
            rows = foresight_grid(scenario, args.episodes, args.seed, args.utilisation,
                                  args.route, forecast, args.margin, args.route_ahead,
                                  args.simulator)
        for row in rows:
            print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
