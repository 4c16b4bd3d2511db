"""The oracle's planning problem: what the trace puts on every stage, and what each plan costs.

Built from a scenario whose episodes replay one trace from its start at its own pace; the
oracle knows that trace (a perfect-foresight bound, not a deployable controller). Per stage k
and control interval t it needs:

* the stage's requests per tick: the trace's arrivals of the tick (the count the env releases
  for an exact trace, the expected count for a rate trace) times the stage's reach at the
  scenario's exit probabilities (``prod_{j<k} (1 - p_j)``, interpolated in episode time where
  ``exit_drift.schedule`` is set). The realisations of the random exit drift
  (``exit_drift.volatility``) and of the binomial exits are *not* known to it (the exits
  enter only through their variance, below);
* ``overflow[k, t, s]``: expected requests running in functions in interval t with ``s`` VMs
  serving at the utilisation bound u. Cap mode (the env's per-tick cap): each tick the VMs
  take at most ``b = u * s * capacity * tick_s`` of the tick's count N, so
  ``sum_ticks E[(N - b)^+]``, N normal with the count's mean and variance (Poisson for a rate
  trace, binomial exits for an exact one), as the env's own expectation; share mode (one
  function share per interval, set from the known load): ``(L_t - u s c I)^+``;
* prices: one VM-interval ``vm_price_per_s * I``, a launch ``boot_intervals`` VM-intervals
  (the boot is billed), and one function request ``c_f,k`` (request fee plus GB-seconds of the
  mean billed duration at the stage's memory, as :mod:`agents.heuristics.profiling`),
  counted ``faas_weight`` times in the objective (1: the true price). Cold starts (their
  billed initialisation and latency) are *not* in the objective: the replay measures them.
  Transfer charges are a routing-independent constant where the three links share one price
  (every preset: 0); otherwise the stages do not decouple and the oracle refuses.

A VM launched at control step j serves from interval ``j + boot_intervals`` on
(``boot_intervals = ceil(boot_s / I)``; where ``boot_s`` is not a whole number of intervals it
already serves the end of the interval before, which the plan does not count on). It is billed
``max(lifetime, min_billed_s)``: every VM that serves at least one interval lives at least
``(boot_intervals + 1) I``, so where ``min_billed_s <= (boot_intervals + 1) I`` (every preset:
60 s against 110 s) the launch-plus-intervals charge of the plan is the bill exactly
(``min_billing_exact``); otherwise the plan's charge leaves out the minimum's excess over short
lives (a lower bound) and :func:`agents.oracle.dp.fleet_bill` gives the plan's true bill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from agents.heuristics.profiling import profile_stages
from serflow_env.params import Params, make_params
from serflow_env.scenario import Scenario

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: the largest overflow table (stages x intervals x VM counts) the oracle builds
MAX_TABLE = 200_000_000


@dataclass(frozen=True)
class StageProblems:
    """Every stage's planning data for one scenario and utilisation bound, arrays over (K, ...)."""

    u: float  # utilisation bound: VMs carry at most u of their capacity
    faas_weight: float  # the objective counts function requests at this multiple of c_f,k
    interval_s: float  # control interval I
    boot_intervals: int  # intervals from a launch to its first whole serving interval
    min_billed_s: float
    min_billing_exact: bool  # min_billed_s <= (boot_intervals + 1) * I
    max_vms: np.ndarray  # (K,) int
    initial_vms: np.ndarray  # (K,) int, running and past their billing minimum at reset
    vm_interval_cost: np.ndarray  # (K,) $ per VM per interval
    faas_cost_per_request: np.ndarray  # (K,) $ per request run in a function (warm)
    overflow: np.ndarray  # (K, T, S + 1) requests in functions with s serving VMs (nan > max)
    arrivals: np.ndarray  # (T,) requests arriving per interval (as the env releases them)
    exact_arrivals: bool  # exact trace counts (else a rate trace drawn as Poisson)
    stage_requests: np.ndarray  # (K, T) requests reaching each stage per interval (planned)
    transfer_cost: float  # $ of activation transfers over the episode (routing-independent)

    @property
    def num_stages(self) -> int:
        return int(self.max_vms.shape[0])

    @property
    def num_intervals(self) -> int:
        return int(self.arrivals.shape[0])

    @property
    def launch_cost(self) -> np.ndarray:
        """(K,) $ of one launch: its boot intervals, billed."""
        return self.vm_interval_cost * self.boot_intervals

    def interval_costs(self) -> np.ndarray:
        """(K, T, S + 1) $ of interval t with s VMs serving: the VMs plus the overflow in
        functions (inf above ``max_vms``)."""
        s = np.arange(self.overflow.shape[2], dtype=float)
        per_request = self.faas_weight * self.faas_cost_per_request
        cost = (self.vm_interval_cost[:, None, None] * s[None, None, :]
                + per_request[:, None, None] * self.overflow)
        return np.where(np.isnan(cost), np.inf, cost)


