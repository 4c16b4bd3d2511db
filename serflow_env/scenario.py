"""Typed, validated scenario configuration for the SERFLOW environment.

A scenario says everything about the modelled system: the early-exit stages, their service
times on VMs and in functions, VM and function prices and limits, transfers, the arrival trace,
exit drift, the SLO, the reward weights and what the routing action sets. Scenarios are
dataclasses (units in comments), loaded from YAML with ``yaml.safe_load``; every bad value
raises :class:`ScenarioError` naming the field, the value and the allowed range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCENARIO_DIR = Path(__file__).parent / "scenarios"

#: On-demand prices, AWS us-east-1 ($/h), from ../shared/MODEL.md.
INSTANCE_PRICES_PER_HOUR: dict[str, float] = {
    "c5.xlarge": 0.17,
    "c6i.large": 0.085,
    "c6i.2xlarge": 0.34,
    "m4.large": 0.10,
    "t3.medium": 0.0416,
    "g4dn.xlarge": 0.526,
}

SERVICE_DISTRIBUTIONS = ("lognormal", "exponential", "deterministic")


class ScenarioError(ValueError):
    """A scenario field is missing, unknown or out of its allowed range."""


def _check_range(
    path: str, value: Any, low: float | None = None, high: float | None = None,
    *, low_open: bool = False, integer: bool = False,
) -> None:
    """Raise ScenarioError unless ``value`` is a finite number within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{path}: expected a number, got {value!r}")
    if integer and not float(value).is_integer():
        raise ScenarioError(f"{path}: expected an integer, got {value!r}")
    if not math.isfinite(value):
        raise ScenarioError(f"{path}: expected a finite number, got {value!r}")
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or value <= high
    if not (lo_ok and hi_ok):
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        bracket = "(" if low_open else "["
        raise ScenarioError(f"{path}={value!r} is out of range; allowed {bracket}{lo}, {hi}]")


@dataclass(frozen=True)
class ServiceTime:
    """A service-time distribution given by its mean and coefficient of variation."""

    mean_s: float  # seconds, > 0
    cv: float = 1.0  # std/mean; lognormal only (exponential has cv 1, deterministic cv 0)
    distribution: str = "lognormal"  # lognormal | exponential | deterministic

    @property
    def effective_cv(self) -> float:
        """The coefficient of variation the distribution really has."""
        return {"lognormal": self.cv, "exponential": 1.0, "deterministic": 0.0}[self.distribution]

    def validate(self, path: str) -> None:
        if self.distribution not in SERVICE_DISTRIBUTIONS:
            raise ScenarioError(
                f"{path}.distribution={self.distribution!r}; allowed {SERVICE_DISTRIBUTIONS}"
            )
        _check_range(f"{path}.mean_s", self.mean_s, 0.0, 3600.0, low_open=True)
        _check_range(f"{path}.cv", self.cv, 0.0, 10.0)
        if self.distribution == "lognormal" and self.cv == 0:
            raise ScenarioError(f"{path}.cv=0 with lognormal; use distribution: deterministic")

    def scaled(self, mean_s: float) -> ServiceTime:
        return dataclasses.replace(self, mean_s=mean_s)


@dataclass(frozen=True)
class FaasService:
    """A stage's runtime in a function versus memory, LIBRA's model.

    ``mean(m) = fixed_s + scalable_s * (1 - decay) ** (m - 128)`` for memory m in MB; the shape
    (cv, distribution) is kept at every memory size.
    """

    fixed_s: float  # seconds of runtime that memory does not speed up, >= 0
    scalable_s: float  # seconds at 128 MB that more memory (more CPU) speeds up, >= 0
    decay: float = 0.002  # per-MB decay of the scalable part, [0, 0.1]
    cv: float = 1.0
    distribution: str = "lognormal"

    def mean_at(self, memory_mb: float) -> float:
        return self.fixed_s + self.scalable_s * (1.0 - self.decay) ** (memory_mb - 128.0)

    def at_memory(self, memory_mb: float) -> ServiceTime:
        return ServiceTime(self.mean_at(memory_mb), self.cv, self.distribution)

    def validate(self, path: str) -> None:
        _check_range(f"{path}.fixed_s", self.fixed_s, 0.0, 3600.0)
        _check_range(f"{path}.scalable_s", self.scalable_s, 0.0, 3600.0)
        _check_range(f"{path}.decay", self.decay, 0.0, 0.1)
        if self.fixed_s + self.scalable_s <= 0:
            raise ScenarioError(f"{path}: fixed_s + scalable_s must be > 0")
        ServiceTime(1.0, self.cv, self.distribution).validate(path)


