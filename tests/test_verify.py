import importlib.util

import gymnasium as gym
import numpy as np
import pytest

from sb3_equivariant import (
    GRIDWORLD_ID,
    MASKED_CARTPOLE_ID,
    Symmetry,
    SymmetryError,
    check_symmetry,
    make_symmetric_env,
    symmetry_for,
)
from sb3_equivariant.envs.verify import StateAccess, state_access
from sb3_equivariant.group import cyclic_group, flip_group
from sb3_equivariant.representation import (
    ImageAction,
    Representation,
    SpatialAction,
    SpatialOp,
    permutation,
    signed_permutation,
    trivial,
)

HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
HAS_ALE = importlib.util.find_spec("ale_py") is not None
needs_mujoco = pytest.mark.skipif(not HAS_MUJOCO, reason="mujoco not installed")
EXACT_ENVS = [
    "CartPole-v1",
    MASKED_CARTPOLE_ID,
    "Acrobot-v1",
    "Pendulum-v1",
    GRIDWORLD_ID,
    pytest.param("Walker2d-v5", marks=needs_mujoco),
]
N_SAMPLES = {GRIDWORLD_ID: 8}


def _flip_one_sign(rep: Representation) -> Representation:
    """The C2 map with the sign of one coordinate wrong (the last one it does not move: still a representation)."""
    signs = rep.signs[1].copy()
    signs[np.flatnonzero(rep.permutations[1] == np.arange(rep.dim))[-1]] *= -1
    return signed_permutation(flip_group(), {1: rep.permutations[1].tolist()}, {1: signs.tolist()}, name="corrupted")


def _wrong_obs(sym: Symmetry) -> Symmetry:
    if sym.is_image:  # GridWorld: rotate the image clockwise instead of counter-clockwise
        spatial = SpatialAction(cyclic_group(4), [SpatialOp(rot=-k) for k in range(4)], name="clockwise")
        return sym.replace(obs_action=ImageAction(spatial, channels=1, layout="CHW"))
    return sym.replace(obs_action=_flip_one_sign(sym.obs_action))


def _wrong_actions(sym: Symmetry) -> Symmetry:
    if sym.group.order == 4:  # GridWorld: the moves rotated the other way round
        return sym.replace(action_rep=permutation(sym.group, {1: [0, 2, 3, 4, 1]}))
    # CartPole/Acrobot: actions not swapped; Pendulum: a -> a instead of -a; Walker: legs not swapped.
    return sym.replace(action_rep=trivial(sym.group, sym.action_rep.dim))


@pytest.mark.parametrize("env_id", EXACT_ENVS)
def test_registered_exact_symmetries_pass(env_id: str) -> None:
    env = make_symmetric_env(env_id)
    report = check_symmetry(env, n_samples=N_SAMPLES.get(env_id, 16), seed=1, strict=True)
    assert report.passed and report.dynamics_verified and not report.unverified
    for name in ("transition", "reward", "termination", "obs_of_state", "obs_composition", "action_composition"):
        assert report[name].n_checked > 0 and report[name].passed
    assert report["transition"].max_error <= 1e-5


@pytest.mark.parametrize("corrupt", [_wrong_obs, _wrong_actions], ids=["wrong_obs_map", "wrong_action_map"])
@pytest.mark.parametrize("env_id", EXACT_ENVS)
def test_corrupted_maps_fail(env_id: str, corrupt) -> None:
    if env_id == MASKED_CARTPOLE_ID and corrupt is _wrong_actions:
        pytest.skip("one step is too short to see the action in [x, theta]: test_masked_cartpole_action_map")
    env = make_symmetric_env(env_id)
    bad = corrupt(symmetry_for(env_id, env))
    report = check_symmetry(env, bad, n_samples=N_SAMPLES.get(env_id, 16), seed=1)
    assert not report.passed
    failing = {c.name for c in report.failures}
    assert failing & {"transition", "reward", "termination", "obs_of_state", "transition_distribution"}, str(report)
    with pytest.raises(SymmetryError, match=f"symmetry {bad.name} fails verification"):
        check_symmetry(env, bad, n_samples=4, seed=1, strict=True)


@needs_mujoco
def test_masked_cartpole_action_map() -> None:
    # The action changes only the hidden velocities, so the next [x, theta] cannot show a wrong action map; the map is
    # CartPole's, whose dynamics it shares, and there a wrong map fails. The hidden-velocity map is CartPole's masked.
    env = make_symmetric_env(MASKED_CARTPOLE_ID)
    sym, full = symmetry_for(MASKED_CARTPOLE_ID), symmetry_for("CartPole-v1")
    assert check_symmetry(env, _wrong_actions(sym), n_samples=16, seed=1).passed
    assert not check_symmetry(make_symmetric_env("CartPole-v1"), _wrong_actions(full), n_samples=16, seed=1).passed
    np.testing.assert_array_equal(sym.action_rep.matrices, full.action_rep.matrices)
    states = np.random.default_rng(0).normal(size=(8, 4))
    np.testing.assert_array_equal(sym.transform_state(states, 1), full.transform_obs(states, 1))
    np.testing.assert_array_equal(sym.transform_obs(states[:, [0, 2]], 1), full.transform_obs(states, 1)[:, [0, 2]])


