"""Pieces shared by every equivariant policy: the equivariant MLP, heads, init, export, sizes."""

from __future__ import annotations

import math
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from torch import nn

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.nn import BasisLayer, EquivariantLinear
from sb3_equivariant.nn.base import EquivariantModule, export_children, export_plain
from sb3_equivariant.representation import ImageAction, Representation, copies, regular, tensor_product, trivial

#: How default widths are read when ``net_arch`` / ``channels`` are not given (see :func:`default_width`).
SIZINGS = ("channels", "parameters", "units")
#: Default sizing of every equivariant network, chosen by measurement (docs/results.md, "Default widths"): about
#: SB3's parameter count. On CartPole, SB3's widths counted in channels learned no faster (median steps to 475:
#: 15.4k vs 11.3k, 9 seeds), and on Pong frames channel-matched convolutions cost 2.4x NatureCNN's time per step.
DEFAULT_SIZING = "parameters"


def extractor_kwargs(
    features_extractor_class: type[BaseFeaturesExtractor],
    features_extractor_kwargs: dict[str, Any] | None,
    symmetry: Symmetry,
    basis: str,
    sizing: str | None = None,
) -> dict[str, Any]:
    """
    Hand the symmetry, basis kind and sizing to an equivariant features extractor (SB3's FlattenExtractor takes none).
    The CNN's sizing is written out (default :data:`DEFAULT_SIZING`) so that a saved model rebuilds the same widths even if
    the default changes.
    """
    from sb3_equivariant.policies.extractors import EquivariantCnnExtractor, EquivariantFeaturesExtractor

    kwargs = dict(features_extractor_kwargs or {})
    if not isinstance(features_extractor_class, type) or not issubclass(features_extractor_class, BaseFeaturesExtractor):
        raise TypeError(f"features_extractor_class must be a features extractor class, got {features_extractor_class!r}")
    if issubclass(features_extractor_class, EquivariantFeaturesExtractor):
        kwargs.setdefault("symmetry", symmetry)
        kwargs.setdefault("basis", basis)
    elif features_extractor_class is not FlattenExtractor:
        raise SymmetryError(_not_equivariant(features_extractor_class.__name__))
    if issubclass(features_extractor_class, EquivariantCnnExtractor):
        kwargs.setdefault("sizing", sizing or DEFAULT_SIZING)
    return kwargs


def _not_equivariant(name: str) -> str:
    return (
        f"{name} is not an equivariant features extractor: use SB3's FlattenExtractor (vector or image observations "
        "flattened), EquivariantCnnExtractor, or a subclass of sb3_equivariant.policies.extractors."
        "EquivariantFeaturesExtractor (it declares in_field, out_rep and out_channels)"
    )


def features_field(
    features_extractor: BaseFeaturesExtractor, symmetry: Symmetry, observation_space: spaces.Space
) -> tuple[Representation, int]:
    """
    The representation (per channel) and channel count of the extractor's output features: declared by an
    :class:`~sb3_equivariant.policies.extractors.EquivariantFeaturesExtractor`; SB3's ``FlattenExtractor`` passes the
    observation through flattened. Any other extractor is refused.
    """
    from sb3_equivariant.policies.extractors import EquivariantFeaturesExtractor

    if isinstance(features_extractor, EquivariantFeaturesExtractor):
        return features_extractor.out_rep, features_extractor.out_channels
    if type(features_extractor) is not FlattenExtractor:  # a subclass may change what the features are
        raise SymmetryError(_not_equivariant(type(features_extractor).__name__))
    action = symmetry.obs_action
    if isinstance(action, ImageAction):
        c_first = action.layout == "CHW"
        shape = observation_space.shape
        assert shape is not None
        height, width = (shape[1], shape[2]) if c_first else (shape[0], shape[1])
        return action.as_representation(height, width) if c_first else _hwc_flat(action, height, width), 1
    if not isinstance(action, Representation):
        raise SymmetryError(
            f"{symmetry.name} acts on structured observations ({action}); these policies take vector or image "
            "observations: for the multi-agent envs use sb3_equivariant.multiagent.EquivariantMessagePassingPolicy"
        )
    return action, 1


def _hwc_flat(action: ImageAction, height: int, width: int) -> Representation:
    # Flattening an HWC image is flattening its CHW transpose with another index order: permute the CHW rep.
    rep = action.with_layout("CHW").as_representation(height, width)
    order = th.arange(rep.dim).reshape(action.channels, height, width).permute(1, 2, 0).reshape(-1).numpy()
    inverse = order.argsort()
    return Representation.from_monomial(rep.group, inverse[rep.permutations[:, order]], rep.signs[:, order], name=rep.name)


