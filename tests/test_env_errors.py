"""Bad input to the env API gets an error naming the cause and the fix; user wrappers can declare a symmetry rule."""

from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_equivariant import (
    Symmetry,
    SymmetryError,
    check_symmetry,
    get_symmetry,
    make_symmetric_atari_env,
    make_symmetric_env,
    make_symmetric_vec_env,
    register_wrapper,
    symmetry_for,
)
from sb3_equivariant.envs import propagation
from sb3_equivariant.group import flip_group
from sb3_equivariant.representation import permutation, signed_permutation

FLIP = flip_group()
NEG1 = signed_permutation(FLIP, None, {1: [-1]}, name="neg1")
NEG4 = signed_permutation(FLIP, None, {1: [-1, -1, -1, -1]}, name="neg4")
SWAP2 = permutation(FLIP, {1: [1, 0]}, name="swap2")


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (0.7, "whole numbers"),
        (np.array([0.0, 0.5], np.float32), "whole numbers"),
        (7, "out of range"),
        (-1, "out of range"),
        (np.array([[0, 2]]), "out of range"),
        ("left", "whole numbers"),
    ],
)
def test_discrete_action_must_be_an_index(action: Any, match: str) -> None:
    with pytest.raises(SymmetryError, match=match):
        symmetry_for("CartPole-v1").transform_action(action, 1)


@pytest.mark.parametrize(
    ("action", "expected"),
    [(1, 0), (np.int64(0), 1), (np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0]))],  # the rollout buffer's float32
)
def test_discrete_action_indices_are_permuted(action: Any, expected: Any) -> None:
    np.testing.assert_array_equal(symmetry_for("CartPole-v1").transform_action(action, 1), expected)


@pytest.mark.parametrize("action", [0.5, np.array(0.5)])
def test_box_action_needs_an_axis(action: Any) -> None:
    with pytest.raises(SymmetryError, match="last axis has 1 entries"):
        symmetry_for("Pendulum-v1").transform_action(action, 1)


def test_zero_dimensional_observation() -> None:
    with pytest.raises(SymmetryError, match="at least one axis"):
        symmetry_for("Pendulum-v1").transform_obs(np.array(0.5), 1)


@pytest.mark.parametrize(
    ("obs_space", "action_space", "what"),
    [
        (spaces.Box(-1, 1, (1,)), spaces.Box(0, 1, (1,)), "action"),  # a -> -a on [0, 1]
        (spaces.Box(-1, 1, (1,)), spaces.Box(np.float32([-1]), np.float32([2])), "action"),
        (spaces.Box(0, 1, (4,)), spaces.Discrete(2), "observation"),  # obs -> -obs on [0, 1]^4
    ],
)
def test_map_that_leaves_the_space(obs_space: spaces.Box, action_space: spaces.Space, what: str) -> None:
    obs_rep = NEG1 if obs_space.shape == (1,) else NEG4
    symmetry = Symmetry(obs_rep, NEG1 if isinstance(action_space, spaces.Box) else SWAP2)
    with pytest.raises(SymmetryError, match=f"does not map the {what} box .* onto itself"):
        symmetry.check_spaces(obs_space, action_space)


def test_map_inside_unbounded_and_symmetric_spaces() -> None:
    inf = np.full(4, np.inf, np.float32)
    Symmetry(NEG4, SWAP2).check_spaces(spaces.Box(-inf, inf), spaces.Discrete(2))
    Symmetry(NEG1, NEG1).check_spaces(spaces.Box(-2, 2, (1,)), spaces.Box(-1, 1, (1,)))


