"""Benchmark suite files: validation errors, trace windows on the search path, skipped tasks,
the shipped suite v1 (every task builds a scenario that steps) and the shipped Azure week."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from serflow_env.arrivals import SHIPPED_TRACE_DIR
from serflow_env.suite import (
    SPLITS,
    SuiteError,
    build_tasks,
    load_suite,
    markdown_table,
    suite_from_dict,
    trace_search_path,
)
from serflow_env.traces import load_azure_trace, load_libra_trace, save_azure_trace
from serflow_env.vector_env import SerflowVectorEnv
from tests.conftest import SHARED_TRACES

GEN = {"generator": "constant", "duration_s": 600, "rate": 50.0}


def task(**fields) -> dict:
    base = {"name": "a", "split": "test", "trace": GEN, "episode_steps": 6}
    base.update(fields)
    return base


def suite(*tasks, **fields) -> dict:
    base = {"name": "s", "version": 1, "tasks": list(tasks) or [task()]}
    base.update(fields)
    return base


def write_suite(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("data", "message"), [
    (suite(extra=1), r"suite: unknown field\(s\) \['extra'\]"),
    ({"name": "s", "version": 1}, "suite: missing required field 'tasks'"),
    (suite(version=0), r"version=0 is out of range; allowed \[1, 1000000\]"),
    (suite(name="my suite"), "name='my suite': expected a name of letters"),
    (suite(tasks=[]), "tasks=\\[\\]: expected a non-empty list"),
    (suite(task(split="dev")), "tasks\\[0\\] \\(a\\).split='dev'; allowed train, validation, test"),
    (suite(task(scale=0)), r"tasks\[0\] \(a\).scale=0 is out of range; allowed \(0.0, 1000.0\]"),
    (suite(task(episode_steps=2.5)), r"tasks\[0\] \(a\).episode_steps: expected an integer"),
    (suite(task(colour="red")), r"tasks\[0\] \(a\): unknown field\(s\) \['colour'\]"),
    (suite(task(), task()), r"tasks\[1\] \(a\).name='a': task names must be unique"),
    (suite({"name": "b", "split": "test"}), r"tasks\[0\] \(b\): missing required field 'trace'"),
    (suite(task(trace="wits.txt@a:b")), r"trace='wits.txt@a:b': expected PATH or PATH@START:END"),
    (suite(task(trace="wits.txt@50:20")), "the window's END must exceed its START"),
    (suite(task(trace={**GEN, "rate": -1.0})), r"tasks\[0\] \(a\).trace: rate must be a finite"),
    (suite(task(trace={**GEN, "colour": 1})), "unexpected argument\\(s\\) colour"),
    (suite(task(trace={"file": "x.txt", "start": 3})), r"trace: unknown field\(s\) \['start'\]"),
    (suite(task(trace={"file": "x.txt", "start_s": -5})), r"trace.start_s=-5 is out of range"),
    (suite(task(trace={"file": "x.txt", "repeat": "yes"})), "trace.repeat='yes': expected true"),
    (suite(task(trace=3)), "trace=3: expected a file"),
    (suite(task(exit_drift={"volatility": 9})), r"exit_drift.volatility=9 is out of range"),
    (suite(task(exit_drift={"drift": 1})), r"exit_drift: unknown field\(s\) \['drift'\]"),
    (suite(task(set=["faas.keep_alive_s"])), "expected KEY=VALUE, got 'faas.keep_alive_s'"),
    (suite(task(set="a=1")), r"set='a=1': expected a list of KEY=VALUE strings"),
    (suite(task(set=["arrivals.random_start=true"])), "'arrivals.random_start' cannot be set"),
    (suite(task(set=["arrivals.trace=x.txt"])), "use the task field trace"),
    (suite(task(set=["exit_drift.volatility=1"])), "use the task field exit_drift"),
    (suite(defaults={"split": "test"}), r"defaults: unknown field\(s\) \['split'\]"),
    (suite(defaults={"scale": -2}), r"defaults.scale=-2 is out of range"),
])
def test_bad_suites_name_the_field_value_and_range_on_one_line(tmp_path, data, message):
    path = write_suite(tmp_path, data)
    with pytest.raises(SuiteError, match=message) as info:
        load_suite(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text


def test_unknown_suite_and_bad_yaml(tmp_path):
    with pytest.raises(SuiteError, match=r"unknown suite 'v9'; shipped suites: \['v1'\]"):
        load_suite("v9")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SuiteError, match="not valid YAML") as info:
        load_suite(bad)
    assert "\n" not in str(info.value)


def test_defaults_apply_where_a_task_says_nothing():
    s = suite_from_dict(suite(task(), task(name="b", scale=2.0, exit_drift={"volatility": 0.5},
                                           set=["faas.keep_alive_s=60"], episode_steps=4),
                              defaults={"scale": 3.0, "exit_drift": {"reversion_s": 100.0},
                                        "set": ["slo_deadline_s=2"], "episode_steps": 9}))
    a, b = s.tasks
    assert a.scale == 3.0 and b.scale == 2.0
    assert a.exit_drift == {"reversion_s": 100.0}
    assert b.exit_drift == {"reversion_s": 100.0, "volatility": 0.5}
    assert b.set == ("slo_deadline_s=2", "faas.keep_alive_s=60")  # the task's come last
    assert a.episode_steps == 6 and b.episode_steps == 4  # task(...) gives 6
    built, _ = build_tasks(s)
    sc_b = built[1].scenario
    assert sc_b.faas.keep_alive_s == 60 and sc_b.slo_deadline_s == 2.0
    assert sc_b.exit_drift.volatility == 0.5 and sc_b.exit_drift.reversion_s == 100.0
    assert sc_b.arrivals.scale == 2.0 and sc_b.episode_steps == 4
    assert sc_b.name == "s/b"


def test_a_file_window_replays_exactly_the_file_s_counts(tmp_path):
    counts = np.arange(100) % 7 + 1  # an exact LIBRA trace: line n = requests in second n
    (tmp_path / "t.txt").write_text("\n".join(map(str, counts)) + "\n")
    s = write_suite(tmp_path, suite(task(trace="t.txt@20:80", episode_steps=5,
                                         set=["control_interval_s=10"])))
    [built], skipped = build_tasks(load_suite(s))  # found beside the suite file
    assert not skipped
    sc = built.scenario
    assert not sc.arrivals.random_start
    assert sc.arrivals.trace.name == "t.txt@20:80"  # the window as written; 50 s replayed
    env = SerflowVectorEnv(1, sc)
    env.reset(seed=0)
    arrived = []
    for _ in range(5):
        *_, info = env.step(env.action_space.sample())
        arrived.append(float(info["requests_arrived"][0]))
    # the file's seconds 20..69 summed per 10-s interval (read independently of the loader)
    expected = [float(counts[20 + 10 * i: 30 + 10 * i].sum()) for i in range(5)]
    assert arrived == expected


def test_window_errors_name_the_task(tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(["5"] * 100) + "\n")
    cases = [
        (task(trace="t.txt@0:500"), r"tasks\[0\] \(a\).trace: window \[0, 500\) s must lie "
                                    r"within the trace's \[0, 100\] s"),
        (task(trace="t.txt@50:100", episode_steps=6),
         r"tasks\[0\] \(a\): the episode replays 60 trace seconds but the trace window "
         r"t.txt@50:100 holds 50 s; .* set trace.repeat: true"),
        (task(scenario="no-such-preset"), r"tasks\[0\] \(a\): unknown scenario 'no-such-preset'"),
        (task(exit_drift={"schedule": [[0, [0.5]]]}),
         r"tasks\[0\] \(a\): exit_drift.schedule\[0\]: expected 2 exit probabilities"),
        (task(trace={"file": "azure_functions_2019_d01.csv", "start_s": 30}),
         r"trace.start_s=30: must be a multiple of the trace's 60 s bins"),
    ]
    for data, message in cases:
        s = load_suite(write_suite(tmp_path, suite(data)))
        with pytest.raises(SuiteError, match=message) as info:
            build_tasks(s)
        assert str(info.value).startswith(str(tmp_path)) and "\n" not in str(info.value)
    with pytest.raises(SuiteError, match="'arrivals.trace' cannot be set here"):
        build_tasks(load_suite(write_suite(tmp_path, suite(task()))),
                    overrides={"arrivals.trace": "t.txt"})


def test_repeat_loops_a_short_window(tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(["1", "2", "3", "4"]) + "\n")
    s = load_suite(write_suite(tmp_path, suite(task(
        trace={"file": "t.txt", "start_s": 1, "duration_s": 2, "repeat": True},
        episode_steps=1, set=["control_interval_s=7"]))))
    [built], _ = build_tasks(s)
    np.testing.assert_array_equal(built.scenario.arrivals.trace.values, [2, 3, 2, 3, 2, 3, 2])


def test_absent_trace_files_skip_their_task_with_a_message(tmp_path, capsys):
    s = load_suite(write_suite(tmp_path, suite(
        task(), task(name="b", trace="nowhere_logs.txt@0:60"),
        task(name="c", split="train", trace={"file": "gone/x.txt"}))))
    built, skipped = build_tasks(s)
    assert [t.name for t in built] == ["a"]
    assert [(k.task, k.split, k.file) for k in skipped] == [
        ("b", "test", "nowhere_logs.txt"), ("c", "train", "gone/x.txt")]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith("skipped task 'b' (test): trace file 'nowhere_logs.txt' is absent "
                             "(looked in ")
    assert str(tmp_path) in err[0]
    seen = []
    build_tasks(s, ["train"], on_skip=seen.append)
    assert len(seen) == 1 and "'c'" in seen[0]
    assert not capsys.readouterr().err


def test_search_path_order_and_the_environment_variable(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, value in ((first, "1"), (second, "2")):
        folder.mkdir()
        (folder / "t.txt").write_text("\n".join([value] * 100) + "\n")
    monkeypatch.setenv("SERFLOW_TRACE_PATH", f"{first}{os.pathsep}{second}")
    monkeypatch.chdir(tmp_path)
    folders = trace_search_path(None)
    assert folders[:2] == [first, second] and folders[-1] == SHIPPED_TRACE_DIR
    assert (tmp_path.parent / "shared" / "traces") in folders  # ../shared/traces from the cwd
    s = suite_from_dict(suite(task(trace="t.txt@0:60")))
    [built], _ = build_tasks(s)
    assert set(built.scenario.arrivals.trace.values) == {1.0}  # the first folder wins


def test_suite_selection_by_split_and_name():
    s = suite_from_dict(suite(task(), task(name="b", split="train")))
    assert [t.name for t in s.select(["train"])] == ["b"]
    assert [t.name for t in s.select(None, ["b"])] == ["b"]
    with pytest.raises(SuiteError, match=r"no task\(s\) \['zz'\]"):
        s.select(None, ["zz"])
    with pytest.raises(SuiteError, match="split='dev'; allowed train, validation, test"):
        s.select(["dev"])


def test_v1_loads_with_every_split_and_preset():
    v1 = load_suite("v1")
    assert v1.name == "v1" and v1.version == 1
    assert {t.split for t in v1.tasks} == set(SPLITS)
    assert {t.scenario for t in v1.tasks} == {"default", "branchynet-resnet", "transformer-8"}
    for split in SPLITS:  # every split covers the three presets
        assert {t.scenario for t in v1.select([split])} == {
            "default", "branchynet-resnet", "transformer-8"}
    test_traces = {t.trace.label.split("@")[0].split(" ")[0] for t in v1.select(["test"])}
    train_traces = {t.trace.label.split("@")[0].split(" ")[0] for t in v1.select(["train"])}
    # test traces are new families, but for later WITS windows and the exit-drift task's
    # diurnal traffic (a new seed; what is new there is the exit schedule)
    assert test_traces & train_traces == {"wits_logs.txt", "diurnal"}
    table = markdown_table(v1)
    assert table.count("\n") == len(v1.tasks) + 1


def test_v1_test_windows_are_disjoint_from_train_and_validation():
    """Test tasks' WITS windows lie after every train and validation WITS window."""
    v1 = load_suite("v1")

    def wits(split):
        return [(t.trace.start_s, t.trace.start_s + t.trace.duration_s)
                for t in v1.select([split]) if t.trace.file == "wits_logs.txt"]

    latest_seen = max(end for split in ("train", "validation") for _, end in wits(split))
    assert wits("test") and min(start for start, _ in wits("test")) >= latest_seen
    # generated test traces are of families not in train (drift-schedule: a new seed)
    generated = {(t.trace.generator["generator"], t.trace.generator.get("seed"))
                 for t in v1.select(["train"]) if t.trace.generator}
    for t in v1.select(["test"]):
        if t.trace.generator:
            assert (t.trace.generator["generator"], t.trace.generator.get("seed")) \
                not in generated


