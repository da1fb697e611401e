import importlib.util

import gymnasium as gym
import numpy as np
import pytest

from sb3_equivariant import GRIDWORLD_ID, MASKED_CARTPOLE_ID, SymmetryError, register_symmetry, registered_envs, symmetry_for
from sb3_equivariant.envs import registry
from sb3_equivariant.envs.registry import cartpole_symmetry, has_symmetry, swap_action_meanings
from sb3_equivariant.multiagent import LEVER_ID, TRAFFIC_ID, WILDLIFE_ID

EXPECTED_IDS = [
    "CartPole-v1",
    "Acrobot-v1",
    "Pendulum-v1",
    "LunarLander-v3",
    "LunarLanderContinuous-v3",
    "Walker2d-v5",
    "InvertedPendulum-v5",
    "PongNoFrameskip-v4",
    "ALE/Pong-v5",
    "BreakoutNoFrameskip-v4",
    "ALE/Breakout-v5",
    GRIDWORLD_ID,
    WILDLIFE_ID,
    TRAFFIC_ID,
    LEVER_ID,
    MASKED_CARTPOLE_ID,
]
EXACT = {
    "CartPole-v1",
    "Acrobot-v1",
    "Pendulum-v1",
    "Walker2d-v5",
    GRIDWORLD_ID,
    WILDLIFE_ID,
    TRAFFIC_ID,
    LEVER_ID,
    MASKED_CARTPOLE_ID,
}
HAS_BOX2D = importlib.util.find_spec("Box2D") is not None
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
HAS_ALE = importlib.util.find_spec("ale_py") is not None


def test_registered_ids() -> None:
    assert sorted(EXPECTED_IDS) == registered_envs()
    assert "MountainCar-v0" not in registered_envs()


@pytest.mark.parametrize("env_id", EXPECTED_IDS)
def test_entries_are_documented(env_id: str) -> None:
    doc = registry._REGISTRY[env_id].__doc__ or ""
    assert env_id.split("/")[-1].split("NoFrameskip")[0].split("-")[0] in doc
    assert ("exact" in doc.lower()) or ("approximate" in doc.lower())


@pytest.mark.parametrize("env_id", [e for e in EXPECTED_IDS if "Pong" not in e and "Breakout" not in e])
def test_factories_without_env(env_id: str) -> None:
    """Entries that need no simulator build their symmetry without one; exactness matches the documentation."""
    sym = symmetry_for(env_id)
    assert sym.exact == (env_id in EXACT)
    assert len(sym) == {LEVER_ID: 9}.get(env_id, 4 if env_id in (GRIDWORLD_ID, WILDLIFE_ID, TRAFFIC_ID) else 2)
    if sym.exact or env_id == "InvertedPendulum-v5":
        assert sym.state_transform is not None


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", GRIDWORLD_ID])
def test_symmetry_fits_env_spaces(env_id: str) -> None:
    env = gym.make(env_id)
    sym = symmetry_for(env_id, env)
    assert sym.check_spaces(env.observation_space, env.action_space) is sym


@pytest.mark.skipif(not HAS_BOX2D, reason="Box2D is not installed")
@pytest.mark.parametrize("continuous", [False, True])
def test_lunar_lander_fits(continuous: bool) -> None:
    env = gym.make("LunarLander-v3", continuous=continuous)
    sym = symmetry_for("LunarLander-v3", env)
    sym.check_spaces(env.observation_space, env.action_space)
    assert sym.discrete != continuous and not sym.exact


def test_lunar_lander_maps() -> None:
    sym = symmetry_for("LunarLander-v3")
    obs = np.arange(1.0, 9.0)
    np.testing.assert_array_equal(sym.transform_obs(obs, 1), [-1, 2, -3, 4, -5, -6, 8, 7])
    assert [sym.transform_action(a, 1) for a in range(4)] == [0, 3, 2, 1]
    cont = symmetry_for("LunarLanderContinuous-v3")
    np.testing.assert_array_equal(cont.transform_action(np.array([0.5, -0.7]), 1), [0.5, 0.7])


@pytest.mark.skipif(not HAS_MUJOCO, reason="mujoco is not installed")
@pytest.mark.parametrize("env_id", ["Walker2d-v5", "InvertedPendulum-v5"])
def test_mujoco_fits(env_id: str) -> None:
    env = gym.make(env_id)
    symmetry_for(env_id, env).check_spaces(env.observation_space, env.action_space)


def test_walker_legs_swap() -> None:
    sym = symmetry_for("Walker2d-v5")
    obs = np.arange(17.0)
    expected = np.r_[0, 1, 5, 6, 7, 2, 3, 4, 8, 9, 10, 14, 15, 16, 11, 12, 13]
    np.testing.assert_array_equal(sym.transform_obs(obs, 1), expected)
    np.testing.assert_array_equal(sym.transform_action(np.arange(6.0), 1), [3, 4, 5, 0, 1, 2])
    state = np.arange(18.0)
    np.testing.assert_array_equal(sym.transform_state(state, 1)[3:9], [6, 7, 8, 3, 4, 5])
    np.testing.assert_array_equal(sym.transform_state(state, 1)[12:18], [15, 16, 17, 12, 13, 14])


