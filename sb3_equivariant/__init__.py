"""sb3-equivariant: MDP homomorphic networks for Stable-Baselines3."""

from sb3_equivariant.envs import *  # noqa: F403
from sb3_equivariant.envs import __all__ as _envs_all
from sb3_equivariant.group import Group, GroupError, cyclic_group, dihedral_group, direct_product, flip_group, trivial_group
from sb3_equivariant.policies import *  # noqa: F403
from sb3_equivariant.policies import __all__ as _policies_all
from sb3_equivariant.representation import (
    ImageAction,
    Representation,
    RepresentationError,
    SpatialAction,
    dihedral_action,
    flip_action,
    rotation_action,
)
from sb3_equivariant.version import __version__

__all__ = [
    "Group",
    "GroupError",
    "ImageAction",
    "Representation",
    "RepresentationError",
    "SpatialAction",
    "__version__",
    "cyclic_group",
    "dihedral_action",
    "dihedral_group",
    "direct_product",
    "flip_action",
    "flip_group",
    "rotation_action",
    "trivial_group",
    *_envs_all,
    *_policies_all,
]

# Registers the multi-agent envs (sb3_equivariant/Wildlife-v0) and their symmetries; pettingzoo is imported lazily.
import sb3_equivariant.multiagent  # noqa: F401
