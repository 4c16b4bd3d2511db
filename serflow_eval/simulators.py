"""Which simulator evaluates a policy: the fast vectorized model or the per-request reference."""

from __future__ import annotations

import importlib
from typing import Any

from serflow_env import SerflowVectorEnv
from serflow_env.scenario import Scenario

SIMULATORS = ("fast", "reference")
REFERENCE_MODULE = "serflow_env.reference"
REFERENCE_CLASS = "ReferenceVectorEnv"


class SimulatorUnavailable(RuntimeError):
    """The requested simulator cannot be used in this checkout."""


def make_vector_env(simulator: str, scenario: Scenario, num_envs: int = 1) -> Any:
    """A vector env (``reset(seed=, options=)``, ``step(actions)`` with info arrays).

    ``fast`` is :class:`serflow_env.SerflowVectorEnv`. ``reference`` expects
    ``serflow_env.reference.ReferenceVectorEnv(num_envs, scenario=...)`` with the same
    interface; it errors clearly while that simulator does not exist yet.
    """
    if simulator == "fast":
        return SerflowVectorEnv(num_envs, scenario=scenario)
    if simulator != "reference":
        raise ValueError(f"--simulator={simulator!r}; allowed {list(SIMULATORS)}")
    try:
        module = importlib.import_module(REFERENCE_MODULE)
    except ImportError as exc:
        raise SimulatorUnavailable(
            f"--simulator reference: the per-request reference simulator ({REFERENCE_MODULE}) "
            f"is not available yet ({exc}); use --simulator fast") from exc
    cls = getattr(module, REFERENCE_CLASS, None)
    if cls is None:
        raise SimulatorUnavailable(
            f"--simulator reference: {REFERENCE_MODULE} has no {REFERENCE_CLASS} (a vector-env "
            "class with reset(seed=, options=) and step(actions) like SerflowVectorEnv); "
            "it is not available yet, use --simulator fast")
    return cls(num_envs, scenario=scenario)
