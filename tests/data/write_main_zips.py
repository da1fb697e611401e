"""
Writes the models that tests/test_discovery.py loads, with the code of main at 8208e1f (before the rewrite of the
symmetry resolution and the renames): ``git archive 8208e1f sb3_equivariant | tar -x -C /tmp/main`` then
``PYTHONPATH=/tmp/main python tests/data/write_main_zips.py tests/data``.
"""

import sys

import numpy as np
import torch as th
from stable_baselines3 import DQN, PPO

from sb3_equivariant import make_symmetric_vec_env
from sb3_equivariant.augmentation import SymmetricReplayBuffer, SymmetrisedActorCriticPolicy
from sb3_equivariant.policies import EquivariantDQNPolicy, EquivariantMlpPolicy

out = sys.argv[1]
th.manual_seed(0)
obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
ppo = PPO(
    EquivariantMlpPolicy,
    make_symmetric_vec_env("CartPole-v1", n_envs=1, seed=0),
    n_steps=8,
    batch_size=8,
    policy_kwargs=dict(net_arch=[2]),
    seed=0,
    device="cpu",
)
ppo.save(f"{out}/main_ppo_cartpole.zip")
dqn = DQN(
    EquivariantDQNPolicy,
    make_symmetric_vec_env("CartPole-v1", n_envs=1, seed=0),
    buffer_size=16,
    learning_starts=0,
    replay_buffer_class=SymmetricReplayBuffer,
    replay_buffer_kwargs=dict(mode="store"),
    policy_kwargs=dict(net_arch=[2]),
    seed=0,
    device="cpu",
)
dqn.learn(6)
dqn.save(f"{out}/main_dqn_cartpole.zip")
dqn.save_replay_buffer(f"{out}/main_dqn_cartpole_buffer.pkl")
sym_ppo = PPO(
    SymmetrisedActorCriticPolicy,
    make_symmetric_vec_env("CartPole-v1", n_envs=1, seed=0),
    n_steps=8,
    batch_size=8,
    policy_kwargs=dict(net_arch=[2]),
    seed=0,
    device="cpu",
)
sym_ppo.save(f"{out}/main_symmetrised_ppo_cartpole.zip")
with th.no_grad():
    sym_logits = sym_ppo.policy.get_distribution(th.as_tensor(obs)).distribution.logits.numpy()
    logits = ppo.policy.get_distribution(th.as_tensor(obs)).distribution.logits.numpy()
    q = dqn.q_net(th.as_tensor(obs)).numpy()
np.savez(f"{out}/main_outputs.npz", obs=obs, ppo_logits=logits, dqn_q=q, symmetrised_logits=sym_logits)
print(ppo.policy_kwargs.keys(), dqn.replay_buffer_kwargs)
