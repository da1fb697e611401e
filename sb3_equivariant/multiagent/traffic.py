"""Traffic light control (van der Pol et al., 2022): four lights at the crossings of a road grid, one agent each.

The world is a 15 x 15 grid of cells. Two-lane roads run along rows 2, 4, 10, 12 and columns 2, 4, 10, 12, one lane
per direction (8 one-way lanes, each a route across the whole grid); they cross at four junctions centered on
(3, 3), (3, 11), (11, 3), (11, 11). Each junction's light has two phases: 0 lets the vertical lanes enter the
junction, 1 the horizontal ones. During the first ``spawn_steps`` steps a car joins each route with probability
``car_prob`` (it waits at the entrance while that cell is occupied); cars drive one cell per step along their
route if the cell ahead was empty at the start of the step (cars leaving the grid free theirs first) and, when
that cell is a junction entrance, the light lets them in; a car already inside a junction has priority over one
entering it. Cars leave at the end of their route. The team reward is ``-(mean waiting time of the cars on the
grid) / 1000``; the episode terminates when every car has left and is truncated after ``max_steps`` steps.

A quarter turn of the grid about its center maps lanes onto lanes, junctions onto junctions (so it permutes the
lights) and vertical onto horizontal lanes (so it swaps the two phases): the C4 symmetry of the task. The spawn
schedule is drawn at reset and is part of the state, so the dynamics are deterministic given the state.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_equivariant.envs.structured import AgentAction, DictAction
from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.group import cyclic_group
from sb3_equivariant.multiagent.wildlife import position_rotation
from sb3_equivariant.representation import ImageAction, permutation, rotation_action

TRAFFIC_ID = "sb3_equivariant/TrafficLights-v0"
GRID = 15
CENTERS = np.array([[3, 3], [3, 11], [11, 3], [11, 11]])
N_LIGHTS = len(CENTERS)
VIEW = 7  # cells seen by a light, centered on its junction
ROAD_LINES = (2, 4, 10, 12)


def _rot_cell(cells: np.ndarray, k: int) -> np.ndarray:
    """Cells ``(row, col)`` after ``k`` quarter turns of the grid (as ``np.rot90`` moves array entries)."""
    cells = np.asarray(cells)
    for _ in range(k % 4):
        cells = np.stack([GRID - 1 - cells[..., 1], cells[..., 0]], axis=-1)
    return cells


def _routes() -> np.ndarray:
    """``(8, 15, 2)`` cells of each route in driving order: two lanes and their quarter turns (right-hand traffic)."""
    rows = np.arange(GRID)
    base = [np.stack([rows, np.full(GRID, 12)], axis=1), np.stack([rows, np.full(GRID, 4)], axis=1)]  # driving down
    return np.stack([_rot_cell(lane, k) for k in range(4) for lane in base])


ROUTES = _routes()
#: ``ROUTE_PERM[k][r]``: the route that route ``r`` becomes after ``k`` quarter turns.
ROUTE_PERM = np.array([[2 * ((r // 2 + k) % 4) + r % 2 for r in range(8)] for k in range(4)])
#: ``LIGHT_PERM[k][i]``: the junction that junction ``i`` becomes after ``k`` quarter turns.
LIGHT_PERM = np.array([[int(np.flatnonzero((_rot_cell(c, k) == CENTERS).all(axis=1))[0]) for c in CENTERS] for k in range(4)])


def _route_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per route and step along it: is the cell a junction entrance, of which junction, and is the lane vertical."""
    entrance = np.zeros((8, GRID), dtype=bool)
    junction = np.full((8, GRID), -1)
    vertical = np.array([ROUTES[r, 0, 1] == ROUTES[r, 1, 1] for r in range(8)])
    for r in range(8):
        for s in range(1, GRID):
            for j, center in enumerate(CENTERS):
                inside = np.abs(ROUTES[r, s] - center).max() <= 1
                was_inside = np.abs(ROUTES[r, s - 1] - center).max() <= 1
                if inside and not was_inside:
                    entrance[r, s], junction[r, s] = True, j
    return entrance, junction, vertical


