"""
Diagnostics of symmetric states: how far from the states (and actions) that the symmetry fixes do trained policies go?
The norm of the part of ``x`` that the group does not fix is ``|x - P x|`` with ``P = 1/|G| Σ_g ρ(g)``, the projector
onto the invariant subspace (for a leg swap: half the left-right difference). An equivariant deterministic policy maps
a symmetric state to a symmetric action, so under equivariant dynamics the symmetric states form an invariant set: a
policy that stays near it cannot, e.g., alternate its legs. ``benchmarks/asymmetry.py`` runs this over an experiment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_equivariant.benchmark.build import algorithm_class
from sb3_equivariant.benchmark.presets import PRESETS
from sb3_equivariant.benchmark.spec import EVAL_SEED_STRIDE, eval_seed
from sb3_equivariant.envs.registry import symmetry_for
from sb3_equivariant.representation_algebra import Representation


def non_invariant_norm(rep: Representation, x: np.ndarray) -> float:
    """
    ``|x - P x|``: the norm of the part of ``x`` that the group does not fix (0 exactly on symmetric points).

    :param rep: the representation acting on ``x``.
    :param x: a vector of ``rep``'s dimension.
    """
    projector = rep.matrices.mean(axis=0)
    return float(np.linalg.norm(x - projector @ x))


def rollout_asymmetry(model: Any, env_id: str, seeds: list[int], deterministic: bool) -> dict[str, float]:
    """
    Mean return, episode length and per-step non-invariant norms of observation and action, one episode per seed.

    :param model: a trained SB3 model on ``env_id``.
    :param env_id: a gymnasium id with a registered symmetry on vector observations and Box actions.
    :param seeds: reset seeds, one episode each.
    :param deterministic: greedy (``True``) or sampled actions.
    """
    symmetry = symmetry_for(env_id)
    if not isinstance(symmetry.obs_action, Representation) or symmetry.discrete:
        raise ValueError(f"{env_id}: asymmetry needs vector observations and Box actions, as a Representation on each")
    returns, lengths, obs_norms, action_norms = [], [], [], []
    for seed in seeds:
        env = gym.make(env_id)
        obs, _ = env.reset(seed=seed)
        done, total, steps = False, 0.0, 0
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs_norms.append(non_invariant_norm(symmetry.obs_action, obs))
            action_norms.append(non_invariant_norm(symmetry.action_rep, action))
            obs, reward, terminated, truncated, _ = env.step(action)
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        env.close()
        returns.append(total)
        lengths.append(steps)
    return {
        "return": float(np.mean(returns)),
        "length": float(np.mean(lengths)),
        "obs_asymmetry": float(np.mean(obs_norms)),
        "action_asymmetry": float(np.mean(action_norms)),
    }


def measure(preset: str, checkpoints: Path, results: Path, episodes: int) -> list[dict[str, Any]]:
    """
    One row per finished run with a final model and per policy (greedy, stochastic).

    :param preset: a benchmark preset.
    :param checkpoints: the runs' checkpoint root (``final_model.zip`` of each run).
    :param results: the results root (each run's ``manifest.json`` says it finished and at which commit).
    :param episodes: episodes per run and policy.
    """
    experiment = PRESETS[preset]
    rows = []
    for spec in experiment.specs(results):
        model_path = checkpoints / spec.relative_dir() / "final_model.zip"
        manifest = results / spec.relative_dir() / "manifest.json"
        if not (model_path.exists() and manifest.exists()):
            continue
        model = algorithm_class(spec.algo).load(model_path, device="cpu")
        # Start states disjoint from the run's evaluation episodes (the second half of its seed block).
        seeds = [eval_seed(spec.seed, experiment.n_eval_episodes) + EVAL_SEED_STRIDE // 2 + i for i in range(episodes)]
        for deterministic in (True, False):
            rows.append(
                {
                    "method": spec.name,
                    "seed": spec.seed,
                    "policy": "greedy" if deterministic else "stochastic",
                    "episodes": episodes,
                    "model_commit": json.loads(manifest.read_text())["code"]["commit"],
                    **rollout_asymmetry(model, spec.env_id, seeds, deterministic),
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
