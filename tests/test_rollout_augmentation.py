"""SymmetricRolloutBuffer / SymmetricPPO / SymmetricA2C: exact transforms, recomputed old log-probs, save/load."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecNormalize
from symmetries import CASES, acrobot_symmetry, cartpole_symmetry

from sb3_equivariant.augmentation import SymmetricA2C, SymmetricPPO, SymmetricRolloutBuffer, SymmetryCallback
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError


def make_policy(obs_space: spaces.Space, act_space: spaces.Space, seed: int = 0) -> ActorCriticPolicy:
    th.manual_seed(seed)
    policy = ActorCriticPolicy(obs_space, act_space, lambda _: 1e-3, net_arch=[16])
    with th.no_grad():  # SB3's init (zero biases, tanh) is an odd function: exactly equivariant under obs -> -obs
        for name, param in policy.named_parameters():
            if name.endswith("bias"):
                param.add_(th.randn_like(param))
    policy.set_training_mode(False)
    return policy


def collect(buffer: SymmetricRolloutBuffer, policy: ActorCriticPolicy, seed: int = 0) -> None:
    """Fill the buffer as OnPolicyAlgorithm.collect_rollouts does, on synthetic observations."""
    rng = np.random.default_rng(seed)
    obs_space, n_envs = buffer.observation_space, buffer.n_envs
    for step in range(buffer.buffer_size):
        if obs_space.dtype == np.uint8:
            obs = rng.integers(0, 256, size=(n_envs, *obs_space.shape), dtype=np.uint8)
        else:
            obs = rng.normal(size=(n_envs, *obs_space.shape)).astype(np.float32)
        with th.no_grad():
            actions, values, log_probs = policy(obs_as_tensor(obs, buffer.device))
        episode_start = (rng.random(n_envs) < 0.1) | (step == 0)
        buffer.add(obs, actions.numpy(), rng.normal(size=n_envs).astype(np.float32), episode_start, values, log_probs)
    buffer.compute_returns_and_advantage(th.as_tensor(rng.normal(size=(n_envs, 1)).astype(np.float32)), np.zeros(n_envs))


def evaluate(policy: ActorCriticPolicy, obs: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    act = th.as_tensor(actions)
    act = act.long().flatten() if isinstance(policy.action_space, spaces.Discrete) else act.float()
    with th.no_grad():
        values, log_probs, _ = policy.evaluate_actions(obs_as_tensor(obs, policy.device), act)
    return values.numpy().reshape(-1), log_probs.numpy().reshape(-1)


@pytest.mark.parametrize("n_envs", [1, 2])
@pytest.mark.parametrize("augment", ["random", "all"])
@pytest.mark.parametrize("case", list(CASES))
def test_augmented_rollout_is_exact_and_recomputed_under_the_collecting_policy(case: str, augment: str, n_envs: int) -> None:
    make_sym, obs_space, act_space = CASES[case]
    sym = make_sym()
    n_steps = 8 if case != "gridworld" else 16  # C4 "random" then draws every element
    buffer = SymmetricRolloutBuffer(
        n_steps, obs_space, act_space, device="cpu", gae_lambda=0.9, n_envs=n_envs, symmetry=sym, augment=augment, seed=0
    )
    policy = make_policy(obs_space, act_space)
    buffer.set_policy(policy)
    original = {}

    def keep_original(last_values: th.Tensor, dones: np.ndarray) -> None:
        SymmetricRolloutBuffer.__mro__[1].compute_returns_and_advantage(buffer, last_values, dones)
        original.update(
            {k: getattr(buffer, k).copy() for k in ("observations", "actions", "values", "log_probs", "advantages", "returns")}
        )
        buffer._augment()

    buffer.compute_returns_and_advantage = keep_original  # type: ignore[method-assign]
    collect(buffer, policy)
    record = buffer.last_record
    assert record is not None
    n = n_steps * n_envs
    n_out = n * len(sym) if augment == "all" else n
    assert len(buffer.observations) == len(buffer.actions) == len(buffer.log_probs) == len(buffer.returns) == n_out
    for i in range(n_out):
        g, t, e = int(record.elements[i]), int(record.batch_indices[i]), int(record.env_indices[i])
        np.testing.assert_allclose(buffer.observations[i], sym.transform_obs(original["observations"][t, e], g), atol=1e-6)
        np.testing.assert_allclose(buffer.actions[i], sym.transform_action(original["actions"][t, e], g), atol=1e-6)
        assert buffer.advantages[i, 0] == original["advantages"][t, e]
        assert buffer.returns[i, 0] == original["returns"][t, e]
        if g == 0:  # identity samples keep what the policy stored while collecting
            assert buffer.log_probs[i, 0] == original["log_probs"][t, e]
            assert buffer.values[i, 0] == original["values"][t, e]
    values, log_probs = evaluate(policy, buffer.observations, buffer.actions)
    np.testing.assert_allclose(buffer.log_probs[:, 0], log_probs, atol=1e-5)
    np.testing.assert_allclose(buffer.values[:, 0], values, atol=1e-5)
    moved = record.elements != 0
    assert moved.any()
    source_log_probs = original["log_probs"][record.batch_indices, record.env_indices]
    # The policy is not equivariant: copying the source's log-prob would be wrong, and the buffer does not do it.
    assert np.abs(buffer.log_probs[moved, 0] - source_log_probs[moved]).max() > 1e-4
    if augment == "all":
        np.testing.assert_array_equal(record.elements, np.repeat(np.arange(len(sym)), n))
        sources = record.env_indices * n_steps + record.batch_indices
        np.testing.assert_array_equal(sources, np.tile(np.arange(n), len(sym)))
    else:
        assert set(record.elements.tolist()) == set(range(len(sym)))
    batches = [len(b.observations) for b in buffer.get(batch_size=4)]
    assert batches == [4 * buffer.expansion] * (n_out // (4 * buffer.expansion))
    assert sum(len(b.observations) for b in buffer.get(None)) == n_out


class SnapshotPolicy(BaseCallback):
    """Keeps a copy of the policy as it was when the rollout ended (before train() updates it)."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.snapshot = copy.deepcopy(self.model.policy)


