"""Finite groups as validated Cayley tables (pure numpy, no torch).

Elements are the integers ``0 .. order - 1``; element ``0`` is always the identity. Every constructor goes
through :class:`Group`, which refuses a table that breaks a group axiom and names the broken axiom.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


class GroupError(ValueError):
    """Raised when a table, a set of matrices or a set of generators does not define a group."""


class Group:
    """
    A finite group given by its Cayley table.

    :param table: ``table[g, h]`` is the index of the product ``g·h``; shape ``(n, n)``, integer entries.
        Element ``0`` must be the identity.
    :param name: a short name used in ``repr`` and error messages.
    :param element_names: optional names of the elements (e.g. ``["e", "r", "r2", "r3"]``).
    """

    def __init__(self, table: np.ndarray | Sequence[Sequence[int]], name: str = "G", element_names: Sequence[str] | None = None):
        self.name = name
        self.table = _validate_table(np.asarray(table), name)
        self.table.setflags(write=False)
        self.order = int(self.table.shape[0])
        self.inverses = np.array([int(np.flatnonzero(self.table[g] == 0)[0]) for g in range(self.order)], dtype=np.int64)
        self.inverses.setflags(write=False)
        if element_names is None:
            element_names = [f"g{i}" for i in range(self.order)]
        if len(element_names) != self.order:
            raise GroupError(f"{name}: {len(element_names)} element names given for a group of order {self.order}")
        self.element_names = list(element_names)

    def __len__(self) -> int:
        return self.order

    def __repr__(self) -> str:
        return f"Group({self.name}, order={self.order})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Group) and np.array_equal(self.table, other.table)

    def __hash__(self) -> int:
        return hash(self.table.tobytes())

    @property
    def identity(self) -> int:
        return 0

    @property
    def elements(self) -> range:
        return range(self.order)

    def mul(self, g: int, h: int) -> int:
        """Index of the product ``g·h``."""
        return int(self.table[g, h])

    def inv(self, g: int) -> int:
        """Index of the inverse of ``g``."""
        return int(self.inverses[g])

    def is_abelian(self) -> bool:
        return bool(np.array_equal(self.table, self.table.T))

    @classmethod
    def from_matrices(cls, matrices: Sequence[np.ndarray] | np.ndarray, name: str = "G", atol: float = 1e-8) -> Group:
        """
        The group formed by a closed set of distinct invertible matrices; element ``i`` is ``matrices[i]``.

        The identity matrix must be among them; it is moved to index 0 only if it is already there (a clear error
        otherwise, so that element indices never change silently).
        """
        mats = _as_matrix_stack(matrices, name)
        n = mats.shape[0]
        flat = mats.reshape(n, -1)
        index = _ProjectionIndex(flat)
        scale = atol + 1e-5 * float(np.abs(flat).max())  # np.allclose's tolerance, bounded over the entries
        near_lo, near_hi = index.bounds(flat, scale)
        for a in np.flatnonzero(near_hi - near_lo > 1):  # rows with another row near them
            for b in index.order[near_lo[a] : near_hi[a]]:
                if b > a and np.allclose(flat[a], flat[b], atol=atol):
                    raise GroupError(f"{name}: matrices {a} and {b} are equal; a group's elements must be distinct")
        if not np.allclose(mats[0], np.eye(mats.shape[1]), atol=atol):
            raise GroupError(f"{name}: element 0 must be the identity matrix")
        table = np.empty((n, n), dtype=np.int64)
        for i in range(n):
            products = (mats[i] @ mats).reshape(n, -1)
            lo, hi = index.bounds(products, atol)
            # Usually exactly one row is near each product: check those at once, the others one by one.
            single = np.flatnonzero(hi - lo == 1)
            first = index.order[lo[single]]
            exact = np.all(np.abs(flat[first] - products[single]) <= atol, axis=1)
            table[i, single[exact]] = first[exact]
            for j in np.concatenate([np.flatnonzero(hi - lo != 1), single[~exact]]):
                match = [k for k in index.order[lo[j] : hi[j]] if np.all(np.abs(flat[k] - products[j]) <= atol)]
                if not match:
                    raise GroupError(f"{name}: not closed: the product of matrices {i} and {j} is not in the set")
                table[i, j] = min(match)
        return cls(table, name=name)

    @classmethod
    def from_generators(
        cls, generators: Sequence[np.ndarray], name: str = "G", max_order: int = 10_000, atol: float = 1e-8
    ) -> tuple[Group, np.ndarray]:
        """
        Close a set of invertible matrices under multiplication.

        :return: the group and its matrices, shape ``(order, d, d)``, element 0 the identity; ``generators[i]``
            is among them.
        """
        gens = _as_matrix_stack(generators, name)
        d = gens.shape[1]
        identity = np.eye(d)
        # A generator (or a product of two) of infinite order makes the closure grind towards max_order: refuse it fast.
        candidates = [(f"generator {i}", g) for i, g in enumerate(gens)]
        pairs = itertools.combinations(range(len(gens)), 2)
        candidates += [(f"the product of generators {i} and {j}", gens[i] @ gens[j]) for i, j in pairs]
        for what, matrix in candidates:
            if _element_order(matrix, max_order, atol) is None:
                raise GroupError(
                    f"{name}: {what} seems to have infinite order: none of its first {max_order} powers is the identity "
                    "(e.g. a rotation by an angle that is not a rational multiple of 360 degrees); give generators of a "
                    "finite group, such as a rotation by 360/n degrees"
                )
        elements = np.empty((min(max_order + 1, 64), d, d))  # grown by doubling
        elements[0] = identity
        count = 1
        frontier = [identity]
        while frontier:
            new_frontier = []
            for m in frontier:
                for gen in gens:
                    candidate = m @ gen
                    known = elements[:count]
                    # np.allclose(candidate, known[i], atol) for every i at once (its default rtol included)
                    if not np.any(np.all(np.abs(known - candidate) <= atol + 1e-5 * np.abs(known), axis=(1, 2))):
                        if count == len(elements):
                            elements = np.concatenate([elements, np.empty_like(elements)])
                        elements[count] = candidate
                        count += 1
                        new_frontier.append(candidate)
                        if count > max_order:
                            raise GroupError(
                                f"{name}: the generators produce more than {max_order} elements: the group they generate "
                                "is infinite or larger than max_order; check the generators or raise max_order"
                            )
            frontier = new_frontier
        mats = elements[:count].copy()
        return cls.from_matrices(mats, name=name, atol=atol), mats


class _ProjectionIndex:
    """
    Finds the rows of ``flat`` within a tolerance of a query row without comparing all pairs: rows are sorted by a
    fixed projection, and two rows within ``tol`` of each other entry-wise have projections within ``tol · ‖v‖₁``.
    """

    def __init__(self, flat: np.ndarray):
        self.projection = np.random.default_rng(0).standard_normal(flat.shape[1])
        keys = flat @ self.projection
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]

    def bounds(self, queries: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
        """For each query row, ``lo, hi``: ``order[lo:hi]`` holds every row within ``tol`` of it (and maybe others)."""
        keys = queries @ self.projection
        window = tol * np.abs(self.projection).sum() * (1 + 1e-9) + 1e-12
        return (
            np.searchsorted(self.sorted_keys, keys - window, side="left"),
            np.searchsorted(self.sorted_keys, keys + window, side="right"),
        )


def _element_order(matrix: np.ndarray, bound: int, atol: float) -> int | None:
    """The smallest ``k <= bound`` with ``matrix^k = I`` (as ``np.allclose``), else ``None``; powers in blocks of 64."""
    identity = np.eye(matrix.shape[0])
    block = [matrix]
    for _ in range(63):
        block.append(block[-1] @ matrix)
    powers, step = np.stack(block), block[-1]  # powers[i] = matrix^(k + i + 1)
    for k in range(0, bound, len(block)):
        is_identity = np.all(np.abs(powers - identity) <= atol + 1e-5, axis=(1, 2))
        if is_identity.any():
            order = k + int(np.argmax(is_identity)) + 1
            return order if order <= bound else None
        powers = powers @ step
    return None


def _as_matrix_stack(matrices: Sequence[np.ndarray] | np.ndarray, name: str) -> np.ndarray:
    try:
        mats = np.asarray(matrices, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise GroupError(f"{name}: expected a stack of real square matrices (n, d, d), got {matrices!r:.60} ({err})") from err
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        raise GroupError(f"{name}: expected a stack of square matrices (n, d, d), got shape {mats.shape}")
    if mats.shape[0] == 0:
        raise GroupError(f"{name}: a group needs at least one element")
    return mats


def _validate_table(table: np.ndarray, name: str) -> np.ndarray:
    """The table as int64 if it satisfies the group axioms, else a :class:`GroupError` naming the broken axiom."""
    if table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] == 0:
        raise GroupError(f"{name}: a Cayley table must be a non-empty square (n, n) array, got shape {table.shape}")
    table = as_index_array(table, f"{name}: Cayley table", GroupError)
    n = table.shape[0]
    if table.min() < 0 or table.max() >= n:
        raise GroupError(f"{name}: not closed: the table has entries outside 0..{n - 1}")
    arange = np.arange(n)
    if not (np.array_equal(table[0], arange) and np.array_equal(table[:, 0], arange)):
        raise GroupError(f"{name}: identity axiom fails: element 0 must be the identity (row 0 and column 0 = 0..{n - 1})")
    no_inverse = np.flatnonzero(~np.any(table == 0, axis=1))
    if no_inverse.size:
        raise GroupError(f"{name}: inverse axiom fails: element {no_inverse[0]} has no inverse")
    # A finite associative table with identity and inverses is a Latin square; report what breaks it.
    not_bijective = ~np.all(np.sort(table, axis=1) == arange, axis=1) | ~np.all(np.sort(table, axis=0) == arange[:, None], axis=0)
    if np.any(not_bijective):
        raise GroupError(
            f"{name}: inverse axiom fails: multiplication by element {np.flatnonzero(not_bijective)[0]} is not a bijection"
        )
    # Light's associativity test: the elements h with (g h) k = g (h k) for all g, k are closed under products, so
    # checking the h of a generating set suffices. Each check is one (n, n) comparison: O(n^2) memory, not O(n^3).
    for h in _generating_set(table):
        left = table[table[:, h]]  # (g h) k at [g, k]
        right = table[:, table[h]]  # g (h k) at [g, k]
        bad = np.argwhere(left != right)
        if bad.size:
            g, k = bad[0]
            raise GroupError(f"{name}: associativity axiom fails: ({g}·{h})·{k} != {g}·({h}·{k})")
    return table


def _generating_set(table: np.ndarray) -> list[int]:
    """A few elements whose left-nested products ``((s1 s2) s3)…`` reach every element (greedy: one per new coset)."""
    n = table.shape[0]
    generators: list[int] = []
    reached = np.zeros(n, dtype=bool)
    reached[0] = True
    while not reached.all():
        generators.append(int(np.flatnonzero(~reached)[0]))
        frontier = np.flatnonzero(reached)
        while frontier.size:
            products = np.unique(table[np.ix_(frontier, np.array(generators))])
            frontier = products[~reached[products]]
            reached[frontier] = True
    return generators


def as_index_array(values: object, what: str, error: type[Exception] = ValueError) -> np.ndarray:
    """
    ``values`` as an int64 array of indices, refusing anything that is not a whole number (no silent truncation).

    :param values: nested sequences or an array of indices.
    :param what: what the values are, for the error message.
    :param error: the exception class to raise.
    """
    array = np.asarray(values)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise error(f"{what} must hold integer indices, got entries of type {array.dtype}; give ints such as [[0, 1], [1, 0]]")
    whole = np.isfinite(array) & (array == np.round(array)) if np.issubdtype(array.dtype, np.floating) else True
    if not np.all(whole):
        raise error(f"{what} must hold integer indices, got {array[~whole][0]}: indices are not truncated; give whole numbers")
    return array.astype(np.int64)


def require_group(value: object, where: str) -> Group:
    """``value`` if it is a :class:`Group`, else a ``TypeError`` saying where a group was expected."""
    if not isinstance(value, Group):
        raise TypeError(
            f"{where} expects a sb3_equivariant Group (e.g. cyclic_group(4)), got {type(value).__name__} {value!r:.60}"
        )
    return value


def require_count(value: object, where: str, what: str = "n", minimum: int = 1, error: type[Exception] = GroupError) -> int:
    """
    ``value`` as an int if it is a whole number ``>= minimum`` (Python or numpy int, not bool), else a ``TypeError``
    (wrong type) or ``error`` (too small), naming ``where`` and ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {what} must be an int, got {type(value).__name__} {value!r:.60}")
    if value < minimum:
        raise error(f"{where}: {what} must be >= {minimum}, got {value}")
    return int(value)


