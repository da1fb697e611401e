"""Helpers shared by the augmentation baselines: finding an env's symmetry and applying one element per sample."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError

ArrayT = TypeVar("ArrayT", np.ndarray, th.Tensor)

AUGMENT_MODES = ("random", "all")


def symmetry_from_env(env: Any) -> Symmetry:
    """
    The symmetry registered for ``env`` (a gymnasium env or an SB3 VecEnv), via ``sb3_equivariant.envs.get_symmetry``.

    :param env: the environment.
    :return: its symmetry.
    """
    if env is None:
        raise SymmetryError("no symmetry given and no environment to find it from: pass `symmetry=` or an env")
    # Imported lazily: the registry and wrappers are a separate concern from augmentation.
    from sb3_equivariant.envs import get_symmetry

    symmetry = get_symmetry(env, required=True)
    assert symmetry is not None
    return symmetry


def check_symmetry(
    symmetry: Any, observation_space: spaces.Space, action_space: spaces.Space, owner: str, allow_dict: bool = False
) -> Symmetry:
    """
    Check that ``symmetry`` fits the spaces; return it. A string is an env id looked up in the symmetry registry
    (``sb3_equivariant.envs.symmetry_for``), which lets rl_zoo3's string ``*_kwargs`` name a symmetry.

    :param symmetry: a :class:`Symmetry` or a registered env id.
    :param observation_space: observation space it must act on.
    :param action_space: action space it must act on.
    :param owner: the class asking, for the error message.
    :param allow_dict: whether the owner handles ``Dict`` observation spaces.
    """
    if isinstance(symmetry, str):
        from sb3_equivariant.envs import symmetry_for

        symmetry = symmetry_for(symmetry)
    if not isinstance(symmetry, Symmetry):
        raise SymmetryError(
            f"{owner}: `symmetry` must be a sb3_equivariant Symmetry or a registered env id, got {type(symmetry).__name__}"
        )
    if isinstance(observation_space, spaces.Dict) and not allow_dict:
        raise SymmetryError(f"{owner}: Dict observation spaces are not supported")
    return symmetry.check_spaces(observation_space, action_space)


def check_mode(mode: str, allowed: tuple[str, ...], owner: str) -> str:
    if mode not in allowed:
        raise ValueError(f"{owner}: unknown augmentation mode {mode!r}; expected one of {allowed}")
    return mode


def seed_rng(seed: int | None) -> np.random.Generator:
    """
    The augmentation's own generator. Without a seed it is drawn from numpy's global generator, which SB3's
    ``set_random_seed`` seeds before it builds buffers, so seeded models stay reproducible.
    """
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    return np.random.default_rng(seed)


def apply_per_element(transform: Callable[[ArrayT, int], ArrayT], x: ArrayT, elements: np.ndarray) -> ArrayT:
    """
    ``out[i] = transform(x[i], elements[i])``, one call per distinct element.

    :param transform: ``(batch, g) -> transformed batch`` (e.g. ``Symmetry.transform_obs``).
    :param x: samples along the first axis.
    :param elements: group element of each sample, shape ``(len(x),)``.
    """
    if len(elements) != len(x):
        raise ValueError(f"{len(elements)} group elements given for {len(x)} samples")
    if isinstance(x, th.Tensor):
        out_t = th.empty_like(x)
        for g in np.unique(elements):
            mask = th.as_tensor(elements == g, device=x.device)
            out_t[mask] = transform(x[mask], int(g))
        return out_t
    out = np.empty_like(x)
    for g in np.unique(elements):
        mask = elements == g
        out[mask] = transform(x[mask], int(g))
    return out
