"""Message-passing actor-critic policies for joint multi-agent envs (PPO, A2C), equivariant or standard.

Every agent encodes its local image with a CNN (two convolutions, a global max pool), then ``rounds`` rounds of
message passing update each agent's features from its own features and the sum, over the neighbors within
``radius``, of a message computed from the neighbor's relative position and features. A per-agent head gives the
agent's action logits (SB3's ``MultiDiscrete`` distribution sums the agents' log-probabilities: the joint-ratio PPO of
van der Pol et al., 2022) and the value is the mean of per-agent values (invariant to any permutation of agents).
Everything is batched over envs, agents and agent pairs: no Python loop runs per agent.

:class:`EquivariantMessagePassingPolicy` builds every layer from the env's symmetry (lifting and group convolutions,
equivariant linear maps on regular features and on the relative positions' representation), so that
``π(g·a | g·s) = π(a | s)`` and ``V(g·s) = V(s)`` for every element ``g``. :class:`MessagePassingPolicy` is the same
architecture with plain layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_equivariant.envs.discovery import constructing_algorithm, resolve_symmetry
from sb3_equivariant.envs.structured import AgentAction, DictAction
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.nn import EquivariantConv2d, EquivariantLinear, GlobalPool2d
from sb3_equivariant.nn.base import EquivariantModule, export_children, export_plain
from sb3_equivariant.policies.common import DEFAULT_SIZING, default_width, init_module
from sb3_equivariant.representation import ImageAction, Representation, copies, direct_sum, regular, tensor_product, trivial

VIEW_KEY, POSITION_KEY = "view", "position"


def _agent_spaces(observation_space: spaces.Space) -> tuple[spaces.Box, spaces.Box]:
    """The ``view`` and ``position`` boxes of a joint observation, checked."""
    if not isinstance(observation_space, spaces.Dict) or not {VIEW_KEY, POSITION_KEY} <= set(observation_space.spaces):
        raise ValueError(
            f"message-passing policies need a Dict observation with {VIEW_KEY!r} (n_agents, C, H, W) and {POSITION_KEY!r} "
            f"(n_agents, d) boxes, as the envs of sb3_equivariant.multiagent give; got {observation_space}"
        )
    view, position = observation_space[VIEW_KEY], observation_space[POSITION_KEY]
    if not (isinstance(view, spaces.Box) and len(view.shape) == 4):
        raise ValueError(f"{VIEW_KEY!r} must be a Box of shape (n_agents, C, H, W), got {view}")
    if not (isinstance(position, spaces.Box) and len(position.shape) == 2 and position.shape[0] == view.shape[0]):
        raise ValueError(f"{POSITION_KEY!r} must be a Box of shape ({view.shape[0]}, d), got {position}")
    return view, position


def neighbor_mask(relative: th.Tensor, radius: float | None) -> th.Tensor:
    """
    ``mask[..., i, j]`` = 1 when agent ``j`` is within ``radius`` of agent ``i`` (Euclidean, ``j != i``); all other
    agents when ``radius`` is ``None``.

    :param relative: ``relative[..., i, j, :] = position_j - position_i``, shape ``(..., n, n, d)``.
    :param radius: the communication radius.
    """
    n = relative.shape[-2]
    others = ~th.eye(n, dtype=th.bool, device=relative.device)
    if radius is None:
        return others.expand(relative.shape[:-1]).to(relative.dtype)
    return ((relative.norm(dim=-1) <= radius) & others).to(relative.dtype)


def neighbour_mask(relative: th.Tensor, radius: float | None) -> th.Tensor:
    """Deprecated British spelling of :func:`neighbor_mask`."""
    warnings.warn("neighbour_mask is deprecated: use neighbor_mask", DeprecationWarning, stacklevel=2)
    return neighbor_mask(relative, radius)


class MessagePassingExtractor(BaseFeaturesExtractor, EquivariantModule):
    """
    The shared trunk: per-agent CNN encoder and ``rounds`` rounds of message passing; output ``[B, n_agents · F]``
    (agent-major), with ``F = agent_features``.

    With a ``symmetry`` every layer is equivariant: the encoder lifts the view to regular channels of the group and
    max-pools over space; a message is an equivariant map from (relative position in the positions' representation,
    neighbor features in regular channels) to regular channels; the update maps (own features, summed messages) to
    regular channels. Without one the layers are plain, with widths in units.

    Declared types (with a symmetry): the symmetry's ``DictAction`` in; out, every agent's features as copies of the
    regular representation, agent-major, moved between agents as the symmetry permutes them.

    :param observation_space: ``Dict`` with ``"view"`` ``(n_agents, C, H, W)`` and ``"position"`` ``(n_agents, d)``.
    :param channels: the two convolutions' output channels (regular copies when equivariant).
    :param kernel_sizes: kernel sizes.
    :param strides: strides.
    :param hidden: width of messages and agent features (regular copies when equivariant).
    :param rounds: rounds of message passing.
    :param radius: communication radius (``None``: every agent hears every other one).
    :param period: if given, relative positions are wrapped into ``[-period / 2, period / 2]`` (a torus of that side).
    :param activation_fn: pointwise activation.
    :param symmetry: the env's symmetry (a ``DictAction`` with per-agent ``view`` images and ``position`` vectors);
        ``None`` for the standard network.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"`` (equivariant network only).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        channels: Sequence[int],
        kernel_sizes: Sequence[int],
        strides: Sequence[int],
        hidden: int,
        rounds: int,
        radius: float | None,
        period: float | None,
        activation_fn: type[nn.Module],
        symmetry: Symmetry | None = None,
        basis: str = "equivariant",
    ):
        view, position = _agent_spaces(observation_space)
        if not len(channels) == len(kernel_sizes) == len(strides) or not channels:
            raise ValueError("channels, kernel_sizes and strides must be non-empty and of the same length")
        if rounds < 0 or hidden < 1:
            raise ValueError(f"rounds must be >= 0 and hidden >= 1, got rounds={rounds}, hidden={hidden}")
        if radius is not None and radius < 0:
            raise ValueError(f"radius must be >= 0 or None, got {radius}")
        self.n_agents = int(view.shape[0])
        self.radius, self.period, self.rounds = radius, period, rounds
        self.symmetry = symmetry
        self.field: Representation | None = None
        self.in_field = self.out_field = None
        if symmetry is None:
            encoder, width = self._plain_encoder(view, channels, kernel_sizes, strides, activation_fn)
            messages, updates = self._plain_rounds(position.shape[1], width, hidden, rounds)
            out_width = hidden if rounds else width
        else:
            view_action, position_rep = _symmetry_parts(symmetry)
            self.field = regular(symmetry.group)
            self.in_field = symmetry.obs_action
            encoder, width = self._equivariant_encoder(view, view_action, channels, kernel_sizes, strides, activation_fn, basis)
            messages, updates = self._equivariant_rounds(position_rep, width, hidden, rounds, basis)
            out_width = hidden if rounds else width
        self.out_channels = out_width
        self.agent_features = out_width * (1 if self.field is None else self.field.dim)
        if symmetry is not None and self.field is not None:
            agents = _agent_permutation(symmetry) or trivial(symmetry.group, self.n_agents)
            self.out_field = tensor_product(agents, copies(self.field, out_width))
        super().__init__(observation_space, features_dim=self.n_agents * self.agent_features)
        self.encoder, self.messages, self.updates = encoder, messages, updates
        self.activation = activation_fn()

    @staticmethod
    def _plain_encoder(
        view: spaces.Box, channels: Sequence[int], kernels: Sequence[int], strides: Sequence[int], activation_fn: type[nn.Module]
    ) -> tuple[nn.Sequential, int]:
        layers: list[nn.Module] = []
        in_planes = view.shape[1]
        for c, k, s in zip(channels, kernels, strides):
            layers += [nn.Conv2d(in_planes, c, k, s), activation_fn()]
            in_planes = c
        return nn.Sequential(*layers, GlobalPool2d("max")), in_planes

    @staticmethod
    def _plain_rounds(pos_dim: int, width: int, hidden: int, rounds: int) -> tuple[nn.ModuleList, nn.ModuleList]:
        messages, updates = nn.ModuleList(), nn.ModuleList()
        for _ in range(rounds):
            messages.append(nn.Linear(pos_dim + width, hidden))
            updates.append(nn.Linear(width + hidden, hidden))
            width = hidden
        return messages, updates

    @staticmethod
    def _equivariant_encoder(
        view: spaces.Box,
        action: ImageAction,
        channels: Sequence[int],
        kernels: Sequence[int],
        strides: Sequence[int],
        activation_fn: type[nn.Module],
        basis: str,
    ) -> tuple[nn.Sequential, int]:
        layers: list[nn.Module] = []
        size, rep_in, in_channels = view.shape[-1], action.channel_rep, 1
        maps: ImageAction = action  # the action on the current feature maps
        for i, (c, k, s) in enumerate(zip(channels, kernels, strides)):
            conv = EquivariantConv2d(action.spatial, in_channels, c, k, s, rep_in=rep_in, basis=basis)
            try:
                conv.check_input_shape(size, size)
            except ValueError as err:
                raise ValueError(f"conv layer {i} of the message-passing encoder on {view.shape[-2:]} views: {err}") from err
            layers += [conv, activation_fn()]
            size, rep_in, in_channels, maps = conv.output_size(size), regular(action.group), c, conv.out_field
        return nn.Sequential(*layers, GlobalPool2d("max", field=maps)), in_channels

    @staticmethod
    def _equivariant_rounds(
        position_rep: Representation, width: int, hidden: int, rounds: int, basis: str
    ) -> tuple[nn.ModuleList, nn.ModuleList]:
        reg = regular(position_rep.group)
        messages, updates = nn.ModuleList(), nn.ModuleList()
        for _ in range(rounds):
            pair = direct_sum(position_rep, copies(reg, width))  # [relative position, neighbor features]
            messages.append(EquivariantLinear(pair, reg, 1, hidden, basis=basis))
            updates.append(EquivariantLinear(reg, reg, width + hidden, hidden, basis=basis))
            width = hidden
        return messages, updates

    def relative_positions(self, position: th.Tensor) -> th.Tensor:
        """``[B, n, n, d]``: ``position_j - position_i`` at ``[:, i, j]``, wrapped on the torus if ``period`` is set."""
        relative = position[:, None, :, :] - position[:, :, None, :]
        if self.period is not None:
            # round() is odd (half to even), so the wrap commutes with signed permutations of the coordinates
            relative = relative - self.period * th.round(relative / self.period)
        return relative

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        view, position = observations[VIEW_KEY], observations[POSITION_KEY]
        batch, n = view.shape[:2]
        features = self.encoder(view.flatten(0, 1)).unflatten(0, (batch, n))  # [B, n, F]
        relative = self.relative_positions(position)
        mask = neighbor_mask(relative, self.radius).unsqueeze(-1)  # [B, n, n, 1]
        for message, update in zip(self.messages, self.updates):
            pair = th.cat([relative, features[:, None, :, :].expand(batch, n, n, -1)], dim=-1)
            received = (self.activation(message(pair)) * mask).sum(dim=2)  # [B, n, hidden]
            features = self.activation(update(th.cat([features, received], dim=-1)))
        return features.flatten(1)

    def export(self) -> MessagePassingExtractor:
        """A copy with plain layers (``nn.Conv2d`` / ``nn.Linear``): the standard network with the same outputs."""
        exported = export_children(self)
        exported.symmetry = exported.in_field = exported.out_field = None
        return exported

    def example_input(self, batch_size: int = 2) -> dict[str, th.Tensor]:
        view, position = _agent_spaces(self._observation_space)
        # Distinct random positions: ties in the neighbor radius would make the check depend on rounding.
        return {VIEW_KEY: th.rand(batch_size, *view.shape), POSITION_KEY: th.randn(batch_size, *position.shape) * 3}


