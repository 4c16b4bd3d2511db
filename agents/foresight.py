"""What knowing the load ahead is worth: one provisioning rule, looking forward or back.

:class:`WindowPeakPolicy` sizes each stage's VM pool for the *peak* control-interval load in a
window of the trace and sends a stage's VMs at most ``route`` of what its running VMs can
serve (the rest to functions). With ``future=True`` the window is the next VM boot time plus
one interval, read from the trace itself: a launch is ready when the load it is sized for
arrives, and a VM is only removed when no interval within a boot time needs it. This is an
*analysis bound* (a controller that knows the trace), never a deployable policy, so it is not
registered with :func:`agents.policy.make_policy`. With ``future=False`` the window is the
same number of past intervals: the same rule made causal.

Both read the trace's interval means (the past ones equal what the monitor reported on the
exact per-second traces the analyses use); routing uses only the observation (the last
interval's stage load and running VMs) in both, so the two differ only in which way the
provisioning window looks. Reach per stage is the observed one of the last interval.
"""

from __future__ import annotations

import math

import numpy as np

from agents.policy import Info, Policy
from agents.profiling import profile_stages
from serflow_env.arrivals import resolve_trace
from serflow_env.observation import GLOBAL_FEATURES, STAGE_FEATURES
from serflow_env.scenario import Scenario

_G, _S = len(GLOBAL_FEATURES), len(STAGE_FEATURES)


def interval_rates(scenario: Scenario) -> np.ndarray:
    """Mean arrival rate (req/s) of every whole control interval of the scenario's trace, (T,).

    Only for scenarios whose episodes replay one trace from its start at its own pace.
    """
    arrivals = scenario.arrivals
    traces = arrivals.trace if isinstance(arrivals.trace, (list, tuple)) else [arrivals.trace]
    if len(traces) != 1:
        raise ValueError(f"arrivals.trace: {len(traces)} traces; the foresight analysis needs one")
    if arrivals.random_start:
        raise ValueError("arrivals.random_start=true; the foresight analysis needs episodes that "
                         "start at the trace start (false)")
    if arrivals.time_warp != 1.0:
        raise ValueError(f"arrivals.time_warp={arrivals.time_warp!r}; the foresight analysis "
                         "needs 1.0")
    per_second = resolve_trace(traces[0], arrivals.format).rate_per_second() * arrivals.scale
    interval = int(round(scenario.control_interval_s))
    if interval != scenario.control_interval_s or interval < 1:
        raise ValueError(f"control_interval_s={scenario.control_interval_s!r}; the foresight "
                         "analysis needs a whole number of seconds")
    whole = len(per_second) // interval
    if whole == 0:
        raise ValueError(f"trace shorter than one control interval ({interval} s)")
    return per_second[: whole * interval].reshape(whole, interval).mean(axis=1)


class WindowPeakPolicy(Policy):
    """VMs for the peak interval load of a window ahead (``future``) or behind; causal routing."""

    def __init__(self, scenario: Scenario, utilisation: float, route: float,
                 future: bool = True) -> None:
        super().__init__(scenario)
        for name, value in (("utilisation", utilisation), ("route", route)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name}={value!r}; allowed (0, 1]")
        self.utilisation, self.route, self.future = float(utilisation), float(route), future
        self.rates = interval_rates(scenario)
        profile = profile_stages(scenario)
        self.capacity = profile.vm_capacity_rps
        self.base_reach = profile.base_reach
        self.max_vms = profile.max_vms.astype(float)
        # a VM launched now serves after the boot; the window also covers the interval it
        # becomes ready in
        self.window = math.ceil(scenario.vm.boot_s / scenario.control_interval_s - 1e-9) + 1
        from serflow_env.core import make_params

        self.reference_rate = make_params(scenario).reference_rate
        k = np.arange(self.num_stages)
        self.idx = {name: _G + _S * k + STAGE_FEATURES.index(name)
                    for name in ("reach", "stage_rate", "vms_running")}
        self.name = f"{'foresight' if future else 'past'}-peak"
        self.step = 0

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self.step = 0

    def peak_rate(self, step: int) -> float:
        """Peak interval rate of the provisioning window at control step ``step``."""
        if self.future:
            window = self.rates[step: step + self.window]
        else:
            window = self.rates[max(step - self.window, 0): step]
        return float(window.max()) if window.size else 0.0  # nothing seen yet

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        step, self.step = self.step, self.step + 1
        monitored = obs[:, [0]] > 0  # (N, 1): a past interval was observed
        reach = np.where(monitored, obs[:, self.idx["reach"]], self.base_reach[None, :])
        wanted = np.ceil(self.peak_rate(step) * reach / (self.capacity * self.utilisation) - 1e-9)
        load = obs[:, self.idx["stage_rate"]] * self.reference_rate  # last interval, req/s
        running = obs[:, self.idx["vms_running"]] * self.max_vms
        room = running * self.capacity * self.route
        to_vm = np.where(load > 0, np.minimum(room / np.maximum(load, 1e-12), 1.0),
                         (running > 0).astype(float))
        return self.encode(np.minimum(wanted, self.max_vms), 1.0 - to_vm)