@pytest.mark.parametrize("augment", ["random", "all"])
@pytest.mark.parametrize("algo", ["ppo", "a2c", "ppo+callback"])
def test_algorithms_recompute_with_the_policy_that_collected(algo: str, augment: str) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    callbacks: list[BaseCallback] = [SnapshotPolicy()]
    if algo == "ppo":
        model = SymmetricPPO(
            "MlpPolicy",
            env,
            symmetry=cartpole_symmetry(),
            augment=augment,
            n_steps=16,
            batch_size=8,
            n_epochs=2,
            seed=0,
            device="cpu",
        )
    elif algo == "a2c":
        model = SymmetricA2C("MlpPolicy", env, symmetry=cartpole_symmetry(), augment=augment, n_steps=16, seed=0, device="cpu")
    else:
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=16,
            batch_size=8,
            n_epochs=2,
            seed=0,
            device="cpu",
            rollout_buffer_class=SymmetricRolloutBuffer,
            rollout_buffer_kwargs=dict(symmetry=cartpole_symmetry(), augment=augment),
        )
        callbacks.append(SymmetryCallback())
    model.learn(32, callback=callbacks)  # one rollout, one update
    buffer = model.rollout_buffer
    assert isinstance(buffer, SymmetricRolloutBuffer)
    assert len(buffer.observations) == 32 * (2 if augment == "all" else 1)
    snapshot = callbacks[0].snapshot
    values, log_probs = evaluate(snapshot, buffer.observations, buffer.actions)
    np.testing.assert_allclose(buffer.log_probs[:, 0], log_probs, atol=1e-5)
    np.testing.assert_allclose(buffer.values[:, 0], values, atol=1e-5)
    _, updated = evaluate(model.policy, buffer.observations, buffer.actions)
    assert np.abs(updated - log_probs).max() > 1e-6  # the update happened after the recomputation