@dataclass(frozen=True)
class StageSpec:
    """One stage of the early-exit model: a block of layers ending in a classifier."""

    name: str
    exit_probability: float  # conditional P(exit after this stage | reached it), [0, 1]; last = 1
    vm_service: ServiceTime  # runtime of one request on one VM slot
    faas_service: FaasService  # runtime in a function versus memory
    faas_memory_mb: int = 2048  # function memory, [128, 10240] MB
    activation_mb: float = 0.5  # size of the activation passed to the next stage, MB
    instance_type: str = "c6i.large"  # key of INSTANCE_PRICES_PER_HOUR
    slots_per_vm: int = 2  # requests one VM serves at once, [1, 256]
    max_vms: int = 20  # largest VM count the action can ask for, [1, 10000]
    queue_limit_per_slot: int = 200  # waiting requests per VM slot before drops, [1, 1e6]
    initial_vms: int = 0  # VMs already running (booted, past the billing minimum) at reset

    def validate(self, path: str, is_last: bool) -> None:
        if not self.name:
            raise ScenarioError(f"{path}.name must be a non-empty string")
        _check_range(f"{path}.exit_probability", self.exit_probability, 0.0, 1.0)
        if is_last and self.exit_probability != 1.0:
            raise ScenarioError(
                f"{path}.exit_probability={self.exit_probability!r}: the last stage must be 1.0"
            )
        self.vm_service.validate(f"{path}.vm_service")
        self.faas_service.validate(f"{path}.faas_service")
        _check_range(f"{path}.faas_memory_mb", self.faas_memory_mb, 128, 10240, integer=True)
        _check_range(f"{path}.activation_mb", self.activation_mb, 0.0, 10_000.0)
        if self.instance_type not in INSTANCE_PRICES_PER_HOUR:
            raise ScenarioError(
                f"{path}.instance_type={self.instance_type!r}; allowed "
                f"{sorted(INSTANCE_PRICES_PER_HOUR)}"
            )
        _check_range(f"{path}.slots_per_vm", self.slots_per_vm, 1, 256, integer=True)
        _check_range(f"{path}.max_vms", self.max_vms, 1, 10_000, integer=True)
        _check_range(
            f"{path}.queue_limit_per_slot", self.queue_limit_per_slot, 1, 1_000_000, integer=True
        )
        _check_range(f"{path}.initial_vms", self.initial_vms, 0, self.max_vms, integer=True)

    @property
    def vm_price_per_hour(self) -> float:
        return INSTANCE_PRICES_PER_HOUR[self.instance_type]

    @property
    def faas_service_time(self) -> ServiceTime:
        return self.faas_service.at_memory(self.faas_memory_mb)


@dataclass(frozen=True)
class VmConfig:
    """IaaS VM behaviour shared by all stages."""

    boot_s: float = 100.0  # launch -> serving, seconds, [0, 3600]
    min_billed_s: float = 60.0  # minimum billed lifetime from launch, seconds, [0, 3600]

    def validate(self, path: str) -> None:
        _check_range(f"{path}.boot_s", self.boot_s, 0.0, 3600.0)
        _check_range(f"{path}.min_billed_s", self.min_billed_s, 0.0, 3600.0)


