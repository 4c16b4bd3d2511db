"""PPO end to end: SERFLOW through train.py's stack against CartPole-v1, and where the time goes.

    python benchmarks/bench_sb3.py [--num-envs 16 64] [--rollouts 10] [--profile]

For each number of envs N, in one run: stable-baselines3 PPO on gymnasium's ``CartPole-v1``
through SB3's own vector env (``make_vec_env``, a DummyVecEnv), and PPO on SERFLOW through the
stack ``train.py`` builds (native vector env -> SB3 adapter -> VecMonitor -> action map -> frame
stack -> VecNormalize, with train.py's training callbacks; validation and checkpoints off), both
with the PPO hyperparameters and MLP of ``agents/hyperparams/ppo.yml`` (``n_steps``,
``batch_size``, ``n_epochs``, ``net_arch``). Each is timed over ``--rollouts`` rollouts after one
warm-up rollout; the ratio is SERFLOW's env-steps/s over CartPole's.

The breakdown times every layer of both stacks in the same runs (inclusive times of nested
calls, reported exclusive): the PPO update, the policy's forward pass with the rollout buffer
and SB3's loop (the rest of ``collect_rollouts``), the env and each wrapper, the callbacks.
``--profile`` adds the functions of the SERFLOW run that take the most time of their own
(cProfile, a separate run).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from serflow_env.sb3 import SerflowSB3VecEnv
from serflow_eval.train_config import TrainConfig
from serflow_eval.training import _callbacks, make_training_env, resolve

PPO_KEYS = ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "learning_rate",
            "clip_range", "ent_coef", "vf_coef", "max_grad_norm")


class Clock:
    """Inclusive seconds per label of the functions it wraps."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        """Replace ``owner.name`` (an instance attribute shadows the method) by a timed one."""
        func = getattr(owner, name)

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.seconds.clear()


def layer_name(venv: VecEnv) -> str:
    names = {"SerflowSB3VecEnv": "SB3 adapter", "ActionMapVecWrapper": "action map wrapper",
             "VecFrameStack": "frame stack", "DummyVecEnv": "DummyVecEnv + CartPole envs"}
    return names.get(type(venv).__name__, type(venv).__name__)


def instrument_env(env: VecEnv, clock: Clock) -> list[str]:
    """Time step_async + step_wait of every layer (outermost first); returns their labels."""
    labels, layer = [], env
    while True:
        label = layer_name(layer)
        labels.append(label)
        clock.wrap(layer, "step_async", label)
        clock.wrap(layer, "step_wait", label)
        if isinstance(layer, SerflowSB3VecEnv):
            clock.wrap(layer.venv.engine, "step", "native env: dynamics, observation, info")
            clock.wrap(layer.venv.engine, "reset_where", "native env: autoreset")
            labels += ["native env: dynamics, observation, info", "native env: autoreset"]
            break
        if not isinstance(layer, VecEnvWrapper):
            break
        layer = layer.venv
    return labels


def breakdown(clock: Clock, layers: list[str], callbacks: bool) -> dict[str, float]:
    """Exclusive seconds per component from the inclusive times."""
    s = clock.seconds
    env_total = s[layers[0]]
    parts = {"PPO update (train)": s["train"],
             "policy forward, rollout buffer, SB3 loop": s["collect"] - env_total
             - s["callbacks"]}
    wrappers = [label for label in layers if not label.startswith("native env")]
    for outer, inner in zip(wrappers, wrappers[1:] + [None]):
        inner_time = s[inner] if inner else 0.0
        if inner is None and "native env: dynamics, observation, info" in layers:
            inner_time = (s["native env: dynamics, observation, info"]
                          + s["native env: autoreset"])
        parts[outer] = s[outer] - inner_time
    for label in layers:
        if label.startswith("native env"):
            parts[label] = s[label]
    if callbacks:
        parts["training callbacks"] = s["callbacks"]
    return parts


def run_ppo(model: PPO, env: VecEnv, rollouts: int, callbacks: list | None,
            clock: Clock) -> tuple[float, dict[str, float]]:
    """(env-steps/s, exclusive seconds per component) over ``rollouts`` rollouts."""
    layers = instrument_env(env, clock)
    clock.wrap(model, "train", "train")
    clock.wrap(model, "collect_rollouts", "collect")
    for cb in callbacks or []:
        for hook in ("_on_step", "_on_rollout_end", "_on_rollout_start"):
            clock.wrap(cb, hook, "callbacks")
    steps = model.n_steps * env.num_envs
    model.learn(steps, callback=callbacks)  # warm-up rollout, not counted
    clock.reset()
    start = time.perf_counter()
    model.learn(rollouts * steps, callback=callbacks, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    parts = breakdown(clock, layers, callbacks is not None)
    parts["total"] = elapsed
    return rollouts * steps / elapsed, parts


def serflow_model(num_envs: int, out: Path) -> tuple[PPO, VecEnv, list, dict[str, Any]]:
    """PPO on train.py's env stack with train.py's training callbacks (and its settings)."""
    cfg = TrainConfig(algo="ppo", out=str(out), num_envs=num_envs, eval_freq=0,
                      checkpoint_freq=0, progress_bar=False, tensorboard=False)
    setup = resolve(cfg)
    out.mkdir(parents=True, exist_ok=True)
    env = make_training_env(setup, seed=0)
    model = PPO(setup.policy, env, seed=0, device="cpu", verbose=0, **setup.algo_kwargs)
    callbacks, _ = _callbacks(cfg, setup, out, log=lambda _: None)
    return model, env, callbacks, setup.algo_kwargs


def cartpole_model(num_envs: int, algo_kwargs: dict[str, Any]) -> tuple[PPO, VecEnv]:
    """PPO on CartPole-v1 with the same PPO settings and MLP (a discrete action: no log std)."""
    env = make_vec_env("CartPole-v1", n_envs=num_envs, seed=0)
    kwargs = {k: v for k, v in algo_kwargs.items() if k in PPO_KEYS}
    net_arch = (algo_kwargs.get("policy_kwargs") or {}).get("net_arch")
    if net_arch is not None:
        kwargs["policy_kwargs"] = {"net_arch": net_arch}
    return PPO("MlpPolicy", env, seed=0, device="cpu", verbose=0, **kwargs), env


def profile_serflow(num_envs: int, rollouts: int, out: Path, top: int = 15) -> str:
    """cProfile of the SERFLOW run: the functions with the most time of their own, and the
    share of the native env's step (``serflow_env.dynamics.step``) each function it calls
    takes, children included."""
    model, _, callbacks, _ = serflow_model(num_envs, out)
    model.learn(model.n_steps * num_envs, callback=callbacks)
    profiler = cProfile.Profile()
    profiler.enable()
    model.learn(rollouts * model.n_steps * num_envs, callback=callbacks,
                reset_num_timesteps=False)
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    step = next((key for key in stats.stats
                 if key[2] == "step" and key[0].endswith("dynamics.py")), None)
    if step is not None:
        total = stats.stats[step][3]
        parts = sorted(((timing[3], f"{Path(key[0]).stem}.{key[2]}")
                        for key, (*_, callers) in stats.stats.items()
                        for caller, timing in callers.items() if caller == step), reverse=True)
        text.write(f"native env step (serflow_env.dynamics.step): {total:.2f} s; calls "
                   "(children included):\n")
        for seconds, name in parts[:top]:
            text.write(f"  {name:<40}{seconds:>8.2f} s {100 * seconds / total:>6.1f} %\n")
    return text.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rollouts", type=int, default=10,
                        help="timed PPO rollouts (+ 1 warm-up) per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (train.py's)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the SERFLOW run (top functions by own time)")
    args = parser.parse_args(argv)
    if args.rollouts < 1 or min(args.num_envs) < 1:
        parser.error("--rollouts and --num-envs must be >= 1")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.num_envs:
            result = measure(n, args.rollouts, Path(tmp) / f"serflow{n}")
            report(n, result)
            if args.profile:
                print(profile_serflow(n, args.rollouts, Path(tmp) / f"profile{n}"))


def measure(num_envs: int, rollouts: int, out: Path) -> dict[str, Any]:
    """Both PPO runs at ``num_envs``: rates (env-steps/s) and exclusive seconds per part."""
    model, env, callbacks, algo_kwargs = serflow_model(num_envs, out)
    serflow_rate, serflow_parts = run_ppo(model, env, rollouts, callbacks, Clock())
    cart, cart_env = cartpole_model(num_envs, algo_kwargs)
    cart_rate, cart_parts = run_ppo(cart, cart_env, rollouts, None, Clock())
    return {"rollout_steps": model.n_steps * num_envs, "rollouts": rollouts,
            "cartpole": (cart_rate, cart_parts), "serflow": (serflow_rate, serflow_parts)}


def report(n: int, result: dict[str, Any]) -> None:
    steps, rollouts = result["rollout_steps"], result["rollouts"]
    (cart_rate, cart), (serflow_rate, serflow) = result["cartpole"], result["serflow"]
    total_steps = steps * rollouts
    print(f"N = {n} envs, {rollouts} rollouts of {steps} env steps (+1 warm-up)")
    print(f"  CartPole-v1 (SB3 DummyVecEnv)      {cart_rate:>9,.0f} env-steps/s")
    print(f"  SERFLOW (train.py's stack)         {serflow_rate:>9,.0f} env-steps/s")
    print(f"  ratio SERFLOW / CartPole           {serflow_rate / cart_rate:>9.2f}")
    print(f"  {'ms per 1,000 env steps':<44}{'CartPole':>10}{'SERFLOW':>10}")
    labels = [label for label in dict.fromkeys([*cart, *serflow]) if label != "total"]
    for label in [*labels, "total"]:
        cells = [f"{1e6 * part[label] / total_steps:>10.1f}" if label in part
                 else f"{'-':>10}" for part in (cart, serflow)]
        print(f"  {label:<44}{''.join(cells)}")
    print(flush=True)


if __name__ == "__main__":
    main()
