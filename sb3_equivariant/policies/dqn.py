"""Equivariant Q-networks for DQN and sb3-contrib's QR-DQN: ``Q(L_g s, K_g a) = Q(s, a)``."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.nn import EquivariantLinear
from sb3_equivariant.policies.base import EquivariantPolicyMixin
from sb3_equivariant.policies.common import (
    OFF_POLICY_INITS,
    ObsPreprocessor,
    equivariant_mlp,
    export_module,
    features_field,
)
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor


def equivariant_q_head(
    features_extractor: BaseFeaturesExtractor,
    symmetry: Symmetry,
    observation_space: spaces.Space,
    net_arch: list[int],
    activation_fn: type[nn.Module],
    basis: str,
    copies: int = 1,
) -> nn.Sequential:
    """Hidden regular layers, then ``copies`` blocks of the action permutation (one per quantile for QR-DQN)."""
    rep, channels = features_field(features_extractor, symmetry, observation_space)
    body, rep, channels = equivariant_mlp(rep, channels, net_arch, activation_fn, basis)
    head = EquivariantLinear(rep, symmetry.action_rep, channels, copies, basis=basis)
    head.reset_parameters(1.0)
    return nn.Sequential(*body, head)


class _SymmetricNetArgs(EquivariantPolicyMixin):
    """The Q-network families: discrete actions; hand the symmetry to the networks SB3 makes."""

    net_args: dict[str, Any]
    action_spaces = (spaces.Discrete,)
    init_choices = OFF_POLICY_INITS

    def _default_widths(self, features_extractor_class: type[BaseFeaturesExtractor]) -> list[int]:
        return [] if features_extractor_class is EquivariantCnnExtractor else [64, 64]

    def _equivariant_net_args(self) -> dict[str, Any]:
        args = self._update_features_extractor(self.net_args, features_extractor=None)  # type: ignore[attr-defined]
        return {**args, "symmetry": self.symmetry, "basis": self.basis}

    def export(self) -> nn.Module:
        """A plain torch module (dense weights) computing the Q-values (or quantiles) from raw observations."""
        net = self.q_net if hasattr(self, "q_net") else self.quantile_net  # type: ignore[attr-defined]
        return ExportedQNetwork(net)


class EquivariantQNetwork(QNetwork):
    """SB3's ``QNetwork`` with an equivariant ``q_net``: the Q-vector permutes with the actions."""

    def __init__(self, *args: Any, symmetry: Symmetry, basis: str = "equivariant", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.q_net = equivariant_q_head(
            self.features_extractor, symmetry, self.observation_space, self.net_arch, self.activation_fn, basis
        )


class EquivariantDQNPolicy(_SymmetricNetArgs, DQNPolicy):
    """
    A ``DQNPolicy`` whose Q-network is equivariant (MLP on flat or flattened observations).

    Extra keyword arguments ``symmetry``, ``basis``, ``sizing`` and ``init``: see
    :class:`~sb3_equivariant.policies.base.EquivariantPolicyMixin`; the others are ``DQNPolicy``'s, with ``net_arch``
    in channels of the regular representation (default: SB3's ``[64, 64]`` read by ``sizing``).
    """

    def make_q_net(self) -> QNetwork:
        return self._initialized(EquivariantQNetwork(**self._equivariant_net_args()))


class EquivariantCnnDQNPolicy(EquivariantDQNPolicy):
    """:class:`EquivariantDQNPolicy` with :class:`EquivariantCnnExtractor` for image observations."""

    default_features_extractor_class = EquivariantCnnExtractor


class EquivariantQuantileNetwork(QuantileNetwork):
    """sb3-contrib's ``QuantileNetwork`` made equivariant: every quantile vector permutes with the actions."""

    def __init__(self, *args: Any, symmetry: Symmetry, basis: str = "equivariant", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.quantile_net = equivariant_q_head(
            self.features_extractor,
            symmetry,
            self.observation_space,
            self.net_arch,
            self.activation_fn,
            basis,
            copies=self.n_quantiles,
        )


class EquivariantQRDQNPolicy(_SymmetricNetArgs, QRDQNPolicy):
    """A ``QRDQNPolicy`` with an equivariant quantile network; same extra kwargs as :class:`EquivariantDQNPolicy`."""

    def make_quantile_net(self) -> QuantileNetwork:
        return self._initialized(EquivariantQuantileNetwork(**self._equivariant_net_args()))


class EquivariantCnnQRDQNPolicy(EquivariantQRDQNPolicy):
    """:class:`EquivariantQRDQNPolicy` with :class:`EquivariantCnnExtractor`."""

    default_features_extractor_class = EquivariantCnnExtractor


class ExportedQNetwork(nn.Module):
    """Plain-torch copy of an equivariant Q- or quantile network: ``forward(obs) -> q-values`` (or quantiles)."""

    def __init__(self, net: QNetwork | QuantileNetwork):
        super().__init__()
        self.preprocess = ObsPreprocessor(net.observation_space, net.normalize_images)
        self.features = export_module(net.features_extractor)
        self.head = export_module(net.q_net if isinstance(net, QNetwork) else net.quantile_net)
        self.output_shape = (-1, net.n_quantiles, int(net.action_space.n)) if isinstance(net, QuantileNetwork) else None
        self.eval()

    def forward(self, obs: th.Tensor) -> th.Tensor:
        out = self.head(self.features(self.preprocess(obs)))
        return out if self.output_shape is None else out.view(self.output_shape)