@pytest.mark.parametrize(
    ("obs_space", "action_space"),
    [(spaces.Box(-1, 1, ()), spaces.Box(-1, 1, (1,))), (spaces.Box(-1, 1, (1,)), spaces.Box(-1, 1, ()))],
)
def test_zero_dimensional_box_spaces(obs_space: spaces.Box, action_space: spaces.Box) -> None:
    with pytest.raises(SymmetryError, match=r"shape \(\)"):
        Symmetry(NEG1, NEG1).check_spaces(obs_space, action_space)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("abc", NEG1), "obs_action must be a Representation"),
        ((NEG1, "abc"), "action_rep must be a Representation"),
        ((NEG1, NEG1, True, 3), "name must be a str"),
    ],
)
def test_symmetry_argument_types(args: tuple, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        Symmetry(*args)


def test_check_symmetry_arguments() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match=r"gym\.make"):
        check_symmetry("CartPole-v1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="registered env id"):
        check_symmetry(env, 3)  # type: ignore[arg-type]
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
            check_symmetry(env, n_samples=n)  # type: ignore[arg-type]
    report = check_symmetry(env, "CartPole-v1", n_samples=4, strict=True)  # a registry id is accepted
    assert report.dynamics_verified


def _wrong_pong_like_map() -> Symmetry:
    # a wrong action map (push left stays push left): only the dynamics can tell
    return Symmetry(NEG4, permutation(FLIP, {1: [0, 1]}), name="wrong")


def test_strict_fails_when_the_dynamics_cannot_be_checked() -> None:
    env = make_symmetric_env("CartPole-v1")
    without_state = _wrong_pong_like_map()
    report = check_symmetry(env, without_state, n_samples=4)
    assert report.passed and not report.dynamics_verified
    assert "dynamics NOT checked" in str(report) and "dynamics not checked: no state_transform" in str(report)
    with pytest.raises(SymmetryError, match=r"no state_transform.*strict=True needs"):
        check_symmetry(env, without_state, n_samples=4, strict=True)


def test_strict_fails_without_state_access() -> None:
    class Opaque(gym.Wrapper):
        @property
        def unwrapped(self) -> gym.Env:  # hides CartPole's state from the verifier
            return self

        def step(self, action: Any) -> Any:
            return self.env.step(action)

    env = Opaque(gym.make("CartPole-v1").unwrapped)
    wrong = symmetry_for("CartPole-v1").replace(action_rep=permutation(FLIP, {1: [0, 1]}))
    assert check_symmetry(env, wrong, n_samples=4).passed  # the group-action checks cannot see it
    with pytest.raises(SymmetryError, match="cannot be set"):
        check_symmetry(env, wrong, n_samples=4, strict=True)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: make_symmetric_vec_env("CartPole-v1", n_envs=0), ValueError, "n_envs must be an integer >= 1"),
        (lambda: make_symmetric_vec_env("CartPole-v1", n_envs=2.0), ValueError, "n_envs must be an integer >= 1"),
        (lambda: make_symmetric_vec_env("CartPole-v1", seed="abc"), TypeError, "seed must be an int or None"),
        (lambda: make_symmetric_env(3), TypeError, "gymnasium id string"),
        (lambda: make_symmetric_vec_env(None), TypeError, "gymnasium id string"),
        (lambda: make_symmetric_env("MountainCar-v0"), SymmetryError, "not mirror symmetric"),
        (lambda: make_symmetric_atari_env("CartPole-v1"), ValueError, "needs an Atari"),
        (lambda: make_symmetric_atari_env("NoSuchGame-v9"), ValueError, "not a registered gymnasium id"),
    ],
)
def test_factory_arguments(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


class _ScaleReward(gym.Wrapper):
    """A user's wrapper that leaves observations and actions alone."""

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, 2.0 * float(reward), terminated, truncated, info


class _Doubled(gym.ObservationWrapper):
    """A user's wrapper that scales observations: every linear map commutes with it, given a rule."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        box = env.observation_space
        assert isinstance(box, spaces.Box)
        self.observation_space = spaces.Box(2 * box.low, 2 * box.high, dtype=box.dtype)

    def observation(self, observation: Any) -> Any:
        return 2 * observation


@pytest.fixture
def clean_rules() -> Any:
    saved = dict(propagation._RULES)
    yield
    propagation._RULES.clear()
    propagation._RULES.update(saved)


def test_user_wrapper_declares_it_preserves_the_symmetry(clean_rules: None) -> None:
    env = _ScaleReward(gym.make("CartPole-v1"))
    with pytest.raises(SymmetryError, match=r"register_wrapper\(_ScaleReward\)"):
        get_symmetry(env)
    assert register_wrapper(_ScaleReward) is _ScaleReward  # usable as a class decorator
    assert get_symmetry(env, required=True).name == "CartPole-mirror"
    vec = make_symmetric_vec_env("CartPole-v1", n_envs=2, wrapper_class=_ScaleReward)
    assert get_symmetry(vec, required=True).name == "CartPole-mirror"
    with pytest.raises(SymmetryError, match="already has a symmetry rule"):
        register_wrapper(_ScaleReward)


def test_pass_through_declaration_is_checked(clean_rules: None) -> None:
    register_wrapper(_Doubled)  # wrongly declared pass-through: it changes the observation space
    with pytest.raises(SymmetryError, match="declared pass-through, but changes the observation space"):
        get_symmetry(_Doubled(gym.make("CartPole-v1")))
    register_wrapper(_Doubled, lambda symmetry, wrapper: symmetry, overwrite=True)
    assert get_symmetry(DummyVecEnv([lambda: _Doubled(gym.make("CartPole-v1"))]), required=True).name == "CartPole-mirror"


def test_register_wrapper_arguments() -> None:
    with pytest.raises(TypeError, match="Wrapper or SB3 VecEnvWrapper class"):
        register_wrapper(dict)
    with pytest.raises(TypeError, match="must be callable"):
        register_wrapper(_ScaleReward, "pass")  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="ale-py not installed")
def test_atari_frame_stack_rule() -> None:
    venv = make_symmetric_atari_env("PongNoFrameskip-v4", n_envs=1, frame_stack=4, transpose=True)
    symmetry = get_symmetry(venv, required=True)
    assert symmetry.name == "Pong-vflipx4" and symmetry.obs_action.layout == "CHW"  # type: ignore[union-attr]
    venv.close()
