"""Attach a :class:`Symmetry` to an env and find it again through gymnasium wrappers and SB3 vectorised envs.

:class:`SymmetricEnv` holds the symmetry of the observations it returns. :func:`get_symmetry` finds it (or the
registry's symmetry of the env id) and carries it through the wrappers above it: pass-through wrappers (Monitor,
TimeLimit, Atari's reset/skip/life wrappers...), resizing/grayscale wrappers (Atari's ``WarpFrame``),
``VecFrameStack`` (the channel representation becomes ``n_stack`` copies, on the stacking axis) and
``VecTransposeImage`` (HWC -> CHW). A wrapper it does not know refuses with an error naming the wrapper, rather than
returning a symmetry that may not hold.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Literal, cast, overload

import gymnasium as gym
from gymnasium import spaces
from gymnasium import wrappers as gym_wrappers
from sb3_contrib.common.wrappers import ActionMasker
from stable_baselines3.common import atari_wrappers
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecCheckNan,
    VecEnv,
    VecEnvWrapper,
    VecFrameStack,
    VecMonitor,
    VecNormalize,
    VecTransposeImage,
    VecVideoRecorder,
)

from sb3_equivariant.envs.registry import has_symmetry, symmetry_for
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.representation import ImageAction, Representation, RepresentationError, copies

NO_SYMMETRY_MESSAGE = "no symmetry found: make the env with make_symmetric_env or pass symmetry=..."

# Wrappers that leave observations and actions as they are, or change them pixel-wise / by repeating steps in a way
# that commutes with any observation map (frame skip with max-pooling, no-op resets, life loss, reward clipping).
_PASS_THROUGH: tuple[type, ...] = (
    gym_wrappers.TimeLimit,
    gym_wrappers.OrderEnforcing,
    gym_wrappers.PassiveEnvChecker,
    gym_wrappers.RecordEpisodeStatistics,
    gym_wrappers.RecordVideo,
    gym_wrappers.Autoreset,
    gym_wrappers.MaxAndSkipObservation,
    gym_wrappers.StickyAction,
    gym.RewardWrapper,
    Monitor,
    atari_wrappers.AtariWrapper,
    atari_wrappers.NoopResetEnv,
    atari_wrappers.MaxAndSkipEnv,
    atari_wrappers.EpisodicLifeEnv,
    atari_wrappers.FireResetEnv,
    atari_wrappers.ClipRewardEnv,
    atari_wrappers.StickyActionEnv,
    ActionMasker,  # adds action_masks(); the masks must transform with the actions (the mask function's job)
)
# Wrappers that resize an image and/or convert it to grayscale (pixel positions scale symmetrically).
_RESIZE: tuple[type, ...] = (atari_wrappers.WarpFrame, gym_wrappers.ResizeObservation, gym_wrappers.GrayscaleObservation)
# VecNormalize passes through: its per-dimension statistics are the caller's concern (they break sign flips unless
# symmetrised), and the policies warn about it.
_VEC_PASS_THROUGH: tuple[type, ...] = (VecMonitor, VecCheckNan, VecNormalize, VecVideoRecorder)


class SymmetricEnv(gym.Wrapper):
    """
    Attach a :class:`Symmetry` to an env; the symmetry describes this wrapper's observations and actions.

    :param env: the env.
    :param symmetry: its symmetry; default: the registry's symmetry of ``env``'s id carried through ``env``'s wrappers
        (see :func:`get_symmetry`).
    :raises SymmetryError: if the symmetry does not fit the env's spaces, or none is known.
    """

    def __init__(self, env: gym.Env, symmetry: Symmetry | None = None):
        super().__init__(env)
        if symmetry is None:
            symmetry = get_symmetry(env, required=True)
        if not isinstance(symmetry, Symmetry):
            raise SymmetryError(f"symmetry must be a Symmetry, got {type(symmetry).__name__}")
        self.symmetry = symmetry.check_spaces(env.observation_space, env.action_space)


def _ensure_registered(env_id: str) -> None:
    """Register ALE's envs when an Atari id is not known yet (gymnasium does not import ale_py by itself)."""
    if env_id in gym.registry:
        return
    try:
        import ale_py
    except ImportError:
        return
    gym.register_envs(ale_py)


