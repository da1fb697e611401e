"""Helpers shared by the augmentation baselines: modes, their generator, one element per sample, renamed names."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch as th

ArrayT = TypeVar("ArrayT", np.ndarray, th.Tensor)

AUGMENT_MODES = ("random", "all")


def check_mode(mode: str, allowed: tuple[str, ...], owner: str) -> str:
    """Return ``mode`` if it is one of ``allowed``, else raise a ``ValueError`` listing them."""
    if mode not in allowed:
        raise ValueError(f"{owner}: unknown augmentation mode {mode!r}; expected one of {allowed}")
    return mode


def renamed_keyword(new: Any, old: Any, new_name: str, old_name: str, owner: str, default: Any) -> Any:
    """
    The value of a keyword renamed from ``old_name`` to ``new_name``: the old one still works, with a
    ``DeprecationWarning``; giving both is an error.

    :param new: the value passed as ``new_name`` (``None`` if not passed).
    :param old: the value passed as ``old_name`` (``None`` if not passed).
    :param default: the value when neither was passed.
    """
    if old is None:
        return default if new is None else new
    if new is not None:
        raise TypeError(f"{owner}: pass {new_name}= only ({old_name}= is its deprecated name)")
    warnings.warn(f"{owner}: {old_name}= is deprecated, use {new_name}= instead", DeprecationWarning, stacklevel=3)
    return old


def deprecated_aliases(module: str, aliases: dict[str, Any]) -> Callable[[str], Any]:
    """
    A module ``__getattr__`` (PEP 562) serving renamed objects under their old names with a ``DeprecationWarning``:
    old imports, and models pickled with the old class paths, keep working.

    :param module: the module's ``__name__``.
    :param aliases: old name -> the object under its new name.
    """

    def __getattr__(name: str) -> Any:
        if name not in aliases:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new = aliases[name]
        warnings.warn(f"{module}.{name} is deprecated, use {new.__name__}", DeprecationWarning, stacklevel=2)
        return new

    return __getattr__


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
