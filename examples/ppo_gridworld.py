"""PPO with an equivariant CNN on the paper's GridWorld (C4: rotating the view rotates the moves).

The network is the paper's: a lifting convolution (7x7, stride 2) to the regular representation of C4, a group
convolution (5x5), global max pooling, then equivariant fully connected layers.

    python examples/ppo_gridworld.py
"""

from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_equivariant import GRIDWORLD_ID, EquivariantCnnPolicy, count_parameters, make_symmetric_vec_env

env = make_symmetric_vec_env(GRIDWORLD_ID, n_envs=8, seed=0)
policy_kwargs = dict(
    features_extractor_kwargs=dict(channels=(8, 16), kernel_sizes=(7, 5), strides=(2, 1), pooling="max", features_channels=64),
)
model = PPO(EquivariantCnnPolicy, env, n_steps=64, batch_size=256, learning_rate=1e-3, policy_kwargs=policy_kwargs, seed=0)
print(f"equivariant CNN policy: {count_parameters(model.policy)} parameters")
model.learn(total_timesteps=20_000)

mean, std = evaluate_policy(model, make_symmetric_vec_env(GRIDWORLD_ID, n_envs=1, seed=100), n_eval_episodes=20)
print(f"mean return after 20k steps: {mean:.2f} +/- {std:.2f} (random play: about -8)")
