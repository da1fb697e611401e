import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import QRDQN, TQC, TRPO, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3

from sb3_equivariant import SymmetryError, make_symmetric_env
from sb3_equivariant.augmentation import (
    SymmetrizedActorCriticPolicy,
    SymmetrizedDQNPolicy,
    SymmetrizedQRDQNPolicy,
    SymmetrizedSACPolicy,
)
from sb3_equivariant.policies import (
    EquivariantDQNPolicy,
    EquivariantMlpLstmPolicy,
    EquivariantMlpPolicy,
    EquivariantQRDQNPolicy,
    EquivariantSACPolicy,
    EquivariantTD3Policy,
    MaskableEquivariantActorCriticPolicy,
)

# (algorithm, policy given, env id, the policy the error must name)
WRONG_PAIRINGS = {
    "DQN + actor-critic": (DQN, EquivariantMlpPolicy, "CartPole-v1", "EquivariantDQNPolicy"),
    "QRDQN + actor-critic": (QRDQN, EquivariantMlpPolicy, "CartPole-v1", "EquivariantQRDQNPolicy"),
    "QRDQN + DQN policy": (QRDQN, EquivariantDQNPolicy, "CartPole-v1", "EquivariantQRDQNPolicy"),
    "DQN + QRDQN policy": (DQN, EquivariantQRDQNPolicy, "CartPole-v1", "EquivariantDQNPolicy"),
    "SAC + actor-critic": (SAC, EquivariantMlpPolicy, "Pendulum-v1", "EquivariantSACPolicy"),
    "TD3 + actor-critic": (TD3, EquivariantMlpPolicy, "Pendulum-v1", "EquivariantTD3Policy"),
    "DDPG + actor-critic": (DDPG, EquivariantMlpPolicy, "Pendulum-v1", "EquivariantTD3Policy"),
    "RecurrentPPO + actor-critic": (RecurrentPPO, EquivariantMlpPolicy, "CartPole-v1", "EquivariantMlpLstmPolicy"),
    "MaskablePPO + actor-critic": (MaskablePPO, EquivariantMlpPolicy, "CartPole-v1", "MaskableEquivariantActorCriticPolicy"),
    "PPO + DQN policy": (PPO, EquivariantDQNPolicy, "CartPole-v1", "EquivariantMlpPolicy"),
    "A2C + maskable": (A2C, MaskableEquivariantActorCriticPolicy, "CartPole-v1", "EquivariantMlpPolicy"),
    "PPO + recurrent": (PPO, EquivariantMlpLstmPolicy, "CartPole-v1", "EquivariantMlpPolicy"),
    "PPO + SAC policy": (PPO, EquivariantSACPolicy, "Pendulum-v1", "EquivariantMlpPolicy"),
    "SAC + TD3 policy": (SAC, EquivariantTD3Policy, "Pendulum-v1", "EquivariantSACPolicy"),
    "TD3 + SAC policy": (TD3, EquivariantSACPolicy, "Pendulum-v1", "EquivariantTD3Policy"),
    # Symmetrized policies name the symmetrized policy of the right family, or the equivariant one where none exists.
    "DQN + symmetrized actor-critic": (DQN, SymmetrizedActorCriticPolicy, "CartPole-v1", "SymmetrizedDQNPolicy"),
    "PPO + symmetrized DQN": (PPO, SymmetrizedDQNPolicy, "CartPole-v1", "SymmetrizedActorCriticPolicy"),
    "DQN + symmetrized QRDQN": (DQN, SymmetrizedQRDQNPolicy, "CartPole-v1", "SymmetrizedDQNPolicy"),
    "SAC + symmetrized actor-critic": (SAC, SymmetrizedActorCriticPolicy, "Pendulum-v1", "SymmetrizedSACPolicy"),
    "TD3 + symmetrized SAC": (TD3, SymmetrizedSACPolicy, "Pendulum-v1", "EquivariantTD3Policy"),
    "RecurrentPPO + symmetrized": (RecurrentPPO, SymmetrizedActorCriticPolicy, "CartPole-v1", "EquivariantMlpLstmPolicy"),
    "MaskablePPO + symmetrized": (
        MaskablePPO,
        SymmetrizedActorCriticPolicy,
        "CartPole-v1",
        "MaskableEquivariantActorCriticPolicy",
    ),
}


