"""Bad input gets a clear error naming the field and the allowed range."""

from __future__ import annotations

import numpy as np
import pytest

from serflow_env import SerflowEnv, SerflowVectorEnv
from serflow_env.scenario import ScenarioError, load_scenario
from tests.conftest import scenario, stage


def test_unknown_scenario_lists_presets():
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'.*default"):
        SerflowEnv("nope")


def test_missing_scenario_file():
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_scenario("missing.yaml")


def test_missing_trace_file_names_it():
    with pytest.raises(FileNotFoundError, match="no_such_trace.txt"):
        SerflowEnv(overrides={"arrivals.trace": "no_such_trace.txt"})


def test_malformed_trace_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("10\n12\nabc\n14\n")
    with pytest.raises(ValueError, match=r"bad.txt:3"):
        SerflowEnv(overrides={"arrivals.trace": str(path)})


def test_negative_count_and_negative_rate_rejected(tmp_path):
    path = tmp_path / "neg.txt"
    path.write_text("10\n-3\n")
    with pytest.raises(ValueError, match=r"neg.txt:2"):
        SerflowEnv(overrides={"arrivals.trace": str(path)})
    with pytest.raises(ValueError, match="rate"):
        SerflowEnv(overrides={"arrivals.trace": {"generator": "constant", "duration_s": 60,
                                                 "rate": -5.0}})


@pytest.mark.parametrize("field, value, message", [
    ("tick_s", 2.0, r"tick_s=2.0 is out of range; allowed \(0.0, 1.0\]"),
    ("tick_s", 0.3, "1/n of a second"),
    ("control_interval_s", 7.5, "multiple of tick_s"),
    ("slo_deadline_s", -1.0, "slo_deadline_s=-1.0 is out of range"),
    ("faas.concurrency_limit", 0, r"faas.concurrency_limit=0 is out of range; allowed \[1"),
    ("stages.0.exit_probability", 1.5, r"stages\[0\].exit_probability=1.5 is out of range"),
    ("stages.2.exit_probability", 0.5, "last stage must be 1.0"),
    ("stages.0.instance_type", "m9.huge", "instance_type='m9.huge'; allowed"),
    ("stages.0.vm_service.distribution", "weibull", "distribution='weibull'"),
    ("arrivals.scale", 0.0, r"arrivals.scale=0.0 is out of range"),
    ("latency_model", "magic", "latency_model='magic'"),
])
def test_scenario_errors_name_field_value_and_range(field, value, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario("default", **{field: value})


def test_unknown_field_is_named():
    spec = scenario([stage("a", exit_probability=0.5), stage("b")], "traces/sine_1h.txt")
    spec["stages"][0]["max_vm"] = 3
    with pytest.raises(ScenarioError, match=r"stages\[0\]: unknown field\(s\) \['max_vm'\]"):
        load_scenario(spec)
    with pytest.raises(ScenarioError, match="override 'faas.keepalive'"):
        load_scenario("default", **{"faas.keepalive": 3})


def test_stage_count_range():
    with pytest.raises(ScenarioError, match="2..12 stages"):
        load_scenario(scenario([stage("only")], "traces/sine_1h.txt"))


def test_nan_action_wrong_shape_and_out_of_range():
    env = SerflowEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="non-finite value nan at index"):
        env.step(np.array([0, 0, np.nan, 0, 0, 0], np.float32))
    with pytest.raises(ValueError, match=r"expected shape \(6,\).*got shape \(5,\)"):
        env.step(np.zeros(5, np.float32))
    strict = SerflowEnv(action_out_of_range="error")
    strict.reset(seed=0)
    with pytest.raises(ValueError, match=r"value 1.5 at index \[1\] is outside the allowed range"):
        strict.step(np.array([0, 1.5, 0, 0, 0, 0], np.float32))
    with pytest.raises(ValueError, match="action_out_of_range"):
        SerflowEnv(action_out_of_range="ignore")


def test_out_of_range_actions_are_clipped_by_default():
    a, b = SerflowEnv(), SerflowEnv()
    a.reset(seed=1)
    b.reset(seed=1)
    oa = a.step(np.array([3.0, -7.0, 0.2, 9.0, -2.0, 0.0], np.float32))
    ob = b.step(np.array([1.0, -1.0, 0.2, 1.0, -1.0, 0.0], np.float32))
    np.testing.assert_array_equal(oa[0], ob[0])


def test_vector_env_action_shape_and_seed_errors():
    venv = SerflowVectorEnv(3)
    with pytest.raises(ValueError, match="seed"):
        venv.reset(seed=-1)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(3, 6\)"):
        venv.step(np.zeros((2, 6), np.float32))
    with pytest.raises(ValueError, match="num_envs"):
        SerflowVectorEnv(0)
    with pytest.raises(ValueError, match="start_s"):
        venv.reset(options={"start_s": -3})
    with pytest.raises(ValueError, match="unknown"):
        venv.reset(options={"begin": 3})
