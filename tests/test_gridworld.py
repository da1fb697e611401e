import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.preprocessing import is_image_space

from sb3_equivariant import GRIDWORLD_ID, GridWorld, gridworld_symmetry
from sb3_equivariant.envs.gridworld import MOVES, ROTATE_ACTION, TorusRotation, register_gridworld

UP, RIGHT, DOWN, LEFT, STAY = 1, 2, 3, 4, 0


def _cells(obs: np.ndarray, cell_size: int = 3) -> np.ndarray:
    """(7, 7) map of non-empty cells of an observation."""
    img = obs[0].reshape(7, cell_size, 7, cell_size)
    return img.max(axis=(1, 3)) > 0


def _prey_offset(obs: np.ndarray) -> tuple[int, int]:
    cells = _cells(obs)
    cells[3, 3] = False
    (r,), (c,) = np.nonzero(cells)
    return int(r) - 3, int(c) - 3


@pytest.mark.parametrize("cell_size", [3, 6])
def test_spaces_and_image(cell_size: int) -> None:
    env = GridWorld(cell_size=cell_size)
    obs, info = env.reset(seed=0)
    assert env.observation_space == gym.spaces.Box(0, 255, (1, 7 * cell_size, 7 * cell_size), np.uint8)
    assert env.action_space == gym.spaces.Discrete(5)
    assert obs.dtype == np.uint8 and obs.shape == env.observation_space.shape and info == {}
    assert set(np.unique(obs)) == {0, 255}
    assert is_image_space(env.observation_space)  # SB3 scales it by 1/255
    k = cell_size // 3
    center = obs[0, 3 * cell_size : 4 * cell_size, 3 * cell_size : 4 * cell_size][::k, ::k]
    np.testing.assert_array_equal(center // 255, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])  # the agent's "x"
    assert _cells(obs, cell_size).sum() == 2  # agent and prey in different cells after reset


def test_check_env() -> None:
    # 42x42 images: no warning at all.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(GridWorld(cell_size=6))
    # The paper's 21x21 images: the only warning is SB3's note that the default CnnPolicy needs 36x36.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(GridWorld())
    assert [str(w.message)[:40] for w in caught] == ["The minimal resolution for an image is 3"]


@pytest.mark.parametrize(("action", "move"), [(STAY, (0, 0)), (UP, (-1, 0)), (RIGHT, (0, 1)), (DOWN, (1, 0)), (LEFT, (0, -1))])
def test_moves(action: int, move: tuple[int, int]) -> None:
    env = GridWorld(prey_move_prob=0.0)
    env.reset(seed=0)
    env.set_state([0, 6, 3, 3])  # agent at a corner: moves wrap around the torus
    before = _prey_offset(env.get_obs())
    obs, reward, terminated, truncated, _ = env.step(action)
    np.testing.assert_array_equal(env.get_state()[:2], (np.array([0, 6]) + move) % 7)
    assert tuple(MOVES[action]) == move
    # The prey appears to move the opposite way in the agent-centered view (offsets wrap into -3..3).
    expected = (np.array(before) - move + 3) % 7 - 3
    assert _prey_offset(obs) == tuple(expected)
    assert (reward, terminated, truncated) == (-0.1, False, False)


def test_catch_terminates_with_reward() -> None:
    env = GridWorld(prey_move_prob=0.0)
    env.reset(seed=0)
    env.set_state([2, 2, 1, 2])
    obs, reward, terminated, truncated, _ = env.step(UP)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert _cells(obs).sum() == 1 and (obs[0, 9:12, 9:12] == 255).all()  # both sprites in the center cell


def test_truncation_after_100_steps_registered_twice() -> None:
    register_gridworld()
    register_gridworld()  # idempotent
    env = gym.make(GRIDWORLD_ID, prey_move_prob=0.0)
    env.reset(seed=0)
    env.unwrapped.set_state([0, 0, 3, 3])
    for t in range(1, 101):
        _, reward, terminated, truncated, _ = env.step(STAY)
        assert reward == -0.1 and not terminated
        assert truncated == (t == 100)


def test_seeding_reproducible_and_prey_probability() -> None:
    def run(seed: int) -> list:
        env = GridWorld()
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(50):
            obs, _, terminated, _, _ = env.step(env.action_space.sample())
            out.append(obs)
            if terminated:
                out.append(env.reset()[0])
        return out

    a, b, c = run(3), run(3), run(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    env = GridWorld()
    env.reset(seed=0)
    moved = 0
    for _ in range(4000):
        env.set_state([0, 0, 3, 3])
        env.step(STAY)
        moved += not np.array_equal(env.get_state()[2:], [3, 3])
    assert 0.13 < moved / 4000 < 0.17


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="odd"):
        GridWorld(size=6)
    with pytest.raises(ValueError, match="multiple of 3"):
        GridWorld(cell_size=4)
    with pytest.raises(ValueError, match="prey_move_prob"):
        GridWorld(prey_move_prob=1.5)
    env = GridWorld()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="4 integer cells"):
        env.set_state([0, 0, 7, 0])
    with pytest.raises(ValueError, match="invalid action"):
        env.step(5)


@pytest.mark.parametrize("g", range(4))
def test_rotation_of_state_matches_rotation_of_image(g: int) -> None:
    """Rotating the state about the torus center rotates the observation by np.rot90 (counter-clockwise)."""
    env = GridWorld()
    env.reset(seed=0)
    sym = gridworld_symmetry()
    rng = np.random.default_rng(g)
    for _ in range(20):
        state = rng.integers(0, 7, size=4)
        env.set_state(state)
        obs = env.get_obs()
        env.set_state(sym.transform_state(state, g))
        np.testing.assert_array_equal(env.get_obs(), np.rot90(obs, g, axes=(1, 2)))
        np.testing.assert_array_equal(sym.transform_obs(obs, g), np.rot90(obs, g, axes=(1, 2)))


def test_action_rotation_direction() -> None:
    """A quarter turn counter-clockwise sends up to left, left to down, down to right, right to up."""
    sym = gridworld_symmetry()
    assert ROTATE_ACTION == [STAY, LEFT, UP, RIGHT, DOWN]
    assert [sym.transform_action(a, 1) for a in (STAY, UP, LEFT, DOWN, RIGHT)] == [STAY, LEFT, DOWN, RIGHT, UP]
    for a in range(1, 5):  # the move vectors rotate as image content does: (dr, dc) -> (-dc, dr)
        dr, dc = MOVES[a]
        np.testing.assert_array_equal(MOVES[sym.transform_action(a, 1)], [-dc, dr])


def test_torus_rotation_group_action_and_pickle() -> None:
    rot = pickle.loads(pickle.dumps(TorusRotation(7)))
    states = np.random.default_rng(0).integers(0, 7, size=(50, 4))
    for s in states:
        np.testing.assert_array_equal(rot(s, 0), s)
        np.testing.assert_array_equal(rot(rot(s, 1), 3), s)
        np.testing.assert_array_equal(rot(rot(s, 1), 1), rot(s, 2))
        assert rot(s, 1).min() >= 0 and rot(s, 1).max() <= 6
    np.testing.assert_array_equal(rot(np.array([0, 3, 3, 3]), 1), [3, 0, 3, 3])  # top center -> left center
