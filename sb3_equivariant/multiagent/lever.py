"""The lever game (Hu et al. 2020, "Other-Play") for zero-shot coordination, and its self-play / cross-play scores.

Two players each pull one of ``n_levers`` levers at once; they score when they pull the same lever: 1.0 on each of the
``n_levers - 1`` interchangeable levers, ``distinct_payoff`` (0.9) on the last one. Nothing distinguishes the
interchangeable levers, so a pair trained together (self-play) settles on an arbitrary one of them, and a player
paired with a partner from another training run (cross-play) rarely matches. A policy equivariant under permutations
of the interchangeable levers (here the cyclic group turning them, which moves every one onto every other) cannot
prefer any of them and settles on the distinct lever, which every such policy agrees on.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.group import cyclic_group
from sb3_equivariant.representation import permutation, trivial

LEVER_ID = "sb3_equivariant/LeverGame-v0"


def lever_payoffs(n_levers: int = 10, distinct_payoff: float = 0.9) -> np.ndarray:
    """The payoff of matching on each lever: 1.0 on the first ``n_levers - 1``, ``distinct_payoff`` on the last."""
    if n_levers < 3:
        raise ValueError(f"n_levers must be >= 3 (at least two interchangeable levers and the distinct one), got {n_levers}")
    payoffs = np.ones(n_levers)
    payoffs[-1] = distinct_payoff
    return payoffs


class LeverGameEnv(gym.Env):
    """
    The lever game as a joint one-step Gymnasium env: observation ``Box(0, 1, (1,))`` (always 0: there is nothing to
    see), action ``MultiDiscrete([n_levers, n_levers])`` (each player's lever), reward the payoff of the lever if both
    chose it and 0 otherwise; every episode ends after one step. SB3's ``MultiDiscrete`` policies are a product of
    independent per-player policies, so a joint PPO run trains a self-play pair.

    :param n_levers: number of levers (10).
    :param distinct_payoff: payoff of the distinct lever (0.9).
    """

    metadata = {"render_modes": []}

    def __init__(self, n_levers: int = 10, distinct_payoff: float = 0.9):
        self.payoffs = lever_payoffs(n_levers, distinct_payoff)
        self.n_levers = n_levers
        self.observation_space = spaces.Box(0.0, 1.0, (1,), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete([n_levers, n_levers])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action)
        if not self.action_space.contains(action.astype(self.action_space.dtype)):
            raise ValueError(f"invalid joint action {action!r} for {self.action_space}")
        first, second = int(action[0]), int(action[1])
        reward = float(self.payoffs[first]) if first == second else 0.0
        return np.zeros(1, dtype=np.float32), reward, True, False, {}

    def get_state(self) -> np.ndarray:
        """The game has no state: an empty vector."""
        return np.zeros(0)

    def set_state(self, state: np.ndarray) -> None:
        """Nothing to set (the game has no state)."""

    def get_obs(self) -> np.ndarray:
        return np.zeros(1, dtype=np.float32)


def _no_state(state: np.ndarray, g: int) -> np.ndarray:
    return np.asarray(state)


def lever_symmetry(n_levers: int = 10) -> Symmetry:
    """
    The exact symmetry of :class:`LeverGameEnv`: the cyclic group of order ``n_levers - 1`` turning the
    interchangeable levers (lever ``i -> i + 1`` modulo ``n_levers - 1``) in both players' actions; the distinct lever
    and the (empty) observation are fixed. Exact: the payoff is the same on every interchangeable lever.

    :param n_levers: number of levers.
    """
    group = cyclic_group(n_levers - 1)
    turn = [*range(1, n_levers - 1), 0, n_levers - 1]
    return Symmetry(
        trivial(group, 1),
        permutation(group, {1: turn}, name="interchangeable_levers"),
        exact=True,
        name=f"LeverGame-C{n_levers - 1}",
        notes="turns of the interchangeable levers; exact",
        state_transform=_no_state,
    )


def cross_play_scores(first: np.ndarray, second: np.ndarray, payoffs: np.ndarray) -> np.ndarray:
    """
    Expected payoffs of every pairing: ``scores[i, j]`` is the expected payoff when player 1 plays with the
    probabilities ``first[i]`` and player 2 with ``second[j]`` (independently): ``Σ_a first[i, a] second[j, a]
    payoffs[a]``. The diagonal is self-play (both players from run ``i``), the rest cross-play.

    :param first: ``(n_runs, n_levers)`` player-1 probabilities, one row per training run.
    :param second: ``(n_runs, n_levers)`` player-2 probabilities.
    :param payoffs: ``(n_levers,)``.
    """
    return np.einsum("ia,ja,a->ij", np.asarray(first), np.asarray(second), np.asarray(payoffs))


def register_lever_game() -> None:
    """Register :data:`LEVER_ID` with gymnasium (idempotent)."""
    if LEVER_ID not in gym.registry:
        gym.register(id=LEVER_ID, entry_point="sb3_equivariant.multiagent.lever:LeverGameEnv")


__all__ = ["LEVER_ID", "LeverGameEnv", "cross_play_scores", "lever_payoffs", "lever_symmetry", "register_lever_game"]
