"""``KEY=VALUE`` assignments from command lines and specs, parsed one way everywhere.

Used for scenario overrides (``--set faas.keep_alive_s=60``), the settings of a policy spec
(``serflow:utilisation=0.6``) or of an action map, and rl-zoo3 style hyperparameters
(``--hyperparams learning_rate:3e-4``, separator ``:``). Values are YAML (``30`` is an int,
``0.5`` a float, ``true`` a bool, ``[1, 2]`` a list, ``{a: 1}`` a mapping); a string that reads
as a number becomes a float, since YAML 1.1 reads ``3e-4`` (no dot) as a string.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import yaml


def parse_value(text: str) -> Any:
    """One value: YAML, with number-like strings as floats; an empty value is None."""
    if not text.strip():
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text  # e.g. a path with a colon: kept as the string it is
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def parse_assignments(items: Iterable[str], flag: str, sep: str = "=") -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` into ``{"a.b": 1, "c": "x"}``; ``flag`` names the source in errors.

    A later assignment of the same key wins, as on a command line.
    """
    result: dict[str, Any] = {}
    for item in items:
        key, found, value = str(item).partition(sep)
        if not found or not key.strip():
            raise ValueError(f"{flag}: expected KEY{sep}VALUE, got {item!r}")
        result[key.strip()] = parse_value(value)
    return result
