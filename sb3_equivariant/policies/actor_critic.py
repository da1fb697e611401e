"""Equivariant actor-critic policies for PPO, A2C, TRPO (and MaskablePPO): ``π(L_g s) = K_g π(s)``, ``V(L_g s) = V(s)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.distributions import DiagGaussianDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_equivariant.nn import EquivariantLinear
from sb3_equivariant.policies.base import EquivariantPolicyMixin
from sb3_equivariant.policies.common import (
    ON_POLICY_INITS,
    EquivariantMlpExtractor,
    ObsPreprocessor,
    action_output_rep,
    action_std_orbits,
    export_module,
    features_field,
    init_module,
    parse_net_arch,
    value_head,
)
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor


class _EquivariantActorCriticMixin(EquivariantPolicyMixin):
    """The equivariant build shared by SB3's ActorCriticPolicy and sb3-contrib's Maskable / Recurrent ones."""

    init_choices = ON_POLICY_INITS

    _equivariant_net_arch: dict[str, list[int]]
    activation_fn: type[nn.Module]
    log_std: nn.Parameter
    log_std_orbit: th.Tensor

    def _net_arch(self, net_arch: list[int] | dict[str, list[int]]) -> dict[str, list[int]]:
        self._equivariant_net_arch = parse_net_arch(net_arch, len(self.symmetry))
        return self._equivariant_net_arch

    def _build_mlp_extractor(self) -> None:
        rep, channels = features_field(self.features_extractor, self.symmetry, self.observation_space)  # type: ignore[attr-defined]
        self.mlp_extractor = EquivariantMlpExtractor(
            rep,
            channels,
            self._equivariant_net_arch,
            self.activation_fn,
            self.basis,  # type: ignore[attr-defined]
        )

    def _build(self, lr_schedule: Schedule) -> None:
        self._build_mlp_extractor()
        extractor: EquivariantMlpExtractor = self.mlp_extractor
        self.action_net = EquivariantLinear(
            extractor.rep_pi,
            action_output_rep(self.symmetry, self.action_space),  # type: ignore[attr-defined]
            extractor.channels_pi,
            1,
            basis=self.basis,
        )
        if isinstance(self.action_dist, DiagGaussianDistribution):  # type: ignore[attr-defined]
            # One log-std per orbit of action dimensions: the Gaussian is then equivariant under signed permutations.
            orbit = action_std_orbits(self.symmetry.action_rep)
            self.register_buffer("log_std_orbit", orbit, persistent=False)  # type: ignore[attr-defined]
            self.log_std = nn.Parameter(th.full((int(orbit.max()) + 1,), float(self.log_std_init)))  # type: ignore[attr-defined]
        self.value_net = value_head(extractor.rep_vf, extractor.channels_vf, self.basis)
        if self.ortho_init:  # type: ignore[attr-defined]
            gains = {self.mlp_extractor: np.sqrt(2), self.action_net: 0.01, self.value_net: 1.0}
            extractors = (
                [self.features_extractor]  # type: ignore[attr-defined]
                if self.share_features_extractor  # type: ignore[attr-defined]
                else [self.pi_features_extractor, self.vf_features_extractor]  # type: ignore[attr-defined]
            )
            for module, gain in [*((e, np.sqrt(2)) for e in extractors), *gains.items()]:
                init_module(module, gain, self.init_weights, self.init)  # type: ignore[attr-defined,arg-type]
        # Modules were replaced: the optimizer must see the new parameters.
        self.optimizer = self.optimizer_class(  # type: ignore[attr-defined]
            self.parameters(),  # type: ignore[attr-defined]
            lr=lr_schedule(1),
            **self.optimizer_kwargs,  # type: ignore[attr-defined]
        )

    def action_log_std(self) -> th.Tensor:
        """The per-dimension log-std (tied across each orbit of the action permutation)."""
        return self.log_std[self.log_std_orbit]

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor) -> Distribution:
        if isinstance(self.action_dist, DiagGaussianDistribution):  # type: ignore[attr-defined]
            return self.action_dist.proba_distribution(self.action_net(latent_pi), self.action_log_std())  # type: ignore[attr-defined]
        return super()._get_action_dist_from_latent(latent_pi)  # type: ignore[misc]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "net_arch": self._equivariant_net_arch}

    def export(self) -> nn.Module:
        """A plain torch module (dense weights) computing ``(action logits or Gaussian mean, value)`` from raw obs."""
        return ExportedActorCritic(self)  # type: ignore[arg-type]


class EquivariantActorCriticPolicy(_EquivariantActorCriticMixin, ActorCriticPolicy):  # type: ignore[misc]
    """
    An ``ActorCriticPolicy`` whose networks are equivariant under the env's symmetry: the action logits (Discrete) or
    Gaussian mean (Box) transform with the action representation, the value is invariant. Works with PPO, A2C and
    sb3-contrib's TRPO.

    Extra keyword arguments ``symmetry``, ``basis`` and ``sizing``: see
    :class:`~sb3_equivariant.policies.base.EquivariantPolicyMixin`; the others are ``ActorCriticPolicy``'s, with
    ``net_arch`` in channels of the regular representation (default: SB3's ``[64, 64]`` read by ``sizing``).
    """


EquivariantMlpPolicy = EquivariantActorCriticPolicy


class EquivariantCnnPolicy(EquivariantActorCriticPolicy):
    """
    :class:`EquivariantActorCriticPolicy` with :class:`EquivariantCnnExtractor` (an equivariant NatureCNN) for image
    observations; ``net_arch`` defaults to ``[]`` as SB3's CnnPolicy. Pass ``features_extractor_kwargs`` to change
    the convolutions (e.g. the paper's GridWorld net: channels (8, 16), kernels (7, 5), strides (2, 1), max pooling).
    """

    default_features_extractor_class = EquivariantCnnExtractor


class MaskableEquivariantActorCriticPolicy(_EquivariantActorCriticMixin, MaskableActorCriticPolicy):  # type: ignore[misc]
    """
    sb3-contrib's ``MaskableActorCriticPolicy`` (MaskablePPO) made equivariant; action masks must transform with the
    actions (``mask(g·s)[K_g a] = mask(s)[a]``), as they do in a symmetric env. Same extra kwargs as
    :class:`EquivariantActorCriticPolicy`.
    """


class MaskableEquivariantCnnPolicy(MaskableEquivariantActorCriticPolicy):
    """:class:`MaskableEquivariantActorCriticPolicy` with :class:`EquivariantCnnExtractor`."""

    default_features_extractor_class = EquivariantCnnExtractor


class ExportedActorCritic(nn.Module):
    """Plain-torch copy of an equivariant actor-critic: ``forward(obs) -> (logits or mean, value)``."""

    def __init__(self, policy: EquivariantActorCriticPolicy):
        super().__init__()
        self.preprocess = ObsPreprocessor(policy.observation_space, policy.normalize_images)
        self.pi_features = export_module(policy.pi_features_extractor)
        self.vf_features = export_module(policy.vf_features_extractor)
        self.policy_net = export_module(policy.mlp_extractor.policy_net)
        self.value_net_body = export_module(policy.mlp_extractor.value_net)
        self.action_net = export_module(policy.action_net)
        self.value_net = export_module(policy.value_net)
        self.eval()

    def forward(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        obs = self.preprocess(obs)
        action = self.action_net(self.policy_net(self.pi_features(obs)))
        value = self.value_net(self.value_net_body(self.vf_features(obs)))
        return action, value


__all__ = [
    "EquivariantActorCriticPolicy",
    "EquivariantCnnPolicy",
    "EquivariantMlpPolicy",
    "ExportedActorCritic",
    "MaskableEquivariantActorCriticPolicy",
    "MaskableEquivariantCnnPolicy",
]
