"""DQN with an equivariant Q-network on CartPole-v1: Q(mirrored state, mirrored action) = Q(state, action).

python examples/dqn_cartpole.py
"""

from stable_baselines3 import DQN
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_equivariant import EquivariantDQNPolicy, make_symmetric_env, make_symmetric_vec_env

GOOD_RETURN = "CartPole-v1: 500 is the maximum, 475 counts as solved; a uniformly random policy gets about 22"


def main(total_timesteps: int = 30_000) -> None:
    # rl_zoo3's tuned CartPole DQN hyperparameters.
    model = DQN(
        EquivariantDQNPolicy,
        make_symmetric_env("CartPole-v1"),
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
    model.learn(total_timesteps=total_timesteps)
    # A seeded evaluation env (with Monitor, as make_vec_env wraps each env): the same start states on every run.
    eval_env = make_symmetric_vec_env("CartPole-v1", n_envs=1, seed=10_000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=10)
    print(f"mean return after {total_timesteps} steps: {mean:.1f} +/- {std:.1f} ({GOOD_RETURN})")


if __name__ == "__main__":
    main()
