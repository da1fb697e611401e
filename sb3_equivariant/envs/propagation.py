"""
Carry a :class:`Symmetry` through gymnasium wrappers and SB3 VecEnv wrappers: :class:`SymmetricEnv`,
:func:`get_symmetry` and the wrapper rules.

:class:`SymmetricEnv` holds the symmetry of the observations it returns. :func:`get_symmetry` finds it (or the
registry's symmetry of the env id) and carries it outwards through every wrapper above it, each by its **rule**: how
the wrapper turns the symmetry of its inner env's observations into the symmetry of its own. A wrapper without a rule
is refused with an error naming it, rather than guessing a symmetry that may not hold.

Rules are registered per class (:func:`register_wrapper`; subclasses inherit them). Built in: pass-through wrappers
(Monitor, TimeLimit, Atari's reset/skip/life wrappers...), resizing / grayscale wrappers (Atari's ``WarpFrame``),
``VecFrameStack`` (the channel representation becomes ``n_stack`` copies, on the stacking axis) and
``VecTransposeImage`` (HWC -> CHW). Declare your own wrapper with ``@register_wrapper`` (it leaves observations and
actions as they are, or changes them in a way that commutes with every map) or ``register_wrapper(cls, rule)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast, overload

import gymnasium as gym
from gymnasium import spaces
from gymnasium import wrappers as gym_wrappers
from sb3_contrib.common.wrappers import ActionMasker
from stable_baselines3.common import atari_wrappers
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
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

#: ``rule(symmetry, wrapper)``: the symmetry of ``wrapper``'s observations, given ``symmetry``, that of its inner
#: env's (``wrapper.env`` or ``wrapper.venv``). Raise :class:`SymmetryError` when the symmetry cannot be carried.
WrapperRule = Callable[[Symmetry, Any], Symmetry]
WrapperT = TypeVar("WrapperT", bound=type)

_RULES: dict[type, WrapperRule | None] = {}  # None: pass-through


def register_wrapper(wrapper_cls: WrapperT, rule: WrapperRule | None = None, overwrite: bool = False) -> WrapperT:
    """
    Declare how a gymnasium ``Wrapper`` or SB3 ``VecEnvWrapper`` class changes the symmetry; subclasses inherit it.

    As a class decorator (``@register_wrapper``), or ``register_wrapper(TheirWrapper)`` for a class you do not own.
    Actions must stay as they are (a gymnasium wrapper that changes the action space is always refused).

    :param wrapper_cls: the wrapper class.
    :param rule: ``rule(symmetry, wrapper) -> Symmetry`` (see :data:`WrapperRule`); ``None`` (pass-through): the
        wrapper keeps the observation space and commutes with every map (it leaves observations as they are, changes
        them pixel-wise, repeats steps, clips rewards...); a pass-through wrapper that changes the observation space is
        refused at run time.
    :param overwrite: replace the rule of a class that has one.
    :return: ``wrapper_cls``.
    """
    if not isinstance(wrapper_cls, type) or not issubclass(wrapper_cls, (gym.Wrapper, VecEnvWrapper)):
        raise TypeError(f"register_wrapper needs a gymnasium Wrapper or SB3 VecEnvWrapper class, got {wrapper_cls!r}")
    if rule is not None and not callable(rule):
        raise TypeError(f"the rule of {wrapper_cls.__name__} must be callable (symmetry, wrapper) -> Symmetry, got {rule!r}")
    if wrapper_cls in _RULES and not overwrite:
        raise SymmetryError(f"{wrapper_cls.__name__} already has a symmetry rule; pass overwrite=True to replace it")
    _RULES[wrapper_cls] = rule
    return wrapper_cls


def _rule_of(wrapper_cls: type) -> tuple[bool, WrapperRule | None]:
    """``(found, rule)`` for the nearest class in ``wrapper_cls``'s MRO with a rule."""
    for cls in wrapper_cls.__mro__:
        if cls in _RULES:
            return True, _RULES[cls]
    return False, None


