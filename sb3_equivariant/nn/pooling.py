"""Pooling that keeps equivariance: over the group axis (invariant channels) and over space (invariant to moves)."""

from __future__ import annotations

import torch as th
from torch import nn

from sb3_equivariant.nn.base import EquivariantModule
from sb3_equivariant.representation import ImageAction, Representation, SpatialAction, copies, trivial
from sb3_equivariant.representation_algebra import require_representation

POOL_MODES = ("max", "mean")


def _check_mode(mode: str) -> str:
    if mode not in POOL_MODES:
        raise ValueError(f"mode must be 'max' or 'mean', got {mode!r}")
    return mode


class GroupPool(EquivariantModule):
    """
    Max or mean over each channel's group axis: ``[B, C · d, ...] → [B, C, ...]``.

    The result is invariant to the channel permutation, so it needs a permutation representation (a max over a
    sign-flipped axis would not be invariant).

    Declared types: ``channels`` copies of ``rep`` in, ``channels`` invariant features out, on vectors ``[B, C · d]``,
    or with ``spatial`` on feature maps ``[B, C · d, H, W]`` whose pixels move by ``spatial``.

    :param rep: the representation of one channel block (e.g. ``regular(group)``).
    :param channels: number of blocks ``C``.
    :param mode: ``"max"`` or ``"mean"``.
    :param spatial: how the group moves the pixels of feature-map inputs; ``None`` for vector inputs.
    """

    def __init__(self, rep: Representation, channels: int, mode: str = "max", spatial: SpatialAction | None = None):
        super().__init__()
        require_representation(rep, "GroupPool")
        if not rep.is_permutation:
            raise ValueError(f"group pooling needs a permutation representation, got {rep} (signs are not invariant under max)")
        self.rep, self.channels, self.mode, self.spatial = rep, channels, _check_mode(mode), spatial
        stacked, pooled = copies(rep, channels), trivial(rep.group, channels)
        if spatial is None:
            self.in_field, self.out_field = stacked, pooled
        else:
            self.in_field, self.out_field = ImageAction(spatial, stacked), ImageAction(spatial, pooled)

    def forward(self, x: th.Tensor) -> th.Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels * self.rep.dim:
            raise ValueError(f"GroupPool expects [B, {self.channels * self.rep.dim}, ...], got shape {tuple(x.shape)}")
        grouped = x.unflatten(1, (self.channels, self.rep.dim))
        return grouped.amax(dim=2) if self.mode == "max" else grouped.mean(dim=2)

    def export(self) -> nn.Module:
        """The same pooling from torch's own layers: group axis to a pooling axis, pooled in one window."""
        d = self.rep.dim
        if self.spatial is None:  # [B, C·d] -> [B, C, d] -> pool the last axis
            pool: nn.Module = nn.MaxPool1d(d) if self.mode == "max" else nn.AvgPool1d(d)
            return nn.Sequential(nn.Unflatten(1, (self.channels, d)), pool, nn.Flatten(1))
        # [B, C·d, H, W] -> [B, 1, C·d, H, W] -> windows of d along the channel axis -> [B, C, H, W]
        pool = nn.MaxPool3d((d, 1, 1)) if self.mode == "max" else nn.AvgPool3d((d, 1, 1))
        return nn.Sequential(nn.Unflatten(1, (1, self.channels * d)), pool, nn.Flatten(1, 2))

    def example_input(self, batch_size: int = 2) -> th.Tensor:
        planes = self.channels * self.rep.dim
        return th.randn(batch_size, planes) if self.spatial is None else th.randn(batch_size, planes, 5, 5)

    def extra_repr(self) -> str:
        return f"{self.rep.name} x{self.channels}, mode={self.mode}"


class GlobalPool2d(EquivariantModule):
    """
    Max or mean over all pixels: ``[B, C, H, W] → [B, C]``; invariant to any permutation of pixels (flips, rotations),
    channels keep their representation.

    Declared types: ``field`` in (the action on the input maps), its channel representation out. Without ``field``
    the module is a plain pooling (the standard networks of a comparison) and declares no types.

    :param mode: ``"max"`` or ``"mean"``.
    :param field: the group's action on the input feature maps (e.g. the ``out_field`` of the convolution before).
    """

    def __init__(self, mode: str = "max", field: ImageAction | None = None):
        super().__init__()
        self.mode = _check_mode(mode)
        self.field = field
        self.in_field = field
        self.out_field = None if field is None else field.channel_rep

    def forward(self, x: th.Tensor) -> th.Tensor:
        if x.dim() != 4:
            raise ValueError(f"GlobalPool2d expects [B, C, H, W], got shape {tuple(x.shape)}")
        return x.amax(dim=(2, 3)) if self.mode == "max" else x.mean(dim=(2, 3))

    def export(self) -> nn.Module:
        """torch's adaptive pooling to one pixel, flattened."""
        pool = nn.AdaptiveMaxPool2d(1) if self.mode == "max" else nn.AdaptiveAvgPool2d(1)
        return nn.Sequential(pool, nn.Flatten(1))

    def example_input(self, batch_size: int = 2) -> th.Tensor:
        channels = 3 if self.field is None else self.field.channels
        return th.randn(batch_size, channels, 6, 6)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"
