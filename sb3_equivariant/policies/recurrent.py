"""
Equivariant recurrent policies for sb3-contrib's RecurrentPPO: an LSTM whose hidden and cell states are copies of the
regular representation, so that a transformed observation sequence gives the transformed action sequence.
"""

from __future__ import annotations

from typing import Any, cast

import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_equivariant.nn import EquivariantLinear
from sb3_equivariant.nn.base import EquivariantModule
from sb3_equivariant.policies.actor_critic import _EquivariantActorCriticMixin
from sb3_equivariant.policies.common import (
    DEFAULT_SIZING,
    EquivariantMlpExtractor,
    ObsPreprocessor,
    default_width,
    export_module,
    features_field,
)
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor
from sb3_equivariant.representation import Representation, copies, regular


class EquivariantLSTM(EquivariantModule):
    """
    A multi-layer LSTM with ``nn.LSTM``'s interface (inputs ``(L, N, input_size)``, states ``(num_layers, N,
    hidden_size)``) whose gates are equivariant linear maps of the input and the hidden state into copies of the
    regular representation. The hidden and cell states are ``hidden_channels`` regular copies; the gate
    nonlinearities and the products ``f * c + i * g`` act per unit, and permutations of units commute with them, so
    the whole recurrence is equivariant: transformed inputs and states give transformed outputs and states (zero
    initial states are invariant).

    Declared types: ``in_channels`` copies of ``rep_in`` in; out, ``(outputs, (h, c))``, each ``hidden_channels``
    regular copies (the module's default zero initial state).

    :param rep_in: representation of one input channel.
    :param in_channels: number of input channels.
    :param hidden_channels: regular copies in the hidden (and cell) state: ``hidden_size = hidden_channels · |G|``.
    :param num_layers: stacked LSTM layers.
    :param basis: ``"equivariant"``, ``"nullspace"`` or ``"random"``.
    """

    def __init__(
        self, rep_in: Representation, in_channels: int, hidden_channels: int, num_layers: int = 1, basis: str = "equivariant"
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        hidden = regular(rep_in.group)
        self.input_size = in_channels * rep_in.dim
        self.hidden_size = hidden_channels * hidden.dim
        self.num_layers = num_layers
        self.input_maps = nn.ModuleList()
        self.hidden_maps = nn.ModuleList()
        rep, channels = rep_in, in_channels
        for _ in range(num_layers):
            # Gates i, f, g, o (nn.LSTM's order), each hidden_channels regular copies, stacked channel-major.
            self.input_maps.append(EquivariantLinear(rep, hidden, channels, 4 * hidden_channels, basis=basis))
            self.hidden_maps.append(
                EquivariantLinear(hidden, hidden, hidden_channels, 4 * hidden_channels, bias=False, basis=basis)
            )
            rep, channels = hidden, hidden_channels
        for layer in [*self.input_maps, *self.hidden_maps]:
            layer.reset_parameters(1.0)
        self.in_field = copies(rep_in, in_channels)
        state = copies(hidden, hidden_channels)
        self.out_field = (state, (state, state))  # type: ignore[assignment]

    def forward(
        self, inputs: th.Tensor, state: tuple[th.Tensor, th.Tensor] | None = None
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """
        :param inputs: ``(L, N, input_size)``.
        :param state: ``(h, c)``, each ``(num_layers, N, hidden_size)``; zeros if not given.
        :return: the last layer's outputs ``(L, N, hidden_size)`` and the final ``(h, c)``.
        """
        if state is None:
            zeros = inputs.new_zeros(self.num_layers, inputs.shape[1], self.hidden_size)
            state = (zeros, zeros)
        h_final, c_final = [], []
        sequence = inputs
        for layer in range(self.num_layers):
            h, c = state[0][layer], state[1][layer]
            from_input = self.input_maps[layer](sequence)  # the whole sequence at once
            # The recurrent weight is built from its coefficients once per call, not once per step.
            recurrent_weight, _ = cast(EquivariantLinear, self.hidden_maps[layer]).weight_and_bias()
            outputs = []
            for step in from_input:
                i, f, g, o = (step + F.linear(h, recurrent_weight)).chunk(4, dim=-1)
                c = th.sigmoid(f) * c + th.sigmoid(i) * th.tanh(g)
                h = th.sigmoid(o) * th.tanh(c)
                outputs.append(h)
            sequence = th.stack(outputs)
            h_final.append(h)
            c_final.append(c)
        return sequence, (th.stack(h_final), th.stack(c_final))

    def export(self) -> nn.LSTM:
        """A plain ``nn.LSTM`` with the same dense weights (same gate order and state layout)."""
        lstm = nn.LSTM(self.input_size, self.hidden_size, num_layers=self.num_layers)
        with th.no_grad():
            for layer in range(self.num_layers):
                x_map, h_map = cast(EquivariantLinear, self.input_maps[layer]), cast(EquivariantLinear, self.hidden_maps[layer])
                x_dense, h_dense = x_map.export(), h_map.export()
                getattr(lstm, f"weight_ih_l{layer}").copy_(x_dense.weight)
                getattr(lstm, f"bias_ih_l{layer}").copy_(x_dense.bias)
                getattr(lstm, f"weight_hh_l{layer}").copy_(h_dense.weight)
                getattr(lstm, f"bias_hh_l{layer}").zero_()
        return lstm.to(next(self.parameters()).device)

    def example_input(self, batch_size: int = 2) -> th.Tensor:
        return th.randn(3, batch_size, self.input_size)  # a sequence of 3 steps


class EquivariantRecurrentActorCriticPolicy(_EquivariantActorCriticMixin, RecurrentActorCriticPolicy):  # type: ignore[misc]
    """
    sb3-contrib's ``RecurrentActorCriticPolicy`` (RecurrentPPO) made equivariant: equivariant features, an
    :class:`EquivariantLSTM` for the actor (and the critic), then the equivariant policy and value heads of
    :class:`~sb3_equivariant.policies.EquivariantActorCriticPolicy`. A sequence of transformed observations gives the
    transformed action distributions at every step and the same values.

    Extra keyword arguments ``symmetry``, ``basis`` and ``sizing``: see
    :class:`~sb3_equivariant.policies.base.EquivariantPolicyMixin`; the others are ``RecurrentActorCriticPolicy``'s,
    with ``lstm_hidden_size`` (the LSTM state) in channels of the regular representation (``|G|`` units each; default:
    sb3-contrib's 256 read by ``sizing``) and ``net_arch`` (after the LSTM) too (default: SB3's ``[64, 64]``).
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule, **kwargs: Any):
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        # sb3-contrib built plain nn.LSTMs (and a linear critic without an LSTM); replace them, then the optimizer.
        rep, channels = features_field(self.features_extractor, self.symmetry, self.observation_space)
        layers, group = self.lstm_actor.num_layers, self.symmetry.group
        self.lstm_actor = EquivariantLSTM(rep, channels, self.lstm_channels, layers, self.basis)  # type: ignore[assignment]
        if self.lstm_critic is not None:
            self.lstm_critic = EquivariantLSTM(rep, channels, self.lstm_channels, layers, self.basis)  # type: ignore[assignment]
        if self.critic is not None:
            self.critic = EquivariantLinear(rep, regular(group), channels, self.lstm_channels, basis=self.basis)  # type: ignore[assignment]
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def _finish_kwargs(self, action_space: spaces.Space, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = super()._finish_kwargs(action_space, kwargs)
        lstm_kwargs = kwargs.pop("lstm_kwargs", None)
        if lstm_kwargs:
            raise ValueError(f"lstm_kwargs {sorted(lstm_kwargs)} are nn.LSTM options; EquivariantLSTM takes none")
        order = len(self.symmetry)
        hidden = kwargs.get("lstm_hidden_size")
        self.lstm_channels = hidden if hidden is not None else default_width(256, order, self.sizing or DEFAULT_SIZING)
        return {**kwargs, "lstm_hidden_size": self.lstm_channels * order}

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = EquivariantMlpExtractor(
            regular(self.symmetry.group), self.lstm_channels, self._equivariant_net_arch, self.activation_fn, self.basis
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            lstm_hidden_size=self.lstm_channels,
            n_lstm_layers=self.lstm_actor.num_layers,
            shared_lstm=self.shared_lstm,
            enable_critic_lstm=self.enable_critic_lstm,
        )
        return data

    def export(self) -> nn.Module:
        """A plain torch module: ``forward(obs, (h, c))`` -> ``(logits or Gaussian mean, (h, c))`` for the actor."""
        return ExportedRecurrentActor(self)


EquivariantMlpLstmPolicy = EquivariantRecurrentActorCriticPolicy


class EquivariantCnnLstmPolicy(EquivariantRecurrentActorCriticPolicy):
    """
    :class:`EquivariantRecurrentActorCriticPolicy` with :class:`EquivariantCnnExtractor` (an equivariant NatureCNN) for
    image observations; ``net_arch`` defaults to ``[]`` as sb3-contrib's CnnLstmPolicy.
    """

    default_features_extractor_class = EquivariantCnnExtractor


class ExportedRecurrentActor(nn.Module):
    """
    Plain-torch copy of an equivariant recurrent policy's actor: ``forward(obs, (h, c))`` with obs ``(N, ...)`` and
    states ``(num_layers, N, hidden_size)`` returns one step's action logits (or Gaussian mean) and the new states.
    Reset the states to zeros at episode starts.
    """

    def __init__(self, policy: EquivariantRecurrentActorCriticPolicy):
        super().__init__()
        self.preprocess = ObsPreprocessor(policy.observation_space, policy.normalize_images)
        self.features = export_module(policy.pi_features_extractor)
        lstm = policy.lstm_actor
        assert isinstance(lstm, EquivariantLSTM)
        self.lstm = lstm.export().eval()
        self.policy_net = export_module(policy.mlp_extractor.policy_net)
        self.action_net = export_module(policy.action_net)
        self.eval()

    def forward(self, obs: th.Tensor, state: tuple[th.Tensor, th.Tensor]) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        latent, state = self.lstm(self.features(self.preprocess(obs)).unsqueeze(0), state)
        return self.action_net(self.policy_net(latent[0])), state


__all__ = [
    "EquivariantCnnLstmPolicy",
    "EquivariantLSTM",
    "EquivariantMlpLstmPolicy",
    "EquivariantRecurrentActorCriticPolicy",
    "ExportedRecurrentActor",
]