def _agent_permutation(symmetry: Symmetry) -> Representation | None:
    """How the symmetry permutes the agents (``None``: agents stay put)."""
    obs = symmetry.obs_action
    view = obs.actions.get(VIEW_KEY) if isinstance(obs, DictAction) else None
    return view.agents if isinstance(view, AgentAction) else None


def _symmetry_parts(symmetry: Symmetry) -> tuple[ImageAction, Representation]:
    """The image action on one agent's view and the representation on one agent's position."""
    obs = symmetry.obs_action
    parts = obs.actions if isinstance(obs, DictAction) else {}
    view, position = parts.get(VIEW_KEY), parts.get(POSITION_KEY)
    if not (
        isinstance(view, AgentAction)
        and isinstance(view.item, ImageAction)
        and isinstance(position, AgentAction)
        and isinstance(position.item, Representation)
    ):
        raise SymmetryError(
            f"{symmetry.name}: an equivariant message-passing policy needs a DictAction symmetry with AgentAction "
            f"entries {VIEW_KEY!r} (an ImageAction per agent) and {POSITION_KEY!r} (a Representation per agent), got {obs}"
        )
    return view.item, position.item


class AgentwiseHead(EquivariantModule):
    """
    Apply ``head`` to every agent's features: ``[B, n · F] -> [B, n · out]`` (agent-major, SB3's ``MultiDiscrete``
    logits layout), or with ``pool`` the mean over agents ``[B, out]`` (values: invariant to permuting the agents).

    Declared types (when ``head`` is an equivariant layer on vectors): ``n`` copies of the head's input and output
    representations (the mean over agents: the head's output).

    :param head: the per-agent layer.
    :param n_agents: number of agents.
    :param pool: average over agents.
    """

    def __init__(self, head: nn.Module, n_agents: int, pool: bool = False):
        super().__init__()
        self.head, self.n_agents, self.pool = head, n_agents, pool
        self.in_field = self.out_field = None
        if isinstance(head, EquivariantModule):
            head_in, head_out = head.in_field, head.out_field
            if isinstance(head_in, Representation) and isinstance(head_out, Representation):
                self.in_field = copies(head_in, n_agents)
                self.out_field = head_out if pool else copies(head_out, n_agents)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        out = self.head(latent.unflatten(-1, (self.n_agents, -1)))
        return out.mean(dim=-2) if self.pool else out.flatten(-2)

    def export(self) -> AgentwiseHead:
        """The same head around the plain export of ``head``."""
        return AgentwiseHead(export_plain(self.head), self.n_agents, self.pool)

    def example_input(self, batch_size: int = 2) -> th.Tensor:
        if not isinstance(self.in_field, Representation):
            raise TypeError("AgentwiseHead around a plain head declares no input type: build it around an equivariant layer")
        return th.randn(batch_size, self.in_field.dim)


