"""
Policy symmetrization: an ordinary network made exactly equivariant by averaging over the group orbit (the second
augmentation baseline of van der Pol et al. 2020).

For a policy ``π`` with action distribution parameters computed by any network:

- discrete: ``π̄(a | s) = 1/|G| Σ_h π(K_h a | L_h s)``, the average of the *probabilities* (a mixture, "average
  π(s) with the back-transformed π(L_h s)"); computed as a log-sum-exp of log-probabilities for stability.
- Gaussian: the back-transformed means ``K_h⁻¹ μ(L_h s)`` are averaged; the state-independent ``log_std`` is
  averaged over its permutations so that the spread is equivariant too.
- value: ``V̄(s) = 1/|G| Σ_h V(L_h s)`` (invariant).
- DQN: ``Q̄(s, a) = 1/|G| Σ_h Q(L_h s, K_h a)``; QR-DQN: the same average of every quantile (an average of
  quantile functions is monotone, so still a quantile function).

Re-indexing the sums by ``h ↦ h g`` shows ``π̄(K_g a | L_g s) = π̄(a | s)``, ``V̄(L_g s) = V̄(s)`` and
``Q̄(L_g s, K_g a) = Q̄(s, a)`` exactly, whatever the weights. The price is ``|G|`` forward passes per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch as th
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.distributions import CategoricalDistribution, DiagGaussianDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.policies.base import SymmetricPolicyMixin


def orbit(symmetry: Symmetry, obs: th.Tensor) -> th.Tensor:
    """``[L_0 s; L_1 s; ...]``: the batch under every element, element-major, shape ``(|G| * batch, ...)``."""
    return th.cat([symmetry.transform_obs(obs, g) for g in symmetry.group.elements])


def back_transform_mean(symmetry: Symmetry, per_element: th.Tensor) -> th.Tensor:
    """
    ``1/|G| Σ_h K_h⁻¹ x_h`` for ``x`` of shape ``(|G|, batch, action_dim)`` (``x_h`` computed at ``L_h s``).
    For discrete actions ``K_h⁻¹`` re-indexes: ``(K_h⁻¹ x)[a] = x[K_h a]``.
    """
    group = symmetry.group
    return th.stack([symmetry.action_rep.apply(per_element[h], group.inv(h)) for h in group.elements]).mean(dim=0)


class SymmetrizedActorCriticPolicy(SymmetricPolicyMixin, ActorCriticPolicy):
    """
    An :class:`~stable_baselines3.common.policies.ActorCriticPolicy` averaged over a symmetry group (exactly
    equivariant policy, invariant value). Every ``ActorCriticPolicy`` argument is accepted.

    ``PPO(SymmetrizedActorCriticPolicy, env, policy_kwargs=dict(symmetry=sym))``.

    :param observation_space: observation space.
    :param action_space: Discrete or 1-d Box action space.
    :param lr_schedule: learning rate schedule.
    :param symmetry: the environment's symmetry, or a registered env id (default: found on the algorithm's env).
    :param kwargs: other ``ActorCriticPolicy`` arguments (gSDE is not supported).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not isinstance(self.action_dist, (CategoricalDistribution, DiagGaussianDistribution)):
            raise SymmetryError(
                f"{type(self).__name__} supports Categorical and Gaussian actions, got {type(self.action_dist).__name__}"
            )
        if isinstance(self.action_dist, DiagGaussianDistribution):
            self.symmetry.action_rep.permutations  # noqa: B018  (raises for a non-monomial action representation)

    def _symmetrized_distribution(self, latent_pi: th.Tensor) -> Distribution:
        """The averaged distribution from actor latents of the orbit, shape ``(|G| * batch, latent)``."""
        order = len(self.symmetry)
        out = self.action_net(latent_pi)
        out = out.reshape(order, out.shape[0] // order, -1)
        if isinstance(self.action_dist, CategoricalDistribution):
            log_probs = th.log_softmax(out, dim=-1)
            group = self.symmetry.group
            back = th.stack([self.symmetry.action_rep.apply(log_probs[h], group.inv(h)) for h in group.elements])
            return self.action_dist.proba_distribution(action_logits=th.logsumexp(back, dim=0) - math.log(order))
        assert isinstance(self.action_dist, DiagGaussianDistribution)
        mean = back_transform_mean(self.symmetry, out)
        # log_std permutes with the action dimensions but never changes sign.
        perms = th.as_tensor(self.symmetry.action_rep.permutations.copy(), device=self.log_std.device)
        log_std = self.log_std[perms].mean(dim=0)
        return self.action_dist.proba_distribution(mean, log_std)

    def _symmetrized_value(self, latent_vf: th.Tensor) -> th.Tensor:
        values = self.value_net(latent_vf)
        return values.reshape(len(self.symmetry), -1, values.shape[-1]).mean(dim=0)

    def _orbit_latents(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        features = self.extract_features(orbit(self.symmetry, obs))
        if self.share_features_extractor:
            return self.mlp_extractor(features)
        pi_features, vf_features = features
        return self.mlp_extractor.forward_actor(pi_features), self.mlp_extractor.forward_critic(vf_features)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        latent_pi, latent_vf = self._orbit_latents(obs)
        distribution = self._symmetrized_distribution(latent_pi)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), self._symmetrized_value(latent_vf), log_prob  # type: ignore[misc]

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        assert isinstance(obs, th.Tensor), "Dict observations are not supported"
        latent_pi, latent_vf = self._orbit_latents(obs)
        distribution = self._symmetrized_distribution(latent_pi)
        return self._symmetrized_value(latent_vf), distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: PyTorchObs) -> Distribution:
        assert isinstance(obs, th.Tensor), "Dict observations are not supported"
        features = BasePolicy.extract_features(self, orbit(self.symmetry, obs), self.pi_features_extractor)
        return self._symmetrized_distribution(self.mlp_extractor.forward_actor(features))

    def predict_values(self, obs: PyTorchObs) -> th.Tensor:
        assert isinstance(obs, th.Tensor), "Dict observations are not supported"
        features = BasePolicy.extract_features(self, orbit(self.symmetry, obs), self.vf_features_extractor)
        return self._symmetrized_value(self.mlp_extractor.forward_critic(features))


