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