@dataclass(frozen=True)
class FaasConfig:
    """Lambda-like function behaviour and prices."""

    price_per_gb_s: float = 0.0000166667  # $ per GB-second of billed duration
    price_per_request: float = 0.20e-6  # $ per invocation
    billing_granularity_s: float = 0.001  # billed duration is rounded up to this, seconds
    cold_start: ServiceTime = field(
        default_factory=lambda: ServiceTime(mean_s=2.5, cv=0.5)
    )  # initialisation delay of a new container, billed and added to latency
    keep_alive_s: float = 600.0  # idle containers are reclaimed after this, seconds
    concurrency_limit: int = 1000  # account-wide concurrent executions; beyond: throttled
    burst_headroom: float = 4.0  # z: the prewarm creates a + z*sqrt(a) containers for the
    # first second's mean concurrency a (the pool itself follows the concurrency's maxima)
    prewarm: bool = True  # start episodes with the containers the first second's traffic needs

    def validate(self, path: str) -> None:
        _check_range(f"{path}.price_per_gb_s", self.price_per_gb_s, 0.0, 1.0)
        _check_range(f"{path}.price_per_request", self.price_per_request, 0.0, 1.0)
        _check_range(f"{path}.billing_granularity_s", self.billing_granularity_s, 1e-6, 1.0)
        self.cold_start.validate(f"{path}.cold_start")
        _check_range(f"{path}.keep_alive_s", self.keep_alive_s, 0.0, 86_400.0)
        _check_range(f"{path}.concurrency_limit", self.concurrency_limit, 1, 10**7, integer=True)
        _check_range(f"{path}.burst_headroom", self.burst_headroom, 0.0, 10.0)
        if not isinstance(self.prewarm, bool):
            raise ScenarioError(f"{path}.prewarm={self.prewarm!r}; expected true/false")


@dataclass(frozen=True)
class Link:
    """A network path between two stages: delay = size / bandwidth + rtt, plus a $/GB charge."""

    bandwidth_mb_s: float  # MB per second, > 0
    rtt_s: float  # seconds, >= 0
    price_per_gb: float = 0.0  # $ per GB moved (0 within one zone)

    def validate(self, path: str) -> None:
        _check_range(f"{path}.bandwidth_mb_s", self.bandwidth_mb_s, 0.0, 1e6, low_open=True)
        _check_range(f"{path}.rtt_s", self.rtt_s, 0.0, 60.0)
        _check_range(f"{path}.price_per_gb", self.price_per_gb, 0.0, 10.0)

    def delay_s(self, size_mb: float) -> float:
        return size_mb / self.bandwidth_mb_s + self.rtt_s


@dataclass(frozen=True)
class TransferConfig:
    """Links between consecutive stages, by where the two stages run."""

    vm_to_vm: Link = field(default_factory=lambda: Link(1250.0, 0.0005, 0.0))
    cross_service: Link = field(default_factory=lambda: Link(150.0, 0.02, 0.0))  # VM<->function
    faas_to_faas: Link = field(default_factory=lambda: Link(100.0, 0.03, 0.0))

    def validate(self, path: str) -> None:
        self.vm_to_vm.validate(f"{path}.vm_to_vm")
        self.cross_service.validate(f"{path}.cross_service")
        self.faas_to_faas.validate(f"{path}.faas_to_faas")


@dataclass(frozen=True)
class ArrivalConfig:
    """Where requests come from and how the trace is replayed."""

    trace: Any = field(
        default_factory=lambda: {
            "generator": "diurnal", "duration_s": 7200, "mean_rate": 100.0,
            "peak_to_mean": 2.0, "period_s": 7200.0, "noise": 0.1, "seed": 7,
        }
    )  # a generator spec (mapping with "generator"), a trace file path, or a list of either
    format: str = "auto"  # trace file format: auto | libra | azure
    scale: float = 1.0  # multiply request counts by this, (0, 1000]
    time_warp: float = 1.0  # each trace second is replayed over this many simulated seconds
    # (its requests spread over them, so rates divide by time_warp; scale by the same factor
    # to stretch a trace in time at its original load), (0, 1000]
    random_start: bool = False  # start each episode at a uniformly random point of the trace

    def validate(self, path: str) -> None:
        traces = self.trace if isinstance(self.trace, list) else [self.trace]
        if not traces:
            raise ScenarioError(f"{path}.trace: the list of traces is empty")
        for i, t in enumerate(traces):
            if not isinstance(t, (str, Path, Mapping)) and not hasattr(t, "values"):
                raise ScenarioError(
                    f"{path}.trace[{i}]={t!r}: expected a file path, a generator mapping "
                    "({generator: ..., ...}) or a Trace"
                )
        if self.format not in ("auto", "libra", "azure"):
            raise ScenarioError(f"{path}.format={self.format!r}; allowed auto, libra, azure")
        _check_range(f"{path}.scale", self.scale, 0.0, 1000.0, low_open=True)
        _check_range(f"{path}.time_warp", self.time_warp, 0.0, 1000.0, low_open=True)
        if not isinstance(self.random_start, bool):
            raise ScenarioError(f"{path}.random_start={self.random_start!r}; expected true/false")


