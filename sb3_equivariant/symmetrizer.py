"""The Symmetrizer: exact orthonormal bases of equivariant weight spaces (pure numpy).

The space of equivariant weights is ``{W : ρ_out(g) W = W ρ_in(g) for all g}``, the image of the symmetrizer
``S(W) = 1/|G| Σ_g ρ_out(g)⁻¹ W ρ_in(g)``. The paper samples random W, symmetrizes and takes an SVD; here the basis is
computed exactly and deterministically instead:

* (signed) permutation representations (regular, permutation, image and filter actions): the weight entries
  ``(i, j)`` fall into orbits under ``g``; each orbit on which no element forces ``W[i, j] = -W[i, j]`` contributes
  one basis matrix (the orbit's signed indicator, normalized). This is weight tying, exact, and linear in the number of
  weights.
* any other representation: the eigenspace of eigenvalue 1 of the projector ``1/|G| Σ_g ρ_out(g) ⊗ ρ_in(g⁻¹)ᵀ``.

Bases are cached per process by the representations' content and returned read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from sb3_equivariant.group import GroupError
from sb3_equivariant.representation_algebra import Representation, RepresentationError, _monomial_form, trivial

RepLike = Representation | Sequence[np.ndarray] | np.ndarray

BASIS_KINDS = ("equivariant", "nullspace", "random")

_CACHE: dict[tuple, np.ndarray] = {}
_ORBIT_CACHE: dict[tuple, OrbitBasis] = {}
#: Dense bases larger than this (entries) are not kept in the cache: a layer keeps its own float32 copy instead.
_MAX_CACHED_ENTRIES = 1 << 20


@dataclasses.dataclass(frozen=True, eq=False)
class OrbitBasis:
    """
    The equivariant basis of two (signed) permutation representations in sparse form: every weight entry ``(i, j)``
    belongs to at most one basis element, so ``W[i, j] = scale[i, j] · c[owner[i, j]]`` for coefficients ``c``
    (weight tying). Entries forced to zero have ``scale == 0`` (and ``owner == 0``). Memory is linear in the number of
    weight entries, whereas the dense basis is quadratic.

    :param size: number of basis elements ``k``.
    :param owner: ``(d_out, d_in)`` index of the basis element of each entry.
    :param scale: ``(d_out, d_in)`` value of that element at the entry (``±1/√orbit size``, or 0).
    """

    size: int
    owner: np.ndarray
    scale: np.ndarray

    def dense(self) -> np.ndarray:
        """The basis as an array ``(k, d_out, d_in)``, equal to :func:`equivariant_basis`."""
        d_out, d_in = self.owner.shape
        out = np.zeros((self.size, d_out * d_in))
        nonzero = np.flatnonzero(self.scale.ravel())
        out[self.owner.ravel()[nonzero], nonzero] = self.scale.ravel()[nonzero]
        return out.reshape(self.size, d_out, d_in)


def equivariant_basis(rep_in: RepLike, rep_out: RepLike) -> np.ndarray:
    """
    Orthonormal basis of the equivariant maps from ``rep_in`` to ``rep_out``.

    :param rep_in: a :class:`Representation` or a list of matrices, one per group element.
    :param rep_out: the same, with the same element order as ``rep_in``.
    :return: array of shape ``(k, d_out, d_in)``, orthonormal in the Frobenius inner product, ``k`` the dimension
        ``1/|G| Σ_g χ_in(g) χ_out(g)`` of the space (may be 0).
    """
    return _cached("equivariant", rep_in, rep_out)


def orbit_basis(rep_in: Representation, rep_out: Representation) -> OrbitBasis | None:
    """
    The equivariant basis in sparse form (:class:`OrbitBasis`) when both representations are (signed) permutations,
    else ``None``. Cached; this is what the equivariant layers use, without ever building the dense basis.
    """
    if not (rep_in.is_monomial and rep_out.is_monomial):
        return None
    if rep_in.group != rep_out.group:
        raise RepresentationError(f"rep_in is of {rep_in.group.name}, rep_out of {rep_out.group.name}")
    key = (rep_in.key, rep_out.key)
    if key not in _ORBIT_CACHE:
        mono_in, mono_out = (rep_in.permutations, rep_in.signs), (rep_out.permutations, rep_out.signs)
        _ORBIT_CACHE[key] = _sparse_orbit_basis(_orbits(mono_in, mono_out), rep_out.dim, rep_in.dim)
    return _ORBIT_CACHE[key]


def nullspace_basis(rep_in: RepLike, rep_out: RepLike) -> np.ndarray:
    """The paper's "nullspace" ablation: orthonormal basis of the orthogonal complement of the equivariant space."""
    return _cached("nullspace", rep_in, rep_out)


