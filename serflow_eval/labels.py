"""Short labels for policy specs in tables and plots: a trained agent's model path makes its
spec long (``ppo:runs/quickstart/best_model.zip``), so it is shown by its algorithm (or, if
several agents of one algorithm are compared, with its run folder) and the tables list the
full specs once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath


def _is_model_spec(spec: str) -> bool:
    _, sep, arg = spec.partition(":")
    return bool(sep) and (arg.endswith(".zip") or "/" in arg)


def policy_labels(specs: Sequence[str]) -> dict[str, str]:
    """spec -> label: ``ppo`` for a lone ``ppo:PATH``, ``ppo:FOLDER/FILE`` when several
    share the algorithm (the full spec if even that repeats); other specs unchanged."""
    labels: dict[str, str] = {}
    models = [s for s in specs if _is_model_spec(s)]
    for spec in specs:
        if spec not in models:
            labels[spec] = spec
            continue
        algo, _, arg = spec.partition(":")
        if sum(m.partition(":")[0] == algo for m in models) == 1:
            labels[spec] = algo
        else:
            path = PurePath(arg)
            labels[spec] = f"{algo}:{path.parent.name}/{path.name}" if path.parent.name \
                else spec
    if len(set(labels.values())) < len(labels):  # two folders of one name: keep the specs
        return {spec: spec for spec in specs}
    return labels
