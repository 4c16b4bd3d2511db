"""Training callbacks that measure serving: the env's serving metrics of the training episodes
(TensorBoard ``serving/*`` and ``training.csv``), and validation every ``eval_freq`` env steps,
where the agent (deterministic) and, once, a heuristic are scored on a held-out trace and the
best model is kept.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from agents.policy import known_policies, make_policy
from agents.rl.policy import current_policy
from serflow_env.observation import column, observation_size
from serflow_env.sb3 import info_columns
from serflow_env.scenario import Scenario
from serflow_eval.metrics import pooled_latency_quantiles
from serflow_eval.model_files import save_model
from serflow_eval.scoring import ServingMetrics, run_policy


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append one row (header written with the first row; append survives resumes)."""
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def sequential_sums(starts: list[float], values: np.ndarray) -> list[float]:
    """Per row r of ``values`` (R, N): ``starts[r] + values[r, 0] + values[r, 1] + ...`` added
    left to right in float64, as a loop over the envs would (``np.sum`` adds pairwise, which
    rounds differently in the last bits)."""
    table = np.column_stack([np.asarray(starts, dtype=np.float64),
                             np.asarray(values, dtype=np.float64)])
    return np.cumsum(table, axis=1)[:, -1].tolist()


def function_share_from_obs(obs: np.ndarray, num_stages: int) -> tuple[float, float]:
    """(function-served stage executions, all stage executions), in reference-rate units.

    Uses the observation's per-stage rate and realised function share (raw observations; of
    stacked frames, the newest, which comes last).
    """
    newest = obs[:, obs.shape[1] - observation_size(num_stages):]
    rate = newest[:, column("stage_rate", num_stages=num_stages)]
    share = newest[:, column("faas_share", num_stages=num_stages)]
    return float((rate * share).sum()), float(rate.sum())


