"""The networks of PRAE (van der Pol et al., AAMAS 2020): encoders, the latent action model, the reward model, decoders.

Sizes follow the authors' code: image encoder two 3x3 convolutions with 16 channels then fully connected 64-32-latent;
vector encoder 64-32-latent; action model ``z' = z + MLP([z, one_hot(a)])`` with 100 hidden units; reward model
``R(z')`` with 64 hidden units. The decoders (for the reconstruction baseline) mirror the encoders.
"""

from __future__ import annotations

import itertools

import torch as th
from torch import nn
from torch.nn import functional as F

_KERNEL = 3
_CHANNELS = 16


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MlpEncoder(nn.Module):
    """
    Observation vector -> latent state.

    :param n_inputs: flattened observation size.
    :param latent_dim: latent size.
    :param hidden: hidden layer sizes.
    """

    def __init__(self, n_inputs: int, latent_dim: int, hidden: tuple[int, ...] = (64, 32)):
        super().__init__()
        self.net = _mlp([n_inputs, *hidden, latent_dim])

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.net(obs.flatten(1))


class CnnEncoder(nn.Module):
    """
    Channel-first image -> latent state: two unpadded 3x3 convolutions (16 channels) then an MLP.

    :param shape: ``(channels, height, width)``.
    :param latent_dim: latent size.
    :param hidden: hidden sizes of the fully connected part.
    """

    def __init__(self, shape: tuple[int, int, int], latent_dim: int, hidden: tuple[int, ...] = (64, 32)):
        super().__init__()
        channels, height, width = shape
        self.conv = nn.Sequential(
            nn.Conv2d(channels, _CHANNELS, _KERNEL), nn.ReLU(), nn.Conv2d(_CHANNELS, _CHANNELS, _KERNEL), nn.ReLU()
        )
        n_flat = _CHANNELS * (height - 2 * (_KERNEL - 1)) * (width - 2 * (_KERNEL - 1))
        self.fc = _mlp([n_flat, *hidden, latent_dim])

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.fc(self.conv(obs).flatten(1))


class MlpDecoder(nn.Module):
    """
    Latent state -> observation vector (the reconstruction baseline).

    :param latent_dim: latent size.
    :param n_outputs: flattened observation size.
    :param hidden: hidden sizes (the encoder's, reversed).
    """

    def __init__(self, latent_dim: int, n_outputs: int, hidden: tuple[int, ...] = (32, 64)):
        super().__init__()
        self.net = _mlp([latent_dim, *hidden, n_outputs])

    def forward(self, z: th.Tensor) -> th.Tensor:
        return self.net(z)


class CnnDecoder(nn.Module):
    """
    Latent state -> channel-first image, mirroring :class:`CnnEncoder` with transposed convolutions.

    :param latent_dim: latent size.
    :param shape: ``(channels, height, width)`` of the image.
    :param hidden: hidden sizes of the fully connected part (the encoder's, reversed).
    """

    def __init__(self, latent_dim: int, shape: tuple[int, int, int], hidden: tuple[int, ...] = (32, 64)):
        super().__init__()
        channels, height, width = shape
        self.inner = (_CHANNELS, height - 2 * (_KERNEL - 1), width - 2 * (_KERNEL - 1))
        self.fc = _mlp([latent_dim, *hidden, _CHANNELS * self.inner[1] * self.inner[2]])
        self.deconv = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(_CHANNELS, _CHANNELS, _KERNEL),
            nn.ReLU(),
            nn.ConvTranspose2d(_CHANNELS, channels, _KERNEL),
        )

    def forward(self, z: th.Tensor) -> th.Tensor:
        return self.deconv(self.fc(z).view(-1, *self.inner))


class ActionModel(nn.Module):
    """
    Latent transition ``z' = z + MLP([z, one_hot(a)])``.

    :param latent_dim: latent size.
    :param n_actions: number of discrete actions.
    :param hidden: hidden units of the MLP.
    """

    def __init__(self, latent_dim: int, n_actions: int, hidden: int = 100):
        super().__init__()
        self.n_actions = n_actions
        self.net = _mlp([latent_dim + n_actions, hidden, latent_dim])

    def forward(self, z: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """
        :param z: ``(batch, latent_dim)``.
        :param actions: ``(batch,)`` integer actions.
        :return: the predicted next latent states ``(batch, latent_dim)``.
        """
        one_hot = F.one_hot(actions.long(), self.n_actions).to(z.dtype)
        return z + self.net(th.cat([z, one_hot], dim=1))


class RewardModel(nn.Module):
    """
    Reward of arriving in a latent state, ``R(z')``.

    :param latent_dim: latent size.
    :param hidden: hidden units.
    """

    def __init__(self, latent_dim: int, hidden: int = 64):
        super().__init__()
        self.net = _mlp([latent_dim, hidden, 1])

    def forward(self, z: th.Tensor) -> th.Tensor:
        return self.net(z).squeeze(-1)
