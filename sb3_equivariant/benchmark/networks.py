"""Plain (non-equivariant) networks that the baselines of the benchmark need and SB3 does not ship."""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class SmallCnn(BaseFeaturesExtractor):
    """
    A small CNN for small images (SB3's NatureCNN needs at least 36x36): convolutions, then global pooling (or
    flatten) and a linear layer. The paper's GridWorld CNN is ``channels=(16, 32), kernel_sizes=(7, 5),
    strides=(2, 1), pooling="mean", features_dim=512``.

    :param observation_space: a channel-first image space.
    :param channels: output channels of each convolution.
    :param kernel_sizes: kernel size of each convolution.
    :param strides: stride of each convolution.
    :param pooling: ``"mean"`` / ``"max"`` (global spatial pooling) or ``"flatten"``.
    :param features_dim: output features.
    :param activation_fn: activation after every layer.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        channels: Sequence[int] = (16, 32),
        kernel_sizes: Sequence[int] = (7, 5),
        strides: Sequence[int] = (2, 1),
        pooling: str = "mean",
        features_dim: int = 512,
        activation_fn: type[nn.Module] = nn.ReLU,
    ):
        super().__init__(observation_space, features_dim)
        if not len(channels) == len(kernel_sizes) == len(strides):
            raise ValueError("channels, kernel_sizes and strides must have the same length")
        if pooling not in ("mean", "max", "flatten"):
            raise ValueError(f"pooling must be 'mean', 'max' or 'flatten', got {pooling!r}")
        shape = observation_space.shape
        if len(shape) != 3:
            raise ValueError(f"SmallCnn expects channel-first images (C, H, W), got shape {shape}")
        layers: list[nn.Module] = []
        in_channels = shape[0]
        for c, k, s in zip(channels, kernel_sizes, strides):
            layers += [nn.Conv2d(in_channels, c, k, s), activation_fn()]
            in_channels = c
        layers.append(
            nn.AdaptiveMaxPool2d(1) if pooling == "max" else nn.AdaptiveAvgPool2d(1) if pooling == "mean" else nn.Identity()
        )
        layers.append(nn.Flatten())
        self.cnn = nn.Sequential(*layers)
        with th.no_grad():
            n_flat = self.cnn(th.zeros(1, *shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), activation_fn())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(self.cnn(observations))
