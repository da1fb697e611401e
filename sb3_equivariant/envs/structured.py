"""Group actions on structured observations: per-agent arrays stacked on an agent axis, and ``Dict`` observations.

A multi-agent system observed jointly has one entry per agent (a local image, a position...) stacked on a leading
agent axis. A global transformation acts on each entry (:class:`AgentAction`'s ``item``) and may also move agents into
each other's places (its ``agents`` permutation, e.g. traffic lights at fixed crossings). :class:`DictAction` acts on
each key of a ``Dict`` observation. Both transform numpy arrays and torch tensors, single or batched (leading dims).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_equivariant.group import Group
from sb3_equivariant.representation import ImageAction, Representation, RepresentationError

ArrayT = TypeVar("ArrayT", np.ndarray, th.Tensor)
#: How a group acts on one array: a representation on its last axis, or an image action on its (C, H, W) axes.
ArrayAction = Representation | ImageAction


def item_ndim(action: ArrayAction) -> int:
    """Number of trailing axes ``action`` acts on: 1 for a vector representation, 3 for images."""
    return 3 if isinstance(action, ImageAction) else 1


def transform_array(action: ArrayAction, x: ArrayT, g: int) -> ArrayT:
    """Apply element ``g`` of a vector representation or an image action (leading batch dims allowed)."""
    if isinstance(action, ImageAction):
        return action.transform(x, g)
    return action.apply(x, g)


def check_array_shape(action: ArrayAction, shape: tuple[int, ...]) -> None:
    """Raise :class:`RepresentationError` naming the mismatch if ``action`` cannot act on arrays of ``shape``."""
    if isinstance(action, ImageAction):
        c_axis = 0 if action.layout == "CHW" else -1
        if len(shape) != 3 or shape[c_axis] != action.channels:
            raise RepresentationError(
                f"observation shape {shape} does not match an image with {action.channels} channels in {action.layout} layout"
            )
        h, w = (shape[1], shape[2]) if c_axis == 0 else (shape[0], shape[1])
        action.spatial.check_shape(h, w)
    elif shape != (action.dim,):
        raise RepresentationError(f"observation shape {shape} does not match the representation's dim {action.dim}")


class AgentAction:
    """
    A group acting on per-agent entries stacked on an agent axis: arrays of shape ``(*batch, n_agents, *item)``.

    Element ``g`` transforms every agent's entry by ``item`` and, if ``agents`` is given, moves agent ``i``'s entry to
    slot ``agents.permutations[g][i]`` (the agents whose places the transformation exchanges).

    :param item: the action on one agent's entry (vector representation or image action).
    :param n_agents: number of agents.
    :param agents: a permutation representation of the group on the ``n_agents`` slots; ``None``: agents stay put.
    """

    def __init__(self, item: ArrayAction, n_agents: int, agents: Representation | None = None):
        if n_agents < 1:
            raise RepresentationError(f"AgentAction needs n_agents >= 1, got {n_agents}")
        if agents is not None:
            if agents.group != item.group:
                raise RepresentationError(
                    f"the agent permutation is of {agents.group.name}, the entries' action of {item.group.name}"
                )
            if not agents.is_permutation or agents.dim != n_agents:
                raise RepresentationError(f"agents must be a permutation representation of dim {n_agents}, got {agents}")
        self.item = item
        self.n_agents = n_agents
        self.agents = agents

    @property
    def group(self) -> Group:
        return self.item.group

    def __repr__(self) -> str:
        moved = "" if self.agents is None else f", agents={self.agents.name}"
        return f"AgentAction({self.item!r} x{self.n_agents}{moved})"

    def transform(self, x: ArrayT, g: int) -> ArrayT:
        """Apply element ``g`` to ``(*batch, n_agents, *item)`` arrays (numpy or torch)."""
        axis = -(item_ndim(self.item) + 1)
        if x.ndim < -axis or x.shape[axis] != self.n_agents:
            raise RepresentationError(f"expected {self.n_agents} agents on axis {axis}, got shape {tuple(x.shape)}")
        out = transform_array(self.item, x, g)
        if self.agents is None:
            return out
        src = self.agents.gather_form(g)[0]
        if isinstance(out, th.Tensor):
            return th.index_select(out, out.ndim + axis, th.as_tensor(src, device=out.device))
        return np.take(out, src, axis=axis)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`RepresentationError` if arrays of ``shape`` (without batch dims) do not fit."""
        if len(shape) < 1 or shape[0] != self.n_agents:
            raise RepresentationError(f"observation shape {shape} does not start with the agent axis of {self.n_agents} agents")
        check_array_shape(self.item, tuple(shape[1:]))


#: Any action on a ``Box`` observation.
BoxAction = Representation | ImageAction | AgentAction


class DictAction:
    """
    A group acting on ``Dict`` observations, key by key.

    :param actions: the action on each key's array (the keys of the observation space, all of one group).
    """

    def __init__(self, actions: Mapping[str, BoxAction]):
        if not actions:
            raise RepresentationError("DictAction needs at least one key")
        groups = {a.group for a in actions.values()}
        if len(groups) != 1:
            raise RepresentationError(
                f"every key of a DictAction must be acted on by one group, got {sorted(g.name for g in groups)}"
            )
        self.actions = dict(actions)

    @property
    def group(self) -> Group:
        return next(iter(self.actions.values())).group

    def __repr__(self) -> str:
        return f"DictAction({', '.join(f'{k}: {a!r}' for k, a in self.actions.items())})"

    def transform(self, obs: Mapping[str, Any], g: int) -> dict[str, Any]:
        """Apply element ``g`` to every key of ``obs`` (numpy arrays or torch tensors, batched or not)."""
        if set(obs) != set(self.actions):
            raise RepresentationError(f"observation keys {sorted(obs)} do not match the symmetry's keys {sorted(self.actions)}")
        return {key: transform_box(self.actions[key], obs[key], g) for key in obs}

    def check_space(self, space: spaces.Space) -> None:
        """Raise :class:`RepresentationError` naming the key that does not fit ``space``."""
        if not isinstance(space, spaces.Dict):
            raise RepresentationError(f"a DictAction needs a Dict observation space, got {space}")
        if set(space.spaces) != set(self.actions):
            raise RepresentationError(
                f"observation keys {sorted(space.spaces)} do not match the symmetry's keys {sorted(self.actions)}"
            )
        for key, sub in space.spaces.items():
            if not isinstance(sub, spaces.Box):
                raise RepresentationError(f"key {key!r}: only Box entries are supported, got {sub}")
            try:
                check_box_shape(self.actions[key], sub.shape)
            except RepresentationError as err:
                raise RepresentationError(f"key {key!r}: {err}") from err


#: Any action on observations.
ObsAction = BoxAction | DictAction


def transform_box(action: BoxAction, x: ArrayT, g: int) -> ArrayT:
    """Apply element ``g`` of any action on ``Box`` observations."""
    if isinstance(action, AgentAction):
        return action.transform(x, g)
    return transform_array(action, x, g)


def check_box_shape(action: BoxAction, shape: tuple[int, ...]) -> None:
    """Raise :class:`RepresentationError` if ``action`` cannot act on ``Box`` observations of ``shape``."""
    if isinstance(action, AgentAction):
        action.check_shape(shape)
    else:
        check_array_shape(action, shape)


__all__ = ["AgentAction", "ArrayAction", "BoxAction", "DictAction", "ObsAction", "check_box_shape", "transform_box"]
