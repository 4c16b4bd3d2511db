"""Evaluation of serving policies on the SERFLOW environment (used by the CLIs).

``runner`` plays policies on common random numbers, ``metrics`` summarises episodes with
confidence intervals, ``plots`` draws the figures, ``sweep`` varies exit skew and traffic,
``table`` prints results and ``simulators`` picks the fast model or the reference simulator.
``fidelity`` compares the two simulators; ``scoring``, ``training``, ``callbacks``,
``analysis`` and ``learning_curves`` evaluate, train and analyse the RL agents.
"""
