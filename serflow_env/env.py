"""The single SERFLOW environment (Gymnasium ``Env``): an engine with one environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from serflow_env.engine import Engine, ScenarioLike
from serflow_env.observation import action_space, observation_space
from serflow_env.render import RENDER_MODES, check_render_mode, interval_text


class SerflowEnv(gym.Env):
    """Cost-optimal, SLO-aware serving of an early-exit model on VMs and functions.

    ## Description

    A request to an early-exit ML model passes through K stages and may exit after each. Every
    stage runs on a VM pool (cheap at steady load, slow to boot, billed per second) and/or on
    serverless functions (pay per use, dearer per request, cold starts). The controller decides
    every control interval how many VMs each stage keeps and how its requests are split between
    VMs and functions, trading cost against SLO violations (end-to-end latency above
    ``slo_deadline_s``, drops and throttles). The dynamics are a numpy-vectorized count/fluid
    queueing model (array functions of params, state, action and random streams); this class is
    a thin shell over an :class:`~serflow_env.engine.Engine` with one environment.
    ``SerflowVectorEnv`` steps N of them as arrays; ``serflow_env.reference.ReferenceVectorEnv``
    simulates the same scenario request by request behind the same interface.

    ## Action Space

    ``Box(-1, 1, (2K,), float32)``, rescaled inside:

    - ``a[k]``: VM target of stage k, ``round((a[k] + 1) / 2 * max_vms_k)``. New VMs boot for
      ``vm.boot_s`` before serving; removals take the youngest VMs (booting ones first).
    - ``a[K + k]``: stage k's routing, by the scenario's ``routing.mode``:

      * ``share``: the share of stage-k requests sent to functions, ``(a[K + k] + 1) / 2``, for
        the whole interval (a weighted round-robin split).
      * ``cap`` (LIBRA's and SERFLOW's mechanism): a VM rate cap, ``(a[K + k] + 1) / 2 *
        routing.max_cap`` (default 2) times the running VMs' service capacity (running VMs *
        slots / mean VM service time; booting VMs do not count). Each tick the first
        ``cap * tick_s`` requests of the stage (the fraction carried to the next tick) go to
        its VMs, which queue them, and the rest run in functions in the same tick; a cap above
        1 lets VMs queue. So a rise within the interval overflows to functions at once.

      A stage with no running VM sends all its requests to functions.

    Out-of-range values are clipped (or rejected with ``action_out_of_range="error"``); NaN and
    wrong shapes raise ``ValueError``.

    ## Observation Space

    ``Box(-1, 1e6, (7 + 11K,), float32)``: only what a real controller can monitor over the last
    interval, no future trace values.

    | Index      | Observation                                                         |
    |------------|---------------------------------------------------------------------|
    | 0          | stage-1 arrival rate / reference rate                               |
    | 1          | std of the per-tick arrival rate / reference rate                   |
    | 2          | SLO violations / arrivals                                           |
    | 3-5        | latency p50, p95, p99 / deadline                                    |
    | 6          | dropped or throttled requests / arrivals                            |
    | 7 + 11k +0 | observed reach of stage k (requests entering k / entering stage 1)  |
    | +1         | stage-k request rate / reference rate                               |
    | +2, +3     | VMs running, VMs booting / max VMs                                  |
    | +4         | VM utilisation                                                      |
    | +5         | VM queue / (slots * max VMs)                                        |
    | +6         | live function containers / reference concurrency of the stage       |
    | +7         | realised share of requests served in functions (cap: the overflow)  |
    | +8         | share of function requests that met a cold start                    |
    | +9, +10    | previous action of the stage (VM target, routing)                   |

    Exact layout: :mod:`serflow_env.observation`.

    ## Rewards

    Per interval ``-(w_cost * cost / cost_scale + w_slo * violations / request_scale)``.
    ``cost_scale`` is the expected cost of the interval's reference traffic (the trace's mean
    rate, or ``reward.reference_rate``) on warm functions only, ``request_scale`` the reference
    requests per interval. So FaaS-only without violations earns about ``-w_cost`` per step,
    and each 1 % of requests violating the SLO costs ``0.01 * w_slo`` (defaults ``w_cost = 1``,
    ``w_slo = 10``). Violations are expected counts: completed requests times P(latency >
    deadline), plus dropped and throttled ones.

    ## Starting State

    Each episode starts at a trace second (0, or a random second with
    ``arrivals.random_start``) of a trace (drawn per episode from ``arrivals.trace`` when it is a
    list), with ``initial_vms`` booted VMs per stage, no backlog and, with ``faas.prewarm``, the
    warm containers the first second's traffic would need on functions. The exit drift starts
    from a random draw when ``exit_drift.volatility > 0``.

    ## Episode End

    Only by truncation, after ``episode_steps`` control intervals (360 in the presets, one hour
    of 10-s intervals); ``terminated`` is always ``False``. Stepping after truncation without a
    reset raises ``RuntimeError``.

    ## Arguments

    ```python
    >>> import gymnasium as gym
    >>> import serflow_env
    >>> env = gym.make("serflow/Serflow-v2", scenario="branchynet-resnet", episode_steps=100,
    ...                overrides={"faas.keep_alive_s": 60})
    >>> obs, info = env.reset(seed=0, options={"start_s": 1000})

    ```

    | Parameter             | Default     | Description                                        |
    |-----------------------|-------------|----------------------------------------------------|
    | `scenario`            | `"default"` | preset name (`default`, `branchynet-resnet`,       |
    |                       |             | `transformer-8`), YAML path, mapping or `Scenario` |
    | `action_out_of_range` | `"clip"`    | `"clip"` clips actions to [-1, 1]; `"error"` raises |
    | `overrides`           | `None`      | scenario overrides with dotted keys                |
    | `**kwargs`            |             | top-level scenario overrides (`episode_steps=100`) |

    Every scenario field, its unit and allowed range: :mod:`serflow_env.scenario`.

    ## Reset options

    ``reset(seed=..., options={...})``: ``start_s`` (trace second to start at, >= 0; positions
    past the trace's end wrap around) and ``trace_index`` (which of the scenario's traces,
    0..n-1). Both are applied before the episode's first state is sized (the function prewarm
    reads the chosen start's first second). The episode stream is drawn either way, so a seed's
    later episodes do not depend on the options. Same seed, same trajectory.

    ## Info

    Per step: ``cost_usd``, ``cost_vm_usd``, ``cost_faas_usd``, ``cost_transfer_usd``,
    ``requests_arrived``, ``requests_completed``, ``requests_dropped`` (queue-limit drops and
    throttles), ``requests_throttled``, ``requests_in_system``, ``slo_violations``,
    ``violation_rate`` (``slo_violations`` / (completed + dropped + throttled requests) of the
    interval, in [0, 1]; per arrival it would exceed 1 while a backlog drains),
    ``latency_p50_s``/``p95_s``/``p99_s``, ``vms_running``, ``vms_booting``, ``faas_warm``,
    ``faas_invocations``, ``faas_cold_starts``, ``vm_seconds``, ``reward_cost``,
    ``reward_slo`` and per-stage arrays ``stage_*``.

    ## Version History

    * v2: ``routing.mode: cap`` by default: the routing half of the action sets a per-tick VM
      rate cap with overflow to functions (LIBRA's and SERFLOW's mechanism); v1's function
      share per interval is ``routing.mode: share``. VM waits below saturation use Kimura's
      M/M/c-M/D/c interpolation with Cosmetatos' correction instead of Allen-Cunneen's service
      factor; ``info["violation_rate"]`` is per request resolved in the interval (in [0, 1]);
      ``info["latency_cdf"]`` reports each interval's latency distribution on a fixed grid.
    * v1: reset options (``start_s``, ``trace_index``) are applied before the episode's first
      state is sized (function prewarm); in v0 the prewarm was sized from the start drawn
      before the options applied.
    * v0: initial version.
    """

    # render_fps: a nominal rate for players of the text render (one line per control interval)
    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 1}

    def __init__(self, scenario: ScenarioLike = "default", action_out_of_range: str = "clip",
                 overrides: Mapping[str, Any] | None = None, render_mode: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__()
        self._spec: EnvSpec | None = None
        self.render_mode = check_render_mode(render_mode)
        self._last_info: dict[str, Any] | None = None
        self.engine = Engine(scenario, 1, action_out_of_range, overrides, **kwargs)
        self.scenario = self.engine.scenario
        self.observation_space = observation_space(self.engine.params)
        self.action_space = action_space(self.engine.params)
        self._needs_reset = True

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs, info = self.engine.reset(seed=seed, options=options)
        self._needs_reset = False
        self._last_info = None
        return obs[0], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("SerflowEnv.step called before reset() or after the episode "
                               "was truncated; call reset() first")
        obs, reward, info = self.engine.step(action, batched=False)
        truncated = bool(self.engine.truncated()[0])
        self._needs_reset = truncated
        single = {key: (value[0].item() if value.ndim == 1 else value[0].copy())
                  for key, value in info.items()}
        self._last_info = single
        return obs[0], float(reward[0]), False, truncated, single

    def render(self) -> str | None:
        """``render_mode='ansi'``: the last interval as one line of text; None otherwise."""
        if self.render_mode != "ansi":
            return None
        return interval_text(self._last_info, int(self.engine.state.steps[0]),
                             self.scenario.control_interval_s)

    @property
    def spec(self) -> EnvSpec | None:
        """The registration's spec, with ``max_episode_steps`` = the scenario's
        ``episode_steps`` (the env truncates there itself; gym.make adds no TimeLimit)."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None and value.max_episode_steps is None:
            value = dataclasses.replace(value, max_episode_steps=self.scenario.episode_steps)
        self._spec = value
