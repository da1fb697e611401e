"""SymmetricReplayBuffer: every augmented sample is the exact transform of its recorded source, for every augmentation mode."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from symmetries import CASES, acrobot_symmetry, cartpole_symmetry, pendulum_symmetry

from sb3_equivariant.augmentation import SymmetricReplayBuffer, SymmetryCallback
from sb3_equivariant.envs.symmetry import SymmetryError


def fill(buffer: SymmetricReplayBuffer, n_envs: int, steps: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    obs_space, act_space = buffer.observation_space, buffer.action_space

    def draw_obs() -> np.ndarray:
        if obs_space.dtype == np.uint8:
            return rng.integers(0, 256, size=(n_envs, *obs_space.shape), dtype=np.uint8)
        return rng.normal(size=(n_envs, *obs_space.shape)).astype(np.float32)

    obs = draw_obs()
    for _ in range(steps):
        next_obs = draw_obs()
        if isinstance(act_space, spaces.Discrete):
            action = rng.integers(0, act_space.n, size=(n_envs,))
        else:
            action = rng.uniform(-2, 2, size=(n_envs, *act_space.shape)).astype(np.float32)
        done = rng.random(n_envs) < 0.2
        infos = [{"TimeLimit.truncated": bool(rng.random() < 0.1)} for _ in range(n_envs)]
        buffer.add(obs, next_obs, action, rng.normal(size=n_envs).astype(np.float32), done, infos)
        obs = next_obs


def source(buffer: SymmetricReplayBuffer, b: int, e: int) -> tuple[np.ndarray, ...]:
    """The untransformed stored transition at row b, env e."""
    if buffer.optimize_memory_usage:
        next_obs = buffer.observations[(b + 1) % buffer.buffer_size, e]
    else:
        next_obs = buffer.next_observations[b, e]
    done = buffer.dones[b, e] * (1 - buffer.timeouts[b, e])
    return buffer.observations[b, e], buffer.actions[b, e], next_obs, done, buffer.rewards[b, e]


def make_buffer(case: str, augment: str, n_envs: int, optimize: bool, size: int = 64, seed: int = 0) -> SymmetricReplayBuffer:
    make_sym, obs_space, act_space = CASES[case]
    return SymmetricReplayBuffer(
        size,
        obs_space,
        act_space,
        device="cpu",
        n_envs=n_envs,
        optimize_memory_usage=optimize,
        handle_timeout_termination=not optimize,
        symmetry=make_sym(),
        augment=augment,
        seed=seed,
    )


@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("n_envs", [1, 3])
@pytest.mark.parametrize("augment", ["random", "all", "store"])
@pytest.mark.parametrize("case", list(CASES))
def test_samples_are_exact_transforms_of_their_sources(case: str, augment: str, n_envs: int, optimize: bool) -> None:
    buffer = make_buffer(case, augment, n_envs, optimize)
    sym = buffer.symmetry
    assert sym is not None
    fill(buffer, n_envs, steps=40 if augment != "store" else 40 * len(sym))  # wraps around in every mode
    batch = 64
    samples = buffer.sample(batch)
    record = buffer.last_record
    assert record is not None
    n_out = batch * len(sym) if augment == "all" else batch
    assert samples.observations.shape == (n_out, *buffer.obs_shape)
    assert samples.actions.shape[0] == samples.next_observations.shape[0] == samples.rewards.shape[0] == n_out
    assert len(record.elements) == n_out
    assert samples.observations.dtype == th.as_tensor(buffer.observations[:1]).dtype
    for i in range(n_out):
        g, b, e = int(record.elements[i]), int(record.batch_indices[i]), int(record.env_indices[i])
        obs, action, next_obs, done, reward = source(buffer, b, e)
        np.testing.assert_allclose(samples.observations[i].numpy(), sym.transform_obs(obs, g), atol=1e-6)
        np.testing.assert_allclose(samples.next_observations[i].numpy(), sym.transform_obs(next_obs, g), atol=1e-6)
        np.testing.assert_allclose(samples.actions[i].numpy(), sym.transform_action(action, g), atol=1e-6)
        assert samples.dones[i].item() == pytest.approx(float(done))
        assert samples.rewards[i].item() == pytest.approx(float(reward))
    if augment == "all":
        # Element-major: sample g * batch + i is source i under g, so each source meets every element exactly once.
        np.testing.assert_array_equal(record.elements, np.repeat(np.arange(len(sym)), batch))
        for g in range(len(sym)):
            np.testing.assert_array_equal(record.batch_indices[g * batch : (g + 1) * batch], record.batch_indices[:batch])
            np.testing.assert_array_equal(record.env_indices[g * batch : (g + 1) * batch], record.env_indices[:batch])
    else:
        # A batch this large draws every element; a buffer that never transformed would fail here.
        assert set(record.elements.tolist()) == set(range(len(sym)))


@pytest.mark.parametrize("case", ["cartpole", "gridworld", "pendulum"])
def test_store_mode_stores_every_copy(case: str) -> None:
    n_envs = 2
    buffer = make_buffer(case, "store", n_envs, optimize=False)
    sym = buffer.symmetry
    assert sym is not None
    assert buffer.n_envs == n_envs * len(sym)
    assert buffer.buffer_size == 64 // (n_envs * len(sym))  # copies count towards buffer_size
    fill(buffer, n_envs, steps=5)
    for g in range(len(sym)):
        for e in range(n_envs):
            column = g * n_envs + e
            np.testing.assert_allclose(buffer.observations[:5, column], sym.transform_obs(buffer.observations[:5, e], g))
            np.testing.assert_allclose(
                buffer.next_observations[:5, column], sym.transform_obs(buffer.next_observations[:5, e], g)
            )
            np.testing.assert_allclose(buffer.actions[:5, column], sym.transform_action(buffer.actions[:5, e], g))
            np.testing.assert_array_equal(buffer.rewards[:5, column], buffer.rewards[:5, e])
            np.testing.assert_array_equal(buffer.dones[:5, column], buffer.dones[:5, e])
            np.testing.assert_array_equal(buffer.timeouts[:5, column], buffer.timeouts[:5, e])


@pytest.mark.parametrize("augment", ["random", "all", "store"])
def test_sampling_is_reproducible(augment: str) -> None:
    batches, elements = [], []
    for seed in (3, 3, 4):
        buffer = make_buffer("acrobot", augment, 2, optimize=False, seed=seed)
        fill(buffer, 2, steps=30)
        np.random.seed(0)
        batches.append([buffer.sample(16) for _ in range(3)])
        assert buffer.last_record is not None
        elements.append(buffer.last_record.elements)
    for first, second in zip(batches[0], batches[1]):
        for x, y in zip(first, second):
            assert (x is None and y is None) or th.equal(x, y)
    if augment == "random":  # only the random mode draws elements from the buffer's own generator
        assert not np.array_equal(elements[0], elements[2])


def test_bad_configurations_raise_clear_errors() -> None:
    _, obs_space, act_space = CASES["cartpole"]
    with pytest.raises(ValueError, match="unknown augmentation mode"):
        SymmetricReplayBuffer(10, obs_space, act_space, symmetry=cartpole_symmetry(), augment="flip")
    with pytest.raises(SymmetryError, match="Discrete\\(3\\)"):
        SymmetricReplayBuffer(10, obs_space, spaces.Discrete(3), symmetry=cartpole_symmetry())
    with pytest.raises(SymmetryError, match="does not match"):
        SymmetricReplayBuffer(10, spaces.Box(-1, 1, (5,)), act_space, symmetry=cartpole_symmetry())
    with pytest.raises(SymmetryError, match=r"must be a sb3_equivariant\.Symmetry"):
        SymmetricReplayBuffer(10, obs_space, act_space, symmetry=2)  # type: ignore[arg-type]
    with pytest.raises(SymmetryError, match="no symmetry registered for 'NoSuchEnv-v0'"):
        SymmetricReplayBuffer(10, obs_space, act_space, symmetry="NoSuchEnv-v0")
    with pytest.raises(ValueError, match="keep_batch_size only applies to augment='all'"):
        SymmetricReplayBuffer(10, obs_space, act_space, symmetry=cartpole_symmetry(), keep_batch_size=True)
    with pytest.raises(ValueError, match="not a multiple of the group order 2"):
        kept = SymmetricReplayBuffer(10, obs_space, act_space, symmetry=cartpole_symmetry(), augment="all", keep_batch_size=True)
        fill(kept, 1, steps=3)
        kept.sample(3)
    with pytest.raises(SymmetryError, match="augment='store' needs the symmetry"):
        SymmetricReplayBuffer(10, obs_space, act_space, augment="store")
    buffer = SymmetricReplayBuffer(10, obs_space, act_space)
    fill(buffer, 1, steps=3)
    with pytest.raises(SymmetryError, match="has no symmetry"):
        buffer.sample(2)


def test_cartpole_and_acrobot_maps_commute_with_the_dynamics() -> None:
    """The test symmetries are real: stepping the mirrored state with the mirrored action gives the mirrored state."""
    rng = np.random.default_rng(0)
    for env_id, sym in (("CartPole-v1", cartpole_symmetry()), ("Acrobot-v1", acrobot_symmetry())):
        env, mirror = gym.make(env_id).unwrapped, gym.make(env_id).unwrapped
        env.reset(seed=0)
        mirror.reset(seed=0)
        for _ in range(20):
            state = rng.uniform(-0.2, 0.2, size=len(env.state))
            env.state, mirror.state = state.copy(), -state  # both envs' internal states are odd under the mirror
            action = int(rng.integers(env.action_space.n))
            obs, reward, terminated, _, _ = env.step(action)
            m_obs, m_reward, m_terminated, _, _ = mirror.step(int(sym.transform_action(action, 1)))
            np.testing.assert_allclose(m_obs, sym.transform_obs(obs, 1), atol=1e-6)
            assert (m_reward, m_terminated) == (reward, terminated)


@pytest.mark.parametrize("augment", ["random", "all", "store"])
def test_dqn_trains_saves_and_loads_with_the_buffer(augment: str, tmp_path) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    kwargs = dict(symmetry=cartpole_symmetry(), augment=augment)
    model = DQN(
        "MlpPolicy",
        env,
        learning_starts=50,
        train_freq=4,
        batch_size=16,
        buffer_size=1000,
        seed=0,
        replay_buffer_class=SymmetricReplayBuffer,
        replay_buffer_kwargs=kwargs,
        device="cpu",
    )
    model.learn(300)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "buffer")
    with warnings.catch_warnings():  # SB3 retries a mismatched state dict non-strictly, with a warning
        warnings.simplefilter("error", UserWarning)
        loaded = DQN.load(tmp_path / "model", env=env, device="cpu")
    obs = env.reset()
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    th.testing.assert_close(model.q_net(th.as_tensor(obs)), loaded.q_net(th.as_tensor(obs)), atol=0, rtol=0)
    loaded.load_replay_buffer(tmp_path / "buffer")
    buffer = loaded.replay_buffer
    assert isinstance(buffer, SymmetricReplayBuffer)
    assert buffer.augment == augment and buffer.symmetry is not None and len(buffer.symmetry) == 2
    np.testing.assert_array_equal(buffer.observations, model.replay_buffer.observations)
    loaded.learn(100, reset_num_timesteps=False)  # keeps training from the restored buffer


def test_qrdqn_and_sac_accept_the_buffer() -> None:
    qr = QRDQN(
        "MlpPolicy",
        "Acrobot-v1",
        learning_starts=20,
        batch_size=8,
        buffer_size=500,
        seed=0,
        device="cpu",
        replay_buffer_class=SymmetricReplayBuffer,
        replay_buffer_kwargs=dict(symmetry=acrobot_symmetry(), augment="all", keep_batch_size=True),
    )
    qr.learn(60)
    record = qr.replay_buffer.last_record
    assert record is not None
    np.testing.assert_array_equal(record.elements, [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(record.batch_indices[:4], record.batch_indices[4:])
    sac = SAC(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=20,
        batch_size=8,
        buffer_size=500,
        seed=0,
        device="cpu",
        replay_buffer_class=SymmetricReplayBuffer,
        replay_buffer_kwargs=dict(symmetry=pendulum_symmetry()),
    )
    sac.learn(60)
    record = sac.replay_buffer.last_record
    assert record is not None and set(record.elements.tolist()) == {0, 1}


def test_symmetry_found_from_the_env_by_the_callback() -> None:
    envs = pytest.importorskip("sb3_equivariant.envs")
    if not hasattr(envs, "get_symmetry"):
        pytest.skip("the env registry (sb3_equivariant.envs.get_symmetry) is not available yet")
    model = DQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_starts=20,
        batch_size=8,
        buffer_size=500,
        seed=0,
        device="cpu",
        replay_buffer_class=SymmetricReplayBuffer,
    )
    model.learn(40, callback=SymmetryCallback())
    buffer = model.replay_buffer
    assert isinstance(buffer, SymmetricReplayBuffer) and buffer.symmetry is not None
    assert len(buffer.symmetry) == 2
    obs = np.ones((1, 4), dtype=np.float32)
    np.testing.assert_allclose(buffer.symmetry.transform_obs(obs, 1), -obs)


@pytest.mark.slow
def test_dqn_with_symmetric_buffer_learns_cartpole() -> None:
    # rl_zoo3's tuned DQN hyperparameters for CartPole-v1, a quarter of its budget; a random policy scores about 22.
    env = make_vec_env("CartPole-v1", n_envs=1, seed=2)
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
        seed=2,
        device="cpu",
        replay_buffer_class=SymmetricReplayBuffer,
        replay_buffer_kwargs=dict(symmetry=cartpole_symmetry()),
    )
    model.learn(12_000)
    mean_reward, _ = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=100), n_eval_episodes=10)
    assert mean_reward > 100


def test_dqn_buffer_takes_symmetry_from_the_algorithm_env(tmp_path) -> None:
    from sb3_equivariant import make_symmetric_env

    model = DQN(
        "MlpPolicy",
        make_symmetric_env("CartPole-v1"),
        replay_buffer_class=SymmetricReplayBuffer,
        replay_buffer_kwargs=dict(augment="store"),  # "store" needs the symmetry at construction: found on the env
        learning_starts=16,
        buffer_size=200,
        seed=0,
    )
    assert model.replay_buffer.symmetry is not None and model.replay_buffer.symmetry.name == "CartPole-mirror"
    model.learn(64)
    model.save(tmp_path / "dqn")
    loaded = DQN.load(tmp_path / "dqn")  # no env: the symmetry was recorded in replay_buffer_kwargs
    assert loaded.replay_buffer.symmetry.name == "CartPole-mirror"
