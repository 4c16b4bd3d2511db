"""The environment installs and runs with its core dependencies alone, shipped data included."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

#: what `pip install serflow` (no extras) must not need
EXTRAS_ONLY = ("torch", "stable_baselines3", "pandas", "matplotlib", "rich", "tqdm", "simpy",
               "tensorboard", "rl_zoo3", "ray")


def test_env_runs_without_the_extras_modules() -> None:
    """Import, make, reset and step (on a shipped trace) load none of the extras' packages."""
    code = (
        "import sys, gymnasium as gym, serflow_env\n"
        "env = gym.make(serflow_env.ENV_ID, overrides={'arrivals.trace': 'traces/sine_1h.txt'})\n"
        "env.reset(seed=0)\n"
        "obs, reward, *_ = env.step(env.action_space.sample())\n"
        "venv = serflow_env.SerflowVectorEnv(4)\n"
        "venv.reset(seed=0)\n"
        "venv.step(venv.action_space.sample())\n"
        f"print(sorted(m for m in {EXTRAS_ONLY!r} if m in sys.modules), reward < 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert out.stdout.strip() == "[] True", out.stdout + out.stderr


def test_core_dependencies_are_the_env_s_own() -> None:
    """pyproject's core list is numpy, scipy, gymnasium and pyyaml; the extras name the rest."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {dep.split(">")[0].split("<")[0].split("=")[0] for dep in project["dependencies"]}
    assert core == {"numpy", "scipy", "gymnasium", "pyyaml"}
    extras = project["optional-dependencies"]
    assert {"rl", "eval", "ray", "dev"} <= set(extras)
    assert any(dep.startswith("serflow[") for dep in extras["dev"])  # dev installs everything
