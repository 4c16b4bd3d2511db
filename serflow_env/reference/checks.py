"""Textbook queueing checks of both simulators: Erlang-C (M/M/c waiting) and Erlang-B
(throttling at the function concurrency limit, an M/G/c/c loss system).

    python -m serflow_eval.fidelity --queueing

Each row runs one scenario with one stage (the second is never reached) under a constant
action. The M/M/c rows use VMs only (c VMs of one slot, running from the start) and report
P(wait > 0) and E[wait] / mean service: for the fast model from its info (``stage_wait_*``),
for the reference over every customer that started service. The loss rows use functions
only with a log-normal service time; Erlang-B holds for any service distribution. The last
rows put an M/G/6 pool (3 VMs of 2 slots, log-normal service, cv 0.6, rho 0.95) behind the
weighted round-robin split: the split sends every n-th request to functions, so the VM stream
is smoother than Poisson and waits are shorter than the Allen-Cunneen M/G/c formula says.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from serflow_env.reference.env import ReferenceVectorEnv
from serflow_env.vector_env import SerflowVectorEnv

MEAN_S = 0.01  # VM service mean of the M/M/c rows; results are in units of it
MMC_GRID = tuple((c, rho) for c in (1, 4, 16) for rho in (0.5, 0.8, 0.95))
LOSS_GRID = ((10, 5.0), (10, 8.0), (10, 10.0), (20, 18.0), (22, 27.0))
SPLIT_SHARES = (0.0, 0.35, 0.5)  # function shares of the M/G/c-behind-a-split rows


def erlang_c(c: int, a: float) -> float:
    """P(wait > 0) in M/M/c with offered load a < c (explicit sum)."""
    top = a**c / math.factorial(c) / (1 - a / c)
    return top / (sum(a**n / math.factorial(n) for n in range(c)) + top)


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/G/c/c (recursion B(n) = a B(n-1) / (n + a B(n-1)))."""
    b = 1.0
    for n in range(1, c + 1):
        b = a * b / (n + a * b)
    return b


def _stage(name: str, **extra: Any) -> dict[str, Any]:
    spec = {"name": name, "exit_probability": 1.0,
            "vm_service": {"distribution": "exponential", "mean_s": MEAN_S},
            "faas_service": {"fixed_s": 0.1, "scalable_s": 0.0, "cv": 0.5}}
    spec.update(extra)
    return spec


def _scenario(stages: list, rate: float, steps: int, interval_s: float,
              **extra: Any) -> dict[str, Any]:
    spec = {"name": "queueing-check", "stages": stages,
            "arrivals": {"trace": {"generator": "constant", "duration_s": 100_000,
                                   "rate": rate}},
            "episode_steps": steps, "control_interval_s": interval_s,
            "exit_drift": {"volatility": 0.0}, "routing": {"mode": "share"}}
    spec.update(extra)
    return spec


def mmc_scenario(c: int, rho: float, steps: int, interval_s: float = 10.0) -> dict[str, Any]:
    one = _stage("mmc", slots_per_vm=1, max_vms=c, initial_vms=c)
    return _scenario([one, _stage("unused", max_vms=1)], rho * c / MEAN_S, steps, interval_s)


def loss_scenario(limit: int, load: float, steps: int) -> dict[str, Any]:
    """Functions only, mean service 0.1 s, offered concurrency ``load``, limit ``limit``."""
    return _scenario([_stage("loss"), _stage("unused")], load / 0.1, steps, 10.0,
                     faas={"concurrency_limit": limit, "keep_alive_s": 86400.0,
                           "cold_start": {"distribution": "deterministic", "mean_s": 0.001}})


def _vm_action(num_envs: int) -> np.ndarray:
    return np.tile(np.array([1.0, -1.0, -1.0, -1.0], np.float32), (num_envs, 1))


def mmc_fast(c: int, rho: float) -> tuple[float, float]:
    """Fast model: (P(wait > 0), E[wait] / mean), 8 envs x 35 intervals after warm-up."""
    env = SerflowVectorEnv(8, scenario=mmc_scenario(c, rho, steps=100))
    env.reset(seed=0)
    p = w = n = 0.0
    for step in range(40):
        info = env.step(_vm_action(8))[4]
        if step >= 5:
            weight = info["stage_requests"][:, 0]
            p += float(np.sum(info["stage_wait_probability"][:, 0] * weight))
            w += float(np.sum(info["stage_wait_mean_s"][:, 0] * weight))
            n += float(weight.sum())
    return p / n, w / n / MEAN_S


