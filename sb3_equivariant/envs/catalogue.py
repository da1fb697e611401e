"""
The built-in catalogue of environment symmetries, registered in :mod:`~sb3_equivariant.envs.registry` on import.

Each factory's docstring states the map and whether it is exact; the exact ones are checked against the dynamics by
:func:`sb3_equivariant.envs.verify.check_symmetry` in the tests. A factory receives the env (or ``None``) so that maps
that depend on the env, such as Atari action sets read from ``get_action_meanings()``, are built from the env itself
rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import gymnasium as gym

from sb3_equivariant.envs.masked import MASKED_CARTPOLE_ID
from sb3_equivariant.envs.registry import register_no_symmetry, register_symmetry
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.group import flip_group
from sb3_equivariant.representation import ImageAction, Representation, flip_action, permutation, signed_permutation

# ---------------------------------------------------------------------------------------------------------------------
# Classic control
# ---------------------------------------------------------------------------------------------------------------------


def _c2_signs(signs: Sequence[float], name: str) -> Representation:
    return signed_permutation(flip_group(), None, {1: list(signs)}, name=name)


def _c2_swap(perm: Sequence[int], name: str) -> Representation:
    return permutation(flip_group(), {1: list(perm)}, name=name)


def cartpole_symmetry(env: gym.Env | None = None) -> Symmetry:
    """
    CartPole-v1, exact: the mirror ``x -> -x``. Observation and state ``[x, x_dot, theta, theta_dot] -> -obs``;
    actions push left (0) <-> push right (1). The force is ``±force_mag`` and the dynamics are odd in the state.
    """
    neg = _c2_signs([-1, -1, -1, -1], "cartpole_obs")
    return Symmetry(
        neg,
        _c2_swap([1, 0], "cartpole_actions"),
        exact=True,
        name="CartPole-mirror",
        notes="x -> -x mirror of the track; exact",
        state_transform=neg,
    )


def acrobot_symmetry(env: gym.Env | None = None) -> Symmetry:
    """
    Acrobot-v1, exact: the mirror ``theta -> -theta``. Observation ``[c1, s1, c2, s2, w1, w2] ->
    [c1, -s1, c2, -s2, -w1, -w2]``; state ``[th1, th2, dth1, dth2] -> -state``; torque -1 (0) <-> +1 (2), 0 fixed.
    Gravity terms are odd in the angles and the goal height ``-cos th1 - cos(th1 + th2)`` is even.
    """
    obs = _c2_signs([1, -1, 1, -1, -1, -1], "acrobot_obs")
    state = _c2_signs([-1, -1, -1, -1], "acrobot_state")
    return Symmetry(
        obs,
        _c2_swap([2, 1, 0], "acrobot_actions"),
        exact=True,
        name="Acrobot-mirror",
        notes="theta -> -theta mirror; exact",
        state_transform=state,
    )


def pendulum_symmetry(env: gym.Env | None = None) -> Symmetry:
    """
    Pendulum-v1, exact: the mirror ``th -> -th``. Observation ``[cos th, sin th, thdot] -> [cos, -sin, -thdot]``;
    state ``[th, thdot] -> -state``; torque ``a -> -a``. The cost ``th^2 + 0.1 thdot^2 + 0.001 u^2`` is even.
    """
    obs = _c2_signs([1, -1, -1], "pendulum_obs")
    return Symmetry(
        obs,
        _c2_signs([-1], "pendulum_action"),
        exact=True,
        name="Pendulum-mirror",
        notes="th -> -th mirror; exact",
        state_transform=_c2_signs([-1, -1], "pendulum_state"),
    )


def masked_cartpole_symmetry(env: gym.Env | None = None) -> Symmetry:
    """
    sb3_equivariant/CartPoleNoVel-v1 (CartPole with the velocities hidden), exact: CartPole's mirror. Observation
    ``[x, theta] -> -obs``; state ``[x, x_dot, theta, theta_dot] -> -state``; push left (0) <-> push right (1).
    """
    return Symmetry(
        _c2_signs([-1, -1], "cartpole_novel_obs"),
        _c2_swap([1, 0], "cartpole_actions"),
        exact=True,
        name="CartPoleNoVel-mirror",
        notes="x -> -x mirror of the track, velocities hidden; exact",
        state_transform=_c2_signs([-1, -1, -1, -1], "cartpole_state"),
    )


_MOUNTAIN_CAR_REASON = (
    "the track spans x in [-1.2, 0.6] with the goal at x >= 0.5 (0.45 for the continuous version) and the hill "
    "height sin(3x) is not mirror symmetric about any point of the track, so x -> -x is not a symmetry of the dynamics"
)

# ---------------------------------------------------------------------------------------------------------------------
# Box2D and MuJoCo (entries exist whether or not the simulators are installed)
# ---------------------------------------------------------------------------------------------------------------------


def lunar_lander_symmetry(env: gym.Env | None = None) -> Symmetry:
    """
    LunarLander-v3 (discrete actions), approximate: the mirror ``x -> -x``. Observation ``[x, y, vx, vy, angle,
    angular_vel, leg1, leg2] -> [-x, y, -vx, vy, -angle, -angular_vel, leg2, leg1]``; fire left engine (1) <-> fire
    right engine (3). Not exact: the terrain is random (not mirrored), wind/turbulence and dispersion noise break it.
    """
    obs = signed_permutation(flip_group(), {1: [0, 1, 2, 3, 4, 5, 7, 6]}, {1: [-1, 1, -1, 1, -1, -1, 1, 1]}, name="lander_obs")
    return Symmetry(
        obs,
        _c2_swap([0, 3, 2, 1], "lander_actions"),
        exact=False,
        name="LunarLander-mirror",
        notes="x -> -x mirror; approximate: random terrain, wind and engine dispersion are not mirrored",
    )


def lunar_lander_continuous_symmetry(env: gym.Env | None = None) -> Symmetry:
    """
    LunarLander-v3 with ``continuous=True`` (or LunarLanderContinuous), approximate: observation mirrored as for the
    discrete version; action ``[main, lateral] -> [main, -lateral]``. Not exact (random terrain, wind, dispersion).
    """
    sym = lunar_lander_symmetry()
    return sym.replace(action_rep=_c2_signs([1, -1], "lander_cont_actions"), discrete=False, name="LunarLanderContinuous-mirror")


def _lander_factory(env: gym.Env | None) -> Symmetry:
    """
    LunarLander-v3, approximate (random terrain, wind): :func:`lunar_lander_symmetry` or, for ``continuous=True``,
    :func:`lunar_lander_continuous_symmetry`, chosen from the env's action space (discrete when no env is given).
    """
    if env is not None and isinstance(env.action_space, gym.spaces.Box):
        return lunar_lander_continuous_symmetry(env)
    return lunar_lander_symmetry(env)


def walker2d_symmetry(env: gym.Env | None = None) -> Symmetry:
    """
    Walker2d-v5, exact (v5 only: earlier versions give the two feet different friction): swap the legs. Observation
    (17) swaps joint angles 2:5 <-> 5:8 and joint velocities 11:14 <-> 14:17; actions swap 0:3 <-> 3:6; state
    ``[qpos (9), qvel (9)]`` swaps 3:6 <-> 6:9 in both.
    """
    obs = list(range(17))
    obs[2:5], obs[5:8], obs[11:14], obs[14:17] = obs[5:8], obs[2:5], obs[14:17], obs[11:14]
    state = list(range(18))
    state[3:6], state[6:9], state[12:15], state[15:18] = state[6:9], state[3:6], state[15:18], state[12:15]
    act = [3, 4, 5, 0, 1, 2]
    return Symmetry(
        _c2_swap(obs, "walker_obs"),
        _c2_swap(act, "walker_actions"),
        exact=True,
        discrete=False,
        name="Walker2d-legswap",
        notes="swap the two legs; exact in v5",
        state_transform=_c2_swap(state, "walker_state"),
    )


def inverted_pendulum_symmetry(env: gym.Env | None = None) -> Symmetry:
    """
    InvertedPendulum-v5, approximate: the mirror of the slider. Observation ``[x, theta, x_dot, theta_dot] -> -obs``;
    action ``a -> -a``; state ``[qpos (2), qvel (2)] -> -state``. Not exact: the pole's geometry
    (``fromto="0 0 0 0.001 0 0.6"`` in ``inverted_pendulum.xml``) leans 1 mm to +x, so its center of mass is off the
    hinge axis; one step from mirrored states differs by up to ~5e-3 (measured by the verifier).
    """
    neg = _c2_signs([-1, -1, -1, -1], "invpend_obs")
    return Symmetry(
        neg,
        _c2_signs([-1], "invpend_action"),
        exact=False,
        name="InvertedPendulum-mirror",
        notes="slider mirror; approximate: the pole leans 1 mm off the hinge axis in the model",
        state_transform=neg,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Atari (maps on the raw RGB frames, HWC; get_symmetry adapts them through SB3's Atari pipeline)
# ---------------------------------------------------------------------------------------------------------------------

_TOKENS = re.compile(r"NOOP|FIRE|UP|DOWN|RIGHT|LEFT")


def swap_action_meanings(meanings: Sequence[str], swap: dict[str, str]) -> list[int]:
    """
    The permutation of ALE actions that exchanges joystick directions, e.g. ``{"RIGHT": "LEFT", "LEFT": "RIGHT"}``.

    ALE names are concatenations of ``UP``/``DOWN``, ``RIGHT``/``LEFT`` and ``FIRE`` (``"UPRIGHTFIRE"``); each name's
    tokens are swapped and the result is looked up among ``meanings``.

    :raises SymmetryError: if a swapped name is not in the action set (the swap does not map it to itself).
    """
    index = {m: i for i, m in enumerate(meanings)}
    perm = []
    for m in meanings:
        tokens = _TOKENS.findall(m)
        if "".join(tokens) != m:
            raise SymmetryError(f"cannot parse the ALE action name {m!r}")
        swapped = "".join(swap.get(t, t) for t in tokens)
        # ALE orders vertical before horizontal before FIRE: rebuild in that order.
        order = {"NOOP": 0, "UP": 1, "DOWN": 1, "RIGHT": 2, "LEFT": 2, "FIRE": 3}
        swapped = "".join(sorted(_TOKENS.findall(swapped), key=order.__getitem__))
        if swapped not in index:
            raise SymmetryError(f"action {m!r} maps to {swapped!r}, which is not in the action set {list(meanings)}")
        perm.append(index[swapped])
    return perm


def _ale_meanings(env: gym.Env | None, env_id: str) -> list[str]:
    if env is not None:
        return list(env.unwrapped.get_action_meanings())  # type: ignore[attr-defined]
    import ale_py

    gym.register_envs(ale_py)
    tmp = gym.make(env_id)
    try:
        return list(tmp.unwrapped.get_action_meanings())  # type: ignore[attr-defined]
    finally:
        tmp.close()


def _atari_symmetry(env: gym.Env | None, env_id: str, axis: str, swap: dict[str, str], name: str, notes: str) -> Symmetry:
    perm = swap_action_meanings(_ale_meanings(env, env_id), swap)
    obs = ImageAction(flip_action(axis), channels=3, layout="HWC")
    return Symmetry(obs, permutation(flip_group(), {1: perm}, name=f"{name}_actions"), exact=False, name=name, notes=notes)


# In Pong the joystick's RIGHT moves the agent's paddle up the screen and LEFT down (UP/DOWN do nothing); a vertical
# flip of the screen therefore swaps RIGHT and LEFT. tests/test_atari_pipeline.py measures this on the paddle.
_PONG_SWAP = {"RIGHT": "LEFT", "LEFT": "RIGHT"}
_BREAKOUT_SWAP = {"RIGHT": "LEFT", "LEFT": "RIGHT"}


def pong_symmetry(env: gym.Env | None = None, env_id: str = "PongNoFrameskip-v4") -> Symmetry:
    """
    Pong, approximate: vertical flip of the raw (210, 160, 3) frame; paddle up <-> down, which ALE names RIGHT <->
    LEFT (also RIGHTFIRE <-> LEFTFIRE and, in the full action set, every combination), read from
    ``get_action_meanings()``. Not exact: the score display and the court's top/bottom borders are not mirrored.
    """
    return _atari_symmetry(
        env,
        env_id,
        "vertical",
        _PONG_SWAP,
        "Pong-vflip",
        "vertical flip; approximate: the score display and the borders are not mirror symmetric",
    )


def breakout_symmetry(env: gym.Env | None = None, env_id: str = "BreakoutNoFrameskip-v4") -> Symmetry:
    """
    Breakout, approximate: horizontal flip of the raw frame; RIGHT <-> LEFT (with FIRE variants) read from
    ``get_action_meanings()``. Not exact: the score display, the serve position and the brick colors are not mirrored.
    """
    return _atari_symmetry(
        env,
        env_id,
        "horizontal",
        _BREAKOUT_SWAP,
        "Breakout-hflip",
        "horizontal flip; approximate: score display and serving are not mirror symmetric",
    )


def _pong_v5(env: gym.Env | None) -> Symmetry:
    """ALE/Pong-v5: as :func:`pong_symmetry` (approximate)."""
    return pong_symmetry(env, "ALE/Pong-v5")


def _pong_v4(env: gym.Env | None) -> Symmetry:
    """PongNoFrameskip-v4: as :func:`pong_symmetry` (approximate)."""
    return pong_symmetry(env, "PongNoFrameskip-v4")


def _breakout_v5(env: gym.Env | None) -> Symmetry:
    """ALE/Breakout-v5: as :func:`breakout_symmetry` (approximate)."""
    return breakout_symmetry(env, "ALE/Breakout-v5")


def _breakout_v4(env: gym.Env | None) -> Symmetry:
    """BreakoutNoFrameskip-v4: as :func:`breakout_symmetry` (approximate)."""
    return breakout_symmetry(env, "BreakoutNoFrameskip-v4")


def _gridworld(env: gym.Env | None) -> Symmetry:
    """sb3_equivariant/GridWorld-v0, exact: C4 rotations of the agent-centered image (see :mod:`.gridworld`)."""
    from sb3_equivariant.envs.gridworld import gridworld_symmetry

    return gridworld_symmetry(7 if env is None else int(env.unwrapped.size))  # type: ignore[attr-defined]


register_symmetry("CartPole-v1", cartpole_symmetry)
register_symmetry(MASKED_CARTPOLE_ID, masked_cartpole_symmetry)
register_symmetry("Acrobot-v1", acrobot_symmetry)
register_symmetry("Pendulum-v1", pendulum_symmetry)
register_no_symmetry("MountainCar-v0", _MOUNTAIN_CAR_REASON)
register_no_symmetry("MountainCarContinuous-v0", _MOUNTAIN_CAR_REASON)
register_symmetry("LunarLander-v3", _lander_factory)
register_symmetry("LunarLanderContinuous-v3", lunar_lander_continuous_symmetry)
register_symmetry("Walker2d-v5", walker2d_symmetry)
register_symmetry("InvertedPendulum-v5", inverted_pendulum_symmetry)
register_symmetry("PongNoFrameskip-v4", _pong_v4)
register_symmetry("ALE/Pong-v5", _pong_v5)
register_symmetry("BreakoutNoFrameskip-v4", _breakout_v4)
register_symmetry("ALE/Breakout-v5", _breakout_v5)
register_symmetry("sb3_equivariant/GridWorld-v0", _gridworld)

__all__ = [
    "acrobot_symmetry",
    "breakout_symmetry",
    "cartpole_symmetry",
    "inverted_pendulum_symmetry",
    "lunar_lander_continuous_symmetry",
    "lunar_lander_symmetry",
    "masked_cartpole_symmetry",
    "pendulum_symmetry",
    "pong_symmetry",
    "swap_action_meanings",
    "walker2d_symmetry",
]
