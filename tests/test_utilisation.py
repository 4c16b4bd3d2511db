"""Observed VM utilisation saturates at 1 under overload instead of dropping to 0."""

from __future__ import annotations

import numpy as np
import pytest

from serflow_env import SerflowVectorEnv


@pytest.mark.parametrize("mode, route", [("share", -1.0), ("cap", 1.0)])
def test_utilisation_is_one_when_a_stage_is_overloaded_all_interval(mode, route):
    """One VM per stage at 4x the default traffic, all of it to the VMs (function share 0, or
    the largest cap, twice the capacity): the queue grows, the VMs never idle."""
    env = SerflowVectorEnv(1, overrides={"stages.0.initial_vms": 1, "stages.1.initial_vms": 1,
                                         "stages.2.initial_vms": 1, "arrivals.scale": 4.0,
                                         "routing.mode": mode})
    env.reset(seed=0)
    a = np.r_[np.full(3, 1 / 20 * 2 - 1), np.full(3, route)][None].astype(np.float32)
    for _ in range(3):
        info = env.step(a)[4]
    assert info["stage_queue"][0, 0] > 100
    assert info["stage_utilisation"][0, 0] == 1.0
