"""DQN with an equivariant Q-network on CartPole-v1: Q(mirrored state, mirrored action) = Q(state, action).

python examples/dqn_cartpole.py
"""

from stable_baselines3 import DQN
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_equivariant import EquivariantDQNPolicy, make_symmetric_env

env = make_symmetric_env("CartPole-v1")
# rl_zoo3's tuned CartPole DQN hyperparameters.
model = DQN(
    EquivariantDQNPolicy,
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
    seed=0,
)
model.learn(total_timesteps=30_000)

mean, std = evaluate_policy(model, make_symmetric_env("CartPole-v1"), n_eval_episodes=10)
print(f"mean return after 30k steps: {mean:.1f} +/- {std:.1f}")
