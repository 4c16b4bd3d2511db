"""Env-steps per second: single env, SyncVectorEnv over single envs, native vector env.

    python benchmarks/bench_env.py [--scenario default] [--seconds 2] [--sizes 1 64 1024 8192]

Each figure is measured in this run (warm-up step excluded, then as many steps as fit in
``--seconds``); the ratio native/Sync at N = 1024 compares two measurements of the same run.
One control step is ``ticks_per_step`` internal ticks (10 in the presets).
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
    args = parser.parse_args()
    long_episode = {"episode_steps": 10**6}

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

    native_rates = {}
    for n in args.sizes:
        venv = SerflowVectorEnv(n, scenario=args.scenario, **long_episode)
        venv.reset(seed=0)
        acts = np.zeros((n,) + single.action_space.shape, np.float32)
        native_rates[n] = rate(lambda v=venv, a=acts: v.step(a), n, args.seconds)
        results[f"native vector env N={n}"] = native_rates[n]

    print(f"scenario={args.scenario}, {ticks} ticks per step, "
          f"{single.scenario.num_stages} stages")
    for name, value in results.items():
        print(f"{name:<28} {value:>12,.0f} env-steps/s")
    if args.sync_size in native_rates:
        print(f"native / SyncVectorEnv at N={args.sync_size}: "
              f"{native_rates[args.sync_size] / sync_rate:,.0f}x")


if __name__ == "__main__":
    main()
