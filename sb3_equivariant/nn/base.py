"""Shared machinery of the equivariant layers: coefficients over a fixed basis, the eval-mode weight cache, checks."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch as th
from torch import nn

from sb3_equivariant.representation import ImageAction, Representation
from sb3_equivariant.symmetrizer import BASIS_KINDS, basis, bias_basis

FieldType = Representation | ImageAction


def act(field: FieldType, x: th.Tensor, g: int) -> th.Tensor:
    """Transform a feature tensor by element ``g``: vectors ``[..., d]`` or images ``[..., C, H, W]``."""
    if isinstance(field, ImageAction):
        return field.transform(x, g)
    return field.apply(x, g)


class BasisLayer(nn.Module):
    """
    Base of every layer whose weight is a linear combination of a fixed basis.

    The dense weight ``W[c_out, r_out, c_in, r_in] = Σ_b coef[b, c_out, c_in] basis[b, r_out, r_in]`` is built with one
    matrix product. In train mode (or whenever gradients are needed) it is rebuilt on every forward; in eval mode
    without gradients it is built once and reused until the coefficients change (tracked by the tensors' version
    counters, so ``load_state_dict`` and optimiser steps invalidate it). The basis and the cache are not part of the
    ``state_dict``: a module saved in one mode loads strictly in the other.

    :param rep_in: representation on one input channel block (``r_in`` may include the filter's spatial positions).
    :param rep_out: representation on one output channel block.
    :param in_channels: number of input blocks.
    :param out_channels: number of output blocks.
    :param bias: add a bias from the invariant subspace of ``rep_out`` (nothing if that subspace is empty).
    :param basis_kind: ``"equivariant"`` (default), or the paper's ablations ``"nullspace"`` / ``"random"``.
    :param seed: seed of the random basis (``basis_kind="random"`` only).
    """

    in_field: FieldType
    out_field: FieldType
    weight_basis: th.Tensor
    bias_basis: th.Tensor
    _gather_index: th.Tensor
    _gather_scale: th.Tensor

    def __init__(
        self,
        rep_in: Representation,
        rep_out: Representation,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        basis_kind: str = "equivariant",
        seed: int = 0,
    ):
        super().__init__()
        if basis_kind not in BASIS_KINDS:
            raise ValueError(f"unknown basis {basis_kind!r}; choose one of {BASIS_KINDS}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channels must be >= 1, got in_channels={in_channels}, out_channels={out_channels}")
        weight_basis = basis(basis_kind, rep_in, rep_out, seed)
        if len(weight_basis) == 0:
            raise ValueError(
                f"no {basis_kind} linear map exists from {rep_in} to {rep_out}: the basis is empty "
                "(e.g. nothing maps invariant inputs to sign-flipping outputs)"
            )
        self.rep_in, self.rep_out = rep_in, rep_out
        self.in_channels, self.out_channels = in_channels, out_channels
        self.basis_kind = basis_kind
        self.register_buffer("weight_basis", th.as_tensor(np.array(weight_basis), dtype=th.float32), persistent=False)
        self.coefficients = nn.Parameter(th.empty(out_channels, len(weight_basis), in_channels))
        b_basis = bias_basis(basis_kind, rep_out, seed) if bias else np.zeros((0, rep_out.dim))
        self.register_buffer("bias_basis", th.as_tensor(np.array(b_basis), dtype=th.float32), persistent=False)
        self.bias_coefficients = nn.Parameter(th.zeros(out_channels, len(b_basis))) if len(b_basis) else None
        self._register_gather_index(np.asarray(weight_basis))
        self._cache: tuple[tuple[Any, ...], th.Tensor, th.Tensor | None] | None = None
        self.reset_parameters()

    @property
    def fan_in(self) -> int:
        return self.in_channels * self.rep_in.dim

    def reset_parameters(self, gain: float = math.sqrt(2)) -> None:
        """
        Variance-preserving init over the basis: each dense weight entry has, on average, variance ``gain² / fan_in``
        (He for ``gain=√2``), whatever the basis size. Bias coefficients start at zero, as in SB3.
        """
        n_basis, r_out, r_in = self.weight_basis.shape
        std = gain * math.sqrt(r_out * r_in / (n_basis * self.fan_in))
        with th.no_grad():
            self.coefficients.normal_(0.0, std)
            if self.bias_coefficients is not None:
                self.bias_coefficients.zero_()

    @property
    def num_free_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _register_gather_index(self, weight_basis: np.ndarray) -> None:
        """
        Orbit (weight-tying) bases touch every dense entry at most once: then the dense weight is a gather of the
        coefficients times a fixed scale, straight into the ``(C_out·r_out, C_in·r_in)`` layout, which is cheaper
        than a matrix product followed by a transpose. Other bases (nullspace, random, non-monomial) use the product.
        """
        n_basis = len(weight_basis)
        nonzero = np.abs(weight_basis) > 1e-12
        self._gather = bool(np.all(nonzero.sum(axis=0) <= 1))
        if not self._gather:
            return
        owner = np.argmax(nonzero, axis=0)  # (r_out, r_in): the basis element of each entry
        scale = np.take_along_axis(weight_basis, owner[None], axis=0)[0]
        co, ci = self.out_channels, self.in_channels
        # coefficients are (C_out, n_basis, C_in): flat index = c_out·n_basis·C_in + b·C_in + c_in
        index = (
            np.arange(co)[:, None, None, None] * (n_basis * ci)
            + owner[None, :, None, :] * ci
            + np.arange(ci)[None, None, :, None]
        )
        self.register_buffer("_gather_index", th.as_tensor(index.reshape(-1), dtype=th.long), persistent=False)
        self.register_buffer("_gather_scale", th.as_tensor(scale[None, :, None, :], dtype=th.float32), persistent=False)

    def _build_weight(self) -> th.Tensor:
        co, ci = self.out_channels, self.in_channels
        n_basis, r_out, r_in = self.weight_basis.shape
        if self._gather:
            tied = th.gather(self.coefficients.reshape(-1), 0, self._gather_index).view(co, r_out, ci, r_in)
            return (tied * self._gather_scale).view(co * r_out, ci * r_in)
        # W[o, r, i, s] = Σ_b coef[o, b, i] basis[b, r, s], one batched product over output channels
        flat = self.coefficients.transpose(1, 2).reshape(co * ci, n_basis) @ self.weight_basis.reshape(n_basis, r_out * r_in)
        return flat.view(co, ci, r_out, r_in).transpose(1, 2).reshape(co * r_out, ci * r_in)

    def _build_bias(self) -> th.Tensor | None:
        if self.bias_coefficients is None:
            return None
        return (self.bias_coefficients @ self.bias_basis).reshape(-1)

    def _cache_key(self) -> tuple[Any, ...]:
        # In-place updates bump _version; .to() / load with assign / new tensors change data_ptr.
        coef, bias = self.coefficients, self.bias_coefficients
        if bias is None:
            return coef._version, coef.data_ptr()
        return coef._version, coef.data_ptr(), bias._version, bias.data_ptr()

    def weight_and_bias(self) -> tuple[th.Tensor, th.Tensor | None]:
        """The dense ``(C_out·r_out, C_in·r_in)`` weight and the bias; cached in eval mode when no gradient is needed."""
        if self.training or (th.is_grad_enabled() and self.coefficients.requires_grad):
            self._cache = None
            return self._build_weight(), self._build_bias()
        key = self._cache_key()
        cache = self._cache
        if cache is None or cache[0] != key:
            cache = self._cache = (key, self._build_weight(), self._build_bias())
        return cache[1], cache[2]

    def check_equivariance(self, x: th.Tensor | None = None, atol: float = 1e-5) -> float:
        """Max error ``|f(g·x) − g·f(x)|`` over every group element on ``x`` (random input if not given)."""
        if x is None:
            x = self.example_input()
        return check_equivariance(self, x, self.in_field, self.out_field, atol=atol)

    def example_input(self, batch_size: int = 4) -> th.Tensor:
        """A random input batch of the right shape."""
        raise NotImplementedError

    def export(self) -> nn.Module:
        """The plain torch layer (dense weight) with the same outputs."""
        raise NotImplementedError


def check_equivariance(
    module: nn.Module,
    x: th.Tensor,
    in_transform: FieldType | Callable[[th.Tensor, int], th.Tensor],
    out_transform: FieldType | Callable[[th.Tensor, int], th.Tensor],
    elements: Sequence[int] | None = None,
    atol: float | None = None,
) -> float:
    """
    Max absolute error of ``module(in(g)·x) − out(g)·module(x)`` over the group elements.

    :param module: any module (a layer, a whole network, a policy's sub-network).
    :param x: an input batch.
    :param in_transform: how ``g`` acts on inputs: a representation / image action, or a callable ``(x, g) -> x'``.
    :param out_transform: how ``g`` acts on outputs (a trivial representation for invariant outputs).
    :param elements: elements to check; default all elements of the group of the given field types.
    :param atol: if given, raise ``AssertionError`` naming the worst element when the error exceeds it.
    :return: the maximum error.
    """
    apply_in = _as_callable(in_transform)
    apply_out = _as_callable(out_transform)
    if elements is None:
        field = in_transform if isinstance(in_transform, (Representation, ImageAction)) else out_transform
        if not isinstance(field, (Representation, ImageAction)):
            raise ValueError("pass `elements` when both transforms are callables")
        elements = list(field.group.elements)
    with th.no_grad():
        y = module(x)
        errors = {g: float((module(apply_in(x, g)) - apply_out(y, g)).abs().max()) for g in elements}
    worst = max(errors, key=errors.__getitem__)
    if atol is not None and errors[worst] > atol:
        raise AssertionError(f"{type(module).__name__} is not equivariant: error {errors[worst]:.3g} at element {worst}")
    return errors[worst]


def _as_callable(t: FieldType | Callable[[th.Tensor, int], th.Tensor]) -> Callable[[th.Tensor, int], th.Tensor]:
    if isinstance(t, (Representation, ImageAction)):
        return lambda x, g: act(t, x, g)
    return t
