"""Planning in a learned abstract MDP: soft latent transitions, value iteration, and the lifted greedy policy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch as th
from gymnasium import spaces

#: Q-values closer than this to the best count as ties (the authors' ``0.5 (q - v)^2 < 1e-8``).
TIE_TOLERANCE = float(np.sqrt(2e-8))


def soft_transitions(predicted: th.Tensor, states: th.Tensor, temperature: float) -> th.Tensor:
    """
    Transition probabilities of the abstract MDP: from state ``i`` under action ``a`` to state ``j`` with
    probability ``softmax_j(-0.5 * |predicted[a, i] - states[j]|^2 / temperature)``.

    :param predicted: ``(n_actions, n_states, latent_dim)`` predicted next latent states.
    :param states: ``(n_states, latent_dim)`` abstract states.
    :param temperature: softmax temperature (the paper: 0.1 for CartPole, 0.01 for the Room).
    :return: ``(n_actions, n_states, n_states)``, rows summing to one.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    distance = 0.5 * th.cdist(predicted, states.expand(predicted.shape[0], *states.shape)).pow(2)
    return th.softmax(-distance / temperature, dim=-1)


def value_iteration(transitions: th.Tensor, rewards: th.Tensor, gamma: float, n_sweeps: int) -> th.Tensor:
    """
    ``n_sweeps`` synchronous sweeps of ``Q(s, a) = R(s) + gamma * sum_s' T_a(s, s') V(s')``, ``V = max_a Q``, from
    ``V = 0`` (the reward is for being in a state, as in the paper's goal reward).

    :param transitions: ``(n_actions, n_states, n_states)``.
    :param rewards: ``(n_states,)``.
    :param gamma: discount in ``[0, 1)``.
    :param n_sweeps: number of sweeps, at least 1.
    :return: ``(n_states, n_actions)`` Q-values.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    if n_sweeps < 1:
        raise ValueError(f"n_sweeps must be at least 1, got {n_sweeps}")
    values = th.zeros_like(rewards)
    for _ in range(n_sweeps):
        q_values = rewards[:, None] + gamma * (transitions @ values).T
        values = q_values.max(dim=1).values
    return q_values


class PlannedPolicy:
    """
    The policy lifted from a solved abstract MDP: encode the observation, take the nearest abstract state, act greedily
    on its Q-values. It has SB3's ``predict`` so that ``evaluate_policy`` and ``collect_dataset`` accept it.

    :param encode: observations ``(batch, *observation_shape)`` (numpy) -> latent states ``(batch, latent_dim)``.
    :param states: ``(n_states, latent_dim)`` abstract states.
    :param q_values: ``(n_states, n_actions)`` their Q-values.
    :param observation_space: the env's observation space (to check inputs).
    :param seed: seeds tie-breaking when ``deterministic=False``.
    """

    def __init__(
        self,
        encode: Callable[[np.ndarray], th.Tensor],
        states: th.Tensor,
        q_values: th.Tensor,
        observation_space: spaces.Space,
        seed: int | None = None,
    ):
        self.encode = encode
        self.states = states
        self.q_values = q_values
        self.observation_space = observation_space
        self.rng = np.random.default_rng(seed)

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Greedy action(s) of the nearest abstract state (SB3's signature; the policy has no recurrent state).

        :param observation: one observation or a batch of them.
        :param state: unused (kept for SB3's signature).
        :param episode_start: unused (kept for SB3's signature).
        :param deterministic: take the first best action; otherwise break ties between best actions at random (as the
            authors do).
        :return: the action(s) and ``None``.
        """
        obs = np.asarray(observation)
        shape = self.observation_space.shape
        assert shape is not None
        vectorized = obs.shape[1:] == shape
        if not vectorized and obs.shape != shape:
            raise ValueError(f"observation shape {obs.shape} does not match the observation space {shape} (or a batch of it)")
        batch = obs if vectorized else obs[None]
        with th.no_grad():
            nearest = th.cdist(self.encode(batch), self.states).argmin(dim=1)
            q_values = self.q_values[nearest].cpu().numpy()
        if deterministic:
            actions = q_values.argmax(axis=1)
        else:
            best = q_values >= q_values.max(axis=1, keepdims=True) - TIE_TOLERANCE
            actions = np.array([self.rng.choice(np.flatnonzero(row)) for row in best])
        return (actions if vectorized else actions[0]), state
