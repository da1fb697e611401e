"""The :class:`Symmetry` of an environment: a group with its action on observations and on actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_equivariant.envs.structured import AgentAction, DictAction, ObsAction, check_box_shape, transform_box
from sb3_equivariant.group import Group
from sb3_equivariant.representation import ImageAction, Representation, RepresentationError

#: Observations: arrays or tensors, or dicts of them for ``Dict`` observation spaces.
ObsT = TypeVar("ObsT", np.ndarray, th.Tensor, dict[str, Any])
#: How element ``g`` acts on an environment's internal state: a (signed permutation) representation on the state
#: vector, or a picklable module-level function ``(state, g) -> state``.
StateTransform = Representation | Callable[[np.ndarray, int], np.ndarray]


def _has_axis(x: Any) -> bool:
    """Whether ``x`` is an array or tensor with at least one axis (what the maps act on)."""
    return isinstance(x, (np.ndarray, th.Tensor)) and x.ndim > 0


class SymmetryError(ValueError):
    """Raised when a symmetry does not fit an environment, or fails verification in strict mode."""


class Symmetry:
    """
    A finite group acting on an environment's observations and actions.

    :param obs_action: how element ``g`` transforms observations: a :class:`Representation` on flat vector
        observations, an :class:`ImageAction` on image observations, an
        :class:`~sb3_equivariant.envs.structured.AgentAction` on per-agent entries stacked on an agent axis, or a
        :class:`~sb3_equivariant.envs.structured.DictAction` on ``Dict`` observations (one of those per key).
    :param action_rep: how element ``g`` transforms actions: a permutation representation on the ``n`` discrete
        actions (``action ↦ perm[g][action]``) or a signed permutation on the dimensions of a Box action. For a
        ``MultiDiscrete`` joint action (one discrete action per agent), the permutation of one agent's actions.
    :param exact: whether the dynamics are exactly invariant (``False`` for approximate symmetries, e.g. a score
        display or random terrain); say why in ``notes``.
    :param name: a short name.
    :param notes: a sentence on what the map is and why it is (in)exact.
    :param discrete: whether actions are discrete indices; default: whenever ``action_rep`` is a permutation. Pass
        ``False`` for a Box action whose symmetry only permutes dimensions (swapping two legs).
    :param state_transform: optional action of the group on the env's internal state (e.g. Acrobot's
        ``[th1, th2, dth1, dth2]``, which differs from its observation), used by the verifier to check the map
        against the dynamics; a representation on the state vector or a function ``(state, g) -> state``.
    :param agents: for ``MultiDiscrete`` joint actions, a permutation representation on the agents: element ``g``
        moves agent ``i``'s action to slot ``agents.permutations[g][i]``; ``None``: every agent keeps its slot.
    """

    def __init__(
        self,
        obs_action: ObsAction,
        action_rep: Representation,
        exact: bool = True,
        name: str = "symmetry",
        notes: str = "",
        discrete: bool | None = None,
        state_transform: StateTransform | None = None,
        agents: Representation | None = None,
    ):
        if not isinstance(obs_action, (Representation, ImageAction, AgentAction, DictAction)):
            raise TypeError(
                f"{name}: obs_action must be a Representation (vector observations), an ImageAction, an AgentAction or a "
                f"DictAction, got {type(obs_action).__name__}"
            )
        if not isinstance(action_rep, Representation):
            raise TypeError(
                f"{name}: action_rep must be a Representation (a permutation of discrete actions or a signed permutation "
                f"of Box dimensions), got {type(action_rep).__name__}"
            )
        if agents is not None and not isinstance(agents, Representation):
            raise TypeError(f"{name}: agents must be a permutation Representation or None, got {type(agents).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if obs_action.group != action_rep.group:
            raise SymmetryError(f"{name}: observations use {obs_action.group.name}, actions {action_rep.group.name}")
        if isinstance(state_transform, Representation) and state_transform.group != action_rep.group:
            raise SymmetryError(f"{name}: the state transform is of {state_transform.group.name}, not {action_rep.group.name}")
        if state_transform is not None and not isinstance(state_transform, Representation) and not callable(state_transform):
            raise SymmetryError(f"{name}: state_transform must be a Representation or a callable, got {state_transform!r}")
        if agents is not None and (agents.group != action_rep.group or not agents.is_permutation):
            raise SymmetryError(f"{name}: agents must be a permutation representation of {action_rep.group.name}, got {agents}")
        if discrete is None:
            discrete = action_rep.is_permutation
        if discrete and not action_rep.is_permutation:
            raise SymmetryError(f"{name}: discrete actions need a permutation representation, got {action_rep}")
        self.discrete = discrete
        self.obs_action = obs_action
        self.action_rep = action_rep
        self.exact = exact
        self.name = name
        self.notes = notes
        self.state_transform = state_transform
        self.agents = agents

    @property
    def group(self) -> Group:
        return self.action_rep.group

    def __len__(self) -> int:
        return self.group.order

    def __repr__(self) -> str:
        return f"Symmetry({self.name}, group={self.group.name}, exact={self.exact})"

    @property
    def is_image(self) -> bool:
        return isinstance(self.obs_action, ImageAction)

    @property
    def action_permutations(self) -> np.ndarray:
        """``perm[g][a]``: the discrete action that ``a`` becomes under ``g``; shape ``(|G|, n_actions)``."""
        if not self.action_rep.is_permutation:
            raise SymmetryError(f"{self.name}: the action representation is not a permutation of discrete actions")
        return self.action_rep.permutations

    def _check_element(self, g: int) -> None:
        if not 0 <= int(g) < len(self):
            raise SymmetryError(f"{self.name}: group element {g} out of range 0..{len(self) - 1}")

    def transform_obs(self, obs: ObsT, g: int) -> ObsT:
        """
        Observation(s) transformed by element ``g``; numpy or torch, single or batched (leading dims); a dict of
        those for ``Dict`` observations.
        """
        self._check_element(g)
        try:
            if isinstance(self.obs_action, DictAction):
                if not isinstance(obs, dict):
                    raise RepresentationError(f"a Dict observation is needed, got {type(obs).__name__}")
                return self.obs_action.transform(obs, g)  # type: ignore[return-value]
            if isinstance(obs, dict):
                raise RepresentationError(f"got a dict observation, but the symmetry acts on arrays ({self.obs_action})")
            if not _has_axis(obs):
                raise RepresentationError(f"observations are arrays or tensors with at least one axis, got {obs!r}")
            return transform_box(self.obs_action, obs, g)
        except RepresentationError as err:
            raise SymmetryError(f"{self.name}: the observation does not match: {err}") from err

    def transform_action(self, action: Any, g: int) -> Any:
        """
        Action(s) transformed by element ``g``. Discrete: integer(s) of any shape (numpy, torch or int; float arrays of
        whole numbers too, as SB3's rollout buffer stores them) are permuted; with ``agents``, the last axis holds the
        agents' actions and is permuted too (``MultiDiscrete`` joint actions). Box: the last axis is transformed by the
        signed permutation.

        :raises SymmetryError: for a discrete action that is not a whole number in ``0..n-1``.
        """
        self._check_element(g)
        if self.discrete:
            perm = self.action_permutations[g]
            if isinstance(action, th.Tensor):
                self._check_discrete(action.detach().cpu().numpy())
                out = th.tensor(perm, device=action.device)[action.long()].to(action.dtype)
            elif np.isscalar(action):
                if self.agents is not None:
                    raise SymmetryError(f"{self.name}: a joint action of {self.agents.dim} agents is needed, got {action!r}")
                self._check_discrete(np.asarray(action))
                return type(action)(perm[int(action)])  # type: ignore[arg-type,call-arg]
            else:
                arr = np.asarray(action)
                self._check_discrete(arr)
                out = perm[arr.astype(np.int64)].astype(arr.dtype)
            return out if self.agents is None else self._permute_agents(out, g)
        box_action: Any = np.asarray(action) if isinstance(action, (list, tuple)) else action
        if not _has_axis(box_action):
            raise SymmetryError(
                f"{self.name}: Box actions are arrays or tensors whose last axis has {self.action_rep.dim} entries, got "
                f"{action!r}; wrap a single value as np.array([value])"
            )
        try:
            return self.action_rep.apply(box_action, g)
        except RepresentationError as err:
            raise SymmetryError(f"{self.name}: action shape {tuple(box_action.shape)} does not match: {err}") from err

    def _check_discrete(self, actions: np.ndarray) -> None:
        n = self.action_rep.dim
        if actions.dtype.kind not in "biuf" or (actions.dtype.kind == "f" and not np.all(np.round(actions) == actions)):
            raise SymmetryError(
                f"{self.name}: discrete actions are whole numbers (indices 0..{n - 1}), got {actions.ravel()[:6]!r} of "
                f"dtype {actions.dtype}; pass the action index, not a probability or a continuous value"
            )
        if actions.size and (actions.min() < 0 or actions.max() >= n):
            raise SymmetryError(
                f"{self.name}: discrete action out of range: got {actions.ravel()[:6]!r}, the symmetry permutes {n} actions "
                f"(0..{n - 1})"
            )

    def _permute_agents(self, joint: Any, g: int) -> Any:
        assert self.agents is not None
        if joint.ndim < 1 or joint.shape[-1] != self.agents.dim:
            raise SymmetryError(
                f"{self.name}: joint actions need a last axis of {self.agents.dim} agents, got shape {tuple(joint.shape)}"
            )
        return self.agents.apply(joint, g)

    def transform_state(self, state: np.ndarray, g: int) -> np.ndarray:
        """The env's internal state transformed by element ``g`` (needs ``state_transform``)."""
        self._check_element(g)
        if self.state_transform is None:
            raise SymmetryError(f"{self.name}: no state_transform given, the state cannot be transformed")
        if isinstance(self.state_transform, Representation):
            state = np.asarray(state)
            try:
                return self.state_transform.apply(state, g)
            except RepresentationError as err:
                raise SymmetryError(f"{self.name}: state shape {state.shape} does not match: {err}") from err
        return np.asarray(self.state_transform(np.asarray(state), g))

    def replace(self, **changes: Any) -> Symmetry:
        """A copy with some constructor arguments changed (e.g. ``obs_action`` adapted to a wrapped env)."""
        kwargs: dict[str, Any] = dict(
            obs_action=self.obs_action,
            action_rep=self.action_rep,
            exact=self.exact,
            name=self.name,
            notes=self.notes,
            discrete=self.discrete,
            state_transform=self.state_transform,
            agents=self.agents,
        )
        kwargs.update(changes)
        return Symmetry(**kwargs)

    def check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space, check_bounds: bool = True) -> Symmetry:
        """
        Raise :class:`SymmetryError` naming the mismatch if this symmetry does not fit the spaces; return self.

        :param check_bounds: also check that the maps keep ``Box`` observations and actions inside their bounds (on the
            bounds and a few points between them).
        """
        if isinstance(action_space, spaces.Discrete):
            if not self.discrete or self.action_rep.dim != int(action_space.n):
                raise SymmetryError(
                    f"{self.name}: a Discrete({action_space.n}) action space needs a discrete permutation symmetry of "
                    f"dim {action_space.n}, got {self.action_rep} (discrete={self.discrete})"
                )
        elif isinstance(action_space, spaces.MultiDiscrete):
            nvec = np.asarray(action_space.nvec)
            if not self.discrete or nvec.ndim != 1 or np.any(nvec != self.action_rep.dim):
                raise SymmetryError(
                    f"{self.name}: a MultiDiscrete({nvec.tolist()}) joint action needs the same number of discrete actions "
                    f"per agent as the symmetry's permutation of dim {self.action_rep.dim} (discrete={self.discrete})"
                )
            if self.agents is not None and self.agents.dim != len(nvec):
                raise SymmetryError(f"{self.name}: {len(nvec)} agents act, but the agent permutation has dim {self.agents.dim}")
        elif isinstance(action_space, spaces.Box):
            if self.discrete or action_space.shape != (self.action_rep.dim,):
                raise SymmetryError(
                    f"{self.name}: Box action shape {action_space.shape} needs a Box symmetry of dim "
                    f"{self.action_rep.dim} (discrete={self.discrete})"
                )
        else:
            raise SymmetryError(f"{self.name}: unsupported action space {action_space} (Discrete, MultiDiscrete or 1-d Box)")
        try:
            if isinstance(self.obs_action, DictAction):
                self.obs_action.check_space(observation_space)
            elif not isinstance(observation_space, spaces.Box):
                raise RepresentationError(f"unsupported observation space {observation_space} (Box, or Dict with a DictAction)")
            else:
                check_box_shape(self.obs_action, observation_space.shape)
        except RepresentationError as err:
            raise SymmetryError(f"{self.name}: {err}") from err
        if check_bounds and isinstance(observation_space, spaces.Box):
            self._check_maps_into(observation_space, self.transform_obs, "observation")
        if check_bounds and isinstance(action_space, spaces.Box):
            self._check_maps_into(action_space, self.action_rep.apply, "action")
        return self

    def _check_maps_into(self, space: spaces.Box, transform: Callable[[np.ndarray, int], Any], what: str) -> None:
        """
        Raise :class:`SymmetryError` if some element maps points of ``space`` outside it (``a -> -a`` on ``[0, 1]``):
        checked on the bounds and a few points drawn from a fixed generator (the space's own is left untouched).
        """
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        rng = np.random.default_rng(0)
        lo, hi = np.where(np.isfinite(low), low, -1.0), np.where(np.isfinite(high), high, 1.0)
        lo, hi = np.minimum(lo, hi), np.maximum(np.maximum(lo, hi), np.minimum(lo + 2.0, hi))
        points = [lo, hi, *(rng.uniform(lo, hi) for _ in range(4))]
        if np.issubdtype(space.dtype, np.integer):
            points = [np.round(p) for p in points]
        tol = 1e-6 * (1.0 + np.maximum(np.abs(lo), np.abs(hi)))
        for point in points:
            for g in self.group.elements:
                moved = np.asarray(transform(point, g), dtype=np.float64)
                outside = (moved < low - tol) | (moved > high + tol)
                if np.any(outside):
                    index = tuple(int(i) for i in np.argwhere(outside)[0])
                    raise SymmetryError(
                        f"{self.name}: element {g} does not map the {what} box {space} onto itself (at index {index}: "
                        f"{float(moved[index]):.4g} not in [{low[index]:.4g}, {high[index]:.4g}]); the map must keep every "
                        f"{what} inside the space (e.g. a -> -a needs bounds symmetric about 0)"
                    )
