import numpy as np
import pytest

from sb3_equivariant.group import (
    Group,
    GroupError,
    cyclic_group,
    dihedral_group,
    direct_product,
    flip_group,
    trivial_group,
)

GROUPS = [trivial_group(), flip_group(), cyclic_group(3), cyclic_group(4), dihedral_group(3), dihedral_group(4)]


@pytest.mark.parametrize("group", [*GROUPS, direct_product(flip_group(), cyclic_group(4))], ids=repr)
def test_group_axioms(group: Group) -> None:
    n = group.order
    for g in range(n):
        assert group.mul(0, g) == g == group.mul(g, 0)
        assert group.mul(g, group.inv(g)) == 0 == group.mul(group.inv(g), g)
        for h in range(n):
            for k in range(n):
                assert group.mul(group.mul(g, h), k) == group.mul(g, group.mul(h, k))


def test_orders_and_commutativity() -> None:
    assert [len(g) for g in GROUPS] == [1, 2, 3, 4, 6, 8]
    assert cyclic_group(4).is_abelian()
    assert not dihedral_group(4).is_abelian()
    assert direct_product(flip_group(), cyclic_group(4)).order == 8


def test_dihedral_relations() -> None:
    d4 = dihedral_group(4)
    r, s = 1, 4
    assert d4.mul(s, s) == 0
    r_inv = d4.inv(r)
    assert d4.mul(s, r) == d4.mul(r_inv, s)  # s r = r⁻¹ s


@pytest.mark.parametrize(
    "table, axiom",
    [
        ([[0, 1], [1, 2]], "not closed"),
        ([[1, 0], [0, 1]], "identity"),
        ([[0, 1, 2], [1, 1, 1], [2, 1, 0]], "inverse"),
        # A Latin square with identity and inverses that is not associative (a loop, not a group).
        (
            [[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3], [3, 2, 4, 0, 1], [4, 3, 1, 2, 0]],
            "associativity",
        ),
        ([[0, 1], [1]], "square"),
    ],
)
def test_invalid_tables_name_the_axiom(table: list, axiom: str) -> None:
    with pytest.raises((GroupError, ValueError), match=axiom):
        Group(np.array(table, dtype=object) if axiom == "square" else table)


def test_from_matrices_and_generators() -> None:
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    group, mats = Group.from_generators([rot])
    assert group.order == 4 and group.is_abelian()
    assert Group.from_matrices(mats) == group
    with pytest.raises(GroupError, match="not closed"):
        Group.from_matrices([np.eye(2), rot])
    with pytest.raises(GroupError, match="identity"):
        Group.from_matrices([rot, np.eye(2)])
    flip = np.array([[1.0, 0.0], [0.0, -1.0]])
    d4, _ = Group.from_generators([rot, flip])
    assert d4.order == 8 and not d4.is_abelian()


def _rotation(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


@pytest.mark.parametrize(
    "generators, match",
    [
        ([_rotation(1.0)], "generator 0 seems to have infinite order"),  # 1 radian: no power is the identity
        # Two reflections of finite order whose product is a rotation by 2 radians: the group they generate is infinite.
        ([np.diag([1.0, -1.0]), _rotation(2.0) @ np.diag([1.0, -1.0])], "product of generators 0 and 1"),
    ],
)
def test_from_generators_refuses_infinite_order_fast(generators: list, match: str) -> None:
    with pytest.raises(GroupError, match=match):
        Group.from_generators(generators)


def test_from_generators_still_closes_finite_groups() -> None:
    group, mats = Group.from_generators([_rotation(2 * np.pi / 12), np.diag([1.0, -1.0])])
    assert group.order == len(mats) == 24 and not group.is_abelian()
    # Products are looked up through a sorted projection, not against every element: large groups close quickly.
    group, mats = Group.from_generators([_rotation(2 * np.pi / 150), np.diag([1.0, -1.0])])
    assert group.order == 300 and Group.from_matrices(mats) == group
    rotation = next(g for g in group.elements if np.allclose(mats[g], _rotation(2 * np.pi / 150)))
    assert all(group.mul(rotation, group.mul(rotation, g)) == group.mul(group.mul(rotation, rotation), g) for g in group.elements)


def test_from_matrices_refuses_equal_elements_and_open_sets() -> None:
    _, mats = Group.from_generators([_rotation(2 * np.pi / 12), np.diag([1.0, -1.0])])
    with pytest.raises(GroupError, match="matrices 3 and 24 are equal"):
        Group.from_matrices(np.concatenate([mats, mats[3:4] + 1e-10]))
    with pytest.raises(GroupError, match="not closed: the product of matrices"):
        Group.from_matrices(mats[:-1])


@pytest.mark.parametrize(
    "table, error, match",
    [
        ([["0", "1"], ["1", "0"]], GroupError, "integer indices.*<U1"),
        (np.array([[0, 1], [1, 0]], dtype=complex), GroupError, "integer indices.*complex"),
        (np.array([[True]]), GroupError, "integer indices.*bool"),
        ([[0.0, 1.0], [1.0, 0.5]], GroupError, "integer indices, got 0.5"),
        (np.array([[0.0, 1.0], [1.0, np.nan]]), GroupError, "integer indices, got nan"),
    ],
)
def test_table_entries_must_be_integers(table: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Group(table)  # type: ignore[arg-type]


def test_whole_float_table_is_accepted() -> None:
    assert Group([[0.0, 1.0], [1.0, 0.0]]) == flip_group()


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: cyclic_group("4"), TypeError, "cyclic_group: n must be an int, got str '4'"),
        (lambda: cyclic_group(4.0), TypeError, "cyclic_group: n must be an int, got float"),
        (lambda: cyclic_group(True), TypeError, "cyclic_group: n must be an int, got bool"),
        (lambda: cyclic_group(0), GroupError, "cyclic_group: n must be >= 1, got 0"),
        (lambda: dihedral_group("4"), TypeError, "dihedral_group: n must be an int"),
        (lambda: direct_product(flip_group(), 3), TypeError, "direct_product expects a sb3_equivariant Group.*got int"),
        (lambda: direct_product("C2", flip_group()), TypeError, "direct_product expects a sb3_equivariant Group.*got str"),
        (lambda: Group.from_generators("abc"), GroupError, "real square matrices"),
    ],
)
def test_wrong_argument_types_name_the_expected_type(make, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_large_cyclic_group_is_validated_in_bounded_memory() -> None:
    # The associativity check used (n, n, n) arrays: 16 GB for n = 1000. Light's test over a generating set is O(n^2).
    group = cyclic_group(1000)
    assert group.order == 1000 and group.mul(999, 2) == 1 and group.inv(1) == 999
    assert direct_product(dihedral_group(5), cyclic_group(6)).order == 60


def test_associativity_failure_found_with_several_generators() -> None:
    # The 5-element loop above times C2: a Latin square with identity that needs two generators, not associative.
    loop = np.array([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3], [3, 2, 4, 0, 1], [4, 3, 1, 2, 0]])
    c2 = flip_group().table
    table = (loop[:, None, :, None] * 2 + c2[None, :, None, :]).reshape(10, 10)
    with pytest.raises(GroupError, match="associativity axiom fails"):
        Group(table)
