"""The one episode loop: same intervals as stepping the env by hand, on both simulators."""

from __future__ import annotations

import numpy as np
import pytest

from agents import make_policy
from serflow_env.scenario import load_scenario
from serflow_eval.rollout import rollout
from serflow_eval.simulators import make_vector_env


@pytest.mark.parametrize("simulator", ["fast", "reference"])
def test_rollout_matches_a_hand_written_loop(simulator: str) -> None:
    scenario = load_scenario("default", episode_steps=12)
    options = {"start_s": 300.0}
    by_hand = make_vector_env(simulator, scenario, 2)
    obs, _ = by_hand.reset(seed=3, options=options)
    policy = make_policy("switch:4:0,1:3,0.2", scenario)
    policy.reset(2)
    expected = []
    info = None
    for _ in range(6):
        obs, reward, _, _, info = by_hand.step(policy.act(obs, info))
        expected.append((reward.copy(), info["cost_usd"].copy(), info["vms_booting"].copy()))
    steps = list(rollout(make_policy("switch:4:0,1:3,0.2", scenario),
                         make_vector_env(simulator, scenario, 2), 6, seed=3, options=options))
    assert [s.step for s in steps] == list(range(6))
    for s, (reward, cost, booting) in zip(steps, expected):
        np.testing.assert_array_equal(s.reward, reward)
        np.testing.assert_array_equal(s.info["cost_usd"], cost)
        np.testing.assert_array_equal(s.info["vms_booting"], booting)
    assert expected[-1][2].sum() > 0  # the switch launched VMs: the policy's actions arrived


def test_rollout_rejects_no_steps() -> None:
    scenario = load_scenario("default")
    with pytest.raises(ValueError, match="steps=0"):
        next(rollout(make_policy("serflow", scenario), make_vector_env("fast", scenario, 1), 0,
                     seed=0))