def _make(env_id: str, **make_kwargs: Any) -> gym.Env:
    """``gym.make`` after registering ALE's envs if needed (module-level: picklable for ``SubprocVecEnv``)."""
    _ensure_registered(env_id)
    return gym.make(env_id, **make_kwargs)


def make_symmetric_env(env_id: str, symmetry: Symmetry | None = None, **make_kwargs: Any) -> SymmetricEnv:
    """
    ``gym.make(env_id, **make_kwargs)`` wrapped in :class:`SymmetricEnv` with the registry's symmetry.

    For a vectorised env use :func:`make_symmetric_vec_env`, or equivalently
    ``make_vec_env(make_symmetric_env, env_kwargs=dict(env_id="CartPole-v1"), n_envs=4)``.

    :param env_id: the gymnasium id.
    :param symmetry: use this symmetry instead of the registry's.
    :raises SymmetryError: for an id without a registered symmetry (listing the registered ids).
    """
    if symmetry is None and not has_symmetry(env_id):
        symmetry_for(env_id)  # raises, explaining why or listing the registered ids
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
    :param n_envs: number of envs.
    :param seed: seed of the first env (``seed + i`` for env ``i``).
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``.
    :param wrapper_class: applied inside :class:`SymmetricEnv`; the symmetry is carried through it (known wrappers only).
    :param wrapper_kwargs: keyword arguments of ``wrapper_class``.
    :param env_kwargs: keyword arguments of ``gym.make``.
    :param monitor_dir: where Monitor writes its files (none by default).
    :param vec_env_kwargs: keyword arguments of ``vec_env_cls``.
    """
    if not has_symmetry(env_id):
        symmetry_for(env_id)
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
    :param n_envs: number of envs.
    :param seed: seed of the first env.
    :param frame_stack: frames stacked (0 or 1: no stacking).
    :param transpose: add ``VecTransposeImage`` (channel-first observations).
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``.
    :param wrapper_kwargs: keyword arguments of ``AtariWrapper``.
    :param env_kwargs: keyword arguments of ``gym.make``.
    :param monitor_dir: where Monitor writes its files (none by default).
    """
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


class _NoSymmetry(Exception):
    """Internal: nothing in the env says what its symmetry is."""


@overload
def get_symmetry(env: gym.Env | VecEnv, required: Literal[True]) -> Symmetry: ...


@overload
def get_symmetry(env: gym.Env | VecEnv, required: bool = False) -> Symmetry | None: ...


def get_symmetry(env: gym.Env | VecEnv, required: bool = False) -> Symmetry | None:
    """
    The symmetry of ``env``'s observations and actions, carried through its wrappers.

    Looks for a :class:`SymmetricEnv` (the outermost one wins), else the registry's symmetry of the env id, then
    adapts it through the wrappers above it (gymnasium / SB3 wrappers, ``DummyVecEnv`` / ``SubprocVecEnv``,
    ``VecFrameStack``, ``VecTransposeImage``; ``VecNormalize`` passes through unchanged).

    :param env: a gymnasium env or an SB3 VecEnv.
    :param required: raise :class:`SymmetryError` instead of returning ``None`` when no symmetry is found.
    :raises SymmetryError: when a symmetry is found but cannot be carried through a wrapper (whatever ``required``).
    """
    try:
        if isinstance(env, VecEnv):
            return _vec_symmetry(env)
        if isinstance(env, gym.Env):
            return _env_symmetry(env)
        raise SymmetryError(f"expected a gymnasium Env or an SB3 VecEnv, got {type(env).__name__}")
    except _NoSymmetry as err:
        if required:
            raise SymmetryError(f"{NO_SYMMETRY_MESSAGE} ({err})") from None
        return None


