"""The analytic latency models against per-request Monte Carlo of the same decomposition."""

from __future__ import annotations

import numpy as np
import pytest

from serflow_env import SerflowVectorEnv
from serflow_env.latency import CDF_GRID, FourierLatency, MomentLatency
from serflow_env.scenario import load_scenario
from tests.latency_mc import sample_latencies

CASES = {
    "vm-light": ([0, 0, 0], [0.1] * 3, [0.02, 0.03, 0.04], [0] * 3, [0] * 3, [0] * 3),
    "split": ([0.5] * 3, [0.3] * 3, [0.05] * 3, [0] * 3, [0] * 3, [0] * 3),
    "cold-2pc": ([1] * 3, [0] * 3, [0] * 3, [0] * 3, [0] * 3, [0.02] * 3),
    "vm-heavy-wait": ([0] * 3, [0.9, 0.8, 0.7], [0.3] * 3, [0] * 3, [0] * 3, [0] * 3),
    "backlog-stage1": ([0.2, 0, 0], [0.5, 0.1, 0.1], [0.1, 0.05, 0.05], [0.3, 0, 0],
                       [0.6, 0, 0], [0.05, 0, 0]),
    # delays behind backlogs at every stage (cap-mode bursts): a path meets several, which
    # add up (transformer-8: 8 stages)
    "backlog-every-stage": ([0.25] * 3, [0.4] * 3, [0.05] * 3, [0.3] * 3, [0.12] * 3,
                            [0] * 3),
}