def test_every_v1_task_builds_a_scenario_that_steps(capsys):
    v1 = load_suite("v1")
    built, skipped = build_tasks(v1)
    if not SHARED_TRACES.is_dir():
        assert skipped  # WITS, sin, square_load: announced, never silent
    assert len(built) + len(skipped) == len(v1.tasks)
    for b in built:
        sc = b.scenario
        assert not sc.arrivals.random_start
        trace = sc.arrivals.trace
        # the trace holds exactly the episode (rounded up to whole bins)
        needed = sc.episode_steps * sc.control_interval_s
        assert trace.duration_s == math.ceil(needed / trace.resolution_s) * trace.resolution_s
        env = SerflowVectorEnv(1, sc)
        env.reset(seed=0)
        for _ in range(2):
            *_, info = env.step(env.action_space.sample())
        assert info["requests_arrived"][0] > 0, b.name


def test_save_azure_trace_round_trips_through_the_loader(tmp_path):
    rng = np.random.default_rng(0)
    rows = [("o", "a", f"f{i}", "http", rng.integers(0, 50, 1440)) for i in range(2)]
    save_azure_trace(rows, tmp_path / "d.csv")
    trace = load_azure_trace(tmp_path / "d.csv")
    np.testing.assert_array_equal(trace.values, rows[0][4] + rows[1][4])
    assert trace.resolution_s == 60.0
    with pytest.raises(ValueError, match=r"rows\[0\] has 3 counts; expected 1440"):
        save_azure_trace([("o", "a", "f", "t", [1, 2, 3])], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="non-negative integers"):
        save_azure_trace([("o", "a", "f", "t", np.full(1440, 0.5))], tmp_path / "x.csv")