class SymmetricEnv(gym.Wrapper):
    """
    Attach a :class:`Symmetry` to an env; the symmetry describes this wrapper's observations and actions.

    :param env: the env.
    :param symmetry: its symmetry; default: the registry's symmetry of ``env``'s id carried through ``env``'s wrappers
        (see :func:`get_symmetry`).
    :raises SymmetryError: if the symmetry does not fit the env's spaces, or none is known.
    """

    def __init__(self, env: gym.Env, symmetry: Symmetry | None = None):
        if not isinstance(env, gym.Env):
            raise TypeError(f"SymmetricEnv wraps a gymnasium Env, got {type(env).__name__}; make it with gym.make(env_id)")
        super().__init__(env)
        if symmetry is None:
            symmetry = get_symmetry(env, required=True)
        if not isinstance(symmetry, Symmetry):
            raise SymmetryError(f"symmetry must be a Symmetry, got {type(symmetry).__name__}")
        self.symmetry = symmetry.check_spaces(env.observation_space, env.action_space)


def ensure_registered(env_id: str) -> None:
    """Register ALE's envs when an Atari id is not known yet (gymnasium does not import ale_py by itself)."""
    if env_id in gym.registry:
        return
    try:
        import ale_py
    except ImportError:
        return
    gym.register_envs(ale_py)


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
    carries it through the wrappers above it by their rules (see :func:`register_wrapper`; ``VecNormalize`` passes
    through unchanged).

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


def _refusal(symmetry: Symmetry, wrapper: Any, inner: Any, outer: Any, fix: str) -> SymmetryError:
    name = type(wrapper).__name__
    return SymmetryError(
        f"cannot carry {symmetry.name} through {name} (observations {inner} -> {outer}): it has no symmetry rule; if it "
        f"leaves observations as they are (or changes them in a way that commutes with every map), declare it with "
        f"sb3_equivariant.envs.register_wrapper({name}), else {fix}"
    )


def _through_wrapper(symmetry: Symmetry, wrapper: gym.Wrapper) -> Symmetry:
    inner_obs, outer_obs = wrapper.env.observation_space, wrapper.observation_space
    if wrapper.action_space != wrapper.env.action_space:
        raise SymmetryError(
            f"cannot carry {symmetry.name} through {type(wrapper).__name__}, which changes the action space from "
            f"{wrapper.env.action_space} to {wrapper.action_space}; wrap the outermost env with SymmetricEnv(env, symmetry)"
        )
    return _apply_rule(symmetry, wrapper, inner_obs, outer_obs, "wrap the outermost env with SymmetricEnv(env, symmetry)")


def _apply_rule(symmetry: Symmetry, wrapper: Any, inner_obs: spaces.Space, outer_obs: spaces.Space, fix: str) -> Symmetry:
    found, rule = _rule_of(type(wrapper))
    if not found:
        raise _refusal(symmetry, wrapper, inner_obs, outer_obs, fix)
    if rule is not None:
        return rule(symmetry, wrapper)
    if inner_obs != outer_obs:
        raise SymmetryError(
            f"cannot carry {symmetry.name} through {type(wrapper).__name__}: it is declared pass-through, but changes the "
            f"observation space ({inner_obs} -> {outer_obs}); register it with a rule, or {fix}"
        )
    return symmetry


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


def resize_rule(symmetry: Symmetry, wrapper: gym.Wrapper) -> Symmetry:
    """Rule of wrappers that resize HWC images and/or convert them to grayscale (pixel positions scale symmetrically)."""
    return _resized(symmetry, wrapper.observation_space, type(wrapper).__name__)


def _vec_symmetry(venv: VecEnv) -> Symmetry:
    chain: list[VecEnvWrapper] = []
    base: VecEnv = venv
    while isinstance(base, VecEnvWrapper):
        chain.append(base)
        base = base.venv
    symmetry = _env_symmetry(base.envs[0]) if isinstance(base, DummyVecEnv) else _remote_symmetry(base)
    for wrapper in reversed(chain):
        symmetry = _apply_rule(
            symmetry, wrapper, wrapper.venv.observation_space, wrapper.observation_space, "pass symmetry=... explicitly"
        )
    return symmetry.check_spaces(venv.observation_space, venv.action_space)


def _entry(cls: type) -> str:
    return f"{cls.__module__}:{cls.__name__}"


# SymmetricEnv's entry point in gymnasium's wrapper specs (also its path before this module existed).
_SYMMETRIC_ENV_ENTRIES = {_entry(SymmetricEnv), "sb3_equivariant.envs.wrappers:SymmetricEnv"}


