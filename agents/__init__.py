"""Policies for the SERFLOW environment: the paper's heuristic, its peers and RL agents."""

from agents import fixed, libra, rl_policy, serflow_policy, simple  # noqa: F401  (register)
from agents.policy import Policy, known_policies, make_policy, register_policy

__all__ = ["Policy", "known_policies", "make_policy", "register_policy"]