def test_shipped_azure_week_has_a_daily_and_a_weekly_shape():
    days = [load_azure_trace(SHIPPED_TRACE_DIR / f"azure_functions_2019_d{d:02d}.csv")
            for d in range(1, 8)]
    means = np.array([d.mean_rate for d in days])
    assert means[5:].max() < 0.75 * means[:5].min()  # weekends quieter than weekdays
    hourly = days[2].values.reshape(24, 60).sum(axis=1) / 3600.0
    assert hourly[12:18].mean() > 2.5 * hourly[0:6].mean()  # afternoons busier than nights


def test_make_traces_regenerates_the_shipped_files_bit_for_bit(tmp_path):
    from serflow_env.data.make_traces import main

    main(["--out", str(tmp_path)])
    shipped = sorted(p.name for p in SHIPPED_TRACE_DIR.iterdir() if p.is_file())
    assert sorted(p.name for p in tmp_path.iterdir()) == shipped
    for name in shipped:
        assert (tmp_path / name).read_bytes() == (SHIPPED_TRACE_DIR / name).read_bytes(), name


def test_shared_libra_traces_load_when_present():
    if not SHARED_TRACES.is_dir():
        pytest.skip("../shared/traces is absent here")
    assert len(load_libra_trace(SHARED_TRACES / "wits_logs.txt")) == 45000


def test_listing_a_suite_from_the_command_line(tmp_path, capsys):
    import gymnasium as gym

    from serflow_env import ENV_ID
    from serflow_env.suite import main

    assert main(["v1", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("suite v1 (version 1): ") and "| azure-weekday | test |" in out
    assert "tasks build here" in out
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "suite file not found" in capsys.readouterr().err
    # a task's scenario drives the Gymnasium env as any scenario does
    built, _ = build_tasks(load_suite("v1"), ["test"], ["flash-crowd"])
    env = gym.make(ENV_ID, scenario=built[0].scenario)
    env.reset(seed=0)
    assert env.step(env.action_space.sample())[4]["requests_arrived"] > 0
