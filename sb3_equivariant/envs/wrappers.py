"""
Former home of :class:`SymmetricEnv`, :func:`get_symmetry` and the ``make_symmetric_*`` factories, kept so that
imports and pickles naming ``sb3_equivariant.envs.wrappers`` still resolve. They now live in
:mod:`~sb3_equivariant.envs.propagation` (the symmetry through wrappers) and :mod:`~sb3_equivariant.envs.factories`.
"""

from sb3_equivariant.envs.factories import make_symmetric_atari_env, make_symmetric_env, make_symmetric_vec_env
from sb3_equivariant.envs.propagation import NO_SYMMETRY_MESSAGE, SymmetricEnv, get_symmetry

__all__ = [
    "NO_SYMMETRY_MESSAGE",
    "SymmetricEnv",
    "get_symmetry",
    "make_symmetric_atari_env",
    "make_symmetric_env",
    "make_symmetric_vec_env",
]
