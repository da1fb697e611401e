"""The predator-prey GridWorld of van der Pol et al. (2020): a torus seen from the agent, with C4 rotation symmetry.

The agent (predator) and the prey live on a ``size x size`` torus. The observation is an agent-centered binary image:
cell ``(i, j)`` of the ``size x size`` view is drawn as a ``cell_size``-pixel square, the agent (an "x" sprite) in the
center cell and the prey (a "+" sprite) at its toroidal offset from the agent. Both sprites are invariant under
90° rotations and the moves are rotated into each other, so rotating the view is an exact symmetry.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.group import cyclic_group
from sb3_equivariant.representation import ImageAction, permutation, rotation_action

GRIDWORLD_ID = "sb3_equivariant/GridWorld-v0"

#: (row, col) displacement of each action: 0 stay, 1 up, 2 right, 3 down, 4 left (row 0 is the top of the image).
MOVES = np.array([[0, 0], [-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)
#: Where the quarter turn (np.rot90, counter-clockwise) sends each action: the image content moves by
#: (dr, dc) -> (-dc, dr), so up -> left, right -> up, down -> right, left -> down; stay is fixed.
ROTATE_ACTION = [0, 4, 1, 2, 3]

_AGENT_SPRITE = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.uint8)  # "x"
_PREY_SPRITE = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)  # "+"


class GridWorld(gym.Env):
    """
    Predator-prey on a torus with an agent-centered image observation (the paper's GridWorld).

    Observation: ``Box(0, 255, (1, size * cell_size, size * cell_size), uint8)``, channel first, values 0/255.
    Actions: ``Discrete(5)``: 0 stay, 1 up, 2 right, 3 down, 4 left. Reward -0.1 per step, +1 when the agent and the
    prey share a cell after both moved (the episode then terminates). The prey moves to a random neighbor with
    probability ``prey_move_prob``. Made with ``gymnasium.make(GRIDWORLD_ID)`` the episode is truncated after 100
    steps (``max_episode_steps``); the class itself has no time limit.

    The state, for :func:`sb3_equivariant.envs.verify.check_symmetry`, is ``[agent_row, agent_col, prey_row,
    prey_col]`` (:meth:`get_state` / :meth:`set_state`).

    :param size: side of the torus (odd, so that the agent sits in the center of its view).
    :param prey_move_prob: probability that the prey moves in a step.
    :param cell_size: pixels per cell, a multiple of 3 (3 gives the paper's 21x21 image; 6 gives 42x42, large enough
        for SB3's default ``CnnPolicy``).
    :param render_mode: ``None`` or ``"rgb_array"``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, size: int = 7, prey_move_prob: float = 0.15, cell_size: int = 3, render_mode: str | None = None):
        if size < 3 or size % 2 == 0:
            raise ValueError(f"size must be an odd integer >= 3 (the agent is in the center of its view), got {size}")
        if cell_size < 3 or cell_size % 3:
            raise ValueError(f"cell_size must be a positive multiple of 3 (3x3 sprites), got {cell_size}")
        if not 0.0 <= prey_move_prob <= 1.0:
            raise ValueError(f"prey_move_prob must be in [0, 1], got {prey_move_prob}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.size = size
        self.prey_move_prob = prey_move_prob
        self.cell_size = cell_size
        self.render_mode = render_mode
        pixels = size * cell_size
        self.observation_space = spaces.Box(0, 255, (1, pixels, pixels), dtype=np.uint8)
        self.action_space = spaces.Discrete(len(MOVES))
        scale = np.ones((cell_size // 3, cell_size // 3), dtype=np.uint8)
        self._agent_img = np.kron(_AGENT_SPRITE, scale) * 255
        self._prey_img = np.kron(_PREY_SPRITE, scale) * 255
        self.agent = np.zeros(2, dtype=np.int64)
        self.prey = np.zeros(2, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.agent = self.np_random.integers(0, self.size, size=2)
        self.prey = self.agent
        while np.array_equal(self.prey, self.agent):
            self.prey = self.np_random.integers(0, self.size, size=2)
        return self._get_obs(), {}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r} for {self.action_space}")
        self.agent = (self.agent + MOVES[int(action)]) % self.size
        if self.np_random.random() < self.prey_move_prob:
            self.prey = (self.prey + MOVES[self.np_random.integers(1, len(MOVES))]) % self.size
        caught = bool(np.array_equal(self.agent, self.prey))
        return self._get_obs(), 1.0 if caught else -0.1, caught, False, {}

    def _get_obs(self) -> np.ndarray:
        half, k = self.size // 2, self.cell_size
        offset = (self.prey - self.agent + half) % self.size  # prey cell in the agent-centered view
        img = np.zeros((self.size * k, self.size * k), dtype=np.uint8)
        img[half * k : (half + 1) * k, half * k : (half + 1) * k] = self._agent_img
        rows, cols = slice(offset[0] * k, (offset[0] + 1) * k), slice(offset[1] * k, (offset[1] + 1) * k)
        img[rows, cols] = np.maximum(img[rows, cols], self._prey_img)
        return img[None]

    def get_state(self) -> np.ndarray:
        """``[agent_row, agent_col, prey_row, prey_col]``."""
        return np.concatenate([self.agent, self.prey]).astype(np.int64)

    def set_state(self, state: np.ndarray) -> None:
        """Place the agent and the prey: ``state = [agent_row, agent_col, prey_row, prey_col]`` in ``0 .. size - 1``."""
        state = np.asarray(state)
        if state.shape != (4,) or not np.all((state >= 0) & (state < self.size)) or not np.all(state == np.round(state)):
            raise ValueError(f"state must be 4 integer cells in 0..{self.size - 1}, got {state!r}")
        self.agent, self.prey = state[:2].astype(np.int64), state[2:].astype(np.int64)

    def get_obs(self) -> np.ndarray:
        """The observation of the current state (used after :meth:`set_state`)."""
        return self._get_obs()

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return np.repeat(self._get_obs()[0][..., None], 3, axis=-1)
        return None


class TorusRotation:
    """
    Quarter turns of a ``size x size`` torus about its center cell, acting on GridWorld states
    ``[agent_row, agent_col, prey_row, prey_col]``: element ``g`` rotates both positions ``g`` times counter-clockwise
    (as ``np.rot90`` moves image content). A picklable callable ``(state, g) -> state``.
    """

    def __init__(self, size: int):
        self.size = size

    def __call__(self, state: np.ndarray, g: int) -> np.ndarray:
        half = self.size // 2
        cells = np.asarray(state, dtype=np.int64).reshape(-1, 2) - half
        for _ in range(int(g) % 4):
            cells = np.stack([-cells[:, 1], cells[:, 0]], axis=1)  # (dr, dc) -> (-dc, dr)
        return (cells + half).reshape(np.shape(state))

    def __repr__(self) -> str:
        return f"TorusRotation(size={self.size})"


def gridworld_symmetry(size: int = 7) -> Symmetry:
    """
    The exact C4 symmetry of :class:`GridWorld`: element ``k`` rotates the image by ``k`` quarter turns
    counter-clockwise (``np.rot90``) and the moves by the same turn (up -> left -> down -> right -> up; stay fixed);
    the state rotates about the center of the torus (:class:`TorusRotation`). The image map does not depend on
    ``cell_size``.

    :param size: side of the torus (for the state transform).
    """
    group = cyclic_group(4)
    image = ImageAction(rotation_action(), channels=1, layout="CHW")
    actions = permutation(group, {1: ROTATE_ACTION}, name="gridworld_actions")
    return Symmetry(
        image,
        actions,
        exact=True,
        name="GridWorld-C4",
        notes="quarter turns of the agent-centered view; exact",
        state_transform=TorusRotation(size),
    )


def register_gridworld() -> None:
    """Register :data:`GRIDWORLD_ID` with gymnasium (idempotent)."""
    if GRIDWORLD_ID not in gym.registry:
        gym.register(id=GRIDWORLD_ID, entry_point="sb3_equivariant.envs.gridworld:GridWorld", max_episode_steps=100)
