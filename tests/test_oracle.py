"""The perfect-foresight oracle: its programme against brute force and HiGHS, its replay
against the env's bill, its measured cost against the heuristics, and its errors."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from agents import make_policy
from agents.oracle.bound import lp_bound, stage_bound
from agents.oracle.dp import solve, vm_targets
from agents.oracle.policy import plan_oracle
from agents.oracle.problem import build_problems
from serflow_env.scenario import load_scenario
from serflow_env.traces import Trace
from serflow_eval.rollout import rollout
from serflow_eval.runner import run_policies
from serflow_eval.simulators import make_vector_env

INTERVAL = 10.0


# ------------------------------------------------------------------ brute force, tiny instances
def fleet(targets, initial: int, boot: int, min_billed_s: float):
    """Serving VMs per interval and VM-seconds billed for a target sequence, VM by VM, written
    from the env card: launches and removals at steps, youngest removed first, a launch
    serving ``boot`` intervals later, billed max(lifetime, minimum) (reset VMs: lifetime)."""
    vms = [None] * initial  # launch step per VM, None for the VMs running at reset
    serving, billed = [], 0.0
    for t, target in enumerate(targets):
        while len(vms) > target:
            born = vms.pop()
            billed += t * INTERVAL if born is None else max((t - born) * INTERVAL, min_billed_s)
        vms += [t] * (target - len(vms))
        serving.append(sum(1 for born in vms if born is None or born <= t - boot))
    end = len(targets)
    billed += sum(end * INTERVAL if born is None else max((end - born) * INTERVAL, min_billed_s)
                  for born in vms)
    return serving, billed


def true_cost(targets, faas, vm_price_s: float, initial: int, boot: int, min_billed_s: float):
    """$ of a target sequence: the VMs' bill plus the function cost at the VMs serving."""
    serving, billed = fleet(targets, initial, boot, min_billed_s)
    return vm_price_s * billed + sum(faas[t][s] for t, s in enumerate(serving))


def brute_force(faas, top: int, vm_price_s: float, initial: int, boot: int, min_billed_s: float):
    steps = len(faas)
    return min(true_cost(seq, faas, vm_price_s, initial, boot, min_billed_s)
               for seq in itertools.product(range(top + 1), repeat=steps))


def tiny(rng: np.random.Generator, steps: int, top: int):
    """Function cost (T, top + 1) of random per-tick loads with 1..top VMs' room."""
    loads = rng.choice([0.0, 0.5, 1.5, 3.0], size=(steps, 4)) * rng.uniform(0.5, 1.5)
    room = np.arange(top + 1)[None, None, :]
    return np.maximum(loads[:, :, None] - room, 0.0).sum(axis=1) * rng.uniform(0.3, 2.0)


def dp(faas, top: int, vm_price_s: float, initial: int, boot: int):
    costs = (vm_price_s * INTERVAL * np.arange(top + 1))[None, :] + faas
    plan, objective = solve(costs[None], np.array([vm_price_s * INTERVAL * boot]), boot,
                            np.array([initial]))
    return plan, float(objective[0])


@pytest.mark.parametrize("boot", [0, 1, 2])
def test_dp_equals_brute_force_over_every_target_sequence(boot: int) -> None:
    rng = np.random.default_rng(boot)
    for case in range(6):
        steps, top = (6, 2) if case % 2 else (5, 3)
        initial = case % 3 if case % 3 <= top else 0
        faas = tiny(rng, steps, top)
        minimum = (boot + 1) * INTERVAL  # never binds for a VM that serves
        plan, objective = dp(faas, top, 0.1, initial, boot)
        best = brute_force(faas, top, 0.1, initial, boot, minimum)
        assert objective == pytest.approx(best, rel=1e-9, abs=1e-12)
        # its targets, replayed VM by VM, serve as planned and cost what it says
        targets = vm_targets(plan, boot, np.array([initial]))[0]
        assert targets.max() <= top
        assert fleet(targets, initial, boot, minimum)[0] == plan[0].tolist()
        assert true_cost(targets, faas, 0.1, initial, boot, minimum) \
            == pytest.approx(objective, rel=1e-9, abs=1e-12)


def test_dp_keeps_a_vm_idle_through_a_gap_shorter_than_a_boot() -> None:
    # one VM's worth of load, then nothing for `gap` intervals, then the load again: keeping
    # the VM costs gap VM-intervals, a relaunch costs boot (=3) VM-intervals; nothing assumed
    for gap, keep in ((2, True), (4, False)):
        load = [5.0, 5.0, 5.0, 5.0] + [0.0] * gap + [5.0, 5.0]
        faas = np.array([[x, 0.0] for x in load])  # one VM serves it all
        plan, _ = dp(faas, 1, 0.01, 0, 3)
        assert plan[0, :3].tolist() == [0, 0, 0]  # nothing can boot before interval 3
        idle = plan[0, 4: 4 + gap]
        assert bool(idle.min() == 1) is keep and plan[0, -2:].tolist() == [1, 1]


