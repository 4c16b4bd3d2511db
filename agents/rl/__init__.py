"""Reinforcement-learning agents: the action maps the agent acts through, the rl-zoo3 style
configuration, trained SB3 models as policies, the Lagrangian SLO multiplier (constrained PPO) and
training callbacks that need no evaluation."""
