"""The object-delivery Room of van der Pol et al. (AAMAS 2020, PRAE): pick up an object, then reach a goal cell.

An ``8 x 8`` room whose border cells are walls; the robot moves in the ``6 x 6`` interior. A key sits at cell
``(5, 5)`` and, with two objects, a letter at ``(3, 3)``. Walking onto an object picks it up. The task: pick up the
key and walk to the goal (delivery) cell. The observation is a ``3 x 48 x 48`` image (six pixels per cell): channel 0
the robot, channel 1 the key, channel 2 the letter; walls are drawn in every channel. The goal cell is not drawn: a
planner is told the goal through a goal observation (:meth:`Room.goal_observation`), the image of the robot at the
goal cell with the key gone.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ROOM_ID = "sb3_equivariant/Room-v0"

#: (row, col) displacement of each action: 0 up, 1 right, 2 down, 3 left (row 0 is the top of the image).
ROOM_MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)
#: The goal cells used for training in the paper: the four interior corners.
TRAIN_GOALS = ((1, 1), (1, 6), (6, 1), (6, 6))
KEY_CELL = (5, 5)
LETTER_CELL = (3, 3)

_CELL = 6
_SIZE = 8
# 6 x 6 sprites: a robot, a key, a letter.
_ROBOT = np.array(
    [[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0], [0, 1, 0, 0, 1, 0], [1, 1, 0, 0, 1, 1]],
    dtype=np.uint8,
)
_KEY = np.array(
    [[0, 1, 1, 1, 0, 0], [0, 1, 0, 1, 0, 0], [0, 1, 1, 1, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0]],
    dtype=np.uint8,
)
_LETTER = np.array(
    [[0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1], [1, 0, 1, 1, 0, 1], [1, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1]],
    dtype=np.uint8,
)


def _interior_cells() -> list[tuple[int, int]]:
    return [(r, c) for r in range(1, _SIZE - 1) for c in range(1, _SIZE - 1)]


class Room(gym.Env):
    """
        The PRAE object-delivery room (see the module docstring).

        Observation: ``Box(0, 255, (3, 48, 48), uint8)``, channel first, values 0/255. Actions: ``Discrete(4)``: 0 up,
        1 right, 2 down, 3 left; a move into a wall leaves the robot in place. Rewards (as the authors' env): +1 for
        picking up the key, -1 for picking up the letter, +1 for standing on the goal cell once the key is picked up, -0.1
        otherwise. The episode terminates when the robot stands on the goal cell holding an object (as the authors' env:
    the letter alone ends it too). ``info["is_success"]`` on every step: whether the episode has ended with the key
        delivered (False until then, so that an episode cut by the time limit counts as a failure). Made with
        ``gymnasium.make(ROOM_ID)`` the episode is truncated after 100 steps; the class itself has no time limit.

        :param n_objects: 1 (key) or 2 (key and letter, the letter a distractor).
        :param goal: ``"train"`` (one of the four corners :data:`TRAIN_GOALS`, drawn at each reset), ``"test"`` (any free
            interior cell other than the robot's start, drawn at each reset) or a fixed ``(row, col)`` interior cell.
        :param render_mode: ``None`` or ``"rgb_array"``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, n_objects: int = 1, goal: str | tuple[int, int] = "train", render_mode: str | None = None):
        if n_objects not in (1, 2):
            raise ValueError(f"n_objects must be 1 or 2, got {n_objects!r}")
        objects = [KEY_CELL] if n_objects == 1 else [KEY_CELL, LETTER_CELL]
        if isinstance(goal, str):
            if goal not in ("train", "test"):
                raise ValueError(f"goal must be 'train', 'test' or an interior (row, col) cell, got {goal!r}")
        else:
            cell = tuple(int(x) for x in np.asarray(goal).reshape(-1))
            if len(cell) != 2 or cell not in _interior_cells() or cell in objects:
                raise ValueError(
                    f"goal {goal!r} is not a free interior cell: use (row, col) with row and col in 1..{_SIZE - 2}, "
                    f"not an object cell {objects}"
                )
            goal = (cell[0], cell[1])
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.n_objects = n_objects
        self.goal_option = goal
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (3, _SIZE * _CELL, _SIZE * _CELL), dtype=np.uint8)
        self.action_space = spaces.Discrete(len(ROOM_MOVES))
        self._objects = objects
        self.robot = (1, 1)
        # A fixed goal is known before the first reset (for planning); a drawn one from reset on.
        self.goal = goal if isinstance(goal, tuple) else TRAIN_GOALS[0]
        self.remaining: list[tuple[int, int]] = list(objects)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        free = [cell for cell in _interior_cells() if cell not in self._objects]
        self.robot = free[self.np_random.integers(len(free))]
        if self.goal_option == "train":
            self.goal = TRAIN_GOALS[self.np_random.integers(len(TRAIN_GOALS))]
        elif self.goal_option == "test":
            cells = [cell for cell in free if cell != self.robot]
            self.goal = cells[self.np_random.integers(len(cells))]
        else:
            self.goal = self.goal_option  # type: ignore[assignment]
        self.remaining = list(self._objects)
        return self._render(self.robot, self.remaining), {"goal": self.goal}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r} for {self.action_space}")
        row, col = np.clip(np.array(self.robot) + ROOM_MOVES[int(action)], 1, _SIZE - 2)
        self.robot = (int(row), int(col))
        if self.robot in self.remaining:
            self.remaining.remove(self.robot)
            reward = 1.0 if self.robot == KEY_CELL else -1.0
        elif self.robot == self.goal and KEY_CELL not in self.remaining:
            reward = 1.0
        else:
            reward = -0.1
        holding = len(self.remaining) < self.n_objects
        terminated = holding and self.robot == self.goal
        # Read at the episode's last step (SB3's convention), which may be a truncation; the letter alone also ends it.
        info: dict[str, Any] = {"goal": self.goal, "is_success": terminated and KEY_CELL not in self.remaining}
        return self._render(self.robot, self.remaining), reward, terminated, False, info

    def goal_observation(self) -> np.ndarray:
        """The image of the goal of the current episode: the robot on the goal cell, the key picked up."""
        return self._render(self.goal, [cell for cell in self._objects if cell != KEY_CELL])

    def _render(self, robot: tuple[int, int], objects: list[tuple[int, int]]) -> np.ndarray:
        img = np.zeros((3, _SIZE * _CELL, _SIZE * _CELL), dtype=np.uint8)
        img[:, :_CELL], img[:, -_CELL:], img[:, :, :_CELL], img[:, :, -_CELL:] = 1, 1, 1, 1
        for channel, cell, sprite in [(0, robot, _ROBOT)] + [
            (1 if cell == KEY_CELL else 2, cell, _KEY if cell == KEY_CELL else _LETTER) for cell in objects
        ]:
            r, c = cell[0] * _CELL, cell[1] * _CELL
            img[channel, r : r + _CELL, c : c + _CELL] = sprite
        return img * 255

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return np.ascontiguousarray(self._render(self.robot, self.remaining).transpose(1, 2, 0))
        return None


def register_room() -> None:
    """Register :data:`ROOM_ID` with gymnasium (idempotent)."""
    if ROOM_ID not in gym.registry:
        gym.register(id=ROOM_ID, entry_point="sb3_equivariant.envs.room:Room", max_episode_steps=100)
