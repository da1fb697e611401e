import pickle

import numpy as np
import pytest
import torch as th

from sb3_equivariant.group import cyclic_group, dihedral_group, flip_group
from sb3_equivariant.representation import (
    ImageAction,
    Representation,
    RepresentationError,
    SpatialAction,
    SpatialOp,
    copies,
    dihedral_action,
    direct_sum,
    flip_action,
    from_generators,
    permutation,
    regular,
    rotation_action,
    signed_permutation,
    tensor_product,
    trivial,
)

C2, C4, D4 = flip_group(), cyclic_group(4), dihedral_group(4)


def _check_homomorphism(rep: Representation) -> None:
    g_ = rep.group
    for g in g_.elements:
        for h in g_.elements:
            np.testing.assert_allclose(rep(g) @ rep(h), rep(g_.mul(g, h)), atol=1e-12)


REPS = [
    trivial(C4, 3),
    regular(C2),
    regular(C4),
    regular(D4),
    signed_permutation(C2, None, {1: [-1, -1, -1, -1]}),  # CartPole
    signed_permutation(C2, None, {1: [1, -1, 1, -1, -1, -1]}),  # Acrobot
    permutation(C4, {1: [0, 2, 3, 4, 1]}),  # GridWorld actions
    permutation(D4, {1: [1, 2, 3, 0], 4: [0, 3, 2, 1]}),
    direct_sum(regular(C2), signed_permutation(C2, None, {1: [-1]})),
    tensor_product(regular(C4), permutation(C4, {1: [1, 2, 3, 0]})),
    copies(regular(D4), 3),
    ImageAction(rotation_action(), channels=2).as_representation(3, 3),
    ImageAction(dihedral_action(), regular(D4)).as_representation(3, 3),
    from_generators(C4, {1: np.array([[0.0, -1.0], [1.0, 0.0]])}),
]


@pytest.mark.parametrize("rep", REPS, ids=repr)
def test_constructors_are_homomorphisms(rep: Representation) -> None:
    _check_homomorphism(rep)
    assert rep.matrices.shape == (rep.group.order, rep.dim, rep.dim)
    np.testing.assert_allclose(rep.character, np.trace(rep.matrices, axis1=1, axis2=2))


@pytest.mark.parametrize("rep", REPS, ids=repr)
def test_apply_matches_matrices_numpy_and_torch(rep: Representation) -> None:
    x = np.random.randn(5, 2, rep.dim).astype(np.float32)
    for g in rep.group.elements:
        expected = x @ rep(g).T
        np.testing.assert_allclose(rep.apply(x, g), expected, atol=1e-6)
        np.testing.assert_allclose(rep.apply(th.as_tensor(x), g).numpy(), expected, atol=1e-6)


def test_signed_permutation_convention() -> None:
    rep = signed_permutation(C2, {1: [1, 0, 2]}, {1: [1, 1, -1]})
    np.testing.assert_array_equal(rep.apply(np.array([10.0, 20.0, 30.0]), 1), [20.0, 10.0, -30.0])
    assert rep.is_monomial and not rep.is_permutation
    assert regular(C4).is_permutation


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Representation(C2, [np.eye(2)]), "1 matrices given"),
        (lambda: Representation(C2, np.ones((2, 2, 3))), "shape"),
        (lambda: Representation(C2, [np.eye(2), 2 * np.eye(2)]), "homomorphism"),
        (lambda: Representation(C2, [-np.eye(2), -np.eye(2)]), "identity"),
        (lambda: permutation(C4, {1: [1, 2, 0]}), "homomorphism"),  # a 3-cycle: r^4 would not be e
        (lambda: permutation(C2, {1: [0, 0, 1]}), "not a permutation"),
        (lambda: signed_permutation(C2, None, {1: [2, 1]}), "signs"),
        (lambda: permutation(C2, [[0, 1]]), "1 entries"),
        (lambda: direct_sum(regular(C2), regular(C4)), "different groups"),
        (lambda: from_generators(D4, {1: np.eye(2)}), "do not generate"),
        # Float indices used to be truncated silently (1.9 -> 1, 0.2 -> 0).
        (lambda: permutation(C2, [[0, 1], [1.9, 0.2]]), "integer indices, got 1.9"),
        (lambda: signed_permutation(C2, {1: [0.5, 1]}, None), "integer indices, got 0.5"),
        (lambda: Representation.from_monomial(C2, np.array([[0, 1], [1.5, 0]])), "integer indices, got 1.5"),
        (lambda: copies(regular(C2), 0), "copies: n must be >= 1"),
    ],
)
def test_invalid_representations_raise(make, match: str) -> None:
    with pytest.raises(RepresentationError, match=match):
        make()


