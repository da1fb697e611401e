"""Equivariant Q-networks for DQN and sb3-contrib's QR-DQN: ``Q(L_g s, K_g a) = Q(s, a)``."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.nn import EquivariantLinear
from sb3_equivariant.policies.common import (
    DEFAULT_SIZING,
    ObsPreprocessor,
    check_sizing,
    default_width,
    equivariant_mlp,
    export_module,
    extractor_kwargs,
    features_field,
    resolve_symmetry,
)
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor
from sb3_equivariant.policies.pairing import check_pairing


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
    head = EquivariantLinear(rep, symmetry.action_rep, channels, copies, basis_kind=basis)
    head.reset_parameters(1.0)
    return nn.Sequential(*body, head)


class _SymmetricNetArgs:
    """Resolve the symmetry before SB3 builds the networks, and save it with the policy."""

    net_args: dict[str, Any]
    symmetry: Symmetry
    basis: str
    sizing: str | None

    def _prepare(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        symmetry: Symmetry | str | None,
        basis: str,
        net_arch: list[int] | None,
        features_extractor_class: type[BaseFeaturesExtractor],
        features_extractor_kwargs: dict[str, Any] | None,
        sizing: str | None,
    ) -> dict[str, Any]:
        """Resolve the symmetry before SB3 builds anything; return the kwargs to pass on to SB3's ``__init__``."""
        check_pairing(type(self))  # type: ignore[arg-type]
        self.symmetry = resolve_symmetry(symmetry, observation_space, action_space, basis)
        self.basis = basis
        self.sizing = None if sizing is None else check_sizing(sizing)
        if net_arch is None:
            cnn = features_extractor_class is EquivariantCnnExtractor
            net_arch = [] if cnn else [default_width(64, len(self.symmetry), sizing or DEFAULT_SIZING)] * 2
        return dict(
            net_arch=net_arch,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=extractor_kwargs(
                features_extractor_class, features_extractor_kwargs, self.symmetry, basis, sizing
            ),
        )

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

    :param symmetry: the env's :class:`Symmetry` or a registered env id; default: found on the algorithm's env.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"``.
    :param net_arch: hidden widths in regular channels; default SB3's ``[64, 64]`` read by ``sizing``.
    :param sizing: how default widths are chosen: ``"channels"``, ``"parameters"`` (default) or ``"units"`` (see
        :class:`~sb3_equivariant.policies.EquivariantActorCriticPolicy`).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        symmetry: Symmetry | str | None = None,
        basis: str = "equivariant",
        sizing: str | None = None,
        **kwargs: Any,
    ):
        kwargs |= self._prepare(
            observation_space,
            action_space,
            symmetry,
            basis,
            net_arch,
            features_extractor_class,
            features_extractor_kwargs,
            sizing,
        )
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def make_q_net(self) -> QNetwork:
        return EquivariantQNetwork(**self._equivariant_net_args()).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "symmetry": self.symmetry, "basis": self.basis, "sizing": self.sizing}


class EquivariantCnnDQNPolicy(EquivariantDQNPolicy):
    """:class:`EquivariantDQNPolicy` with :class:`EquivariantCnnExtractor` for image observations."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] = EquivariantCnnExtractor,
        **kwargs: Any,
    ):
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch, features_extractor_class=features_extractor_class, **kwargs
        )


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

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_quantiles: int = 200,
        net_arch: list[int] | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        symmetry: Symmetry | str | None = None,
        basis: str = "equivariant",
        sizing: str | None = None,
        **kwargs: Any,
    ):
        kwargs |= self._prepare(
            observation_space,
            action_space,
            symmetry,
            basis,
            net_arch,
            features_extractor_class,
            features_extractor_kwargs,
            sizing,
        )
        super().__init__(observation_space, action_space, lr_schedule, n_quantiles=n_quantiles, **kwargs)

    def make_quantile_net(self) -> QuantileNetwork:
        return EquivariantQuantileNetwork(**self._equivariant_net_args()).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "symmetry": self.symmetry, "basis": self.basis, "sizing": self.sizing}


class EquivariantCnnQRDQNPolicy(EquivariantQRDQNPolicy):
    """:class:`EquivariantQRDQNPolicy` with :class:`EquivariantCnnExtractor`."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_quantiles: int = 200,
        net_arch: list[int] | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] = EquivariantCnnExtractor,
        **kwargs: Any,
    ):
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            n_quantiles,
            net_arch,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )


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