def check_sizing(sizing: str) -> str:
    if sizing not in SIZINGS:
        raise ValueError(f"unknown sizing {sizing!r}; choose one of {SIZINGS}")
    return sizing


def default_width(width: int, group_order: int, sizing: str = DEFAULT_SIZING) -> int:
    """
    Channels of the regular representation (``|G|`` units each) that stand in for a plain layer of ``width`` units.

    :param width: the plain layer's width in SB3's default network (64 for MLPs, NatureCNN's 32/64/64/512).
    :param group_order: ``|G|``.
    :param sizing: ``"channels"``: ``width`` channels (SB3's width counted in channels: ``|G|``× the units, about
        ``|G|``× the parameters); ``"parameters"``: ``width / √|G|`` (about SB3's parameter count, the paper's sizing
        for fair comparisons); ``"units"``: ``width / |G|`` (SB3's number of units, about ``1/|G|`` of its parameters).
    """
    divisor = {"channels": 1.0, "parameters": math.sqrt(group_order), "units": float(group_order)}[check_sizing(sizing)]
    return max(1, round(width / divisor))


def parse_net_arch(
    net_arch: list[int] | dict[str, list[int]] | None, group_order: int, sizing: str = DEFAULT_SIZING
) -> dict[str, list[int]]:
    """SB3's ``net_arch`` in channels of the regular representation; ``None``: SB3's default [64, 64] by ``sizing``."""
    if net_arch is None:
        hidden = [default_width(64, group_order, sizing)] * 2
        return {"pi": hidden, "vf": list(hidden)}
    if isinstance(net_arch, dict):
        return {"pi": list(net_arch.get("pi", [])), "vf": list(net_arch.get("vf", []))}
    return {"pi": list(net_arch), "vf": list(net_arch)}


#: ``init=`` of the off-policy families (DQN, QR-DQN, SAC, TD3), whose SB3 networks keep torch's default init; default
#: first: ``"torch"`` learned faster than ``"he"`` on DQN CartPole (docs/results.md, "Q-learning").
OFF_POLICY_INITS = ("torch", "he")


def apply_init(module: nn.Module, init: str) -> None:
    """
    Init of an off-policy family's network, in place. ``"torch"`` (the default): every equivariant layer re-drawn with
    the variance of torch's default ``nn.Linear`` / ``nn.Conv2d`` init, ``1 / (3 fan_in)``, which SB3's own
    Q-networks, actors and critics start with (biases stay zero: an invariant bias is tied over each orbit). ``"he"``:
    as built (hidden layers variance ``2 / fan_in``, heads ``1 / fan_in``).
    """
    if init not in OFF_POLICY_INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {OFF_POLICY_INITS}")
    if init == "torch":
        for sub in module.modules():
            if isinstance(sub, BasisLayer):
                sub.reset_parameters(1 / math.sqrt(3), fan="in")


def equivariant_mlp(
    rep_in: Representation, in_channels: int, widths: list[int], activation_fn: type[nn.Module], basis: str
) -> tuple[nn.Sequential, Representation, int]:
    """Hidden layers of regular channels; returns the net and the representation / channel count of its output."""
    layers: list[nn.Module] = []
    rep, channels = rep_in, in_channels
    for width in widths:
        layers += [EquivariantLinear(rep, regular(rep.group), channels, width, basis=basis), activation_fn()]
        rep, channels = regular(rep.group), width
    return nn.Sequential(*layers), rep, channels


