"""Learning-curve plots of training runs (from ``training.csv`` and ``evaluations.csv``)::

    python -m serflow_eval.learning_curves runs/ppo runs/sac --out docs/img/rl_learning_curves.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def plot_learning_curves(runs: Sequence[str | Path], out: str | Path,
                         labels: Sequence[str] | None = None) -> Path:
    """Three panels: training episode return; validation cost and violation rate of each
    agent, with the heuristic's as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels) if labels else [Path(r).name for r in runs]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    heuristic_drawn = False
    for run, label in zip(runs, labels):
        run = Path(run)
        train_csv, eval_csv = run / "training.csv", run / "evaluations.csv"
        if not train_csv.is_file():
            raise FileNotFoundError(f"{train_csv}: not a training run folder")
        tr = pd.read_csv(train_csv).dropna(subset=["episode_return"])
        axes[0].plot(tr["timesteps"], tr["episode_return"], label=label)
        if eval_csv.is_file():
            ev = pd.read_csv(eval_csv)
            line = axes[1].plot(ev["timesteps"], ev["agent_cost_per_1k"], marker=".",
                                label=label)[0]
            axes[2].plot(ev["timesteps"], 100 * ev["agent_violation_rate"], marker=".",
                         color=line.get_color(), label=label)
            if not heuristic_drawn and ev["heuristic_cost_per_1k"].notna().any():
                kw = {"color": "k", "linestyle": "--", "label": "serflow heuristic"}
                axes[1].axhline(ev["heuristic_cost_per_1k"].iloc[0], **kw)
                axes[2].axhline(100 * ev["heuristic_violation_rate"].iloc[0], **kw)
                heuristic_drawn = True
    axes[0].set_title("training episode return")
    axes[1].set_title("validation: $ per 1k requests")
    axes[2].set_title("validation: SLO violations (%)")
    for ax in axes:
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (runs/NAME)")
    parser.add_argument("--labels", nargs="*", default=None)
    parser.add_argument("--out", required=True, help="PNG file")
    args = parser.parse_args(argv)
    print(plot_learning_curves(args.runs, args.out, args.labels))


if __name__ == "__main__":
    main()
