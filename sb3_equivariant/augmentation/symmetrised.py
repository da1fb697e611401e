"""
Deprecated module name of :mod:`sb3_equivariant.augmentation.symmetrized`, kept (with its British class names) so
that old imports and models saved with the old class paths still load.
"""

from sb3_equivariant.augmentation import _SINCE_THE_RENAME, symmetrized
from sb3_equivariant.augmentation.common import deprecated_aliases

__getattr__ = deprecated_aliases(
    __name__,
    {
        name.replace("Symmetrized", "Symmetrised"): getattr(symmetrized, name)
        for name in dir(symmetrized)
        if name.startswith("Symmetrized") and name not in _SINCE_THE_RENAME
    },
)
