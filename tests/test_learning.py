import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_equivariant import EquivariantMlpPolicy, make_symmetric_vec_env


def test_ppo_equivariant_cartpole_learns() -> None:
    env = make_symmetric_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = PPO(
        EquivariantMlpPolicy,
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=10,
        ent_coef=0.0,
        learning_rate=1e-3,
        clip_range=0.2,
        seed=0,
    )
    eval_env = make_symmetric_vec_env("CartPole-v1", n_envs=1, seed=123)
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=5)
    model.learn(8_000)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=5)
    # An untrained equivariant policy is already an odd (mirror-symmetric) controller, which can balance for a while.
    assert after > 300 and after > before + 100, (before, after)
    assert np.isfinite(after)