def random_basis(rep_in: RepLike, rep_out: RepLike, seed: int = 0) -> np.ndarray:
    """
    The paper's "random" ablation: no symmetrization, a random orthonormal basis of all ``d_out × d_in`` matrices.

    Deterministic for a given ``seed`` (a private generator; the global RNG is untouched).
    """
    return _cached("random", rep_in, rep_out, seed)


def invariant_basis(rep: RepLike) -> np.ndarray:
    """Orthonormal basis of ``{b : ρ(g) b = b}``, shape ``(k, d)`` (the bias of an equivariant layer)."""
    return bias_basis("equivariant", rep)


def basis(kind: str, rep_in: RepLike, rep_out: RepLike, seed: int = 0) -> np.ndarray:
    """Dispatch on ``kind`` in ``("equivariant", "nullspace", "random")``."""
    if kind not in BASIS_KINDS:
        raise ValueError(f"unknown basis kind {kind!r}; choose one of {BASIS_KINDS}")
    return _cached(kind, rep_in, rep_out, seed if kind == "random" else 0)


def bias_basis(kind: str, rep_out: RepLike, seed: int = 0) -> np.ndarray:
    """The bias counterpart of :func:`basis`: shape ``(k, d_out)``."""
    r_out = _as_rep(rep_out, "rep_out")
    one = trivial(r_out.group) if isinstance(r_out, Representation) else np.ones((len(r_out), 1, 1))
    return basis(kind, one, r_out, seed)[:, :, 0]


def expected_dimension(rep_in: RepLike, rep_out: RepLike) -> int:
    """Character formula ``1/|G| Σ_g χ_in(g⁻¹) χ_out(g)`` (``= Σ χ_in χ_out / |G|`` for orthogonal reps)."""
    mats_in, mats_out = _matrices(rep_in, "rep_in"), _matrices(rep_out, "rep_out")
    chi_in_inv = np.trace(np.linalg.inv(mats_in), axis1=1, axis2=2)
    chi_out = np.trace(mats_out, axis1=1, axis2=2)
    return round(float(np.mean(chi_in_inv * chi_out)))


def clear_cache() -> None:
    _CACHE.clear()
    _ORBIT_CACHE.clear()


# ---------------------------------------------------------------------------------------------------------------------


def _as_rep(rep: RepLike, what: str) -> Representation | np.ndarray:
    if isinstance(rep, Representation):
        return rep
    mats = np.asarray(rep, dtype=np.float64)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2] or mats.shape[0] == 0:
        raise RepresentationError(f"{what}: expected a Representation or matrices of shape (|G|, d, d), got {mats.shape}")
    return mats


def _matrices(rep: RepLike, what: str) -> np.ndarray:
    r = _as_rep(rep, what)
    return r.matrices if isinstance(r, Representation) else r


def _size(rep: Representation | np.ndarray) -> tuple[int, int]:
    return (rep.group.order, rep.dim) if isinstance(rep, Representation) else (rep.shape[0], rep.shape[1])


def _key(rep: Representation | np.ndarray) -> str | bytes:
    return rep.key if isinstance(rep, Representation) else str(rep.shape).encode() + np.round(rep, 9).tobytes()


