"""Pooling that keeps equivariance: over the group axis (invariant channels) and over space (invariant to moves)."""

from __future__ import annotations

import torch as th
from torch import nn

from sb3_equivariant.representation import Representation


class GroupPool(nn.Module):
    """
    Max or mean over each channel's group axis: ``[B, C · d, ...] → [B, C, ...]``.

    The result is invariant to the channel permutation, so it needs a permutation representation (a max over a
    sign-flipped axis would not be invariant).

    :param rep: the representation of one channel block (e.g. ``regular(group)``).
    :param channels: number of blocks ``C``.
    :param mode: ``"max"`` or ``"mean"``.
    """

    def __init__(self, rep: Representation, channels: int, mode: str = "max"):
        super().__init__()
        if not rep.is_permutation:
            raise ValueError(f"group pooling needs a permutation representation, got {rep} (signs are not invariant under max)")
        if mode not in ("max", "mean"):
            raise ValueError(f"mode must be 'max' or 'mean', got {mode!r}")
        self.rep, self.channels, self.mode = rep, channels, mode

    def forward(self, x: th.Tensor) -> th.Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels * self.rep.dim:
            raise ValueError(f"GroupPool expects [B, {self.channels * self.rep.dim}, ...], got shape {tuple(x.shape)}")
        grouped = x.unflatten(1, (self.channels, self.rep.dim))
        return grouped.amax(dim=2) if self.mode == "max" else grouped.mean(dim=2)

    def extra_repr(self) -> str:
        return f"{self.rep.name} x{self.channels}, mode={self.mode}"


class GlobalPool2d(nn.Module):
    """
    Max or mean over all pixels: ``[B, C, H, W] → [B, C]``; invariant to any permutation of pixels (flips, rotations),
    channels keep their representation.

    :param mode: ``"max"`` or ``"mean"``.
    """

    def __init__(self, mode: str = "max"):
        super().__init__()
        if mode not in ("max", "mean"):
            raise ValueError(f"mode must be 'max' or 'mean', got {mode!r}")
        self.mode = mode

    def forward(self, x: th.Tensor) -> th.Tensor:
        if x.dim() != 4:
            raise ValueError(f"GlobalPool2d expects [B, C, H, W], got shape {tuple(x.shape)}")
        return x.amax(dim=(2, 3)) if self.mode == "max" else x.mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"mode={self.mode}"