@pytest.mark.parametrize("model_cls", [MomentLatency, FourierLatency])
@pytest.mark.parametrize("scenario_name", ["default", "transformer-8"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_violation_probability_and_p95_match_monte_carlo(model_cls, scenario_name, case):
    sc = load_scenario(scenario_name)
    k = sc.num_stages
    args = [np.resize(np.array(v, float), k) for v in CASES[case]]
    if case == "backlog-stage1":  # one backlogged stage only
        for i in (3, 4):
            args[i][1:] = 0.0
    exit_p = np.array([s.exit_probability for s in sc.stages])
    weights = np.cumprod(np.r_[1.0, 1 - exit_p[:-1]]) * exit_p
    lat = sample_latencies(sc, *args, exit_weights=weights, size=200_000,
                           rng=np.random.default_rng(0))
    stats = model_cls(sc).compute(*(a[None] for a in args), weights[None])
    viol_mc = np.mean(lat > sc.slo_deadline_s)
    p95_mc = np.quantile(lat, 0.95)
    assert abs(stats.violation_probability[0] - viol_mc) <= 0.012
    assert stats.quantiles_s[0, 1] == pytest.approx(p95_mc, rel=0.06)
    assert np.all(np.diff(stats.quantiles_s[0]) >= 0)


@pytest.mark.parametrize("model_cls", [MomentLatency, FourierLatency])
def test_a_spread_backlog_delay_matches_monte_carlo(model_cls):
    """A backlog that builds and drains delays the requests behind it by 0.2-1.0 s (uniform),
    not by its mean 0.6 s: the tail past the 1 s deadline comes from the long delays."""
    sc = load_scenario("default")
    args = [np.array(v, float) for v in CASES["backlog-stage1"]]
    lo, hi = 0.2, 1.0
    args[4][0] = 0.5 * (lo + hi)
    m2 = np.array([(lo * lo + lo * hi + hi * hi) / 3.0, 0.0, 0.0])
    m3 = np.array([(lo + hi) * (lo * lo + hi * hi) / 4.0, 0.0, 0.0])
    exit_p = np.array([s.exit_probability for s in sc.stages])
    weights = np.cumprod(np.r_[1.0, 1 - exit_p[:-1]]) * exit_p
    lat = sample_latencies(sc, *args, exit_weights=weights, size=200_000,
                           rng=np.random.default_rng(1),
                           backlog_halfwidth=np.array([0.5 * (hi - lo), 0.0, 0.0]))
    model = model_cls(sc)
    spread = model.compute(*(a[None] for a in args), weights[None],
                           backlog_delay_m2=m2[None], backlog_delay_m3=m3[None])
    fixed = model.compute(*(a[None] for a in args), weights[None])
    viol_mc = np.mean(lat > sc.slo_deadline_s)
    assert abs(spread.violation_probability[0] - viol_mc) <= 0.012
    assert spread.quantiles_s[0, 2] == pytest.approx(np.quantile(lat, 0.99), rel=0.08)
    # the fixed 0.6 s delay misses most of that tail
    assert fixed.violation_probability[0] < viol_mc - 0.02
    if model_cls is MomentLatency:
        with pytest.raises(ValueError, match="both or neither"):
            model.compute(*(a[None] for a in args), weights[None], backlog_delay_m2=m2[None])


def test_quantiles_beyond_the_span_are_capped():
    sc = load_scenario("default")
    zeros, ones = np.zeros((1, 3)), np.ones((1, 3))
    # every VM request waits 30 s behind an overload backlog at stage 1: beyond 16 deadlines
    stats = MomentLatency(sc).compute(zeros, zeros, zeros, ones, np.full((1, 3), 30.0), zeros,
                                      np.array([[1.0, 0, 0]]))
    assert stats.violation_probability[0] > 0.99
    assert stats.quantiles_s[0, 0] == pytest.approx(sc.latency_span * sc.slo_deadline_s)


@pytest.mark.parametrize("model", ["moments", "fourier"])
def test_interval_cdf_in_info_is_a_cdf_that_agrees_with_the_violations(model):
    """info latency_cdf (for pooled quantiles) is non-decreasing in [0, 1] on the grid, and at
    the deadline it is 1 - the violation probability (violations per completion, no drops)."""
    env = SerflowVectorEnv(4, scenario="default", latency_model=model)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    at_deadline = int(np.flatnonzero(CDF_GRID == 1.0)[0])
    for _ in range(6):
        info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[4]
        cdf = info["latency_cdf"]
        assert cdf.shape == (4, CDF_GRID.size)
        assert np.all((cdf >= 0) & (cdf <= 1)) and np.all(np.diff(cdf, axis=1) >= -1e-9)
        clean = (info["requests_dropped"] == 0) & (info["requests_completed"] > 0)
        late = info["slo_violations"][clean] / info["requests_completed"][clean]
        np.testing.assert_allclose(cdf[clean, at_deadline], 1 - late, atol=1e-6)


def test_grid_gets_a_point_past_each_latency_atom_and_presets_keep_theirs():
    """Deterministic service puts a step in the latency CDF at the no-wait path latency (the
    services plus the fixed transfers, summed by hand here); the grid gets a point just past
    it. The presets (log-normal service) have no atom: their grid is CDF_GRID's."""
    from serflow_env.latency import cdf_grid_s, latency_atoms_s, scenario_cdf_grid_s

    for name in ("default", "branchynet-resnet", "transformer-8"):
        sc = load_scenario(name)
        assert latency_atoms_s(sc).size == 0
        np.testing.assert_array_equal(scenario_cdf_grid_s(sc), cdf_grid_s(
            sc.slo_deadline_s, sc.latency_span * sc.slo_deadline_s))
    sc = load_scenario("default", **{f"stages.{i}.vm_service.distribution": "deterministic"
                                     for i in range(2)})
    link = sc.transfer.vm_to_vm.delay_s(sc.stages[0].activation_mb)
    means = [s.vm_service.mean_s for s in sc.stages]
    np.testing.assert_allclose(latency_atoms_s(sc), [means[0], means[0] + link + means[1]])
    grid = scenario_cdf_grid_s(sc)
    assert np.all(np.diff(grid) > 0) and 1.0 in grid  # sorted, the deadline kept
    for atom in latency_atoms_s(sc):
        assert np.min(np.abs(grid / atom - 1.0 - 1e-6)) < 1e-12
