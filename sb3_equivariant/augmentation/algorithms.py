"""
PPO and A2C with symmetry baselines built in: rollout augmentation (:class:`SymmetricRolloutBuffer`) and the
symmetry loss of Yu et al. 2018 (:func:`~sb3_equivariant.augmentation.loss.symmetry_loss`).

These are the same algorithms with the same hyperparameters; only the data (augmentation) or one extra loss term
(``symmetry_loss_coef``) differ, so comparisons against equivariant policies stay on equal terms. SB3's own
``train`` runs unchanged: the symmetry loss of each minibatch enters through the policy's ``evaluate_actions``, which
``train`` calls once per minibatch (see :func:`add_to_loss`), so a change of SB3's losses reaches these baselines too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.policies import ActorCriticPolicy

from sb3_equivariant.augmentation.common import AUGMENT_MODES, check_mode
from sb3_equivariant.augmentation.loss import symmetry_loss
from sb3_equivariant.augmentation.rollout import SymmetricRolloutBuffer
from sb3_equivariant.envs.discovery import resolve_symmetry
from sb3_equivariant.envs.symmetry import Symmetry


class _AddLoss(th.autograd.Function):
    """Identity on ``x`` whose backward also gives ``loss`` the gradient 1."""

    @staticmethod
    def forward(ctx: Any, x: th.Tensor, loss: th.Tensor) -> th.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return grad, grad.new_ones(())


def add_to_loss(x: th.Tensor, loss: th.Tensor) -> th.Tensor:
    """
    ``x`` unchanged, carrying ``loss``: differentiating anything computed from the result adds the gradient of
    ``loss``, as if ``loss`` had been added to it (once per backward pass, however often ``x`` is used).

    :param x: a tensor the caller's loss is computed from (e.g. the log-probabilities PPO's loss uses).
    :param loss: a scalar loss.
    """
    return _AddLoss.apply(x, loss)  # type: ignore[no-any-return]


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
        """SB3's ``train``; with a symmetry loss, ``symmetry_loss_coef * symmetry_loss`` joins every minibatch loss."""
        if self.symmetry_loss_coef == 0:
            super().train()  # type: ignore[misc]
            return
        losses: list[float] = []
        with self._symmetry_loss_in(self.policy, losses):  # type: ignore[attr-defined]
            super().train()  # type: ignore[misc]
        self.logger.record("train/symmetry_loss", float(np.mean(losses)))  # type: ignore[attr-defined]

    @contextmanager
    def _symmetry_loss_in(self, policy: ActorCriticPolicy, losses: list[float]) -> Iterator[None]:
        """
        While active, ``policy.evaluate_actions`` returns log-probabilities that carry the symmetry loss of the
        observations (:func:`add_to_loss`): SB3's policy loss is a function of them, so ``loss.backward()`` adds
        ``symmetry_loss_coef`` times its gradient. Values and log-probabilities are unchanged.

        :param policy: the policy being trained.
        :param losses: the symmetry loss of each call is appended here (for the logger).
        """
        assert isinstance(self.symmetry, Symmetry)
        symmetry, evaluate_actions = self.symmetry, policy.evaluate_actions

        def with_symmetry_loss(obs: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
            values, log_prob, entropy = evaluate_actions(obs, actions)
            sym_loss = symmetry_loss(policy, obs, symmetry)
            losses.append(sym_loss.item())
            return values, add_to_loss(log_prob, self.symmetry_loss_coef * sym_loss), entropy

        policy.evaluate_actions = with_symmetry_loss  # type: ignore[method-assign]
        try:
            yield
        finally:
            del policy.evaluate_actions

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
        self.symmetry = resolve_symmetry(
            self.symmetry, algo.observation_space, algo.action_space, type(self).__name__, env=algo.env, allow_dict=False
        )
        if self.augment is not None:
            self.rollout_buffer_class = self.rollout_buffer_class or SymmetricRolloutBuffer
            self.rollout_buffer_kwargs = {**self.rollout_buffer_kwargs, "symmetry": self.symmetry, "augment": self.augment}
        super()._setup_model()  # type: ignore[misc]
        if isinstance(algo.rollout_buffer, SymmetricRolloutBuffer):
            algo.rollout_buffer.set_policy(algo.policy)


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