def test_inverted_pendulum_is_only_approximate() -> None:
    """The model's pole leans 1 mm off the hinge axis: the mirror is close to, but not, a symmetry."""
    env = make_symmetric_env("InvertedPendulum-v5")
    assert not env.symmetry.exact
    assert not check_symmetry(env, n_samples=16).dynamics_verified  # skipped for approximate maps by default
    tight = check_symmetry(env, n_samples=16, seed=1, check_approximate=True)
    assert not tight["transition"].passed and tight["reward"].passed and tight["termination"].passed
    assert 1e-4 < tight["transition"].max_error < 1e-2
    assert check_symmetry(env, n_samples=16, seed=1, check_approximate=True, atol=1e-2).passed


def test_wrong_state_transform_fails() -> None:
    env = make_symmetric_env("Acrobot-v1")
    sym = env.symmetry
    # Negating only the angles (not the velocities) contradicts the observation map.
    bad = sym.replace(state_transform=signed_permutation(flip_group(), None, {1: [-1, -1, 1, 1]}))
    report = check_symmetry(env, bad, n_samples=8)
    assert not report["obs_of_state"].passed and not report["transition"].passed


def test_group_action_checks_can_fail() -> None:
    env = make_symmetric_env("CartPole-v1")

    class Broken(Symmetry):
        def transform_obs(self, obs, g):
            return -obs if g == 1 else obs + 0.5  # the identity moves observations

    sym = env.symmetry
    broken = Broken(sym.obs_action, sym.action_rep, state_transform=sym.state_transform)
    report = check_symmetry(env, broken, n_samples=4)
    assert not report["obs_identity"].passed and not report["obs_composition"].passed


def test_obs_outside_space_reported() -> None:
    env = make_symmetric_env("Pendulum-v1")
    # Swapping sin and the angular velocity is a group action but leaves the observation box ([-1, 1] for sin).
    swap = signed_permutation(flip_group(), {1: [0, 2, 1]}, None)
    report = check_symmetry(env, env.symmetry.replace(obs_action=swap), n_samples=16)
    assert not report["obs_in_space"].passed


def test_stochastic_env_compared_as_distributions() -> None:
    env = make_symmetric_env(GRIDWORLD_ID)
    report = check_symmetry(env, n_samples=8, seed=0)
    assert report.passed
    dist = report["transition_distribution"]
    assert dist.n_checked > 0 and dist.max_error < 0.2  # the prey's random moves: C4-invariant distribution
    # Without the prey's randomness every transition is checked pathwise.
    det = check_symmetry(make_symmetric_env(GRIDWORLD_ID, prey_move_prob=0.0), n_samples=8)
    assert det.passed and det["transition"].n_checked == 8 * 3 * 5
    with pytest.raises(KeyError, match="no check named"):
        det["transition_distribution"]


def test_unverifiable_cases_are_reported() -> None:
    env = make_symmetric_env("CartPole-v1")
    no_state = env.symmetry.replace(state_transform=None)
    report = check_symmetry(env, no_state, n_samples=4)
    assert report.passed and not report.dynamics_verified
    assert any("no state_transform" in u for u in report.unverified)
    approx = env.symmetry.replace(exact=False, notes="pretend")
    assert any("approximate" in u for u in check_symmetry(env, approx, n_samples=4).unverified)
    with pytest.raises(TypeError, match="single gymnasium env"):
        check_symmetry("CartPole-v1")  # type: ignore[arg-type]


def test_custom_state_access() -> None:
    env = make_symmetric_env("CartPole-v1")
    env.reset(seed=0)
    default = state_access(env)
    assert default is not None and default.name == "classic control .state"
    calls = []

    def observe() -> np.ndarray:
        calls.append(1)
        return default.observe()

    access = StateAccess(default.get_state, default.set_state, observe, "custom")
    assert check_symmetry(env, n_samples=4, access=access).passed and calls


@pytest.mark.skipif(not HAS_ALE, reason="ale-py not installed")
def test_atari_group_checks_only() -> None:
    env = make_symmetric_env("PongNoFrameskip-v4")
    report = check_symmetry(env, n_samples=4)
    assert report.passed and not report.dynamics_verified
    assert any("cannot be set" in u for u in report.unverified)
    assert report["obs_composition"].n_checked > 0 and report["obs_in_space"].passed
    env.close()


def test_verifier_on_plain_env_uses_registry() -> None:
    assert check_symmetry(gym.make("Acrobot-v1"), n_samples=4).passed
