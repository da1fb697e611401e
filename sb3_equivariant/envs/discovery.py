"""Finding the env symmetry from inside SB3: policies and buffers are built by the algorithm, which has the env."""

from __future__ import annotations

import sys

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_equivariant.envs.symmetry import Symmetry


def constructing_algorithm() -> BaseAlgorithm | None:
    """
    The SB3 algorithm whose ``_setup_model`` is running, if any. SB3 builds policies and buffers as
    ``cls(observation_space, action_space, ..., **kwargs)`` without the env; the algorithm that holds the env is the
    nearest caller frame whose ``self`` is a ``BaseAlgorithm``.
    """
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, BaseAlgorithm):
            return candidate
        frame = frame.f_back  # type: ignore[assignment]
    return None


def symmetry_of_constructing_algorithm(store_in: str | None = None) -> Symmetry | None:
    """
    The symmetry of the env of :func:`constructing_algorithm` (``None`` without one), recorded in the algorithm's
    ``store_in`` kwargs dict (e.g. ``"policy_kwargs"``) so that ``save`` / ``load`` work without the env.
    """
    from sb3_equivariant.envs.wrappers import get_symmetry

    algo = constructing_algorithm()
    if algo is None or algo.env is None:
        return None
    symmetry = get_symmetry(algo.env)
    if symmetry is not None and store_in is not None:
        setattr(algo, store_in, {**(getattr(algo, store_in, None) or {}), "symmetry": symmetry})
    return symmetry
