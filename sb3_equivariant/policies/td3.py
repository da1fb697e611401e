"""Equivariant TD3 (and DDPG) policy: ``μ(L_g s) = K_g μ(s)``, ``Q(L_g s, K_g a) = Q(s, a)``."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import nn

from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.nn import EquivariantLinear
from sb3_equivariant.policies.common import equivariant_mlp, features_field
from sb3_equivariant.policies.continuous import EquivariantContinuousMixin
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor


class EquivariantTD3Actor(Actor):
    """
    SB3's TD3 ``Actor`` with equivariant layers: the deterministic action ``tanh(μ(s))`` transforms with the action's
    signed permutation (tanh is odd and acts per dimension).

    :param symmetry: the env's symmetry.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"``.

    The other parameters are ``Actor``'s; ``net_arch`` is in channels of the regular representation.
    """

    def __init__(self, *args: Any, symmetry: Symmetry, basis: str = "equivariant", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.symmetry, self.basis = symmetry, basis
        rep, channels = features_field(self.features_extractor, symmetry, self.observation_space)
        body, rep, channels = equivariant_mlp(rep, channels, self.net_arch, self.activation_fn, basis)
        head = EquivariantLinear(rep, symmetry.action_rep, channels, 1, basis=basis)
        head.reset_parameters(1.0)
        self.mu = nn.Sequential(*body, head, nn.Tanh())

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "symmetry": self.symmetry, "basis": self.basis}


class EquivariantTD3Policy(EquivariantContinuousMixin, TD3Policy):
    """
    A ``TD3Policy`` (TD3, DDPG) whose actor is equivariant and whose critics are invariant under the env's symmetry;
    the action box must be mapped onto itself by the symmetry, whose action representation must be a signed
    permutation.

    Extra keyword arguments ``symmetry``, ``basis``, ``sizing`` and ``init``: see
    :class:`~sb3_equivariant.policies.base.EquivariantPolicyMixin`; the others are ``TD3Policy``'s, with ``net_arch``
    in channels of the regular representation, a list or ``dict(pi=[...], qf=[...])`` (default: SB3's
    ``[400, 300]`` (``[256, 256]`` with a CNN)`` read by ``sizing``).
    """

    def _default_widths(self, features_extractor_class: type[BaseFeaturesExtractor]) -> list[int]:
        return [256, 256] if issubclass(features_extractor_class, EquivariantCnnExtractor) else [400, 300]

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Actor:
        return self._initialized(EquivariantTD3Actor(**self._equivariant_kwargs(self.actor_kwargs, features_extractor)))


class EquivariantCnnTD3Policy(EquivariantTD3Policy):
    """:class:`EquivariantTD3Policy` with :class:`EquivariantCnnExtractor` (an equivariant NatureCNN) for images."""

    default_features_extractor_class = EquivariantCnnExtractor


__all__ = ["EquivariantCnnTD3Policy", "EquivariantTD3Actor", "EquivariantTD3Policy"]
