"""What knowing the load ahead is worth: one provisioning rule, looking forward, back, or at a
forecast.

:class:`WindowPeakPolicy` sizes each stage's VM pool for the *peak* control-interval load of
the next VM boot time plus one interval (a launch is ready when the load it is sized for
arrives; a VM is removed only when no interval within a boot time needs it) and sends a
stage's VMs at most ``route`` of what its running VMs can serve (the rest to functions). The
peak is taken three ways (``look``):

* ``"ahead"``: read from the trace itself. An *analysis bound* (a controller that knows the
  future), never a deployable policy, so it is not registered with
  :func:`agents.policy.make_policy`;
* ``"behind"``: the peak of the same number of past intervals: the rule made causal;
* ``"forecast"``: ``margin`` x a :class:`PeakForecast` of the past hour, fitted by least squares
  on another stretch of traffic: causal, with a forecast of the peak.

All three read the trace's past interval means (equal to what the monitor reported on the
exact per-second traces the analyses use). Routing divides the room on the running VMs by the
last interval's stage load (the observation), so the three differ only in the peak the VMs are
sized for; with ``route_ahead=True`` it divides by the coming interval's load read from the
trace instead (a second bound: what knowing the load *within* the interval the share is held
for is worth). Reach per stage is the observed one of the last interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agents.heuristics.profiling import profile_stages
from agents.policy import Info, Policy
from serflow_env.arrivals import resolve_traces
from serflow_env.normalisation import reward_reference_rate
from serflow_env.observation import column
from serflow_env.scenario import Scenario

LOOKS = ("ahead", "behind", "forecast")
HISTORY = 360  # intervals of past load a forecast reads (1 h at 10 s)
_FLOOR = 1e-3  # req/s: rates are floored before logs (idle intervals)


def _padded_history(rates: np.ndarray, step: int) -> np.ndarray:
    """The ``HISTORY`` interval rates before ``step``, the oldest repeated where too few."""
    past = rates[max(step - HISTORY, 0): step]
    return np.pad(past, (HISTORY - past.size, 0), mode="edge")


def forecast_features(history: np.ndarray) -> np.ndarray:
    """Regressors (M, 9) of interval-rate histories (M, HISTORY), newest last.

    Logs of the last rate against the one before and the means of the last 4, 16, 60 and 360
    intervals (trend and reversion to the hour's level), the recent spread and peak relative to
    the last rate, the log level itself, and a constant.
    """
    h = np.log(np.maximum(history, _FLOOR))
    last = h[:, -1]
    mean = {n: np.log(np.maximum(history[:, -n:].mean(axis=1), _FLOOR)) for n in (4, 16, 60)}
    hour = np.log(np.maximum(history.mean(axis=1), _FLOOR))
    spread = np.log(history[:, -4:].std(axis=1) / np.exp(last) + _FLOOR)
    peak = h[:, -16:].max(axis=1) - last
    return np.stack([last - h[:, -2], last - mean[4], last - mean[16], last - mean[60],
                     last - hour, spread, peak, last, np.ones_like(last)], axis=1)


@dataclass(frozen=True)
class PeakForecast:
    """log(peak of the next ``window`` intervals / last interval) as a linear function of
    :func:`forecast_features`; the predicted peak is the last rate times its exponential."""

    weights: np.ndarray  # (9,)
    window: int

    @classmethod
    def fit(cls, rates: np.ndarray, window: int) -> PeakForecast:
        """Least squares on every full hour of history in ``rates`` (interval means, (T,))."""
        steps = np.arange(HISTORY, len(rates) - window + 1)
        if steps.size < 100:
            raise ValueError(f"forecast fit trace: {len(rates)} intervals; needs at least "
                             f"{HISTORY + window + 99} (an hour of history, then the windows)")
        history = np.stack([rates[t - HISTORY: t] for t in steps])
        peaks = np.array([rates[t: t + window].max() for t in steps])
        target = np.log(np.maximum(peaks, _FLOOR) / np.maximum(history[:, -1], _FLOOR))
        weights, *_ = np.linalg.lstsq(forecast_features(history), target, rcond=None)
        return cls(weights, window)

    def __call__(self, history: np.ndarray) -> np.ndarray:
        """Predicted peak rate (M,) for histories (M, HISTORY)."""
        growth = forecast_features(history) @ self.weights
        return np.maximum(history[:, -1], _FLOOR) * np.exp(growth)


def interval_means(rate_per_s: np.ndarray, interval: int) -> np.ndarray:
    """Mean of per-second rates over each whole interval of ``interval`` seconds, (T,)."""
    whole = len(rate_per_s) // interval
    if whole == 0:
        raise ValueError(f"trace shorter than one control interval ({interval} s)")
    return rate_per_s[: whole * interval].reshape(whole, interval).mean(axis=1)


def interval_rates(scenario: Scenario) -> np.ndarray:
    """Mean arrival rate (req/s) of every whole control interval of the scenario's trace, (T,).

    Only for scenarios whose episodes replay one trace from its start at its own pace.
    """
    arrivals = scenario.arrivals
    traces = resolve_traces(arrivals)
    if len(traces) != 1:
        raise ValueError(f"arrivals.trace: {len(traces)} traces; the foresight analysis needs one")
    if arrivals.random_start:
        raise ValueError("arrivals.random_start=true; the foresight analysis needs episodes that "
                         "start at the trace start (false)")
    if arrivals.time_warp != 1.0:
        raise ValueError(f"arrivals.time_warp={arrivals.time_warp!r}; the foresight analysis "
                         "needs 1.0")
    interval = int(round(scenario.control_interval_s))
    if interval != scenario.control_interval_s or interval < 1:
        raise ValueError(f"control_interval_s={scenario.control_interval_s!r}; the foresight "
                         "analysis needs a whole number of seconds")
    return interval_means(traces[0].rate_per_second() * arrivals.scale, interval)


def boot_window(scenario: Scenario) -> int:
    """Intervals a VM launched now must cover: its boot, then the interval it is ready in."""
    return math.ceil(scenario.vm.boot_s / scenario.control_interval_s - 1e-9) + 1


class WindowPeakPolicy(Policy):
    """VMs for the peak interval load of the next boot time, seen ``look`` way; causal routing.

    In cap mode the routing is the cap ``route`` itself (the env applies it per tick, so
    ``route_ahead`` makes no difference there)."""

    routing_modes = ("share", "cap")

    def __init__(self, scenario: Scenario, utilisation: float, route: float,
                 look: str = "ahead", forecast: PeakForecast | None = None,
                 margin: float = 1.0, route_ahead: bool = False) -> None:
        super().__init__(scenario)
        for name, value, high in (("utilisation", utilisation, 1.0), ("route", route, 1.0),
                                  ("margin", margin, 10.0)):
            if not 0.0 < value <= high:
                raise ValueError(f"{name}={value!r}; allowed (0, {high:g}]")
        if look not in LOOKS:
            raise ValueError(f"look={look!r}; allowed {list(LOOKS)}")
        if (look == "forecast") != (forecast is not None):
            raise ValueError("forecast: give a PeakForecast exactly when look='forecast'")
        self.utilisation, self.route, self.look = float(utilisation), float(route), look
        self.forecast, self.margin, self.route_ahead = forecast, float(margin), route_ahead
        self.rates = interval_rates(scenario)
        profile = profile_stages(scenario)
        self.capacity = profile.vm_capacity_rps
        self.base_reach = profile.base_reach
        self.max_vms = profile.max_vms.astype(float)
        self.window = boot_window(scenario)
        if forecast is not None and forecast.window != self.window:
            raise ValueError(f"forecast: fitted for {forecast.window} intervals; this scenario's "
                             f"boot window is {self.window}")
        self.reference_rate = reward_reference_rate(scenario)
        self.idx = {name: column(name, num_stages=self.num_stages)
                    for name in ("reach", "stage_rate", "vms_running")}
        self.name = {"ahead": "foresight-peak", "behind": "past-peak",
                     "forecast": "forecast-peak"}[look] + ("+route-ahead" if route_ahead else "")
        self.step = 0

    def reset(self, num_envs: int) -> None:
        super().reset(num_envs)
        self.step = 0

    def peak_rate(self, step: int) -> float:
        """Peak interval rate the VMs are sized for at control step ``step`` (0 before any
        interval was seen, except looking ahead)."""
        if self.look == "ahead":
            window = self.rates[step: step + self.window]
            return float(window.max()) if window.size else 0.0
        if step == 0:
            return 0.0
        if self.look == "behind":
            return float(self.rates[max(step - self.window, 0): step].max())
        assert self.forecast is not None
        return self.margin * float(self.forecast(_padded_history(self.rates, step)[None, :])[0])

    def act(self, obs: np.ndarray, info: Info | None) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        step, self.step = self.step, self.step + 1
        monitored = obs[:, [column("rate")]] > 0  # (N, 1): a past interval was observed
        reach = np.where(monitored, obs[:, self.idx["reach"]], self.base_reach[None, :])
        wanted = np.ceil(self.peak_rate(step) * reach / (self.capacity * self.utilisation) - 1e-9)
        if self.route_ahead:  # the coming interval's stage load, from the trace
            coming = self.rates[step] if step < self.rates.size else 0.0
            load = coming * reach
        else:  # the last interval's, as monitored
            load = obs[:, self.idx["stage_rate"]] * self.reference_rate
        running = obs[:, self.idx["vms_running"]] * self.max_vms
        if self.cap_routing:
            return self.encode(np.minimum(wanted, self.max_vms),
                               np.full(running.shape, self.route))
        room = running * self.capacity * self.route
        to_vm = np.where(load > 0, np.minimum(room / np.maximum(load, 1e-12), 1.0),
                         (running > 0).astype(float))
        return self.encode(np.minimum(wanted, self.max_vms), 1.0 - to_vm)
