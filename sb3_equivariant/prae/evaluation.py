"""The paper's goal-reaching evaluations: CartPole (reach the upright zero state) and the Room (deliver the key)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_equivariant.envs.room import KEY_CELL, LETTER_CELL, ROOM_ID, TRAIN_GOALS, Room
from sb3_equivariant.prae.model import PRAE
from sb3_equivariant.prae.planning import PlannedPolicy

#: The paper's CartPole: gymnasium's CartPole-v0 (200-step limit); the goal is the upright, centered, still state.
CARTPOLE_ID = "CartPole-v0"


def cartpole_goal() -> np.ndarray:
    """The CartPole goal observation: position, velocity, angle and angular velocity all zero."""
    return np.zeros(4, dtype=np.float32)


def room_goal_cells(n_objects: int, goal_set: str) -> list[tuple[int, int]]:
    """
    Goal cells of the Room: ``"train"`` the four corners, ``"test"`` every interior cell without an object.

    :param n_objects: 1 or 2.
    :param goal_set: ``"train"`` or ``"test"``.
    """
    if goal_set == "train":
        return list(TRAIN_GOALS)
    if goal_set == "test":
        objects = [KEY_CELL] if n_objects == 1 else [KEY_CELL, LETTER_CELL]
        return [(r, c) for r in range(1, 7) for c in range(1, 7) if (r, c) not in objects]
    raise ValueError(f"goal_set must be 'train' or 'test', got {goal_set!r}")


def run_episodes(policy: PlannedPolicy, env: gym.Env, n_episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """
    Lengths and successes of ``n_episodes`` episodes of ``policy`` in ``env`` (SB3's ``evaluate_policy``; ties broken
    at random as in the paper). A success is the env's ``info["is_success"]`` at the end of the episode (NaN when the
    env does not report it).
    """
    vec_env = DummyVecEnv([lambda: Monitor(env)])
    vec_env.seed(seed)
    successes: list[float] = []

    def record(local: dict[str, Any], _: dict[str, Any]) -> None:
        if local["done"]:
            successes.append(float(local["info"].get("is_success", np.nan)))

    _, lengths = evaluate_policy(
        policy,  # type: ignore[arg-type]
        vec_env,
        n_eval_episodes=n_episodes,
        deterministic=False,
        return_episode_rewards=True,
        callback=record,
    )
    vec_env.close()
    return np.asarray(lengths), np.asarray(successes)


def evaluate_cartpole(model: PRAE, n_episodes: int = 100, seed: int = 0) -> np.ndarray:
    """Episode lengths on CartPole-v0 (at most 200; longer is better) of the policy planned towards :func:`cartpole_goal`."""
    policy = model.plan(cartpole_goal(), seed=seed)
    return run_episodes(policy, gym.make(CARTPOLE_ID), n_episodes, seed)[0]


def evaluate_room(
    model: PRAE, n_objects: int, goal_set: str, n_episodes: int = 100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """
    Episode lengths in the Room (shorter is better) and successes (the key delivered: with two objects an episode
    also ends when the letter alone is brought to the goal), each episode towards a goal cell drawn uniformly from
    the goal set. Value iteration runs once per distinct goal, not once per episode.

    :param model: a fitted model.
    :param n_objects: 1 or 2.
    :param goal_set: ``"train"`` (corners) or ``"test"`` (any free cell).
    :param n_episodes: total number of episodes.
    :param seed: seeds the goal draw, the envs and tie-breaking.
    """
    cells = room_goal_cells(n_objects, goal_set)
    rng = np.random.default_rng(seed)
    draws = Counter(cells[i] for i in rng.integers(len(cells), size=n_episodes))
    lengths, successes = [], []
    for k, (cell, count) in enumerate(sorted(draws.items())):
        env = gym.make(ROOM_ID, n_objects=n_objects, goal=cell)
        room = env.unwrapped
        assert isinstance(room, Room)
        policy = model.plan(room.goal_observation(), seed=seed + k)
        episode_lengths, episode_successes = run_episodes(policy, env, count, seed + k)
        lengths.append(episode_lengths)
        successes.append(episode_successes)
    return np.concatenate(lengths), np.concatenate(successes)
