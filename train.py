"""Train a PPO or SAC agent for the SERFLOW environment (stable-baselines3).

    python train.py --algo ppo --scenario default --trace traces/diurnal_2h.txt \
        --trace /work/shared/traces/wits_logs.txt@0:27000 --timesteps 2000000 --num-envs 16 \
        --seed 0 --eval-trace /work/shared/traces/wits_logs.txt@27000:30600 --out runs/ppo
    python train.py --resume runs/ppo          # continue from the newest checkpoint
    python -m serflow_eval.scoring --trace ... --policies serflow ppo:runs/ppo/best_model.zip

Hyperparameters come from agents/hyperparams/{ppo,sac}.yml (key serflow/Serflow-v1) and can
be overridden: ``--hyperparams learning_rate:3e-4 n_steps:256``. See docs/RESULTS_RL.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agents.rl.actions import action_map_spec
from agents.rl.config import parse_overrides
from serflow_eval.training import TrainConfig, resume, train


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a PPO/SAC agent on the SERFLOW env.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--algo", choices=["ppo", "sac"], help="algorithm (required unless --resume)")
    p.add_argument("--out", help="run folder, e.g. runs/NAME (required unless --resume)")
    p.add_argument("--resume", metavar="RUN", help="continue runs/NAME from its last checkpoint")
    p.add_argument("--scenario", default=None,
                   help="preset or YAML path (default: the yml's env_kwargs.scenario)")
    p.add_argument("--trace", action="append", default=[], metavar="T",
                   help="training trace, PATH or PATH@START:END seconds; repeat for several "
                        "(one drawn per episode)")
    p.add_argument("--trace-scales", type=float, nargs="+", default=[1.0], metavar="X",
                   help="traffic scalings: every trace is also used at each of these loads")
    p.add_argument("--no-random-start", action="store_true",
                   help="start episodes at the trace start (default: random windows)")
    p.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                   help="scenario overrides (dotted keys), e.g. reward.w_slo=30")
    p.add_argument("--timesteps", type=int, default=None, help="total env steps (yml default)")
    p.add_argument("--num-envs", type=int, default=None, help="parallel envs (yml default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--action-map", choices=["load", "raw"], default="load",
                   help="load: VM targets as a provisioning factor of the monitored stage "
                        "load; raw: the env's absolute VM targets (agents/rl/actions.py)")
    p.add_argument("--action-map-args", nargs="*", default=[], metavar="KEY=VALUE",
                   help="settings of the load map, e.g. utilisation=0.8 hold_s=300 smooth=0.2 "
                        "(defaults: agents/rl/actions.py)")
    p.add_argument("--hyperparams", nargs="*", default=[], metavar="KEY:VALUE",
                   help="override yml hyperparameters")
    p.add_argument("--hyperparams-file", default=None, help="another rl-zoo3 style yml")
    p.add_argument("--eval-trace", default=None,
                   help="validation trace PATH[@START:END] (default: first training trace)")
    p.add_argument("--eval-steps", type=int, default=None,
                   help="control steps of the validation episode (default: the whole trace)")
    p.add_argument("--eval-freq", type=int, default=50_000, help="env steps; 0 disables")
    p.add_argument("--eval-episodes", type=int, default=4)
    p.add_argument("--heuristic", default="serflow",
                   help="policy scored beside the agent on the validation trace ('' to skip)")
    p.add_argument("--checkpoint-freq", type=int, default=100_000, help="env steps; 0 disables")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--no-progress-bar", action="store_true")
    p.add_argument("--no-tensorboard", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if not args.algo or not args.out:
        raise ValueError("--algo and --out are required (unless --resume RUN)")
    return TrainConfig(
        algo=args.algo, out=args.out, scenario=args.scenario, traces=list(args.trace),
        trace_scales=list(args.trace_scales), random_start=not args.no_random_start,
        overrides=parse_overrides(args.override, "--override", sep="="),
        timesteps=args.timesteps, num_envs=args.num_envs, seed=args.seed,
        action_map=action_map_spec(args.action_map, parse_overrides(
            args.action_map_args, "--action-map-args", sep="=")),
        hyperparams=parse_overrides(args.hyperparams), hyperparams_file=args.hyperparams_file,
        eval_trace=args.eval_trace, eval_steps=args.eval_steps, eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes, heuristic=args.heuristic or None,
        checkpoint_freq=args.checkpoint_freq, progress_bar=not args.no_progress_bar,
        torch_threads=args.torch_threads, tensorboard=not args.no_tensorboard)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.resume:
            resume(args.resume, timesteps=args.timesteps,
                   progress_bar=False if args.no_progress_bar else None)
        else:
            train(config_from_args(args))
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