class SymmetrizedActorCriticCnnPolicy(SymmetrizedActorCriticPolicy):
    """:class:`SymmetrizedActorCriticPolicy` with SB3's NatureCNN feature extractor (as ``CnnPolicy``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)


class _OrbitAveragedNetwork:
    """
    A Q- or quantile network whose output is averaged over the orbit of its input, back-transformed along the actions
    (the last axis).

    :param args: the network's arguments.
    :param symmetry: the environment's symmetry (discrete actions).
    :param kwargs: the network's keyword arguments.
    """

    symmetry: Symmetry
    #: The wrapped network's head on features, shape ``(batch, ..., n_actions)``.
    _outputs: Callable[[th.Tensor], th.Tensor]

    def __init__(self, *args: Any, symmetry: Symmetry, **kwargs: Any):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.symmetry = symmetry

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        assert isinstance(obs, th.Tensor), "Dict observations are not supported"
        net: Any = self
        out = self._outputs(net.extract_features(orbit(self.symmetry, obs), net.features_extractor))
        return back_transform_mean(self.symmetry, out.reshape(len(self.symmetry), obs.shape[0], *out.shape[1:]))


class SymmetrizedQNetwork(_OrbitAveragedNetwork, QNetwork):
    """A Q-network averaged over a symmetry group: ``Q̄(s, a) = 1/|G| Σ_h Q(L_h s, K_h a)``."""

    def _outputs(self, features: th.Tensor) -> th.Tensor:
        return self.q_net(features)


class SymmetrizedDQNPolicy(SymmetricPolicyMixin, DQNPolicy):
    """
    A ``DQNPolicy`` whose online and target Q-networks are :class:`SymmetrizedQNetwork`.

    ``DQN(SymmetrizedDQNPolicy, env, policy_kwargs=dict(symmetry=sym))``.

    Takes ``DQNPolicy``'s arguments and ``symmetry`` (see :class:`~sb3_equivariant.policies.base.SymmetricPolicyMixin`).
    """

    def make_q_net(self) -> SymmetrizedQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return SymmetrizedQNetwork(**net_args, symmetry=self.symmetry).to(self.device)


class SymmetrizedDQNCnnPolicy(SymmetrizedDQNPolicy):
    """:class:`SymmetrizedDQNPolicy` with SB3's NatureCNN feature extractor (as DQN's ``CnnPolicy``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)


class SymmetrizedQuantileNetwork(_OrbitAveragedNetwork, QuantileNetwork):
    """
    A QR-DQN quantile network averaged over a symmetry group: quantile ``i`` of action ``a`` at ``s`` is
    ``1/|G| Σ_h θ_i(L_h s, K_h a)``.
    """

    def _outputs(self, features: th.Tensor) -> th.Tensor:
        return self.quantile_net(features).view(-1, self.n_quantiles, int(self.action_space.n))


class SymmetrizedQRDQNPolicy(SymmetricPolicyMixin, QRDQNPolicy):
    """
    A ``QRDQNPolicy`` whose online and target networks are :class:`SymmetrizedQuantileNetwork`.

    ``QRDQN(SymmetrizedQRDQNPolicy, env, policy_kwargs=dict(symmetry=sym))``.

    Takes ``QRDQNPolicy``'s arguments and ``symmetry`` (see :class:`~sb3_equivariant.policies.base.SymmetricPolicyMixin`).
    """

    def make_quantile_net(self) -> SymmetrizedQuantileNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return SymmetrizedQuantileNetwork(**net_args, symmetry=self.symmetry).to(self.device)


class SymmetrizedQRDQNCnnPolicy(SymmetrizedQRDQNPolicy):
    """:class:`SymmetrizedQRDQNPolicy` with SB3's NatureCNN feature extractor (as QR-DQN's ``CnnPolicy``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)
