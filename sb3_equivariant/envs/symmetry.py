"""The :class:`Symmetry` of an environment: a group with its action on observations and on actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_equivariant.envs.structured import DictAction, ObsAction, check_box_shape, transform_box
from sb3_equivariant.group import Group
from sb3_equivariant.representation import ImageAction, Representation, RepresentationError

#: Observations: arrays or tensors, or dicts of them for ``Dict`` observation spaces.
ObsT = TypeVar("ObsT", np.ndarray, th.Tensor, dict[str, Any])
#: How element ``g`` acts on an environment's internal state: a (signed permutation) representation on the state
#: vector, or a picklable module-level function ``(state, g) -> state``.
StateTransform = Representation | Callable[[np.ndarray, int], np.ndarray]


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
            return transform_box(self.obs_action, obs, g)
        except RepresentationError as err:
            raise SymmetryError(f"{self.name}: the observation does not match: {err}") from err

    def transform_action(self, action: Any, g: int) -> Any:
        """
        Action(s) transformed by element ``g``. Discrete: integer(s) of any shape (numpy, torch or int) are permuted;
        with ``agents``, the last axis holds the agents' actions and is permuted too (``MultiDiscrete`` joint actions).
        Box: the last axis is transformed by the signed permutation.
        """
        self._check_element(g)
        if self.discrete:
            perm = self.action_permutations[g]
            if isinstance(action, th.Tensor):
                out = th.tensor(perm, device=action.device)[action.long()].to(action.dtype)
            elif np.isscalar(action):
                if self.agents is not None:
                    raise SymmetryError(f"{self.name}: a joint action of {self.agents.dim} agents is needed, got {action!r}")
                return type(action)(perm[int(action)])  # type: ignore[arg-type]
            else:
                arr = np.asarray(action)
                out = perm[arr.astype(np.int64)].astype(arr.dtype)
            return out if self.agents is None else self._permute_agents(out, g)
        try:
            return self.action_rep.apply(action, g)
        except RepresentationError as err:
            raise SymmetryError(f"{self.name}: action shape {tuple(action.shape)} does not match: {err}") from err

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

    def check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> Symmetry:
        """Raise :class:`SymmetryError` naming the mismatch if this symmetry does not fit the spaces; return self."""
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
        return self
