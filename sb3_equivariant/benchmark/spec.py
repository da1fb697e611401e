"""What one training run is (:class:`RunSpec`), where its files go, and its evaluation seeds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

#: Evaluation seeds of training seed ``s`` are ``EVAL_SEED_BASE + s * EVAL_SEED_STRIDE + i``, ``i < n_eval_episodes``:
#: disjoint between training seeds (and from the training envs' seeds ``s + i``).
EVAL_SEED_BASE = 1_000_000
EVAL_SEED_STRIDE = 10_000
#: Training seeds stay below this, far below the evaluation seeds.
MAX_SEED = 100_000


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """
    One training run.

    :param experiment: name of the experiment (a directory under the results root).
    :param config: zoo config name (``"ppo"``, ``"ppo_paper"``...), which also fixes the algorithm.
    :param algo: rl_zoo3's name: ``"ppo"``, ``"a2c"``, ``"dqn"``, ``"qrdqn"``, ``"sac"``, ``"td3"`` or ``"ppo_lstm"``.
    :param env_id: gymnasium id.
    :param method: method of ``methods.yml``.
    :param seed: seed of the algorithm and the training envs (eval envs: :func:`eval_seed`).
    :param n_timesteps: training budget in env steps.
    :param eval_freq: env steps between evaluations (the first is at step 0).
    :param n_eval_episodes: deterministic evaluation episodes (one per eval env).
    :param overrides: hyperparameters that replace the config's (e.g. ``(("learning_rate", 1e-3),)``).
    :param label: name of the variant in results (default: ``method``).
    """

    experiment: str
    config: str
    algo: str
    env_id: str
    method: str
    seed: int
    n_timesteps: int
    eval_freq: int
    n_eval_episodes: int = 10
    overrides: tuple[tuple[str, Any], ...] = ()
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.method

    def relative_dir(self) -> Path:
        return Path(self.experiment) / env_slug(self.env_id) / self.name / f"seed{self.seed}"


def env_slug(env_id: str) -> str:
    """A directory name for an env id (``sb3_equivariant/GridWorld-v0`` -> ``sb3_equivariant-GridWorld-v0``)."""
    return env_id.replace("/", "-")


def eval_seed(seed: int, n_eval_episodes: int) -> int:
    """
    Seed of the first evaluation env of training seed ``seed`` (env ``i`` gets ``eval_seed + i``). Seeds ``k`` and
    ``k + 1`` must not share start states (with ``seed + 10_000 + i`` they shared all but one).
    """
    if not 0 <= seed < MAX_SEED or n_eval_episodes > EVAL_SEED_STRIDE:
        raise ValueError(
            f"seed {seed} / n_eval_episodes {n_eval_episodes}: disjoint evaluation seeds need 0 <= seed < {MAX_SEED} "
            f"and n_eval_episodes <= {EVAL_SEED_STRIDE}"
        )
    return EVAL_SEED_BASE + seed * EVAL_SEED_STRIDE


__all__ = ["EVAL_SEED_BASE", "EVAL_SEED_STRIDE", "MAX_SEED", "RunSpec", "env_slug", "eval_seed"]
