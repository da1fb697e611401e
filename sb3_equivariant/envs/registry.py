"""
Registry of environment symmetries: ``env_id -> factory`` building the env's :class:`Symmetry`, and the ids known to
have none (with the reason). The built-in entries are in :mod:`~sb3_equivariant.envs.catalogue`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError

SymmetryFactory = Callable[[gym.Env | None], Symmetry]

_REGISTRY: dict[str, SymmetryFactory] = {}
_NO_SYMMETRY: dict[str, str] = {}


def register_symmetry(env_id: str, factory: SymmetryFactory, overwrite: bool = False) -> None:
    """
    Register the symmetry of an environment.

    :param env_id: the gymnasium id (e.g. ``"CartPole-v1"``).
    :param factory: ``factory(env)`` returns the :class:`Symmetry`; ``env`` is the unwrapped env when one is at hand
        and ``None`` otherwise. Use a module-level function so that the symmetry pickles (``SubprocVecEnv``).
    :param overwrite: replace an existing entry instead of raising.
    """
    if not callable(factory):
        raise SymmetryError(f"the symmetry factory for {env_id!r} must be callable, got {factory!r}")
    if not overwrite and (env_id in _REGISTRY or env_id in _NO_SYMMETRY):
        raise SymmetryError(f"a symmetry for {env_id!r} is already registered; pass overwrite=True to replace it")
    _NO_SYMMETRY.pop(env_id, None)
    _REGISTRY[env_id] = factory


def register_no_symmetry(env_id: str, reason: str) -> None:
    """Record that ``env_id`` has no usable symmetry, so that asking for one explains why."""
    _REGISTRY.pop(env_id, None)
    _NO_SYMMETRY[env_id] = reason


def registered_envs() -> list[str]:
    """Sorted ids of the environments with a registered symmetry."""
    return sorted(_REGISTRY)


def has_symmetry(env_id: str) -> bool:
    return env_id in _REGISTRY


def symmetry_for(env_id: str, env: gym.Env | None = None) -> Symmetry:
    """
    The registered symmetry of ``env_id``.

    :param env_id: the gymnasium id.
    :param env: the env itself, if already made (Atari factories read its action meanings; made on demand otherwise).
    :raises SymmetryError: for an env known to have no symmetry (with the reason) or an unknown id (listing the
        registered ones).
    """
    if env_id in _NO_SYMMETRY:
        raise SymmetryError(f"{env_id} has no symmetry: {_NO_SYMMETRY[env_id]}")
    if env_id not in _REGISTRY:
        raise SymmetryError(
            f"no symmetry registered for {env_id!r}; registered envs: {', '.join(registered_envs())}. "
            "Register one with register_symmetry(env_id, factory) or wrap your env with SymmetricEnv(env, symmetry)."
        )
    return _REGISTRY[env_id](None if env is None else env.unwrapped)


def __getattr__(name: str) -> Any:
    """The built-in factories under their former path (``sb3_equivariant.envs.registry.cartpole_symmetry``)."""
    from sb3_equivariant.envs import catalogue

    if name in catalogue.__all__:
        return getattr(catalogue, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SymmetryFactory",
    "has_symmetry",
    "register_no_symmetry",
    "register_symmetry",
    "registered_envs",
    "symmetry_for",
]
