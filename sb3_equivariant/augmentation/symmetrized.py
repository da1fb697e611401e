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
- SAC: the orbit *mixture* ``π̄(a | s) = 1/|G| Σ_h π_h(a | s)``, component ``h`` SB3's squashed diagonal Gaussian
  with pre-tanh mean ``K_h⁻¹ μ(L_h s)`` and log-std ``|K_h|⁻¹ log σ(L_h s)`` (``K`` a signed permutation: tanh is
  odd and acts per coordinate, so it commutes with ``K``; a log-std only permutes); the Q-critics are averaged as
  DQN's. This is the continuous analog of the discrete average of probabilities. The PPO Gaussian above instead
  averages the means into one Gaussian (SB3's on-policy losses need a single ``DiagGaussianDistribution``, with its
  entropy); an equivariant unimodal Gaussian has a symmetric mean at a state the group fixes (Walker2d standing with
  its legs together), so it cannot choose which leg leads, while the mixture has a mode for each choice. SAC only
  needs samples and their log-probabilities, which the mixture gives exactly.

Re-indexing the sums by ``h ↦ h g`` shows ``π̄(K_g a | L_g s) = π̄(a | s)``, ``V̄(L_g s) = V̄(s)`` and
``Q̄(L_g s, K_g a) = Q̄(s, a)`` exactly, whatever the weights. The price is ``|G|`` forward passes per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    SquashedDiagGaussianDistribution,
    TanhBijector,
)
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy, ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, Actor, SACPolicy

from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.policies.base import SymmetricPolicyMixin
from sb3_equivariant.policies.continuous import check_action_bounds, unsigned
from sb3_equivariant.representation import Representation


def orbit(symmetry: Symmetry, obs: th.Tensor) -> th.Tensor:
    """``[L_0 s; L_1 s; ...]``: the batch under every element, element-major, shape ``(|G| * batch, ...)``."""
    return th.cat([symmetry.transform_obs(obs, g) for g in symmetry.group.elements])


def back_transform(rep: Representation, per_element: th.Tensor) -> th.Tensor:
    """
    ``[K_h⁻¹ x_h]_h`` for ``x`` of shape ``(|G|, batch, dim)`` (``x_h`` computed at ``L_h s``), ``K`` = ``rep``; same
    shape. For discrete actions ``K_h⁻¹`` re-indexes: ``(K_h⁻¹ x)[a] = x[K_h a]``.
    """
    group = rep.group
    return th.stack([rep.apply(per_element[h], group.inv(h)) for h in group.elements])


def back_transform_mean(symmetry: Symmetry, per_element: th.Tensor) -> th.Tensor:
    """``1/|G| Σ_h K_h⁻¹ x_h``, the mean of :func:`back_transform` with the symmetry's action representation."""
    return back_transform(symmetry.action_rep, per_element).mean(dim=0)


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

    symmetrized = True

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
            back = back_transform(self.symmetry.action_rep, log_probs)
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

    symmetrized = True

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

    symmetrized = True

    def make_quantile_net(self) -> SymmetrizedQuantileNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return SymmetrizedQuantileNetwork(**net_args, symmetry=self.symmetry).to(self.device)


