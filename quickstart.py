"""The main job on built-in defaults: train a small PPO agent briefly on the default scenario,
evaluate it against the heuristics on the same seeds, print the table and write the plots.

    python quickstart.py [--timesteps 20000] [--out results] [--run runs/quickstart]

No external file is needed (the default scenario generates its trace). The agent is validated
against the ``serflow`` heuristic during training (``best_model.zip``) and evaluated over the
whole 2-hour generated diurnal trace (mean 100 req/s). Run it again and it trains into a fresh
folder (``runs/quickstart-2``, ...; ``--overwrite`` replaces the run instead); the evaluation
files in ``--out`` are replaced. Everything it does is also available on its own:
``train.py`` (training) and ``evaluate.py`` (comparison).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HEURISTICS = "serflow,libra,faas-only,vm-threshold"
#: control intervals of the default scenario's whole generated trace (7200 s / 10 s)
WHOLE_TRACE_STEPS = 720


def run_folder(requested: Path, overwrite: bool) -> tuple[Path, str]:
    """Where to train, and a sentence saying so: ``requested`` if it holds no run, else (with
    ``overwrite``) ``requested`` emptied, else the first free ``requested-N``."""
    if not (requested / "run.json").exists():
        return requested, f"training into {requested}"
    if overwrite:
        shutil.rmtree(requested)
        return requested, f"{requested} held a run: replaced (--overwrite)"
    n = 2
    while (fresh := requested.with_name(f"{requested.name}-{n}")).exists():
        n += 1
    return fresh, (f"{requested} already holds a run: training into {fresh} "
                   "(--overwrite replaces it instead)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000,
                        help="PPO training steps, rounded up to whole rollouts (64 envs x 128 "
                             "steps; default 20000: under a minute on 2 idle cores)")
    parser.add_argument("--run", default="runs/quickstart", help="training run folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run in --run instead of training into a fresh folder")
    parser.add_argument("--out", default="results", help="evaluation output folder")
    parser.add_argument("--seeds", type=int, default=3, help="evaluation seeds (default 3)")
    parser.add_argument("--episode-steps", type=int, default=WHOLE_TRACE_STEPS,
                        help="evaluation intervals of 10 s (default 720: the whole trace)")
    args = parser.parse_args(argv)
    if args.timesteps < 1:
        parser.error(f"--timesteps={args.timesteps}; allowed >= 1")
    from agents.rl.config import load_hyperparams  # heavy imports after --help
    from evaluate import main as evaluate_main
    from train import main as train_main

    hp = load_hyperparams("ppo")
    rollout = int(hp["n_envs"]) * int(hp["n_steps"])
    # about four validations, at most one per rollout (validation runs between rollouts)
    eval_freq = max(args.timesteps // 4, rollout)

    run, said = run_folder(Path(args.run), args.overwrite)
    print(said, flush=True)
    code = train_main(["--algo", "ppo", "--scenario", "default", "--out", str(run),
                       "--timesteps", str(args.timesteps), "--seed", "0", "--no-progress-bar",
                       "--eval-freq", str(eval_freq)])
    if code:
        return code
    model = run / "best_model.zip"
    if not model.exists():
        model = run / "final_model.zip"
    print(f"evaluating {model} against {HEURISTICS.replace(',', ', ')} "
          f"(files in {args.out} are replaced)", flush=True)
    return evaluate_main(["--scenario", "default", "--policies", f"ppo:{model},{HEURISTICS}",
                          "--seeds", str(args.seeds), "--episode-steps",
                          str(args.episode_steps), "--out", args.out])


if __name__ == "__main__":
    sys.exit(main())
