"""Make envs with their symmetry attached: one env, a VecEnv, or SB3's Atari pipeline."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from stable_baselines3.common import atari_wrappers
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack, VecTransposeImage

from sb3_equivariant.envs.propagation import SymmetricEnv, ensure_registered
from sb3_equivariant.envs.registry import has_symmetry, symmetry_for
from sb3_equivariant.envs.symmetry import Symmetry


def _make(env_id: str, **make_kwargs: Any) -> gym.Env:
    """``gym.make`` after registering ALE's envs if needed (module-level: picklable for ``SubprocVecEnv``)."""
    ensure_registered(env_id)
    return gym.make(env_id, **make_kwargs)


def _check_env_id(env_id: Any, symmetry: Symmetry | None = None) -> None:
    """A str id; with no ``symmetry`` given, one with a registered symmetry (else the registry explains why not)."""
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a gymnasium id string such as 'CartPole-v1', got {type(env_id).__name__}")
    if symmetry is None and not has_symmetry(env_id):
        symmetry_for(env_id)  # raises, explaining why or listing the registered ids


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_seed(seed: Any) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {seed!r} ({type(seed).__name__})")


def make_symmetric_env(env_id: str, symmetry: Symmetry | None = None, **make_kwargs: Any) -> SymmetricEnv:
    """
    ``gym.make(env_id, **make_kwargs)`` wrapped in :class:`SymmetricEnv` with the registry's symmetry.

    For a vectorized env use :func:`make_symmetric_vec_env`, or equivalently
    ``make_vec_env(make_symmetric_env, env_kwargs=dict(env_id="CartPole-v1"), n_envs=4)``.

    :param env_id: the gymnasium id.
    :param symmetry: use this symmetry instead of the registry's.
    :raises SymmetryError: for an id without a registered symmetry (listing the registered ids).
    """
    _check_env_id(env_id, symmetry)
    env = _make(env_id, **make_kwargs)
    if symmetry is None:
        symmetry = symmetry_for(env_id, env)
    return SymmetricEnv(env, symmetry)


def _symmetric_wrapper(env: gym.Env, inner: Callable[..., gym.Env] | None = None, **inner_kwargs: Any) -> SymmetricEnv:
    """``SymmetricEnv(inner(env))``: the symmetry is the registry's, carried through ``inner``."""
    return SymmetricEnv(inner(env, **inner_kwargs) if inner is not None else env)


def make_symmetric_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None = None,
    wrapper_class: Callable[..., gym.Env] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
) -> VecEnv:
    """
    SB3's ``make_vec_env`` (each env in a ``Monitor``, then ``wrapper_class``) with :class:`SymmetricEnv` outermost,
    so that :func:`get_symmetry` works on it, through ``SubprocVecEnv`` too.

    :param env_id: the gymnasium id (must have a registered symmetry).
    :param n_envs: number of envs (>= 1).
    :param seed: seed of the first env (``seed + i`` for env ``i``).
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``.
    :param wrapper_class: applied inside :class:`SymmetricEnv`; the symmetry is carried through it (wrappers with a
        rule only: see :func:`~sb3_equivariant.envs.propagation.register_wrapper`).
    :param wrapper_kwargs: keyword arguments of ``wrapper_class``.
    :param env_kwargs: keyword arguments of ``gym.make``.
    :param monitor_dir: where Monitor writes its files (none by default).
    :param vec_env_kwargs: keyword arguments of ``vec_env_cls``.
    """
    _check_env_id(env_id)
    _check_count("n_envs", n_envs, 1)
    _check_seed(seed)
    return make_vec_env(
        functools.partial(_make, env_id),
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        monitor_dir=monitor_dir,
        wrapper_class=_symmetric_wrapper,
        wrapper_kwargs=dict(inner=wrapper_class, **(wrapper_kwargs or {})),
        vec_env_cls=vec_env_cls,
        vec_env_kwargs=vec_env_kwargs,
    )


def _check_atari_id(env_id: Any) -> None:
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be an Atari id string such as 'PongNoFrameskip-v4', got {type(env_id).__name__}")
    ensure_registered(env_id)
    if env_id not in gym.registry:
        raise ValueError(
            f"{env_id!r} is not a registered gymnasium id (Atari ids need ale-py: pip install 'sb3-equivariant[atari]')"
        )
    if "ale_py" not in str(gym.spec(env_id).entry_point):
        raise ValueError(
            f"make_symmetric_atari_env needs an Atari (ALE) id such as 'PongNoFrameskip-v4', got {env_id!r}; "
            "use make_symmetric_vec_env for other envs"
        )


def make_symmetric_atari_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    frame_stack: int = 4,
    transpose: bool = False,
    vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
) -> VecEnv:
    """
    SB3's Atari pipeline (``make_atari_env``: Monitor + ``AtariWrapper``, 84x84 grayscale) with :class:`SymmetricEnv`
    outermost, then ``VecFrameStack(frame_stack)`` and, if ``transpose``, ``VecTransposeImage`` (which SB3 would add
    itself when training a ``CnnPolicy``). ``get_symmetry`` of the result gives the map on stacked frames.

    :param env_id: an Atari id with a registered symmetry (``"PongNoFrameskip-v4"``, ``"ALE/Breakout-v5"``...).
    :param n_envs: number of envs (>= 1).
    :param seed: seed of the first env.
    :param frame_stack: frames stacked (0 or 1: no stacking).
    :param transpose: add ``VecTransposeImage`` (channel-first observations).
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``.
    :param wrapper_kwargs: keyword arguments of ``AtariWrapper``.
    :param env_kwargs: keyword arguments of ``gym.make``.
    :param monitor_dir: where Monitor writes its files (none by default).
    """
    _check_atari_id(env_id)
    _check_count("frame_stack", frame_stack, 0)
    venv = make_symmetric_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        vec_env_cls=vec_env_cls,
        wrapper_class=atari_wrappers.AtariWrapper,
        wrapper_kwargs=wrapper_kwargs,
        env_kwargs=env_kwargs,
        monitor_dir=monitor_dir,
    )
    if frame_stack > 1:
        venv = VecFrameStack(venv, n_stack=frame_stack)
    if transpose:
        venv = VecTransposeImage(venv)
    return venv


__all__ = ["make_symmetric_atari_env", "make_symmetric_env", "make_symmetric_vec_env"]
