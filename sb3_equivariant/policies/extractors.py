"""Equivariant features extractors: the base class the policies recognize, and the equivariant NatureCNN."""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.nn import EquivariantConv2d, EquivariantLinear, GlobalPool2d
from sb3_equivariant.nn.base import EquivariantModule, FieldType, export_plain
from sb3_equivariant.policies.common import DEFAULT_SIZING, default_width
from sb3_equivariant.representation import ImageAction, Representation, copies, regular


class EquivariantFeaturesExtractor(BaseFeaturesExtractor, EquivariantModule):
    """
    Base of the features extractors the equivariant policies accept (with SB3's ``FlattenExtractor``): an SB3
    extractor that follows the :class:`~sb3_equivariant.nn.base.EquivariantModule` contract. Its features are
    ``out_channels`` copies of ``out_rep`` (``features_dim = out_channels · out_rep.dim``), which is what the policy's
    equivariant heads are built on.

    A subclass sets ``in_field`` (the symmetry's action on observations), ``out_rep`` and ``out_channels``, and
    implements ``forward``, ``example_input`` and ``export`` (usually :func:`~sb3_equivariant.nn.base.export_plain` of
    its network).

    :param observation_space: the observation space.
    :param out_rep: representation of one feature channel (e.g. ``regular(group)``).
    :param out_channels: number of feature channels.
    """

    def __init__(self, observation_space: spaces.Space, out_rep: Representation, out_channels: int):
        super().__init__(observation_space, features_dim=out_channels * out_rep.dim)
        self.out_rep, self.out_channels = out_rep, out_channels

    @property
    def out_field(self) -> FieldType:  # type: ignore[override]
        return copies(self.out_rep, self.out_channels)


class EquivariantCnnExtractor(EquivariantFeaturesExtractor):
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
        super().__init__(observation_space, regular(group), features_channels)
        self.in_field = action

        layers: list[nn.Module] = []
        height, width = shape[1], shape[2]
        maps: ImageAction = action  # the action on the current feature maps
        rep_in, in_channels = action.channel_rep, 1
        for i, (c, k, s, p) in enumerate(zip(channels, kernel_sizes, strides, paddings)):
            conv = EquivariantConv2d(action.spatial, in_channels, c, k, s, p, rep_in=rep_in, basis=basis)
            try:
                conv.check_input_shape(height, width)
            except ValueError as err:
                raise ValueError(f"conv layer {i} of EquivariantCnnExtractor on {shape} observations: {err}") from err
            layers += [conv, activation_fn()]
            height, width, maps = conv.output_size(height), conv.output_size(width), conv.out_field
            rep_in, in_channels = regular(group), c
        if pooling == "flatten":
            flat = ImageAction(action.spatial, copies(regular(group), in_channels)).as_representation(height, width)
            head = EquivariantLinear(flat, regular(group), 1, features_channels, basis=basis)
            layers += [nn.Flatten(), head, activation_fn()]
        else:
            head = EquivariantLinear(regular(group), regular(group), in_channels, features_channels, basis=basis)
            layers += [GlobalPool2d(pooling, field=maps), head, activation_fn()]
        self.cnn = nn.Sequential(*layers)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.cnn(observations)

    def export(self) -> nn.Module:
        """The CNN with plain ``nn.Conv2d`` / ``nn.Linear`` layers and torch's pooling."""
        return export_plain(self.cnn)

    def example_input(self, batch_size: int = 2) -> th.Tensor:
        shape = self._observation_space.shape
        assert shape is not None
        return th.rand(batch_size, *shape)  # SB3 scales images to [0, 1] first