def cyclic_group(n: int) -> Group:
    """The cyclic group C_n; element ``k`` is the rotation by ``k`` steps (``k·360/n`` degrees)."""
    n = require_count(n, "cyclic_group")
    a = np.arange(n)
    return Group((a[:, None] + a[None, :]) % n, name=f"C{n}", element_names=["e"] + [f"r{k}" for k in range(1, n)])


def flip_group() -> Group:
    """C2 as a reflection group: element 0 the identity, element 1 the flip."""
    return Group([[0, 1], [1, 0]], name="C2", element_names=["e", "flip"])


def dihedral_group(n: int) -> Group:
    """
    The dihedral group D_n of order ``2n``: element ``k`` (``k < n``) is the rotation ``r^k``; element ``n + k`` is
    ``r^k s``, a reflection (``s`` first, then ``r^k``). Relations: ``r^n = s^2 = e``, ``s r = r^-1 s``.
    """
    n = require_count(n, "dihedral_group")
    order = 2 * n
    table = np.empty((order, order), dtype=np.int64)
    for g in range(order):
        a, sa = g % n, g // n
        for h in range(order):
            b, sb = h % n, h // n
            # r^a s^sa r^b s^sb = r^(a + (-1)^sa b) s^(sa + sb)
            rot = (a + (b if sa == 0 else -b)) % n
            table[g, h] = rot + n * ((sa + sb) % 2)
    names = ["e"] + [f"r{k}" for k in range(1, n)] + ["s"] + [f"r{k}s" for k in range(1, n)]
    return Group(table, name=f"D{n}", element_names=names)


def direct_product(first: Group, second: Group) -> Group:
    """``first × second``; element ``i * len(second) + j`` is the pair ``(i, j)``."""
    require_group(first, "direct_product")
    require_group(second, "direct_product")
    n1, n2 = first.order, second.order
    table = np.empty((n1 * n2, n1 * n2), dtype=np.int64)
    for g, h in itertools.product(range(n1 * n2), repeat=2):
        table[g, h] = first.table[g // n2, h // n2] * n2 + second.table[g % n2, h % n2]
    names = [f"({a},{b})" for a in first.element_names for b in second.element_names]
    return Group(table, name=f"{first.name}x{second.name}", element_names=names)


def trivial_group() -> Group:
    """The group with one element (no symmetry)."""
    return Group([[0]], name="C1", element_names=["e"])
