"""evaluate.py end to end, common random numbers, metrics and the sweep."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

import evaluate
from serflow_env.latency import cdf_grid_s
from serflow_env.scenario import load_scenario
from serflow_eval import simulators
from serflow_eval.metrics import (
    METRICS,
    cdf_grid_of,
    episode_summary,
    mean_ci,
    paired_comparisons,
    pooled_latency_quantiles,
    summarise,
)
from serflow_eval.runner import run_policies
from serflow_eval.sweep import skewed

PLOTS = ("traffic_vms.png", "latency_p95.png", "cost_components.png", "cost_vs_violations.png")


def test_evaluate_end_to_end_writes_summary_timeseries_and_plots(tmp_path, capsys):
    code = evaluate.main(["--policies", "serflow,libra,faas-only", "--seeds", "2",
                          "--episode-steps", "15", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary["policy"]) == ["serflow", "libra", "faas-only"]
    for metric in ("cost_usd", "cost_per_1k_requests", "slo_violation_rate", "latency_p50_s",
                   "latency_p95_s", "latency_p99_s", "vm_hours", "faas_invocations",
                   "faas_cold_starts"):
        assert f"{metric}_mean" in summary and f"{metric}_ci95" in summary
    assert (summary["cost_usd_mean"] > 0).all()
    ts = pd.read_csv(tmp_path / "timeseries.csv")
    assert len(ts) == 3 * 2 * 15
    assert {"s1_vms_running", "s3_faas_share", "latency_p95_s", "rate_rps"} <= set(ts.columns)
    comparisons = pd.read_csv(tmp_path / "comparisons.csv")
    assert list(comparisons["baseline"]) == ["libra", "faas-only"]
    for name in PLOTS:
        path = tmp_path / name
        assert path.exists() and 0 < path.stat().st_size < 200_000
    out = capsys.readouterr().out
    assert "serflow" in out and "cost $" in out


def test_bad_arguments_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--seeds", "0"])
    assert "--seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(["--start-s", "5", "--random-start"])
    assert "--start-s" in capsys.readouterr().err
    assert evaluate.main(["--policies", "nope", "--episode-steps", "2", "--no-progress",
                          "--out", str(tmp_path)]) == 2
    assert "unknown policy" in capsys.readouterr().out


def test_reference_simulator_hook_errors_clearly_when_missing(monkeypatch):
    def missing(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(simulators.importlib, "import_module", missing)
    with pytest.raises(simulators.SimulatorUnavailable, match="not available yet"):
        simulators.make_vector_env("reference", load_scenario("default"))
    monkeypatch.setattr(simulators.importlib, "import_module", importlib.import_module)
    with pytest.raises(ValueError, match="--simulator"):
        simulators.make_vector_env("exact", load_scenario("default"))


def test_common_random_numbers():
    sc = load_scenario("default", episode_steps=20)  # a Poisson (random) generated trace
    ts = run_policies(["faas-only", "vm-threshold", "serflow"], sc, [0, 1], 20)
    arrivals = {p: g.sort_values(["seed", "step"])["requests_arrived"].to_numpy()
                for p, g in ts.groupby("policy")}
    np.testing.assert_array_equal(arrivals["faas-only"], arrivals["vm-threshold"])
    np.testing.assert_array_equal(arrivals["faas-only"], arrivals["serflow"])
    assert not np.array_equal(arrivals["faas-only"][:20], arrivals["faas-only"][20:])
    # the same policy twice: identical results; a seed's result does not depend on the others
    twice = run_policies(["serflow"], sc, [1], 20)
    again = run_policies(["serflow"], sc, [0, 1], 20)
    pd.testing.assert_frame_equal(twice.reset_index(drop=True),
                                  again[again["seed"] == 1].reset_index(drop=True))
    pd.testing.assert_frame_equal(
        twice.reset_index(drop=True),
        ts[(ts["policy"] == "serflow") & (ts["seed"] == 1)].reset_index(drop=True))


def test_pooled_latency_quantiles_invert_the_completion_weighted_mixture():
    # grid 1, 2, 4 s; interval CDFs (0.5, 1, 1) with 1 completion and (0, 0, 1) with 1: the
    # mixture is (0.25, 0.5, 1), so p50 = 2 s exactly and p95, p99 lie log-linearly between
    # 2 and 4 s at 0.9 and 0.98 of the way (worked by hand)
    grid = np.array([1.0, 2.0, 4.0])
    cdf = np.array([[0.5, 1.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(pooled_latency_quantiles(cdf, np.array([1.0, 1.0]), grid),
                               [2.0, 2.0 * 2**0.9, 2.0 * 2**0.98])
    # weights count: 3 completions in the first make the mixture (0.375, 0.75, 1)
    np.testing.assert_allclose(pooled_latency_quantiles(cdf, np.array([3.0, 1.0]), grid)[0],
                               2 ** ((0.5 - 0.375) / 0.375))
    # an interval without completions does not count; none at all gives 0
    np.testing.assert_allclose(pooled_latency_quantiles(cdf, np.array([0.0, 2.0]), grid),
                               [2**1.5, 2**1.95, 2**1.99])
    np.testing.assert_array_equal(pooled_latency_quantiles(cdf, np.zeros(2), grid), np.zeros(3))
    # envs on a middle axis: each env's own mixture
    per_env = np.stack([cdf, cdf[::-1]], axis=1)  # (T=2, N=2, G)
    np.testing.assert_allclose(pooled_latency_quantiles(per_env, np.ones((2, 2)), grid),
                               [[2.0, 2.0 * 2**0.9, 2.0 * 2**0.98]] * 2)
    with pytest.raises(ValueError, match="grid points"):
        pooled_latency_quantiles(cdf, np.ones(3), grid)


def test_episode_summary_p95_pools_the_recorded_interval_cdfs():
    """evaluate.py's p95 inverts the completion-weighted mixture of the recorded CDFs (checked
    with np.interp in log space), not the mean of the per-interval p95s."""
    sc = load_scenario("default", episode_steps=15)
    ts = run_policies(["serflow"], sc, [2], 15)
    row = episode_summary(ts).iloc[0]
    names, grid = cdf_grid_of(ts)
    np.testing.assert_allclose(grid, cdf_grid_s(sc.slo_deadline_s, 16 * sc.slo_deadline_s))
    w = ts["requests_completed"].to_numpy()
    assert w.sum() > 0
    mixture = (ts[names].to_numpy() * w[:, None]).sum(axis=0) / w.sum()
    expected = float(np.exp(np.interp(0.95, mixture, np.log(grid))))
    assert row["latency_p95_s"] == pytest.approx(expected, rel=1e-9)
    mean_of_p95 = float((ts["latency_p95_s"] * w).sum() / w.sum())
    assert row["latency_p95_s"] != pytest.approx(mean_of_p95, rel=1e-6)


def test_mean_ci_and_paired_comparisons():
    mean, ci = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0 and ci == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert np.isnan(mean_ci(np.array([4.0]))[1])
    per_seed = pd.DataFrame({
        "policy": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
        "cost_usd": [7.0, 7.0, 10.0, 10.0], "slo_violation_rate": [0.01, 0.01, 0.02, 0.01],
    })
    cmp = paired_comparisons(per_seed, "a", claim_ratio=0.77).iloc[0]
    assert cmp["cost_ratio_mean"] == pytest.approx(0.7) and cmp["saving_pct_mean"] == \
        pytest.approx(30.0)
    assert cmp["violation_diff_pp_mean"] == pytest.approx(-0.5)
    assert cmp["claim_holds"] and cmp["cost_claim"] and cmp["violations_no_worse"]
    assert not paired_comparisons(per_seed, "a", claim_ratio=0.6).iloc[0]["cost_claim"]
    # without a claim there is no claim column (no paper's number in every comparison)
    assert "cost_claim" not in paired_comparisons(per_seed, "a").columns


def test_episode_summary_totals():
    sc = load_scenario("default", episode_steps=10)
    ts = run_policies(["faas-only"], sc, [3], 10)
    row = episode_summary(ts).iloc[0]
    assert row["cost_usd"] == pytest.approx(ts["cost_usd"].sum())
    assert row["faas_invocations"] == ts["faas_invocations"].sum()
    assert row["vm_hours"] == 0.0
    summary = summarise(episode_summary(ts))
    assert {f"{m}_mean" for m in METRICS} <= set(summary.columns)


def test_sweep_writes_savings(tmp_path):
    sc = skewed(load_scenario("default"), 0.3, 2.0)
    assert [s.exit_probability for s in sc.stages] == [0.3, 0.3, 1.0]
    assert sc.arrivals.scale == 2.0
    code = evaluate.main(["--sweep", "--policies", "serflow,faas-only", "--seeds", "1",
                          "--episode-steps", "6", "--sweep-exit-probs", "0,0.5",
                          "--sweep-scales", "1", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    sweep = pd.read_csv(tmp_path / "sweep.csv")
    assert list(sweep["exit_probability"]) == [0.0, 0.5]
    assert {"saving_pct_mean", "violation_diff_pp_mean", "scale"} <= set(sweep.columns)
    assert (tmp_path / "sweep_savings.png").stat().st_size < 200_000


def test_plots_read_as_a_reader_expects(tmp_path, monkeypatch):
    """The figures evaluate.py writes: error bars never below 0, integer VM ticks (and a
    0..1 axis where no VM runs), plain-number latency ticks with the legend off the data, no
    legend entry for a cost that is zero everywhere, short policy labels."""
    from serflow_eval import plots

    figures = {}
    save = plots._save

    def keep(fig, path):
        figures[path.name] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    assert evaluate.main(["--policies", "serflow,faas-only,libra", "--seeds", "2",
                          "--episode-steps", "30", "--out", str(tmp_path),
                          "--no-progress"]) == 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    ax = figures["cost_vs_violations.png"].axes[0]
    for container in ax.containers:
        for lines in container.lines[2]:
            for segment in lines.get_segments():
                assert segment.min() >= 0.0, segment  # neither rate nor cost below 0
    ax = figures["cost_components.png"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "functions" in legend and "VMs" in legend
    assert ("transfers" in legend) == bool((summary["cost_transfer_usd_mean"] > 0).any())
    for segment in ax.containers[-1].lines[2][0].get_segments():
        assert segment[:, 1].min() >= 0.0
    fig = figures["traffic_vms.png"]
    fig.canvas.draw()
    twins = [a for a in fig.axes if a.get_ylabel() == "VMs"]
    assert len(twins) == 3
    for twin in twins:
        ticks = [t for t in twin.get_yticks() if twin.get_ylim()[0] <= t <= twin.get_ylim()[1]]
        assert all(float(t).is_integer() for t in ticks), ticks
        assert twin.get_ylim()[1] >= 1.0  # FaaS-only: 0..1 VMs, not -0.04..0.04
    assert [a.get_title(loc="left").split(":")[0] for a in fig.axes if a.get_title(loc="left")
            ][::2] == ["serflow", "faas-only", "libra"]
    fig = figures["latency_p95.png"]
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all("$" not in t and "10^" not in t for t in labels), labels
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1


def test_policy_labels_shorten_model_paths_only():
    from serflow_eval.labels import policy_labels

    assert policy_labels(["ppo:runs/a/best_model.zip", "serflow", "serflow:utilisation=0.7"]
                         ) == {"ppo:runs/a/best_model.zip": "ppo", "serflow": "serflow",
                               "serflow:utilisation=0.7": "serflow:utilisation=0.7"}
    two = policy_labels(["ppo:runs/a/best_model.zip", "ppo:runs/b/best_model.zip"])
    assert list(two.values()) == ["ppo:a/best_model.zip", "ppo:b/best_model.zip"]
    same = ["ppo:x/a/m.zip", "ppo:y/a/m.zip"]
    assert policy_labels(same) == {s: s for s in same}


def test_evaluate_takes_a_trace_window_as_train_py_does(tmp_path, capsys):
    assert evaluate.main(["--policies", "serflow", "--trace", "sine_1h.txt@600:900",
                          "--episode-steps", "30",
                          "--seeds", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "trace sine_1h@600:900" in out and "1 seed x 30 intervals" in out
    assert evaluate.main(["--policies", "serflow", "--trace", "sine_1h.txt@0:99999",
                          "--out", str(tmp_path), "--no-progress"]) == 2
    assert "window" in capsys.readouterr().out
