"""Parameters of a heuristic given in its policy spec: ``serflow:utilisation=0.6:burst_z=2``.

So one evaluation can compare parameter settings side by side (each spec is its own label).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.policy import Policy
from serflow_env.scenario import Scenario


def parse_spec_args(name: str, arg: str, allowed: dict[str, type]) -> dict[str, Any]:
    """``"k=v:k=v"`` into typed keyword arguments; unknown keys and bad values raise."""
    kwargs: dict[str, Any] = {}
    for item in filter(None, arg.split(":")):
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise ValueError(f"policy {name!r}: bad parameter {item!r}; expected KEY=VALUE "
                             f"with KEY in {sorted(allowed)}")
        try:
            kwargs[key] = allowed[key](value)
        except ValueError as exc:
            raise ValueError(f"policy {name!r}: {key}={value!r} is not a valid "
                             f"{allowed[key].__name__}") from exc
    return kwargs


def factory(cls: type[Policy], name: str,
            allowed: dict[str, type]) -> Callable[..., Policy]:
    """A registry factory building ``cls`` from the spec's parameters and keyword overrides."""
    def build(scenario: Scenario, arg: str, **kwargs: Any) -> Policy:
        return cls(scenario, **{**parse_spec_args(name, arg, allowed), **kwargs})
    return build
