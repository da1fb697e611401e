"""Representations of finite groups on vectors and on images: the public entry point.

The algebra of representations (validation, ``trivial``, ``regular``, ``permutation``, ``direct_sum``...) lives in
:mod:`sb3_equivariant.representation_algebra`, the actions on images (flips, quarter turns, :class:`ImageAction`) in
:mod:`sb3_equivariant.image_action`. Both are re-exported here, the import path of saved models and user code.

Convention used everywhere in the package: ``ρ(g) ρ(h) = ρ(g·h)``, and a (signed) permutation representation sends
basis vector ``e_i`` to ``signs[g][i] · e_{perm[g][i]}``; applied to a vector ``x`` that is
``y[perm[g][i]] = signs[g][i] · x[i]``.
"""

from sb3_equivariant.group import GroupError
from sb3_equivariant.image_action import ImageAction, SpatialAction, SpatialOp, dihedral_action, flip_action, rotation_action
from sb3_equivariant.representation_algebra import (
    Representation,
    RepresentationError,
    copies,
    direct_sum,
    from_generators,
    permutation,
    regular,
    signed_permutation,
    tensor_product,
    trivial,
)

__all__ = [
    "GroupError",
    "ImageAction",
    "Representation",
    "RepresentationError",
    "SpatialAction",
    "SpatialOp",
    "copies",
    "dihedral_action",
    "direct_sum",
    "flip_action",
    "from_generators",
    "permutation",
    "regular",
    "rotation_action",
    "signed_permutation",
    "tensor_product",
    "trivial",
]