def _remote_rule(entry: str) -> tuple[bool, WrapperRule | None]:
    """The rule of the wrapper class named by a gymnasium wrapper-spec entry point (imported as gymnasium does)."""
    try:
        cls = gym.envs.registration.load_env_creator(entry)
    except (ImportError, AttributeError, ValueError):
        return False, None
    return _rule_of(cls) if isinstance(cls, type) else (False, None)


def _remote_symmetry(base: VecEnv) -> Symmetry:
    """
    The symmetry of a VecEnv whose envs live elsewhere (``SubprocVecEnv``): ask the workers for a SymmetricEnv's
    symmetry (it pickles), and use the env spec's wrapper list to check that nothing above it changes observations.
    """
    spec = base.get_attr("spec", indices=[0])[0]
    wrappers = [] if spec is None else [w.entry_point for w in spec.additional_wrappers]
    if base.has_attr("symmetry"):
        symmetry = base.get_attr("symmetry", indices=[0])[0]
        last = max((i for i, w in enumerate(wrappers) if w in _SYMMETRIC_ENV_ENTRIES), default=None)
        if last is not None:
            wrappers = wrappers[last + 1 :]
    else:
        if spec is not None:
            ensure_registered(spec.id)
        local = None if spec is None else gym.make(dataclasses.replace(spec, additional_wrappers=()))
        try:
            symmetry = _registry_symmetry(spec, local)
        finally:
            if local is not None:
                local.close()
    rules = {w: _remote_rule(w) for w in wrappers}
    changing = [w for w in wrappers if not (rules[w][0] and rules[w][1] is None)]
    # One resizing wrapper with only pass-through ones above it: its output is the VecEnv's observation space.
    if len(changing) == 1 and rules[changing[0]][1] is resize_rule:
        return _resized(symmetry, base.observation_space, changing[0].split(":")[-1])
    if changing:
        raise SymmetryError(
            f"cannot carry {symmetry.name} through {', '.join(changing)} inside {type(base).__name__}: wrap each env with "
            "SymmetricEnv as the outermost wrapper (e.g. make_symmetric_vec_env(..., wrapper_class=...) or "
            "make_symmetric_atari_env)"
        )
    return symmetry


def frame_stack_rule(symmetry: Symmetry, wrapper: VecFrameStack) -> Symmetry:
    """Rule of ``VecFrameStack``: ``n_stack`` copies of the channel (or vector) representation on the stacking axis."""
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


def transpose_rule(symmetry: Symmetry, wrapper: VecTransposeImage) -> Symmetry:
    """Rule of ``VecTransposeImage``: HWC image maps become CHW ones (unchanged when it skips)."""
    if wrapper.skip:
        return symmetry
    hwc = symmetry.obs_action
    if not isinstance(hwc, ImageAction) or hwc.layout != "HWC":
        raise SymmetryError(f"VecTransposeImage turns HWC images into CHW, but {symmetry.name} is not an HWC image map")
    return symmetry.replace(obs_action=hwc.with_layout("CHW"))


# Pass-through: observations and actions as they are, or changed pixel-wise / by repeating steps in a way that
# commutes with any observation map (frame skip with max-pooling, no-op resets, life loss, reward clipping).
# ActionMasker adds action_masks(): the masks must transform with the actions (the mask function's job).
# VecNormalize passes through: its per-dimension statistics are the caller's concern (they break sign flips unless
# symmetrized: SymmetricVecNormalize), and the policies warn about it.
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
    ActionMasker,
    VecMonitor,
    VecCheckNan,
    VecNormalize,
    VecVideoRecorder,
)
_RESIZE: tuple[type, ...] = (atari_wrappers.WarpFrame, gym_wrappers.ResizeObservation, gym_wrappers.GrayscaleObservation)
for _cls in _PASS_THROUGH:
    register_wrapper(_cls)
for _cls in _RESIZE:
    register_wrapper(_cls, resize_rule)
register_wrapper(VecFrameStack, frame_stack_rule)
register_wrapper(VecTransposeImage, transpose_rule)

__all__ = [
    "NO_SYMMETRY_MESSAGE",
    "SymmetricEnv",
    "WrapperRule",
    "frame_stack_rule",
    "get_symmetry",
    "register_wrapper",
    "resize_rule",
    "transpose_rule",
]
