"""Short labels for policy specs in tables and plots: a trained agent's model path makes its
spec long (``ppo:runs/quickstart/best_model.zip``), so it is shown by its algorithm (or, if
several agents of one algorithm are compared, with its run folder) and the tables list the
full specs once. Policies that read the trace ahead (the ``oracle``) are starred
(``oracle*:u=0.85``) wherever they appear, with :data:`FUTURE_NOTE` under the tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

#: policy prefixes that know the future trace (bounds, not deployable controllers)
FUTURE_KNOWING = ("oracle",)
FUTURE_NOTE = "* knows the trace ahead (perfect foresight): a bound, not a deployable controller"


def future_label(spec: str) -> str | None:
    """``oracle:u=0.85`` -> ``oracle*:u=0.85`` for a future-knowing policy, else None."""
    prefix, sep, arg = spec.partition(":")
    return f"{prefix}*{sep}{arg}" if prefix in FUTURE_KNOWING else None


def _is_model_spec(spec: str) -> bool:
    _, sep, arg = spec.partition(":")
    return bool(sep) and (arg.endswith(".zip") or "/" in arg)


def policy_labels(specs: Sequence[str]) -> dict[str, str]:
    """spec -> label: ``ppo`` for a lone ``ppo:PATH``, ``ppo:FOLDER/FILE`` when several
    share the algorithm (the full spec if even that repeats); future-knowing policies starred
    (:func:`future_label`); other specs unchanged."""
    labels: dict[str, str] = {}
    models = [s for s in specs if _is_model_spec(s)]
    for spec in specs:
        if spec not in models:
            labels[spec] = future_label(spec) or spec
            continue
        algo, _, arg = spec.partition(":")
        if sum(m.partition(":")[0] == algo for m in models) == 1:
            labels[spec] = algo
        else:
            path = PurePath(arg)
            labels[spec] = f"{algo}:{path.parent.name}/{path.name}" if path.parent.name \
                else spec
    if len(set(labels.values())) < len(labels):  # two folders of one name: keep the specs
        return {spec: future_label(spec) or spec for spec in specs}
    return labels
