"""The callback of a benchmark run: evaluations on a grid of steps, and checkpoints between rollouts."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from sb3_equivariant.benchmark.storage import atomic_write_text


class EvalCurveCallback(BaseCallback):
    """
    Deterministic evaluation every ``eval_freq`` env steps (at grid points ``k * eval_freq``, including 0), appended
    to ``rows`` with the mean return of the last training episodes; calls ``checkpoint(wall_time)`` at the start of a
    rollout when ``checkpoint_seconds`` have passed since the last one and steps were taken since.

    :param eval_env: evaluation envs (one episode each).
    :param eval_seed: reseeds ``eval_env`` before every evaluation: the same start states every time, so differences
        between points are the policy's.
    :param eval_freq: env steps between evaluations.
    :param n_eval_episodes: episodes per evaluation.
    :param rows: the curve, appended to (resumed runs pass the rows of their checkpoint).
    :param checkpoint: writes a checkpoint, given the run's wall time so far.
    :param checkpoint_seconds: minimum wall time between checkpoints.
    :param wall_offset: wall time already spent (resumed runs).
    :param progress_path: file updated with the step count after each evaluation and checkpoint (for the progress bar).
    :param episodes: training episodes to restore into SB3's ``ep_info_buffer`` (resumed runs: SB3 does not save it).
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_seed: int,
        eval_freq: int,
        n_eval_episodes: int,
        rows: list[dict[str, Any]],
        checkpoint: Callable[[float], None],
        checkpoint_seconds: float,
        wall_offset: float,
        progress_path: Path,
        episodes: list[dict[str, float]] | None = None,
    ):
        super().__init__()
        self.eval_env, self.eval_seed = eval_env, eval_seed
        self.eval_freq, self.n_eval_episodes = eval_freq, n_eval_episodes
        self.rows, self.checkpoint, self.checkpoint_seconds = rows, checkpoint, checkpoint_seconds
        self.progress_path = progress_path
        self.episodes = episodes or []
        self.start = time.time() - wall_offset
        self.last_checkpoint = time.time()
        self.checkpointed_steps: int | None = None

    def _next_step(self) -> int:
        return 0 if not self.rows else self.rows[-1]["step"] + self.eval_freq

    def _train_mean_return(self) -> float:
        buffer = self.model.ep_info_buffer
        return float(np.mean([ep["r"] for ep in buffer])) if buffer else math.nan

    def _evaluate(self) -> None:
        self.eval_env.seed(self.eval_seed)
        returns, _ = evaluate_policy(
            self.model, self.eval_env, n_eval_episodes=self.n_eval_episodes, deterministic=True, return_episode_rewards=True
        )
        self.rows.append(
            dict(
                step=(self.num_timesteps // self.eval_freq) * self.eval_freq,
                timesteps=int(self.num_timesteps),
                mean_return=float(np.mean(returns)),
                std_return=float(np.std(returns)),
                episodes=len(np.atleast_1d(returns)),
                wall_time=time.time() - self.start,
                train_mean_return=self._train_mean_return(),
            )
        )
        self.logger.record("eval/mean_return", self.rows[-1]["mean_return"])
        atomic_write_text(self.progress_path, str(self.num_timesteps))

    def _on_training_start(self) -> None:
        self.checkpointed_steps = self.num_timesteps
        if self.model.ep_info_buffer is not None:
            self.model.ep_info_buffer.extend(self.episodes)
        if not self.rows:
            self._evaluate()

    def _on_rollout_start(self) -> None:
        # Between SB3's update and the next rollout: nothing collected is lost by resuming from here.
        if self.num_timesteps > (self.checkpointed_steps or 0) and time.time() - self.last_checkpoint >= self.checkpoint_seconds:
            self.checkpoint(time.time() - self.start)
            self.checkpointed_steps, self.last_checkpoint = self.num_timesteps, time.time()
            atomic_write_text(self.progress_path, str(self.num_timesteps))

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_step():
            self._evaluate()
        return True


def training_episodes(model: BaseAlgorithm) -> list[dict[str, float]]:
    """The last training episodes (SB3's ``ep_info_buffer``, which it does not save), for a checkpoint."""
    return [{k: float(v) for k, v in ep.items() if k in ("r", "l", "t")} for ep in (model.ep_info_buffer or [])]


__all__ = ["EvalCurveCallback", "training_episodes"]
