"""Monte Carlo sampling of the latency decomposition the fast model assumes (test helper)."""

from __future__ import annotations

import numpy as np

from serflow_env import distributions
from serflow_env.scenario import Scenario


def sample_latencies(scenario: Scenario, faas_share, wait_p, wait_mean, backlog_share,
                     backlog_delay, cold_share, exit_weights, size: int,
                     rng: np.random.Generator, backlog_halfwidth=None) -> np.ndarray:
    """Per-request latencies for one env's interval parameters (each argument shape (K,)).

    The backlog delay is fixed, or with ``backlog_halfwidth`` uniform on delay -/+ it.
    """
    k = scenario.num_stages
    exit_stage = rng.choice(k, size=size, p=np.asarray(exit_weights) / np.sum(exit_weights))
    total = np.zeros(size)
    prev_route = None
    links = scenario.transfer
    for i, stage in enumerate(scenario.stages):
        active = exit_stage >= i
        route_faas = rng.random(size) < faas_share[i]
        vm_time = distributions.sample(stage.vm_service, rng, size)
        vm_time += np.where(rng.random(size) < wait_p[i], rng.exponential(max(wait_mean[i], 1e-12),
                                                                          size), 0.0)
        delay = np.full(size, float(backlog_delay[i]))
        if backlog_halfwidth is not None:
            delay += rng.uniform(-1.0, 1.0, size) * backlog_halfwidth[i]
        vm_time += np.where(rng.random(size) < backlog_share[i], delay, 0.0)
        faas_time = distributions.sample(stage.faas_service_time, rng, size)
        faas_time += np.where(rng.random(size) < cold_share[i],
                              distributions.sample(scenario.faas.cold_start, rng, size), 0.0)
        part = np.where(route_faas, faas_time, vm_time)
        if prev_route is not None:
            size_mb = scenario.stages[i - 1].activation_mb
            both_vm = ~prev_route & ~route_faas
            both_faas = prev_route & route_faas
            delay = np.where(both_vm, links.vm_to_vm.delay_s(size_mb),
                             np.where(both_faas, links.faas_to_faas.delay_s(size_mb),
                                      links.cross_service.delay_s(size_mb)))
            part = part + delay
        total += np.where(active, part, 0.0)
        prev_route = route_faas
    return total
