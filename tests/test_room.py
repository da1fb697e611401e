import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sb3_equivariant.envs.room import KEY_CELL, LETTER_CELL, ROOM_ID, TRAIN_GOALS, Room

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def _walk(env: Room, cells: list[tuple[int, int]]) -> list[tuple[float, bool, bool]]:
    """Walk the robot through neighboring cells; (reward, terminated, info["is_success"]) of each step."""
    out = []
    for cell in cells:
        dr, dc = cell[0] - env.robot[0], cell[1] - env.robot[1]
        action = {(-1, 0): UP, (0, 1): RIGHT, (1, 0): DOWN, (0, -1): LEFT}[(dr, dc)]
        _, reward, terminated, truncated, info = env.step(action)
        assert env.robot == cell and not truncated
        out.append((reward, terminated, info.get("is_success")))
    return out


@pytest.mark.parametrize("n_objects", [1, 2])
@pytest.mark.parametrize("goal", ["train", "test", (2, 4)])
def test_env_checker(n_objects: int, goal) -> None:
    env = gym.make(ROOM_ID, n_objects=n_objects, goal=goal)
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 48, 48) and obs.dtype == np.uint8 and set(np.unique(obs)) == {0, 255}
    assert env.spec is not None and env.spec.max_episode_steps == 100


def test_goals_are_drawn_from_their_set() -> None:
    train, test = Room(goal="train"), Room(goal="test")
    train_goals = {train.reset(seed=s)[1]["goal"] for s in range(60)}
    assert train_goals == set(TRAIN_GOALS)
    for seed in range(60):
        _, info = test.reset(seed=seed)
        assert info["goal"] not in (KEY_CELL, test.robot)


@pytest.mark.parametrize("n_objects", [1, 2])
def test_deliver_the_key(n_objects: int) -> None:
    env = Room(n_objects=n_objects, goal=(6, 6))
    env.reset(seed=0)
    env.robot = (5, 3)
    steps = _walk(env, [(5, 4), (5, 5), (6, 5), (6, 6)])
    assert steps == [(-0.1, False, False), (1.0, False, False), (-0.1, False, False), (1.0, True, True)]
    assert KEY_CELL not in env.remaining
    # The goal observation is what the robot sees on arrival.
    np.testing.assert_array_equal(env._render(env.robot, env.remaining), env.goal_observation())


def test_letter_is_a_distractor() -> None:
    env = Room(n_objects=2, goal=(3, 5))
    env.reset(seed=0)
    env.robot = (3, 2)
    assert _walk(env, [LETTER_CELL, (3, 4), (3, 5)]) == [(-1.0, False, False), (-0.1, False, False), (-0.1, True, False)]


def test_walls_and_channels() -> None:
    env = Room(n_objects=2, goal=(1, 1))
    obs, _ = env.reset(seed=0)
    env.robot = (1, 1)
    obs, reward, terminated, _, _ = env.step(UP)
    assert env.robot == (1, 1) and reward == -0.1 and not terminated
    assert np.all(obs[:, :6] == 255) and np.all(obs[:, :, -6:] == 255)
    cell = lambda c, r, k: obs[c, 6 * r : 6 * r + 6, 6 * k : 6 * k + 6]  # noqa: E731
    assert cell(0, 1, 1).any() and not cell(0, 5, 5).any()
    assert cell(1, *KEY_CELL).any() and not cell(2, *KEY_CELL).any()
    assert cell(2, *LETTER_CELL).any() and not cell(1, *LETTER_CELL).any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_objects": 3}, "n_objects"),
        ({"goal": "anywhere"}, "goal must be"),
        ({"goal": (0, 0)}, "not a free interior cell"),
        ({"goal": KEY_CELL}, "not a free interior cell"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Room(**kwargs)


def test_an_episode_cut_by_the_time_limit_is_a_failure() -> None:
    """The success rate of a policy that never delivers the key is 0, not NaN (the truncated step reports it too)."""
    from sb3_equivariant.prae.evaluation import run_episodes

    class Up:  # walks into the top wall forever
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return np.zeros(len(obs), dtype=np.int64), state

    lengths, successes = run_episodes(Up(), gym.make(ROOM_ID, n_objects=1), 2, seed=0)  # type: ignore[arg-type]
    np.testing.assert_array_equal(lengths, [100, 100])
    np.testing.assert_array_equal(successes, [0.0, 0.0])
