"""Equivariant layers (torch): built from the Symmetrizer's bases, exportable to plain torch, one contract for all."""

from sb3_equivariant.nn.base import BasisLayer, EquivariantModule, FieldType, act, check_equivariance, export_plain
from sb3_equivariant.nn.conv import EquivariantConv2d
from sb3_equivariant.nn.linear import EquivariantLinear
from sb3_equivariant.nn.pooling import GlobalPool2d, GroupPool

__all__ = [
    "BasisLayer",
    "EquivariantConv2d",
    "EquivariantLinear",
    "EquivariantModule",
    "FieldType",
    "GlobalPool2d",
    "GroupPool",
    "act",
    "check_equivariance",
    "export_plain",
]
