"""Shared builders for small, explicit test scenarios."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# One torch (OpenMP) thread, here and in the train.py / rl-zoo3 subprocesses, set before torch
# is imported: the tests' networks are tiny, and on a small shared machine two spinning
# intra-op threads per process made training tests 3-4x slower (rl-zoo3 test: 67 s -> 15 s)
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_TRACES = ROOT.parent / "shared" / "traces"


def stage(name: str = "s", exit_probability: float = 1.0, vm_mean: float = 0.05,
          vm_dist: str = "lognormal", faas_mean: float = 0.08, faas_dist: str = "lognormal",
          **extra: Any) -> dict[str, Any]:
    """A stage mapping; the function mean is set through fixed_s (no memory dependence)."""
    spec = {
        "name": name,
        "exit_probability": exit_probability,
        "vm_service": {"distribution": vm_dist, "mean_s": vm_mean, "cv": 0.5},
        "faas_service": {"distribution": faas_dist, "fixed_s": faas_mean, "scalable_s": 0.0,
                         "cv": 0.5},
    }
    spec.update(extra)
    return spec


def scenario(stages: list[dict[str, Any]], trace: Any, **extra: Any) -> dict[str, Any]:
    """A scenario mapping over the given stages and trace, without exit drift, in share mode
    (the tests' raw routing actions are function shares; ``routing=...`` changes it)."""
    spec: dict[str, Any] = {
        "name": "test",
        "stages": stages,
        "arrivals": {"trace": trace},
        "episode_steps": 50,
        "exit_drift": {"volatility": 0.0},
        "routing": {"mode": "share"},
    }
    spec.update(extra)
    return spec


def constant(rate: float, duration_s: int = 7200) -> dict[str, Any]:
    return {"generator": "constant", "duration_s": duration_s, "rate": rate}


SHARE_MODE = {"routing.mode": "share"}  # overrides for a preset whose actions are shares


def actions(num_stages: int, vms: float, share: float, num_envs: int | None = None) -> np.ndarray:
    """The same action for every stage: raw VM action value and raw share action value."""
    a = np.r_[np.full(num_stages, vms), np.full(num_stages, share)].astype(np.float32)
    return a if num_envs is None else np.tile(a, (num_envs, 1))


@pytest.fixture
def default_scenario():
    from serflow_env.scenario import load_scenario

    return load_scenario("default")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole test session (2 CPUs, no dashboard), shut down at the end
    so no Ray process outlives the tests; tests needing it skip where Ray is not installed."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
