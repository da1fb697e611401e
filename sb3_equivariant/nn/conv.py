"""Equivariant 2d convolution: lifting (image → regular channels) and group convolution (regular → regular)."""

from __future__ import annotations

import warnings

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_equivariant.nn.base import BasisLayer
from sb3_equivariant.representation import ImageAction, Representation, SpatialAction, copies, regular


class EquivariantConv2d(BasisLayer):
    """
    A convolution whose filters satisfy ``ρ_out(g) W = W (ρ_in ⊗ spatial)(g)`` on each ``k × k`` patch, so that
    transforming the input image (pixels by ``spatial``, channels by ``rep_in``) transforms the output feature map
    (pixels by ``spatial``, channels by ``rep_out``).

    A lifting layer has ``rep_in`` = the image's channel representation (usually trivial) and ``rep_out`` = regular;
    a group convolution has both regular. Channels are channel-major: index ``c · dim + i``.

    Exactness also needs the sampling grid to be symmetric: along every axis that the group reverses,
    ``(size + 2·padding − kernel_size)`` must be divisible by ``stride``; inputs that break this raise an error.

    :param spatial: how the group moves pixels (e.g. ``flip_action("vertical")``, ``rotation_action()``).
    :param rep_in: representation of one input channel block; default: the regular representation.
    :param rep_out: representation of one output channel block; default: the regular representation.
    :param in_channels: number of input blocks.
    :param out_channels: number of output blocks.
    :param kernel_size: square kernel size.
    :param stride: stride.
    :param padding: zero padding on every side.
    :param bias: learn an invariant bias.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"``; ``basis=`` is a deprecated alias.
    :param seed: seed of the random basis.
    """

    in_field: ImageAction
    out_field: ImageAction

    def __init__(
        self,
        spatial: SpatialAction,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        rep_in: Representation | None = None,
        rep_out: Representation | None = None,
        bias: bool = True,
        basis: str = "equivariant",
        seed: int = 0,
        *,
        basis_kind: str | None = None,
    ):
        if not isinstance(spatial, SpatialAction):
            raise TypeError(
                f"EquivariantConv2d expects a SpatialAction first (e.g. flip_action('vertical'), rotation_action()), "
                f"got {type(spatial).__name__}"
            )
        rep_in = regular(spatial.group) if rep_in is None else rep_in
        rep_out = regular(spatial.group) if rep_out is None else rep_out
        patch = ImageAction(spatial, rep_in).as_representation(kernel_size, kernel_size)
        super().__init__(patch, rep_out, in_channels, out_channels, bias, basis, seed, basis_kind=basis_kind)
        self.spatial = spatial
        # rep_in / rep_out act on one channel block of the feature maps, as the arguments; the filter basis is over
        # block_rep_in, one channel block's k × k patch (rep_in ⊗ the spatial action on the patch).
        self.rep_in, self.rep_out = rep_in, rep_out
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.in_field = ImageAction(spatial, copies(rep_in, in_channels))
        self.out_field = ImageAction(spatial, copies(rep_out, out_channels))
        self._moved_axes = spatial.moved_axes()

    @property
    def patch_rep(self) -> Representation:
        """The representation on one input channel block's ``k × k`` patch, over which the filter basis is built."""
        return self.block_rep_in

    @property
    def channel_rep_in(self) -> Representation:
        """Deprecated alias of :attr:`rep_in` (``rep_in`` was the patch representation before; see :attr:`patch_rep`)."""
        warnings.warn("EquivariantConv2d.channel_rep_in is deprecated: use rep_in", DeprecationWarning, stacklevel=2)
        return self.rep_in

    @property
    def in_planes(self) -> int:
        return self.in_channels * self.rep_in.dim

    @property
    def out_planes(self) -> int:
        return self.out_channels * self.rep_out.dim

    def output_size(self, size: int) -> int:
        return (size + 2 * self.padding - self.kernel_size) // self.stride + 1

    def check_input_shape(self, height: int, width: int) -> None:
        """Raise ``ValueError`` naming the cause if a ``height × width`` input cannot be processed exactly."""
        self.spatial.check_shape(height, width)
        for moved, size, axis in zip(self._moved_axes, (height, width), ("height", "width")):
            if moved and (size + 2 * self.padding - self.kernel_size) % self.stride:
                raise ValueError(
                    f"input {axis} {size} with kernel {self.kernel_size}, stride {self.stride}, padding {self.padding} "
                    f"is not exactly equivariant: ({size} + 2·{self.padding} − {self.kernel_size}) must be divisible by "
                    f"{self.stride}; change the padding or stride"
                )

    def forward(self, x: th.Tensor) -> th.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_planes:
            raise ValueError(f"{type(self).__name__} expects [B, {self.in_planes}, H, W], got shape {tuple(x.shape)}")
        self.check_input_shape(x.shape[2], x.shape[3])
        weight, bias = self.weight_and_bias()
        return F.conv2d(x, self._as_filter(weight), bias, stride=self.stride, padding=self.padding)

    def _as_filter(self, weight: th.Tensor) -> th.Tensor:
        return weight.reshape(self.out_planes, self.in_planes, self.kernel_size, self.kernel_size)

    def export(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` with the same dense filters and bias."""
        with th.no_grad():
            weight, bias = self._build_weight(), self._build_bias()
            conv = nn.Conv2d(self.in_planes, self.out_planes, self.kernel_size, self.stride, self.padding, bias=bias is not None)
            conv.weight.copy_(self._as_filter(weight))
            if bias is not None and conv.bias is not None:
                conv.bias.copy_(bias)
        return conv.to(self.coefficients.device)

    def example_input(self, batch_size: int = 2) -> th.Tensor:
        size = self.kernel_size + 2 * self.stride
        return th.randn(batch_size, self.in_planes, size, size, device=self.coefficients.device)

    def extra_repr(self) -> str:
        return (
            f"{self.spatial.name}: {self.rep_in.name} x{self.in_channels} -> {self.rep_out.name} x{self.out_channels}, "
            f"kernel={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"basis={self.basis}({self.basis_size})"
        )
