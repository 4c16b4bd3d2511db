"""Scaling out with Ray on this machine: evaluation units, a Tune sweep, RLlib vs SB3 PPO.

    python benchmarks/bench_ray.py --cpus 2

1. evaluate.py's (policy, seed) units serially vs as Ray tasks (same results), and Ray's
   fixed start-up cost; 1b. suite v1's test split with the heuristics (``evaluate.py --suite``'s
   (task, policy, seed) units) serially vs as Ray tasks, in one run; 2. a sweep of 4 short
   PPO trials with Tune vs one after another;
3. env-steps/s of RLlib PPO (vector entry point) and SB3 PPO on the same env and MLP.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from serflow_env.scenario import load_scenario
from serflow_env.suite import build_tasks, load_suite
from serflow_eval.ray_eval import ray_run_policies, ray_run_suite_units
from serflow_eval.runner import run_policies
from serflow_eval.suite_eval import run_suite_units, suite_units
from serflow_eval.training import TrainConfig, train
from serflow_eval.tune import load_sweep, run_sweep

POLICIES = ["serflow", "libra", "faas-only", "vm-threshold"]
TRAIN = {"algo": "ppo", "timesteps": 4096, "num_envs": 8, "eval_freq": 2048, "eval_steps": 60,
         "eval_episodes": 2, "heuristic": "", "checkpoint_freq": 0, "tensorboard": False,
         "hyperparams": {"n_steps": 128, "batch_size": 256}}


def bench_eval(ray, seeds: int, steps: int) -> None:
    sc = load_scenario("default", episode_steps=steps)
    t = time.perf_counter()  # the first tasks start the workers and import the project
    ray_run_policies(POLICIES, sc, [0, 1], 2)
    print(f"  Ray worker warm-up (first {2 * len(POLICIES)} tiny units): "
          f"{time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    serial = run_policies(POLICIES, sc, list(range(seeds)), steps)
    t_serial = time.perf_counter() - t
    t = time.perf_counter()
    parallel = ray_run_policies(POLICIES, sc, list(range(seeds)), steps)
    t_ray = time.perf_counter() - t
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    units = len(POLICIES) * seeds
    print(f"evaluation, {units} units of {steps} steps: serial {t_serial:.1f} s, Ray "
          f"{t_ray:.1f} s, speed-up {t_serial / t_ray:.2f}x (identical results)")
    t = time.perf_counter()
    ray.get([ray.remote(num_cpus=1)(lambda: None).remote() for _ in range(units)])
    print(f"  Ray per-task overhead (empty tasks): {(time.perf_counter() - t) / units * 1e3:.1f}"
          " ms")


def bench_suite(seeds: int) -> None:
    tasks, _ = build_tasks(load_suite("v1"), splits=["test"])
    units = suite_units(tasks, POLICIES + ["vm-peak"], list(range(seeds)))
    t = time.perf_counter()
    serial = run_suite_units(units)
    t_serial = time.perf_counter() - t
    t = time.perf_counter()
    parallel = ray_run_suite_units(units)
    t_ray = time.perf_counter() - t
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    print(f"suite v1 test split, {len(units)} units ({len(tasks)} tasks x 5 heuristics x "
          f"{seeds} seeds): serial {t_serial:.1f} s, Ray {t_ray:.1f} s, speed-up "
          f"{t_serial / t_ray:.2f}x (identical results)")


def bench_sweep(tmp: Path, cpus: int) -> None:
    seeds = [0, 1, 2, 3]
    t = time.perf_counter()
    for seed in seeds:
        train(TrainConfig(out=str(tmp / f"serial{seed}"), seed=seed, progress_bar=False,
                          **TRAIN), log=lambda _: None)
    t_serial = time.perf_counter() - t
    spec_path = tmp / "sweep.yml"
    spec_path.write_text(yaml.safe_dump({"name": "bench", "storage": str(tmp / "sweeps"),
                                         "train": TRAIN, "search": {"seed": {"grid": seeds}}}))
    t = time.perf_counter()
    run_sweep(load_sweep(spec_path))
    t_tune = time.perf_counter() - t
    print(f"sweep of 4 trials x {TRAIN['timesteps']} steps: one by one {t_serial:.1f} s, Tune "
          f"on {cpus} CPUs {t_tune:.1f} s ({t_serial / t_tune:.2f}x); per-trial overhead "
          f"{(t_tune - t_serial / cpus) / (4 / cpus):.1f} s over an ideal split")


def bench_rllib_vs_sb3(iters: int) -> None:
    from stable_baselines3 import PPO

    from serflow_env import make_sb3_vec_env
    from serflow_eval.rllib import ppo_config

    algo = ppo_config(num_envs=8, rollout_steps=128, minibatch_size=256, num_epochs=10
                      ).build_algo()
    algo.train()  # warm-up
    t = time.perf_counter()
    for _ in range(iters):
        algo.train()
    rllib_rate = iters * 8 * 128 / (time.perf_counter() - t)
    algo.stop()
    model = PPO("MlpPolicy", make_sb3_vec_env("default", num_envs=8, seed=0), n_steps=128,
                batch_size=256, n_epochs=10, device="cpu", verbose=0)
    model.learn(1024)
    t = time.perf_counter()
    model.learn(iters * 1024, reset_num_timesteps=False)
    sb3_rate = iters * 1024 / (time.perf_counter() - t)
    print(f"PPO, 8 envs x 128 steps, 10 epochs, MLP 64x64: RLlib {rllib_rate:.0f} env-steps/s, "
          f"SB3 {sb3_rate:.0f} env-steps/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--suite-seeds", type=int, default=3)
    parser.add_argument("--rl-iters", type=int, default=5)
    parser.add_argument("--only", choices=("eval", "suite", "sweep", "rl"), help="one measurement")
    args = parser.parse_args()
    import ray
    import torch

    torch.set_num_threads(1)
    t = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"RAY_CHDIR_TO_TRIAL_DIR": "0"}})
    print(f"Ray start (local, {args.cpus} CPUs): {time.perf_counter() - t:.1f} s")
    try:
        if args.only in (None, "eval"):
            bench_eval(ray, args.seeds, args.steps)
        if args.only in (None, "suite"):
            bench_suite(args.suite_seeds)
        if args.only in (None, "sweep"):
            with tempfile.TemporaryDirectory() as tmp:
                bench_sweep(Path(tmp), args.cpus)
        if args.only in (None, "rl"):
            bench_rllib_vs_sb3(args.rl_iters)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