@dataclass(frozen=True)
class ExitDrift:
    """Time-varying exit probabilities: a schedule plus an optional random drift.

    ``schedule`` is a list of ``[time_s, [p_1, ..., p_{K-1}]]`` points, linearly interpolated in
    episode time (held after the last point); empty means the stages' ``exit_probability``.
    ``volatility`` is the stationary std of an Ornstein-Uhlenbeck drift added to each exit logit,
    ``reversion_s`` its time constant.
    """

    schedule: tuple = ()
    volatility: float = 0.0  # std of the logit drift, [0, 5]
    reversion_s: float = 600.0  # mean-reversion time constant, seconds, > 0

    def validate(self, path: str, num_stages: int) -> None:
        _check_range(f"{path}.volatility", self.volatility, 0.0, 5.0)
        _check_range(f"{path}.reversion_s", self.reversion_s, 0.0, 1e7, low_open=True)
        last_t = -math.inf
        for i, point in enumerate(self.schedule):
            if not (isinstance(point, (list, tuple)) and len(point) == 2):
                raise ScenarioError(f"{path}.schedule[{i}]={point!r}: expected [time_s, [p...]]")
            t, probs = point
            _check_range(f"{path}.schedule[{i}].time_s", t, 0.0)
            if t <= last_t:
                raise ScenarioError(f"{path}.schedule[{i}].time_s={t}: times must increase")
            last_t = t
            if not isinstance(probs, (list, tuple)) or len(probs) != num_stages - 1:
                raise ScenarioError(
                    f"{path}.schedule[{i}]: expected {num_stages - 1} exit probabilities "
                    f"(one per stage but the last), got {probs!r}"
                )
            for j, p in enumerate(probs):
                _check_range(f"{path}.schedule[{i}].p[{j}]", p, 0.0, 1.0)


@dataclass(frozen=True)
class RewardConfig:
    """reward = -(w_cost * cost / cost_scale + w_slo * violations / request_scale).

    ``cost_scale`` is the expected cost of serving the interval's reference traffic on warm
    functions only; ``request_scale`` the expected requests in an interval at the reference rate.
    So a FaaS-only controller without violations earns about -w_cost per step at the reference
    rate, and each 1 % of requests violating costs 0.01 * w_slo.
    """

    w_cost: float = 1.0  # [0, 1e6]
    w_slo: float = 10.0  # [0, 1e6]
    reference_rate: float | None = None  # requests/s for normalising; None: the trace's mean

    def validate(self, path: str) -> None:
        _check_range(f"{path}.w_cost", self.w_cost, 0.0, 1e6)
        _check_range(f"{path}.w_slo", self.w_slo, 0.0, 1e6)
        if self.reference_rate is not None:
            _check_range(f"{path}.reference_rate", self.reference_rate, 0.0, 1e9, low_open=True)


ROUTING_MODES = ("share", "cap")


@dataclass(frozen=True)
class RoutingConfig:
    """What the routing half of the action sets (the env card's Action Space).

    ``share``: per stage, the share of its requests sent to functions for the whole control
    interval (a weighted round-robin split). ``cap``: per stage, a VM rate cap as a fraction of
    the running VMs' service capacity (``slots / mean VM service time`` per running VM), from 0
    to ``max_cap``; each tick the stage's VMs take at most ``cap * tick_s`` requests (the first
    ones of the tick, the fraction carried to the next tick) and the rest run in functions at
    once, as LIBRA and SERFLOW route. ``max_cap`` above 1 lets a controller make VMs queue.
    """

    mode: str = "cap"  # cap (the papers' mechanism, default) | share (for comparison)
    max_cap: float = 2.0  # cap mode: the largest cap, a fraction of VM capacity, (1, 10]

    def validate(self, path: str) -> None:
        if self.mode not in ROUTING_MODES:
            raise ScenarioError(f"{path}.mode={self.mode!r}; allowed {', '.join(ROUTING_MODES)}")
        _check_range(f"{path}.max_cap", self.max_cap, 1.0, 10.0, low_open=True)


