"""The native vector env's step, this tree against another checkout, timed in one process.

    python benchmarks/bench_ab.py --base PATH [--num-envs 64 1024] [--rounds 3]
                                  [--actions ppo|zero]

``PATH`` is a checkout of the commit to compare with (e.g. ``git worktree add --detach
../base COMMIT``); its ``serflow_env`` is copied to a temporary folder as the package
``serflow_env_base``, so that both load in one process. Both envs step the same actions in
alternating blocks of 16 steps (which one goes first flips every block), timed in CPU time:
on a machine shared with other jobs, load that changes between two separate runs moves their
rates by more than most changes do. The first 50 steps' observations must be identical.

``--actions ppo`` (default): the actions train.py's stack sends the env in 4 PPO rollouts at 64
envs (``bench_sb3.py``'s setup; recorded first with this tree, so stable-baselines3 and torch
are needed), tiled to N envs. ``--actions zero``: the default scenario with zero actions, as
``bench_env.py`` steps it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BLOCK = 16


def base_package(checkout: Path, folder: Path) -> None:
    """Copy the checkout's serflow_env into ``folder`` as the package serflow_env_base."""
    target = folder / "serflow_env_base"
    shutil.copytree(checkout / "serflow_env", target)
    for path in target.rglob("*.py"):
        path.write_text(re.sub(r"\bserflow_env\b", "serflow_env_base", path.read_text()))
    sys.path.insert(0, str(folder))


def ppo_actions(out: Path) -> tuple[dict[str, Any], np.ndarray]:
    """The scenario (as a mapping) and the actions (S, 64, 2K) of 4 PPO rollouts at 64 envs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_sb3 import serflow_model

    from serflow_env.sb3 import SerflowSB3VecEnv
    from serflow_env.scenario import to_dict

    model, env, callbacks, _ = serflow_model(64, out)
    while not isinstance(env, SerflowSB3VecEnv):
        env = env.venv
    engine, actions = env.venv.engine, []
    step = engine.step

    def recording(a: np.ndarray, batched: bool = True) -> Any:
        actions.append(np.array(a, copy=True))
        return step(a, batched)

    engine.step = recording
    model.learn(4 * model.n_steps * 64, callback=callbacks)
    return to_dict(engine.scenario), np.stack(actions)


def compare(scenario: Any, actions: np.ndarray, rounds: int) -> tuple[float, float]:
    """CPU seconds per vector step of the base and of this tree's env on the actions."""
    from serflow_env_base.vector_env import SerflowVectorEnv as Base

    from serflow_env.vector_env import SerflowVectorEnv as New

    n = actions.shape[1]
    base, new = Base(n, scenario=scenario), New(n, scenario=scenario)
    base.reset(seed=0)
    new.reset(seed=0)
    for a in actions[:50]:
        if not np.array_equal(base.step(a)[0], new.step(a)[0]):
            raise SystemExit("bench_ab: the two trees' observations differ; not comparable")
    spent = {"base": 0.0, "new": 0.0}
    for r in range(rounds):
        base.reset(seed=r)
        new.reset(seed=r)
        for b, start in enumerate(range(0, len(actions), BLOCK)):
            order = (("base", base), ("new", new)) if b % 2 == 0 else (("new", new), ("base", base))
            for name, venv in order:
                begin = time.process_time()
                for a in actions[start:start + BLOCK]:
                    venv.step(a)
                spent[name] += time.process_time() - begin
    steps = rounds * len(actions)
    return spent["base"] / steps, spent["new"] / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout to compare with")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the actions")
    parser.add_argument("--actions", choices=["ppo", "zero"], default="ppo")
    args = parser.parse_args(argv)
    if not (args.base / "serflow_env").is_dir():
        parser.error(f"--base {args.base}: no serflow_env folder there")
    if args.rounds < 1 or min(args.num_envs) < 1:
        parser.error("--rounds and --num-envs must be >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        base_package(args.base.resolve(), Path(tmp))
        scenario: Any = "default"  # zero actions: bench_env's scenario and action
        recorded = np.zeros((256, 64, 6), np.float32)
        if args.actions == "ppo":
            scenario, recorded = ppo_actions(Path(tmp) / "run")
        for n in args.num_envs:
            acts = np.concatenate([recorded] * (n // recorded.shape[1] + 1), axis=1)[:, :n]
            base_s, new_s = compare(scenario, acts, args.rounds)
            print(f"N = {n} ({args.actions} actions): base {1e3 * base_s:.2f} ms, this tree "
                  f"{1e3 * new_s:.2f} ms CPU per vector step, ratio {new_s / base_s:.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