def _fail(message: str) -> None:
    raise ValueError(f"oracle: {message}")


def check_scenario(scenario: Scenario) -> None:
    """Raise a one-line ValueError where the oracle cannot know what the episodes replay."""
    arrivals = scenario.arrivals
    if isinstance(arrivals.trace, (list, tuple)) and len(arrivals.trace) != 1:
        _fail(f"arrivals.trace: {len(arrivals.trace)} traces (one drawn per episode); the "
              "oracle plans one trace")
    if arrivals.random_start:
        _fail("arrivals.random_start=true: the oracle plans the trace replayed from its start "
              "and cannot know a random one (do not use --random-start); allowed false")
    if arrivals.time_warp != 1.0:
        _fail(f"arrivals.time_warp={arrivals.time_warp!r}; allowed 1.0")
    links = scenario.transfer
    prices = {links.vm_to_vm.price_per_gb, links.cross_service.price_per_gb,
              links.faas_to_faas.price_per_gb}
    if len(prices) > 1:
        _fail("transfer price_per_gb differs by route (vm_to_vm, cross_service, faas_to_faas = "
              f"{links.vm_to_vm.price_per_gb}, {links.cross_service.price_per_gb}, "
              f"{links.faas_to_faas.price_per_gb}); the stages decouple only with one price")


def _tick_arrivals(params: Params, steps: int) -> tuple[np.ndarray, bool]:
    """Requests per tick (T, ticks) of the episode from the trace start, as the env releases
    them (floor differences of the cumulative count for exact traces, expectations for rate
    traces), wrapping past the trace's end like the env."""
    table = params.traces
    if table.lengths[0] < params.control_interval_s:
        _fail(f"the trace lasts {table.lengths[0]} s, shorter than one control interval "
              f"({params.control_interval_s:g} s)")
    ticks = params.ticks_per_step
    positions = np.arange(steps * ticks + 1) * params.dt
    cum = table.cumulative_at(np.zeros(positions.shape, dtype=np.int64), positions)
    exact = bool(table.exact[0])
    counts = np.diff(np.floor(cum + 1e-9)) if exact else np.diff(cum)
    return counts.reshape(steps, ticks), exact


def _reach(params: Params, steps: int) -> np.ndarray:
    """(T, K) share of requests reaching each stage in each interval, at the scenario's exit
    probabilities (the schedule's at the interval start, as the env evaluates them)."""
    if len(params.schedule_t) == 1:
        return np.broadcast_to(params.base_reach, (steps, params.num_stages)).copy()
    times = np.arange(steps) * params.control_interval_s
    logit = np.stack([np.interp(times, params.schedule_t, params.schedule_logit[:, j])
                      for j in range(params.num_stages - 1)], axis=1)
    exits = 1.0 / (1.0 + np.exp(-logit))
    return np.cumprod(np.concatenate([np.ones((steps, 1)), 1.0 - exits], axis=1), axis=1)


def expected_excess(mean: np.ndarray, std: np.ndarray, level: np.ndarray) -> np.ndarray:
    """E[(X - level)^+] for X normal with ``mean`` and ``std`` (std 0: a point mass); the
    normal tail is evaluated only within 8 standard deviations of the level (beyond, the
    excess is ``(mean - level)^+`` to within 1e-16 std)."""
    mean, std, level = np.broadcast_arrays(mean, std, level)
    diff = mean - level
    out = np.array(np.maximum(diff, 0.0))
    near = np.abs(diff) < 8.0 * std
    if near.any():
        sd = std[near]
        d = diff[near] / sd
        out[near] = np.maximum(diff[near] * ndtr(d) + sd * np.exp(-0.5 * d * d)
                               * _INV_SQRT_2PI, 0.0)
    return out