class EquivariantMlpExtractor(EquivariantModule):
    """
    SB3's ``MlpExtractor`` with equivariant layers: separate policy and value networks of regular channels
    (pointwise activations commute with permutations, so any activation keeps them equivariant).

    Declared types: ``in_channels`` copies of ``rep_in`` in; out, the pair (policy latent, value latent), each copies
    of its last layer's representation.

    :param rep_in: representation of one input feature channel.
    :param in_channels: number of input channels.
    :param net_arch: ``dict(pi=[...], vf=[...])`` in channels of the regular representation.
    :param activation_fn: activation between layers.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"``.
    """

    def __init__(
        self,
        rep_in: Representation,
        in_channels: int,
        net_arch: dict[str, list[int]],
        activation_fn: type[nn.Module],
        basis: str = "equivariant",
    ):
        super().__init__()
        self.policy_net, self.rep_pi, self.channels_pi = equivariant_mlp(
            rep_in, in_channels, net_arch["pi"], activation_fn, basis
        )
        self.value_net, self.rep_vf, self.channels_vf = equivariant_mlp(rep_in, in_channels, net_arch["vf"], activation_fn, basis)
        self.latent_dim_pi = self.rep_pi.dim * self.channels_pi
        self.latent_dim_vf = self.rep_vf.dim * self.channels_vf
        self.in_field: Representation | None = copies(rep_in, in_channels)
        self.out_field: tuple[Representation, Representation] | None = (  # type: ignore[assignment]
            copies(self.rep_pi, self.channels_pi),
            copies(self.rep_vf, self.channels_vf),
        )

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return self.policy_net(features)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.value_net(features)

    def export(self) -> EquivariantMlpExtractor:
        """A copy with plain ``nn.Linear`` layers."""
        exported = export_children(self)
        exported.in_field = exported.out_field = None
        return exported

    def example_input(self, batch_size: int = 2) -> th.Tensor:
        assert self.in_field is not None
        return th.randn(batch_size, self.in_field.dim)


def action_output_rep(symmetry: Symmetry, action_space: spaces.Space) -> Representation:
    """
    The representation on the action network's output: the action representation, or for a ``MultiDiscrete`` joint
    action the agents' logits side by side (agent-major, SB3's layout), agent ``i``'s block moved to slot
    ``agents.permutations[g][i]`` and permuted within by the action representation.
    """
    if isinstance(action_space, spaces.MultiDiscrete):
        agents = symmetry.agents if symmetry.agents is not None else trivial(symmetry.group, len(action_space.nvec))
        return tensor_product(agents, symmetry.action_rep)
    return symmetry.action_rep


def value_head(rep: Representation, channels: int, basis: str) -> EquivariantLinear:
    """An invariant scalar head (values)."""
    return EquivariantLinear(rep, trivial(rep.group), channels, 1, basis=basis)


#: ``init=`` of the actor-critic families (PPO, A2C, TRPO, MaskablePPO, RecurrentPPO), applied under SB3's
#: ``ortho_init``; default first (see :func:`init_module`).
ON_POLICY_INITS = ("orthogonal", "he")


def init_module(module: nn.Module, gain: float, init_plain: Any, init: str = "orthogonal") -> None:
    """
    SB3's orthogonal init (``ortho_init``) for plain layers; for equivariant ones, the basis-aware init with SB3's
    gain. ``"orthogonal"`` (the default): the variance of an orthogonal matrix, ``gain² / max(fan_in, fan_out)``.
    ``"he"`` (the default before 7eb791a): ``gain² / fan_in``, which starts a small observation's input layer (CartPole:
    4 inputs, 90 units) with 16× SB3's variance, saturating tanh (docs/results.md §6f: neutral for the default CartPole
    network, 2× slower in the symmetrized MLP's function class; §3: not separated on Acrobot).
    """
    if init not in ON_POLICY_INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {ON_POLICY_INITS}")
    fan = "max" if init == "orthogonal" else "in"
    for sub in module.modules():
        if isinstance(sub, BasisLayer):
            sub.reset_parameters(gain, fan=fan)
        elif isinstance(sub, (nn.Linear, nn.Conv2d)):
            init_plain(sub, gain=gain)


def action_std_orbits(action_rep: Representation) -> th.Tensor:
    """
    For each action dimension, the index of its orbit under the action permutation: a diagonal Gaussian is
    equivariant under a signed permutation iff its std is constant on these orbits. Non-monomial (rotation-like)
    representations need an isotropic std: one orbit.
    """
    if not action_rep.is_monomial:
        return th.zeros(action_rep.dim, dtype=th.long)
    # The orbit of i is {perm[g][i] : g}; its smallest member names it, the same for every member.
    orbit_min = th.tensor(action_rep.permutations).min(dim=0).values
    return th.unique(orbit_min, return_inverse=True)[1]


def export_module(module: nn.Module) -> nn.Module:
    """A copy of ``module`` in which every equivariant module is replaced by its plain torch export, in eval mode."""
    return export_plain(module).eval()


class ObsPreprocessor(nn.Module):
    """SB3's observation preprocessing (float cast, image scaling) as a module, for exported networks."""

    def __init__(self, observation_space: spaces.Space, normalize_images: bool):
        super().__init__()
        self.observation_space = observation_space
        self.normalize_images = normalize_images and is_image_space(observation_space)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        obs = obs.float()
        return obs / 255.0 if self.normalize_images else obs


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (free coefficients for equivariant layers)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
