"""Env-steps per second: single env, SyncVectorEnv over single envs, native vector env.

    python benchmarks/bench_env.py [--scenario default] [--seconds 2] [--sizes 1 64 1024 8192]
                                   [--modes share cap]

Each figure is measured in this run (warm-up step excluded, then as many steps as fit in
``--seconds``); the ratio native/Sync at N = 1024 compares two measurements of the same run,
and so does the ratio cap/share of the native vector env in the two routing modes
(``routing.mode``; the single and Sync figures use the first mode). One control step is
``ticks_per_step`` internal ticks (10 in the presets).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import serflow_env  # noqa: F401
from serflow_env import SerflowEnv, SerflowVectorEnv


def rate(step: Callable[[], None], envs_per_step: int, seconds: float) -> float:
    step()  # warm-up
    count, start = 0, time.perf_counter()
    while True:
        step()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return count * envs_per_step / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 8192])
    parser.add_argument("--sync-size", type=int, default=1024)
    parser.add_argument("--modes", nargs="+", default=["share", "cap"],
                        choices=["share", "cap"], help="routing modes of the native vector env")
    args = parser.parse_args()
    long_episode = {"episode_steps": 10**6, "overrides": {"routing.mode": args.modes[0]}}

    single = SerflowEnv(args.scenario, **long_episode)
    single.reset(seed=0)
    ticks = single.scenario.ticks_per_step
    action = np.zeros(single.action_space.shape, np.float32)
    results = {"single env": rate(lambda: single.step(action), 1, args.seconds)}

    sync = gym.vector.SyncVectorEnv(
        [lambda: SerflowEnv(args.scenario, **long_episode) for _ in range(args.sync_size)])
    sync.reset(seed=0)
    sync_actions = np.zeros((args.sync_size,) + single.action_space.shape, np.float32)
    sync_rate = rate(lambda: sync.step(sync_actions), args.sync_size, args.seconds)
    results[f"SyncVectorEnv N={args.sync_size}"] = sync_rate

    native_rates: dict[tuple[str, int], float] = {}
    for mode in args.modes:
        for n in args.sizes:
            venv = SerflowVectorEnv(n, scenario=args.scenario, episode_steps=10**6,
                                    overrides={"routing.mode": mode})
            venv.reset(seed=0)
            acts = np.zeros((n,) + single.action_space.shape, np.float32)
            native_rates[mode, n] = rate(lambda v=venv, a=acts: v.step(a), n, args.seconds)
            results[f"native N={n} ({mode})"] = native_rates[mode, n]

    print(f"scenario={args.scenario}, {ticks} ticks per step, "
          f"{single.scenario.num_stages} stages")
    for name, value in results.items():
        print(f"{name:<28} {value:>12,.0f} env-steps/s")
    first = args.modes[0]
    if (first, args.sync_size) in native_rates:
        print(f"native ({first}) / SyncVectorEnv at N={args.sync_size}: "
              f"{native_rates[first, args.sync_size] / sync_rate:,.0f}x")
    if {"share", "cap"} <= set(args.modes):
        for n in args.sizes:
            print(f"cap / share at N={n}: "
                  f"{native_rates['cap', n] / native_rates['share', n]:.2f}")


if __name__ == "__main__":
    main()
