import numpy as np
import pytest

from sb3_equivariant.group import GroupError, cyclic_group, dihedral_group, direct_product, flip_group
from sb3_equivariant.representation import (
    ImageAction,
    Representation,
    RepresentationError,
    dihedral_action,
    flip_action,
    from_generators,
    permutation,
    regular,
    rotation_action,
    signed_permutation,
    trivial,
)
from sb3_equivariant.symmetrizer import (
    clear_cache,
    equivariant_basis,
    expected_dimension,
    invariant_basis,
    nullspace_basis,
    random_basis,
)

C2, C4, D4 = flip_group(), cyclic_group(4), dihedral_group(4)
CARTPOLE_OBS = signed_permutation(C2, None, {1: [-1, -1, -1, -1]})
GRID_ACTIONS = permutation(C4, {1: [0, 2, 3, 4, 1]})
ROT2 = from_generators(C4, {1: np.array([[0.0, -1.0], [1.0, 0.0]])})  # not monomial-free: uses the projector path
ROT45 = from_generators(cyclic_group(8), {1: np.array([[np.sqrt(0.5), -np.sqrt(0.5)], [np.sqrt(0.5), np.sqrt(0.5)]])})

PAIRS = [
    (CARTPOLE_OBS, regular(C2)),
    (regular(C2), regular(C2)),
    (regular(C2), trivial(C2)),
    (regular(C4), GRID_ACTIONS),
    (regular(C4), regular(C4)),
    (regular(D4), regular(D4)),
    (trivial(D4), regular(D4)),
    (signed_permutation(C2, None, {1: [-1]}), trivial(C2)),  # empty space
    (ImageAction(rotation_action(), channels=1).as_representation(7, 7), regular(C4)),
    (ImageAction(rotation_action(), regular(C4)).as_representation(5, 5), regular(C4)),
    (ImageAction(dihedral_action(), regular(D4)).as_representation(3, 3), regular(D4)),
    (ImageAction(flip_action("vertical"), channels=4).as_representation(8, 8), regular(C2)),
    (ROT2, ROT2),
    (ROT2, regular(C4)),
    (ROT45, ROT45),
]


def _ids(pair: tuple) -> str:
    return f"{pair[0].name}->{pair[1].name}"


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
def test_basis_is_equivariant_orthonormal_and_complete(pair: tuple[Representation, Representation]) -> None:
    rep_in, rep_out = pair
    basis = equivariant_basis(rep_in, rep_out)
    k = expected_dimension(rep_in, rep_out)
    assert basis.shape == (k, rep_out.dim, rep_in.dim)
    flat = basis.reshape(k, rep_out.dim * rep_in.dim)
    np.testing.assert_allclose(flat @ flat.T, np.eye(k), atol=1e-10)
    for g in rep_in.group.elements:
        np.testing.assert_allclose(rep_out(g) @ basis, basis @ rep_in(g), atol=1e-10)


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
def test_nullspace_is_the_complement(pair: tuple[Representation, Representation]) -> None:
    rep_in, rep_out = pair
    eq = equivariant_basis(rep_in, rep_out).reshape(-1, rep_in.dim * rep_out.dim)
    null = nullspace_basis(rep_in, rep_out).reshape(-1, rep_in.dim * rep_out.dim)
    assert len(eq) + len(null) == rep_in.dim * rep_out.dim
    both = np.concatenate([eq, null])
    np.testing.assert_allclose(both @ both.T, np.eye(len(both)), atol=1e-10)


def test_paper_basis_sizes() -> None:
    # Sizes reported for the authors' networks (reference.md): CartPole 4→2: 4 of 8, 2→2: 2 of 4, 2→1: 1 of 2;
    # GridWorld conv1 7×7: 49 of 196, conv2 5×5 regular→regular: 100 of 400, fc 4→4: 4 of 16, policy 4→5: 5 of 20.
    assert len(equivariant_basis(CARTPOLE_OBS, regular(C2))) == 4
    assert len(equivariant_basis(regular(C2), regular(C2))) == 2
    assert len(equivariant_basis(regular(C2), trivial(C2))) == 1
    assert len(equivariant_basis(ImageAction(rotation_action(), channels=1).as_representation(7, 7), regular(C4))) == 49
    assert len(equivariant_basis(ImageAction(rotation_action(), regular(C4)).as_representation(5, 5), regular(C4))) == 100
    assert len(equivariant_basis(regular(C4), regular(C4))) == 4
    assert len(equivariant_basis(regular(C4), GRID_ACTIONS)) == 5


def test_plain_matrix_lists_match_representations() -> None:
    rep_in, rep_out = regular(C4), GRID_ACTIONS
    from_lists = equivariant_basis(list(rep_in.matrices), list(rep_out.matrices))
    np.testing.assert_allclose(from_lists, equivariant_basis(rep_in, rep_out))
    np.testing.assert_allclose(invariant_basis(list(regular(C4).matrices)), invariant_basis(regular(C4)))


def test_plain_lists_are_validated() -> None:
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    with pytest.raises(GroupError, match="not closed"):
        equivariant_basis([np.eye(2), rot], [np.eye(1), np.eye(1)])
    with pytest.raises(RepresentationError, match="one per group element"):
        equivariant_basis([np.eye(2)], [np.eye(1), np.eye(1)])
    with pytest.raises(RepresentationError, match="shape"):
        equivariant_basis(np.ones((2, 2, 3)), [np.eye(1), np.eye(1)])
    with pytest.raises(RepresentationError, match="C4, rep_out of C2xC2"):
        equivariant_basis(regular(C4), regular(direct_product(C2, C2)))


def test_deterministic_cached_and_readonly() -> None:
    pair = (ImageAction(dihedral_action(), regular(D4)).as_representation(5, 5), regular(D4))
    clear_cache()
    np.random.seed(1)
    first = equivariant_basis(*pair).copy()
    np.random.seed(2)
    clear_cache()
    second = equivariant_basis(*pair)
    np.testing.assert_array_equal(first, second)
    assert equivariant_basis(*pair) is second  # cached
    with pytest.raises(ValueError):
        second[0, 0, 0] = 1.0
    np.testing.assert_array_equal(random_basis(*pair[:1], regular(D4), seed=3), random_basis(pair[0], regular(D4), seed=3))


def test_random_basis_is_full_and_orthonormal() -> None:
    basis = random_basis(CARTPOLE_OBS, regular(C2), seed=0)
    assert basis.shape == (8, 2, 4)
    flat = basis.reshape(8, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(8), atol=1e-10)
    assert not np.allclose(random_basis(CARTPOLE_OBS, regular(C2), seed=1), basis)


def test_invariant_basis() -> None:
    np.testing.assert_allclose(invariant_basis(regular(C4)), np.full((1, 4), 0.5))
    assert invariant_basis(CARTPOLE_OBS).shape == (0, 4)
    assert invariant_basis(GRID_ACTIONS).shape == (2, 5)  # "stay" and the sum of the moves


def test_pong_network_bases() -> None:
    # The paper's Pong net: flip group, 4 stacked frames, 8×8 lifting filters then 5×5 group filters
    # (build time is measured by benchmarks/layers.py).
    flip = flip_action("vertical")
    lifting = equivariant_basis(ImageAction(flip, channels=4).as_representation(8, 8), regular(C2))
    group_conv = equivariant_basis(ImageAction(flip, regular(C2)).as_representation(5, 5), regular(C2))
    assert lifting.shape == (4 * 64, 2, 4 * 64)  # half of the 2·256 free weights of each output pair
    assert group_conv.shape == (50, 2, 50)
