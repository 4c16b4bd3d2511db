"""The main job on built-in defaults: train a small PPO agent briefly on the default scenario,
evaluate it against the heuristics on the same seeds, print the table and write the plots.

    python quickstart.py [--timesteps 20000] [--out results] [--run runs/quickstart]

No external file is needed (the default scenario generates its trace). Everything it does is
also available on its own: ``train.py`` (training) and ``evaluate.py`` (comparison).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HEURISTICS = "serflow,libra,faas-only,vm-threshold"


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000,
                        help="PPO training steps (default 20000: a few minutes on 2 cores)")
    parser.add_argument("--run", default="runs/quickstart", help="training run folder")
    parser.add_argument("--out", default="results", help="evaluation output folder")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--episode-steps", type=int, default=120)
    args = parser.parse_args()
    run([sys.executable, "train.py", "--algo", "ppo", "--scenario", "default", "--out", args.run,
         "--timesteps", str(args.timesteps), "--seed", "0", "--no-progress-bar"])
    model = Path(args.run) / "best_model.zip"
    if not model.exists():
        model = Path(args.run) / "final_model.zip"
    run([sys.executable, "evaluate.py", "--scenario", "default",
         "--policies", f"ppo:{model},{HEURISTICS}", "--seeds", str(args.seeds),
         "--episode-steps", str(args.episode_steps), "--out", args.out])


if __name__ == "__main__":
    main()
