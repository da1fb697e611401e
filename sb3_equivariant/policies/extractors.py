"""Equivariant features extractors for image observations."""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.nn import EquivariantConv2d, EquivariantLinear, GlobalPool2d
from sb3_equivariant.policies.common import DEFAULT_SIZING, default_width
from sb3_equivariant.representation import ImageAction, copies, regular


class EquivariantCnnExtractor(BaseFeaturesExtractor):
    """
    An equivariant counterpart of SB3's ``NatureCNN``: a lifting convolution from the image (channels in their own
    representation, usually invariant) to regular channels, group convolutions, then either a flatten + equivariant
    linear layer (``pooling="flatten"``, as NatureCNN; keeps positions) or a global spatial pooling + equivariant
    linear layer (``"max"`` / ``"mean"``, as the paper's GridWorld net). The output is ``out_channels`` copies of the
    regular representation (``features_dim = out_channels · |G|``).

    Channel counts are in copies of the regular representation. ``None`` means NatureCNN's sizes read by ``sizing``
    (see :func:`~sb3_equivariant.policies.common.default_width`).

    :param observation_space: a channel-first image space.
    :param symmetry: the env's symmetry; its observation action must be an :class:`ImageAction`.
    :param channels: convolution channels; default NatureCNN's (32, 64, 64) read by ``sizing``.
    :param kernel_sizes: kernel sizes; default (8, 4, 3).
    :param strides: strides; default (4, 2, 1).
    :param paddings: paddings; default 0.
    :param features_channels: output channels; default NatureCNN's 512 read by ``sizing``.
    :param pooling: ``"flatten"``, ``"max"`` or ``"mean"``.
    :param activation_fn: activation (pointwise, so equivariant on regular channels).
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"``.
    :param sizing: how default widths are chosen: ``"parameters"`` (default: about NatureCNN's parameter count),
        ``"channels"`` or ``"units"`` (see :func:`~sb3_equivariant.policies.common.default_width`).
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        symmetry: Symmetry,
        channels: Sequence[int] | None = None,
        kernel_sizes: Sequence[int] = (8, 4, 3),
        strides: Sequence[int] = (4, 2, 1),
        paddings: Sequence[int] | None = None,
        features_channels: int | None = None,
        pooling: str = "flatten",
        activation_fn: type[nn.Module] = nn.ReLU,
        basis: str = "equivariant",
        sizing: str = DEFAULT_SIZING,
    ):
        action = symmetry.obs_action
        if not isinstance(action, ImageAction):
            raise SymmetryError(f"EquivariantCnnExtractor needs an image symmetry, {symmetry.name} acts on vectors")
        shape = observation_space.shape
        if len(shape) != 3 or shape[0] != action.channels:
            raise SymmetryError(
                f"EquivariantCnnExtractor expects channel-first images with {action.channels} channels, got {shape}"
            )
        group = action.group
        order = group.order
        channels = list(channels) if channels is not None else [default_width(c, order, sizing) for c in (32, 64, 64)]
        paddings = list(paddings) if paddings is not None else [0] * len(channels)
        if not len(channels) == len(kernel_sizes) == len(strides) == len(paddings):
            raise ValueError("channels, kernel_sizes, strides and paddings must have the same length")
        if pooling not in ("flatten", "max", "mean"):
            raise ValueError(f"pooling must be 'flatten', 'max' or 'mean', got {pooling!r}")
        features_channels = features_channels if features_channels is not None else default_width(512, order, sizing)
        super().__init__(observation_space, features_dim=features_channels * order)

        layers: list[nn.Module] = []
        height, width = shape[1], shape[2]
        rep_in, in_channels = action.channel_rep, 1
        for i, (c, k, s, p) in enumerate(zip(channels, kernel_sizes, strides, paddings)):
            conv = EquivariantConv2d(action.spatial, in_channels, c, k, s, p, rep_in=rep_in, basis_kind=basis)
            try:
                conv.check_input_shape(height, width)
            except ValueError as err:
                raise ValueError(f"conv layer {i} of EquivariantCnnExtractor on {shape} observations: {err}") from err
            layers += [conv, activation_fn()]
            height, width = conv.output_size(height), conv.output_size(width)
            rep_in, in_channels = regular(group), c
        if pooling == "flatten":
            flat = ImageAction(action.spatial, copies(regular(group), in_channels)).as_representation(height, width)
            head = EquivariantLinear(flat, regular(group), 1, features_channels, basis_kind=basis)
            layers += [nn.Flatten(), head, activation_fn()]
        else:
            head = EquivariantLinear(regular(group), regular(group), in_channels, features_channels, basis_kind=basis)
            layers += [GlobalPool2d(pooling), head, activation_fn()]
        self.cnn = nn.Sequential(*layers)
        self.out_rep = regular(group)
        self.out_channels = features_channels

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.cnn(observations)
