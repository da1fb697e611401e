"""
The one path by which every policy, buffer and algorithm of the package finds the symmetry it is built for: an
explicit ``symmetry=`` (a :class:`Symmetry` or a registered env id) wins, else the symmetry of the env.

SB3 builds policies and buffers inside ``BaseAlgorithm._setup_model`` as ``cls(observation_space, action_space, ...,
**kwargs)`` without the env. :func:`constructing_algorithm` finds the algorithm doing so on the call stack (reading
only), and accepts it only if it is the one building the object, so that a policy built inside another model's
callback never reads that model's env.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.representation import ImageAction

#: Attributes naming the classes an SB3 algorithm builds in ``_setup_model``.
_BUILT_CLASSES = ("policy_class", "rollout_buffer_class", "replay_buffer_class")

NO_SYMMETRY_HELP = (
    "make the env with sb3_equivariant.make_symmetric_env(env_id) (or make_symmetric_vec_env / "
    "make_symmetric_atari_env, or wrap your own env in SymmetricEnv(env, symmetry)), or pass symmetry=Symmetry(...) "
    "or a registered env id (in policy_kwargs / *_buffer_kwargs for policies and buffers)"
)


def constructing_algorithm(obj: object) -> BaseAlgorithm | None:
    """
    The SB3 algorithm whose ``_setup_model`` is constructing ``obj`` (a policy or a buffer), else ``None``.

    Call it from inside ``obj``'s constructor. The frames whose ``self`` is ``obj`` are its constructor; the frame that
    called them must be a method of a ``BaseAlgorithm`` that builds ``obj``'s class (its ``policy_class``,
    ``rollout_buffer_class`` or ``replay_buffer_class``). Any other caller, e.g. the callback of a model that is
    training, gives ``None``. Reads the stack only.

    :param obj: the object under construction.
    """
    frame = sys._getframe(1)
    while frame is not None and frame.f_locals.get("self") is not obj:
        frame = frame.f_back  # type: ignore[assignment]
    while frame is not None and frame.f_locals.get("self") is obj:
        frame = frame.f_back  # type: ignore[assignment]
    caller = frame.f_locals.get("self") if frame is not None else None
    if not isinstance(caller, BaseAlgorithm):
        return None
    built = [getattr(caller, name, None) for name in _BUILT_CLASSES]
    return caller if any(isinstance(cls, type) and isinstance(obj, cls) for cls in built) else None


def resolve_symmetry(
    symmetry: Symmetry | str | None,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    owner: str,
    *,
    env: Any = None,
    algorithm: BaseAlgorithm | None = None,
    record_in: str | None = None,
    allow_dict: bool = True,
    acts_on_normalized_obs: bool = True,
) -> Symmetry:
    """
    The symmetry ``owner`` is built for, checked against its spaces: ``symmetry`` if given (a :class:`Symmetry`, or
    the id of an env in the registry, e.g. ``"Pendulum-v1"``, which lets rl_zoo3's string kwargs name one), else the
    symmetry of ``env``, else of the env of ``algorithm`` (see :func:`constructing_algorithm`).

    A symmetry found on ``algorithm``'s env is recorded in the algorithm's ``record_in`` kwargs (e.g.
    ``"policy_kwargs"``): SB3's ``load`` rebuilds policies and buffers from those kwargs, without an env.

    :param symmetry: the explicit symmetry, a registered env id, or ``None``.
    :param observation_space: the observation space it must act on (SB3's channel-first layout for images: a symmetry
        declared on channel-last frames is adapted).
    :param action_space: the action space it must act on.
    :param owner: the class asking, for error messages.
    :param env: the env to take the symmetry from (a gymnasium env or a VecEnv).
    :param algorithm: the algorithm constructing ``owner``, whose env is used when ``env`` is not given.
    :param record_in: the ``algorithm`` attribute (a kwargs dict) to record a symmetry found on its env in.
    :param allow_dict: whether ``owner`` handles ``Dict`` observation spaces.
    :param acts_on_normalized_obs: whether ``owner`` transforms the observations the env's ``VecNormalize`` produced
        (policies, rollout buffers), so that per-dimension normalization statistics break the symmetry: warn then.
    :raises SymmetryError: when there is neither a symmetry nor an env, for an env without a symmetry (saying why,
        e.g. for ``MountainCar-v0``), a wrong type, or a symmetry that does not fit the spaces.
    """
    from sb3_equivariant.envs.registry import symmetry_for
    from sb3_equivariant.envs.wrappers import get_symmetry

    source = env if env is not None else env_of(algorithm)
    if isinstance(symmetry, str):
        symmetry = symmetry_for(symmetry)
    elif symmetry is None:
        if source is None:
            raise SymmetryError(f"{owner}: no symmetry found (none given, no env to take it from): {NO_SYMMETRY_HELP}")
        try:
            symmetry = get_symmetry(source, required=True)
        except SymmetryError as err:
            raise SymmetryError(f"{owner}: {err}") from None
        if algorithm is not None and record_in is not None and env is None:
            setattr(algorithm, record_in, {**(getattr(algorithm, record_in, None) or {}), "symmetry": symmetry})
    if not isinstance(symmetry, Symmetry):
        raise SymmetryError(
            f"{owner}: symmetry must be a sb3_equivariant.Symmetry or a registered env id, got {type(symmetry).__name__}"
        )
    if isinstance(observation_space, spaces.Dict) and not allow_dict:
        raise SymmetryError(f"{owner}: Dict observation spaces are not supported")
    try:
        symmetry = to_channel_first(symmetry, observation_space).check_spaces(observation_space, action_space)
    except SymmetryError as err:
        raise SymmetryError(f"{owner}: {err}") from None
    if source is not None and acts_on_normalized_obs:
        warn_if_normalized(source, symmetry)
    return symmetry


def env_of(algorithm: BaseAlgorithm | None) -> Any:
    """The env of ``algorithm`` (``None`` without an algorithm or, e.g. in ``load`` without an env, without an env)."""
    return algorithm.env if algorithm is not None else None


def to_channel_first(symmetry: Symmetry, observation_space: spaces.Space) -> Symmetry:
    """
    SB3 transposes channel-last image envs to channel-first (``VecTransposeImage``): follow it for a symmetry declared
    on raw frames.

    :param symmetry: the symmetry.
    :param observation_space: the observation space the network sees.
    """
    action = symmetry.obs_action
    if isinstance(action, ImageAction) and action.layout == "HWC" and isinstance(observation_space, spaces.Box):
        shape = observation_space.shape
        if len(shape) == 3 and shape[0] == action.channels and shape[-1] != action.channels:
            return symmetry.replace(obs_action=action.with_layout("CHW"))
    return symmetry


def warn_if_normalized(env: Any, symmetry: Symmetry) -> None:
    """
    Warn when ``env`` normalizes observations with SB3's ``VecNormalize``: its per-dimension running statistics are
    not invariant under sign flips and permutations, so a map ``L_g`` applied to normalized observations (by an
    equivariant or symmetrized policy, or a rollout buffer) is exact only if the statistics respect the symmetry.
    :class:`~sb3_equivariant.SymmetricVecNormalize` keeps them symmetric and is not warned about.

    :param env: the training env (a VecEnv; other envs have no ``VecNormalize``).
    :param symmetry: the symmetry that will act on its observations.
    """
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

    from sb3_equivariant.envs.normalize import SymmetricVecNormalize

    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecNormalize) and env.norm_obs and not isinstance(env, SymmetricVecNormalize):
            fix = (
                "use norm_obs=False (SB3's policies scale images themselves)"
                if symmetry.is_image
                else "use sb3_equivariant.SymmetricVecNormalize instead"
            )
            warnings.warn(
                f"VecNormalize(norm_obs=True) normalizes each observation dimension with its own running statistics, "
                f"which break {symmetry.name}: the symmetry is exact on normalized observations only if the statistics "
                f"respect it; {fix}",
                UserWarning,
                stacklevel=2,
            )
        env = env.venv