def _registry_symmetry(spec: gym.envs.registration.EnvSpec | None, env: gym.Env | None) -> Symmetry:
    if spec is None:
        raise _NoSymmetry("the env has no SymmetricEnv wrapper and no spec id to look up")
    if not has_symmetry(spec.id):
        try:
            symmetry_for(spec.id)
        except SymmetryError as err:
            raise _NoSymmetry(str(err)) from None
    return symmetry_for(spec.id, env)


def _env_symmetry(env: gym.Env) -> Symmetry:
    chain: list[gym.Wrapper] = []  # outermost first, up to the SymmetricEnv or the base env
    current: gym.Env = env
    while isinstance(current, gym.Wrapper) and not isinstance(current, SymmetricEnv):
        chain.append(current)
        current = current.env
    if isinstance(current, SymmetricEnv):
        symmetry = current.symmetry
    else:
        symmetry = _registry_symmetry(current.spec, current)
        symmetry.check_spaces(current.observation_space, current.action_space)
    for wrapper in reversed(chain):
        symmetry = _through_wrapper(symmetry, wrapper)
    return symmetry.check_spaces(env.observation_space, env.action_space)


def _through_wrapper(symmetry: Symmetry, wrapper: gym.Wrapper) -> Symmetry:
    inner_obs, outer_obs = wrapper.env.observation_space, wrapper.observation_space
    if wrapper.action_space != wrapper.env.action_space:
        raise SymmetryError(
            f"cannot carry {symmetry.name} through {type(wrapper).__name__}, which changes the action space from "
            f"{wrapper.env.action_space} to {wrapper.action_space}; wrap the outermost env with SymmetricEnv(env, symmetry)"
        )
    if isinstance(wrapper, _PASS_THROUGH) and inner_obs == outer_obs:
        return symmetry
    if isinstance(wrapper, _RESIZE):
        return _resized(symmetry, outer_obs, type(wrapper).__name__)
    raise SymmetryError(
        f"cannot carry {symmetry.name} through {type(wrapper).__name__} (observations {inner_obs} -> {outer_obs}): it is "
        "not a wrapper known to commute with the symmetry; wrap the outermost env with SymmetricEnv(env, symmetry) "
        "giving the symmetry of its observations"
    )


def _resized(symmetry: Symmetry, space: spaces.Space, wrapper_name: str) -> Symmetry:
    """The symmetry of images resized and/or converted to grayscale, HWC (as WarpFrame and gymnasium's wrappers give)."""
    if not symmetry.is_image or not isinstance(space, spaces.Box) or len(space.shape) not in (2, 3):
        raise SymmetryError(f"{wrapper_name} resizes images, but {symmetry.name} is not an image symmetry")
    image = cast(ImageAction, symmetry.obs_action)
    channels = space.shape[2] if len(space.shape) == 3 else None
    if channels != image.channels and not image.channel_rep.is_trivial():
        raise SymmetryError(f"{wrapper_name} mixes channels, but {symmetry.name} moves channels ({image.channel_rep})")
    if channels is None:
        raise SymmetryError(f"{wrapper_name} drops the channel axis ({space.shape}); use keep_dim=True")
    resized = ImageAction(
        image.spatial, image.channel_rep if channels == image.channels else None, channels=channels, layout="HWC"
    )
    notes = f"{symmetry.notes}; through {wrapper_name} (resampling commutes with the map up to one grey level)"
    return symmetry.replace(obs_action=resized, exact=False, notes=notes)


def _vec_symmetry(venv: VecEnv) -> Symmetry:
    chain: list[VecEnvWrapper] = []
    base: VecEnv = venv
    while isinstance(base, VecEnvWrapper):
        chain.append(base)
        base = base.venv
    symmetry = _env_symmetry(base.envs[0]) if isinstance(base, DummyVecEnv) else _remote_symmetry(base)
    for wrapper in reversed(chain):
        symmetry = _through_vec_wrapper(symmetry, wrapper)
    return symmetry.check_spaces(venv.observation_space, venv.action_space)


_SYMMETRIC_ENV_ENTRY = "sb3_equivariant.envs.wrappers:SymmetricEnv"


