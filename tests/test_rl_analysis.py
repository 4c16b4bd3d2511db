"""The analyses behind docs/RESULTS_RL.md (agents/rl_analysis.py)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.rl_analysis import main, map_grid, provisioning_floor
from serflow_env.scenario import load_scenario


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
