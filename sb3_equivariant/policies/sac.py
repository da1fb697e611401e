"""Equivariant SAC policy: ``π(· | L_g s) = K_g π(· | s)`` for the squashed Gaussian, ``Q(L_g s, K_g a) = Q(s, a)``."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import Actor, SACPolicy

from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.nn import EquivariantLinear
from sb3_equivariant.policies.common import equivariant_mlp, features_field
from sb3_equivariant.policies.continuous import EquivariantContinuousMixin, unsigned
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor


class EquivariantSACActor(Actor):
    """
    SB3's SAC ``Actor`` with equivariant layers: the Gaussian mean transforms with the action's signed permutation
    ``K_g`` and the (state-dependent) log-std with its permutation part ``|K_g|``, so the diagonal Gaussian, and its
    coordinate-wise tanh squashing, are equivariant.

    :param symmetry: the env's symmetry.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"``.

    The other parameters are ``Actor``'s; ``net_arch`` is in channels of the regular representation.
    """

    def __init__(self, *args: Any, symmetry: Symmetry, basis: str = "equivariant", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.symmetry, self.basis = symmetry, basis
        rep, channels = features_field(self.features_extractor, symmetry, self.observation_space)
        self.latent_pi, rep, channels = equivariant_mlp(rep, channels, self.net_arch, self.activation_fn, basis)
        mu = EquivariantLinear(rep, symmetry.action_rep, channels, 1, basis=basis)
        log_std = EquivariantLinear(rep, unsigned(symmetry.action_rep), channels, 1, basis=basis)
        for head in (mu, log_std):
            head.reset_parameters(1.0)
        self.mu, self.log_std = mu, log_std  # type: ignore[assignment]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "symmetry": self.symmetry, "basis": self.basis}


class EquivariantSACPolicy(EquivariantContinuousMixin, SACPolicy):
    """
    A ``SACPolicy`` whose actor is equivariant and whose critics (and their targets) are invariant under the env's
    symmetry. Actions must form a box that the symmetry maps onto itself (e.g. Pendulum's ``[-2, 2]``), and the
    action representation must be a signed permutation (tanh squashing acts per dimension).

    Extra keyword arguments ``symmetry``, ``basis``, ``sizing`` and ``init``: see
    :class:`~sb3_equivariant.policies.base.EquivariantPolicyMixin`; the others are ``SACPolicy``'s, with ``net_arch``
    in channels of the regular representation, a list or ``dict(pi=[...], qf=[...])`` (default: SB3's
    ``[256, 256]`` read by ``sizing``).
    """

    def _default_widths(self, features_extractor_class: type[BaseFeaturesExtractor]) -> list[int]:
        return [256, 256]

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Actor:
        return self._initialized(EquivariantSACActor(**self._equivariant_kwargs(self.actor_kwargs, features_extractor)))


class EquivariantCnnSACPolicy(EquivariantSACPolicy):
    """:class:`EquivariantSACPolicy` with :class:`EquivariantCnnExtractor` (an equivariant NatureCNN) for images."""

    default_features_extractor_class = EquivariantCnnExtractor


__all__ = ["EquivariantCnnSACPolicy", "EquivariantSACActor", "EquivariantSACPolicy"]
