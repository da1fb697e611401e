"""Actions of finite groups on images: how pixels move (:class:`SpatialAction`) and channels mix (:class:`ImageAction`).

Flips and quarter turns act on the last two axes of numpy arrays and torch tensors; :meth:`ImageAction.as_representation`
turns an action on images of a given size into a (signed) permutation :class:`Representation` on flattened arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch as th

from sb3_equivariant.group import Group, cyclic_group, dihedral_group, flip_group
from sb3_equivariant.representation_algebra import ArrayT, Representation, RepresentationError, _gather_sign, trivial


@dataclass(frozen=True)
class SpatialOp:
    """``x ↦ rot90(fliplr(x) if flip else x, rot)`` on the last two (H, W) axes; rot90 as numpy's (counter-clockwise)."""

    flip: bool = False
    rot: int = 0

    def apply(self, x: ArrayT, h_axis: int = -2, w_axis: int = -1) -> ArrayT:
        if isinstance(x, th.Tensor):
            if self.flip:
                x = th.flip(x, dims=(w_axis,))
            return th.rot90(x, self.rot % 4, dims=(h_axis, w_axis)) if self.rot % 4 else x
        if self.flip:
            x = np.flip(x, axis=w_axis)
        return np.rot90(x, self.rot % 4, axes=(h_axis, w_axis)) if self.rot % 4 else x

    @property
    def swaps_axes(self) -> bool:
        return self.rot % 2 == 1

    def reversed_axes(self) -> tuple[bool, bool]:
        """Whether the H and the W axis are moved (a 90° rotation moves both)."""
        if self.swaps_axes:
            return True, True
        half_turn = self.rot % 4 == 2
        return half_turn, self.flip != half_turn


class SpatialAction:
    """
    How each group element moves the pixel grid: one :class:`SpatialOp` per element, validated as a group action.

    :param group: the group.
    :param ops: ``ops[g]`` for every element ``g``.
    """

    def __init__(self, group: Group, ops: Sequence[SpatialOp], name: str = "spatial"):
        if len(ops) != group.order:
            raise RepresentationError(f"{name}: {len(ops)} spatial ops given for {group.name} of order {group.order}")
        self.group = group
        self.ops = tuple(ops)
        self.name = name
        probe = np.arange(25).reshape(5, 5) if self.rotates else np.arange(20).reshape(4, 5)
        if not np.array_equal(self.ops[0].apply(probe), probe):
            raise RepresentationError(f"{name}: the identity element must leave images unchanged")
        for g in group.elements:
            for h in group.elements:
                if not np.array_equal(self.ops[g].apply(self.ops[h].apply(probe)), self.ops[group.mul(g, h)].apply(probe)):
                    raise RepresentationError(f"{name}: not a group action: op({g}) op({h}) != op({g}·{h})")

    @property
    def rotates(self) -> bool:
        """True when some element rotates by 90° (images must then be square)."""
        return any(op.swaps_axes for op in self.ops)

    def moved_axes(self) -> tuple[bool, bool]:
        """Whether any element reverses or moves the H axis, and the W axis."""
        h = w = False
        for op in self.ops:
            rh, rw = op.reversed_axes()
            h, w = h or rh, w or rw
        return h, w

    def check_shape(self, height: int, width: int) -> None:
        if self.rotates and height != width:
            raise RepresentationError(f"{self.name}: 90° rotations need square images, got {height}x{width}")

    def __repr__(self) -> str:
        return f"SpatialAction({self.name}, group={self.group.name})"


def flip_action(axis: str = "vertical") -> SpatialAction:
    """C2 flipping images: ``axis="vertical"`` mirrors top↔bottom (Pong), ``"horizontal"`` left↔right (Breakout)."""
    if axis == "vertical":
        op = SpatialOp(flip=True, rot=2)
    elif axis == "horizontal":
        op = SpatialOp(flip=True, rot=0)
    else:
        raise RepresentationError(f"flip axis must be 'vertical' or 'horizontal', got {axis!r}")
    return SpatialAction(flip_group(), [SpatialOp(), op], name=f"{axis}_flip")


def rotation_action() -> SpatialAction:
    """C4 rotating images by multiples of 90° counter-clockwise (element k: k quarter turns)."""
    return SpatialAction(cyclic_group(4), [SpatialOp(rot=k) for k in range(4)], name="rot90")


def dihedral_action() -> SpatialAction:
    """D4 on images: element ``k`` rotates by ``k`` quarter turns, element ``4 + k`` flips left↔right then rotates."""
    ops = [SpatialOp(rot=k) for k in range(4)] + [SpatialOp(flip=True, rot=k) for k in range(4)]
    return SpatialAction(dihedral_group(4), ops, name="dihedral")


