"""Check a :class:`Symmetry` against an environment's dynamics.

For states ``s`` reached by random rollouts, actions ``a`` and group elements ``g``, stepping from the transformed
state ``g·s`` with the transformed action ``g·a`` must give the transformed next observation, the same reward and the
same termination. The transformed state comes from the symmetry's ``state_transform`` and needs read/write access to
the env's state (:class:`StateAccess`: classic control's ``state``, MuJoCo's ``qpos``/``qvel``, or an env's own
``get_state`` / ``set_state`` / ``get_obs``). Stochastic transitions are compared pathwise with a shared random
generator first and, when that differs, as distributions over repeated draws. Whatever the env, the verifier also
checks that the observation and action maps are group actions and keep observations inside the observation space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_equivariant.envs.propagation import get_symmetry
from sb3_equivariant.envs.registry import symmetry_for
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError


@dataclass
class CheckResult:
    """
    One property checked over many samples.

    :param name: what was checked (e.g. ``"transition"``).
    :param n_checked: number of cases checked.
    :param n_failed: number of cases that failed.
    :param max_error: largest absolute error seen.
    :param message: the first failure, or a summary.
    """

    name: str
    n_checked: int = 0
    n_failed: int = 0
    max_error: float = 0.0
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.n_failed == 0

    def record(self, ok: bool, error: float = 0.0, detail: str = "") -> None:
        self.n_checked += 1
        self.max_error = max(self.max_error, float(error))
        if not ok:
            if self.n_failed == 0:
                self.message = detail
            self.n_failed += 1

    def __str__(self) -> str:
        status = "ok" if self.passed else f"FAILED {self.n_failed}/{self.n_checked}"
        text = f"{self.name}: {status} (n={self.n_checked}, max error {self.max_error:.3g})"
        return f"{text}: {self.message}" if self.message else text


@dataclass
class SymmetryReport:
    """
    Result of :func:`check_symmetry`.

    :param symmetry: the symmetry's name.
    :param checks: every property checked.
    :param unverified: what could not be verified, and why (``"dynamics not checked: <reason>"``).
    """

    symmetry: str
    checks: list[CheckResult] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def dynamics_verified(self) -> bool:
        return any(c.name == "transition" and c.n_checked > 0 for c in self.checks)

    def __getitem__(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r}; checks: {[c.name for c in self.checks]}")

    @property
    def messages(self) -> list[str]:
        return [str(c) for c in self.checks] + [f"{u}" for u in self.unverified]

    def __str__(self) -> str:
        if not self.passed:
            status = "FAILED"
        elif self.dynamics_verified:
            status = "passed"
        else:  # only the group-action properties were checked: the map may still be wrong for the dynamics
            status = "group actions passed; dynamics NOT checked"
        return "\n".join([f"{self.symmetry}: {status}"] + [f"  {m}" for m in self.messages])


@dataclass
class StateAccess:
    """
    Read and write an env's state and observe it.

    :param get_state: returns a copy of the state vector.
    :param set_state: sets the state vector.
    :param observe: the observation of the current state.
    :param name: how the state is accessed (for the report).
    """

    get_state: Callable[[], np.ndarray]
    set_state: Callable[[np.ndarray], None]
    observe: Callable[[], Any]
    name: str


def state_access(env: gym.Env) -> StateAccess | None:
    """
    How to read and write the state of ``env.unwrapped``, or ``None`` when it cannot be set (e.g. ALE).

    Tried in order: MuJoCo (``data.qpos``/``data.qvel``, ``set_state(qpos, qvel)``, ``_get_obs()``); an env with its
    own ``get_state()``, ``set_state(state)`` and ``get_obs()`` (:class:`~sb3_equivariant.envs.gridworld.GridWorld`);
    classic control (a ``state`` attribute, observed by ``_get_ob()``/``_get_obs()`` or as the state itself).
    """
    base: Any = env.unwrapped  # state attributes are env-specific
    if hasattr(base, "data") and hasattr(base, "init_qpos") and hasattr(base, "set_state"):
        nq = len(base.init_qpos)
        return StateAccess(
            get_state=lambda: np.concatenate([base.data.qpos, base.data.qvel]).copy(),
            set_state=lambda s: base.set_state(np.asarray(s)[:nq], np.asarray(s)[nq:]),
            observe=base._get_obs,
            name="mujoco qpos/qvel",
        )
    if all(callable(getattr(base, m, None)) for m in ("get_state", "set_state", "get_obs")):
        return StateAccess(get_state=base.get_state, set_state=base.set_state, observe=base.get_obs, name="get_state/set_state")
    if getattr(base, "state", None) is not None and isinstance(base.observation_space, spaces.Box):
        observe = getattr(base, "_get_ob", None) or getattr(base, "_get_obs", None)
        if observe is None:  # CartPole-like: the observation is the state

            def observe() -> np.ndarray:
                return np.array(base.state, dtype=base.observation_space.dtype)

        def set_state(s: np.ndarray) -> None:
            base.state = np.array(s, dtype=np.float64)

        return StateAccess(
            get_state=lambda: np.array(base.state, dtype=np.float64),
            set_state=set_state,
            observe=observe,
            name="classic control .state",
        )
    return None


def _copy_obs(obs: Any) -> Any:
    """A copy of an observation (arrays, or dicts of arrays for ``Dict`` spaces)."""
    if isinstance(obs, Mapping):
        return {key: np.array(value) for key, value in obs.items()}
    return np.array(obs)


def _cast_obs(obs: Any, space: spaces.Space) -> Any:
    """An observation cast to the dtype(s) of ``space``, for ``space.contains``."""
    if isinstance(space, spaces.Dict) and isinstance(obs, Mapping):
        return {key: np.asarray(obs[key], dtype=sub.dtype) for key, sub in space.spaces.items() if key in obs}
    return np.asarray(obs, dtype=space.dtype)


def _error(a: Any, b: Any) -> float:
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)) or set(a) != set(b):
            return float("inf")
        return max((_error(a[key], b[key]) for key in a), default=0.0)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _sample_actions(space: spaces.Space, rng: np.random.Generator, n: int) -> list[Any]:
    if isinstance(space, spaces.Discrete):
        return [int(space.start + a) for a in range(int(space.n))]
    space.seed(int(rng.integers(2**31)))
    return [space.sample() for _ in range(n)]


def _check_group_action(
    name: str, transform: Callable[[Any, int], Any], samples: Sequence[Any], symmetry: Symmetry, atol: float
) -> list[CheckResult]:
    group = symmetry.group
    identity, composition = CheckResult(f"{name}_identity"), CheckResult(f"{name}_composition")
    for x in samples:
        err = _error(transform(x, 0), x)
        identity.record(err <= atol, err, f"{name} map of the identity changes {np.asarray(x).ravel()[:6]}...")
        for g in group.elements:
            for h in group.elements:
                err = _error(transform(transform(x, h), g), transform(x, group.mul(g, h)))
                composition.record(err <= atol, err, f"{name} map: T({g}) T({h}) != T({g}·{h}) (error {err:.3g})")
    return [identity, composition]


def check_symmetry(
    env: gym.Env,
    symmetry: Symmetry | str | None = None,
    n_samples: int = 32,
    seed: int = 0,
    strict: bool = False,
    atol: float = 1e-5,
    n_repeats: int = 200,
    max_tv: float = 0.2,
    access: StateAccess | None = None,
    check_approximate: bool = False,
) -> SymmetryReport:
    """
    Verify ``symmetry`` (default: :func:`get_symmetry` of ``env``) on ``env``.

    :param env: a single gymnasium env (not a VecEnv); the dynamics are checked on ``env.unwrapped``, which is reset,
        set and stepped directly: reset ``env`` before using it again.
    :param symmetry: the symmetry to check, or a registered env id (its registry symmetry); default: the env's. It must
        describe ``env.unwrapped``'s observations for the dynamics check.
    :param n_samples: number of states sampled from random rollouts (>= 1).
    :param seed: seed of the rollouts and of every comparison.
    :param strict: raise :class:`SymmetryError` listing the failing checks, or saying why the dynamics could not be
        checked (a map that is never compared with the dynamics is not verified).
    :param atol: absolute tolerance on observations and rewards.
    :param n_repeats: draws per branch when a stochastic transition is compared as a distribution.
    :param max_tv: largest total-variation distance accepted between the two empirical distributions.
    :param access: how to read/write the state; default :func:`state_access`.
    :param check_approximate: check the dynamics of a symmetry marked ``exact=False`` too (to measure how far from
        exact it is; skipped by default, as it is expected to fail at a tight ``atol``).
    """
    if not isinstance(env, gym.Env):
        raise TypeError(
            f"check_symmetry needs a single gymnasium env, got {type(env).__name__}"
            + ("; make it with gym.make(env_id)" if isinstance(env, str) else "")
        )
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}: nothing would be checked")
    if isinstance(symmetry, str):
        symmetry = symmetry_for(symmetry, env)
    elif symmetry is None:
        symmetry = get_symmetry(env, required=True)
    elif not isinstance(symmetry, Symmetry):
        raise TypeError(f"symmetry must be a Symmetry, a registered env id or None (the env's), got {type(symmetry).__name__}")
    symmetry.check_spaces(env.observation_space, env.action_space, check_bounds=False)  # reported below instead
    report = SymmetryReport(symmetry.name)
    rng = np.random.default_rng(seed)
    base = env.unwrapped
    access = access or _reset_and_access(env, seed)
    states, observations = _rollouts(env, access, n_samples, seed)

    obs_space = env.observation_space
    report.checks += _check_group_action("obs", symmetry.transform_obs, observations, symmetry, atol)
    in_space = CheckResult("obs_in_space")
    for o in observations:
        for g in symmetry.group.elements:
            go = symmetry.transform_obs(o, g)
            in_space.record(
                bool(obs_space.contains(_cast_obs(go, obs_space))),
                0.0,
                f"element {g} maps an observation outside {obs_space}",
            )
    report.checks.append(in_space)
    actions = _sample_actions(env.action_space, rng, n_samples)
    report.checks += _check_group_action("action", symmetry.transform_action, actions, symmetry, atol)
    act_in_space = CheckResult("action_in_space")
    for a in actions:
        for g in symmetry.group.elements:
            ga = symmetry.transform_action(a, g)
            act_in_space.record(bool(env.action_space.contains(ga)), 0.0, f"element {g} maps action {a} outside the space")
    report.checks.append(act_in_space)

    reason = _why_no_dynamics(symmetry, base, access, states, check_approximate)
    if reason or access is None:
        report.unverified.append(f"dynamics not checked: {reason}")
    else:
        report.checks += _check_group_action("state", symmetry.transform_state, states, symmetry, atol)
        report.checks += _check_dynamics(base, symmetry, access, states, actions, rng, atol, n_repeats, max_tv)

    if strict and not report.passed:
        raise SymmetryError(f"symmetry {symmetry.name} fails verification:\n" + "\n".join(str(c) for c in report.failures))
    if strict and not report.dynamics_verified:
        raise SymmetryError(
            f"symmetry {symmetry.name}: {'; '.join(report.unverified)}. strict=True needs the map checked against the "
            "dynamics; pass strict=False to check only that the maps are group actions that stay in the spaces"
        )
    return report


def _reset_and_access(env: gym.Env, seed: int) -> StateAccess | None:
    env.reset(seed=seed)
    return state_access(env)


def _rollouts(env: gym.Env, access: StateAccess | None, n_samples: int, seed: int) -> tuple[list[Any], list[Any]]:
    """States (if readable) and observations met by a uniformly random policy, one every few steps."""
    stride = 3
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    states, observations = [], []
    for t in range(n_samples * stride):
        if t % stride == 0:
            observations.append(_copy_obs(obs))
            if access is not None:
                states.append(access.get_state())
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    return states, observations


def _why_no_dynamics(
    symmetry: Symmetry, base: gym.Env, access: StateAccess | None, states: list[Any], check_approximate: bool
) -> str:
    if access is None:
        return (
            f"the state of {type(base).__name__} cannot be set (give the env get_state/set_state/get_obs methods, or "
            "pass access=StateAccess(...))"
        )
    if symmetry.state_transform is None:
        return (
            f"no state_transform: {symmetry.name} does not say how its elements act on the env's state (give the "
            "Symmetry a state_transform)"
        )
    if not symmetry.exact and not check_approximate:
        return f"{symmetry.name} is approximate (exact=False; check_approximate=True measures it): {symmetry.notes}"
    try:
        symmetry.check_spaces(base.observation_space, base.action_space)
    except SymmetryError as err:
        return f"the symmetry describes a wrapped observation, not the unwrapped env's ({err})"
    if not states:
        return "no states sampled"
    return ""


def _step_from(base: gym.Env, access: StateAccess, state: np.ndarray, action: Any, seed: int) -> tuple[Any, float, bool]:
    base.reset(seed=seed)  # clears per-episode counters (e.g. CartPole's steps_beyond_terminated)
    access.set_state(state)
    base.np_random = np.random.default_rng(seed)  # both branches draw the same random numbers
    obs, reward, terminated, _, _ = base.step(action)
    return _copy_obs(obs), float(reward), bool(terminated)


def _outcome_key(obs: Any, reward: float, terminated: bool, atol: float) -> tuple:
    scale = max(atol, 1e-12)
    arrays = [obs[key] for key in sorted(obs)] if isinstance(obs, Mapping) else [obs]
    rounded = b"".join(np.round(np.asarray(a, dtype=np.float64) / scale).astype(np.int64).tobytes() for a in arrays)
    return (rounded, round(reward / scale), terminated)


def _check_dynamics(
    base: gym.Env,
    symmetry: Symmetry,
    access: StateAccess,
    states: list[np.ndarray],
    actions: list[Any],
    rng: np.random.Generator,
    atol: float,
    n_repeats: int,
    max_tv: float,
) -> list[CheckResult]:
    obs_of_state = CheckResult("obs_of_state")
    transition, reward_check, termination = CheckResult("transition"), CheckResult("reward"), CheckResult("termination")
    distribution = CheckResult("transition_distribution")
    discrete = isinstance(base.action_space, spaces.Discrete)
    for i, state in enumerate(states):
        step_seed = int(rng.integers(2**31))
        base.reset(seed=step_seed)
        access.set_state(state)
        obs = _copy_obs(access.observe())
        for g in list(symmetry.group.elements)[1:]:
            g_state = symmetry.transform_state(state, g)
            access.set_state(g_state)
            err = _error(access.observe(), symmetry.transform_obs(obs, g))
            obs_of_state.record(err <= atol, err, f"obs(g·s) != g·obs(s) for element {g} at state {state} (error {err:.3g})")
            access.set_state(state)
            case_actions = actions if discrete else [actions[i % len(actions)]]
            for a in case_actions:
                ga = symmetry.transform_action(a, g)
                step_seed = int(rng.integers(2**31))
                o1, r1, t1 = _step_from(base, access, state, a, step_seed)
                o2, r2, t2 = _step_from(base, access, g_state, ga, step_seed)
                obs_err, rew_err = _error(o2, symmetry.transform_obs(o1, g)), abs(r2 - r1)
                if obs_err <= atol and rew_err <= atol and t1 == t2:
                    for check in (transition, reward_check, termination):
                        check.record(True, 0.0)
                    continue
                tv, deterministic = _distribution_distance(base, access, symmetry, g, state, a, g_state, ga, n_repeats, atol)
                if not deterministic:
                    distribution.record(tv <= max_tv, tv, f"element {g}, action {a}: total variation {tv:.3f} > {max_tv}")
                    continue
                where = f"element {g}, state {np.asarray(state).ravel()[:6]}, action {a}"
                transition.record(obs_err <= atol, obs_err, f"{where}: next obs differs by {obs_err:.3g}")
                reward_check.record(rew_err <= atol, rew_err, f"{where}: rewards {r1} vs {r2}")
                termination.record(t1 == t2, float(t1 != t2), f"{where}: terminated {t1} vs {t2}")
    checks = [obs_of_state, transition, reward_check, termination]
    if distribution.n_checked:
        summary = f"{distribution.n_checked} stochastic transitions compared as distributions"
        distribution.message = distribution.message or summary
        checks.append(distribution)
    return checks


def _distribution_distance(
    base: gym.Env,
    access: StateAccess,
    symmetry: Symmetry,
    g: int,
    state: np.ndarray,
    action: Any,
    g_state: np.ndarray,
    g_action: Any,
    n_repeats: int,
    atol: float,
) -> tuple[float, bool]:
    """
    Total-variation distance between the outcomes of ``(g·s, g·a)`` and the transformed outcomes of ``(s, a)`` over
    independent draws, and whether both looked deterministic (one outcome each over the first 64 draws, after which
    the comparison stops: a deterministic mismatch is then reported as such).
    """
    counts: dict[tuple, np.ndarray] = {}
    first: list[set] = [set(), set()]
    n = 0
    for k in range(max(n_repeats, 64)):
        o1, r1, t1 = _step_from(base, access, state, action, 10_000 + k)
        o2, r2, t2 = _step_from(base, access, g_state, g_action, 20_000 + k)
        keys = (_outcome_key(symmetry.transform_obs(o1, g), r1, t1, atol), _outcome_key(o2, r2, t2, atol))
        for branch, key in enumerate(keys):
            counts.setdefault(key, np.zeros(2))[branch] += 1
            first[branch].add(key)
        n = k + 1
        if n == 64 and len(first[0]) == 1 and len(first[1]) == 1:
            return (0.0 if first[0] == first[1] else 1.0), True
    return 0.5 * sum(abs(c[0] - c[1]) for c in counts.values()) / n, False


__all__ = ["CheckResult", "StateAccess", "SymmetryReport", "check_symmetry", "state_access"]
