"""A partially observable task with an exact symmetry: CartPole with its velocities hidden."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

#: The gymnasium id of :class:`MaskedVelocityCartPole` (CartPole-v1's limits: 500 steps, solved at 475).
MASKED_CARTPOLE_ID = "sb3_equivariant/CartPoleNoVel-v1"


class MaskedVelocityCartPole(CartPoleEnv):
    """
    CartPole-v1 whose observation is ``[x, theta]``: the cart and pole velocities are hidden, so a policy has to
    infer them from the history (a recurrent policy's task; rl_zoo3's ``CartPoleNoVel-v1`` masks the same entries).
    The dynamics are CartPole's, so its mirror symmetry still holds: ``obs -> -obs``, push left <-> push right.

    :param render_mode: as CartPole's.
    """

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        high = self.observation_space.high[[0, 2]]  # type: ignore[attr-defined]
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

    def _get_obs(self) -> np.ndarray:
        return np.array(self.state, dtype=np.float32)[[0, 2]]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        _, info = super().reset(seed=seed, options=options)
        return self._get_obs(), info

    def step(self, action: int | np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        _, reward, terminated, truncated, info = super().step(action)
        return self._get_obs(), reward, terminated, truncated, info


def register_masked_cartpole() -> None:
    """Register :data:`MASKED_CARTPOLE_ID` with gymnasium (idempotent)."""
    if MASKED_CARTPOLE_ID not in gym.registry:
        gym.register(
            id=MASKED_CARTPOLE_ID,
            entry_point="sb3_equivariant.envs.masked:MaskedVelocityCartPole",
            max_episode_steps=500,
            reward_threshold=475.0,
        )
