"""Evaluation of serving policies on the SERFLOW environment (used by ``evaluate.py``).

``runner`` plays policies on common random numbers, ``metrics`` summarises episodes with
confidence intervals, ``plots`` draws the figures, ``sweep`` varies exit skew and traffic,
``table`` prints results and ``simulators`` picks the fast model or the reference simulator.
"""