class SymmetrizedQRDQNCnnPolicy(SymmetrizedQRDQNPolicy):
    """:class:`SymmetrizedQRDQNPolicy` with SB3's NatureCNN feature extractor (as QR-DQN's ``CnnPolicy``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)


def _gsde_error(owner: str) -> SymmetryError:
    """The error for gSDE, which the orbit mixture cannot transform (raised before anything is built)."""
    return SymmetryError(
        f"{owner} does not support gSDE (use_sde=True): gSDE draws its exploration noise from a state-dependent noise "
        "matrix with a state-independent log-std, which the orbit mixture has no way to transform with the symmetry. "
        "Use the default use_sde=False (a mixture of squashed diagonal Gaussians)."
    )


class SymmetrizedSACActor(Actor):
    """
    SB3's SAC ``Actor`` made an orbit mixture: ``π̄(a | s) = 1/|G| Σ_h π_h(a | s)``, where ``π_h`` is SB3's squashed
    diagonal Gaussian with pre-tanh mean ``K_h⁻¹ μ(L_h s)`` and log-std ``|K_h|⁻¹ log σ(L_h s)``, ``μ`` and
    ``log σ`` (clamped to ``[LOG_STD_MIN, LOG_STD_MAX]`` as SB3 does) being the wrapped network's outputs. The mixture
    is exactly equivariant, ``π̄(K_g a | L_g s) = π̄(a | s)``; at a state the group fixes, its components are mirror
    images of each other, so it has a mode for each (e.g. which leg leads) where an equivariant Gaussian has one
    symmetric mode.

    Sampling picks a component uniformly, then draws from it with the reparameterization trick: the component weights
    do not depend on the parameters, so the pathwise gradient of an expectation under the mixture stays unbiased. The
    log-probability is the mixture's (log-sum-exp over the components), not the drawn component's.

    The network runs once on the orbit batch (``|G|`` times the batch) per call.

    :param args: ``Actor``'s positional arguments.
    :param symmetry: the env's symmetry (its action representation a signed permutation).
    :param kwargs: ``Actor``'s other keyword arguments (``use_sde`` must be ``False``).
    :raises SymmetryError: for ``use_sde=True``, before anything is built.
    """

    def __init__(self, *args: Any, symmetry: Symmetry, **kwargs: Any):
        if kwargs.get("use_sde"):
            raise _gsde_error(type(self).__name__)
        super().__init__(*args, **kwargs)
        self.symmetry = symmetry
        #: How a log-std transforms: the permutation part ``|K_g|`` of the action representation.
        self._log_std_rep = unsigned(symmetry.action_rep)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "symmetry": self.symmetry}

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """
        Not available: the policy is a mixture of ``|G|`` squashed Gaussians; see :meth:`mixture_params`.

        :param obs: a batch of observations.
        :raises NotImplementedError: always.
        """
        raise NotImplementedError(
            f"{type(self).__name__} is a mixture of {len(self.symmetry)} squashed Gaussians, not one: use "
            "mixture_params(obs) for the components' means and log-stds"
        )

    def mixture_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        The components' pre-tanh means ``K_h⁻¹ μ(L_h s)`` and log-stds ``|K_h|⁻¹ log σ(L_h s)``.

        :param obs: a batch of observations (tensors; ``Dict`` observations are not supported).
        :return: means and log-stds, each of shape ``(|G|, batch, action_dim)``, component ``h`` first.
        """
        assert isinstance(obs, th.Tensor), "Dict observations are not supported"
        order = len(self.symmetry)
        latent = self.latent_pi(self.extract_features(orbit(self.symmetry, obs), self.features_extractor))
        mean = self.mu(latent).reshape(order, obs.shape[0], -1)
        log_std = self.log_std(latent)  # type: ignore[operator]
        log_std = th.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX).reshape(order, obs.shape[0], -1)
        return back_transform(self.symmetry.action_rep, mean), back_transform(self._log_std_rep, log_std)

    @staticmethod
    def _mixture_log_density(gaussian_actions: th.Tensor, means: th.Tensor, log_stds: th.Tensor) -> th.Tensor:
        """
        ``log 1/|G| Σ_h N(u; mean_h, σ_h)`` of pre-tanh actions ``u`` of shape ``(..., batch, action_dim)``, for
        components of shape ``(|G|, batch, action_dim)``; shape ``(..., batch)``.
        """
        u = gaussian_actions.unsqueeze(-3)
        per_dim = -0.5 * ((u - means) * th.exp(-log_stds)) ** 2 - log_stds - 0.5 * math.log(2 * math.pi)
        return th.logsumexp(per_dim.sum(dim=-1), dim=-2) - math.log(means.shape[0])

    def _squash_correction(self, actions: th.Tensor) -> th.Tensor:
        """SB3's ``Σ log(1 - a² + ε)`` of squashed actions."""
        assert isinstance(self.action_dist, SquashedDiagGaussianDistribution)
        return th.log(1 - actions**2 + self.action_dist.epsilon).sum(dim=-1)

    @staticmethod
    def _sample(means: th.Tensor, log_stds: th.Tensor) -> th.Tensor:
        """Pre-tanh samples: a uniformly drawn component per row, then its reparameterized Gaussian sample."""
        order, batch = means.shape[:2]
        component = th.randint(order, (batch,), device=means.device)
        rows = th.arange(batch, device=means.device)
        mean, log_std = means[component, rows], log_stds[component, rows]
        return mean + th.exp(log_std) * th.randn_like(mean)

    def log_prob(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """
        ``log π̄(a | s)`` of squashed actions, as SB3's ``SquashedDiagGaussianDistribution.log_prob``: the actions are
        clipped away from ±1 before the inverse tanh, and the squash correction is ``Σ log(1 - a² + 1e-6)``.

        :param obs: a batch of observations.
        :param actions: squashed actions in ``[-1, 1]``, shape ``(batch, action_dim)``.
        :return: the log-probabilities, shape ``(batch,)``.
        """
        means, log_stds = self.mixture_params(obs)
        gaussian_actions = TanhBijector.inverse(actions)
        return self._mixture_log_density(gaussian_actions, means, log_stds) - self._squash_correction(actions)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """
        Squashed actions, shape ``(batch, action_dim)``: a sample of the mixture, or (``deterministic``) the tanh of
        the component mean where the mixture's (pre-tanh) density is highest, as SB3 takes the tanh of the Gaussian's
        mean. The latter is equivariant except where the densities at two components' means tie exactly: at a state
        the group fixes (a component and its mirror image tie, and float rounding decides which one is returned), or
        where two components have equal spreads (e.g. a 1-d action and ``|G| = 2``).

        :param obs: a batch of observations.
        :param deterministic: whether to return the most likely component mean instead of a sample.
        """
        means, log_stds = self.mixture_params(obs)
        if deterministic:
            # The densities at two components' means can differ by less than float32 resolution: where the components
            # are close, and where their spreads nearly match (two equal-width components tie exactly). In float32,
            # rounding picks either one at such states (jumps of 0.08 seen on Pendulum at init); in float64 only
            # exact ties are left.
            dtype = th.float32 if means.device.type == "mps" else th.float64  # MPS has no float64
            precise_means, precise_log_stds = means.to(dtype), log_stds.to(dtype)
            best = self._mixture_log_density(precise_means, precise_means, precise_log_stds).argmax(dim=0)
            return th.tanh(means[best, th.arange(means.shape[1], device=means.device)])
        return th.tanh(self._sample(means, log_stds))

    def action_log_prob(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        A reparameterized sample of the mixture and its log-probability under the mixture (what ``SAC.train`` uses).

        :param obs: a batch of observations.
        :return: squashed actions ``(batch, action_dim)`` and their log-probabilities ``(batch,)``.
        """
        means, log_stds = self.mixture_params(obs)
        gaussian_actions = self._sample(means, log_stds)
        actions = th.tanh(gaussian_actions)
        return actions, self._mixture_log_density(gaussian_actions, means, log_stds) - self._squash_correction(actions)


class SymmetrizedContinuousCritic(ContinuousCritic):
    """
    SB3's ``ContinuousCritic`` with every Q-network averaged over a symmetry group:
    ``Q̄(s, a) = 1/|G| Σ_h Q(L_h s, K_h a)``, so ``Q̄(L_g s, K_g a) = Q̄(s, a)``.

    :param args: ``ContinuousCritic``'s positional arguments.
    :param symmetry: the env's symmetry.
    :param kwargs: ``ContinuousCritic``'s keyword arguments.
    """

    def __init__(self, *args: Any, symmetry: Symmetry, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.symmetry = symmetry

    def _orbit_input(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``[features(L_h s), K_h a]`` for every element, element-major (``features`` already of the orbit)."""
        orbit_actions = th.cat([self.symmetry.transform_action(actions, g) for g in self.symmetry.group.elements])
        return th.cat([features, orbit_actions], dim=1)

    def _average(self, q_values: th.Tensor) -> th.Tensor:
        """The mean over the orbit of element-major Q-values, shape ``(batch, 1)``."""
        return q_values.reshape(len(self.symmetry), -1, q_values.shape[-1]).mean(dim=0)

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        """
        ``Q̄_i(s, a)`` of every Q-network ``i``.

        :param obs: a batch of observations.
        :param actions: squashed actions in ``[-1, 1]``, shape ``(batch, action_dim)``.
        :return: one tensor of shape ``(batch, 1)`` per Q-network.
        """
        # As SB3: a features extractor shared with the actor is trained by the actor's loss only; the actions keep
        # their gradient (the actor's loss differentiates Q through them).
        with th.set_grad_enabled(not self.share_features_extractor):
            features = self.extract_features(orbit(self.symmetry, obs), self.features_extractor)
        qvalue_input = self._orbit_input(features, actions)
        return tuple(self._average(q_net(qvalue_input)) for q_net in self.q_networks)

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """
        ``Q̄_1(s, a)`` with the features computed without gradient, as SB3's (TD3's actor loss).

        :param obs: a batch of observations.
        :param actions: squashed actions, shape ``(batch, action_dim)``.
        """
        with th.no_grad():
            features = self.extract_features(orbit(self.symmetry, obs), self.features_extractor)
        return self._average(self.q_networks[0](self._orbit_input(features, actions)))


class SymmetrizedSACPolicy(SymmetricPolicyMixin, SACPolicy):
    """
    A ``SACPolicy`` whose actor is the orbit mixture :class:`SymmetrizedSACActor` (exactly equivariant) and whose
    critics and critic targets are :class:`SymmetrizedContinuousCritic` (exactly invariant).

    ``SAC(SymmetrizedSACPolicy, env, policy_kwargs=dict(symmetry=sym))``.

    SAC's entropy term (and ``ent_coef="auto"``'s target) applies to the mixture's log-probabilities. Where the
    components separate, the mixture's entropy exceeds a component's by up to ``log |G|``, so at the same target each
    component is narrower than one Gaussian would be; where they coincide (a state the group fixes) nothing changes.

    :param observation_space: observation space.
    :param action_space: a Box that the symmetry maps onto itself (e.g. Pendulum's ``[-2, 2]``), the symmetry's action
        representation a signed permutation.
    :param lr_schedule: learning rate schedule.
    :param symmetry: the environment's symmetry, or a registered env id (default: found on the algorithm's env).
    :param kwargs: other ``SACPolicy`` arguments (gSDE is not supported).
    """

    symmetrized = True

    actor: SymmetrizedSACActor
    critic: SymmetrizedContinuousCritic
    critic_target: SymmetrizedContinuousCritic

    def _check_arguments(
        self, action_space: spaces.Space, algorithm: BaseAlgorithm | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if kwargs.get("use_sde"):
            raise _gsde_error(type(self).__name__)
        if not isinstance(action_space, spaces.Box):
            raise SymmetryError(f"{type(self).__name__} supports Box action spaces, got {action_space}")
        return kwargs

    def _finish_kwargs(self, action_space: spaces.Space, kwargs: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(action_space, spaces.Box)
        check_action_bounds(self.symmetry, action_space)
        return kwargs

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> SymmetrizedSACActor:
        """
        The orbit-mixture actor, as SB3's ``make_actor``.

        :param features_extractor: a features extractor to share (default: a new one).
        """
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return SymmetrizedSACActor(**actor_kwargs, symmetry=self.symmetry).to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> SymmetrizedContinuousCritic:
        """
        An orbit-averaged critic (also the target critic), as SB3's ``make_critic``.

        :param features_extractor: a features extractor to share (default: a new one).
        """
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return SymmetrizedContinuousCritic(**critic_kwargs, symmetry=self.symmetry).to(self.device)


class SymmetrizedSACCnnPolicy(SymmetrizedSACPolicy):
    """:class:`SymmetrizedSACPolicy` with SB3's NatureCNN feature extractor (as SAC's ``CnnPolicy``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)