@pytest.mark.parametrize("env_id", ["MountainCar-v0", "MountainCarContinuous-v0"])
def test_mountain_car_has_no_symmetry(env_id: str) -> None:
    assert not has_symmetry(env_id)
    with pytest.raises(SymmetryError, match=r"has no symmetry: the track spans x in \[-1.2, 0.6\].*not mirror symmetric"):
        symmetry_for(env_id)


def test_unknown_id_lists_registered() -> None:
    with pytest.raises(SymmetryError, match=r"registered envs: .*Acrobot-v1.*CartPole-v1"):
        symmetry_for("HalfCheetah-v5")


def test_register_symmetry() -> None:
    with pytest.raises(SymmetryError, match="already registered"):
        register_symmetry("CartPole-v1", cartpole_symmetry)
    with pytest.raises(SymmetryError, match="must be callable"):
        register_symmetry("MyEnv-v0", "cartpole")
    register_symmetry("MyCartPole-v0", cartpole_symmetry)
    try:
        assert "MyCartPole-v0" in registered_envs()
        assert symmetry_for("MyCartPole-v0").name == "CartPole-mirror"
        register_symmetry("MyCartPole-v0", registry.pendulum_symmetry, overwrite=True)
        assert symmetry_for("MyCartPole-v0").name == "Pendulum-mirror"
    finally:
        registry._REGISTRY.pop("MyCartPole-v0")


FULL_ACTIONS = [
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
    "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE",
]  # fmt: skip


@pytest.mark.parametrize(
    ("swap", "pairs"),
    [
        ({"RIGHT": "LEFT", "LEFT": "RIGHT"}, [("RIGHT", "LEFT"), ("UPRIGHT", "UPLEFT"), ("DOWNRIGHTFIRE", "DOWNLEFTFIRE")]),
        ({"UP": "DOWN", "DOWN": "UP"}, [("UP", "DOWN"), ("UPRIGHT", "DOWNRIGHT"), ("UPLEFTFIRE", "DOWNLEFTFIRE")]),
    ],
)
def test_swap_action_meanings(swap: dict, pairs: list) -> None:
    perm = swap_action_meanings(FULL_ACTIONS, swap)
    assert sorted(perm) == list(range(len(FULL_ACTIONS)))
    for a, b in pairs:
        assert FULL_ACTIONS[perm[FULL_ACTIONS.index(a)]] == b
        assert FULL_ACTIONS[perm[FULL_ACTIONS.index(b)]] == a
    for fixed in ("NOOP", "FIRE"):
        assert perm[FULL_ACTIONS.index(fixed)] == FULL_ACTIONS.index(fixed)
    assert [perm[p] for p in perm] == list(range(len(FULL_ACTIONS)))  # an involution


def test_swap_action_meanings_errors() -> None:
    with pytest.raises(SymmetryError, match="maps to 'LEFT', which is not in the action set"):
        swap_action_meanings(["NOOP", "RIGHT"], {"RIGHT": "LEFT"})
    with pytest.raises(SymmetryError, match="cannot parse"):
        swap_action_meanings(["NOOP", "JUMP"], {})


@pytest.mark.skipif(not HAS_ALE, reason="ale-py is not installed")
@pytest.mark.parametrize("env_id", ["PongNoFrameskip-v4", "ALE/Pong-v5", "BreakoutNoFrameskip-v4", "ALE/Breakout-v5"])
def test_atari_entries_read_action_meanings(env_id: str) -> None:
    import ale_py

    gym.register_envs(ale_py)
    for full in (False, True):
        env = gym.make(env_id, full_action_space=full)
        meanings = env.unwrapped.get_action_meanings()
        sym = symmetry_for(env_id, env)
        sym.check_spaces(env.observation_space, env.action_space)
        assert not sym.exact
        swapped = {meanings[a]: meanings[sym.transform_action(a, 1)] for a in range(len(meanings))}
        assert swapped["RIGHT"] == "LEFT" and swapped["LEFT"] == "RIGHT" and swapped["NOOP"] == "NOOP"
        assert swapped["FIRE"] == "FIRE"
        if "RIGHTFIRE" in meanings:
            assert swapped["RIGHTFIRE"] == "LEFTFIRE"
        if full:
            assert swapped["UPRIGHT"] == "UPLEFT" and swapped["UP"] == "UP"
        env.close()
    # Without an env the factory reads the default action set itself.
    assert symmetry_for(env_id).action_rep.dim == len(gym.make(env_id).unwrapped.get_action_meanings())