ENTRANCE, ENTRANCE_JUNCTION, VERTICAL = _route_tables()
#: ``STEP_OF[r, row, col]``: how far along route ``r`` the cell is (-1 off the route).
STEP_OF = np.full((8, GRID, GRID), -1)
for _r in range(8):
    STEP_OF[_r, ROUTES[_r, :, 0], ROUTES[_r, :, 1]] = np.arange(GRID)


class TrafficLightsEnv(gym.Env):
    """
    Traffic light control as a joint (centralised) Gymnasium env (see the module docstring for the rules).

    Observation ``Dict``: ``"view"``: ``Box(0, 1, (4, 3, 7 cell_size, 7 cell_size), float32)``, per light the 7 x 7
    cells around its junction with channels (roads, red entrances, cars), each cell drawn as a ``cell_size`` square;
    ``"position"``: ``Box(-0.5, 0.5, (4, 2), float32)``, each junction's center relative to the grid's center, in
    units of 8 cells (so at ``±0.5``, as the authors'). Action ``MultiDiscrete([2, 2, 2, 2])``: each light's
    phase (0: vertical lanes go, 1: horizontal lanes go).

    The state (:meth:`get_state` / :meth:`set_state`) is the flat vector ``[t, phases (4), route of the car in each
    cell (225, -1 if empty), waiting time of each car (225), cars queued at each entrance (8), spawn schedule
    (spawn_steps x 8)]``.

    :param car_prob: probability that a car joins each route in each of the first ``spawn_steps`` steps (0.1).
    :param spawn_steps: number of steps during which cars arrive (100).
    :param max_steps: time limit (499, as the authors').
    :param cell_size: pixels per cell in the views.
    """

    metadata = {"render_modes": []}

    def __init__(self, car_prob: float = 0.1, spawn_steps: int = 100, max_steps: int = 499, cell_size: int = 3):
        if not 0.0 <= car_prob <= 1.0:
            raise ValueError(f"car_prob must be in [0, 1], got {car_prob}")
        if spawn_steps < 0 or max_steps < 1 or cell_size < 1:
            raise ValueError(
                f"need spawn_steps >= 0, max_steps >= 1, cell_size >= 1; got {spawn_steps}, {max_steps}, {cell_size}"
            )
        self.car_prob, self.spawn_steps, self.max_steps, self.cell_size = car_prob, spawn_steps, max_steps, cell_size
        pixels = VIEW * cell_size
        self.observation_space = spaces.Dict(
            {
                "view": spaces.Box(0.0, 1.0, (N_LIGHTS, 3, pixels, pixels), dtype=np.float32),
                "position": spaces.Box(-0.5, 0.5, (N_LIGHTS, 2), dtype=np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([2] * N_LIGHTS)
        self._roads = np.zeros((GRID, GRID), dtype=np.float32)
        self._roads[list(ROAD_LINES), :] = 1.0
        self._roads[:, list(ROAD_LINES)] = 1.0
        self._positions = ((CENTERS - GRID // 2) / 8.0).astype(np.float32)  # junctions at (±0.5, ±0.5)
        self.t = 0
        self.phases = np.zeros(N_LIGHTS, dtype=np.int64)
        self.cars = np.full((GRID, GRID), -1, dtype=np.int64)  # route of the car in each cell
        self.wait = np.zeros((GRID, GRID), dtype=np.int64)
        self.queued = np.zeros(8, dtype=np.int64)
        self.schedule = np.zeros((spawn_steps, 8), dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        self.t = 0
        self.phases = self.np_random.integers(0, 2, N_LIGHTS)
        self.cars[:] = -1
        self.wait[:] = 0
        self.queued[:] = 0
        self.schedule = (self.np_random.random((self.spawn_steps, 8)) < self.car_prob).astype(np.int64)
        return self._get_obs(), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        action = np.asarray(action)
        if not self.action_space.contains(action.astype(self.action_space.dtype)):
            raise ValueError(f"invalid joint action {action!r} for {self.action_space}")
        self.phases = action.astype(np.int64)
        self._drive()
        if self.t < self.spawn_steps:
            self.queued += self.schedule[self.t]
        entries = ROUTES[:, 0]
        free = (self.cars[entries[:, 0], entries[:, 1]] < 0) & (self.queued > 0)
        self.cars[entries[free, 0], entries[free, 1]] = np.flatnonzero(free)
        self.wait[entries[free, 0], entries[free, 1]] = 0
        self.queued -= free
        self.t += 1
        on_grid = self.cars >= 0
        mean_wait = float(self.wait[on_grid].mean()) if on_grid.any() else 0.0
        terminated = bool(self.t >= self.spawn_steps and not on_grid.any() and not self.queued.any())
        truncated = bool(self.t >= self.max_steps and not terminated)
        return self._get_obs(), -mean_wait / 1000.0, terminated, truncated, {"mean_wait": mean_wait}

    def _drive(self) -> None:
        """Move every car one cell along its route where it may (synchronous update from the current occupancy)."""
        rows, cols = np.nonzero(self.cars >= 0)
        routes = self.cars[rows, cols]
        steps = STEP_OF[routes, rows, cols]
        leaving = steps == GRID - 1
        self.cars[rows[leaving], cols[leaving]] = -1
        self.wait[rows[leaving], cols[leaving]] = 0
        rows, cols, routes, steps = rows[~leaving], cols[~leaving], routes[~leaving], steps[~leaving]
        target = ROUTES[routes, steps + 1]
        empty = self.cars[target[:, 0], target[:, 1]] < 0
        entering = ENTRANCE[routes, steps + 1]
        light = ENTRANCE_JUNCTION[routes, steps + 1]
        green = ~entering | (self.phases[light] == np.where(VERTICAL[routes], 0, 1))
        wants = empty & green
        # A junction cell wanted by a car inside the junction and by one entering it goes to the one inside.
        inside_targets = {tuple(c) for c in target[wants & ~entering]}
        yielded = entering & np.array([tuple(c) in inside_targets for c in target], dtype=bool)
        moves = wants & ~yielded
        old_wait = self.wait[rows, cols].copy()
        self.cars[rows[moves], cols[moves]] = -1
        self.wait[rows[moves], cols[moves]] = 0
        self.cars[target[moves, 0], target[moves, 1]] = routes[moves]
        self.wait[target[moves, 0], target[moves, 1]] = old_wait[moves]
        self.wait[rows[~moves], cols[~moves]] += 1

    def _get_obs(self) -> dict[str, np.ndarray]:
        red = np.zeros((GRID, GRID), dtype=np.float32)
        for r in range(8):
            for s in np.flatnonzero(ENTRANCE[r]):
                if self.phases[ENTRANCE_JUNCTION[r, s]] != (0 if VERTICAL[r] else 1):
                    red[ROUTES[r, s, 0], ROUTES[r, s, 1]] = 1.0
        world = np.stack([self._roads, red, (self.cars >= 0).astype(np.float32)])
        half = VIEW // 2
        views = np.stack([world[:, r - half : r + half + 1, c - half : c + half + 1] for r, c in CENTERS])
        if self.cell_size > 1:
            views = np.kron(views, np.ones((self.cell_size, self.cell_size), dtype=np.float32))
        return {"view": views.astype(np.float32), "position": self._positions.copy()}

    def get_state(self) -> np.ndarray:
        """See the class docstring."""
        return np.concatenate(
            [[self.t], self.phases, self.cars.ravel(), self.wait.ravel(), self.queued, self.schedule.ravel()]
        ).astype(np.int64)

    def set_state(self, state: np.ndarray) -> None:
        """Set the state from :meth:`get_state`'s layout."""
        state = np.asarray(state, dtype=np.int64)
        cells = GRID * GRID
        expected = 1 + N_LIGHTS + 2 * cells + 8 + 8 * self.spawn_steps
        if state.shape != (expected,):
            raise ValueError(f"state must have {expected} entries (see get_state), got shape {state.shape}")
        parts = np.split(state, np.cumsum([1, N_LIGHTS, cells, cells, 8]))
        self.t, self.phases = int(parts[0][0]), parts[1].copy()
        self.cars, self.wait = parts[2].reshape(GRID, GRID).copy(), parts[3].reshape(GRID, GRID).copy()
        self.queued, self.schedule = parts[4].copy(), parts[5].reshape(self.spawn_steps, 8).copy()

    def get_obs(self) -> dict[str, np.ndarray]:
        """The observation of the current state (used after :meth:`set_state`)."""
        return self._get_obs()


class TrafficRotation:
    """
    Quarter turns acting on :class:`TrafficLightsEnv` states: grids rotate (car routes renamed by :data:`ROUTE_PERM`),
    lights move to their junction's image (:data:`LIGHT_PERM`) with phases swapped by odd turns, queues and the spawn
    schedule follow the routes. A picklable callable ``(state, g) -> state``.

    :param spawn_steps: the env's ``spawn_steps`` (the length of the schedule in the state).
    """

    def __init__(self, spawn_steps: int = 100):
        self.spawn_steps = spawn_steps

    def __call__(self, state: np.ndarray, g: int) -> np.ndarray:
        cells, k = GRID * GRID, int(g) % 4
        parts = np.split(np.asarray(state, dtype=np.int64), np.cumsum([1, N_LIGHTS, cells, cells, 8]))
        phases = np.empty(N_LIGHTS, dtype=np.int64)
        phases[LIGHT_PERM[k]] = (parts[1] + k) % 2
        cars = np.rot90(parts[2].reshape(GRID, GRID), k)
        cars = np.where(cars >= 0, ROUTE_PERM[k][np.maximum(cars, 0)], -1)
        wait = np.rot90(parts[3].reshape(GRID, GRID), k)
        queued, schedule = np.empty(8, dtype=np.int64), np.empty((self.spawn_steps, 8), dtype=np.int64)
        queued[ROUTE_PERM[k]] = parts[4]
        schedule[:, ROUTE_PERM[k]] = parts[5].reshape(self.spawn_steps, 8)
        return np.concatenate([parts[0], phases, cars.ravel(), wait.ravel(), queued, schedule.ravel()])

    def __repr__(self) -> str:
        return f"TrafficRotation(spawn_steps={self.spawn_steps})"


def traffic_symmetry(spawn_steps: int = 100) -> Symmetry:
    """
    The exact C4 symmetry of :class:`TrafficLightsEnv`: element ``k`` turns the grid ``k`` quarter turns about its
    center (counter-clockwise, as ``np.rot90``). Light ``i``'s view moves to the light at the image of its junction
    and rotates, positions rotate by ``(r, c) -> (-c, r)``, and the joint action moves with the lights, each phase
    swapped by odd turns (vertical and horizontal lanes exchange). Exact: the lane layout is the quarter-turn orbit of
    two lanes, and the rules only depend on lanes, junctions and phases.

    :param spawn_steps: the env's ``spawn_steps`` (for the state transform).
    """
    group = cyclic_group(4)
    lights = permutation(group, {1: LIGHT_PERM[1].tolist()}, name="traffic_lights")
    obs = DictAction(
        {
            "view": AgentAction(ImageAction(rotation_action(), channels=3, layout="CHW"), N_LIGHTS, lights),
            "position": AgentAction(position_rotation(), N_LIGHTS, lights),
        }
    )
    return Symmetry(
        obs,
        permutation(group, {1: [1, 0]}, name="traffic_phases"),
        exact=True,
        name="TrafficLights-C4",
        notes="quarter turns of the road grid: lights permute, phases swap; exact",
        state_transform=TrafficRotation(spawn_steps),
        agents=lights,
    )


def register_traffic() -> None:
    """Register :data:`TRAFFIC_ID` with gymnasium (idempotent; the env enforces its own time limit)."""
    if TRAFFIC_ID not in gym.registry:
        gym.register(id=TRAFFIC_ID, entry_point="sb3_equivariant.multiagent.traffic:TrafficLightsEnv")
