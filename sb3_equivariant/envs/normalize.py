"""``VecNormalize`` whose observation statistics respect the symmetry."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_equivariant.envs.propagation import get_symmetry
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.representation import Representation


class SymmetricVecNormalize(VecNormalize):
    """
    SB3's ``VecNormalize`` with symmetrized observation statistics, so that normalization commutes with the symmetry.

    Plain per-dimension statistics break sign flips and permutations (CartPole's mean cart position is not 0 after a
    finite run, so ``normalize(-s) != -normalize(s)``). Here the mean used is the group average ``1/|G| Σ_g ρ(g) μ``
    (invariant) and the variance the average of ``|ρ(g)| σ²`` (equal across dimensions that the group swaps); the running
    statistics themselves are SB3's. Needs vector observations with a (signed) permutation representation.

    :param venv: the vectorized env.
    :param symmetry: its symmetry; default ``get_symmetry(venv)``.
    :param kwargs: ``VecNormalize``'s keyword arguments.
    """

    def __init__(self, venv: VecEnv, symmetry: Symmetry | None = None, **kwargs: Any):
        super().__init__(venv, **kwargs)
        if symmetry is None:
            symmetry = get_symmetry(venv, required=True)
        if not isinstance(symmetry.obs_action, Representation) or not symmetry.obs_action.is_monomial:
            raise SymmetryError(
                f"SymmetricVecNormalize needs vector observations with a (signed) permutation symmetry, {symmetry.name} "
                "is not one (image observations are normalized by SB3's policies instead)"
            )
        self.symmetry = symmetry

    def symmetrized_statistics(self, obs_rms: RunningMeanStd) -> tuple[np.ndarray, np.ndarray]:
        """The group-averaged mean and variance used for normalization."""
        rep = self.symmetry.obs_action
        assert isinstance(rep, Representation)
        elements = range(len(self.symmetry))
        mean = np.mean([rep.apply(obs_rms.mean, g) for g in elements], axis=0)
        var = np.mean([np.abs(rep.apply(obs_rms.var, g)) for g in elements], axis=0)
        return mean, var

    def _normalize_obs(self, obs: np.ndarray, obs_rms: RunningMeanStd) -> np.ndarray:
        mean, var = self.symmetrized_statistics(obs_rms)
        return np.clip((obs - mean) / np.sqrt(var + self.epsilon), -self.clip_obs, self.clip_obs)

    def _unnormalize_obs(self, obs: np.ndarray, obs_rms: RunningMeanStd) -> np.ndarray:
        mean, var = self.symmetrized_statistics(obs_rms)
        return (obs * np.sqrt(var + self.epsilon)) + mean

    def symmetrised_statistics(self, obs_rms: RunningMeanStd) -> tuple[np.ndarray, np.ndarray]:
        """Deprecated spelling of :meth:`symmetrized_statistics`."""
        warnings.warn("symmetrised_statistics is deprecated: use symmetrized_statistics", DeprecationWarning, stacklevel=2)
        return self.symmetrized_statistics(obs_rms)
