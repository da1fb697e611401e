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
        table = np.asarray(table)
        self.name = name
        _validate_table(table, name)
        self.table = table.astype(np.int64)
        self.table.setflags(write=False)
        self.order = int(table.shape[0])
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
        for i, j in itertools.combinations(range(n), 2):
            if np.allclose(flat[i], flat[j], atol=atol):
                raise GroupError(f"{name}: matrices {i} and {j} are equal; a group's elements must be distinct")
        if not np.allclose(mats[0], np.eye(mats.shape[1]), atol=atol):
            raise GroupError(f"{name}: element 0 must be the identity matrix")
        table = np.empty((n, n), dtype=np.int64)
        for i in range(n):
            products = (mats[i] @ mats).reshape(n, -1)
            for j in range(n):
                match = np.flatnonzero(np.all(np.abs(flat - products[j]) <= atol, axis=1))
                if match.size == 0:
                    raise GroupError(f"{name}: not closed: the product of matrices {i} and {j} is not in the set")
                table[i, j] = match[0]
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
        elements = [np.eye(d)]
        frontier = [np.eye(d)]
        while frontier:
            new_frontier = []
            for m in frontier:
                for gen in gens:
                    candidate = m @ gen
                    if not any(np.allclose(candidate, e, atol=atol) for e in elements):
                        elements.append(candidate)
                        new_frontier.append(candidate)
                        if len(elements) > max_order:
                            raise GroupError(f"{name}: the generators produce more than {max_order} elements (not finite?)")
            frontier = new_frontier
        mats = np.stack(elements)
        return cls.from_matrices(mats, name=name, atol=atol), mats


def _as_matrix_stack(matrices: Sequence[np.ndarray] | np.ndarray, name: str) -> np.ndarray:
    mats = np.asarray(matrices, dtype=np.float64)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        raise GroupError(f"{name}: expected a stack of square matrices (n, d, d), got shape {mats.shape}")
    if mats.shape[0] == 0:
        raise GroupError(f"{name}: a group needs at least one element")
    return mats


def _validate_table(table: np.ndarray, name: str) -> None:
    if table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] == 0:
        raise GroupError(f"{name}: a Cayley table must be a non-empty square (n, n) array, got shape {table.shape}")
    if not np.issubdtype(table.dtype, np.integer):
        if not np.all(np.equal(np.mod(table, 1), 0)):
            raise GroupError(f"{name}: Cayley table entries must be integer element indices")
        table = table.astype(np.int64)
    n = table.shape[0]
    if table.min() < 0 or table.max() >= n:
        raise GroupError(f"{name}: not closed: the table has entries outside 0..{n - 1}")
    arange = np.arange(n)
    if not (np.array_equal(table[0], arange) and np.array_equal(table[:, 0], arange)):
        raise GroupError(f"{name}: identity axiom fails: element 0 must be the identity (row 0 and column 0 = 0..{n - 1})")
    for g in range(n):
        if not np.any(table[g] == 0):
            raise GroupError(f"{name}: inverse axiom fails: element {g} has no inverse")
        if sorted(table[g]) != list(arange) or sorted(table[:, g]) != list(arange):
            # A finite associative table with identity and inverses is a Latin square; report what breaks it.
            raise GroupError(f"{name}: inverse axiom fails: multiplication by element {g} is not a bijection")
    # (g h) k == g (h k) for all triples, vectorised: table[table[g, h], k] vs table[g, table[h, k]].
    left = table[table[:, :, None], arange[None, None, :]]
    right = table[arange[:, None, None], table[None, :, :]]
    bad = np.argwhere(left != right)
    if bad.size:
        g, h, k = bad[0]
        raise GroupError(f"{name}: associativity axiom fails: ({g}·{h})·{k} != {g}·({h}·{k})")


def cyclic_group(n: int) -> Group:
    """The cyclic group C_n; element ``k`` is the rotation by ``k`` steps (``k·360/n`` degrees)."""
    if n < 1:
        raise GroupError(f"C_n needs n >= 1, got {n}")
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
    if n < 1:
        raise GroupError(f"D_n needs n >= 1, got {n}")
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
    n1, n2 = first.order, second.order
    table = np.empty((n1 * n2, n1 * n2), dtype=np.int64)
    for g, h in itertools.product(range(n1 * n2), repeat=2):
        table[g, h] = first.table[g // n2, h // n2] * n2 + second.table[g % n2, h % n2]
    names = [f"({a},{b})" for a in first.element_names for b in second.element_names]
    return Group(table, name=f"{first.name}x{second.name}", element_names=names)


def trivial_group() -> Group:
    """The group with one element (no symmetry)."""
    return Group([[0]], name="C1", element_names=["e"])
