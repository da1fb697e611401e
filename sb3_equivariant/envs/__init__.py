"""Environment symmetries: the Symmetry object, wrappers, the registry of known symmetric envs, the verifier."""

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError

__all__ = ["Symmetry", "SymmetryError"]