def _monomial_of(rep: Representation | np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if isinstance(rep, Representation):
        return (rep.permutations, rep.signs) if rep.is_monomial else None
    return _monomial_form(rep)


def _cached(kind: str, rep_in: RepLike, rep_out: RepLike, seed: int = 0) -> np.ndarray:
    r_in, r_out = _as_rep(rep_in, "rep_in"), _as_rep(rep_out, "rep_out")
    (n_in, d_in), (n_out, d_out) = _size(r_in), _size(r_out)
    if n_in != n_out:
        raise RepresentationError(f"rep_in has {n_in} matrices but rep_out has {n_out}: one per group element each")
    if isinstance(r_in, Representation) and isinstance(r_out, Representation) and r_in.group != r_out.group:
        raise RepresentationError(f"rep_in is of {r_in.group.name}, rep_out of {r_out.group.name}")
    key = (kind, seed, _key(r_in), _key(r_out))
    if key in _CACHE:
        return _CACHE[key]
    if not (isinstance(r_in, Representation) and isinstance(r_out, Representation)):
        _check_closed(_matrices(r_in, "rep_in"), _matrices(r_out, "rep_out"))
    if kind == "random":
        result = _random(d_in, d_out, seed)
    else:
        mono_in, mono_out = _monomial_of(r_in), _monomial_of(r_out)
        nullspace = kind == "nullspace"
        if mono_in is not None and mono_out is not None:
            result = _orbit_basis(mono_in, mono_out, nullspace)
        else:
            result = _projector_basis(_matrices(r_in, "rep_in"), _matrices(r_out, "rep_out"), nullspace)
    result.setflags(write=False)
    if result.size <= _MAX_CACHED_ENTRIES:
        _CACHE[key] = result
    return result


def _check_closed(mats_in: np.ndarray, mats_out: np.ndarray) -> None:
    """Plain matrix lists must form a group (as pairs): the orbit computation relies on closure."""
    d_in, d_out = mats_in.shape[1], mats_out.shape[1]
    pairs = np.concatenate([mats_in.reshape(len(mats_in), -1), mats_out.reshape(len(mats_out), -1)], axis=1)
    distinct = np.unique(np.round(pairs, 8), axis=0)
    split = [(p[: d_in * d_in].reshape(d_in, d_in), p[d_in * d_in :].reshape(d_out, d_out)) for p in distinct]
    if not any(np.allclose(a, np.eye(d_in)) and np.allclose(b, np.eye(d_out)) for a, b in split):
        raise GroupError("the matrices given do not form a group: the identity is missing")
    keys = {p.tobytes() for p in distinct}
    for a_in, a_out in split:
        for b_in, b_out in split:
            prod = np.round(np.concatenate([(a_in @ b_in).ravel(), (a_out @ b_out).ravel()]), 8)
            if prod.tobytes() not in keys:
                raise GroupError("the matrices given do not form a group: not closed under multiplication")


Monomial = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class _Orbits:
    orbit_of: np.ndarray  # (D,) orbit of each flat entry i·d_in + j
    rel_sign: np.ndarray  # (D,) W[entry] = rel_sign · W[orbit representative]
    sizes: np.ndarray  # (n_orbits,)
    zero_orbit: np.ndarray  # (n_orbits,) orbits forced to zero by a sign conflict


def _orbits(mono_in: Monomial, mono_out: Monomial) -> _Orbits:
    (p_in, s_in), (p_out, s_out) = mono_in, mono_out
    d_in = p_in.shape[1]
    # Under g, entry (i, j) moves to (p_out[g, i], p_in[g, j]) and picks up s_out[g, i] * s_in[g, j]:
    # equivariance is W[g·(i, j)] = sign · W[i, j].
    images = (p_out[:, :, None] * d_in + p_in[:, None, :]).reshape(len(p_in), -1)  # (|G|, D)
    sign = (s_out[:, :, None] * s_in[:, None, :]).reshape(len(p_in), -1)
    rep_idx = images.argmin(axis=0)  # the element taking each entry to its orbit's smallest index
    column = np.arange(images.shape[1])
    representative = images[rep_idx, column]
    rel_sign = sign[rep_idx, column].astype(np.float64)
    # An orbit is forced to zero when some g fixes its representative and flips its sign.
    fixed_flip = np.any((images == column[None, :]) & (sign < 0), axis=0)
    orbits, orbit_of = np.unique(representative, return_inverse=True)
    orbit_of = orbit_of.ravel()
    zero_orbit = np.bincount(orbit_of, weights=fixed_flip, minlength=len(orbits)) > 0
    sizes = np.bincount(orbit_of, minlength=len(orbits))
    return _Orbits(orbit_of, rel_sign, sizes, zero_orbit)


def _sparse_orbit_basis(o: _Orbits, d_out: int, d_in: int) -> OrbitBasis:
    """One basis element per orbit not forced to zero, in order of the orbits' smallest entries."""
    kept = ~o.zero_orbit
    entry_kept = kept[o.orbit_of]
    owner = np.where(entry_kept, (np.cumsum(kept) - 1)[o.orbit_of], 0).reshape(d_out, d_in)
    scale = np.where(entry_kept, o.rel_sign / np.sqrt(o.sizes[o.orbit_of]), 0.0).reshape(d_out, d_in)
    for array in (owner, scale):
        array.setflags(write=False)
    return OrbitBasis(int(kept.sum()), owner, scale)


def _orbit_basis(mono_in: Monomial, mono_out: Monomial, nullspace: bool) -> np.ndarray:
    d_in, d_out = mono_in[0].shape[1], mono_out[0].shape[1]
    o = _orbits(mono_in, mono_out)
    if not nullspace:
        return _sparse_orbit_basis(o, d_out, d_in).dense()
    vectors = []
    for orbit in range(len(o.sizes)):
        members = np.flatnonzero(o.orbit_of == orbit)
        signed = o.rel_sign[members] / np.sqrt(o.sizes[orbit])
        # Complement inside the orbit's coordinates: all of them for a zero orbit, else those orthogonal to `signed`.
        local = np.eye(len(members)) if o.zero_orbit[orbit] else _orthonormal_complement(signed)
        for row in local:
            vec = np.zeros(d_out * d_in)
            vec[members] = row
            vectors.append(vec)
    if not vectors:
        return np.zeros((0, d_out, d_in))
    return np.stack(vectors).reshape(-1, d_out, d_in)


def _orthonormal_complement(unit: np.ndarray) -> np.ndarray:
    """Rows spanning the complement of a unit vector (``m - 1`` rows), deterministic."""
    m = len(unit)
    if m == 1:
        return np.zeros((0, 1))
    eigval, eigvec = np.linalg.eigh(np.eye(m) - np.outer(unit, unit))
    return _canonical_signs(eigvec[:, eigval > 0.5].T)


def _projector_basis(mats_in: np.ndarray, mats_out: np.ndarray, nullspace: bool) -> np.ndarray:
    d_in, d_out = mats_in.shape[1], mats_out.shape[1]
    # Row-major vec(A W B) = (A ⊗ Bᵀ) vec(W); averaging W ↦ ρ_out(g) W ρ_in(g)⁻¹ over g.
    inv_in = np.linalg.inv(mats_in)
    proj = np.mean([np.kron(a, b.T) for a, b in zip(mats_out, inv_in)], axis=0)
    target = np.eye(d_in * d_out) - proj if nullspace else proj
    u, s, _ = np.linalg.svd(target)
    vectors = u[:, s > 0.5].T  # a projector's singular values are 0 or >= 1 for orthogonal reps; 0.5 separates them
    return _canonical_signs(vectors).reshape(-1, d_out, d_in)


def _canonical_signs(vectors: np.ndarray) -> np.ndarray:
    """Fix each vector's sign so that its largest-magnitude entry is positive (reproducible across LAPACKs)."""
    if len(vectors) == 0:
        return vectors
    pivot = np.argmax(np.abs(vectors) > np.abs(vectors).max(axis=1, keepdims=True) - 1e-9, axis=1)
    signs = np.sign(vectors[np.arange(len(vectors)), pivot])
    return vectors * signs[:, None]


def _random(d_in: int, d_out: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dim = d_in * d_out
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))[None, :]
    return q.T.reshape(dim, d_out, d_in)


__all__ = [
    "BASIS_KINDS",
    "OrbitBasis",
    "basis",
    "bias_basis",
    "clear_cache",
    "equivariant_basis",
    "expected_dimension",
    "invariant_basis",
    "nullspace_basis",
    "orbit_basis",
    "random_basis",
]
