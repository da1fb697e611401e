"""
PPO and A2C with symmetry baselines built in: rollout augmentation (:class:`SymmetricRolloutBuffer`) and the
symmetry loss of Yu et al. 2018 (:func:`~sb3_equivariant.augmentation.loss.symmetry_loss`).

These are the same algorithms with the same hyperparameters; only the data (augmentation) or one extra loss term
(``symmetry_loss_coef``) differ, so comparisons against equivariant policies stay on equal terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from sb3_equivariant.augmentation.common import AUGMENT_MODES, check_mode, check_symmetry, symmetry_from_env
from sb3_equivariant.augmentation.loss import symmetry_loss
from sb3_equivariant.augmentation.rollout import SymmetricRolloutBuffer, warn_if_normalised
from sb3_equivariant.envs.symmetry import Symmetry


class _SymmetricOnPolicyMixin:
    """Finds the symmetry, installs :class:`SymmetricRolloutBuffer` and hands it the policy in ``_setup_model``."""

    symmetry: Symmetry | str | None
    augment: str | None
    symmetry_loss_coef: float
    rollout_buffer_class: Any
    rollout_buffer_kwargs: dict[str, Any]

    def __init__(
        self,
        policy: Any,
        env: Any,
        symmetry: Symmetry | str | None = None,
        augment: str | None = "random",
        symmetry_loss_coef: float = 0.0,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        if symmetry_loss_coef < 0:
            raise ValueError(f"symmetry_loss_coef must be >= 0, got {symmetry_loss_coef}")
        self._init_symmetry(symmetry, augment, kwargs.get("rollout_buffer_class"))
        self.symmetry_loss_coef = symmetry_loss_coef
        super().__init__(policy, env, _init_setup_model=False, **kwargs)  # type: ignore[call-arg]
        if _init_setup_model:
            self._setup_model()

    def train(self) -> None:
        if self.symmetry_loss_coef == 0:
            super().train()  # type: ignore[misc]
            return
        self._train_with_symmetry_loss()

    def _train_with_symmetry_loss(self) -> None:
        raise NotImplementedError

    def _init_symmetry(self, symmetry: Symmetry | str | None, augment: str | None, rollout_buffer_class: Any) -> None:
        if augment is not None:
            check_mode(augment, AUGMENT_MODES, type(self).__name__)
            if rollout_buffer_class is not None and not issubclass(rollout_buffer_class, SymmetricRolloutBuffer):
                raise ValueError(
                    f"{type(self).__name__}: augment={augment!r} needs a SymmetricRolloutBuffer, got {rollout_buffer_class}"
                )
        self.symmetry = symmetry
        self.augment = augment

    def _setup_model(self) -> None:
        algo: Any = self
        if self.symmetry is None:
            self.symmetry = symmetry_from_env(algo.env)
        self.symmetry = check_symmetry(self.symmetry, algo.observation_space, algo.action_space, type(self).__name__)
        if self.augment is not None:
            self.rollout_buffer_class = self.rollout_buffer_class or SymmetricRolloutBuffer
            self.rollout_buffer_kwargs = {**self.rollout_buffer_kwargs, "symmetry": self.symmetry, "augment": self.augment}
        super()._setup_model()  # type: ignore[misc]
        if isinstance(algo.rollout_buffer, SymmetricRolloutBuffer):
            algo.rollout_buffer.set_policy(algo.policy)
            warn_if_normalised(algo.env)


class SymmetricPPO(_SymmetricOnPolicyMixin, PPO):
    """
    PPO with rollout augmentation and/or the symmetry loss.

    :param policy: as for PPO.
    :param env: as for PPO.
    :param symmetry: the environment's symmetry, or a registered env id; ``None``: found from ``env`` by
        ``sb3_equivariant.envs.get_symmetry``.
    :param augment: ``"random"``, ``"all"`` (see :class:`SymmetricRolloutBuffer`) or ``None`` for no augmentation.
    :param symmetry_loss_coef: weight of the symmetry loss added to PPO's loss (0: off); logged as
        ``train/symmetry_loss``.
    :param kwargs: every other PPO argument.
    """

    def _train_with_symmetry_loss(self) -> None:
        """SB3 2.9.2's ``PPO.train`` with ``symmetry_loss_coef * symmetry_loss`` added to the minibatch loss."""
        assert isinstance(self.symmetry, Symmetry)
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]

        entropy_losses, pg_losses, value_losses, clip_fractions, sym_losses = [], [], [], [], []
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = rollout_data.actions.long().flatten()

                values, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)
                values = values.flatten()
                advantages = rollout_data.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
                pg_losses.append(policy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())

                if self.clip_range_vf is None:
                    values_pred = values
                else:
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                value_losses.append(value_loss.item())

                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                entropy_losses.append(entropy_loss.item())

                sym_loss = symmetry_loss(self.policy, rollout_data.observations, self.symmetry)
                sym_losses.append(sym_loss.item())

                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                loss = loss + self.symmetry_loss_coef * sym_loss

                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)

                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/symmetry_loss", np.mean(sym_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if self.clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)


class SymmetricA2C(_SymmetricOnPolicyMixin, A2C):
    """
    A2C with rollout augmentation and/or the symmetry loss. With ``augment="all"`` its single gradient step per
    rollout sees ``|G|`` times the samples.

    :param policy: as for A2C.
    :param env: as for A2C.
    :param symmetry: the environment's symmetry, or a registered env id; ``None``: found from ``env`` by
        ``sb3_equivariant.envs.get_symmetry``.
    :param augment: ``"random"``, ``"all"`` (see :class:`SymmetricRolloutBuffer`) or ``None`` for no augmentation.
    :param symmetry_loss_coef: weight of the symmetry loss added to A2C's loss (0: off); logged as
        ``train/symmetry_loss``.
    :param kwargs: every other A2C argument.
    """

    def _train_with_symmetry_loss(self) -> None:
        """SB3 2.9.2's ``A2C.train`` with ``symmetry_loss_coef * symmetry_loss`` added to the loss."""
        assert isinstance(self.symmetry, Symmetry)
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        for rollout_data in self.rollout_buffer.get(batch_size=None):
            actions = rollout_data.actions
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.long().flatten()

            values, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)
            values = values.flatten()
            advantages = rollout_data.advantages
            if self.normalize_advantage:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

            policy_loss = -(advantages * log_prob).mean()
            value_loss = F.mse_loss(rollout_data.returns, values)
            entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
            sym_loss = symmetry_loss(self.policy, rollout_data.observations, self.symmetry)
            loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
            loss = loss + self.symmetry_loss_coef * sym_loss

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        self.logger.record("train/symmetry_loss", sym_loss.item())
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