@pytest.mark.parametrize("algo", ["ppo", "a2c", "ppo+callback"])
def test_models_save_and_load(algo: str, tmp_path) -> None:
    env = make_vec_env("Acrobot-v1", n_envs=2, seed=0)
    if algo == "ppo":
        model = SymmetricPPO(
            "MlpPolicy",
            env,
            symmetry=acrobot_symmetry(),
            augment="all",
            symmetry_loss_coef=0.5,
            n_steps=16,
            batch_size=16,
            n_epochs=1,
            seed=0,
            device="cpu",
        )
        cls = SymmetricPPO
    elif algo == "a2c":
        model = SymmetricA2C("MlpPolicy", env, symmetry=acrobot_symmetry(), n_steps=8, seed=0, device="cpu")
        cls = SymmetricA2C
    else:
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=16,
            batch_size=16,
            n_epochs=1,
            seed=0,
            device="cpu",
            rollout_buffer_class=SymmetricRolloutBuffer,
            rollout_buffer_kwargs=dict(symmetry=acrobot_symmetry()),
        )
        cls = PPO
    callback = SymmetryCallback() if algo == "ppo+callback" else None
    model.learn(64, callback=callback)
    model.save(tmp_path / "model")
    with warnings.catch_warnings():  # SB3 retries a mismatched state dict non-strictly, with a warning
        warnings.simplefilter("error", UserWarning)
        loaded = cls.load(tmp_path / "model", env=env, device="cpu")
    obs = env.reset()
    obs_t = obs_as_tensor(obs, "cpu")
    with th.no_grad():
        th.testing.assert_close(
            model.policy.get_distribution(obs_t).distribution.probs,
            loaded.policy.get_distribution(obs_t).distribution.probs,
            rtol=0,
            atol=0,
        )
        th.testing.assert_close(model.policy.predict_values(obs_t), loaded.policy.predict_values(obs_t), rtol=0, atol=0)
    buffer = loaded.rollout_buffer
    assert isinstance(buffer, SymmetricRolloutBuffer)
    assert buffer.symmetry is not None and buffer.symmetry.action_permutations.tolist() == [[0, 1, 2], [2, 1, 0]]
    if algo == "ppo":
        assert loaded.symmetry_loss_coef == 0.5 and loaded.augment == "all" and buffer.augment == "all"
    if algo != "ppo+callback":
        assert buffer.policy is loaded.policy
    loaded.learn(32, callback=callback, reset_num_timesteps=False)


def test_seeded_runs_are_reproducible() -> None:
    runs = []
    for _ in range(2):
        model = SymmetricPPO(
            "MlpPolicy",
            make_vec_env("CartPole-v1", n_envs=2, seed=0),
            symmetry=cartpole_symmetry(),
            n_steps=16,
            batch_size=8,
            n_epochs=1,
            seed=0,
            device="cpu",
        )
        model.learn(64)
        assert model.rollout_buffer.last_record is not None
        runs.append((model.rollout_buffer.last_record.elements, list(model.policy.parameters())))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for p, q in zip(runs[0][1], runs[1][1]):
        assert th.equal(p, q)


def test_symmetry_from_env_and_registry_ids() -> None:
    model = SymmetricPPO("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    assert isinstance(model.symmetry, Symmetry) and model.symmetry.action_permutations.tolist() == [[0, 1], [1, 0]]
    by_id = SymmetricA2C("MlpPolicy", "Acrobot-v1", symmetry="Acrobot-v1", n_steps=8, seed=0, device="cpu")
    assert isinstance(by_id.symmetry, Symmetry) and by_id.symmetry.action_permutations.tolist() == [[0, 1, 2], [2, 1, 0]]
    stock = PPO(
        "MlpPolicy",
        "CartPole-v1",
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        seed=0,
        device="cpu",
        rollout_buffer_class=SymmetricRolloutBuffer,
    )
    stock.learn(16, callback=SymmetryCallback())
    assert isinstance(stock.rollout_buffer, SymmetricRolloutBuffer) and stock.rollout_buffer.symmetry is not None


def test_normalized_observations_are_flagged() -> None:
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    with pytest.warns(UserWarning, match="VecNormalize\\(norm_obs=True\\)"):
        SymmetricPPO("MlpPolicy", env, symmetry=cartpole_symmetry(), n_steps=16, batch_size=16, device="cpu")


def test_bad_configurations_raise_clear_errors() -> None:
    _, obs_space, act_space = CASES["cartpole"]
    with pytest.raises(ValueError, match="unknown augmentation mode 'store'"):
        SymmetricRolloutBuffer(4, obs_space, act_space, symmetry=cartpole_symmetry(), augment="store")
    with pytest.raises(SymmetryError, match="Discrete\\(2\\) action space needs"):
        SymmetricRolloutBuffer(4, obs_space, act_space, symmetry=acrobot_symmetry())
    buffer = SymmetricRolloutBuffer(4, obs_space, act_space, symmetry=cartpole_symmetry())
    with pytest.raises(RuntimeError, match="needs the collecting policy"):
        collect(buffer, make_policy(obs_space, act_space))
    with pytest.raises(ValueError, match="unknown augmentation mode 'every'"):
        SymmetricPPO("MlpPolicy", "CartPole-v1", symmetry=cartpole_symmetry(), augment="every")
    with pytest.raises(SymmetryError, match="Discrete\\(3\\) action space needs"):
        SymmetricPPO("MlpPolicy", "Acrobot-v1", symmetry=cartpole_symmetry())
    with pytest.raises(ValueError, match="symmetry_loss_coef must be >= 0"):
        SymmetricPPO("MlpPolicy", "CartPole-v1", symmetry=cartpole_symmetry(), symmetry_loss_coef=-1.0)


def test_stock_ppo_finds_symmetry_and_policy_without_callback() -> None:
    from sb3_equivariant import make_symmetric_vec_env

    stock = PPO(
        "MlpPolicy",
        make_symmetric_vec_env("CartPole-v1", n_envs=2, seed=0),
        n_steps=16,
        batch_size=16,
        device="cpu",
        rollout_buffer_class=SymmetricRolloutBuffer,
        rollout_buffer_kwargs=dict(augment="all"),
    )
    assert stock.rollout_buffer.symmetry is not None and stock.rollout_buffer_kwargs["symmetry"].name == "CartPole-mirror"
    stock.learn(32)
    assert stock.rollout_buffer.policy is stock.policy
    assert stock.rollout_buffer.expansion == 2


@pytest.mark.slow
def test_ppo_with_rollout_augmentation_learns_cartpole() -> None:
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = SymmetricPPO(
        "MlpPolicy",
        env,
        symmetry=cartpole_symmetry(),
        augment="random",
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=1e-3,
        clip_range=0.2,
        seed=0,
        device="cpu",
    )
    model.learn(25_000)
    mean_reward, _ = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=100), n_eval_episodes=10)
    assert mean_reward > 200


