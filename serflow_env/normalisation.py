"""The reference rate that scales rate-like observation features and the reward.

The env divides request rates (and the warm-container count) in the observation by a
*reference rate* (``reward.reference_rate``, or the trace's mean rate when that is unset) and
normalises the reward by it. Agents that act in absolute request rates, or that carry a trained
model from one trace to another, need this number and the features it scales; both are given
here so that nothing outside the env rebuilds its parameters.
"""

from __future__ import annotations

import numpy as np

from serflow_env.observation import column, observation_size
from serflow_env.params import make_params
from serflow_env.scenario import Scenario


def reward_reference_rate(scenario: Scenario) -> float:
    """Requests/s the observation's rate features and the reward are normalised by."""
    return float(make_params(scenario).reference_rate)


def reward_scales(scenario: Scenario) -> tuple[float, float]:
    """(cost_scale, request_scale) of the reward ``-(w_cost * cost / cost_scale + w_slo *
    violations / request_scale)``: what a reward that reweights its two parts divides by."""
    params = make_params(scenario)
    return float(params.cost_scale), float(params.request_scale)


def reference_rate_factors(scenario: Scenario, reference_rate: float) -> np.ndarray | None:
    """Per-feature factors (D,) that put ``scenario``'s observation on ``reference_rate``.

    Multiplying an observation of ``scenario`` by them gives the observation the env would
    produce if its reference rate were ``reference_rate``: rates scale by the ratio of the two
    rates and the warm-container feature (divided by ``rate * E[S_faas] + 1``) by the ratio of
    its divisors. None when the two reference rates agree.
    """
    params = make_params(scenario)
    ref = float(params.reference_rate)
    if not reference_rate > 0:
        raise ValueError(f"reference_rate={reference_rate!r}; allowed > 0")
    if np.isclose(ref, reference_rate, rtol=1e-9):
        return None
    k = params.num_stages
    ratio = ref / reference_rate
    factor = np.ones(observation_size(k))
    for name in ("rate", "rate_std"):
        factor[column(name)] = ratio
    factor[column("stage_rate", num_stages=k)] = ratio
    fm = params.faas_mean_s
    factor[column("warm", num_stages=k)] = (ref * fm + 1.0) / (reference_rate * fm + 1.0)
    return factor
