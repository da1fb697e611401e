"""Equivariant layers (torch): built from the Symmetrizer's bases, exportable to plain torch."""

from sb3_equivariant.nn.base import BasisLayer, act, check_equivariance
from sb3_equivariant.nn.conv import EquivariantConv2d
from sb3_equivariant.nn.linear import EquivariantLinear
from sb3_equivariant.nn.pooling import GlobalPool2d, GroupPool

__all__ = ["BasisLayer", "EquivariantConv2d", "EquivariantLinear", "GlobalPool2d", "GroupPool", "act", "check_equivariance"]
