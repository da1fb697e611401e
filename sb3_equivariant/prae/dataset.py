"""Logged transitions for learning an abstract MDP: collection with any policy (uniform by default), ``.npz`` storage."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class _Predictor(Protocol):
    def predict(self, observation: np.ndarray, deterministic: bool = ...) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class TransitionDataset:
    """
    Transitions ``(o, a, r, o')`` grouped in episodes, stored without repeating observations: ``states`` holds every
    observation of every episode (its final one included) and transition ``i`` goes from ``states[state_index[i]]`` to
    ``states[state_index[i] + 1]``. Transitions of one episode are contiguous.

    :param states: all observations, ``(n_states, *observation_shape)``.
    :param actions: ``(n_transitions,)`` integer actions.
    :param rewards: ``(n_transitions,)`` rewards.
    :param episodes: ``(n_transitions,)`` episode index of each transition (non-decreasing).
    :param state_index: ``(n_transitions,)`` index into ``states`` of each transition's first observation.
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episodes: np.ndarray
    state_index: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.actions)
        if not (len(self.rewards) == len(self.episodes) == len(self.state_index) == n):
            raise ValueError(
                f"actions, rewards, episodes and state_index must have one entry per transition, got lengths "
                f"{len(self.actions)}, {len(self.rewards)}, {len(self.episodes)}, {len(self.state_index)}"
            )
        if n and (self.state_index.min() < 0 or self.state_index.max() + 1 >= len(self.states)):
            raise ValueError(f"state_index must point at a state with a successor among the {len(self.states)} states")
        if n and np.any(np.diff(self.episodes) < 0):
            raise ValueError("the transitions of an episode must be contiguous (episodes non-decreasing)")

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def n_episodes(self) -> int:
        return len(np.unique(self.episodes))

    @property
    def observations(self) -> np.ndarray:
        """``o`` of every transition (a copy)."""
        return self.states[self.state_index]

    @property
    def next_observations(self) -> np.ndarray:
        """``o'`` of every transition (a copy)."""
        return self.states[self.state_index + 1]

    def episode_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """For every transition, the index of the first transition of its episode and the episode's length."""
        _, first, counts = np.unique(self.episodes, return_index=True, return_counts=True)
        which = np.searchsorted(first, np.arange(len(self)), side="right") - 1
        return first[which], counts[which]

    def split(self, validation_fraction: float) -> tuple[TransitionDataset, TransitionDataset]:
        """
        Split by episode: the last ``validation_fraction`` of the episodes (at least one) become a validation set.

        :param validation_fraction: in ``(0, 1)``.
        :return: ``(train, validation)``.
        """
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        ids = np.unique(self.episodes)
        if len(ids) < 2:
            raise ValueError(f"cannot split {len(ids)} episode(s) into train and validation; collect more episodes")
        n_valid = min(max(1, round(len(ids) * validation_fraction)), len(ids) - 1)
        cut = np.searchsorted(self.episodes, ids[-n_valid])
        return self._take(slice(0, cut)), self._take(slice(cut, len(self)))

    def _take(self, part: slice) -> TransitionDataset:
        index = self.state_index[part]
        lo, hi = (int(index.min()), int(index.max()) + 2) if len(index) else (0, 0)
        return TransitionDataset(self.states[lo:hi], self.actions[part], self.rewards[part], self.episodes[part], index - lo)

    def save(self, path: str | os.PathLike) -> None:
        """Save as a compressed ``.npz`` file."""
        np.savez_compressed(
            path,
            states=self.states,
            actions=self.actions,
            rewards=self.rewards,
            episodes=self.episodes,
            state_index=self.state_index,
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> TransitionDataset:
        """Load a dataset written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            missing = {"states", "actions", "rewards", "episodes", "state_index"} - set(data.files)
            if missing:
                raise ValueError(f"{path} is not a TransitionDataset file: missing arrays {sorted(missing)}")
            return cls(data["states"], data["actions"], data["rewards"], data["episodes"], data["state_index"])


def collect_dataset(
    env_or_id: gym.Env | str,
    n_episodes: int,
    seed: int = 0,
    policy: _Predictor | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> TransitionDataset:
    """
    Run ``n_episodes`` full episodes and log their transitions (the paper uses a uniformly random policy).

    :param env_or_id: a gymnasium env or a registered id (made with ``env_kwargs``).
    :param n_episodes: number of episodes, at least 1.
    :param seed: seeds the first reset and the action space (so the random policy is reproducible).
    :param policy: anything with SB3's ``predict(observation, deterministic=...)`` (an SB3 model, a planned PRAE
        policy); ``None`` samples actions uniformly.
    :param env_kwargs: keyword arguments for ``gymnasium.make`` when ``env_or_id`` is an id.
    :return: the transitions.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1 (an empty dataset cannot train a model), got {n_episodes}")
    env = gym.make(env_or_id, **(env_kwargs or {})) if isinstance(env_or_id, str) else env_or_id
    if not isinstance(env.action_space, spaces.Discrete):
        raise ValueError(f"PRAE needs a Discrete action space, got {env.action_space}")
    env.action_space.seed(seed)
    states: list[np.ndarray] = []
    actions: list[int] = []
    rewards: list[float] = []
    episodes: list[int] = []
    state_index: list[int] = []
    obs, _ = env.reset(seed=seed)
    for episode in range(n_episodes):
        if episode:
            obs, _ = env.reset()
        states.append(obs)
        done = False
        while not done:
            if policy is None:
                action = int(env.action_space.sample())
            else:
                action = int(np.asarray(policy.predict(obs, deterministic=False)[0]).reshape(()))
            obs, reward, terminated, truncated, _ = env.step(action)
            state_index.append(len(states) - 1)
            states.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            episodes.append(episode)
            done = terminated or truncated
    if isinstance(env_or_id, str):
        env.close()
    return TransitionDataset(
        np.stack(states),
        np.asarray(actions, dtype=np.int64),
        np.asarray(rewards, dtype=np.float32),
        np.asarray(episodes, dtype=np.int64),
        np.asarray(state_index, dtype=np.int64),
    )