def mmc_reference(c: int, rho: float, customers: int) -> tuple[float, float, int]:
    """Reference: (P(wait > 0), E[wait] / mean, customers) over ``customers`` arrivals."""
    interval = 100.0
    steps = math.ceil(customers / (rho * c / MEAN_S) / interval)
    env = ReferenceVectorEnv(1, scenario=mmc_scenario(c, rho, steps + 1, interval))
    env.reset(seed=0)
    for _ in range(steps):
        env.step(_vm_action(1))
    started, waited, wait_sum = env.sims[0].wait_totals[0]
    return waited / started, wait_sum / started / MEAN_S, int(started)


def loss_fraction(env_cls: type, limit: int, load: float, steps: int = 100) -> float:
    """Share of requests throttled over ``steps`` intervals of a FaaS-only loss system."""
    env = env_cls(1, scenario=loss_scenario(limit, load, steps + 1))
    env.reset(seed=0)
    action = np.array([[-1.0, -1.0, 1.0, 1.0]], np.float32)
    throttled = arrived = 0.0
    for _ in range(steps):
        info = env.step(action)[4]
        throttled += float(info["requests_throttled"][0])
        arrived += float(info["requests_arrived"][0])
    return throttled / max(arrived, 1.0)


def customers_for(rho: float) -> int:
    """Arrivals the reference needs for a 3-sigma error within 8-10 % of E[wait] (measured)."""
    return {0.5: 300_000, 0.8: 800_000, 0.95: 6_000_000}[rho]


def split_wait(env_cls: type, share: float, steps: int = 100) -> float:
    """Mean VM wait (s) of an M/G/6 pool at rho 0.95 receiving (1 - share) of a Poisson
    stream through the weighted round-robin split (first 2 intervals skipped)."""
    vm_rate = 0.95 * 6 / 0.04
    one = _stage("split", vm_service={"distribution": "lognormal", "mean_s": 0.04, "cv": 0.6},
                 slots_per_vm=2, max_vms=3, initial_vms=3)
    env = env_cls(1, scenario=_scenario([one, _stage("unused", max_vms=1)],
                                        vm_rate / (1.0 - share), steps + 1, 100.0))
    env.reset(seed=0)
    action = np.array([[1.0, -1.0, 2.0 * share - 1.0, 1.0]], np.float32)
    w = n = 0.0
    for step in range(steps):
        info = env.step(action)[4]
        if step >= 2:
            weight = float(info["stage_requests"][0, 0]) * (1.0 - share)
            w += float(info["stage_wait_mean_s"][0, 0]) * weight
            n += weight
    return w / n


def queueing_report() -> str:
    """Both tables, Markdown."""
    lines = ["M/M/c (VMs only; E[W] in units of the mean service time)", "",
             "| c | rho | Erlang-C P(wait) | fast | reference | Erlang-C E[W] | fast | "
             "reference | reference customers |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c, rho in MMC_GRID:
        p_th = erlang_c(c, rho * c)
        w_th = p_th / (c - rho * c)
        pf, wf = mmc_fast(c, rho)
        pr, wr, n = mmc_reference(c, rho, customers_for(rho))
        lines.append(f"| {c} | {rho} | {p_th:.4f} | {pf:.4f} | {pr:.4f} | {w_th:.4f} | "
                     f"{wf:.4f} | {wr:.4f} | {n:,} |")
    lines += ["", "Throttling at the concurrency limit c with offered concurrency a (FaaS only, "
              "100 intervals of 10 s)", "",
              "| c | a | Erlang-B | fast | reference |", "|---|---|---:|---:|---:|"]
    for limit, load in LOSS_GRID:
        lines.append(f"| {limit} | {load:g} | {erlang_b(limit, load):.4f} | "
                     f"{loss_fraction(SerflowVectorEnv, limit, load):.4f} | "
                     f"{loss_fraction(ReferenceVectorEnv, limit, load):.4f} |")
    lines += ["", "M/G/6 at rho 0.95 behind the weighted round-robin split (100 intervals of "
              "100 s): mean VM wait, s", "",
              "| function share | fast | reference |", "|---|---:|---:|"]
    for share in SPLIT_SHARES:
        lines.append(f"| {share:g} | {split_wait(SerflowVectorEnv, share):.4f} | "
                     f"{split_wait(ReferenceVectorEnv, share):.4f} |")
    return "\n".join(lines)
