"""Train a PPO or SAC agent for the SERFLOW environment (stable-baselines3).

    python train.py --algo ppo --scenario default --trace traces/diurnal_2h.txt \
        --trace /work/shared/traces/wits_logs.txt@0:27000 --timesteps 2000000 --num-envs 16 \
        --seed 0 --eval-trace /work/shared/traces/wits_logs.txt@27000:30600 --out runs/ppo
    python train.py --resume runs/ppo          # continue from the newest checkpoint

(The WITS trace, wits_logs.txt, is not shipped: any LIBRA-format file works, or a shipped
generated trace by name, e.g. ``--trace bursty_mmpp_1h.txt@0:2700``.)
    python -m serflow_eval.scoring --trace ... --policies serflow ppo:runs/ppo/best_model.zip

Hyperparameters come from agents/hyperparams/{ppo,sac}.yml (key serflow/Serflow-v2) and can
be overridden: ``--hyperparams learning_rate:3e-4 n_steps:256``; scenario fields with
``--set reward.w_slo=20``. See docs/RESULTS_RL.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from serflow_eval.cli import add_dataclass_arguments, dataclass_from_args
from serflow_eval.train_config import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    """The options of :class:`~serflow_eval.train_config.TrainConfig` (help and defaults from its
    fields), plus ``--resume``."""
    p = argparse.ArgumentParser(description="Train a PPO/SAC agent on the SERFLOW env.")
    p.add_argument("--resume", metavar="RUN",
                   help="continue runs/NAME from its last checkpoint (with --timesteps: up to "
                        "that total; other options come from its run.json)")
    add_dataclass_arguments(p, TrainConfig)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if not args.algo or not args.out:
        raise ValueError("--algo and --out are required (unless --resume RUN)")
    return dataclass_from_args(TrainConfig, args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from serflow_eval.training import resume, train  # torch and SB3: after --help

    try:
        if args.resume:
            resume(args.resume, timesteps=args.timesteps, progress_bar=args.progress_bar)
        else:
            train(config_from_args(args))
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")  # one line, no usage dump
    return 0


if __name__ == "__main__":
    sys.exit(main())
