"""Symmetries shared by the augmentation tests: the registry's verified maps, and synthetic image maps."""

import numpy as np
from gymnasium import spaces

from sb3_equivariant.envs import Symmetry, symmetry_for
from sb3_equivariant.envs.gridworld import ROTATE_ACTION
from sb3_equivariant.group import cyclic_group, flip_group
from sb3_equivariant.representation import ImageAction, flip_action, permutation, rotation_action


def cartpole_symmetry() -> Symmetry:
    return symmetry_for("CartPole-v1")


def acrobot_symmetry() -> Symmetry:
    return symmetry_for("Acrobot-v1")


def pendulum_symmetry() -> Symmetry:
    return symmetry_for("Pendulum-v1")


def gridworld_symmetry() -> Symmetry:
    # C4 on a small (1, 7, 7) image with GridWorld's action rotation ("stay" fixed, the moves rotate).
    return Symmetry(ImageAction(rotation_action(), channels=1), permutation(cyclic_group(4), {1: ROTATE_ACTION}))


def pong_symmetry() -> Symmetry:
    # Vertical flip of 4 stacked frames; Pong's RIGHT/LEFT (paddle up/down) and their FIRE variants swap.
    return Symmetry(ImageAction(flip_action("vertical"), channels=4), permutation(flip_group(), {1: [0, 1, 3, 2, 5, 4]}))


CASES = {
    "cartpole": (cartpole_symmetry, spaces.Box(-5, 5, (4,), np.float32), spaces.Discrete(2)),
    "acrobot": (acrobot_symmetry, spaces.Box(-5, 5, (6,), np.float32), spaces.Discrete(3)),
    "gridworld": (gridworld_symmetry, spaces.Box(0, 255, (1, 7, 7), np.uint8), spaces.Discrete(5)),
    "pong": (pong_symmetry, spaces.Box(0, 255, (4, 84, 84), np.uint8), spaces.Discrete(6)),
    "pendulum": (pendulum_symmetry, spaces.Box(-5, 5, (3,), np.float32), spaces.Box(-2, 2, (1,), np.float32)),
}
