"""Sweep exit skew and traffic level: where does the stage-aware policy save most?

Exit skew is one knob, the internal exit probability ``p`` given to every stage but the last
(reach of stage k = (1 - p)^(k - 1)): ``p = 0`` makes every request run every stage (the
"uniform runtime" LIBRA assumes), larger ``p`` leaves the deep stages sparser. The scenario's
exit schedule is cleared; its random exit drift is kept. Traffic level multiplies
``arrivals.scale``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from serflow_env.scenario import Scenario
from serflow_eval.metrics import episode_summary, paired_comparisons
from serflow_eval.runner import run_policies

#: the paper's claim, "over 23 % cheaper" than each baseline, as a cost ratio
PAPER_CLAIM_RATIO = 0.77


def skewed(scenario: Scenario, exit_probability: float, scale: float) -> Scenario:
    """``scenario`` with every internal exit probability ``p`` and traffic times ``scale``."""
    if not 0.0 <= exit_probability <= 1.0:
        raise ValueError(f"exit probability {exit_probability!r}: allowed [0, 1]")
    if not 0.0 < scale * scenario.arrivals.scale <= 1000.0:
        raise ValueError(f"traffic scale {scale!r}: arrivals.scale times it must lie in "
                         "(0, 1000]")
    overrides: dict[str, Any] = {f"stages.{j}.exit_probability": float(exit_probability)
                                 for j in range(scenario.num_stages - 1)}
    overrides["exit_drift.schedule"] = []
    overrides["arrivals.scale"] = scenario.arrivals.scale * scale
    return scenario.with_overrides(**overrides)


def run_sweep(scenario: Scenario, specs: Sequence[str], seeds: Sequence[int], steps: int,
              exit_probabilities: Sequence[float], scales: Sequence[float], *,
              simulator: str = "fast", options: Mapping[str, Any] | None = None,
              on_step: Callable[[], None] | None = None,
              runner: Callable[..., pd.DataFrame] = run_policies
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-seed summaries and paired comparisons (first policy vs the others) for every
    (exit probability, scale) pair, with those two as leading columns. ``runner`` plays each
    pair's units (:func:`~serflow_eval.runner.run_policies` or its Ray twin)."""
    per_seed, compared = [], []
    for p in exit_probabilities:
        for scale in scales:
            variant = skewed(scenario, p, scale)
            ts = runner(specs, variant, seeds, steps, simulator=simulator,
                              options=options, on_step=on_step)
            summary = episode_summary(ts)
            comparison = paired_comparisons(summary, specs[0], PAPER_CLAIM_RATIO)
            for frame, out in ((summary, per_seed), (comparison, compared)):
                frame.insert(0, "scale", scale)
                frame.insert(0, "exit_probability", p)
                out.append(frame)
    return pd.concat(per_seed, ignore_index=True), pd.concat(compared, ignore_index=True)
