"""The analyses behind docs/RESULTS_RL.md (serflow_eval/analysis.py)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.analysis.foresight import HISTORY, PeakForecast, WindowPeakPolicy, interval_rates
from serflow_env.scenario import load_scenario
from serflow_eval.analysis import foresight_grid, main, map_grid, provisioning_floor
from serflow_eval.scoring import eval_scenario, run_policy


def test_provisioning_floor_matches_hand_arithmetic() -> None:
    scenario = load_scenario("default")  # reach 1 / 0.4 / 0.2; 50 / 33.3 / 25 req/s per VM
    rate = np.full(3600, 100.0)  # one hour at 100 req/s
    fluid, whole = provisioning_floor(scenario, rate, utilisation=1.0)
    assert fluid == pytest.approx(100 / 50 + 40 / (100 / 3) + 20 / 25)  # 4.0 VM-h
    assert whole == pytest.approx(2 + 2 + 1)  # ceil per stage
    lower_util, _ = provisioning_floor(scenario, rate, utilisation=0.5)
    assert lower_util == pytest.approx(2 * fluid)
    with pytest.raises(ValueError, match="utilisation"):
        provisioning_floor(scenario, rate, utilisation=0.0)
    with pytest.raises(ValueError, match="control interval"):
        provisioning_floor(scenario, rate[:5], utilisation=1.0)


def test_map_grid_scores_each_setting_against_the_heuristic() -> None:
    scenario = load_scenario("default", episode_steps=20)
    rows = map_grid(scenario, episodes=2, seed=0, utilisations=[0.5, 0.95], route_mids=[0.7],
                    holds=[300.0])
    assert rows[0]["policy"] == "serflow" and len(rows) == 3
    low, high = rows[1], rows[2]
    assert low["vms"] > high["vms"]  # lower target utilisation keeps more VMs
    assert all(np.isfinite(r["cost_rel"]) and r["violations"] >= 0 for r in rows)


def test_bound_cli_prints_vm_hours(tmp_path, capsys) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text("100\n" * 60, encoding="utf-8")
    main(["bound", "--trace", str(trace), "--utilisation", "1.0"])
    out = capsys.readouterr().out
    assert "60 s, 6000 requests" in out and "fluid 0.1 VM-h" in out


def _step_trace(tmp_path, low: int = 20, high: int = 200, seconds: int = 600) -> str:
    """A LIBRA-format trace: ``low`` req/s for ``seconds``, then ``high`` for as long."""
    path = tmp_path / "step.txt"
    path.write_text(f"{low}\n" * seconds + f"{high}\n" * seconds, encoding="utf-8")
    return str(path)


def test_interval_rates_and_the_two_windows(tmp_path) -> None:
    scenario = eval_scenario("default", _step_trace(tmp_path))
    rates = interval_rates(scenario)
    assert rates.shape == (120,) and rates[59] == 20.0 and rates[60] == 200.0
    ahead = WindowPeakPolicy(scenario, utilisation=0.8, route=0.9, look="ahead")
    behind = WindowPeakPolicy(scenario, utilisation=0.8, route=0.9, look="behind")
    assert ahead.window == 11  # 100 s boot / 10 s intervals + the interval it becomes ready
    assert ahead.peak_rate(49) == 20.0 and ahead.peak_rate(50) == 200.0  # step at 60 seen at 50
    assert behind.peak_rate(0) == 0.0  # nothing observed yet
    assert behind.peak_rate(60) == 20.0 and behind.peak_rate(61) == 200.0
    assert behind.peak_rate(71) == 200.0 and behind.peak_rate(72) == 200.0


SHARE_MODE = {"routing.mode": "share"}  # a function share held for the whole interval


def test_foresight_has_vms_ready_for_a_step_the_causal_rule_reacts_to(tmp_path) -> None:
    scenario = eval_scenario("default", _step_trace(tmp_path)).with_overrides(**SHARE_MODE)
    ahead = run_policy(WindowPeakPolicy(scenario, 0.8, 0.9, look="ahead"), scenario, 2, 0)
    behind = run_policy(WindowPeakPolicy(scenario, 0.8, 0.9, look="behind"), scenario, 2, 0)
    # the causal rule launches after the step and serves the first boot time on too few VMs
    # (queueing) or functions; foresight has the VMs up when the load arrives
    assert ahead.violation_rate < behind.violation_rate
    assert ahead.function_share < behind.function_share
    # routing on the coming interval's load sends the step's excess to functions at once
    informed = run_policy(WindowPeakPolicy(scenario, 0.8, 0.9, look="behind", route_ahead=True),
                          scenario, 2, 0)
    assert informed.violation_rate < behind.violation_rate
    assert informed.function_share > behind.function_share


def test_foresight_needs_one_trace_replayed_from_its_start(tmp_path) -> None:
    trace = _step_trace(tmp_path)
    with pytest.raises(ValueError, match="random_start"):
        interval_rates(load_scenario("default", **{"arrivals.trace": trace,
                                                   "arrivals.random_start": True}))
    with pytest.raises(ValueError, match="2 traces"):
        interval_rates(load_scenario("default", **{"arrivals.trace": [trace, trace]}))
    with pytest.raises(ValueError, match="time_warp"):
        interval_rates(load_scenario("default", **{"arrivals.trace": trace,
                                                   "arrivals.time_warp": 2.0}))
    with pytest.raises(ValueError, match="utilisation"):
        WindowPeakPolicy(eval_scenario("default", trace), utilisation=1.5, route=0.9)


def test_foresight_grid_and_cli(tmp_path, capsys) -> None:
    trace = _step_trace(tmp_path, seconds=300)
    rows = foresight_grid(eval_scenario("default", trace), episodes=1, seed=0,
                          utilisations=[0.8], routes=[0.9])
    assert [r["policy"] for r in rows] == ["serflow", "foresight-peak", "past-peak"]
    main(["foresight", "--trace", trace, "--episodes", "1", "--utilisation", "0.8",
          "--route", "0.9", "--route-ahead"])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and out[1].startswith("policy=foresight-peak, utilisation=0.8")
    assert out[4].startswith("policy=past-peak+route-ahead, utilisation=0.8")


def test_peak_forecast_learns_a_periodic_load() -> None:
    steps = np.arange(3000)
    rates = 100.0 * np.exp(0.5 * np.sin(2 * np.pi * steps / 120.0))  # 20-min period
    forecast = PeakForecast.fit(rates[:2000], window=11)
    test = np.arange(2000 + HISTORY, 3000 - 11)
    truth = np.array([rates[t: t + 11].max() for t in test])
    predicted = forecast(np.stack([rates[t - HISTORY: t] for t in test]))
    past_peak = np.array([rates[t - 11: t].max() for t in test])
    error = np.abs(np.log(predicted / truth)).mean()
    assert error < 0.2 * np.abs(np.log(past_peak / truth)).mean()
    assert error < 0.2 * np.abs(np.log(rates[test - 1] / truth)).mean()
    with pytest.raises(ValueError, match="forecast fit trace"):
        PeakForecast.fit(rates[:400], window=11)


def test_forecast_rule_in_the_grid(tmp_path) -> None:
    trace = _step_trace(tmp_path, seconds=300)
    scenario = eval_scenario("default", trace)
    forecast = PeakForecast.fit(np.linspace(50.0, 150.0, 600), window=11)
    with pytest.raises(ValueError, match="look='forecast'"):
        WindowPeakPolicy(scenario, 0.8, 0.9, look="forecast")
    with pytest.raises(ValueError, match="boot window is 11"):
        WindowPeakPolicy(scenario, 0.8, 0.9, look="forecast",
                         forecast=PeakForecast(forecast.weights, window=5))
    policy = WindowPeakPolicy(scenario, 0.8, 0.9, look="forecast", forecast=forecast, margin=1.2)
    assert policy.peak_rate(0) == 0.0 and policy.peak_rate(31) > 0.0
    rows = foresight_grid(scenario, episodes=1, seed=0, utilisations=[0.8], routes=[0.9],
                          forecast=forecast, margins=[1.0, 1.2])
    assert [r["policy"] for r in rows][-2:] == ["forecast-peak", "forecast-peak"]
    assert [r["margin"] for r in rows[-2:]] == [1.0, 1.2]


def test_foresight_grid_on_the_reference_simulator(tmp_path) -> None:
    capped = eval_scenario("default", _step_trace(tmp_path, seconds=200))
    scenario = capped.with_overrides(**SHARE_MODE)
    fast = foresight_grid(scenario, 1, 0, [0.8], [0.9])
    reference = foresight_grid(scenario, 1, 0, [0.8], [0.9], simulator="reference")
    assert [r["policy"] for r in reference] == [r["policy"] for r in fast]
    assert reference[0]["violations"] != fast[0]["violations"]  # another simulator ran
    # the per-request simulator agrees: foresight serves the step, the causal rule lags
    _, ahead, behind = reference
    assert ahead["violations"] < 0.01 < 0.1 < behind["violations"]
    assert ahead["cost_rel"] < behind["cost_rel"] < 0.0
    # in cap mode the same causal rule sends the step's excess to functions within the tick
    # instead of queueing it on the VMs sized for the interval before
    _, _, behind_capped = foresight_grid(capped, 1, 0, [0.8], [0.9], simulator="reference")
    assert behind_capped["violations"] < 0.1 * behind["violations"]
    with pytest.raises(ValueError, match="simulator"):
        run_policy(WindowPeakPolicy(scenario, 0.8, 0.9), scenario, 1, 0, simulator="exact")