class MessagePassingPolicy(ActorCriticPolicy):
    """
    The standard message-passing actor-critic for joint multi-agent envs (``Dict`` observation with per-agent
    ``"view"`` images and ``"position"`` vectors, ``MultiDiscrete`` joint action), with plain layers. Communication
    is local: only agents within ``radius`` send messages (the authors' code computed the threshold but never applied
    it), and the value is the mean of per-agent values.

    :param observation_space: the joint observation space.
    :param action_space: ``MultiDiscrete`` with one entry per agent.
    :param lr_schedule: SB3's learning-rate schedule.
    :param channels: the encoder's convolution channels; default (16, 32), the authors' standard network.
    :param kernel_sizes: kernel sizes (7, 5).
    :param strides: strides (2, 1).
    :param hidden: message and feature width; default 64.
    :param rounds: rounds of message passing (2).
    :param radius: communication radius in position units (``None``: all agents communicate).
    :param period: side of the torus on which relative positions are wrapped (``None``: no wrapping).
    :param activation_fn: activation (ReLU).
    :param kwargs: the other ``ActorCriticPolicy`` arguments (``ortho_init``, ``optimizer_class``...).
    """

    _default_widths = ((16, 32), 64)
    basis = "equivariant"  # the kind of basis of equivariant layers (used by the equivariant subclass)

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        channels: Sequence[int] | None = None,
        kernel_sizes: Sequence[int] = (7, 5),
        strides: Sequence[int] = (2, 1),
        hidden: int | None = None,
        rounds: int = 2,
        radius: float | None = None,
        period: float | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        **kwargs: Any,
    ):
        for reserved in ("net_arch", "features_extractor_class", "features_extractor_kwargs", "use_sde"):
            if kwargs.get(reserved):
                raise ValueError(
                    f"{type(self).__name__} builds its own network: {reserved} cannot be set (got {kwargs[reserved]!r})"
                )
            kwargs.pop(reserved, None)
        _agent_spaces(observation_space)
        if not isinstance(action_space, spaces.MultiDiscrete) or np.asarray(action_space.nvec).ndim != 1:
            raise ValueError(
                f"{type(self).__name__} needs a 1-d MultiDiscrete joint action (one entry per agent), got {action_space}"
            )
        symmetry = self._symmetry(observation_space, action_space, kwargs)
        default_channels, default_hidden = self._default_widths
        self.mp_kwargs = dict(
            channels=tuple(channels) if channels is not None else self._width(default_channels, symmetry),
            kernel_sizes=tuple(kernel_sizes),
            strides=tuple(strides),
            hidden=hidden if hidden is not None else self._width((default_hidden,), symmetry)[0],
            rounds=rounds,
            radius=radius,
            period=period,
        )
        extractor_kwargs: dict[str, Any] = dict(self.mp_kwargs, activation_fn=activation_fn)
        if symmetry is not None:
            extractor_kwargs.update(symmetry=symmetry, basis=self.basis)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[],
            activation_fn=activation_fn,
            features_extractor_class=MessagePassingExtractor,
            features_extractor_kwargs=extractor_kwargs,
            **kwargs,
        )

    def _symmetry(self, observation_space: spaces.Space, action_space: spaces.Space, kwargs: dict[str, Any]) -> Symmetry | None:
        """The symmetry the network is built for (none for the standard network)."""
        return None

    @staticmethod
    def _width(widths: Sequence[int], symmetry: Symmetry | None) -> tuple[int, ...]:
        # A CNN encoder: sized like the equivariant NatureCNN, to about the standard network's parameter count.
        return tuple(widths) if symmetry is None else tuple(default_width(w, len(symmetry), DEFAULT_SIZING) for w in widths)

    def _heads(self, extractor: MessagePassingExtractor) -> tuple[nn.Module, nn.Module]:
        n_actions = int(self.action_space.nvec[0])  # type: ignore[attr-defined]
        if np.any(self.action_space.nvec != n_actions):  # type: ignore[attr-defined]
            raise ValueError(f"every agent needs the same number of actions, got {self.action_space}")
        return nn.Linear(extractor.agent_features, n_actions), nn.Linear(extractor.agent_features, 1)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        extractor: MessagePassingExtractor = self.features_extractor  # type: ignore[assignment]
        action_head, value_head = self._heads(extractor)
        self.action_net = AgentwiseHead(action_head, extractor.n_agents)  # type: ignore[assignment]
        self.value_net = AgentwiseHead(value_head, extractor.n_agents, pool=True)  # type: ignore[assignment]
        if self.ortho_init:
            for module, gain in ((self.features_extractor, np.sqrt(2)), (self.action_net, 0.01), (self.value_net, 1.0)):
                init_module(module, gain, self.init_weights)
            if not self.share_features_extractor:
                init_module(self.vf_features_extractor, np.sqrt(2), self.init_weights)
        # Modules were replaced: the optimizer must see the new parameters.
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in ("net_arch", "features_extractor_class", "features_extractor_kwargs", "use_sde"):
            data.pop(key, None)
        data.update(self.mp_kwargs)
        return data


