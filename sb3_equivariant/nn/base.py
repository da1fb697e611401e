"""
The contract of every equivariant module (:class:`EquivariantModule`) and the shared machinery of the layers whose
weight is a combination of a fixed basis (:class:`BasisLayer`): coefficients, the eval-mode weight cache, init.
"""

from __future__ import annotations

import copy
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch as th
from torch import nn

from sb3_equivariant import symmetrizer
from sb3_equivariant.group import Group
from sb3_equivariant.representation import ImageAction, Representation
from sb3_equivariant.representation_algebra import require_representation
from sb3_equivariant.symmetrizer import BASIS_KINDS, bias_basis, orbit_basis


@runtime_checkable
class GroupAction(Protocol):
    """Anything a group acts on by ``transform(x, g)``: image actions, structured (per-agent, ``Dict``) actions."""

    @property
    def group(self) -> Group: ...

    def transform(self, x: Any, g: int) -> Any: ...


#: The type of a module's input or output (escnn's "field type"): a representation on the last axis of vectors, an
#: action on images ``[..., C, H, W]``, or any other :class:`GroupAction` (e.g. a ``DictAction`` on dict observations).
FieldType = Representation | ImageAction | GroupAction


def act(field: FieldType, x: Any, g: int) -> Any:
    """Transform a feature tensor (or a dict of tensors) by element ``g`` of the field's group."""
    if isinstance(field, Representation):
        return field.apply(x, g)
    return field.transform(x, g)


class EquivariantModule(nn.Module, ABC):
    """
    The contract of every equivariant layer and features extractor (as escnn's ``EquivariantModule``):

    * ``in_field`` / ``out_field``: the declared types of the input and the output (:data:`FieldType`), so that
      ``module(act(in_field, x, g)) == act(out_field, module(x), g)`` for every group element ``g``;
    * :meth:`check_equivariance`: that identity measured over every group element (float32, error <= 1e-5);
    * :meth:`export`: a plain torch module (no representations, no basis) with the same outputs;
    * :meth:`example_input`: a random input of the declared type, used by the check.

    Modules that can also be built without a symmetry (the standard networks of a comparison) leave both fields
    ``None`` then; :meth:`check_equivariance` refuses such an instance with a clear error.
    """

    in_field: FieldType | None
    out_field: FieldType | None

    @abstractmethod
    def example_input(self, batch_size: int = 2) -> Any:
        """A random input batch of the declared input type."""

    @abstractmethod
    def export(self) -> nn.Module:
        """A plain torch module with the same outputs (equivariant layers replaced by dense torch layers)."""

    def check_equivariance(self, x: Any = None, atol: float | None = 1e-5) -> float:
        """
        Max error ``|f(g·x) − g·f(x)|`` over every group element.

        :param x: an input batch; default :meth:`example_input`.
        :param atol: raise ``AssertionError`` naming the worst element when the error exceeds it (``None``: never).
        :return: the maximum error.
        """
        if self.in_field is None or self.out_field is None:
            raise TypeError(
                f"{type(self).__name__} was built without a symmetry (a standard network): it declares no input/output "
                "field to check; build it with a symmetry (or field) to get an equivariant module"
            )
        return check_equivariance(self, self.example_input() if x is None else x, self.in_field, self.out_field, atol=atol)


def export_plain(module: nn.Module) -> nn.Module:
    """``module``'s export if it is an :class:`EquivariantModule`, else :func:`export_children` of it."""
    if isinstance(module, EquivariantModule):
        return module.export()
    return export_children(module)


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def export_children(module: ModuleT) -> ModuleT:
    """A copy of ``module`` in which every :class:`EquivariantModule` below it is replaced by its export."""
    exported = copy.deepcopy(module)
    _replace_equivariant_children(exported)
    return exported


def _replace_equivariant_children(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, EquivariantModule):
            setattr(module, name, child.export())
        else:
            _replace_equivariant_children(child)


