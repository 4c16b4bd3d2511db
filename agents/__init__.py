"""Policies for the SERFLOW environment: the paper's heuristic, its peers and RL agents.

Importing the package registers the built-in policies with :func:`make_policy`.
"""

from agents.heuristics import fixed, libra, serflow, simple  # noqa: F401  (register)
from agents.oracle import policy as oracle_policy  # noqa: F401  (registers oracle:)
from agents.policy import Policy, known_policies, make_policy, register_policy
from agents.rl import policy as rl_policy  # noqa: F401  (registers ppo:, sac:, recurrentppo:, load-map)
from agents.rl import suite_policy  # noqa: F401  (registers ppo-suite:, sac-suite:)

__all__ = ["Policy", "known_policies", "make_policy", "register_policy"]