@pytest.mark.parametrize("case", WRONG_PAIRINGS)
def test_wrong_pairing_names_the_right_policy(case: str) -> None:
    algo, policy, env_id, right = WRONG_PAIRINGS[case]
    with pytest.raises(TypeError, match=rf"not a policy for {algo.__name__}: use {right}\b"):
        algo(policy, make_symmetric_env(env_id))


def test_algorithm_without_equivariant_policy_says_so() -> None:
    with pytest.raises(TypeError, match="no equivariant policy for TQC"):
        TQC(EquivariantMlpPolicy, make_symmetric_env("Pendulum-v1"))
    with pytest.raises(TypeError, match=r"no symmetrized policy for TQC \(supported: PPO, A2C, TRPO, QRDQN, DQN, SAC\)"):
        TQC(SymmetrizedSACPolicy, make_symmetric_env("Pendulum-v1"))


def test_a_user_subclass_of_a_symmetrized_policy_is_told_what_exists() -> None:
    class MySACPolicy(SymmetrizedSACPolicy):
        pass

    with pytest.raises(TypeError, match=r"use EquivariantTD3Policy .*; TD3 has no symmetrized policy"):
        TD3(MySACPolicy, make_symmetric_env("Pendulum-v1"))


RIGHT_PAIRINGS = {
    "PPO": (PPO, EquivariantMlpPolicy, "CartPole-v1"),
    "A2C": (A2C, EquivariantMlpPolicy, "CartPole-v1"),
    "TRPO": (TRPO, EquivariantMlpPolicy, "CartPole-v1"),
    "DDPG": (DDPG, EquivariantTD3Policy, "Pendulum-v1"),
    "TRPO + symmetrized": (TRPO, SymmetrizedActorCriticPolicy, "CartPole-v1"),
    "QRDQN + symmetrized": (QRDQN, SymmetrizedQRDQNPolicy, "CartPole-v1"),
    "SAC + symmetrized": (SAC, SymmetrizedSACPolicy, "Pendulum-v1"),
}


@pytest.mark.parametrize("case", RIGHT_PAIRINGS)
def test_right_pairings_are_accepted(case: str) -> None:
    algo, policy, env_id = RIGHT_PAIRINGS[case]
    model = algo(policy, make_symmetric_env(env_id))
    assert model.policy.symmetry is not None


def test_registry_id_as_symmetry(tmp_path) -> None:
    # A plain env (no symmetry attached) and the symmetry named by its registry id.
    kwargs = dict(n_steps=32, batch_size=32, policy_kwargs=dict(symmetry="CartPole-v1"))
    model = PPO(EquivariantMlpPolicy, gym.make("CartPole-v1"), **kwargs)
    sym = model.policy.symmetry
    assert sym.name == "CartPole-mirror"
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    action, _ = model.predict(obs, deterministic=True)
    mirrored, _ = model.predict(sym.transform_obs(obs, 1), deterministic=True)
    np.testing.assert_array_equal(mirrored, sym.transform_action(action, 1))
    model.save(tmp_path / "model")
    assert PPO.load(tmp_path / "model").policy.symmetry.name == "CartPole-mirror"
    dqn = DQN(EquivariantDQNPolicy, gym.make("CartPole-v1"), policy_kwargs=dict(symmetry="CartPole-v1"))
    assert dqn.policy.symmetry.name == "CartPole-mirror"


def test_unknown_registry_id_lists_registered_envs() -> None:
    with pytest.raises(SymmetryError, match=r"no symmetry registered for 'Nope-v0'; registered envs: .*CartPole-v1"):
        PPO(EquivariantMlpPolicy, gym.make("CartPole-v1"), policy_kwargs=dict(symmetry="Nope-v0"))
    with pytest.raises(SymmetryError, match=r"MountainCar-v0 has no symmetry"):
        PPO(EquivariantMlpPolicy, gym.make("CartPole-v1"), policy_kwargs=dict(symmetry="MountainCar-v0"))