def test_whole_float_indices_are_accepted() -> None:
    assert permutation(C2, [[0.0, 1.0], [1.0, 0.0]]) == regular(C2)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: regular(4), "regular expects a sb3_equivariant Group.*got int"),
        (lambda: regular("C4"), "regular expects a sb3_equivariant Group.*got str"),
        (lambda: trivial("C2"), "trivial expects a sb3_equivariant Group"),
        (lambda: trivial(C2, 2.0), "trivial: dim must be an int"),
        (lambda: permutation("C2", [[0, 1], [1, 0]]), "permutation expects a sb3_equivariant Group"),
        (lambda: Representation("C2", [np.eye(2)]), "Representation expects a sb3_equivariant Group"),
        (lambda: direct_sum(regular(C2), 3), "direct_sum expects a sb3_equivariant Representation.*got int"),
        (lambda: direct_sum([regular(C2), regular(C2)]), r"separate arguments: direct_sum\(\*reps\)"),
        (lambda: tensor_product(regular(C2), "x"), "tensor_product expects a sb3_equivariant Representation"),
        (lambda: copies(C2, 2), "copies expects a sb3_equivariant Representation.*got Group"),
        (lambda: copies(regular(C2), "3"), "copies: n must be an int, got str"),
    ],
)
def test_wrong_argument_types_name_the_expected_type(make, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        make()


def test_size_is_a_deprecated_name_of_the_group_order() -> None:
    rep = regular(D4)
    assert rep.dim == 8 and rep.group.order == 8
    rep = trivial(D4, 3)
    with pytest.warns(DeprecationWarning, match="rep.dim for the dimension"):
        assert rep.size == 8 != rep.dim


def test_pickle_and_equality() -> None:
    rep = ImageAction(dihedral_action(), regular(D4)).as_representation(5, 5)
    clone = pickle.loads(pickle.dumps(rep))
    assert clone == rep and hash(clone) == hash(rep)
    np.testing.assert_array_equal(clone.matrices, rep.matrices)
    assert regular(C4) != trivial(C4, 4)


SPATIAL = [flip_action("vertical"), flip_action("horizontal"), rotation_action(), dihedral_action()]


@pytest.mark.parametrize("spatial", SPATIAL, ids=repr)
@pytest.mark.parametrize("layout", ["CHW", "HWC"])
def test_image_action_is_group_action(spatial: SpatialAction, layout: str) -> None:
    group = spatial.group
    action = ImageAction(spatial, regular(group), layout=layout)
    shape = (3, group.order, 6, 6) if layout == "CHW" else (3, 6, 6, group.order)
    x = np.random.randn(*shape)
    for g in group.elements:
        for h in group.elements:
            np.testing.assert_array_equal(action.transform(action.transform(x, h), g), action.transform(x, group.mul(g, h)))
        np.testing.assert_array_equal(action.transform(th.as_tensor(x), g).numpy(), action.transform(x, g))


def test_image_action_semantics() -> None:
    img = np.arange(6).reshape(1, 2, 3)
    np.testing.assert_array_equal(ImageAction(flip_action("vertical"), channels=1).transform(img, 1), img[:, ::-1, :])
    np.testing.assert_array_equal(ImageAction(flip_action("horizontal"), channels=1).transform(img, 1), img[:, :, ::-1])
    square = np.arange(9).reshape(1, 3, 3)
    np.testing.assert_array_equal(ImageAction(rotation_action(), channels=1).transform(square, 1), np.rot90(square, 1, (1, 2)))


def test_image_action_errors() -> None:
    action = ImageAction(rotation_action(), channels=2)
    with pytest.raises(RepresentationError, match="square"):
        action.transform(np.zeros((2, 4, 5)), 1)
    with pytest.raises(RepresentationError, match="2 channels"):
        action.transform(np.zeros((3, 4, 4)), 1)
    with pytest.raises(RepresentationError, match="not a group action"):
        SpatialAction(C2, [SpatialOp(), SpatialOp(rot=1)])
    with pytest.raises(RepresentationError, match="channels=3"):
        ImageAction(rotation_action(), regular(C4), channels=3)


def test_image_representation_matches_transform() -> None:
    action = ImageAction(dihedral_action(), signed_permutation(D4, None, {1: [1, -1], 4: [-1, 1]}))
    rep = action.as_representation(4, 4)
    x = np.random.randn(7, 2, 4, 4)
    for g in D4.elements:
        np.testing.assert_allclose(rep.apply(x.reshape(7, -1), g), action.transform(x, g).reshape(7, -1), atol=1e-12)


@pytest.mark.parametrize("perms, signs", [({1: []}, None), (None, {1: []})])
def test_empty_signed_permutation_is_refused(perms, signs) -> None:
    with pytest.raises(RepresentationError, match="0-dimensional representation"):
        signed_permutation(flip_group(), perms, signs)
