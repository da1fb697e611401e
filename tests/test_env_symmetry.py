import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnvWrapper,
    VecFrameStack,
    VecNormalize,
    VecTransposeImage,
)

from sb3_equivariant import (
    GRIDWORLD_ID,
    SymmetricEnv,
    Symmetry,
    SymmetryError,
    get_symmetry,
    make_symmetric_env,
    make_symmetric_vec_env,
    symmetry_for,
)
from sb3_equivariant.envs.gridworld import gridworld_symmetry
from sb3_equivariant.envs.registry import cartpole_symmetry, pendulum_symmetry
from sb3_equivariant.envs.wrappers import NO_SYMMETRY_MESSAGE
from sb3_equivariant.group import cyclic_group, flip_group
from sb3_equivariant.representation import ImageAction, flip_action, permutation, signed_permutation

VECTOR_ENVS = ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"]
ALL_LOCAL_ENVS = [*VECTOR_ENVS, GRIDWORLD_ID]


def _observations(env_id: str, n: int = 6) -> np.ndarray:
    env = gym.make(env_id)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    out = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs)
    return np.stack(out)


@pytest.mark.parametrize("env_id", ALL_LOCAL_ENVS)
def test_symmetry_pickles(env_id: str) -> None:
    sym = symmetry_for(env_id)
    clone = pickle.loads(pickle.dumps(sym))
    obs = _observations(env_id)
    env = gym.make(env_id)
    actions = [env.action_space.sample() for _ in range(4)]
    for g in sym.group.elements:
        np.testing.assert_array_equal(clone.transform_obs(obs, g), sym.transform_obs(obs, g))
        for a in actions:
            np.testing.assert_array_equal(clone.transform_action(a, g), sym.transform_action(a, g))
    assert (clone.name, clone.exact, clone.discrete) == (sym.name, sym.exact, sym.discrete)
    env.reset(seed=0)
    state = env.unwrapped.get_state() if env_id == GRIDWORLD_ID else np.asarray(env.unwrapped.state, dtype=np.float64)
    for g in sym.group.elements:
        np.testing.assert_array_equal(clone.transform_state(state, g), sym.transform_state(state, g))


@pytest.mark.parametrize("env_id", ALL_LOCAL_ENVS)
def test_transform_obs_single_batch_numpy_torch(env_id: str) -> None:
    sym = symmetry_for(env_id)
    obs = _observations(env_id)
    for g in sym.group.elements:
        batch = sym.transform_obs(obs, g)
        assert batch.shape == obs.shape and batch.dtype == obs.dtype
        for i in range(len(obs)):
            np.testing.assert_array_equal(sym.transform_obs(obs[i], g), batch[i])
        torch_batch = sym.transform_obs(th.as_tensor(obs.astype(np.float32)), g)
        assert isinstance(torch_batch, th.Tensor)
        np.testing.assert_allclose(torch_batch.numpy(), batch.astype(np.float32), atol=1e-6)
    # The non-identity element really changes observations (CartPole: -obs).
    assert not np.array_equal(sym.transform_obs(obs, 1), obs)


def test_cartpole_and_pendulum_maps_values() -> None:
    obs = np.array([0.1, -0.2, 0.03, 0.4], dtype=np.float32)
    np.testing.assert_array_equal(cartpole_symmetry().transform_obs(obs, 1), -obs)
    pend = pendulum_symmetry()
    np.testing.assert_array_equal(pend.transform_obs(np.array([0.6, 0.8, -2.0]), 1), [0.6, -0.8, 2.0])
    np.testing.assert_array_equal(pend.transform_action(np.array([1.5]), 1), [-1.5])
    acro = symmetry_for("Acrobot-v1")
    np.testing.assert_array_equal(acro.transform_obs(np.arange(1.0, 7.0), 1), [1, -2, 3, -4, -5, -6])


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", GRIDWORLD_ID])
def test_transform_discrete_action_types(env_id: str) -> None:
    sym = symmetry_for(env_id)
    n = sym.action_rep.dim
    for g in sym.group.elements:
        perm = sym.action_permutations[g]
        assert sorted(perm.tolist()) == list(range(n))
        for a in range(n):
            assert sym.transform_action(a, g) == perm[a]
            assert sym.transform_action(np.int64(a), g) == perm[a]
        batch = np.arange(n).repeat(2).reshape(n, 2)
        np.testing.assert_array_equal(sym.transform_action(batch, g), perm[batch])
        t = sym.transform_action(th.arange(n), g)
        assert isinstance(t, th.Tensor)
        np.testing.assert_array_equal(t.numpy(), perm)


