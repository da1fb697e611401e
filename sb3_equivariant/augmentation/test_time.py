"""Test-time symmetrization of a trained policy: average its back-transformed action probabilities over a group.

For any trained SB3 policy with discrete actions (``Discrete``, or ``MultiDiscrete`` with one factor per agent), each
agent acts with ``π̄_i(a | s) = 1/|G| Σ_g π_{σ_g(i)}(K_g a | L_g s)``, where ``σ_g`` is where ``g`` moves agent ``i``
(identity without an agent permutation) and ``K_g`` permutes actions. Every agent's symmetrized policy is then exactly
equivariant, whatever the weights: the second remedy of Hu et al. (2020, "Other-Play") to arbitrary symmetry
breaking, applied after training instead of during it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.distributions import CategoricalDistribution, MultiCategoricalDistribution
from stable_baselines3.common.policies import BasePolicy

from sb3_equivariant.augmentation.common import deprecated_aliases
from sb3_equivariant.envs.discovery import resolve_symmetry
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError


def _as_tensor(policy: BasePolicy, obs: Any) -> Any:
    """Observations as the policy's tensors (numpy arrays or dicts of them are converted, tensors kept)."""
    if isinstance(obs, th.Tensor) or (isinstance(obs, dict) and all(isinstance(v, th.Tensor) for v in obs.values())):
        return obs
    return policy.obs_to_tensor(obs)[0]


def action_probabilities(policy: BasePolicy, obs: Any) -> th.Tensor:
    """Each agent's action probabilities, ``(batch, n_agents, n_actions)`` (one agent for ``Discrete`` actions)."""
    obs_tensor = _as_tensor(policy, obs)
    with th.no_grad():
        dist = policy.get_distribution(obs_tensor)  # type: ignore[operator]
    if isinstance(dist, CategoricalDistribution):
        return dist.distribution.probs[:, None, :]
    if isinstance(dist, MultiCategoricalDistribution):
        probs = [d.probs for d in dist.distribution]
        if len({p.shape[-1] for p in probs}) != 1:
            raise SymmetryError("every agent needs the same number of actions to symmetrize a MultiDiscrete policy")
        return th.stack(probs, dim=1)
    raise SymmetryError(f"test-time symmetrization needs discrete actions, the policy's distribution is {type(dist).__name__}")


def symmetrized_probabilities(policy: BasePolicy, obs: Any, symmetry: Symmetry | str) -> th.Tensor:
    """
    Each agent's test-time symmetrized action probabilities ``π̄_i(a | s)``, ``(batch, n_agents, n_actions)``.

    :param policy: a trained SB3 policy with ``Discrete`` or ``MultiDiscrete`` actions (e.g. ``model.policy``).
    :param obs: a batch of observations (numpy as from a VecEnv, or tensors).
    :param symmetry: the group acting on the observations and the actions (a discrete-action symmetry), or a
        registered env id; checked against the policy's spaces.
    """
    symmetry = resolve_symmetry(symmetry, policy.observation_space, policy.action_space, "symmetrized_probabilities")
    if not symmetry.discrete:
        raise SymmetryError(f"{symmetry.name}: test-time symmetrization needs a discrete action symmetry")
    obs_tensor = _as_tensor(policy, obs)
    total: th.Tensor | None = None
    for g in symmetry.group.elements:
        probs = action_probabilities(policy, symmetry.transform_obs(obs_tensor, g))
        n_agents = probs.shape[1]
        slots = np.arange(n_agents) if symmetry.agents is None else symmetry.agents.permutations[g]
        actions = th.as_tensor(np.array(symmetry.action_permutations[g]))
        back = probs[:, th.as_tensor(np.array(slots))][:, :, actions]
        total = back if total is None else total + back
    assert total is not None
    return total / len(symmetry)


__all__ = ["action_probabilities", "symmetrized_probabilities"]

__getattr__ = deprecated_aliases(__name__, {"symmetrised_probabilities": symmetrized_probabilities})
