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
import sys
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3 import PPO

from sb3_equivariant import EquivariantMlpPolicy, make_symmetric_vec_env
from sb3_equivariant.augmentation.test_time import action_probabilities, symmetrized_probabilities
from sb3_equivariant.benchmark.provenance import write_record
from sb3_equivariant.multiagent import LEVER_ID, cross_play_scores, lever_symmetry
from sb3_equivariant.multiagent.lever import lever_payoffs

METHODS = {"baseline": "MlpPolicy", "equivariant": EquivariantMlpPolicy, "equivariant_distinct_init": EquivariantMlpPolicy}
#: Initial logit of the distinct lever for ``equivariant_distinct_init`` (probability 0.15 instead of 0.1).
DISTINCT_LOGIT = 0.5


def bias_distinct_lever(model: PPO, logit: float) -> None:
    """
    Start an equivariant pair with the distinct lever's logit raised by ``logit`` (an invariant bias: the policy stays
    equivariant). Under the symmetry the expected payoff is ``(1 - p)^2 / 9 + 0.9 p^2`` in the probability ``p`` of
    the distinct lever, whose minimum is at ``p = 0.11``: from the uniform start (``p = 0.1``) gradient ascent moves
    to ``p = 0`` (payoff 1/9), from ``p > 0.11`` to ``p = 1`` (payoff 0.9).
    """
    head = model.policy.action_net
    target = th.zeros(head.out_features)
    target[head.rep_out.dim // 2 - 1 :: head.rep_out.dim // 2] = logit  # the distinct lever of both players
    with th.no_grad():
        solution = th.linalg.lstsq(head.bias_basis.T, target[:, None]).solution[:, 0]
        head.bias_coefficients.copy_(solution[None])
        assert th.allclose(head.bias_coefficients @ head.bias_basis, target[None], atol=1e-6)


def train_pair(method: str, seed: int, steps: int) -> PPO:
    """One self-play pair: PPO on the joint lever game."""
    env = make_symmetric_vec_env(LEVER_ID, n_envs=8, seed=seed)
    model = PPO(METHODS[method], env, seed=seed, n_steps=16, batch_size=64, n_epochs=4, learning_rate=3e-3, device="cpu")
    if method == "equivariant_distinct_init":
        bias_distinct_lever(model, DISTINCT_LOGIT)
    return model.learn(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8000, help="env steps (one-step episodes) per pair")
    parser.add_argument("--out", type=Path, default=Path("results/lever_game"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args()
    th.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    obs, payoffs, symmetry = np.zeros((1, 1), dtype=np.float32), lever_payoffs(), lever_symmetry()
    probs: dict[str, list[np.ndarray]] = {m: [] for m in args.methods}
    if "baseline" in args.methods:
        probs["baseline_symmetrised"] = []
    for method in args.methods:
        for seed in range(args.seeds):
            model = train_pair(method, seed, args.steps)
            probs[method].append(action_probabilities(model.policy, obs)[0].numpy())
            if method == "baseline":
                probs["baseline_symmetrised"].append(symmetrized_probabilities(model.policy, obs, symmetry)[0].numpy())
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
    header = ["method", "seeds", "steps", "self_play_mean", "self_play_std", "cross_play_mean", "cross_play_std"]
    with open(args.out / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[*r[:3], *(f"{x:.4f}" for x in r[3:])] for r in rows])
    # which code produced these files: the commit (and whether the tree was dirty), the versions, the command
    write_record(args.out / "manifest.json", [dict(zip(header, r)) for r in rows], sys.argv, exclude=(args.out,))
    for r in rows:
        print(f"{r[0]:>22}: self-play {r[3]:.3f} ± {r[4]:.3f}, cross-play {r[5]:.3f} ± {r[6]:.3f}")


if __name__ == "__main__":
    main()
