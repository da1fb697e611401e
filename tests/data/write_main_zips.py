"""
Writes the models that tests/test_discovery.py loads, with the code of main at 8208e1f (before the rewrite of the
symmetry resolution and the renames): ``git archive 8208e1f sb3_equivariant | tar -x -C /tmp/main`` then
``PYTHONPATH=/tmp/main python tests/data/write_main_zips.py tests/data``.
"""

import sys
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import DQN, PPO

from sb3_equivariant import make_symmetric_vec_env
from sb3_equivariant.augmentation import SymmetricReplayBuffer, SymmetrisedActorCriticPolicy
from sb3_equivariant.policies import EquivariantDQNPolicy, EquivariantMlpPolicy


def tiny(algo: type, policy: type, **kwargs: Any) -> Any:
    env = make_symmetric_vec_env("CartPole-v1", n_envs=1, seed=0)
    return algo(policy, env, policy_kwargs=dict(net_arch=[2]), seed=0, device="cpu", **kwargs)


out = sys.argv[1]
obs = th.as_tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
ppo = tiny(PPO, EquivariantMlpPolicy, n_steps=8, batch_size=8)
sym_ppo = tiny(PPO, SymmetrisedActorCriticPolicy, n_steps=8, batch_size=8)
dqn = tiny(DQN, EquivariantDQNPolicy, buffer_size=16, learning_starts=0, replay_buffer_class=SymmetricReplayBuffer,
           replay_buffer_kwargs=dict(mode="store"))  # fmt: skip
dqn.learn(6)
ppo.save(f"{out}/main_ppo_cartpole.zip")
sym_ppo.save(f"{out}/main_symmetrised_ppo_cartpole.zip")
dqn.save(f"{out}/main_dqn_cartpole.zip")
dqn.save_replay_buffer(f"{out}/main_dqn_cartpole_buffer.pkl")
with th.no_grad():
    outputs = dict(
        ppo_logits=ppo.policy.get_distribution(obs).distribution.logits.numpy(),
        symmetrised_logits=sym_ppo.policy.get_distribution(obs).distribution.logits.numpy(),
        dqn_q=dqn.q_net(obs).numpy(),
    )
np.savez(f"{out}/main_outputs.npz", obs=obs.numpy(), **outputs)
