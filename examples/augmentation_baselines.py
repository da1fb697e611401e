"""The augmentation baselines: the same symmetry used as data instead of built into the network.

python examples/augmentation_baselines.py
"""

from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_equivariant import make_symmetric_env, make_symmetric_vec_env
from sb3_equivariant.augmentation import SymmetricPPO, SymmetricReplayBuffer

GOOD_RETURN = "CartPole-v1: 500 is the maximum, 475 counts as solved; a uniformly random policy gets about 22"


def evaluate(model: BaseAlgorithm, name: str) -> None:
    # A seeded evaluation env (with Monitor, as make_vec_env wraps each env): the same start states on every run.
    mean, std = evaluate_policy(model, make_symmetric_vec_env("CartPole-v1", n_envs=1, seed=10_000), n_eval_episodes=10)
    print(f"{name}: {mean:.1f} +/- {std:.1f} ({GOOD_RETURN})")


def main(total_timesteps: int = 20_000) -> None:
    # Off-policy: every sampled transition is replayed once under each group element (batch grows by |G|).
    dqn = DQN(
        "MlpPolicy",
        make_symmetric_env("CartPole-v1"),
        replay_buffer_class=SymmetricReplayBuffer,
        replay_buffer_kwargs=dict(mode="all"),  # symmetry found on the env; "random" and "store" are the other modes
        learning_rate=2.3e-3,
        batch_size=64,
        learning_starts=1000,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        seed=0,
    )
    dqn.learn(total_timesteps)
    evaluate(dqn, "DQN + symmetric replay")

    # On-policy: minibatches extended with mirrored samples (old log-probs recomputed under the collecting policy),
    # plus a symmetry loss on the action probabilities.
    ppo = SymmetricPPO(
        "MlpPolicy",
        make_symmetric_vec_env("CartPole-v1", n_envs=8, seed=0),
        augment="random",
        symmetry_loss_coef=0.1,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        learning_rate=1e-3,
        seed=0,
    )
    ppo.learn(total_timesteps)
    evaluate(ppo, "PPO + rollout augmentation + symmetry loss")


if __name__ == "__main__":
    main()
