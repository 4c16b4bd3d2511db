"""Parameters of a heuristic given in its policy spec: ``serflow:utilisation=0.6:burst_z=2``.

So one evaluation can compare parameter settings side by side (each spec is its own label).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.policy import Policy
from serflow_env.assignments import parse_assignments
from serflow_env.scenario import Scenario


def parse_spec_args(name: str, arg: str, allowed: dict[str, type]) -> dict[str, Any]:
    """``"k=v:k=v"`` into typed keyword arguments; unknown keys and bad values raise."""
    settings = parse_assignments(filter(None, arg.split(":")), f"policy {name!r}")
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"policy {name!r}: unknown parameter(s) {unknown}; allowed "
                         f"{sorted(allowed)}")
    kwargs: dict[str, Any] = {}
    for key, value in settings.items():
        kind = allowed[key]
        try:
            if isinstance(value, bool) or (kind is int and float(value) != int(value)):
                raise ValueError(value)
            kwargs[key] = kind(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"policy {name!r}: {key}={value!r} is not a valid "
                             f"{allowed[key].__name__}") from exc
    return kwargs


def factory(cls: type[Policy], name: str,
            allowed: dict[str, type]) -> Callable[..., Policy]:
    """A registry factory building ``cls`` from the spec's parameters and keyword overrides."""
    def build(scenario: Scenario, arg: str, **kwargs: Any) -> Policy:
        return cls(scenario, **{**parse_spec_args(name, arg, allowed), **kwargs})
    return build
