"""Exact per-request reference simulator of the SERFLOW scenarios (slow; for fidelity checks).

``ReferenceVectorEnv`` has the fast vector env's interface (spaces, observation, info keys,
reward, reset options, autoreset), so any policy can be evaluated on it unchanged;
``RequestSimulator`` is one environment's event loop. See ``docs/FIDELITY.md``.
"""

from serflow_env.reference.env import ReferenceVectorEnv
from serflow_env.reference.simulator import RequestSimulator

__all__ = ["ReferenceVectorEnv", "RequestSimulator"]
