"""Representations of finite groups on vectors and their algebra (pure numpy; ``apply`` also accepts torch tensors).

Convention used everywhere in the package: ``ρ(g) ρ(h) = ρ(g·h)``, and a (signed) permutation representation sends
basis vector ``e_i`` to ``signs[g][i] · e_{perm[g][i]}``; applied to a vector ``x`` that is
``y[perm[g][i]] = signs[g][i] · x[i]``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch as th

from sb3_equivariant.group import Group, as_index_array, require_count, require_group

ArrayT = TypeVar("ArrayT", np.ndarray, th.Tensor)


class RepresentationError(ValueError):
    """Raised when matrices do not form a representation of the given group, or have the wrong size."""


class Representation:
    """
    A real representation of a finite group: one ``(d, d)`` matrix per group element, validated as a homomorphism.

    :param group: the group represented.
    :param matrices: ``matrices[g]`` for every element ``g``, shape ``(len(group), d, d)``.
    :param name: a short name for ``repr`` and error messages.
    :param atol: tolerance of the homomorphism check.
    """

    def __init__(self, group: Group, matrices: np.ndarray | Sequence[np.ndarray], name: str = "rho", atol: float = 1e-6):
        require_group(group, "Representation")
        mats = np.array(matrices, dtype=np.float64)
        if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
            raise RepresentationError(f"{name}: expected matrices of shape (|G|, d, d), got {mats.shape}")
        if mats.shape[0] != group.order:
            raise RepresentationError(
                f"{name}: {mats.shape[0]} matrices given for {group.name} of order {group.order} (one per element needed)"
            )
        if not np.allclose(mats[0], np.eye(mats.shape[1]), atol=atol):
            raise RepresentationError(f"{name}: the identity element must map to the identity matrix")
        monomial = _monomial_form(mats)
        for g in group.elements:
            if monomial:
                ok = _monomial_composes_row(monomial, group, g)
            else:  # rho(g) rho(h) vs rho(g·h) for every h at once
                ok = np.all(np.isclose(mats[g] @ mats, mats[group.table[g]], atol=atol), axis=(1, 2))
            _raise_unless_homomorphic(ok, group, g, name)
        mats.setflags(write=False)
        self._init(group, mats.shape[1], name, monomial, mats)

    def _init(
        self, group: Group, dim: int, name: str, monomial: tuple[np.ndarray, np.ndarray] | None, mats: np.ndarray | None
    ) -> None:
        self.group = group
        self.name = name
        self._dim = dim
        self._monomial = monomial
        self._matrices = mats
        content = b"".join(a.tobytes() for a in monomial) if monomial else np.round(mats, 9).tobytes()  # type: ignore[arg-type]
        self.key = hashlib.sha1(content + str((group.order, dim, monomial is None)).encode() + group.table.tobytes()).hexdigest()

    @classmethod
    def from_monomial(cls, group: Group, perms: np.ndarray, signs: np.ndarray | None = None, name: str = "rho") -> Representation:
        """
        Build a (signed) permutation representation without dense matrices (image representations are large).

        :param perms: ``perms[g][i]``: where ``g`` sends index ``i``; shape ``(|G|, d)``.
        :param signs: ``signs[g][i]`` in ``{-1, +1}``; default all ``+1``.
        """
        require_group(group, "Representation.from_monomial")
        perms = as_index_array(perms, f"{name}: perms", RepresentationError)
        if perms.ndim != 2 or perms.shape[0] != group.order:
            raise RepresentationError(f"{name}: expected perms of shape ({group.order}, d), got {perms.shape}")
        dim = perms.shape[1]
        signs = np.ones(perms.shape) if signs is None else np.asarray(signs, dtype=np.float64)
        if signs.shape != perms.shape:
            raise RepresentationError(f"{name}: signs shape {signs.shape} != perms shape {perms.shape}")
        if not np.array_equal(np.sort(perms, axis=1), np.broadcast_to(np.arange(dim), perms.shape)):
            raise RepresentationError(f"{name}: every row of perms must be a permutation of 0..{dim - 1}")
        if not np.all(np.isin(signs, (-1.0, 1.0))):
            raise RepresentationError(f"{name}: signs must be +1 or -1")
        if not (np.array_equal(perms[0], np.arange(dim)) and np.all(signs[0] == 1)):
            raise RepresentationError(f"{name}: the identity element must map to the identity")
        perms.setflags(write=False)
        signs.setflags(write=False)
        for g in group.elements:
            _raise_unless_homomorphic(_monomial_composes_row((perms, signs), group, g), group, g, name)
        rep = cls.__new__(cls)
        rep._init(group, dim, name, (perms, signs), None)
        return rep

    @property
    def matrices(self) -> np.ndarray:
        """``(|G|, d, d)`` dense matrices (built on first use for monomial representations)."""
        if self._matrices is None:
            perms, signs = self._require_monomial()
            mats = np.zeros((self.group.order, self._dim, self._dim))
            for g in self.group.elements:
                mats[g, perms[g], np.arange(self._dim)] = signs[g]
            mats.setflags(write=False)
            self._matrices = mats
        return self._matrices

    @property
    def dim(self) -> int:
        """The dimension ``d`` of the vectors acted on (escnn's ``size``)."""
        return self._dim

    @property
    def size(self) -> int:
        """
        Deprecated: the group order, while escnn's ``size`` is the vector dimension. Use ``rep.group.order`` for the
        number of group elements, :attr:`dim` for the dimension.
        """
        warnings.warn(
            "Representation.size is deprecated (it is the group order, escnn's size is the dimension): use "
            "rep.group.order for the number of group elements, rep.dim for the dimension",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.group.order

    def __call__(self, g: int) -> np.ndarray:
        return self.matrices[g]

    def __len__(self) -> int:
        """The number of matrices, one per group element (not the dimension: see :attr:`dim`)."""
        return self.group.order

    def __repr__(self) -> str:
        return f"Representation({self.name}, group={self.group.name}, dim={self.dim})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Representation) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._monomial is not None:
            state["_matrices"] = None  # rebuilt on demand; keeps pickles of image representations small
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for arr in [self._matrices, *(self._monomial or ())]:
            if arr is not None:
                arr.setflags(write=False)

    @property
    def character(self) -> np.ndarray:
        """Trace of each matrix, shape ``(len(group),)``."""
        if self._monomial is not None:
            perms, signs = self._monomial
            return np.sum(np.where(perms == np.arange(self._dim), signs, 0.0), axis=1)
        return np.trace(self.matrices, axis1=1, axis2=2)

    @property
    def is_monomial(self) -> bool:
        """True when every matrix is a signed permutation."""
        return self._monomial is not None

    @property
    def is_permutation(self) -> bool:
        return self._monomial is not None and bool(np.all(self._monomial[1] == 1))

    @property
    def permutations(self) -> np.ndarray:
        """``perm[g][i]``: where element ``g`` sends index ``i``; shape ``(|G|, d)``. Only for monomial reps."""
        return self._require_monomial()[0]

    @property
    def signs(self) -> np.ndarray:
        """``signs[g][i]``: the sign that index ``i`` picks up under ``g``; shape ``(|G|, d)``. Monomial reps only."""
        return self._require_monomial()[1]

    def gather_form(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        """``(src, sign)`` with ``ρ(g) x = x[src] * sign`` (monomial reps; computed once per element)."""
        cache = self.__dict__.setdefault("_gather_cache", {})
        if g not in cache:
            cache[g] = _gather_form(*self._require_monomial(), g)
        return cache[g]

    def _require_monomial(self) -> tuple[np.ndarray, np.ndarray]:
        if self._monomial is None:
            raise RepresentationError(f"{self.name} is not a (signed) permutation representation")
        return self._monomial

    def is_trivial(self) -> bool:
        if self._monomial is not None:
            perms, signs = self._monomial
            return bool(np.all(perms == np.arange(self._dim)) and np.all(signs == 1))
        return bool(np.allclose(self.matrices, np.eye(self.dim)))

    def apply(self, x: ArrayT, g: int) -> ArrayT:
        """``ρ(g) x`` along the last axis of ``x`` (numpy array or torch tensor, any leading batch dims)."""
        if x.shape[-1] != self.dim:
            raise RepresentationError(f"{self.name}: expected last dimension {self.dim}, got shape {tuple(x.shape)}")
        if self._monomial is not None:
            src, sign = self.gather_form(g)
            return _gather_sign(x, src, sign, axis=-1)
        mat = self.matrices[g]
        if isinstance(x, th.Tensor):
            return x @ th.tensor(mat.T, dtype=x.dtype, device=x.device)
        return x @ mat.T.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)


def _monomial_composes_row(monomial: tuple[np.ndarray, np.ndarray], group: Group, g: int) -> np.ndarray:
    """
    For every ``h`` at once, whether ``ρ(g)ρ(h) = ρ(g·h)``: ``ρ(g)ρ(h) e_i = s_h[i] s_g[p_h[i]] e_{p_g[p_h[i]]}``,
    compared with ``ρ(g·h)`` in ``O(|G| d)``.
    """
    perms, signs = monomial
    products = group.table[g]
    same_perm = np.all(perms[g][perms] == perms[products], axis=1)
    return same_perm & np.all(signs * signs[g][perms] == signs[products], axis=1)


def _raise_unless_homomorphic(ok: np.ndarray, group: Group, g: int, name: str) -> None:
    if not np.all(ok):
        h = int(np.flatnonzero(~ok)[0])
        raise RepresentationError(f"{name}: not a homomorphism: rho({g}) rho({h}) != rho({g}·{h}) for {group.name}")


def _monomial_form(mats: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    nonzero = np.abs(mats) > 1e-9
    if not (np.all(nonzero.sum(axis=1) == 1) and np.all(nonzero.sum(axis=2) == 1)):
        return None
    perms = np.argmax(nonzero, axis=1)  # perms[g, i] = row of the non-zero entry in column i
    signs = np.take_along_axis(mats, perms[:, None, :], axis=1)[:, 0, :]
    if not np.allclose(np.abs(signs), 1.0):
        return None
    perms.setflags(write=False)
    signs = np.sign(signs)
    signs.setflags(write=False)
    return perms, signs


def _gather_form(perms: np.ndarray, signs: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn ``y[perm[i]] = s[i] x[i]`` into ``y = x[src] * sign``."""
    src = np.argsort(perms[g])
    return src, signs[g][src]


def _gather_sign(x: ArrayT, src: np.ndarray, sign: np.ndarray, axis: int) -> ArrayT:
    shape = [1] * x.ndim
    shape[axis] = -1
    if isinstance(x, th.Tensor):
        out = th.index_select(x, axis % x.ndim, th.as_tensor(src, device=x.device))
        if np.all(sign == 1):
            return out
        return out * th.as_tensor(sign.reshape(shape), dtype=out.dtype, device=x.device)
    out_np = np.take(x, src, axis=axis)
    if np.all(sign == 1):
        return out_np
    return (out_np * sign.reshape(shape)).astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------------------------------------------------
# Constructors
# ---------------------------------------------------------------------------------------------------------------------


def trivial(group: Group, dim: int = 1) -> Representation:
    """Every element acts as the identity on ``R^dim`` (invariant quantities: values, rewards)."""
    require_group(group, "trivial")
    dim = require_count(dim, "trivial", "dim", error=RepresentationError)
    return Representation.from_monomial(group, np.tile(np.arange(dim), (group.order, 1)), name=f"trivial{dim}")


def regular(group: Group) -> Representation:
    """The regular representation: ``ρ(g) e_h = e_{g·h}`` (hidden channels of group-equivariant networks)."""
    require_group(group, "regular")
    return Representation.from_monomial(group, group.table, name=f"regular({group.name})")


def permutation(
    group: Group, perms: Sequence[Sequence[int]] | Mapping[int, Sequence[int]], name: str = "permutation"
) -> Representation:
    """
    A permutation representation: ``ρ(g) e_i = e_{perms[g][i]}``.

    :param perms: one index map per element, or a mapping ``{generator element: index map}`` from which the rest is
        generated (e.g. ``{1: [0, 4, 1, 2, 3]}``: the quarter turn of C4 on GridWorld's stay/up/right/down/left).
    """
    return signed_permutation(group, perms, signs=None, name=name)


def signed_permutation(
    group: Group,
    perms: Sequence[Sequence[int]] | Mapping[int, Sequence[int]] | None,
    signs: Sequence[Sequence[float]] | Mapping[int, Sequence[float]] | None,
    name: str = "signed_permutation",
) -> Representation:
    """
    A signed permutation representation: ``ρ(g) e_i = signs[g][i] · e_{perms[g][i]}`` (sign flips plus a permutation:
    CartPole's ``obs → -obs``, mirror symmetries that swap and negate coordinates).

    :param perms: one index map per element or a ``{generator: index map}`` mapping; ``None`` for no permutation.
    :param signs: the same shape with entries ``±1``; ``None`` for all ``+1``.
    """
    require_group(group, name)
    if perms is None and signs is None:
        raise RepresentationError(f"{name}: give perms, signs or both")
    as_map = isinstance(perms, Mapping) or isinstance(signs, Mapping)
    keys = _keys(perms, signs, group, name)
    dim = _dim_of(perms, signs, keys, name)
    matrices: dict[int, np.ndarray] = {}
    for g in keys:
        perm = np.arange(dim) if perms is None else as_index_array(perms[g], f"{name}: element {g}: perms", RepresentationError)
        sign = np.ones(dim) if signs is None else np.asarray(signs[g], dtype=np.float64)
        if perm.shape != (dim,) or sign.shape != (dim,):
            raise RepresentationError(f"{name}: element {g}: expected {dim} entries, got perm {perm.shape}, signs {sign.shape}")
        if sorted(perm.tolist()) != list(range(dim)):
            raise RepresentationError(f"{name}: element {g}: {perm.tolist()} is not a permutation of 0..{dim - 1}")
        if not np.all(np.isin(sign, (-1.0, 1.0))):
            raise RepresentationError(f"{name}: element {g}: signs must be +1 or -1, got {sign.tolist()}")
        mat = np.zeros((dim, dim))
        mat[perm, np.arange(dim)] = sign
        matrices[g] = mat
    if as_map:
        return from_generators(group, matrices, name=name)
    return Representation(group, np.stack([matrices[g] for g in group.elements]), name=name)


def _keys(perms: Any, signs: Any, group: Group, name: str) -> list[int]:
    given = perms if perms is not None else signs
    if isinstance(given, Mapping):
        keys = sorted(int(k) for k in given)
        other = signs if given is perms else perms
        if isinstance(other, Mapping) and sorted(int(k) for k in other) != keys:
            raise RepresentationError(f"{name}: perms and signs must name the same generators")
        if other is not None and not isinstance(other, Mapping):
            raise RepresentationError(f"{name}: give perms and signs both per element or both per generator")
        return keys
    if len(given) != group.order:
        raise RepresentationError(f"{name}: {len(given)} entries given for {group.name} of order {group.order}")
    if perms is not None and signs is not None and len(signs) != len(perms):
        raise RepresentationError(f"{name}: perms and signs have different lengths")
    return list(group.elements)


def _dim_of(perms: Any, signs: Any, keys: list[int], name: str) -> int:
    given = perms if perms is not None else signs
    if not keys:
        raise RepresentationError(f"{name}: no generators given")
    dim = len(given[keys[0]])
    if dim == 0:
        raise RepresentationError(
            f"{name}: empty index/sign lists give a 0-dimensional representation; give one entry per coordinate"
        )
    return dim


def from_generators(group: Group, images: Mapping[int, np.ndarray], name: str = "rho") -> Representation:
    """
    Extend matrices given on generating elements to the whole group and validate the result.

    :param images: ``{element index: matrix}``; the elements must generate the group.
    """
    require_group(group, "from_generators")
    if not images:
        raise RepresentationError(f"{name}: no generator images given")
    gens = {int(g): np.asarray(m, dtype=np.float64) for g, m in images.items()}
    d = next(iter(gens.values())).shape[0]
    for g, m in gens.items():
        if not 0 <= g < group.order:
            raise RepresentationError(f"{name}: {g} is not an element of {group.name} (order {group.order})")
        if m.shape != (d, d):
            raise RepresentationError(f"{name}: generator {g} has shape {m.shape}, expected ({d}, {d})")
    mats: dict[int, np.ndarray] = {0: np.eye(d)}
    frontier = [0]
    while frontier:
        nxt = []
        for g in frontier:
            for s, m in gens.items():
                gs = group.mul(g, s)
                if gs not in mats:
                    mats[gs] = mats[g] @ m
                    nxt.append(gs)
        frontier = nxt
    if len(mats) != group.order:
        raise RepresentationError(f"{name}: elements {sorted(gens)} do not generate {group.name}")
    return Representation(group, np.stack([mats[g] for g in group.elements]), name=name)


def direct_sum(*reps: Representation, name: str | None = None) -> Representation:
    """Block-diagonal sum; coordinates of ``reps[0]`` come first."""
    if not reps:
        raise RepresentationError("direct_sum needs at least one representation")
    if len(reps) == 1 and isinstance(reps[0], (list, tuple)):
        raise TypeError("direct_sum takes representations as separate arguments: direct_sum(*reps), not direct_sum(reps)")
    for rep in reps:
        require_representation(rep, "direct_sum")
    group = _common_group(reps)
    dim = sum(r.dim for r in reps)
    name = name or "+".join(r.name for r in reps)
    if all(r.is_monomial for r in reps):
        offsets = np.cumsum([0] + [r.dim for r in reps[:-1]])
        perms = np.concatenate([r.permutations + off for r, off in zip(reps, offsets)], axis=1)
        return Representation.from_monomial(group, perms, np.concatenate([r.signs for r in reps], axis=1), name=name)
    mats = np.zeros((group.order, dim, dim))
    offset = 0
    for r in reps:
        mats[:, offset : offset + r.dim, offset : offset + r.dim] = r.matrices
        offset += r.dim
    return Representation(group, mats, name=name)


def tensor_product(first: Representation, second: Representation, name: str | None = None) -> Representation:
    """Kronecker product; index ``i * second.dim + j`` is the pair ``(i, j)``."""
    require_representation(first, "tensor_product")
    require_representation(second, "tensor_product")
    group = _common_group((first, second))
    name = name or f"{first.name}*{second.name}"
    if first.is_monomial and second.is_monomial:
        perms = (first.permutations[:, :, None] * second.dim + second.permutations[:, None, :]).reshape(group.order, -1)
        signs = (first.signs[:, :, None] * second.signs[:, None, :]).reshape(group.order, -1)
        return Representation.from_monomial(group, perms, signs, name=name)
    mats = np.stack([np.kron(first(g), second(g)) for g in group.elements])
    return Representation(group, mats, name=name)


def copies(rep: Representation, n: int) -> Representation:
    """``n`` copies of ``rep`` stacked channel-major (index ``c * rep.dim + i``), the layout of equivariant layers."""
    require_representation(rep, "copies")
    n = require_count(n, "copies", error=RepresentationError)
    return tensor_product(trivial(rep.group, n), rep, name=f"{n}x{rep.name}")


def require_representation(value: object, where: str) -> Representation:
    """``value`` if it is a :class:`Representation`, else a ``TypeError`` saying where one was expected."""
    if not isinstance(value, Representation):
        raise TypeError(
            f"{where} expects a sb3_equivariant Representation (e.g. regular(group), permutation(group, perms)), "
            f"got {type(value).__name__} {value!r:.60}"
        )
    return value


def _common_group(reps: Sequence[Representation]) -> Group:
    group = reps[0].group
    for r in reps[1:]:
        if r.group != group:
            raise RepresentationError(f"representations of different groups: {group.name} and {r.group.name}")
    return group


__all__ = [
    "ArrayT",
    "Representation",
    "RepresentationError",
    "copies",
    "direct_sum",
    "from_generators",
    "permutation",
    "regular",
    "signed_permutation",
    "tensor_product",
    "trivial",
]