def test_transform_box_action_batch_torch() -> None:
    sym = pendulum_symmetry()
    actions = np.linspace(-2, 2, 10, dtype=np.float32).reshape(5, 2, 1)
    np.testing.assert_array_equal(sym.transform_action(actions, 1), -actions)
    np.testing.assert_array_equal(sym.transform_action(th.as_tensor(actions), 1).numpy(), -actions)


def test_state_transform_errors() -> None:
    c4 = cyclic_group(4)
    with pytest.raises(SymmetryError, match="state transform is of C4"):
        cartpole_symmetry().replace(state_transform=permutation(c4, {1: [1, 2, 3, 0]}))
    with pytest.raises(SymmetryError, match="must be a Representation or a callable"):
        cartpole_symmetry().replace(state_transform=3)
    with pytest.raises(SymmetryError, match="no state_transform"):
        cartpole_symmetry().replace(state_transform=None).transform_state(np.zeros(4), 1)
    with pytest.raises(SymmetryError, match="state shape"):
        cartpole_symmetry().transform_state(np.zeros(3), 1)
    with pytest.raises(SymmetryError, match="out of range"):
        gridworld_symmetry().transform_state(np.zeros(4), 4)


# ---------------------------------------------------------------------------------------------------------------------
# Wrappers and get_symmetry
# ---------------------------------------------------------------------------------------------------------------------


def _same(a: Symmetry, b: Symmetry, obs: np.ndarray) -> None:
    assert a.group == b.group
    for g in a.group.elements:
        np.testing.assert_array_equal(a.transform_obs(obs, g), b.transform_obs(obs, g))
    np.testing.assert_array_equal(a.action_rep.matrices, b.action_rep.matrices)


def test_symmetric_env_validates_spaces() -> None:
    with pytest.raises(SymmetryError, match="Box action shape"):
        SymmetricEnv(gym.make("Pendulum-v1"), cartpole_symmetry())
    with pytest.raises(SymmetryError, match="observation shape"):
        SymmetricEnv(gym.make("Acrobot-v1"), cartpole_symmetry().replace(action_rep=permutation(flip_group(), {1: [2, 1, 0]})))
    with pytest.raises(SymmetryError, match="must be a Symmetry"):
        SymmetricEnv(gym.make("CartPole-v1"), "mirror")
    env = SymmetricEnv(gym.make("CartPole-v1"))  # default: the registry's
    assert env.symmetry.name == "CartPole-mirror"


def test_make_symmetric_env_errors() -> None:
    with pytest.raises(SymmetryError, match=r"no symmetry registered for 'NotAnEnv-v0'.*CartPole-v1"):
        make_symmetric_env("NotAnEnv-v0")
    with pytest.raises(SymmetryError, match="not mirror symmetric"):
        make_symmetric_env("MountainCar-v0")
    # An explicit symmetry works for any env.
    env = make_symmetric_env("CartPole-v1", symmetry=cartpole_symmetry(), max_episode_steps=10)
    assert env.spec.max_episode_steps == 10


@pytest.mark.parametrize("env_id", ALL_LOCAL_ENVS)
def test_get_symmetry_through_gym_wrappers(env_id: str) -> None:
    obs = _observations(env_id)
    expected = symmetry_for(env_id)
    wrapped = [
        make_symmetric_env(env_id),
        Monitor(make_symmetric_env(env_id)),
        gym.wrappers.RecordEpisodeStatistics(Monitor(make_symmetric_env(env_id))),
        gym.make(env_id),  # no SymmetricEnv: the registry's, by spec id
        Monitor(gym.wrappers.TimeLimit(gym.make(env_id), 5)),
    ]
    for env in wrapped:
        _same(get_symmetry(env, required=True), expected, obs)


def test_get_symmetry_prefers_symmetric_env_and_reports_missing() -> None:
    custom = cartpole_symmetry().replace(name="custom")
    assert get_symmetry(Monitor(SymmetricEnv(gym.make("CartPole-v1"), custom))).name == "custom"
    assert get_symmetry(gym.make("MountainCar-v0")) is None
    with pytest.raises(SymmetryError, match=NO_SYMMETRY_MESSAGE.replace(".", r"\.")) as err:
        get_symmetry(gym.make("MountainCar-v0"), required=True)
    assert "not mirror symmetric" in str(err.value)
    with pytest.raises(SymmetryError, match="expected a gymnasium Env"):
        get_symmetry("CartPole-v1")


def test_get_symmetry_refuses_unknown_observation_wrappers() -> None:
    env = gym.wrappers.TransformObservation(make_symmetric_env("CartPole-v1"), lambda o: o + 1.0, None)
    with pytest.raises(SymmetryError, match="TransformObservation"):
        get_symmetry(env)
    with pytest.raises(SymmetryError, match="NormalizeObservation"):
        get_symmetry(gym.wrappers.NormalizeObservation(gym.make("CartPole-v1")))
    with pytest.raises(SymmetryError, match="changes the action space"):
        get_symmetry(gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), -1.0, 1.0))


