"""Fidelity of the fast model: Erlang-C for both simulators, and the fast model against the
per-request reference on named cases, within the harness' TOLERANCES (total cost within 3 %,
violation rate within 0.1 percentage points plus 10 % of the reference's rate and at most
2 pp, p95 latency within 10 %)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from agents.heuristics.fixed import FixedPolicy, SwitchPolicy
from serflow_env.reference import checks
from serflow_env.scenario import load_scenario
from serflow_eval.fidelity import (
    CASES,
    COLD_START_TOLERANCE,
    DEFAULT_STEPS,
    MIN_COLD_STARTS,
    Row,
    _cold_starts,
    allowed_diff,
    compare,
    compare_case,
    format_table,
    main,
    within_tolerance,
)
from tests import theory


# ------------------------------------------------------------------ Erlang-C
def mmc_theory(c: int, rho: float) -> tuple[float, float]:
    """(P(wait > 0), E[wait] in units of the mean service time) from tests/theory.py."""
    return theory.erlang_c(c, rho * c), theory.mmc_mean_wait(c, rho * c)


GRID = [(c, rho) for c in (1, 4, 16) for rho in (0.5, 0.8, 0.95)]


@pytest.mark.parametrize("c, rho", GRID)
def test_fast_model_waiting_agrees_with_erlang_c(c, rho):
    """One stage, VMs only (c VMs of one slot from the start), exponential service, Poisson
    arrivals from a constant-rate trace; the fast model's stage_wait_probability and
    stage_wait_mean_s (unconditional), weighted by the requests of each interval."""
    p, w = checks.mmc_fast(c, rho)
    p_th, w_th = mmc_theory(c, rho)
    assert abs(p - p_th) <= max(0.05 * p_th, 0.003)
    assert abs(w - w_th) <= max(0.05 * w_th, 0.0005)


@pytest.mark.parametrize("c, rho", [
    pytest.param(c, rho, marks=pytest.mark.slow) if rho >= 0.8
    else (c, rho)
    for c, rho in GRID
])
def test_reference_waiting_agrees_with_erlang_c(c, rho):
    """The same system in the reference: the waits of every customer that started service."""
    customers = checks.customers_for(rho)
    p, w, started = checks.mmc_reference(c, rho, customers)
    p_th, w_th = mmc_theory(c, rho)
    assert started >= 0.95 * customers
    assert abs(p - p_th) <= max(0.05 * p_th, 0.003)
    assert abs(w - w_th) <= max((0.10 if rho == 0.95 else 0.08) * w_th, 0.0005)


# ------------------------------------------------------------------ the named cases
@cache
def case_result(name: str):
    """The runs of the table in docs/FIDELITY.md (each case's own replications)."""
    return compare_case(name, steps=DEFAULT_STEPS)


# (case, metric) -> diagnosis, for a gap still open: marked xfail(strict=True), so a fix shows
# up as an unexpected pass (none open: queue-limit p95, -16.7 % under the one-backlog-delay
# latency model, closed when the waits behind full queues took the limit's reflected law)
EXPECTED_FAILURES: dict[tuple[str, str], str] = {}

# The longest cases (6-26 s each on 2 cores) run with `-m slow` and in
# `python -m serflow_eval.fidelity --cases`, to keep the default run under 5 minutes; the
# default run keeps steady, cold-start, burst-storm, exit-drift and cap-serflow (share and cap
# routing, bursts, drift, cold functions, closed loop).
SLOW_CASES = {"queue-limit", "transformer-mmpp", "overload", "short-burst", "bursty",
              "saturation", "cap-burst"}


def _params():
    for name in CASES:
        for metric in ("cost", "violations", "p95"):
            reason = EXPECTED_FAILURES.get((name, metric))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            if name in SLOW_CASES:
                marks.append(pytest.mark.slow)
            yield pytest.param(name, metric, marks=marks, id=f"{name}-{metric}")


METRICS = {"cost": "cost_usd", "violations": "violation_rate", "p95": "latency_p95_s"}


@pytest.mark.parametrize("name, metric", list(_params()))
def test_fast_model_stays_close_to_the_reference(name, metric):
    """Within the harness' TOLERANCES (3 % cost, 0.1 pp + 10 % of the reference's violation
    rate up to 2 pp, 10 % p95). Where this fails, improve the fast model, not the tolerance
    (docs/FIDELITY.md)."""
    result = case_result(name)
    row = result.row(METRICS[metric])
    assert within_tolerance(row), (f"{row.metric}: |{row.diff:+.4f}| > "
                                   f"{allowed_diff(row):.4f}\n{format_table(result)}")


# cases whose reference counts at least MIN_COLD_STARTS cold starts, and the diagnosis of
# those whose count is not yet within COLD_START_TOLERANCE (docs/FIDELITY.md, item 6)
COLD_START_CASES = {
    "cold-start": None,
    "burst-storm": None,
    "cap-burst": "-13 %: the storm at the episode's start on stage 1 (no prewarm), cap mode's "
                 "overflow at the end of the first ticks: 147 cold starts against 194 in a "
                 "one-replication run; the bursts after it agree",
    "transformer-mmpp": "-50 %: where the serflow policy moves traffic onto the functions of "
                        "stages 2-5 at the MMPP's jumps, the reference's pools there grow by "
                        "2-6 containers with about 5 cold starts per stage, the fast model's "
                        "stay (its maxima of the bunched cap-mode arrivals are below the pool)",
}


def _cold_params():
    for name, reason in COLD_START_CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        if name in SLOW_CASES:
            marks.append(pytest.mark.slow)
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_cold_params()))
def test_cold_starts_within_ten_percent_where_the_reference_counts_enough(name):
    """Issue 17: cold starts within COLD_START_TOLERANCE (10 %) of the reference where it
    counts at least MIN_COLD_STARTS over the case's replications."""
    result = case_result(name)
    assert result.reference.totals["faas_cold_starts"].sum() >= MIN_COLD_STARTS
    row = result.row("faas_cold_starts")
    assert abs(row.diff) <= COLD_START_TOLERANCE, f"{row.fast:.1f} / {row.reference:.1f}"