def test_min_billing_above_boot_plus_an_interval_is_bracketed() -> None:
    # min_billed 60 s with a 1-interval boot: a VM serving one interval lives 20 s but is
    # billed 60 s. The programme leaves that out (a lower bound); its targets' true bill is
    # an upper bound on the true optimum
    rng = np.random.default_rng(5)
    for _ in range(4):
        faas = tiny(rng, 6, 2) * 3.0
        plan, objective = dp(faas, 2, 0.1, 0, 1)
        best = brute_force(faas, 2, 0.1, 0, 1, 60.0)
        targets = vm_targets(plan, 1, np.array([0]))[0]
        assert objective <= best + 1e-12
        assert best <= true_cost(targets, faas, 0.1, 0, 1, 60.0) + 1e-12


def test_milp_equals_dp_and_lp_bounds_it() -> None:
    # HiGHS on the same model: the MILP's optimum is the DP's; the LP relaxation below it
    # (and here equal, as chords at integer counts leave the LP integral)
    scenario = load_scenario("branchynet-resnet", episode_steps=60)
    problems = build_problems(scenario, 0.85)
    plan = plan_oracle(scenario, 0.85)
    for k in range(problems.num_stages):
        assert stage_bound(problems, k, integer=True) == pytest.approx(plan.objective[k],
                                                                      rel=1e-7)
    scenario = load_scenario("default", **{"arrivals.trace": "traces/diurnal_2h.txt"},
                             episode_steps=720)
    plan = plan_oracle(scenario, 0.85)
    bound = lp_bound(plan.problems)
    assert np.all(bound <= plan.objective * (1 + 1e-9))
    assert np.all(bound >= plan.objective * (1 - 1e-6))


def test_expected_overflow_is_the_normal_excess() -> None:
    from agents.oracle.problem import expected_excess

    draws = np.random.default_rng(0).normal(3.0, 2.0, 1_000_000)
    for level in (0.0, 3.0, 5.0, 9.0, 40.0):
        want = np.maximum(draws - level, 0.0).mean()
        got = float(expected_excess(np.array(3.0), np.array(2.0), np.array(level)))
        assert got == pytest.approx(want, abs=4e-3)
    assert expected_excess(np.array([3.0, 3.0]), np.zeros(2), np.array([1.0, 5.0])).tolist() \
        == [2.0, 0.0]


# ------------------------------------------------------------------ replay against the env
def exact_trace(seconds: int = 1800) -> Trace:
    """An exact per-second trace with a burst every 5 minutes (so VMs come and go)."""
    t = np.arange(seconds)
    rate = 60 + 140 * ((t % 300) < 90) + 20 * np.sin(t / 37.0)
    return Trace(np.round(rate), 1.0, "exact", "bursts")


@pytest.mark.parametrize("simulator,steps,envs", [("fast", 180, 3), ("reference", 40, 2)])
def test_replay_bills_what_the_plan_bills_in_n_envs(simulator: str, steps: int,
                                                    envs: int) -> None:
    scenario = load_scenario("branchynet-resnet", episode_steps=steps,
                             **{"arrivals.trace": exact_trace()})
    policy = make_policy("oracle:u=0.8", scenario)
    plan = policy.plan
    assert plan.problems.min_billing_exact
    assert np.any(np.diff(plan.serving) > 0) and np.any(np.diff(plan.serving) < 0)
    env = make_vector_env(simulator, scenario, envs)
    vm_cost = np.zeros(envs)
    vm_seconds = np.zeros(envs)
    running = []
    for step in rollout(policy, env, steps, seed=1):
        vm_cost += step.info["cost_vm_usd"]
        vm_seconds += step.info["vm_seconds"]
        running.append(np.asarray(step.info["stage_vms_running"]))
    running = np.stack(running, axis=2)  # (N, K, T)
    assert np.array_equal(running, np.broadcast_to(plan.serving, running.shape))
    np.testing.assert_allclose(vm_cost, plan.vm_cost.sum(), rtol=1e-9)
    np.testing.assert_allclose(vm_cost, plan.billed_vm_cost.sum(), rtol=1e-9)
    price = np.array([s.vm_price_per_hour / 3600 for s in scenario.stages])
    np.testing.assert_allclose(vm_seconds, (plan.vm_cost / price).sum(), rtol=1e-9)


def test_replay_bills_the_minimum_where_it_exceeds_boot_plus_an_interval() -> None:
    scenario = load_scenario("branchynet-resnet", episode_steps=120,
                             **{"arrivals.trace": exact_trace(), "vm.boot_s": 10.0})
    policy = make_policy("oracle:u=0.8", scenario)
    plan = policy.plan
    assert not plan.problems.min_billing_exact
    ts = run_policies(["oracle:u=0.8"], scenario, [0], 120)
    assert ts["cost_vm_usd"].sum() == pytest.approx(plan.billed_vm_cost.sum(), rel=1e-9)
    assert plan.billed_vm_cost.sum() > plan.vm_cost.sum()  # short-lived VMs were launched


