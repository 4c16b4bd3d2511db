"""The perfect-foresight optimum (``oracle``): the cheapest plan that knows the trace, per stage,
by an exact dynamic programme over VM counts (:mod:`~agents.oracle.dp`) with an LP lower bound
(:mod:`~agents.oracle.bound`), replayed as a policy (:mod:`~agents.oracle.policy`).
FUTURE-KNOWING: a bound for comparison, not a deployable controller."""
