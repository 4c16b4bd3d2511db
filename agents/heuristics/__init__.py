"""Hand-written policies: the paper's SERFLOW heuristic, LIBRA, single-service baselines and
fixed actions, with the offline profile (``profiling``) and the monitored signals (``monitor``)
they share."""
