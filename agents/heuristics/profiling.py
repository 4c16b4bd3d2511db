"""Offline per-stage cost profile: what one request costs on a function and on a VM.

Heuristics use it as offline knowledge (a real deployment would measure it once per model
and price list). Everything is per stage k, as (K,) arrays:

* ``faas_cost_per_request`` c_f,k = GB_k * E[billed S_f,k] * price_GB_s + price_request, at the
  stage's deployed function memory (the scenario fixes it; the action cannot change it). The
  billed duration is the mean runtime rounded up to the billing granularity.
* ``vm_capacity_rps`` = slots_k / E[S_vm,k]: requests/s one VM serves at 100 % utilisation.
* ``tcip_rps`` (traffic cost indifference point, SERFLOW reconstruction): the steady request
  rate at which one VM costs what functions cost for the same requests,
  ``vm_price_per_s_k / c_f,k``. A VM that carries less than this loses money against functions.
* :meth:`StageProfile.scip` (sparsity cost indifference point): the reach fraction of stage k
  at which, for a total rate lambda, the stage's traffic lambda * r_k crosses T-CIP_k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serflow_env.distributions import expected_rounded_up
from serflow_env.scenario import Scenario


@dataclass(frozen=True)
class StageProfile:
    """Per-stage prices, capacities and cost indifference points, as (K,) arrays."""

    vm_price_per_s: np.ndarray  # $ per VM-second
    vm_mean_s: np.ndarray  # mean VM service time of one request, s
    slots: np.ndarray  # requests one VM serves at once
    max_vms: np.ndarray  # largest VM count the action can ask for
    vm_capacity_rps: np.ndarray  # slots / vm_mean_s, requests/s at 100 % utilisation
    faas_mean_s: np.ndarray  # mean function runtime at the deployed memory, s
    faas_cost_per_request: np.ndarray  # c_f,k, $ per request (warm)
    tcip_rps: np.ndarray  # vm_price_per_s / c_f,k, requests/s
    base_reach: np.ndarray  # share of requests reaching stage k at the scenario's exit rates

    @property
    def num_stages(self) -> int:
        return int(self.vm_price_per_s.shape[0])

    def scip(self, total_rate: np.ndarray) -> np.ndarray:
        """S-CIP: reach fraction (N, K) at which stage traffic crosses T-CIP, for rates (N,).

        Values above 1 mean that even a stage every request reaches is below T-CIP.
        """
        rate = np.maximum(np.asarray(total_rate, dtype=float), 1e-9)
        return self.tcip_rps[None, :] / rate[:, None]


def profile_stages(scenario: Scenario) -> StageProfile:
    """The offline profile of every stage of ``scenario`` (prices from the scenario)."""
    stages = scenario.stages
    faas = scenario.faas
    billed = np.array([expected_rounded_up(s.faas_service_time, faas.billing_granularity_s)
                       for s in stages])
    gb = np.array([s.faas_memory_mb / 1024.0 for s in stages])
    c_f = gb * billed * faas.price_per_gb_s + faas.price_per_request
    vm_price = np.array([s.vm_price_per_hour / 3600.0 for s in stages])
    vm_mean = np.array([s.vm_service.mean_s for s in stages])
    slots = np.array([s.slots_per_vm for s in stages], dtype=float)
    exits = np.array([s.exit_probability for s in stages[:-1]])
    reach = np.cumprod(np.r_[1.0, 1.0 - exits])
    return StageProfile(
        vm_price_per_s=vm_price,
        vm_mean_s=vm_mean,
        slots=slots,
        max_vms=np.array([s.max_vms for s in stages], dtype=np.int64),
        vm_capacity_rps=slots / vm_mean,
        faas_mean_s=np.array([s.faas_service_time.mean_s for s in stages]),
        faas_cost_per_request=c_f,
        tcip_rps=vm_price / np.maximum(c_f, 1e-15),
        base_reach=reach,
    )