def _remote_symmetry(base: VecEnv) -> Symmetry:
    """
    The symmetry of a VecEnv whose envs live elsewhere (``SubprocVecEnv``): ask the workers for a SymmetricEnv's
    symmetry (it pickles), and use the env spec's wrapper list to check that nothing above it changes observations.
    """
    spec = base.get_attr("spec", indices=[0])[0]
    wrappers = [] if spec is None else [w.entry_point for w in spec.additional_wrappers]
    if base.has_attr("symmetry"):
        symmetry = base.get_attr("symmetry", indices=[0])[0]
        if _SYMMETRIC_ENV_ENTRY in wrappers:
            wrappers = wrappers[len(wrappers) - wrappers[::-1].index(_SYMMETRIC_ENV_ENTRY) :]
    else:
        if spec is not None:
            _ensure_registered(spec.id)
        local = None if spec is None else gym.make(dataclasses.replace(spec, additional_wrappers=()))
        try:
            symmetry = _registry_symmetry(spec, local)
        finally:
            if local is not None:
                local.close()
    pass_through = {_entry(cls) for cls in _PASS_THROUGH} | {_SYMMETRIC_ENV_ENTRY}
    resize = {_entry(cls) for cls in _RESIZE}
    changing = [w for w in wrappers if w not in pass_through]
    # One resizing wrapper with only pass-through ones above it: its output is the VecEnv's observation space.
    if len(changing) == 1 and changing[0] in resize:
        return _resized(symmetry, base.observation_space, changing[0].split(":")[-1])
    if changing:
        raise SymmetryError(
            f"cannot carry {symmetry.name} through {', '.join(changing)} inside {type(base).__name__}: wrap each env with "
            "SymmetricEnv as the outermost wrapper (e.g. make_symmetric_vec_env(..., wrapper_class=...) or "
            "make_symmetric_atari_env)"
        )
    return symmetry


def _entry(cls: type) -> str:
    return f"{cls.__module__}:{cls.__name__}"


def _through_vec_wrapper(symmetry: Symmetry, wrapper: VecEnvWrapper) -> Symmetry:
    if isinstance(wrapper, VecFrameStack):
        stacked = wrapper.stacked_obs
        n_stack = stacked.n_stack
        if symmetry.is_image:
            image = cast(ImageAction, symmetry.obs_action)
            if stacked.channels_first != (image.layout == "CHW"):
                raise SymmetryError(
                    f"VecFrameStack stacks on the {'first' if stacked.channels_first else 'last'} axis, but {symmetry.name}"
                    f" has {image.layout} images"
                )
            stacked_image = ImageAction(image.spatial, copies(image.channel_rep, n_stack), layout=image.layout)
            return symmetry.replace(obs_action=stacked_image, name=f"{symmetry.name}x{n_stack}")
        try:
            stacked_rep = copies(cast(Representation, symmetry.obs_action), n_stack)
            return symmetry.replace(obs_action=stacked_rep, name=f"{symmetry.name}x{n_stack}")
        except RepresentationError as err:
            raise SymmetryError(f"cannot stack {symmetry.name}: {err}") from err
    if isinstance(wrapper, VecTransposeImage):
        if wrapper.skip:
            return symmetry
        hwc = symmetry.obs_action
        if not isinstance(hwc, ImageAction) or hwc.layout != "HWC":
            raise SymmetryError(f"VecTransposeImage turns HWC images into CHW, but {symmetry.name} is not an HWC image map")
        return symmetry.replace(obs_action=hwc.with_layout("CHW"))
    if isinstance(wrapper, _VEC_PASS_THROUGH) and wrapper.observation_space == wrapper.venv.observation_space:
        return symmetry
    raise SymmetryError(
        f"cannot carry {symmetry.name} through {type(wrapper).__name__}: not a VecEnv wrapper known to commute with it; "
        "pass symmetry=... explicitly"
    )


__all__ = [
    "NO_SYMMETRY_MESSAGE",
    "SymmetricEnv",
    "get_symmetry",
    "make_symmetric_atari_env",
    "make_symmetric_env",
    "make_symmetric_vec_env",
]
