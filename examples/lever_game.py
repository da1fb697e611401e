"""Self-play and cross-play in the lever game: PPO pairs with a standard and an equivariant policy, and test-time
symmetrisation of the standard one.

Each seed trains one self-play pair (SB3 PPO on the joint env: a ``MultiDiscrete`` policy is a product of independent
per-player policies). Then player 1 of every seed plays with player 2 of every seed: the diagonal of the score table is
self-play, the rest cross-play. Scores are exact expected payoffs computed from the players' action probabilities.

    python examples/lever_game.py --seeds 10 --steps 8000 --out results/lever_game
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3 import PPO

from sb3_equivariant import EquivariantMlpPolicy, make_symmetric_vec_env
from sb3_equivariant.augmentation.test_time import action_probabilities, symmetrised_probabilities
from sb3_equivariant.multiagent import LEVER_ID, cross_play_scores, lever_symmetry
from sb3_equivariant.multiagent.lever import lever_payoffs

METHODS = {"baseline": "MlpPolicy", "equivariant": EquivariantMlpPolicy}


def train_pair(method: str, seed: int, steps: int) -> PPO:
    """One self-play pair: PPO on the joint lever game."""
    env = make_symmetric_vec_env(LEVER_ID, n_envs=8, seed=seed)
    model = PPO(METHODS[method], env, seed=seed, n_steps=16, batch_size=64, n_epochs=4, learning_rate=3e-3, device="cpu")
    return model.learn(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8000, help="env steps (one-step episodes) per pair")
    parser.add_argument("--out", type=Path, default=Path("results/lever_game"))
    args = parser.parse_args()
    th.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    obs, payoffs, symmetry = np.zeros((1, 1), dtype=np.float32), lever_payoffs(), lever_symmetry()
    probs: dict[str, list[np.ndarray]] = {"baseline": [], "equivariant": [], "baseline_symmetrised": []}
    for method in METHODS:
        for seed in range(args.seeds):
            model = train_pair(method, seed, args.steps)
            probs[method].append(action_probabilities(model.policy, obs)[0].numpy())
            if method == "baseline":
                probs["baseline_symmetrised"].append(symmetrised_probabilities(model.policy, obs, symmetry)[0].numpy())
            print(f"{method} seed {seed}: player 1 pulls {np.round(probs[method][-1][0], 2)}", flush=True)
    with open(args.out / "policies.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "player", *[f"lever_{a}" for a in range(len(payoffs))]])
        for method, runs in probs.items():
            for seed, p in enumerate(runs):
                for player in range(2):
                    writer.writerow([method, seed, player + 1, *np.round(p[player], 6)])
    rows = []
    for method, runs in probs.items():
        stacked = np.stack(runs)
        scores = cross_play_scores(stacked[:, 0], stacked[:, 1], payoffs)
        off = ~np.eye(len(runs), dtype=bool)
        rows.append(
            [
                method,
                len(runs),
                args.steps,
                scores.diagonal().mean(),
                scores.diagonal().std(),
                scores[off].mean(),
                scores[off].std(),
            ]
        )
        np.savetxt(args.out / f"scores_{method}.csv", scores, delimiter=",", fmt="%.6f")
    with open(args.out / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seeds", "steps", "self_play_mean", "self_play_std", "cross_play_mean", "cross_play_std"])
        writer.writerows([[*r[:3], *(f"{x:.4f}" for x in r[3:])] for r in rows])
    for r in rows:
        print(f"{r[0]:>22}: self-play {r[3]:.3f} ± {r[4]:.3f}, cross-play {r[5]:.3f} ± {r[6]:.3f}")


if __name__ == "__main__":
    main()