@dataclass(frozen=True)
class Scenario:
    """Everything the environment models. See the env card in the SerflowEnv docstring."""

    name: str
    stages: tuple[StageSpec, ...]
    slo_deadline_s: float = 1.0  # end-to-end latency objective, seconds
    tick_s: float = 1.0  # internal time step; 1 s or 1/n of a second
    control_interval_s: float = 10.0  # the agent acts this often; a multiple of tick_s
    episode_steps: int = 360  # control steps per episode (then truncation)
    vm: VmConfig = field(default_factory=VmConfig)
    faas: FaasConfig = field(default_factory=FaasConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    arrivals: ArrivalConfig = field(default_factory=ArrivalConfig)
    exit_drift: ExitDrift = field(default_factory=ExitDrift)
    reward: RewardConfig = field(default_factory=RewardConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    latency_bins: int = 512  # fourier model: lattice bins over [0, latency_span * deadline]
    latency_span: float = 16.0  # latencies are resolved up to this many deadlines; beyond
    # they count as late and quantiles are reported at this cap
    latency_model: str = "moments"  # moments (fast, cumulant fits) | fourier (lattice FFT)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def ticks_per_step(self) -> int:
        return int(round(self.control_interval_s / self.tick_s))

    def validate(self) -> None:
        if not isinstance(self.stages, tuple) or not 2 <= len(self.stages) <= 12:
            n = len(self.stages) if hasattr(self.stages, "__len__") else self.stages
            raise ScenarioError(f"stages: expected 2..12 stages, got {n}")
        for k, stage in enumerate(self.stages):
            stage.validate(f"stages[{k}]", is_last=k == len(self.stages) - 1)
        _check_range("slo_deadline_s", self.slo_deadline_s, 0.0, 3600.0, low_open=True)
        _check_range("tick_s", self.tick_s, 0.0, 1.0, low_open=True)
        if self.tick_s < 1.0 and not math.isclose(1.0 / self.tick_s, round(1.0 / self.tick_s)):
            raise ScenarioError(f"tick_s={self.tick_s}: must be 1 or 1/n of a second")
        _check_range("control_interval_s", self.control_interval_s, self.tick_s, 3600.0)
        ratio = self.control_interval_s / self.tick_s
        if not math.isclose(ratio, round(ratio)):
            raise ScenarioError(
                f"control_interval_s={self.control_interval_s}: must be a multiple of "
                f"tick_s={self.tick_s}"
            )
        _check_range("episode_steps", self.episode_steps, 1, 10**7, integer=True)
        self.vm.validate("vm")
        self.faas.validate("faas")
        self.transfer.validate("transfer")
        self.arrivals.validate("arrivals")
        self.exit_drift.validate("exit_drift", len(self.stages))
        self.reward.validate("reward")
        self.routing.validate("routing")
        _check_range("latency_bins", self.latency_bins, 16, 4096, integer=True)
        _check_range("latency_span", self.latency_span, 1.0, 100.0)
        if self.latency_model not in ("moments", "fourier"):
            raise ScenarioError(
                f"latency_model={self.latency_model!r}; allowed 'moments', 'fourier'")

    def with_overrides(self, **overrides: Any) -> Scenario:
        """A copy with fields replaced; dotted keys (``faas.keep_alive_s``) reach nested ones."""
        data = to_dict(self)
        for key, value in overrides.items():
            _set_dotted(data, key, value)
        return from_dict(data)


# --------------------------------------------------------------------------------------------
# Building from plain data (YAML)


def _build(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by name."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{path}: expected a mapping for {cls.__name__}, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ScenarioError(f"{path}: unknown field(s) {unknown}; allowed {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        sub = _NESTED.get((cls, name))
        kwargs[name] = _build(sub, value, f"{path}.{name}" if path else name) if sub else value
    missing = [
        n for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ScenarioError(f"{path or 'scenario'}: missing required field(s) {missing}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - guarded by the checks above
        raise ScenarioError(f"{path}: {exc}") from exc


_NESTED: dict[tuple[type, str], type] = {
    (StageSpec, "vm_service"): ServiceTime,
    (StageSpec, "faas_service"): FaasService,
    (FaasConfig, "cold_start"): ServiceTime,
    (TransferConfig, "vm_to_vm"): Link,
    (TransferConfig, "cross_service"): Link,
    (TransferConfig, "faas_to_faas"): Link,
    (Scenario, "vm"): VmConfig,
    (Scenario, "faas"): FaasConfig,
    (Scenario, "transfer"): TransferConfig,
    (Scenario, "arrivals"): ArrivalConfig,
    (Scenario, "exit_drift"): ExitDrift,
    (Scenario, "reward"): RewardConfig,
    (Scenario, "routing"): RoutingConfig,
}


def from_dict(data: Mapping[str, Any]) -> Scenario:
    """Build and validate a Scenario from plain data (as YAML gives it)."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"scenario: expected a mapping, got {type(data).__name__}")
    data = dict(data)
    stages = data.get("stages")
    if not isinstance(stages, (list, tuple)):
        raise ScenarioError(f"stages: expected a list of 2..12 stages, got {stages!r}")
    data["stages"] = tuple(_build(StageSpec, s, f"stages[{k}]") for k, s in enumerate(stages))
    drift = data.get("exit_drift")
    if isinstance(drift, Mapping) and "schedule" in drift:
        drift = dict(drift)
        drift["schedule"] = tuple(tuple(p) if isinstance(p, list) else p
                                  for p in drift["schedule"] or ())
        data["exit_drift"] = drift
    return _build(Scenario, data, "")


def to_dict(scenario: Scenario) -> dict[str, Any]:
    """Plain-data form of a scenario (round-trips through :func:`from_dict`).

    In-memory trace objects in ``arrivals.trace`` are kept as they are.
    """
    data: dict[str, Any] = {}
    for f in dataclasses.fields(scenario):
        value = getattr(scenario, f.name)
        if f.name == "stages":
            data[f.name] = [dataclasses.asdict(stage) for stage in value]
        elif f.name == "arrivals":
            data[f.name] = {a.name: getattr(value, a.name) for a in dataclasses.fields(value)}
        elif f.name == "exit_drift":
            data[f.name] = dataclasses.asdict(value)
            data[f.name]["schedule"] = [[t, list(p)] for t, p in value.schedule]
        elif dataclasses.is_dataclass(value):
            data[f.name] = dataclasses.asdict(value)
        else:
            data[f.name] = value
    return data


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ScenarioError(f"override {key!r}: no field {'.'.join(parts[: i + 1])!r}")
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif isinstance(node, dict) and last in node:
        node[last] = value
    else:
        raise ScenarioError(f"override {key!r}: unknown field {last!r}")


def available_scenarios() -> list[str]:
    """Names of the shipped preset scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(scenario: str | Path | Scenario | Mapping[str, Any] = "default",
                  **overrides: Any) -> Scenario:
    """Load a shipped preset by name, a YAML file by path, or a mapping; apply overrides."""
    if isinstance(scenario, Scenario):
        result = scenario
    elif isinstance(scenario, Mapping):
        result = from_dict(scenario)
    else:
        text_path = Path(scenario)
        if text_path.suffix in (".yaml", ".yml") or text_path.exists():
            if not text_path.exists():
                raise FileNotFoundError(f"scenario file not found: {text_path}")
            path = text_path
        else:
            path = SCENARIO_DIR / f"{scenario}.yaml"
            if not path.exists():
                raise ScenarioError(
                    f"unknown scenario {str(scenario)!r}; shipped presets: "
                    f"{available_scenarios()} (or give a path to a .yaml file)"
                )
        with open(path, encoding="utf-8") as fh:
            try:
                data = yaml.safe_load(fh)
            except yaml.YAMLError as exc:
                raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
        try:
            result = from_dict(data)
        except ScenarioError as exc:
            raise ScenarioError(f"{path}: {exc}") from exc
    return result.with_overrides(**overrides) if overrides else result
