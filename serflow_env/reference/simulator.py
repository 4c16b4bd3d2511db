"""Per-request discrete-event simulator of one SERFLOW environment (heap-based event loop).

Every request is an individual with its own arrival time, route, waits, service times, cold
starts, transfers and exit decisions; nothing is a count or a fluid. It simulates the same
scenario as the fast model (``serflow_env.dynamics``) and takes the same decisions (per control
interval: VM targets and the routing, decoded by ``routing.decode_action``):

* **Routing**, share mode: at each stage a weighted round-robin load balancer sends the chosen
  share of the requests to functions (every request adds the share to a per-stage credit; a
  credit of 1 buys one function request), the rest to the stage's VM pool. Cap mode: the
  first requests of each tick at a stage go to its VM pool, up to the tick's allowance
  (:func:`serflow_env.rate_cap.cap_allowance` of the cap times the capacity of the VMs
  running at the tick's start, the fraction carried), the rest to functions. Either way, with
  no running VM at the stage every request goes to functions. The route of stage k+1 is
  chosen when stage k finishes (counted in the tick where it finishes).
* **VM pool**: one FIFO queue over ``running VMs * slots_per_vm`` servers. A request that finds
  ``queue_limit_per_slot * servers`` waiting is dropped. VMs: see :mod:`.fleet`. When a stage
  loses its last running VM, its waiting requests go to functions.
* **Functions**: one pool of containers per stage. A request takes the most recently used
  idle container (so surplus containers age out), else starts a new one with a cold start drawn
  from ``faas.cold_start``. A container idle for more than ``keep_alive_s`` is reclaimed. The
  account concurrency limit counts every executing or initialising container of all stages; a
  request that finds it reached is throttled (dropped). Billed duration: init + service rounded
  up to ``billing_granularity_s``, times memory, plus the per-request fee.
* **Transfers**: going on from stage k to k+1 adds ``Link.delay_s(activation_mb)`` of the link
  for the route pair and its $/GB charge.
* **Exits**: after each stage a request exits with the interval's exit probability (the
  scenario's schedule evaluated at the interval start plus the drift, as in the fast model).
* **SLO**: a completed request is late when its latency exceeds ``slo_deadline_s``; dropped
  and throttled requests violate it too.

Why a heap and not SimPy: on the same M/M/4 case a hand-written heap loop simulates
20-30x more customers per second than SimPy processes with a ``simpy.Resource``
(``benchmarks/bench_reference.py`` measures both every run), and the model needs nothing SimPy
adds (no process interrupts; its shared resources are counters).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque

import numpy as np

from serflow_env.latency import QUANTILES
from serflow_env.params import Params
from serflow_env.rate_cap import cap_allowance, idle_faas_share, tick_budget
from serflow_env.reference.arrivals import arrival_times
from serflow_env.reference.fleet import VmFleet
from serflow_env.reference.samplers import Draws, service_draws, uniform_draws
from serflow_env.scenario import Scenario

VM, FAAS = 0, 1
ENTER, VM_DONE, FAAS_DONE, BOOT = 0, 1, 2, 3
INF = math.inf


class RequestSimulator:
    """One environment, request by request; :meth:`step` simulates one control interval."""

    def __init__(self, scenario: Scenario, params: Params,
                 streams: dict[str, np.random.Generator]) -> None:
        """``params`` must be ``make_params(scenario)``; the scenario gives the service-time
        distributions each request draws from."""
        sc = self.scenario = scenario
        self.params = params
        self.k = k = params.num_stages
        self.interval_s = sc.control_interval_s
        self.tick_s = sc.tick_s
        self.ticks = sc.ticks_per_step
        self.deadline_s = sc.slo_deadline_s
        self.vm_mean_s = [s.vm_service.mean_s for s in sc.stages]
        self.qlimit = [s.queue_limit_per_slot for s in sc.stages]
        self.gb = [s.faas_memory_mb / 1024.0 for s in sc.stages]
        self.keep_alive_s = sc.faas.keep_alive_s
        self.conc_limit = sc.faas.concurrency_limit
        self.gran_s = sc.faas.billing_granularity_s
        links = sc.transfer
        pairs = ((links.vm_to_vm, links.cross_service), (links.cross_service, links.faas_to_faas))
        self.delay = [[[pairs[a][b].delay_s(s.activation_mb) for b in (VM, FAAS)]
                       for a in (VM, FAAS)] for s in sc.stages[:-1]]
        self.transfer_usd = [[[pairs[a][b].price_per_gb * s.activation_mb / 1024.0
                               for b in (VM, FAAS)] for a in (VM, FAAS)]
                             for s in sc.stages[:-1]]
        self.fleets = [VmFleet(s.slots_per_vm, sc.vm.boot_s, sc.vm.min_billed_s)
                       for s in sc.stages]
        self.cap_mode = params.cap_routing
        self.allow: list[list[int]] = [[0] * self.ticks for _ in range(k)]  # cap mode, per tick
        self.tick = 0  # the tick being simulated (cap mode)
        self.wait_totals = np.zeros((k, 3))  # per stage: VM requests started, waited, wait sum
        self.episode_latencies: list[float] = []
        self.last_episode_latencies = np.empty(0)
        self.set_streams(streams)
        self.reset(0, 0.0)

    def set_streams(self, streams: dict[str, np.random.Generator]) -> None:
        """Use these generators from now on: "arrivals" (times within ticks), "exits" and
        "service" (service and cold-start times)."""
        sc = self.scenario
        self.rng_arrivals = streams["arrivals"]
        # one child generator per distribution, so that drawing from one never shifts another
        children = streams["service"].spawn(2 * self.k + 1)
        self.vm_draws: list[Draws] = [service_draws(s.vm_service, rng)
                                      for s, rng in zip(sc.stages, children)]
        self.faas_draws: list[Draws] = [service_draws(s.faas_service_time, rng)
                                        for s, rng in zip(sc.stages, children[self.k:])]
        self.cold_draws = service_draws(sc.faas.cold_start, children[-1])
        self.exit_draws = uniform_draws(streams["exits"])

    # ------------------------------------------------------------------ episode state
    def reset(self, trace_idx: int, start_s: float) -> None:
        """Start a new episode at trace ``trace_idx``, position ``start_s`` (trace seconds)."""
        p, k = self.params, self.k
        self.trace_idx, self.start_s = int(trace_idx), float(start_s)
        self.t = 0.0
        self.heap: list[tuple] = []
        self.seq = itertools.count()
        for fleet, stage in zip(self.fleets, self.scenario.stages):
            fleet.reset(stage.initial_vms)
        self.servers = [f.servers for f in self.fleets]
        self.busy = [0] * k
        self.queue: list[deque] = [deque() for _ in range(k)]
        self.carry = [0.0] * k  # round-robin credit (share), the cap's fraction (cap)
        self.idle: list[deque] = [deque() for _ in range(k)]  # idle-since times, oldest left
        self.fbusy = [0] * k
        self.inflight = 0
        if p.prewarm:  # the fast model's rule: containers for the first second's traffic
            table = p.traces
            idx = np.array([self.trace_idx])
            first = float((table.cumulative_at(idx, np.array([self.start_s + 1.0]))
                           - table.cumulative_at(idx, np.array([self.start_s])))[0])
            conc = first * p.base_reach * p.faas_mean_s
            need = np.ceil(conc + p.headroom * np.sqrt(conc)).astype(int)
            self.idle = [deque([0.0] * int(n)) for n in need]
        self.shares = [0.0] * k
        self.probs = [1.0] * k
        self._arrivals: list[float] = []
        self._ai = 0
        self.total_arrived = self.total_completed = self.total_dropped = 0
        self.last_episode_latencies = np.asarray(self.episode_latencies)
        self.episode_latencies = []
        self._clear_interval()

    def _clear_interval(self) -> None:
        k = self.k
        self.stage_in = [0] * k
        self.adm_vm = [0] * k
        self.adm_faas = [0] * k
        self.cold = [0] * k
        self.wait_n = [0] * k
        self.wait_pos = [0] * k
        self.wait_sum = [0.0] * k
        self.srv_area = [0.0] * k
        self.warm_sum = [0.0] * k
        self.gb_s = 0.0
        self.transfer_cost = 0.0
        self.dropped = 0
        self.throttled = 0
        self.latencies: list[float] = []

    # ------------------------------------------------------------------ request handling
    def _push(self, t: float, kind: int, k: int, a: float, b: int) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), kind, k, a, b))

    def _route(self, k: int) -> int:
        """VM or function for the next request of stage k: the tick's cap allowance (cap mode)
        or the weighted round-robin (share mode)."""
        if self.servers[k] == 0:
            return FAAS
        if self.cap_mode:
            left = self.allow[k]
            if left[self.tick] > 0:
                left[self.tick] -= 1
                return VM
            return FAAS
        credit = self.carry[k] + self.shares[k]
        if credit >= 1.0 - 1e-9:
            self.carry[k] = credit - 1.0
            return FAAS
        self.carry[k] = credit
        return VM

    def _to_vm(self, t: float, k: int, arrival: float) -> None:
        servers = self.servers[k]
        if servers == 0:  # the pool lost its VMs while the request was in transit
            self._invoke(t, k, arrival)
            return
        if self.busy[k] < servers:
            self.busy[k] += 1
            self.adm_vm[k] += 1
            self.wait_n[k] += 1
            self._push(t + self.vm_draws[k].take(), VM_DONE, k, arrival, 0)
            return
        queue = self.queue[k]
        if len(queue) >= self.qlimit[k] * servers:
            self.dropped += 1
            self.total_dropped += 1
            return
        queue.append((arrival, t))
        self.adm_vm[k] += 1

    def _start_queued(self, t: float, k: int) -> None:
        queue = self.queue[k]
        while queue and self.busy[k] < self.servers[k]:
            arrival, since = queue.popleft()
            self.busy[k] += 1
            self.wait_n[k] += 1
            self.wait_pos[k] += 1
            self.wait_sum[k] += t - since
            self._push(t + self.vm_draws[k].take(), VM_DONE, k, arrival, 0)

    def _invoke(self, t: float, k: int, arrival: float) -> None:
        """Run stage k of a request in a function (or throttle it)."""
        if self.inflight >= self.conc_limit:
            self.throttled += 1
            self.total_dropped += 1
            return
        idle = self.idle[k]
        oldest_alive = t - self.keep_alive_s
        while idle and idle[0] < oldest_alive:
            idle.popleft()
        if idle:
            idle.pop()
            duration = self.faas_draws[k].take()
        else:
            duration = self.cold_draws.take() + self.faas_draws[k].take()
            self.cold[k] += 1
        self.inflight += 1
        self.fbusy[k] += 1
        self.adm_faas[k] += 1
        self.gb_s += math.ceil(duration / self.gran_s - 1e-9) * self.gran_s * self.gb[k]
        self._push(t + duration, FAAS_DONE, k, arrival, 0)

    def _finish_stage(self, t: float, k: int, arrival: float, route: int) -> None:
        """After stage k: exit, or transfer to stage k + 1 on the route chosen now."""
        if k == self.k - 1 or self.exit_draws.take() < self.probs[k]:
            self.latencies.append(t - arrival)
            self.total_completed += 1
            return
        nxt = self._route(k + 1)
        self.transfer_cost += self.transfer_usd[k][route][nxt]
        self._push(t + self.delay[k][route][nxt], ENTER, k + 1, arrival, nxt)

    def _enter(self, t: float, k: int, arrival: float, route: int) -> None:
        self.stage_in[k] += 1
        if route == VM:
            self._to_vm(t, k, arrival)
        else:
            self._invoke(t, k, arrival)

    def _advance(self, t_end: float) -> None:
        """Process every event and arrival before ``t_end``, in time order."""
        heap, arrivals, ai, n = self.heap, self._arrivals, self._ai, len(self._arrivals)
        pop = heapq.heappop
        while True:
            ta = arrivals[ai] if ai < n else INF
            if heap and heap[0][0] <= ta:
                if heap[0][0] >= t_end:
                    break
                t, _, kind, k, a, b = pop(heap)
                if kind == VM_DONE:
                    self.busy[k] -= 1
                    if self.queue[k]:
                        self._start_queued(t, k)
                    self._finish_stage(t, k, a, VM)
                elif kind == FAAS_DONE:
                    self.inflight -= 1
                    self.fbusy[k] -= 1
                    self.idle[k].append(t)
                    self._finish_stage(t, k, a, FAAS)
                elif kind == ENTER:
                    self._enter(t, k, a, b)
                else:  # BOOT
                    if self.fleets[k].boot(b):
                        self.servers[k] = self.fleets[k].servers
                        self.srv_area[k] += self.fleets[k].slots * (self._t1 - t)
                        self._start_queued(t, k)
            elif ta < t_end:
                ai += 1
                self._enter(ta, 0, ta, self._route(0))
            else:
                break
        self._ai = ai

    # ------------------------------------------------------------------ control interval
    def step(self, targets: np.ndarray, routing: np.ndarray, probs: np.ndarray,
             positions: np.ndarray, counts: np.ndarray) -> dict:
        """Simulate one control interval under VM ``targets`` (K,) and ``routing`` (K,)
        (function shares, or VM rate caps in cap mode) with exit probabilities ``probs`` (K,),
        ``counts`` (ticks,) requests arriving in the ticks whose boundaries are at trace
        ``positions`` (ticks + 1,) (see :mod:`.arrivals`); returns the interval's outputs."""
        p, k = self.params, self.k
        t0 = self.t
        t1 = self._t1 = t0 + self.interval_s
        self._clear_interval()
        self.shares = [float(x) for x in routing]
        self.probs = [float(x) for x in probs]
        for i, fleet in enumerate(self.fleets):
            fleet.apply_target(int(targets[i]), t0,
                               lambda when, vm_id, i=i: self._push(when, BOOT, i, 0.0, vm_id))
            self.servers[i] = fleet.servers
            if self.servers[i] == 0 and self.queue[i]:  # no VM left: waiting requests move
                waiting, self.queue[i] = list(self.queue[i]), deque()
                for arrival, _ in waiting:
                    self._invoke(t0, i, arrival)
            self.srv_area[i] = self.servers[i] * self.interval_s
        if self.cap_mode:
            self._allowances(t0)
        times = arrival_times(p.traces, self.trace_idx, positions, counts, t0, p.time_warp,
                              self.rng_arrivals)
        self._arrivals, self._ai = times.tolist(), 0
        for j in range(1, self.ticks + 1):
            end = t1 if j == self.ticks else t0 + j * self.tick_s
            self.tick = j - 1
            self._advance(end)
            for i in range(k):  # live containers at the tick's end
                idle = self.idle[i]
                while idle and idle[0] < end - self.keep_alive_s:
                    idle.popleft()
                self.warm_sum[i] += self.fbusy[i] + len(idle)
        self.t = t1
        return self._outputs(t1, counts)

    def _allowances(self, t0: float) -> None:
        """Cap mode: each stage's VM allowance per tick of the interval, from the VMs running
        at each tick's start (a VM counts from the tick its boot has completed by, as in the
        fast model), computed by the fast model's own functions."""
        p, ticks = self.params, self.ticks
        starts = t0 + self.tick_s * np.arange(ticks)
        for i, fleet in enumerate(self.fleets):
            ready = np.array([vm[0] + fleet.boot_s for vm in fleet.booting.values()])
            booted = (ready[None, :] <= starts[:, None] + 1e-6).sum(axis=1) if ready.size \
                else np.zeros(ticks, dtype=np.int64)
            servers = ((len(fleet.running) + booted) * fleet.slots).astype(np.float64)
            budget = tick_budget(p, i, np.array([self.shares[i]]), servers[:, None])
            allow, carry = cap_allowance(budget, np.array([self.carry[i]]))
            self.allow[i] = [int(x) for x in allow[:, 0]]
            self.carry[i] = float(carry[0])

    def _outputs(self, t1: float, tick_counts: np.ndarray) -> dict:
        p = self.params
        arrived = int(tick_counts.sum())
        self.total_arrived += arrived
        vm_s = np.array([f.take_billed(t1) for f in self.fleets])
        lat = np.asarray(self.latencies)
        self.episode_latencies.extend(self.latencies)
        completed = lat.size
        late = int(np.count_nonzero(lat > self.deadline_s))
        quantiles = np.quantile(lat, QUANTILES) if completed else np.zeros(len(QUANTILES))
        grid = p.latency.cdf_grid_s  # the empirical CDF where the fast model gives its own
        cdf = (np.searchsorted(np.sort(lat), grid, side="right") / completed if completed
               else np.zeros(grid.size))
        adm_vm, adm_faas = np.array(self.adm_vm, float), np.array(self.adm_faas, float)
        handled = adm_vm + adm_faas
        wait_n = np.array(self.wait_n, float)
        srv = np.array(self.srv_area)
        self.wait_totals += np.column_stack([wait_n, self.wait_pos, self.wait_sum])
        cost_vm = float(np.sum(vm_s * p.vm_price_per_s))
        cost_faas = self.gb_s * p.price_gb_s + float(adm_faas.sum()) * p.price_request
        rates = tick_counts / self.tick_s
        running = np.array([len(f.running) for f in self.fleets], float)
        idle_share = (idle_faas_share(np.array(self.shares), running) if self.cap_mode
                      else np.array(self.shares))
        return {
            "cost": cost_vm + cost_faas + self.transfer_cost,
            "cost_vm": cost_vm,
            "cost_faas": cost_faas,
            "cost_transfer": self.transfer_cost,
            "vm_seconds": float(vm_s.sum()),
            "arrived": arrived,
            "completed": completed,
            "dropped": self.dropped,
            "throttled": self.throttled,
            "in_system": self.total_arrived - self.total_completed - self.total_dropped,
            "violations": late + self.dropped + self.throttled,
            "late": late,
            "latency_quantiles": quantiles,
            "latency_cdf": cdf,
            "rate_mean": float(rates.mean()),
            "rate_std": float(rates.std()),
            "stage_arrivals": np.array(self.stage_in, float),
            "served_vm": adm_vm,
            "served_faas": adm_faas,
            "faas_share": np.where(handled > 0, adm_faas / np.maximum(handled, 1), idle_share),
            "cold_starts": np.array(self.cold, float),
            "queue": np.array([len(q) for q in self.queue], float),
            "wait_probability": np.where(wait_n > 0, np.array(self.wait_pos) /
                                         np.maximum(wait_n, 1), 0.0),
            "wait_mean_s": np.where(wait_n > 0, np.array(self.wait_sum) /
                                    np.maximum(wait_n, 1), 0.0),
            "utilisation": np.where(srv > 0, np.minimum(
                adm_vm * np.array(self.vm_mean_s) / np.maximum(srv, 1e-12), 1.0), 0.0),
            "warm_containers": np.array(self.warm_sum) / self.ticks,
            "vm_running": running,
            "vm_booting": np.array([len(f.booting) for f in self.fleets], float),
            "exit_probabilities": np.array(self.probs),
        }
