"""
Diagnostics of symmetric states: how far from the states (and actions) that the symmetry fixes do trained policies go?
The norm of the part of ``x`` that the group does not fix is ``|x - P x|`` with ``P = 1/|G| Σ_g ρ(g)``, the projector
onto the invariant subspace (for a leg swap: half the left-right difference). An equivariant deterministic policy maps
a symmetric state to a symmetric action, so under equivariant dynamics the symmetric states form an invariant set: a
policy that stays near it cannot, e.g., alternate its legs. ``benchmarks/asymmetry.py`` runs this over an experiment.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from sb3_equivariant.benchmark.build import algorithm_class, make_envs, resolved_hyperparams
from sb3_equivariant.benchmark.presets import PRESETS
from sb3_equivariant.benchmark.spec import EVAL_SEED_STRIDE, RunSpec, eval_seed
from sb3_equivariant.envs import get_symmetry
from sb3_equivariant.representation_algebra import Representation


@functools.cache
def _invariant_projector(rep: Representation) -> np.ndarray:
    """``P = 1/|G| Σ_g ρ(g)`` of an orthogonal representation (once per representation: it is used every step)."""
    mats = rep.matrices
    if not np.allclose(mats @ mats.transpose(0, 2, 1), np.eye(rep.dim), atol=1e-8):
        raise ValueError(f"{rep}: not orthogonal, so |x - Px| would not be invariant; use an orthogonal representation")
    return mats.mean(axis=0)  # type: ignore[no-any-return]


def non_invariant_norm(rep: Representation, x: np.ndarray) -> float:
    """
    ``|x - P x|``: the norm of the part of ``x`` that the group does not fix (0 exactly on symmetric points).

    :param rep: the representation acting on ``x``; orthogonal, so that ``P`` is the orthogonal projector and the
        norm is the same at ``x`` and at every ``ρ(g) x``.
    :param x: a vector of ``rep``'s dimension.
    :raises ValueError: for a representation that is not orthogonal.
    """
    return float(np.linalg.norm(x - _invariant_projector(rep) @ x))


def rollout_asymmetry(model: Any, make_env: Callable[[int], VecEnv], seeds: list[int], deterministic: bool) -> dict[str, float]:
    """
    Mean return, episode length and per-step non-invariant norms of observation and action, one episode per seed.

    :param model: a trained SB3 model.
    :param make_env: a one-env ``VecEnv`` with its symmetry attached (vector observations, Box actions) from a seed.
    :param seeds: reset seeds, one episode each.
    :param deterministic: greedy (``True``) or sampled actions.
    """
    returns, lengths, obs_norms, action_norms = [], [], [], []
    for seed in seeds:
        env = make_env(seed)
        symmetry = get_symmetry(env, required=True)
        if not isinstance(symmetry.obs_action, Representation) or symmetry.discrete:
            raise ValueError(f"{symmetry.name}: asymmetry needs vector observations and Box actions (a Representation each)")
        obs, done, total, steps = env.reset(), False, 0.0, 0
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            assert isinstance(obs, np.ndarray)  # vector observations (checked above)
            obs_norms.append(non_invariant_norm(symmetry.obs_action, obs[0]))
            action_norms.append(non_invariant_norm(symmetry.action_rep, action[0]))
            obs, reward, dones, _ = env.step(action)
            total, steps, done = total + float(reward[0]), steps + 1, bool(dones[0])
        env.close()
        returns.append(total)
        lengths.append(steps)
    return {
        "return": float(np.mean(returns)),
        "length": float(np.mean(lengths)),
        "obs_asymmetry": float(np.mean(obs_norms)),
        "action_asymmetry": float(np.mean(action_norms)),
    }


def _one_env(spec: RunSpec, params: dict[str, Any], seed: int) -> VecEnv:
    """The run's env, one copy, seeded: as the benchmark builds it (env kwargs, symmetry attached)."""
    return make_envs(spec, params, seed, 1)  # type: ignore[no-any-return]


def measure(preset: str, checkpoints: Path, results: Path, episodes: int) -> list[dict[str, Any]]:
    """
    One row per finished run with a final model and per policy (greedy, stochastic). Each run's env, algorithm class
    and hyperparameters are rebuilt as it trained; the episodes start from states of the run's own evaluation seed
    block, disjoint from its evaluation episodes.

    :param preset: a benchmark preset.
    :param checkpoints: the runs' checkpoint root (``final_model.zip`` of each run).
    :param results: the results root (each run's ``manifest.json`` says it finished and with which code).
    :param episodes: episodes per run and policy, at most half the evaluation seed block.
    """
    if not 0 < episodes <= EVAL_SEED_STRIDE // 2:
        raise ValueError(f"episodes must be in 1..{EVAL_SEED_STRIDE // 2} (half a run's evaluation seed block), got {episodes}")
    experiment = PRESETS[preset]
    rows = []
    for spec in experiment.specs(results):
        model_path = checkpoints / spec.relative_dir() / "final_model.zip"
        manifest_path = results / spec.relative_dir() / "manifest.json"
        if not (model_path.exists() and manifest_path.exists()):
            continue
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("status") != "done":
            continue
        params = resolved_hyperparams(spec)
        model = algorithm_class(spec.algo, params).load(model_path, device="cpu")
        first = eval_seed(spec.seed, experiment.n_eval_episodes) + EVAL_SEED_STRIDE // 2
        commits = [manifest["code"]["commit"], *(c["commit"] for c in manifest.get("resumed_from_code", []))]
        make_env = functools.partial(_one_env, spec, params)
        for deterministic in (True, False):
            rows.append(
                {
                    "method": spec.name,
                    "seed": spec.seed,
                    "policy": "greedy" if deterministic else "stochastic",
                    "episodes": episodes,
                    "model_commits": commits,
                    **rollout_asymmetry(model, make_env, [first + i for i in range(episodes)], deterministic),
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """
    Medians over seeds per method and policy, as a markdown table.

    :param rows: the rows of :func:`measure`.
    """
    lines = [
        "| method | policy | seeds | return | episode length | observation asymmetry | action asymmetry |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        for policy in ("greedy", "stochastic"):
            sel = [r for r in rows if r["method"] == method and r["policy"] == policy]
            med = {k: float(np.median([r[k] for r in sel])) for k in ("return", "length", "obs_asymmetry", "action_asymmetry")}
            lines.append(
                f"| {method} | {policy} | {len(sel)} | {med['return']:.0f} | {med['length']:.0f} | "
                f"{med['obs_asymmetry']:.2f} | {med['action_asymmetry']:.3f} |"
            )
    return "\n".join(lines)
