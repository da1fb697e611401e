"""A callback that connects symmetric buffers to the model they train, for stock SB3 algorithms and rl_zoo3."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback

from sb3_equivariant.augmentation.buffers import SymmetricReplayBuffer
from sb3_equivariant.augmentation.rollout import SymmetricRolloutBuffer


class SymmetryCallback(BaseCallback):
    """
    At the start of training, give a :class:`SymmetricReplayBuffer` / :class:`SymmetricRolloutBuffer` what the
    algorithm does not pass to buffers: the env (to find a symmetry that was not given) and, for the rollout buffer,
    the collecting policy. rl_zoo3: ``callback: sb3_equivariant.augmentation.SymmetryCallback``.

    :param verbose: SB3 verbosity.
    """

    def __init__(self, verbose: int = 0):
        super().__init__(verbose)

    def _on_training_start(self) -> None:
        env = self.model.get_env()
        replay = getattr(self.model, "replay_buffer", None)
        if isinstance(replay, SymmetricReplayBuffer):
            replay.set_env(env)
        rollout = getattr(self.model, "rollout_buffer", None)
        if isinstance(rollout, SymmetricRolloutBuffer):
            rollout.set_env(env)
            rollout.set_policy(self.model.policy)  # type: ignore[arg-type]

    def _on_step(self) -> bool:
        return True
