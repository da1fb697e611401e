"""
Deprecated module name of :mod:`sb3_equivariant.augmentation.symmetrized`, kept (with its British class names) so
that old imports and models saved with the old class paths still load.
"""

from sb3_equivariant.augmentation import _BRITISH_NAMES, symmetrized
from sb3_equivariant.augmentation.common import deprecated_aliases

__getattr__ = deprecated_aliases(
    __name__,
    {name: getattr(symmetrized, name.replace("Symmetrised", "Symmetrized")) for name in _BRITISH_NAMES},
)
