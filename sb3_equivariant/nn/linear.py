"""Equivariant linear layer over channels of a representation."""

from __future__ import annotations

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_equivariant.nn.base import BasisLayer
from sb3_equivariant.representation import Representation, copies


class EquivariantLinear(BasisLayer):
    """
    ``y = W x + b`` with ``ρ_out(g) W = W ρ_in(g)`` for every ``g``: ``in_channels`` copies of ``rep_in`` map to
    ``out_channels`` copies of ``rep_out`` (channel-major layout, index ``c · dim + i``).

    Input ``[B, in_channels · rep_in.dim]`` (flat) or ``[B, in_channels, rep_in.dim]``; the output has the same layout.

    :param rep_in: representation of one input channel (e.g. the observation's signed permutation, or ``regular``).
    :param rep_out: representation of one output channel (``regular`` for hidden layers, the action permutation for
        logits, ``trivial`` for values).
    :param in_channels: number of input copies.
    :param out_channels: number of output copies.
    :param bias: learn an invariant bias.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"`` (the paper's ablations); ``basis=`` is a
        deprecated alias.
    :param seed: seed of the random basis.
    """

    in_field: Representation
    out_field: Representation

    def __init__(
        self,
        rep_in: Representation,
        rep_out: Representation,
        in_channels: int = 1,
        out_channels: int = 1,
        bias: bool = True,
        basis: str = "equivariant",
        seed: int = 0,
        *,
        basis_kind: str | None = None,
    ):
        super().__init__(rep_in, rep_out, in_channels, out_channels, bias, basis, seed, basis_kind=basis_kind)
        self.rep_in, self.rep_out = rep_in, rep_out
        self.in_features = in_channels * rep_in.dim
        self.out_features = out_channels * rep_out.dim
        self.in_field = copies(rep_in, in_channels)
        self.out_field = copies(rep_out, out_channels)

    def forward(self, x: th.Tensor) -> th.Tensor:
        weight, bias = self.weight_and_bias()
        if x.shape[-1] == self.in_features:
            return F.linear(x, weight, bias)
        if x.dim() >= 3 and x.shape[-2:] == (self.in_channels, self.rep_in.dim):
            return F.linear(x.flatten(-2), weight, bias).unflatten(-1, (self.out_channels, self.rep_out.dim))
        raise ValueError(
            f"{type(self).__name__} expects inputs [..., {self.in_features}] or [..., {self.in_channels}, "
            f"{self.rep_in.dim}], got shape {tuple(x.shape)}"
        )

    def export(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the same dense weight and bias (flat layout)."""
        with th.no_grad():
            weight, bias = self._build_weight(), self._build_bias()
            linear = nn.Linear(self.in_features, self.out_features, bias=bias is not None)
            linear.weight.copy_(weight)
            if bias is not None:
                linear.bias.copy_(bias)
        return linear.to(self.coefficients.device)

    def example_input(self, batch_size: int = 4) -> th.Tensor:
        return th.randn(batch_size, self.in_features, device=self.coefficients.device)

    def extra_repr(self) -> str:
        return (
            f"{self.rep_in.name} x{self.in_channels} -> {self.rep_out.name} x{self.out_channels}, "
            f"basis={self.basis}({self.basis_size}), bias={self.bias_coefficients is not None}"
        )