@pytest.mark.parametrize("reference, diff_pp, within", [
    (0.0, 0.09, True), (0.0, 0.11, False),  # nothing late in the reference: 0.1 pp
    (0.003, 0.12, True), (0.003, -0.14, False),  # 0.3 %: 0.13 pp (2 pp could not fail)
    (0.05, 0.59, True), (0.05, 0.61, False),  # 5 %: 0.6 pp
    (0.40, 1.99, True), (0.40, -2.01, False),  # high rates: at most the 2 pp
])
def test_violation_rate_tolerance_is_absolute_plus_relative(reference, diff_pp, within):
    row = Row("violation_rate", reference + diff_pp / 100, reference, diff_pp, "pp", 0.0)
    assert within_tolerance(row) is within


def test_cost_and_p95_tolerances_are_relative():
    for metric, limit in (("cost_usd", 0.03), ("latency_p95_s", 0.10)):
        assert within_tolerance(Row(metric, 1.0, 1.0, limit - 1e-9, "rel", 0.0))
        assert not within_tolerance(Row(metric, 1.0, 1.0, -(limit + 1e-9), "rel", 0.0))


@pytest.mark.slow  # computes every case, the slow ones included
def test_cases_exercise_what_they_are_named_after():
    steady, bursty = case_result("steady"), case_result("bursty")
    cold, overload = case_result("cold-start"), case_result("overload")
    assert steady.reference.value("faas_cold_starts") < 5
    assert bursty.reference.value("requests_arrived") > steady.reference.value(
        "requests_arrived")
    assert cold.reference.value("faas_cold_starts") > 100
    assert cold.reference.value("vm_seconds") > 0
    assert overload.reference.value("requests_throttled") > 0.1 * overload.reference.value(
        "requests_arrived")
    limited = case_result("queue-limit").reference
    assert limited.value("requests_dropped") > 0.2 * limited.value("requests_arrived")
    assert limited.quantiles.shape[0] == CASES["queue-limit"]["seeds"] == 20
    assert case_result("burst-storm").reference.value("faas_cold_starts") > 200
    thin = case_result("transformer-mmpp")  # 8 stages, closed loop, caps binding in bursts
    assert thin.fast.quantiles.shape[0] == 5
    assert thin.reference.totals["faas_cold_starts"].sum() >= MIN_COLD_STARTS
    capped = case_result("cap-burst").reference  # overflow on cold functions in the bursts
    assert 0.05 < capped.value("faas_invocations") / capped.value("requests_arrived") < 0.3
    assert capped.value("faas_cold_starts") > 100


@pytest.mark.slow  # the short-burst case, one of SLOW_CASES
def test_requests_behind_a_short_backlog_can_be_late():
    """short-burst: the reference has violations behind each 4-s burst's backlog (waits up to
    about 0.8 s on top of three stages). With the backlog delay taken as its mean the fast
    model saw none (0.00 % vs 0.55 %), with its spread within ticks 0.26 %; with the backlog's
    diffusion around the fluid path too, 0.58 %."""
    result = case_result("short-burst")
    fast, ref = result.fast.value("violation_rate"), result.reference.value("violation_rate")
    assert ref > 0.002  # the case exercises the tail it is named after
    assert abs(fast - ref) < 0.4 * ref