class ImageAction:
    """
    A group acting on images: pixels move by a :class:`SpatialAction`, channels mix by a representation.

    :param spatial: how each element moves the grid.
    :param channel_rep: representation on the channel axis; default: ``channels`` invariant channels.
    :param channels: number of channels when ``channel_rep`` is not given.
    :param layout: ``"CHW"`` (SB3 after ``VecTransposeImage``, torch) or ``"HWC"`` (raw gymnasium images).
    """

    def __init__(
        self,
        spatial: SpatialAction,
        channel_rep: Representation | None = None,
        channels: int | None = None,
        layout: str = "CHW",
    ):
        if channel_rep is None:
            if channels is None:
                raise RepresentationError("ImageAction needs channel_rep or channels")
            channel_rep = trivial(spatial.group, channels)
        elif channel_rep.group != spatial.group:
            raise RepresentationError(
                f"channel representation is of {channel_rep.group.name}, spatial action of {spatial.group.name}"
            )
        elif channels is not None and channels != channel_rep.dim:
            raise RepresentationError(f"channels={channels} does not match the channel representation's dim {channel_rep.dim}")
        if layout not in ("CHW", "HWC"):
            raise RepresentationError(f"layout must be 'CHW' or 'HWC', got {layout!r}")
        self.spatial = spatial
        self.channel_rep = channel_rep
        self.layout = layout

    @property
    def group(self) -> Group:
        return self.spatial.group

    @property
    def channels(self) -> int:
        return self.channel_rep.dim

    def __len__(self) -> int:
        return self.group.order

    def __repr__(self) -> str:
        return f"ImageAction({self.spatial.name}, channels={self.channels}, layout={self.layout})"

    @property
    def _axes(self) -> tuple[int, int, int]:
        """(channel, height, width) axes counted from the end."""
        return (-3, -2, -1) if self.layout == "CHW" else (-1, -3, -2)

    def with_layout(self, layout: str) -> ImageAction:
        return ImageAction(self.spatial, self.channel_rep, layout=layout)

    def transform(self, x: ArrayT, g: int) -> ArrayT:
        """Apply element ``g`` to an image or a batch of images (numpy or torch, leading batch dims)."""
        c_axis, h_axis, w_axis = self._axes
        if x.ndim < 3 or x.shape[c_axis] != self.channels:
            raise RepresentationError(
                f"expected images with {self.channels} channels in {self.layout} layout, got shape {tuple(x.shape)}"
            )
        self.spatial.check_shape(x.shape[h_axis], x.shape[w_axis])
        out = self.spatial.ops[g].apply(x, h_axis, w_axis)
        if isinstance(out, np.ndarray):
            out = np.ascontiguousarray(out)  # flips/rotations are negative-stride views; torch.as_tensor refuses those
        if self.channel_rep.is_trivial():
            return out
        if self.channel_rep.is_monomial:
            src, sign = self.channel_rep.gather_form(g)
            return _gather_sign(out, src, sign, axis=c_axis)
        moved = th.movedim(out, c_axis, -1) if isinstance(out, th.Tensor) else np.moveaxis(out, c_axis, -1)
        mixed = self.channel_rep.apply(moved, g)
        return th.movedim(mixed, -1, c_axis) if isinstance(mixed, th.Tensor) else np.moveaxis(mixed, -1, c_axis)

    def as_representation(self, height: int, width: int) -> Representation:
        """The representation on flattened ``(C, height, width)`` arrays, channel-major (filters, flattened maps)."""
        self.spatial.check_shape(height, width)
        dim = self.channels * height * width
        chw = self if self.layout == "CHW" else self.with_layout("CHW")
        name = f"{self.spatial.name}[{self.channels}x{height}x{width}]"
        if self.channel_rep.is_monomial:
            # Transform an image of (index + 1): y[j] = sign_j · (src[j] + 1) gives the gather form directly.
            index_image = (np.arange(dim, dtype=np.float64) + 1).reshape(self.channels, height, width)
            perms = np.empty((self.group.order, dim), dtype=np.int64)
            signs = np.empty((self.group.order, dim))
            for g in self.group.elements:
                moved = np.ascontiguousarray(chw.transform(index_image, g)).ravel()
                src = np.abs(moved).astype(np.int64) - 1
                perms[g, src] = np.arange(dim)
                signs[g, src] = np.sign(moved)
            return Representation.from_monomial(self.group, perms, signs, name=name)
        basis = np.eye(dim).reshape(dim, self.channels, height, width)
        mats = np.stack([np.ascontiguousarray(chw.transform(basis, g)).reshape(dim, dim).T for g in self.group.elements])
        return Representation(self.group, mats, name=name)


__all__ = ["ImageAction", "SpatialAction", "SpatialOp", "dihedral_action", "flip_action", "rotation_action"]