class ServingMetricsCallback(BaseCallback):
    """Logs the env's own scalars (serving/*) from the adapter's info dicts every rollout.

    Off-policy algorithms have a rollout per env step, so values are aggregated over at least
    ``min_steps`` env steps before being recorded. Rows also go to ``csv_path`` (if given).
    """

    def __init__(self, num_stages: int, latency_grid_s: np.ndarray, min_steps: int = 1,
                 csv_path: Path | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.num_stages = num_stages
        self.latency_grid_s = np.asarray(latency_grid_s, dtype=float)  # of info latency_cdf
        self.min_steps = min_steps
        self.csv_path = csv_path
        self._reset()

    #: (accumulator, info key) summed over envs and steps
    SUMS = (("cost", "cost_usd"), ("arrived", "requests_arrived"), ("viol", "slo_violations"),
            ("vms", "vms_running"), ("r_cost", "reward_cost"), ("r_slo", "reward_slo"))
    KEYS = (*(name for _, name in SUMS), "latency_cdf", "requests_completed")

    def _reset(self) -> None:
        self.acc = dict.fromkeys(("cost", "arrived", "viol", "vms", "faas", "stage",
                                  "r_cost", "r_slo", "n"), 0.0)
        self.cdf: list[np.ndarray] = []  # (N, G) per step, for the pooled quantiles
        self.completed: list[np.ndarray] = []

    def _on_step(self) -> bool:
        infos = self.locals.get("infos") or []
        if not len(infos):
            return True
        acc = self.acc
        cols = info_columns(infos, self.KEYS)
        sums = sequential_sums([acc[key] for key, _ in self.SUMS],
                               np.stack([cols[name] for _, name in self.SUMS]))
        for (key, _), total in zip(self.SUMS, sums):
            acc[key] = total
        self.cdf.append(cols["latency_cdf"])
        self.completed.append(np.asarray(cols["requests_completed"], dtype=float))
        acc["n"] += len(infos)
        vn = self.model.get_vec_normalize_env()
        raw = vn.get_original_obs() if vn is not None else self.locals.get("new_obs")
        dones = np.asarray(self.locals.get("dones", np.zeros(len(infos), bool)), dtype=bool)
        if raw is not None and len(raw) == len(dones) and (~dones).any():
            faas, stage = function_share_from_obs(np.asarray(raw)[~dones], self.num_stages)
            acc["faas"] += faas
            acc["stage"] += stage
        return True

    def _on_rollout_end(self) -> None:
        acc = self.acc
        if acc["n"] < self.min_steps or acc["arrived"] <= 0:
            return
        arrived = acc["arrived"]
        # the CDF rows in C order, (step, env) as a per-env loop appended them, so the
        # mixture adds them in the same order (np.concatenate keeps the info's F order)
        cdf = np.ascontiguousarray(np.concatenate(self.cdf))
        values = {
            "serving/cost_per_1k_requests": 1000.0 * acc["cost"] / arrived,
            "serving/violation_rate": acc["viol"] / arrived,
            "serving/latency_p95_s": float(pooled_latency_quantiles(
                cdf, np.concatenate(self.completed),
                self.latency_grid_s)[1]),
            "serving/vms_running": acc["vms"] / acc["n"],
            "serving/function_share": acc["faas"] / max(acc["stage"], 1e-12),
            "serving/reward_cost_per_step": acc["r_cost"] / acc["n"],
            "serving/reward_slo_per_step": acc["r_slo"] / acc["n"],
        }
        for key, value in values.items():
            self.logger.record(key, value)
        if self.csv_path is not None:
            episodes = list(self.model.ep_info_buffer or [])
            ep_return = float(np.mean([e["r"] for e in episodes])) if episodes else float("nan")
            row = {"timesteps": self.num_timesteps, "time": time.time(),
                   "episode_return": ep_return}
            row.update({k.split("/", 1)[1]: v for k, v in values.items()})
            append_csv(self.csv_path, row)
        self._reset()


def rank_key(agent: ServingMetrics, heuristic: ServingMetrics | None,
             tolerance: float = 0.0) -> tuple[int, float]:
    """Larger is better. With a heuristic: meeting its violation rate comes first, then low
    cost; otherwise (or when not meeting it) the episode return decides."""
    if heuristic is None:
        return (0, agent.episode_return)
    if agent.violation_rate <= heuristic.violation_rate + tolerance:
        return (1, -agent.cost_per_1k_requests)
    return (0, agent.episode_return)


class HeuristicEvalCallback(BaseCallback):
    """Every ``eval_freq`` env steps: score the agent (deterministic) and, once, the heuristic
    on the validation scenario; log both (eval/*), append them to ``csv_path`` and save the
    best model (``best_model.zip`` + ``best_model_vecnormalize.pkl``) in ``out``.
    """

    def __init__(self, scenario: Scenario, out: Path, train_reference_rate: float,
                 action_map: dict[str, Any] | None, eval_freq: int, episodes: int = 4,
                 frame_stack: int = 1,
                 seed: int = 100,
                 heuristic: str | None = "serflow", tolerance: float = 0.0,
                 log: Callable[[str], None] = print, verbose: int = 0,
                 heuristic_metrics: ServingMetrics | None = None,
                 context: dict[str, Any] | None = None) -> None:
        """``heuristic_metrics``: the heuristic's scores if the caller has them already
        (otherwise it is scored when training starts); ``context``: the run's context
        features (:mod:`serflow_env.context`)."""
        super().__init__(verbose)
        self.scenario = scenario
        self.out = Path(out)
        self.train_reference_rate = train_reference_rate
        self.action_map = action_map
        self.frame_stack = frame_stack
        self.context = context
        self.eval_freq = eval_freq
        self.episodes = episodes
        self.seed = seed
        self.tolerance = tolerance
        self.log = log
        self.heuristic_name = heuristic
        self.heuristic_metrics: ServingMetrics | None = heuristic_metrics
        self.best_key: tuple[int, float] | None = None
        self.last_eval = 0
        self.csv_path = self.out / "evaluations.csv"

    def _init_callback(self) -> None:
        self.last_eval = self.num_timesteps
        self.best_key = self._previous_best()
        if self.heuristic_name and self.heuristic_metrics is None:
            self.heuristic_metrics = self._score_heuristic(self.heuristic_name)

    def _previous_best(self) -> tuple[int, float] | None:
        """On resume: the best key among evaluations already in the csv (same ranking)."""
        if not self.csv_path.exists() or not (self.out / "best_model.zip").exists():
            return None
        with open(self.csv_path, encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        keys = [(int(r["best_rank_class"]), float(r["best_rank_value"])) for r in rows]
        return max(keys) if keys else None

    def _score_heuristic(self, name: str) -> ServingMetrics | None:
        if name not in known_policies():
            self.log(f"[eval] heuristic {name!r} is not registered (known: "
                     f"{known_policies()}); evaluating the agent alone, best model by return")
            return None
        metrics = run_policy(make_policy(name, self.scenario), self.scenario, self.episodes,
                             self.seed, name=name)
        self.log(f"[eval] heuristic {name}: cost/1k {metrics.cost_per_1k_requests:.5f} $, "
                 f"violations {100 * metrics.violation_rate:.3f} %, "
                 f"p95 {metrics.p95_latency_s:.3f} s, return {metrics.episode_return:.1f}")
        return metrics

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last_eval >= self.eval_freq:
            self.last_eval = self.num_timesteps
            self.evaluate()
        return True

    def evaluate(self) -> ServingMetrics:
        policy = current_policy(self.model, self.scenario, self.train_reference_rate,
                                self.action_map, self.frame_stack, self.context)
        agent = run_policy(policy, self.scenario, self.episodes, self.seed, name="agent")
        heur = self.heuristic_metrics
        for key in ("cost_per_1k_requests", "violation_rate", "p95_latency_s",
                    "episode_return", "vms_running", "function_share"):
            self.logger.record(f"eval/agent_{key}", getattr(agent, key))
            if heur is not None:
                self.logger.record(f"eval/heuristic_{key}", getattr(heur, key))
        if heur is not None:
            self.logger.record("eval/cost_vs_heuristic", agent.cost_usd / heur.cost_usd - 1.0)
        key = rank_key(agent, heur, self.tolerance)
        improved = self.best_key is None or key > self.best_key
        if improved:
            self.best_key = key
            save_model(self.model, self.out / "best_model.zip",
                       self.out / "best_model_vecnormalize.pkl")
        row = {"timesteps": self.num_timesteps, "time": time.time(),
               "agent_cost_per_1k": agent.cost_per_1k_requests,
               "agent_violation_rate": agent.violation_rate,
               "agent_p95_s": agent.p95_latency_s, "agent_return": agent.episode_return,
               "agent_vms": agent.vms_running, "agent_function_share": agent.function_share,
               "heuristic_cost_per_1k": heur.cost_per_1k_requests if heur else float("nan"),
               "heuristic_violation_rate": heur.violation_rate if heur else float("nan"),
               "heuristic_return": heur.episode_return if heur else float("nan"),
               "best_rank_class": key[0], "best_rank_value": key[1], "new_best": int(improved)}
        append_csv(self.csv_path, row)
        vs = (f", cost vs {heur.policy} {100 * (agent.cost_usd / heur.cost_usd - 1):+.1f} %"
              if heur else "")
        self.log(f"[eval] {self.num_timesteps} steps: agent cost/1k "
                 f"{agent.cost_per_1k_requests:.5f} $, violations "
                 f"{100 * agent.violation_rate:.3f} %, p95 {agent.p95_latency_s:.3f} s, "
                 f"return {agent.episode_return:.1f}{vs}{' (new best)' if improved else ''}")
        self.logger.dump(self.num_timesteps)
        return agent
