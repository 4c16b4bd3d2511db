"""The perfect-foresight optimum (``oracle:u=0.85``): the cheapest plan that knows the trace,
replayed as a policy so that its cost and violations are measured, not read off its objective.

FUTURE-KNOWING: it reads the whole trace of the episode ahead, so it is a bound for what a
controller could reach at the same utilisation bound, never a deployable controller. Its
name (``oracle(u=0.85)``) and its label in tables (``oracle*``) say so.

Per stage (stages decouple given exit fractions; see :mod:`agents.oracle.problem` for what
the plan knows and what its objective counts, :mod:`agents.oracle.dp` for the programme),
the plan fixes the VMs serving each interval; the replay sets each step's VM target to those
plus the VMs booting for later intervals, so every launch happens exactly ``boot_intervals``
steps before its VM is needed, and routes as the plan assumed: in cap mode the cap is ``u``
(the VMs take at most u of their capacity each tick, the rest runs in functions at once); in
share mode the function share is what leaves the planned VMs at most u of their capacity
over the interval's known load. Every env of a vector env replays the same plan; episodes must
start at the trace start together (all do without ``--random-start``/``start_s``). Each step
checks the last interval's arrivals against the plan's and raises where they differ, so an
episode started elsewhere is refused at the first interval whose traffic differs (where the
traffic is the same, the plan is still right).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from agents.heuristics.profiling import profile_stages
from agents.heuristics.spec_args import factory
from agents.oracle.dp import fleet_bill, launches, solve, vm_targets
from agents.oracle.problem import StageProblems, build_problems
from agents.policy import Info, Policy, register_policy
from serflow_env.scenario import Scenario

POISSON_SIGMAS = 8.0  # a rate trace's interval count may stray this many std from plan


@dataclass(frozen=True)
class OraclePlan:
    """The cheapest plan of every stage for one scenario and utilisation bound, and its costs.

    ``objective`` counts function requests at ``faas_weight`` times their price. ``vm_cost``
    is the programme's VM charge (serving intervals plus billed boots), equal to
    ``billed_vm_cost`` (each VM's ``max(lifetime, min_billed_s)``, VM by VM) where
    ``problems.min_billing_exact``; otherwise (at ``faas_weight`` 1) ``objective`` is a lower
    bound on the optimum and ``billed_vm_cost + faas_cost`` what this plan costs (an upper
    bound).
    """

    problems: StageProblems
    serving: np.ndarray  # (K, T) VMs serving in each interval
    targets: np.ndarray  # (K, T) VM targets (running + booting) set at each step
    objective: np.ndarray  # (K,) the programme's optimum, $
    vm_cost: np.ndarray  # (K,) its VM part, $
    faas_cost: np.ndarray  # (K,) its function part (warm, no cold starts), $
    billed_vm_cost: np.ndarray  # (K,) $ the VMs of the targets are billed, VM by VM
    solve_seconds: float  # the programme's wall time (all stages)


def plan_oracle(scenario: Scenario, u: float = 0.85, faas_weight: float = 1.0) -> OraclePlan:
    """Solve the oracle's programme for ``scenario`` at utilisation bound ``u``, function
    requests weighted ``faas_weight`` in the objective."""
    problems = build_problems(scenario, u, faas_weight)
    costs = problems.interval_costs()
    started = time.perf_counter()
    serving, objective = solve(costs, problems.launch_cost, problems.boot_intervals,
                               problems.initial_vms)
    elapsed = time.perf_counter() - started
    k, steps = serving.shape
    targets = vm_targets(serving, problems.boot_intervals, problems.initial_vms)
    over = problems.max_vms[:, None] < targets
    if over.any():  # an optimal plan never needs it (see agents.oracle.dp)
        stage, step = np.argwhere(over)[0]
        raise RuntimeError(f"oracle: stage {stage + 1} needs {targets[stage, step]} VMs "
                           f"at step {step}, above max_vms={problems.max_vms[stage]}")
    rises = launches(serving, problems.initial_vms)
    vm_cost = problems.vm_interval_cost * (serving.sum(axis=1) + problems.boot_intervals
                                           * rises.sum(axis=1))
    faas = problems.overflow[np.arange(k)[:, None], np.arange(steps)[None, :], serving]
    billed = np.array([fleet_bill(targets[i], int(problems.initial_vms[i]),
                                  problems.boot_intervals, problems.min_billed_s,
                                  problems.interval_s)[1] for i in range(k)])
    return OraclePlan(
        problems=problems, serving=serving, targets=targets, objective=objective,
        vm_cost=vm_cost, faas_cost=faas.sum(axis=1) * problems.faas_cost_per_request,
        billed_vm_cost=billed * problems.vm_interval_cost / problems.interval_s,
        solve_seconds=elapsed)


class Oracle(Policy):
    """Replays the perfect-foresight plan (FUTURE-KNOWING; see the module docstring).

    Args (spec ``oracle:u=0.85:faas_weight=4`` or keywords of ``make_policy``):
        u: utilisation bound in (0, 1]: the VMs carry at most u of their capacity (0.85).
        faas_weight: the objective counts each function request at this multiple of its
            price (1: the true prices; [1, 1e6]). The plan is then the cheapest among those
            sending at most as many requests to functions as it does (a Lagrangian weight):
            fewer overflow bursts, so fewer cold starts on a pool gone cold, at a higher cost.
            With ``u``, it traces the oracle's cost-vs-violation curve.
    """

    name = "oracle"
    routing_modes = ("cap", "share")

    def __init__(self, scenario: Scenario, u: float = 0.85, faas_weight: float = 1.0) -> None:
        super().__init__(scenario)
        self.plan = plan_oracle(scenario, u, faas_weight)
        self.u = self.plan.problems.u
        weight = self.plan.problems.faas_weight
        self.name = f"oracle(u={self.u:g}" + (f",faas_weight={weight:g})" if weight != 1 else ")")
        self.steps = self.plan.problems.num_intervals
        capacity = self.u * self.plan.problems.interval_s \
            * profile_stages(scenario).vm_capacity_rps
        room = self.plan.serving * capacity[:, None]  # (K, T) requests the VMs may take
        load = self.plan.problems.stage_requests
        share = np.where(load > 0, 1.0 - np.minimum(room / np.maximum(load, 1e-12), 1.0),
                         np.where(self.plan.serving > 0, 0.0, 1.0))
        self.routing = np.full(room.shape, self.u) if self.cap_routing else share
        self.step = 0

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self.step = 0

    def _check_arrivals(self, info: Info) -> None:
        """Raise if the last interval's arrivals are not the plan's (another start or trace):
        exactly for an exact trace, within 8 standard deviations (plus 10) of a Poisson count
        for a rate trace."""
        last = (self.step - 1) % self.steps
        seen = np.asarray(info["requests_arrived"], dtype=float)
        want = float(self.plan.problems.arrivals[last])
        slack = 1e-6 if self.plan.problems.exact_arrivals \
            else POISSON_SIGMAS * np.sqrt(want) + 10.0
        bad = np.abs(seen - want) > slack
        if bad.any():
            env = int(np.argmax(bad))
            raise ValueError(
                f"{self.name}: {seen[env]:.0f} requests arrived in env {env} in interval "
                f"{last}, the plan's trace has {want:.0f}: episodes must replay the scenario's "
                "trace from its start (no start_s/--start-s reset option)")

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        n = obs.shape[0]
        if self.num_envs != n:
            self.reset(n)
        if info is not None:
            self._check_arrivals(info)
        t = self.step % self.steps
        self.step += 1
        targets = np.tile(self.plan.targets[:, t], (n, 1))
        return self.encode(targets, np.tile(self.routing[:, t], (n, 1)))


register_policy("oracle", factory(Oracle, "oracle", {"u": float, "faas_weight": float}))
