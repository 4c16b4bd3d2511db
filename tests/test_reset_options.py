"""``reset(options={"start_s": X})`` starts an episode at trace second X in both simulators.

Independent check: a trace that is empty before second X and then constant replays, from X,
exactly the trace that is constant from second 0. So the episode started with the option must
equal the episode of the shifted trace (same seed, same actions), in the fast model and in the
per-request reference alike; before the fix the function prewarm was sized from second 0 of the
old start and the first interval cold-started hundreds of containers.
"""

from __future__ import annotations

import numpy as np
import pytest

from serflow_env import ReferenceVectorEnv, SerflowVectorEnv
from serflow_env.traces import Trace

START = 1000
RATE = 200.0
KEYS = ("requests_arrived", "requests_completed", "slo_violations", "faas_cold_starts",
        "cost_usd", "latency_p95_s", "vms_running")


def _trace(leading_zeros: int) -> Trace:
    values = np.r_[np.zeros(leading_zeros), np.full(900, RATE)]
    return Trace(values, 1.0, "exact", f"step-{leading_zeros}")


def _run(cls, leading_zeros: int, options: dict | None, steps: int = 6) -> list[dict]:
    env = cls(2, scenario="default", overrides={"arrivals.trace": _trace(leading_zeros)},
              episode_steps=50)
    env.reset(seed=3, options=options)
    action = np.zeros((2, 6), np.float32)  # half the VMs (booting) and half on functions
    rows = []
    for _ in range(steps):
        info = env.step(action)[4]
        rows.append({key: np.asarray(info[key]).copy() for key in KEYS})
    return rows


@pytest.mark.parametrize("cls", [SerflowVectorEnv, ReferenceVectorEnv])
def test_start_option_equals_the_shifted_trace(cls):
    shifted = _run(cls, START, {"start_s": START})
    plain = _run(cls, 0, None)
    assert shifted[0]["requests_arrived"].min() > 0.9 * RATE * 10
    for t, (a, b) in enumerate(zip(shifted, plain)):
        for key in KEYS:  # request times are offset by X: floats agree to rounding
            np.testing.assert_allclose(a[key], b[key], rtol=1e-9, err_msg=f"step {t}: {key}")


@pytest.mark.parametrize("cls", [SerflowVectorEnv, ReferenceVectorEnv])
def test_start_option_prewarms_for_the_traffic_it_starts_in(cls):
    """Half the traffic on functions from the first second: the prewarmed pool (sized for the
    first second at X) hardly cold-starts; sized from second 0 it cold-started ~680 times."""
    first = _run(cls, START, {"start_s": START}, steps=1)[0]
    assert first["faas_cold_starts"].max() < 0.02 * first["requests_arrived"].min()


def test_options_fix_every_env_and_later_autoresets_draw_their_own():
    env = SerflowVectorEnv(3, scenario="default", episode_steps=2,
                           overrides={"arrivals.random_start": True})
    env.reset(seed=1, options={"start_s": 123.0})
    np.testing.assert_array_equal(env.engine.state.trace_start_s, 123.0)
    a = np.zeros((3, 6), np.float32)
    env.step(a)
    env.step(a)  # truncation: autoreset draws random starts again
    assert not np.all(env.engine.state.trace_start_s == 123.0)


@pytest.mark.parametrize("cls", [SerflowVectorEnv, ReferenceVectorEnv])
@pytest.mark.parametrize("options, match", [
    ({"start_s": -1.0}, r"start_s=-1.0; allowed \[0, inf\)"),
    ({"start_s": float("nan")}, "start_s=nan"),
    ({"start_s": True}, "start_s=True"),
    ({"trace_index": 1}, r"trace_index=1; allowed 0...0"),
    ({"trace_index": 0.5}, "trace_index=0.5"),
    ({"speed": 2}, r"unknown \['speed'\]"),
])
def test_bad_options_name_the_field_and_range(cls, options, match):
    env = cls(1, scenario="default")
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options=options)
