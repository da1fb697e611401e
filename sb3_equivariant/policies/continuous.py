"""Pieces shared by the equivariant SAC and TD3 policies: the invariant Q-critic and the symmetry set-up."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.policies.base import EquivariantPolicyMixin
from sb3_equivariant.policies.common import (
    OFF_POLICY_INITS,
    ObsPreprocessor,
    equivariant_mlp,
    export_module,
    features_field,
    value_head,
)
from sb3_equivariant.representation import Representation, copies, direct_sum


def check_action_bounds(symmetry: Symmetry, action_space: spaces.Box) -> None:
    """
    SB3 squashes actions into ``[-1, 1]`` and rescales them to ``[low, high]``; that commutes with the action's signed
    permutation only if the box is mapped onto itself: its center is fixed and its half-widths are permuted.
    """
    if not symmetry.action_rep.is_monomial:
        raise SymmetryError(
            f"{symmetry.name}: SAC and TD3 squash each action dimension with tanh, which commutes only with signed "
            "permutations of the action dimensions; this action representation is not one"
        )
    low, high = action_space.low.astype(np.float64), action_space.high.astype(np.float64)
    center, half = (high + low) / 2, (high - low) / 2
    for g in symmetry.group.elements:
        moved = symmetry.action_rep.apply(center, g)
        spread = np.abs(symmetry.action_rep.apply(half, g))
        if not (np.allclose(moved, center) and np.allclose(spread, half)):
            raise SymmetryError(
                f"{symmetry.name}: element {g} does not map the action box [{action_space.low}, {action_space.high}] onto "
                "itself, so SB3's rescaling of squashed actions would break the symmetry; use a symmetric box"
            )


def unsigned(rep: Representation) -> Representation:
    """The permutation part ``|K_g|`` of a signed permutation: how per-dimension scales (log-stds) transform."""
    return Representation.from_monomial(rep.group, rep.permutations, name=f"|{rep.name}|")


def make_q_net(
    rep: Representation,
    channels: int,
    action_rep: Representation,
    net_arch: list[int],
    activation_fn: type[nn.Module],
    basis: str,
) -> nn.Sequential:
    """
    An invariant ``Q(s, a)`` on the concatenation ``[features, action]``, whose representation is the direct sum of
    the features' and the action's: ``Q(L_g s, K_g a) = Q(s, a)``.
    """
    joint = direct_sum(copies(rep, channels), action_rep, name=f"{channels}x{rep.name}+{action_rep.name}")
    body, rep_out, channels_out = equivariant_mlp(joint, 1, net_arch, activation_fn, basis)
    head = value_head(rep_out, channels_out, basis)
    head.reset_parameters(1.0)
    return nn.Sequential(*body, head)


class EquivariantContinuousCritic(ContinuousCritic):
    """
    SB3's ``ContinuousCritic`` (``n_critics`` Q-networks on ``[features, action]``) with invariant Q-networks.

    :param symmetry: the env's symmetry.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"``.

    The other parameters are ``ContinuousCritic``'s; ``net_arch`` is in channels of the regular representation.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
        *,
        symmetry: Symmetry,
        basis: str = "equivariant",
    ):
        super().__init__(
            observation_space,
            action_space,
            net_arch,
            features_extractor,
            features_dim,
            activation_fn,
            normalize_images,
            n_critics,
            share_features_extractor,
        )
        rep, channels = features_field(self.features_extractor, symmetry, self.observation_space)
        for idx in range(n_critics):
            q_net = make_q_net(rep, channels, symmetry.action_rep, net_arch, activation_fn, basis)
            self.add_module(f"qf{idx}", q_net)
            self.q_networks[idx] = q_net


class EquivariantContinuousMixin(EquivariantPolicyMixin):
    """The SAC / TD3 families: a symmetric action box; build the actor and critics equivariant."""

    action_spaces = (spaces.Box,)
    init_choices = OFF_POLICY_INITS
    actor_kwargs: dict[str, Any]
    critic_kwargs: dict[str, Any]

    def _finish_kwargs(self, action_space: spaces.Space, kwargs: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(action_space, spaces.Box)
        check_action_bounds(self.symmetry, action_space)
        return super()._finish_kwargs(action_space, kwargs)

    def _equivariant_kwargs(self, kwargs: dict[str, Any], features_extractor: BaseFeaturesExtractor | None) -> dict[str, Any]:
        kwargs = self._update_features_extractor(kwargs, features_extractor)  # type: ignore[attr-defined]
        return {**kwargs, "symmetry": self.symmetry, "basis": self.basis}

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        critic = EquivariantContinuousCritic(**self._equivariant_kwargs(self.critic_kwargs, features_extractor))
        return self._initialized(critic)

    def export(self) -> nn.Module:
        """A plain torch module (dense weights) computing the deterministic action, in the env's bounds, from raw obs."""
        return ExportedActor(self.actor)  # type: ignore[attr-defined]


class ExportedActor(nn.Module):
    """
    Plain-torch copy of an equivariant SAC or TD3 actor: ``forward(obs)`` returns what ``predict(obs,
    deterministic=True)`` returns (the squashed mean rescaled to the action box).
    """

    low: th.Tensor
    high: th.Tensor

    def __init__(self, actor: BasePolicy):
        super().__init__()
        self.preprocess = ObsPreprocessor(actor.observation_space, actor.normalize_images)
        self.features = export_module(actor.features_extractor)
        mu, latent = actor.mu, getattr(actor, "latent_pi", None)
        assert isinstance(mu, nn.Module)
        # SAC: latent net, mean, then the squashing; TD3: mu is the whole net, ending in tanh.
        layers = [export_module(mu)] if latent is None else [export_module(latent), export_module(mu), nn.Tanh()]
        self.actor = nn.Sequential(*layers)
        space = actor.action_space
        assert isinstance(space, spaces.Box)
        self.register_buffer("low", th.as_tensor(space.low, dtype=th.float32))
        self.register_buffer("high", th.as_tensor(space.high, dtype=th.float32))
        self.eval()

    def forward(self, obs: th.Tensor) -> th.Tensor:
        squashed = self.actor(self.features(self.preprocess(obs)))
        return self.low + 0.5 * (squashed + 1.0) * (self.high - self.low)


__all__ = ["EquivariantContinuousCritic", "ExportedActor"]
