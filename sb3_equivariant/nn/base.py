"""Shared machinery of the equivariant layers: coefficients over a fixed basis, the eval-mode weight cache, checks."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch as th
from torch import nn

from sb3_equivariant.representation import ImageAction, Representation
from sb3_equivariant.symmetrizer import BASIS_KINDS, basis, bias_basis, orbit_basis

FieldType = Representation | ImageAction


def act(field: FieldType, x: th.Tensor, g: int) -> th.Tensor:
    """Transform a feature tensor by element ``g``: vectors ``[..., d]`` or images ``[..., C, H, W]``."""
    if isinstance(field, ImageAction):
        return field.transform(x, g)
    return field.apply(x, g)


class BasisLayer(nn.Module):
    """
    Base of every layer whose weight is a linear combination of a fixed basis.

    The dense weight is ``W[c_out, r_out, c_in, r_in] = Σ_b coef[c_out, b, c_in] basis[b, r_out, r_in]``. For the
    equivariant basis of (signed) permutation representations (weight tying: every entry belongs to at most one basis
    element) it is a gather of the coefficients times a fixed scale, and the dense basis is never built
    (:class:`~sb3_equivariant.symmetrizer.OrbitBasis`: memory linear in the weight's size, shared by every layer with
    the same representations). Other bases (nullspace, random, non-monomial representations) are kept dense and
    contracted with one matrix product. In train mode (or whenever gradients are needed) the weight is rebuilt on
    every forward; in eval mode without gradients it is built once and reused until the coefficients change (tracked
    by the tensors' version counters, so ``load_state_dict`` and optimizer steps invalidate it). Bases and the cache
    are not part of the ``state_dict``: a module saved in one mode loads strictly in the other.

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
    weight_basis: th.Tensor | None
    bias_basis: th.Tensor
    _basis_owner: th.Tensor | None
    _basis_scale: th.Tensor | None

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
        sparse = orbit_basis(rep_in, rep_out) if basis_kind == "equivariant" else None
        dense = None if sparse is not None else basis(basis_kind, rep_in, rep_out, seed)
        self.basis_size = sparse.size if sparse is not None else len(dense)  # type: ignore[arg-type]
        if self.basis_size == 0:
            raise ValueError(
                f"no {basis_kind} linear map exists from {rep_in} to {rep_out}: the basis is empty "
                "(e.g. nothing maps invariant inputs to sign-flipping outputs)"
            )
        self.rep_in, self.rep_out = rep_in, rep_out
        self.in_channels, self.out_channels = in_channels, out_channels
        self.basis_kind = basis_kind
        if sparse is not None:
            owner = th.tensor(sparse.owner.reshape(-1), dtype=th.long)
            scale = th.tensor(sparse.scale, dtype=th.float32)[None, :, :, None]  # (1, r_out, r_in, 1)
            self.register_buffer("_basis_owner", owner, persistent=False)
            self.register_buffer("_basis_scale", scale, persistent=False)
            self.register_buffer("weight_basis", None, persistent=False)
        else:
            self.register_buffer("_basis_owner", None, persistent=False)
            self.register_buffer("_basis_scale", None, persistent=False)
            self.register_buffer("weight_basis", th.as_tensor(np.array(dense), dtype=th.float32), persistent=False)
        self.coefficients = nn.Parameter(th.empty(out_channels, self.basis_size, in_channels))
        b_basis = bias_basis(basis_kind, rep_out, seed) if bias else np.zeros((0, rep_out.dim))
        self.register_buffer("bias_basis", th.as_tensor(np.array(b_basis), dtype=th.float32), persistent=False)
        self.bias_coefficients = nn.Parameter(th.zeros(out_channels, len(b_basis))) if len(b_basis) else None
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
        std = gain * math.sqrt(self.rep_out.dim * self.rep_in.dim / (self.basis_size * self.fan_in))
        with th.no_grad():
            self.coefficients.normal_(0.0, std)
            if self.bias_coefficients is not None:
                self.bias_coefficients.zero_()

    def _build_weight(self) -> th.Tensor:
        co, ci = self.out_channels, self.in_channels
        r_out, r_in = self.rep_out.dim, self.rep_in.dim
        if self._basis_owner is not None and self._basis_scale is not None:
            # W[o, r, i, s] = scale[r, s] · coef[o, owner[r, s], i]: one gather along the basis axis
            tied = self.coefficients.index_select(1, self._basis_owner).view(co, r_out, r_in, ci) * self._basis_scale
            return tied.transpose(2, 3).reshape(co * r_out, ci * r_in)
        assert self.weight_basis is not None
        # W[o, r, i, s] = Σ_b coef[o, b, i] basis[b, r, s], one batched product over output channels
        flat = self.coefficients.transpose(1, 2).reshape(co * ci, self.basis_size) @ self.weight_basis.reshape(
            self.basis_size, r_out * r_in
        )
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