@pytest.mark.slow
def test_rl_zoo3_routes(tmp_path) -> None:
    """YAML: symmetrized policy by dotted name, symmetry by env id. Python config: buffer class plus the callback."""
    (tmp_path / "policy.yml").write_text(
        "CartPole-v1:\n  n_envs: 2\n  n_timesteps: 256\n  n_steps: 32\n  batch_size: 64\n"
        "  policy: sb3_equivariant.augmentation.SymmetrizedActorCriticPolicy\n"
        "  policy_kwargs: \"dict(symmetry='CartPole-v1', net_arch=[16])\"\n"
    )
    (tmp_path / "zoo_rollout_conf.py").write_text(
        "from sb3_equivariant.augmentation import SymmetricRolloutBuffer\n"
        "hyperparams = {'CartPole-v1': dict(n_envs=2, n_timesteps=256, n_steps=32, batch_size=64, policy='MlpPolicy',\n"
        "    rollout_buffer_class=SymmetricRolloutBuffer, rollout_buffer_kwargs=dict(augment='all'),\n"
        "    callback='sb3_equivariant.augmentation.SymmetryCallback')}\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for conf, folder in (("policy.yml", "yaml"), ("zoo_rollout_conf", "py")):
        cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "CartPole-v1", "-conf", conf,
               "-f", str(tmp_path / folder), "--eval-freq", "-1", "--seed", "0"]  # fmt: skip
        result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        model = PPO.load(tmp_path / folder / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip", device="cpu")
        if folder == "yaml":
            assert type(model.policy).__name__ == "SymmetrizedActorCriticPolicy"
        else:
            assert model.rollout_buffer_class is SymmetricRolloutBuffer


def test_near_impossible_transformed_actions_do_not_overflow_ppo() -> None:
    from sb3_equivariant import make_symmetric_vec_env

    model = SymmetricPPO(
        "MlpPolicy", make_symmetric_vec_env("CartPole-v1", n_envs=2, seed=0), augment="all", n_steps=16, batch_size=16, seed=0
    )
    with th.no_grad():  # a nearly deterministic, very asymmetric policy: always push left
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.copy_(th.tensor([60.0, -60.0]))
    model.learn(32)
    buffer = model.rollout_buffer
    mirrored = buffer.last_record.elements != 0
    assert np.all(buffer.log_probs[mirrored] == buffer.min_log_prob)  # log π_old(right) ≈ −120, floored
    assert all(th.isfinite(p).all() for p in model.policy.parameters())
