"""Wildlife monitoring (van der Pol et al., 2022): drones on a torus must jointly catch a randomly moving prey.

``n_agents`` drones and one prey live on a ``size x size`` torus. Each drone sees an image of the torus centered on
itself (its own sprite in the center cell, the prey's sprite at its toroidal offset) and knows its own position. The
prey is caught when exactly one drone lands on it while another drone is next to it (4-neighborhood on the torus):
the capturing drones get +1 each and the episode ends. Every step costs ``-0.05 / n_agents`` per drone. A quarter turn
of the torus about its center cell rotates every view, every position and every move: the C4 symmetry of the task.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_equivariant.envs.gridworld import _AGENT_SPRITE, _PREY_SPRITE, MOVES, ROTATE_ACTION, TorusRotation
from sb3_equivariant.envs.structured import AgentAction, DictAction
from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.group import cyclic_group
from sb3_equivariant.representation import ImageAction, Representation, permutation, rotation_action, signed_permutation

WILDLIFE_ID = "sb3_equivariant/Wildlife-v0"


def position_rotation() -> Representation:
    """C4 on centered grid coordinates ``(row, col)``: the quarter turn ``(r, c) -> (-c, r)`` (as ``np.rot90`` moves cells)."""
    return signed_permutation(cyclic_group(4), {1: [1, 0]}, {1: [1, -1]}, name="position_rot90")


class WildlifeEnv(gym.Env):
    """
    The wildlife monitoring task as a joint (centralised) Gymnasium env.

    Observation ``Dict``: ``"view"``: ``Box(0, 1, (n_agents, 1, 3 size, 3 size), float32)``, each drone's view of the
    torus centered on itself (3x3-pixel sprites: an "x" for itself, a "+" for the prey); ``"position"``:
    ``Box(-size // 2, size // 2, (n_agents, 2), float32)``, each drone's cell ``(row, col)`` relative to the center of
    the torus. Action ``MultiDiscrete([5] * n_agents)``: per drone 0 rest, 1 up, 2 right, 3 down, 4 left. Reward: the
    team's, ``-0.05`` per step plus +1 per capturing drone. Drones that would share a cell stay where they were
    (repeated until no two drones share a cell). After the capture check, the prey moves to a random neighboring
    cell with probability ``prey_move_prob``.
    Episodes terminate on a capture and are truncated after ``max_steps`` steps.

    The state, for :func:`~sb3_equivariant.envs.verify.check_symmetry`, is the flat vector of the drones' cells then the
    prey's cell (:meth:`get_state` / :meth:`set_state`).

    :param n_agents: number of drones (at least 2: a capture needs two).
    :param size: side of the torus (odd, so that a drone sits in the center of its view; 5 in the authors' runs).
    :param prey_move_prob: probability that the prey moves in a step (0.8 as in the authors' code).
    :param max_steps: time limit (100).
    """

    metadata = {"render_modes": []}

    def __init__(self, n_agents: int = 3, size: int = 5, prey_move_prob: float = 0.8, max_steps: int = 100):
        if n_agents < 2:
            raise ValueError(f"n_agents must be >= 2 (a capture needs one drone on the prey and one next to it), got {n_agents}")
        if size < 3 or size % 2 == 0:
            raise ValueError(f"size must be an odd integer >= 3 (each drone is in the center of its view), got {size}")
        if n_agents + 1 > size * size:
            raise ValueError(f"{n_agents} drones and the prey do not fit on a {size}x{size} torus")
        if not 0.0 <= prey_move_prob <= 1.0:
            raise ValueError(f"prey_move_prob must be in [0, 1], got {prey_move_prob}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.n_agents, self.size, self.prey_move_prob, self.max_steps = n_agents, size, prey_move_prob, max_steps
        half, pixels = size // 2, 3 * size
        self.observation_space = spaces.Dict(
            {
                "view": spaces.Box(0.0, 1.0, (n_agents, 1, pixels, pixels), dtype=np.float32),
                "position": spaces.Box(-half, half, (n_agents, 2), dtype=np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([len(MOVES)] * n_agents)
        self.agents = np.zeros((n_agents, 2), dtype=np.int64)
        self.prey = np.zeros(2, dtype=np.int64)
        self.t = 0
        self._views = self._render_views()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        cells = self.np_random.choice(self.size * self.size, size=self.n_agents + 1, replace=False)
        self.agents = np.stack([cells[:-1] // self.size, cells[:-1] % self.size], axis=1).astype(np.int64)
        self.prey = np.array([cells[-1] // self.size, cells[-1] % self.size], dtype=np.int64)
        self.t = 0
        return self._get_obs(), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        action = np.asarray(action)
        if not self.action_space.contains(action.astype(self.action_space.dtype)):
            raise ValueError(f"invalid joint action {action!r} for {self.action_space}")
        moved = (self.agents + MOVES[action.astype(np.int64)]) % self.size
        colliding = np.zeros(self.n_agents, dtype=bool)
        while True:  # drones sent back can block others: repeat until no two drones share a cell
            shared = np.all(moved[:, None] == moved[None], axis=-1).sum(axis=1) > 1
            if not shared.any():
                break
            colliding |= shared
            moved[shared] = self.agents[shared]
        self.agents = moved
        offsets = self._wrap(self.agents - self.prey)
        on_prey = np.all(offsets == 0, axis=1)
        adjacent = (np.abs(offsets).sum(axis=1) == 1) & ~colliding
        caught = bool(on_prey.sum() == 1 and adjacent.any())
        reward = -0.05 + (float(on_prey.sum() + adjacent.sum()) if caught else 0.0)
        if self.np_random.random() < self.prey_move_prob:
            self.prey = (self.prey + MOVES[self.np_random.integers(1, len(MOVES))]) % self.size
        self.t += 1
        return self._get_obs(), reward, caught, self.t >= self.max_steps and not caught, {"captured": caught}

    def _wrap(self, offsets: np.ndarray) -> np.ndarray:
        """Toroidal offsets in ``-size // 2 .. size // 2``."""
        half = self.size // 2
        return (offsets + half) % self.size - half

    def _get_obs(self) -> dict[str, np.ndarray]:
        half = self.size // 2
        prey = self._wrap(self.prey - self.agents) + half  # the prey's cell in each drone's view
        views = self._views[prey[:, 0], prey[:, 1]][:, None]
        return {"view": views, "position": (self.agents - half).astype(np.float32)}

    def _render_views(self) -> np.ndarray:
        """``table[r, c]``: a drone's view with the prey in cell ``(r, c)`` of it (the drone is in the center cell)."""
        half, pixels = self.size // 2, 3 * self.size
        table = np.zeros((self.size, self.size, pixels, pixels), dtype=np.float32)
        table[:, :, 3 * half : 3 * half + 3, 3 * half : 3 * half + 3] = _AGENT_SPRITE
        for r in range(self.size):
            for c in range(self.size):
                cell = table[r, c, 3 * r : 3 * r + 3, 3 * c : 3 * c + 3]
                np.maximum(cell, _PREY_SPRITE, out=cell)
        return table

    def get_state(self) -> np.ndarray:
        """The drones' cells then the prey's cell, flat: ``[r_0, c_0, ..., r_prey, c_prey]``."""
        return np.concatenate([self.agents.ravel(), self.prey]).astype(np.int64)

    def set_state(self, state: np.ndarray) -> None:
        """Place the drones and the prey (see :meth:`get_state`); cells in ``0 .. size - 1``."""
        state = np.asarray(state)
        n = 2 * (self.n_agents + 1)
        if state.shape != (n,) or not np.all((state >= 0) & (state < self.size)) or not np.all(state == np.round(state)):
            raise ValueError(f"state must be {n} integer cells in 0..{self.size - 1}, got {state!r}")
        cells = state.astype(np.int64).reshape(-1, 2)
        if len(np.unique(cells[:-1], axis=0)) != self.n_agents:
            raise ValueError(f"drones must be on distinct cells, got {cells[:-1].tolist()}")
        self.agents, self.prey = cells[:-1].copy(), cells[-1].copy()

    def get_obs(self) -> dict[str, np.ndarray]:
        """The observation of the current state (used after :meth:`set_state`)."""
        return self._get_obs()


def wildlife_symmetry(n_agents: int = 3, size: int = 5) -> Symmetry:
    """
    The exact C4 symmetry of :class:`WildlifeEnv`: element ``k`` turns the torus ``k`` quarter turns about its center
    cell (counter-clockwise, as ``np.rot90``). Every drone's view rotates by ``k`` quarter turns, every position by the
    2x2 rotation ``(r, c) -> (-c, r)``, every drone's move by the same turn (up -> left -> down -> right -> up, rest
    fixed); drones keep their indices. Exact: moves, collisions, adjacency and the prey's uniform move are all
    invariant under turns of the torus.

    :param n_agents: number of drones.
    :param size: side of the torus (for the state transform).
    """
    group = cyclic_group(4)
    obs = DictAction(
        {
            "view": AgentAction(ImageAction(rotation_action(), channels=1, layout="CHW"), n_agents),
            "position": AgentAction(position_rotation(), n_agents),
        }
    )
    return Symmetry(
        obs,
        permutation(group, {1: ROTATE_ACTION}, name="wildlife_moves"),
        exact=True,
        name="Wildlife-C4",
        notes="quarter turns of the torus about its center cell; exact",
        state_transform=TorusRotation(size),
    )


def register_wildlife() -> None:
    """Register :data:`WILDLIFE_ID` with gymnasium (idempotent; the env enforces its own time limit)."""
    if WILDLIFE_ID not in gym.registry:
        gym.register(id=WILDLIFE_ID, entry_point="sb3_equivariant.multiagent.wildlife:WildlifeEnv")
