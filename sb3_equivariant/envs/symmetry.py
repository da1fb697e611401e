"""The :class:`Symmetry` of an environment: a group with its action on observations and on actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_equivariant.group import Group
from sb3_equivariant.representation import ImageAction, Representation, RepresentationError

ArrayT = TypeVar("ArrayT", np.ndarray, th.Tensor)
ObsAction = Representation | ImageAction
#: How element ``g`` acts on an environment's internal state: a (signed permutation) representation on the state
#: vector, or a picklable module-level function ``(state, g) -> state``.
StateTransform = Representation | Callable[[np.ndarray, int], np.ndarray]


class SymmetryError(ValueError):
    """Raised when a symmetry does not fit an environment, or fails verification in strict mode."""


class Symmetry:
    """
    A finite group acting on an environment's observations and actions.

    :param obs_action: how element ``g`` transforms observations: a :class:`Representation` on flat vector
        observations, or an :class:`ImageAction` on image observations.
    :param action_rep: how element ``g`` transforms actions: a permutation representation on the ``n`` discrete
        actions (``action ↦ perm[g][action]``) or a signed permutation on the dimensions of a Box action.
    :param exact: whether the dynamics are exactly invariant (``False`` for approximate symmetries, e.g. a score
        display or random terrain); say why in ``notes``.
    :param name: a short name.
    :param notes: a sentence on what the map is and why it is (in)exact.
    :param discrete: whether actions are discrete indices; default: whenever ``action_rep`` is a permutation. Pass
        ``False`` for a Box action whose symmetry only permutes dimensions (swapping two legs).
    :param state_transform: optional action of the group on the env's internal state (e.g. Acrobot's
        ``[th1, th2, dth1, dth2]``, which differs from its observation), used by the verifier to check the map
        against the dynamics; a representation on the state vector or a function ``(state, g) -> state``.
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
    ):
        if obs_action.group != action_rep.group:
            raise SymmetryError(f"{name}: observations use {obs_action.group.name}, actions {action_rep.group.name}")
        if isinstance(state_transform, Representation) and state_transform.group != action_rep.group:
            raise SymmetryError(f"{name}: the state transform is of {state_transform.group.name}, not {action_rep.group.name}")
        if state_transform is not None and not isinstance(state_transform, Representation) and not callable(state_transform):
            raise SymmetryError(f"{name}: state_transform must be a Representation or a callable, got {state_transform!r}")
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

    def transform_obs(self, obs: ArrayT, g: int) -> ArrayT:
        """Observation(s) transformed by element ``g``; numpy or torch, single or batched (leading dims)."""
        self._check_element(g)
        if isinstance(self.obs_action, ImageAction):
            return self.obs_action.transform(obs, g)
        try:
            return self.obs_action.apply(obs, g)
        except RepresentationError as err:
            raise SymmetryError(f"{self.name}: observation shape {tuple(obs.shape)} does not match: {err}") from err

    def transform_action(self, action: Any, g: int) -> Any:
        """
        Action(s) transformed by element ``g``. Discrete: integer(s) of any shape (numpy, torch or int) are permuted.
        Box: the last axis is transformed by the signed permutation.
        """
        self._check_element(g)
        if self.discrete:
            perm = self.action_permutations[g]
            if isinstance(action, th.Tensor):
                return th.tensor(perm, device=action.device)[action.long()].to(action.dtype)
            if np.isscalar(action):
                return type(action)(perm[int(action)])  # type: ignore[arg-type]
            arr = np.asarray(action)
            return perm[arr.astype(np.int64)].astype(arr.dtype)
        try:
            return self.action_rep.apply(action, g)
        except RepresentationError as err:
            raise SymmetryError(f"{self.name}: action shape {tuple(action.shape)} does not match: {err}") from err

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
        )
        kwargs.update(changes)
        return Symmetry(**kwargs)

    def check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> Symmetry:
        """Raise :class:`SymmetryError` naming the mismatch if this symmetry does not fit the spaces; return self."""
        if isinstance(action_space, spaces.Discrete):
            if not self.discrete or self.action_rep.dim != int(action_space.n):
                raise SymmetryError(
                    f"{self.name}: a Discrete({action_space.n}) action space needs a discrete permutation symmetry of "
                    f"dim {action_space.n}, got {self.action_rep} (discrete={self.discrete})"
                )
        elif isinstance(action_space, spaces.Box):
            if self.discrete or action_space.shape != (self.action_rep.dim,):
                raise SymmetryError(
                    f"{self.name}: Box action shape {action_space.shape} needs a Box symmetry of dim "
                    f"{self.action_rep.dim} (discrete={self.discrete})"
                )
        else:
            raise SymmetryError(f"{self.name}: unsupported action space {action_space} (Discrete or 1-d Box)")
        if not isinstance(observation_space, spaces.Box):
            raise SymmetryError(f"{self.name}: unsupported observation space {observation_space} (Box only)")
        shape = observation_space.shape
        if isinstance(self.obs_action, ImageAction):
            c_axis = 0 if self.obs_action.layout == "CHW" else -1
            if len(shape) != 3 or shape[c_axis] != self.obs_action.channels:
                raise SymmetryError(
                    f"{self.name}: observation shape {shape} does not match an image with {self.obs_action.channels} "
                    f"channels in {self.obs_action.layout} layout"
                )
            h, w = (shape[1], shape[2]) if c_axis == 0 else (shape[0], shape[1])
            try:
                self.obs_action.spatial.check_shape(h, w)
            except RepresentationError as err:
                raise SymmetryError(f"{self.name}: {err}") from err
        elif shape != (self.obs_action.dim,):
            raise SymmetryError(
                f"{self.name}: observation shape {shape} does not match the representation's dim {self.obs_action.dim}"
            )
        return self