@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_vectorised_symmetric_envs(vec_env_cls: type) -> None:
    obs = _observations("CartPole-v1")
    venvs = [
        make_symmetric_vec_env("CartPole-v1", n_envs=2, seed=0, vec_env_cls=vec_env_cls),
        make_vec_env(make_symmetric_env, n_envs=2, env_kwargs=dict(env_id="CartPole-v1"), vec_env_cls=vec_env_cls),
    ]
    for venv in venvs:
        try:
            assert venv.env_is_wrapped(Monitor) == [True, True]
            _same(get_symmetry(venv, required=True), cartpole_symmetry(), obs)
        finally:
            venv.close()


def test_symmetric_env_as_make_vec_env_wrapper_class() -> None:
    venv = make_vec_env("Pendulum-v1", n_envs=2, wrapper_class=SymmetricEnv)
    assert venv.env_is_wrapped(SymmetricEnv) == [True, True]
    _same(get_symmetry(venv, required=True), pendulum_symmetry(), _observations("Pendulum-v1"))


def test_subproc_without_symmetric_env_uses_registry() -> None:
    venv = make_vec_env("Acrobot-v1", n_envs=2, vec_env_cls=SubprocVecEnv)
    try:
        _same(get_symmetry(venv, required=True), symmetry_for("Acrobot-v1"), _observations("Acrobot-v1"))
    finally:
        venv.close()


@pytest.mark.parametrize("n_stack", [1, 3])
@pytest.mark.parametrize("env_id", VECTOR_ENVS)
def test_frame_stack_of_vector_observations(env_id: str, n_stack: int) -> None:
    """Stacked vector observations transform as n_stack copies: equal to stacking the transformed frames."""
    venv = VecFrameStack(make_symmetric_vec_env(env_id, n_envs=2, seed=1), n_stack=n_stack)
    sym = get_symmetry(venv, required=True)
    venv.reset()
    obs = venv.step(np.array([venv.action_space.sample() for _ in range(2)]))[0]
    obs = venv.step(np.array([venv.action_space.sample() for _ in range(2)]))[0]
    base = symmetry_for(env_id)
    frames = obs.reshape(2, n_stack, -1)
    for g in sym.group.elements:
        expected = base.transform_obs(frames, g).reshape(obs.shape)
        np.testing.assert_allclose(sym.transform_obs(obs, g), expected, atol=1e-6)
    assert sym.transform_obs(obs, 1).shape == venv.observation_space.shape[:0] + obs.shape


def test_frame_stack_and_transpose_of_gridworld_images() -> None:
    venv = VecFrameStack(make_symmetric_vec_env(GRIDWORLD_ID, n_envs=2, seed=0), n_stack=2)  # CHW: stacked on axis 0
    sym = get_symmetry(venv, required=True)
    assert isinstance(sym.obs_action, ImageAction) and sym.obs_action.channels == 2 and sym.obs_action.layout == "CHW"
    venv.reset()
    obs = venv.step(np.array([1, 2]))[0]
    base = gridworld_symmetry()
    for g in sym.group.elements:
        expected = np.concatenate([base.transform_obs(obs[:, k : k + 1], g) for k in range(2)], axis=1)
        np.testing.assert_array_equal(sym.transform_obs(obs, g), expected)
    # A skipping VecTransposeImage (as SB3 builds for channel-first images) leaves the symmetry alone.
    assert get_symmetry(VecTransposeImage(venv, skip=True), required=True).obs_action.layout == "CHW"


def test_vec_normalize_passes_unknown_vec_wrapper_refused() -> None:
    venv = VecNormalize(make_symmetric_vec_env("CartPole-v1", n_envs=1))
    assert get_symmetry(venv, required=True).name == "CartPole-mirror"

    class Shift(VecEnvWrapper):
        def reset(self) -> np.ndarray:
            return self.venv.reset() + 1

        def step_wait(self):
            return self.venv.step_wait()

    with pytest.raises(SymmetryError, match="Shift"):
        get_symmetry(Shift(venv))


def test_image_symmetry_fits_only_matching_layouts() -> None:
    hwc = Symmetry(
        ImageAction(flip_action("vertical"), channels=3, layout="HWC"),
        signed_permutation(flip_group(), {1: [1, 0]}, None),
    )
    hwc.check_spaces(gym.spaces.Box(0, 255, (10, 8, 3), np.uint8), gym.spaces.Discrete(2))
    with pytest.raises(SymmetryError, match="HWC layout"):
        hwc.check_spaces(gym.spaces.Box(0, 255, (3, 10, 8), np.uint8), gym.spaces.Discrete(2))
