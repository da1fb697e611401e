"""
The symmetry (mirror) loss of Yu et al. 2018 ("Learning Symmetric and Low-Energy Locomotion"), as in rsl_rl.

``L_sym = mean over g != e and the batch of || f(L_g s) - K_g f(s) ||²``, where ``f`` is the policy's action
probabilities for a Categorical policy (bounded and free of the logits' additive ambiguity) and the Gaussian mean
for a continuous policy. Gradients flow through both terms, as in the paper.
"""

from __future__ import annotations

import torch as th
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    StateDependentNoiseDistribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError


def policy_output(distribution: Distribution) -> th.Tensor:
    """
    The quantity the symmetry loss compares: probabilities (Categorical) or mean (Gaussian), shape ``(batch, d)``.

    :param distribution: an SB3 action distribution after ``proba_distribution``.
    """
    if isinstance(distribution, CategoricalDistribution):
        return distribution.distribution.probs
    if isinstance(distribution, (DiagGaussianDistribution, StateDependentNoiseDistribution)):
        return distribution.distribution.mean
    raise SymmetryError(f"the symmetry loss supports Categorical and Gaussian policies, got {type(distribution).__name__}")


def symmetry_loss(policy: ActorCriticPolicy, obs: th.Tensor, symmetry: Symmetry) -> th.Tensor:
    """
    ``mean_{g != e} mean_batch || f(L_g s) - K_g f(s) ||²`` (zero for the trivial group).

    :param policy: an actor-critic policy (anything with ``get_distribution``).
    :param obs: a batch of observations, as stored in the rollout buffer.
    :param symmetry: the environment's symmetry.
    :return: a scalar tensor carrying gradients.
    """
    order = len(symmetry)
    if order == 1:
        return th.zeros((), device=obs.device)
    batch = obs.shape[0]
    stacked = th.cat([symmetry.transform_obs(obs, g) for g in symmetry.group.elements])
    out = policy_output(policy.get_distribution(stacked)).reshape(order, batch, -1)
    targets = th.stack([symmetry.action_rep.apply(out[0], g) for g in range(1, order)])
    return (out[1:] - targets).pow(2).sum(dim=-1).mean()
