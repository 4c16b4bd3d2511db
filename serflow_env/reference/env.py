"""The reference simulator behind the fast env's control interface (a Gymnasium VectorEnv).

``ReferenceVectorEnv`` has the spaces, observation layout, info keys, reward, reset options and
autoreset modes (``SAME_STEP``, ``NEXT_STEP``) of :class:`serflow_env.SerflowVectorEnv`, so any
policy runs on it unchanged. Its N environments are per-request simulations run one after another.

Randomness: ``reset(seed=s)`` creates the fast model's streams (``state.make_rngs(s)``) and
draws from them, exactly as the fast model does, the episode starts and trace choices, the
exit-probability drift and the number of requests arriving in each tick. So for the same seed
and number of envs both simulators replay the same arrivals per tick under the same
exit-probability path (common random numbers: their differences are the models', not noise).
Everything per request (arrival times within the tick, service and cold-start times, exit
decisions) comes from per-env generators seeded from ``s`` and the env index. Same seed, same
result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from serflow_env.autoreset import parse_autoreset_mode, pending_reset_step, same_step_autoreset
from serflow_env.engine import ScenarioLike, seed_entropy, validate_env_args
from serflow_env.observation import (
    action_space,
    build_info,
    build_observation,
    neutral_output,
    observation_space,
    validate_actions,
)
from serflow_env.params import make_params
from serflow_env.reference.arrivals import tick_counts, trace_positions
from serflow_env.reference.simulator import RequestSimulator
from serflow_env.routing import decode_action, exit_probabilities
from serflow_env.scenario import load_scenario
from serflow_env.state import draw_episode_starts, make_rngs

REQUEST_STREAMS = ("arrivals", "exits", "service")


def request_streams(entropy: int, env_index: int) -> dict[str, np.random.Generator]:
    """Per-env generators for the per-request draws, independent of the number of envs."""
    return {name: np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(7, env_index,
                                                                                   j)))
            for j, name in enumerate(REQUEST_STREAMS)}


class ReferenceVectorEnv(VectorEnv):
    """N per-request SERFLOW simulations with the fast vector env's interface.

    Args:
        num_envs: number of environments (simulated one after another).
        scenario: a shipped preset name, a YAML path, a mapping or a Scenario.
        action_out_of_range: ``"clip"`` (default) or ``"error"``, as in the fast env.
        autoreset_mode: ``SAME_STEP`` (default) or ``NEXT_STEP``, as in the fast env.
        overrides: scenario overrides with dotted keys; ``**kwargs`` top-level ones.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, scenario: ScenarioLike = "default",
                 action_out_of_range: str = "clip", overrides: Mapping[str, Any] | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
                 **kwargs: Any) -> None:
        validate_env_args(num_envs, action_out_of_range)
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self._autoreset_pending = False  # NEXT_STEP: the last step truncated (every env)
        self.scenario = load_scenario(scenario, **dict(overrides or {}), **kwargs)
        self.params = make_params(self.scenario)
        self.num_envs = int(num_envs)
        self.action_out_of_range = action_out_of_range
        self.single_observation_space = observation_space(self.params)
        self.single_action_space = action_space(self.params)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        n, k = self.num_envs, self.params.num_stages
        self.state = SimpleNamespace(
            time_s=np.zeros(n), steps=np.zeros(n, dtype=np.int64),
            trace_idx=np.zeros(n, dtype=np.int64), trace_start_s=np.zeros(n),
            drift=np.zeros((n, k - 1)), prev_action=np.zeros((n, 2 * k), dtype=np.float32),
            vm_running=np.zeros((n, k), dtype=np.int64), vm_booting=np.zeros((n, k), np.int64),
            backlog=np.zeros((n, k), dtype=np.int64))
        self._seed(None)
        self.sims = [RequestSimulator(self.scenario, self.params, self._streams[i])
                     for i in range(n)]
        self._needs_reset = True

    # ------------------------------------------------------------------ seeding and reset
    def _seed(self, entropy: int | None) -> None:
        seq = np.random.SeedSequence(entropy)
        self.rngs = make_rngs(seq.entropy)  # the fast model's streams for the same seed
        self._streams = [request_streams(seq.entropy, i) for i in range(self.num_envs)]

    def _reset_where(self, mask: np.ndarray, options: Mapping[str, Any] | None = None) -> None:
        """Draw episode starts and drift exactly as ``state.reset_envs`` does, then reset."""
        p, s, count = self.params, self.state, int(mask.sum())
        idx, start = draw_episode_starts(p, self.rngs, count, options)
        s.trace_idx[mask], s.trace_start_s[mask] = idx, start
        s.time_s[mask], s.steps[mask], s.drift[mask] = 0.0, 0, 0.0
        if p.drift_vol > 0:
            s.drift[mask] = self.rngs["drift"].normal(0.0, p.drift_vol,
                                                      size=(count, p.num_stages - 1))
        s.prev_action[mask] = 0.0
        for i in np.flatnonzero(mask):
            self.sims[i].reset(s.trace_idx[i], s.trace_start_s[i])
        self._sync_vms()

    def _sync_vms(self) -> None:
        for i, sim in enumerate(self.sims):
            self.state.vm_running[i] = [len(f.running) for f in sim.fleets]
            self.state.vm_booting[i] = [len(f.booting) for f in sim.fleets]
            self.state.backlog[i] = [len(q) for q in sim.queue]

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all envs; a seed re-creates every random stream."""
        entropy = seed_entropy(seed)
        if entropy is not None:
            self._seed(entropy)
            for sim, streams in zip(self.sims, self._streams):
                sim.set_streams(streams)
        self._reset_where(np.ones(self.num_envs, dtype=bool), options)  # validates options
        self._needs_reset = False
        self._autoreset_pending = False
        return build_observation(self.params, self.state,
                                 neutral_output(self.params, self.state)), {}

    # ------------------------------------------------------------------ stepping
    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("ReferenceVectorEnv.step called before reset(); call reset()")
        if self._autoreset_pending:
            self._autoreset_pending = False
            every = np.ones(self.num_envs, dtype=bool)
            return pending_reset_step(self.num_envs, lambda: self._autoreset(None, every))
        p, s = self.params, self.state
        a = validate_actions(actions, self.num_envs, p.num_stages, self.action_out_of_range,
                             batched=True)
        targets, shares = decode_action(p, a)
        probs = exit_probabilities(p, s)
        positions = trace_positions(s.trace_start_s, s.time_s, p.ticks_per_step, p.dt,
                                    p.time_warp)
        counts = tick_counts(p.traces, s.trace_idx, positions, self.rngs["arrivals"])
        outs = [sim.step(targets[i], shares[i], probs[i], positions[i], counts[i])
                for i, sim in enumerate(self.sims)]
        out = {key: np.array([o[key] for o in outs]) for key in outs[0]}
        if p.drift_vol > 0:  # the fast model's Ornstein-Uhlenbeck update, same draws
            decay = math.exp(-p.ticks_per_step * p.dt / p.drift_reversion_s)
            s.drift = s.drift * decay + p.drift_vol * math.sqrt(1 - decay * decay) \
                * self.rngs["drift"].standard_normal(s.drift.shape)
        s.time_s = s.time_s + p.control_interval_s
        s.steps = s.steps + 1
        s.prev_action = a.astype(np.float32)
        self._sync_vms()
        out["reward"] = -(p.w_cost * out["cost"] / p.cost_scale
                          + p.w_slo * out["violations"] / p.request_scale)
        obs = build_observation(p, s, out)
        info = build_info(p, out)
        reward = out["reward"].astype(np.float64)
        truncated = s.steps >= p.episode_steps
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._autoreset_pending = bool(truncated.any())
        else:
            obs = same_step_autoreset(obs, info, truncated, lambda mask: self._autoreset(obs, mask))
        return obs, reward, np.zeros(self.num_envs, dtype=bool), truncated, info

    def _autoreset(self, obs: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
        """``obs`` with the envs in ``mask`` reset (their first observation); every env's first
        observation when ``obs`` is None."""
        self._reset_where(mask)
        fresh = build_observation(self.params, self.state, neutral_output(self.params, self.state))
        if obs is None:
            return fresh
        out = obs.copy()
        out[mask] = fresh[mask]
        return out

    def episode_latencies(self, env_index: int = 0) -> np.ndarray:
        """Latencies (s) of every request completed so far in env ``env_index``'s episode,
        or of its previous episode right after an (auto)reset."""
        sim = self.sims[env_index]
        return (np.asarray(sim.episode_latencies) if sim.episode_latencies
                else sim.last_episode_latencies)
