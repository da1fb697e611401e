"""PPO with an equivariant policy on CartPole-v1.

The mirror symmetry (observation -> -observation, push left <-> push right) is built into the policy: the action
probabilities of a mirrored state are exactly the mirrored probabilities, and the value is the same.

    python examples/ppo_cartpole.py
"""

from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_equivariant import EquivariantMlpPolicy, count_parameters, make_symmetric_vec_env

env = make_symmetric_vec_env("CartPole-v1", n_envs=8, seed=0)  # registry: obs -> -obs, actions 0 <-> 1
# rl_zoo3's tuned CartPole hyperparameters; the symmetry comes from the env, nothing else changes.
model = PPO(
    EquivariantMlpPolicy,
    env,
    n_steps=32,
    batch_size=256,
    gae_lambda=0.8,
    gamma=0.98,
    n_epochs=20,
    ent_coef=0.0,
    learning_rate=1e-3,
    clip_range=0.2,
    seed=0,
)
print(f"equivariant policy: {count_parameters(model.policy)} parameters, symmetry {model.policy.symmetry}")
model.learn(total_timesteps=20_000)

mean, std = evaluate_policy(model, make_symmetric_vec_env("CartPole-v1", n_envs=1, seed=100), n_eval_episodes=10)
print(f"mean return after 20k steps: {mean:.1f} +/- {std:.1f}")