# ------------------------------------------------------------------ harness and policies
def test_harness_prints_every_metric_side_by_side(capsys):
    assert main(["--case", "steady", "--seeds", "2", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    for metric in ("cost_usd", "cost_vm_usd", "cost_faas_usd", "cost_transfer_usd",
                   "violation_rate", "latency_p50_s", "latency_p95_s", "latency_p99_s",
                   "vm_seconds", "faas_invocations", "faas_cold_starts"):
        assert f"| {metric} |" in out
    assert "reference quantiles pooled from its per-interval CDFs" in out


def test_harness_accepts_scenario_policy_trace_and_overrides(capsys):
    code = main(["--scenario", "branchynet-resnet", "--policy", "fixed:2,0.5", "--trace",
                 '{"generator": "constant", "duration_s": 600, "rate": 30}', "--seeds", "2",
                 "--steps", "3", "--set", "faas.keep_alive_s=60"])
    assert code == 0
    out = capsys.readouterr().out
    assert "branchynet-resnet / fixed:2,0.5" in out
    row = next(line for line in out.splitlines() if line.startswith("| requests_arrived |"))
    fast, ref = (float(cell.replace(",", "")) for cell in row.split("|")[2:4])
    # both simulators replay the same 30 req/s trace window: 3 steps of 10 s, Poisson counts
    assert fast == ref
    assert fast == pytest.approx(30 * 3 * 10.0, rel=0.1)


def test_compare_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seeds"):
        compare("default", "fixed:1,0.5", seeds=0)
    with pytest.raises(ValueError, match="steps"):
        compare("default", "fixed:1,0.5", steps=0)
    with pytest.raises(ValueError, match="unknown case"):
        compare_case("nope")


def test_fixed_and_switch_policies_decode_to_their_targets():
    sc = load_scenario("default", **{"routing.mode": "share"})
    a = FixedPolicy(sc, "3/2/1,0.25").act(np.zeros((2, 40)), None)
    assert a.shape == (2, 6) and a.dtype == np.float32
    vms = np.rint((a[:, :3] + 1) / 2 * 20)
    np.testing.assert_array_equal(vms, [[3, 2, 1], [3, 2, 1]])
    np.testing.assert_allclose((a[:, 3:] + 1) / 2, 0.25, atol=1e-7)
    switch = SwitchPolicy(sc, "2:0,1:4,0")
    switch.reset(1)
    got = [switch.act(np.zeros((1, 40)), None)[0] for _ in range(4)]
    assert np.allclose(got[1], FixedPolicy(sc, "0,1").action)
    assert np.allclose(got[2], FixedPolicy(sc, "4,0").action)


def test_fixed_policy_sets_caps_in_cap_mode():
    sc = load_scenario("default", **{"routing.mode": "cap", "routing.max_cap": 2.0})
    a = FixedPolicy(sc, "3/2/1,0.5/1.3/2").act(np.zeros((1, 40)), None)
    np.testing.assert_allclose((a[0, 3:] + 1) / 2 * 2.0, [0.5, 1.3, 2.0], atol=1e-6)
    with pytest.raises(ValueError, match=r"CAP='2.5': allowed range \[0.0, 2.0\]"):
        FixedPolicy(sc, "3,2.5")


@pytest.mark.parametrize("arg, message", [
    ("3", "VMS,SHARE"), ("x,0.5", "not a number"), ("3,1.5", "SHARE"),
    ("3/2,0.5", "one value or 3"), ("25,0.5", "VMS"), ("1.5,0.5", "integer"),
])
def test_fixed_policy_rejects_bad_arguments(arg, message):
    with pytest.raises(ValueError, match=message):
        FixedPolicy(load_scenario("default", **{"routing.mode": "share"}), arg)


def test_switch_policy_rejects_bad_arguments():
    with pytest.raises(ValueError, match="STEP"):
        SwitchPolicy(load_scenario("default"), "x:1,0:2,0")


def test_cases_report_lists_every_case_against_the_tolerances(capsys):
    assert main(["--cases", "--seeds", "1", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "| case | total cost | violation rate | p95 latency |" in out
    for name in CASES:
        assert f"| `{name}` |" in out
        assert f"python -m serflow_eval.fidelity --case {name}`" in out


def test_cold_starts_are_compared_only_where_the_reference_counts_enough():
    """The cases' summary gives the cold starts of both; their difference only where the
    reference counts at least MIN_COLD_STARTS over the replications (Poisson error <= 10 %)."""
    assert _cold_starts(case_result("cold-start")).endswith(" %)")
    assert _cold_starts(case_result("steady")).endswith("(too few)")