def overflow_table(loads: np.ndarray, spread: np.ndarray, per_vm: np.ndarray,
                   max_vms: np.ndarray, per_tick: bool) -> np.ndarray:
    """(K, T, S + 1) expected requests beyond what s VMs take (nan above ``max_vms``).

    ``loads`` (K, T, ticks) are expected requests per tick and ``spread`` their standard
    deviations; ``per_vm`` (K,) is what one VM takes per tick. ``per_tick`` (cap mode): the
    VMs take at most their budget of each tick's count, so the overflow is the count's
    expected excess over it, ``E[(N - u s c dt)^+]`` (a normal law for N, as the env's
    :func:`serflow_env.rate_cap.expected_capped`); otherwise (share mode) the VMs' share is
    set from the interval's expected load, so the function requests are
    ``(L_t - u s c I)^+`` in expectation.
    """
    k, steps, ticks = loads.shape
    width = int(max_vms.max()) + 1
    if k * steps * width * (ticks if per_tick else 1) > MAX_TABLE:
        _fail(f"{steps} intervals x {ticks} ticks x {width} VM counts x {k} stages is too "
              "large a table; shorten episode_steps")
    s = np.arange(width, dtype=float)
    out = np.empty((k, steps, width))
    for i in range(k):
        room = per_vm[i] * s
        if per_tick:
            out[i] = expected_excess(loads[i][:, :, None], spread[i][:, :, None],
                                     room).sum(axis=1)
        else:
            out[i] = np.maximum(loads[i].sum(axis=1)[:, None] - ticks * room, 0.0)
        out[i][:, max_vms[i] + 1:] = np.nan
    return out


def build_problems(scenario: Scenario, u: float, faas_weight: float = 1.0) -> StageProblems:
    """The planning data of every stage of ``scenario`` at utilisation bound ``u``, counting
    function requests at ``faas_weight`` times their price in the objective."""
    if isinstance(u, bool) or not isinstance(u, (int, float)) or not 0.0 < u <= 1.0:
        _fail(f"u={u!r}: the utilisation bound must lie in (0, 1]")
    if isinstance(faas_weight, bool) or not isinstance(faas_weight, (int, float)) \
            or not 1.0 <= faas_weight <= 1e6:
        _fail(f"faas_weight={faas_weight!r}: allowed [1, 1e6]")
    check_scenario(scenario)
    steps = scenario.episode_steps
    params = make_params(scenario)
    arrivals, exact = _tick_arrivals(params, steps)
    reach = _reach(params, steps)
    profile = profile_stages(scenario)
    interval = scenario.control_interval_s
    loads = reach.T[:, :, None] * arrivals[None, :, :]  # (K, T, ticks)
    # per-tick counts: Poisson for a rate trace (thinned by the exits: still Poisson); for an
    # exact trace the arrivals are fixed and the exits binomial
    variance = loads if not exact else loads * (1.0 - reach.T[:, :, None])
    per_vm = u * profile.vm_capacity_rps * params.dt
    overflow = overflow_table(loads, np.sqrt(variance), per_vm, profile.max_vms,
                              params.cap_routing)
    boot = math.ceil(params.boot_ticks / params.ticks_per_step)
    link_price = scenario.transfer.vm_to_vm.price_per_gb  # one price (check_scenario)
    continued = loads.sum(axis=2)[1:] if profile.num_stages > 1 else np.zeros((0, steps))
    transfer = float((continued.sum(axis=1) * params.transfer_gb).sum() * link_price)
    return StageProblems(
        u=float(u),
        faas_weight=float(faas_weight),
        interval_s=interval,
        boot_intervals=boot,
        min_billed_s=scenario.vm.min_billed_s,
        min_billing_exact=scenario.vm.min_billed_s <= (boot + 1) * interval + 1e-9,
        max_vms=profile.max_vms.copy(),
        initial_vms=params.initial_vms.copy(),
        vm_interval_cost=profile.vm_price_per_s * interval,
        faas_cost_per_request=profile.faas_cost_per_request,
        overflow=overflow,
        arrivals=arrivals.sum(axis=1),
        exact_arrivals=exact,
        stage_requests=loads.sum(axis=2),
        transfer_cost=transfer,
    )