def test_share_mode_replays_the_plan() -> None:
    scenario = load_scenario("default", episode_steps=90, **{"routing.mode": "share"})
    policy = make_policy("oracle:u=0.7", scenario)
    ts = run_policies(["oracle:u=0.7"], scenario, [0], 90)
    assert ts["cost_vm_usd"].sum() == pytest.approx(policy.plan.vm_cost.sum(), rel=1e-9)
    assert policy.plan.serving.sum() > 0


# ------------------------------------------------------------------ against the heuristics
HEURISTICS = ("serflow", "libra", "faas-only")
# oracle points per trace (seed 0, 180 intervals): cheap ones at a moderate u, and ones whose
# large function weight avoids overflow bursts onto a pool gone cold (few violations). The
# default preset's is the closest call (oracle u=0.8: 5 % below serflow at 14 % fewer
# violations); on the WITS trace serflow sits on the oracle's curve (not tested here)
CASES = {
    "default preset (generated diurnal, Poisson)": (
        "default", {}, ("oracle:u=0.8", "oracle:u=0.95:faas_weight=10000")),
    "branchynet-resnet preset (generated MMPP, Poisson)": (
        "branchynet-resnet", {}, ("oracle:u=0.95:faas_weight=100",)),
    "branchynet-resnet, shipped flash crowd (exact counts)": (
        "branchynet-resnet", {"arrivals.trace": "traces/flash_crowd_1h.txt"},
        ("oracle:u=0.95:faas_weight=100",)),
}
SLOW_CASES = set(list(CASES)[1:])


@functools.cache
def measured(case: str):
    name, overrides, oracles = CASES[case]
    scenario = load_scenario(name, episode_steps=180, **overrides)
    ts = run_policies(list(HEURISTICS) + list(oracles), scenario, [0], 180)
    return ts.groupby("policy")[["cost_usd", "slo_violations"]].sum()


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES
                                  else c for c in CASES])
def test_oracle_never_costs_more_than_a_heuristic_at_no_more_violations(case: str) -> None:
    table = measured(case)
    oracles = table[table.index.str.startswith("oracle")]
    for heuristic in HEURISTICS:
        cost, violations = table.loc[heuristic]
        eligible = oracles[oracles["slo_violations"] <= violations]
        assert len(eligible), f"{case}: no oracle point at <= {heuristic}'s violations"
        assert eligible["cost_usd"].min() <= cost, (case, heuristic, table)


# ------------------------------------------------------------------ names and errors
def test_name_marks_it_future_knowing() -> None:
    from serflow_eval.labels import policy_labels

    scenario = load_scenario("default", episode_steps=20)
    assert make_policy("oracle", scenario).name == "oracle(u=0.85)"
    assert make_policy("oracle:u=0.7:faas_weight=4", scenario).name \
        == "oracle(u=0.7,faas_weight=4)"
    assert policy_labels(["serflow", "oracle:u=0.7"]) == {"serflow": "serflow",
                                                          "oracle:u=0.7": "oracle*:u=0.7"}


@pytest.mark.parametrize("spec,overrides,message", [
    ("oracle:u=0", {}, "u=0.0: the utilisation bound must lie in (0, 1]"),
    ("oracle:u=1.2", {}, "u=1.2: the utilisation bound must lie in (0, 1]"),
    ("oracle:faas_weight=0.5", {}, "faas_weight=0.5: allowed [1, 1e6]"),
    ("oracle:v=1", {}, "unknown parameter(s) ['v']"),
    ("oracle", {"arrivals.random_start": True}, "arrivals.random_start=true"),
    ("oracle", {"arrivals.time_warp": 2.0}, "arrivals.time_warp=2.0; allowed 1.0"),
    ("oracle", {"arrivals.trace": ["traces/sine_1h.txt", "traces/square_1h.txt"]},
     "2 traces (one drawn per episode)"),
    ("oracle", {"arrivals.trace": Trace(np.full(5, 3.0), 1.0, "exact")},
     "the trace lasts 5 s, shorter than one control interval (10 s)"),
    ("oracle", {"transfer.cross_service.price_per_gb": 0.01},
     "transfer price_per_gb differs by route"),
])
def test_clear_errors_where_it_is_built(spec: str, overrides: dict, message: str) -> None:
    scenario = load_scenario("default", episode_steps=20, **overrides)
    with pytest.raises(ValueError, match="oracle") as err:
        make_policy(spec, scenario)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_episode_started_elsewhere_is_refused() -> None:
    scenario = load_scenario("default", episode_steps=5,
                             **{"arrivals.trace": "traces/flash_crowd_1h.txt"})
    policy = make_policy("oracle", scenario)
    env = make_vector_env("fast", scenario, 1)
    with pytest.raises(ValueError, match="must replay the scenario's trace from its start"):
        list(rollout(policy, env, 5, seed=0, options={"start_s": 600}))
    assert len(list(rollout(policy, env, 5, seed=0))) == 5  # from the start it plays


def test_evaluate_refuses_random_start_with_the_oracle(tmp_path, capsys) -> None:
    import evaluate

    code = evaluate.main(["--policies", "oracle", "--random-start", "--episode-steps", "5",
                          "--seeds", "1", "--no-progress", "--out", str(tmp_path)])
    assert code == 2 and "arrivals.random_start=true" in capsys.readouterr().out
