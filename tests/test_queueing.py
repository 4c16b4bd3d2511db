"""M/M/c against Erlang-C (textbook formula written here, independently of serflow_env)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serflow_env import SerflowVectorEnv
from serflow_env.queueing import erlang_c
from tests.conftest import actions, constant, scenario, stage


def textbook_erlang_c(c: int, a: float) -> float:
    """P(wait > 0) in M/M/c from the explicit sum (Kleinrock, Queueing Systems I)."""
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    return top / (sum(a**n / math.factorial(n) for n in range(c)) + top)


@pytest.mark.parametrize("c", [1, 4, 16, 60])
@pytest.mark.parametrize("rho", [0.3, 0.5, 0.8, 0.95, 0.99])
def test_erlang_c_function_matches_textbook(c, rho):
    assert erlang_c(np.array([c]), np.array([rho * c]))[0] == pytest.approx(
        textbook_erlang_c(c, rho * c), rel=1e-9)


def mmc_scenario(c: int, rho: float, mean_s: float = 1.0) -> dict:
    one = stage("mmc", exit_probability=1.0, vm_mean=mean_s, vm_dist="exponential",
                slots_per_vm=1, max_vms=c, initial_vms=c)
    unused = stage("unused", exit_probability=1.0, max_vms=1)
    return scenario([one, unused], constant(rho * c / mean_s), episode_steps=400)


@pytest.mark.parametrize("c", [1, 4, 16])
@pytest.mark.parametrize("rho", [0.5, 0.8, 0.95])
def test_vm_pool_waiting_agrees_with_erlang_c(c, rho):
    """One stage, VMs only, fixed c, Poisson arrivals, exponential service (mean 1 s)."""
    venv = SerflowVectorEnv(8, scenario=mmc_scenario(c, rho))
    venv.reset(seed=0)
    a = actions(2, vms=1.0, share=-1.0, num_envs=8)  # all VMs kept, nothing to functions
    p_wait, mean_wait, served = [], [], []
    for step in range(60):
        _, _, _, _, info = venv.step(a)
        if step >= 10:  # warm-up
            served.append(info["stage_requests"][:, 0])
            p_wait.append(info["stage_wait_probability"][:, 0])
            mean_wait.append(info["stage_wait_mean_s"][:, 0])
    w = np.array(served, dtype=float)
    p_sim = np.sum(np.array(p_wait) * w) / w.sum()
    wq_sim = np.sum(np.array(mean_wait) * w) / w.sum()
    a_load = rho * c
    p_theory = textbook_erlang_c(c, a_load)
    wq_theory = p_theory / (c * 1.0 - a_load)  # mean service 1 s
    assert abs(p_sim - p_theory) <= max(0.05 * p_theory, 0.02)
    assert abs(wq_sim - wq_theory) <= max(0.05 * wq_theory, 0.02)
    assert np.all(venv.engine.state.backlog == 0)  # stable queue: no overload backlog