def renamed_keyword(old_value: Any, new_value: Any, old: str, new: str, default: Any) -> Any:
    """The value of a keyword argument renamed from ``old`` to ``new`` (``old=`` still works, with a DeprecationWarning)."""
    if old_value is None:
        return new_value
    if new_value != default and new_value != old_value:
        raise TypeError(f"{old}= is the deprecated name of {new}=: pass {new}= only")
    warnings.warn(f"{old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=3)
    return old_value


class BasisLayer(EquivariantModule):
    """
    Base of every layer whose weight is a linear combination of a fixed basis.

    The dense weight is ``W[c_out, r_out, c_in, r_in] = Σ_b coef[c_out, b, c_in] basis[b, r_out, r_in]``. For the
    equivariant basis of (signed) permutation representations (weight tying: every entry belongs to at most one basis
    element) it is a gather of the coefficients times a fixed scale, and the dense basis is never built
    (:class:`~sb3_equivariant.symmetrizer.OrbitBasis`: memory linear in the weight's size, shared by every layer with
    the same representations). Other bases (nullspace, random, non-monomial representations) are kept dense and
    contracted with one matrix product. In train mode (or whenever gradients are needed) the weight is rebuilt on
    every forward; in eval mode without gradients it is built once and reused until the coefficients change (checked by
    content against a snapshot, so ``load_state_dict``, optimizer steps and writes through ``.data`` such as SB3's
    target-network updates all invalidate it). Bases and the cache
    are not part of the ``state_dict``: a module saved in one mode loads strictly in the other.

    :param block_rep_in: representation on one input block of the weight: one channel's features for a linear layer,
        one channel's ``k × k`` patch for a convolution (stored as ``block_rep_in``).
    :param block_rep_out: representation on one output block of the weight (stored as ``block_rep_out``).
    :param in_channels: number of input blocks.
    :param out_channels: number of output blocks.
    :param bias: add a bias from the invariant subspace of ``block_rep_out`` (nothing if that subspace is empty).
    :param basis: ``"equivariant"`` (default), or the paper's ablations ``"nullspace"`` / ``"random"`` (the name
        every policy uses; ``basis=`` is a deprecated alias).
    :param seed: seed of the random basis (``basis="random"`` only).
    """

    in_field: FieldType
    out_field: FieldType
    weight_basis: th.Tensor | None
    bias_basis: th.Tensor
    _basis_owner: th.Tensor | None
    _basis_scale: th.Tensor | None

    def __init__(
        self,
        block_rep_in: Representation,
        block_rep_out: Representation,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        basis: str = "equivariant",
        seed: int = 0,
        *,
        basis_kind: str | None = None,
    ):
        super().__init__()
        basis = renamed_keyword(basis_kind, basis, "basis_kind", "basis", "equivariant")
        require_representation(block_rep_in, type(self).__name__)
        require_representation(block_rep_out, type(self).__name__)
        if basis not in BASIS_KINDS:
            raise ValueError(f"unknown basis {basis!r}; choose one of {BASIS_KINDS}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channels must be >= 1, got in_channels={in_channels}, out_channels={out_channels}")
        sparse = orbit_basis(block_rep_in, block_rep_out) if basis == "equivariant" else None
        dense = None if sparse is not None else symmetrizer.basis(basis, block_rep_in, block_rep_out, seed)
        self.basis_size = sparse.size if sparse is not None else len(dense)  # type: ignore[arg-type]
        if self.basis_size == 0:
            raise ValueError(
                f"no {basis} linear map exists from {block_rep_in} to {block_rep_out}: the basis is empty "
                "(e.g. nothing maps invariant inputs to sign-flipping outputs)"
            )
        self.block_rep_in, self.block_rep_out = block_rep_in, block_rep_out
        self.in_channels, self.out_channels = in_channels, out_channels
        self.basis = basis
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
        b_basis = bias_basis(basis, block_rep_out, seed) if bias else np.zeros((0, block_rep_out.dim))
        self.register_buffer("bias_basis", th.as_tensor(np.array(b_basis), dtype=th.float32), persistent=False)
        self.bias_coefficients = nn.Parameter(th.zeros(out_channels, len(b_basis))) if len(b_basis) else None
        self._cache: tuple[tuple[th.Tensor, ...], th.Tensor, th.Tensor | None] | None = None
        self.reset_parameters()

    @property
    def basis_kind(self) -> str:
        """Deprecated name of :attr:`basis`."""
        warnings.warn("basis_kind is deprecated, use basis", DeprecationWarning, stacklevel=2)
        return self.basis

    @property
    def fan_in(self) -> int:
        return self.in_channels * self.block_rep_in.dim

    @property
    def fan_out(self) -> int:
        return self.out_channels * self.block_rep_out.dim

    def reset_parameters(self, gain: float = math.sqrt(2), fan: str = "in") -> None:
        """
        Init over the basis: each dense weight entry has, on average, variance ``gain² / fan_in`` (``fan="in"``: He
        for ``gain=√2``), or ``gain² / max(fan_in, fan_out)`` (``fan="max"``: the variance of torch's orthogonal init,
        which SB3's ``ortho_init`` uses), whatever the basis size. Bias coefficients start at zero, as in SB3.
        """
        if fan not in ("in", "max"):
            raise ValueError(f"fan must be 'in' or 'max', got {fan!r}")
        n = self.fan_in if fan == "in" else max(self.fan_in, self.fan_out)
        std = gain * math.sqrt(self.block_rep_out.dim * self.block_rep_in.dim / (self.basis_size * n))
        with th.no_grad():
            self.coefficients.normal_(0.0, std)
            if self.bias_coefficients is not None:
                self.bias_coefficients.zero_()

    def _build_weight(self) -> th.Tensor:
        co, ci = self.out_channels, self.in_channels
        r_out, r_in = self.block_rep_out.dim, self.block_rep_in.dim
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

    def _coefficient_tensors(self) -> tuple[th.Tensor, ...]:
        return (self.coefficients,) if self.bias_coefficients is None else (self.coefficients, self.bias_coefficients)

    def _cache_is_current(self) -> bool:
        # Compared by content, not by version counters: SB3's polyak_update writes target networks through `.data`,
        # which bumps no version counter. A comparison reads the coefficients once, far less than rebuilding W.
        if self._cache is None:
            return False
        return all(
            old.dtype == new.dtype and old.device == new.device and old.shape == new.shape and th.equal(old, new)
            for old, new in zip(self._cache[0], self._coefficient_tensors())
        )

    def weight_and_bias(self) -> tuple[th.Tensor, th.Tensor | None]:
        """The dense ``(C_out·r_out, C_in·r_in)`` weight and the bias; cached in eval mode when no gradient is needed."""
        if self.training or (th.is_grad_enabled() and self.coefficients.requires_grad):
            self._cache = None
            return self._build_weight(), self._build_bias()
        if not self._cache_is_current():
            with th.no_grad():
                snapshot = tuple(t.detach().clone() for t in self._coefficient_tensors())
                self._cache = (snapshot, self._build_weight(), self._build_bias())
        assert self._cache is not None
        return self._cache[1], self._cache[2]


def check_equivariance(
    module: nn.Module,
    x: Any,
    in_transform: FieldType | Callable[[Any, int], Any],
    out_transform: FieldType | Callable[[Any, int], Any] | tuple[Any, ...],
    elements: Sequence[int] | None = None,
    atol: float | None = None,
) -> float:
    """
    Max absolute error of ``module(in(g)·x) − out(g)·module(x)`` over the group elements.

    :param module: any module (a layer, a whole network, a policy's sub-network).
    :param x: an input batch (a tensor, or a dict of tensors for a ``DictAction``).
    :param in_transform: how ``g`` acts on inputs: a field type (:data:`FieldType`), or a callable ``(x, g) -> x'``.
    :param out_transform: how ``g`` acts on outputs (a trivial representation for invariant outputs); for a module
        returning (nested) tuples, the same nesting of transforms.
    :param elements: elements to check; default all elements of the group of the given field types.
    :param atol: if given, raise ``AssertionError`` naming the worst element when the error exceeds it.
    :return: the maximum error.
    """
    apply_in = _as_callable(in_transform)
    if elements is None:
        fields = [t for t in (in_transform, *_leaves(out_transform)) if _is_field(t)]
        if not fields:
            raise ValueError("pass `elements` when both transforms are callables")
        elements = list(fields[0].group.elements)  # type: ignore[attr-defined]
    with th.no_grad():
        y = module(x)
        errors = {g: _max_error(module(apply_in(x, g)), out_transform, y, g) for g in elements}
    worst = max(errors, key=errors.__getitem__)
    if atol is not None and errors[worst] > atol:
        raise AssertionError(f"{type(module).__name__} is not equivariant: error {errors[worst]:.3g} at element {worst}")
    return errors[worst]


def _leaves(transform: object) -> list[object]:
    return [leaf for t in transform for leaf in _leaves(t)] if isinstance(transform, tuple) else [transform]


def _max_error(moved: Any, transform: Any, y: Any, g: int) -> float:
    """``max |moved − transform(g)·y|`` over the (nested tuple) outputs."""
    if isinstance(transform, tuple):
        return max(_max_error(m, t, o, g) for m, t, o in zip(moved, transform, y, strict=True))
    return float((moved - _as_callable(transform)(y, g)).abs().max())


def _is_field(t: object) -> bool:
    return isinstance(t, (Representation, GroupAction))


def _as_callable(t: FieldType | Callable[[Any, int], Any]) -> Callable[[Any, int], Any]:
    if _is_field(t):
        return lambda x, g: act(t, x, g)  # type: ignore[arg-type]
    return t  # type: ignore[return-value]