class EquivariantMessagePassingPolicy(MessagePassingPolicy):
    """
    :class:`MessagePassingPolicy` with every layer equivariant under the env's symmetry (multi-agent MDP homomorphic
    networks): ``π(g·a | g·s) = π(a | s)`` and ``V(g·s) = V(s)`` for every group element, where ``g`` rotates every
    agent's view, position and action (and permutes agents if the symmetry says so). Widths count copies of the
    regular representation; the defaults are the standard network's divided by ``√|G|`` (about as many parameters).

    :param symmetry: the env's :class:`~sb3_equivariant.envs.symmetry.Symmetry`; default: found on the env the
        algorithm is given (``make_symmetric_vec_env("sb3_equivariant/Wildlife-v0")``, or any registered id).
    :param basis: ``"equivariant"`` (default), or the ablations ``"nullspace"`` / ``"random"``.
    :param kwargs: :class:`MessagePassingPolicy`'s arguments.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        symmetry: Symmetry | None = None,
        basis: str = "equivariant",
        **kwargs: Any,
    ):
        self.basis = basis
        super().__init__(observation_space, action_space, lr_schedule, symmetry=symmetry, **kwargs)

    def _symmetry(self, observation_space: spaces.Space, action_space: spaces.Space, kwargs: dict[str, Any]) -> Symmetry | None:
        self.symmetry = resolve_symmetry(
            kwargs.pop("symmetry", None),
            observation_space,
            action_space,
            type(self).__name__,
            algorithm=constructing_algorithm(self),
            record_in="policy_kwargs",
        )
        _symmetry_parts(self.symmetry)
        if not self.symmetry.discrete:
            raise SymmetryError(
                f"{self.symmetry.name}: the joint action must be discrete (a permutation of each agent's actions)"
            )
        return self.symmetry

    def _heads(self, extractor: MessagePassingExtractor) -> tuple[nn.Module, nn.Module]:
        reg = regular(self.symmetry.group)
        channels = extractor.out_channels
        action_head = EquivariantLinear(reg, self.symmetry.action_rep, channels, 1, basis=self.basis)
        value_head = EquivariantLinear(reg, trivial(self.symmetry.group), channels, 1, basis=self.basis)
        return action_head, value_head

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(symmetry=self.symmetry, basis=self.basis)
        return data


__all__ = [
    "AgentwiseHead",
    "EquivariantMessagePassingPolicy",
    "MessagePassingExtractor",
    "MessagePassingPolicy",
    "neighbor_mask",
    "neighbour_mask",
]
