"""Symmetrized policies: exactly equivariant over every group element, whatever the weights; save and load."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy, ContinuousCritic
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.sac.policies import Actor
from symmetries import CASES, acrobot_symmetry, cartpole_symmetry, pendulum_symmetry

from sb3_equivariant import make_symmetric_env, make_symmetric_vec_env
from sb3_equivariant.augmentation import (
    SymmetrizedActorCriticCnnPolicy,
    SymmetrizedActorCriticPolicy,
    SymmetrizedContinuousCritic,
    SymmetrizedDQNPolicy,
    SymmetrizedQNetwork,
    SymmetrizedQRDQNCnnPolicy,
    SymmetrizedQRDQNPolicy,
    SymmetrizedQuantileNetwork,
    SymmetrizedSACActor,
    SymmetrizedSACCnnPolicy,
    SymmetrizedSACPolicy,
)
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.group import cyclic_group, dihedral_group
from sb3_equivariant.policies import EquivariantSACPolicy
from sb3_equivariant.representation import ImageAction, dihedral_action, direct_sum, permutation, regular, signed_permutation


def random_obs(space: spaces.Box, n: int, seed: int = 0) -> th.Tensor:
    rng = np.random.default_rng(seed)
    if space.dtype == np.uint8:
        return th.as_tensor(rng.integers(0, 256, size=(n, *space.shape), dtype=np.uint8))
    return th.as_tensor(rng.normal(size=(n, *space.shape)).astype(np.float32))


def perturb(module: th.nn.Module, seed: int = 0) -> None:
    """Random biases and log_std: SB3's init (zero biases, tanh) is odd, i.e. already equivariant for obs -> -obs."""
    th.manual_seed(seed)
    with th.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("bias") or name == "log_std":
                param.add_(th.randn_like(param))


VARIANTS = {
    "mlp": (SymmetrizedActorCriticPolicy, dict(net_arch=[32])),
    "separate-extractors": (SymmetrizedActorCriticPolicy, dict(net_arch=[32], share_features_extractor=False)),
    "nature-cnn": (SymmetrizedActorCriticCnnPolicy, dict(net_arch=[32], features_extractor_kwargs=dict(features_dim=32))),
}


def make_policy(case: str, variant: str = "mlp") -> tuple[SymmetrizedActorCriticPolicy, Symmetry, spaces.Box]:
    make_sym, obs_space, act_space = CASES[case]
    sym = make_sym()
    cls, kwargs = VARIANTS[variant]
    policy = cls(obs_space, act_space, lambda _: 1e-3, symmetry=sym, **kwargs)
    perturb(policy)
    policy.set_training_mode(False)
    return policy, sym, obs_space


def distribution_params(policy: ActorCriticPolicy, obs: th.Tensor, raw: bool = False) -> list[th.Tensor]:
    getter = ActorCriticPolicy.get_distribution if raw else type(policy).get_distribution
    dist = getter(policy, obs).distribution
    return [dist.probs] if isinstance(dist, th.distributions.Categorical) else [dist.mean, dist.stddev]


def action_transform(sym: Symmetry, params: list[th.Tensor], g: int) -> list[th.Tensor]:
    """K_g applied to the distribution parameters: probabilities / mean by K_g, stddev by its permutation only."""
    if len(params) == 1:
        return [sym.action_rep.apply(params[0], g)]
    perm_only = permutation(sym.group, sym.action_rep.permutations.tolist())
    return [sym.action_rep.apply(params[0], g), perm_only.apply(params[1], g)]


@pytest.mark.parametrize(
    "case, variant",
    [(case, "mlp") for case in CASES] + [("acrobot", "separate-extractors"), ("pong", "nature-cnn")],
)
def test_symmetrized_actor_critic_is_exactly_equivariant(case: str, variant: str) -> None:
    policy, sym, obs_space = make_policy(case, variant)
    obs = random_obs(obs_space, 6)
    with th.no_grad():
        params = distribution_params(policy, obs)
        values = policy.predict_values(obs)
        actions, forward_values, forward_log_prob = policy(obs, deterministic=True)
        eval_values, log_prob, entropy = policy.evaluate_actions(obs, actions)
        raw_params = distribution_params(policy, obs, raw=True)
        raw_values = ActorCriticPolicy.predict_values(policy, obs)
        raw_broken = 0.0
        for g in sym.group.elements:
            obs_g = sym.transform_obs(obs, g)
            for got, want in zip(distribution_params(policy, obs_g), action_transform(sym, params, g)):
                th.testing.assert_close(got, want, atol=1e-5, rtol=0)
            th.testing.assert_close(policy.predict_values(obs_g), values, atol=1e-5, rtol=0)
            actions_g, values_g, log_prob_g = policy(obs_g, deterministic=True)
            th.testing.assert_close(actions_g, sym.transform_action(actions, g), atol=1e-5, rtol=0)
            th.testing.assert_close(values_g, forward_values, atol=1e-5, rtol=0)
            th.testing.assert_close(log_prob_g, forward_log_prob, atol=1e-5, rtol=0)
            eval_g = policy.evaluate_actions(obs_g, sym.transform_action(actions, g))
            for got, want in zip(eval_g, (eval_values, log_prob, entropy)):
                th.testing.assert_close(got, want, atol=1e-5, rtol=0)
            raw_g = distribution_params(policy, obs_g, raw=True)
            raw_broken = max(raw_broken, float((raw_g[0] - action_transform(sym, raw_params, g)[0]).abs().max()))
            raw_broken = max(raw_broken, float((ActorCriticPolicy.predict_values(policy, obs_g) - raw_values).abs().max()))
        # The wrapped network itself is not equivariant; the averaging is what makes the policy so.
        assert raw_broken > 1e-3
        th.testing.assert_close(eval_values, values)


@pytest.mark.parametrize("case", ["cartpole", "acrobot", "gridworld", "pong"])
def test_symmetrized_q_network_is_exactly_equivariant(case: str) -> None:
    make_sym, obs_space, act_space = CASES[case]
    sym = make_sym()
    policy = SymmetrizedDQNPolicy(obs_space, act_space, lambda _: 1e-3, net_arch=[32], symmetry=sym)
    assert isinstance(policy.q_net, SymmetrizedQNetwork) and isinstance(policy.q_net_target, SymmetrizedQNetwork)
    perturb(policy)
    obs = random_obs(obs_space, 5)
    with th.no_grad():
        q_values = policy.q_net(obs)
        raw = policy.q_net.q_net(policy.q_net.extract_features(obs, policy.q_net.features_extractor))
        assert not th.allclose(q_values, raw, atol=1e-3)
        for g in sym.group.elements:
            obs_g = sym.transform_obs(obs, g)
            th.testing.assert_close(policy.q_net(obs_g), sym.action_rep.apply(q_values, g), atol=1e-5, rtol=0)
            th.testing.assert_close(policy._predict(obs_g), sym.transform_action(policy._predict(obs), g))


@pytest.mark.parametrize(
    "case, cls", [("acrobot", SymmetrizedQRDQNPolicy), ("gridworld", SymmetrizedQRDQNPolicy), ("pong", SymmetrizedQRDQNCnnPolicy)]
)
def test_symmetrized_quantile_network_is_exactly_equivariant(case: str, cls: type[SymmetrizedQRDQNPolicy], tmp_path) -> None:
    make_sym, obs_space, act_space = CASES[case]
    sym = make_sym()
    kwargs = dict(features_extractor_kwargs=dict(features_dim=32)) if cls is SymmetrizedQRDQNCnnPolicy else {}
    policy = cls(obs_space, act_space, lambda _: 1e-3, net_arch=[32], n_quantiles=7, symmetry=sym, **kwargs)
    if cls is SymmetrizedQRDQNCnnPolicy:
        assert isinstance(policy.quantile_net.features_extractor, NatureCNN)
    assert isinstance(policy.quantile_net, SymmetrizedQuantileNetwork)
    assert isinstance(policy.quantile_net_target, SymmetrizedQuantileNetwork)
    perturb(policy)
    obs = random_obs(obs_space, 5)
    with th.no_grad():
        quantiles = policy.quantile_net(obs)
        assert quantiles.shape == (5, 7, act_space.n)
        for g in sym.group.elements:
            obs_g = sym.transform_obs(obs, g)
            th.testing.assert_close(policy.quantile_net(obs_g), sym.action_rep.apply(quantiles, g), atol=1e-5, rtol=0)
    policy.save(str(tmp_path / "policy.pth"))
    loaded = cls.load(str(tmp_path / "policy.pth"))
    assert type(loaded) is cls
    with th.no_grad():
        th.testing.assert_close(loaded.quantile_net(obs), quantiles)


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn", "qrdqn"])
def test_models_with_symmetrized_policies_save_and_load(algo: str, tmp_path) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    if algo == "qrdqn":
        model = QRDQN(
            SymmetrizedQRDQNPolicy,
            env,
            policy_kwargs=dict(symmetry=cartpole_symmetry(), n_quantiles=5),
            learning_starts=20,
            batch_size=8,
            buffer_size=200,
            seed=0,
            device="cpu",
        )
    elif algo == "dqn":
        model = DQN(
            SymmetrizedDQNPolicy,
            env,
            policy_kwargs=dict(symmetry=cartpole_symmetry()),
            learning_starts=20,
            batch_size=8,
            buffer_size=200,
            seed=0,
            device="cpu",
        )
    else:
        cls = PPO if algo == "ppo" else A2C
        extra = dict(batch_size=16, n_epochs=1) if algo == "ppo" else {}
        # A registry id names the symmetry, as rl_zoo3's policy_kwargs strings can.
        model = cls(
            SymmetrizedActorCriticPolicy,
            env,
            policy_kwargs=dict(symmetry="CartPole-v1"),
            n_steps=16,
            seed=0,
            device="cpu",
            **extra,
        )
    model.learn(64)
    model.save(tmp_path / "model")
    loaded = type(model).load(tmp_path / "model", env=env, device="cpu")
    assert type(loaded.policy) is type(model.policy)
    assert isinstance(loaded.policy_kwargs["symmetry"], (Symmetry, str))
    # Strict: every parameter restored under the same name.
    loaded.policy.load_state_dict(model.policy.state_dict(), strict=True)
    obs = obs_as_tensor(env.reset(), "cpu")
    with warnings.catch_warnings():  # SB3 retries a mismatched state dict non-strictly, with a warning
        warnings.simplefilter("error", UserWarning)
        reloaded = type(model).load(tmp_path / "model", env=env, device="cpu")
    with th.no_grad():
        if algo == "dqn":
            th.testing.assert_close(model.q_net(obs), reloaded.q_net(obs), atol=0, rtol=0)
        elif algo == "qrdqn":
            th.testing.assert_close(model.quantile_net(obs), reloaded.quantile_net(obs), atol=0, rtol=0)
        else:
            th.testing.assert_close(
                model.policy.get_distribution(obs).distribution.probs,
                reloaded.policy.get_distribution(obs).distribution.probs,
                atol=0,
                rtol=0,
            )
            th.testing.assert_close(model.policy.predict_values(obs), reloaded.policy.predict_values(obs), atol=0, rtol=0)
    np.testing.assert_array_equal(
        model.predict(obs.numpy(), deterministic=True)[0], reloaded.predict(obs.numpy(), deterministic=True)[0]
    )


def test_bad_configurations_raise_clear_errors() -> None:
    _, obs_space, act_space = CASES["cartpole"]
    with pytest.raises(SymmetryError, match=r"no symmetry found .* pass symmetry="):
        SymmetrizedActorCriticPolicy(obs_space, act_space, lambda _: 1e-3)
    with pytest.raises(SymmetryError, match=r"no symmetry found .* pass symmetry="):
        SymmetrizedDQNPolicy(obs_space, act_space, lambda _: 1e-3)
    with pytest.raises(SymmetryError, match="Discrete\\(2\\)"):
        SymmetrizedActorCriticPolicy(obs_space, act_space, lambda _: 1e-3, symmetry=acrobot_symmetry())
    _, p_obs, p_act = CASES["pendulum"]
    with pytest.raises(SymmetryError, match="supports Categorical and Gaussian actions"):
        SymmetrizedActorCriticPolicy(p_obs, p_act, lambda _: 1e-3, use_sde=True, symmetry=pendulum_symmetry())


def test_symmetry_found_on_the_algorithm_env() -> None:
    from stable_baselines3 import PPO

    from sb3_equivariant import make_symmetric_env

    model = PPO(SymmetrizedActorCriticPolicy, make_symmetric_env("CartPole-v1"), n_steps=32, seed=0)
    assert model.policy.symmetry.name == "CartPole-mirror"
    assert model.policy_kwargs["symmetry"] is model.policy.symmetry  # saved with the model


# --- SAC: the orbit mixture -------------------------------------------------------------------------------------------


def _sac(env_id: str, policy: type = SymmetrizedSACPolicy, seed: int = 0) -> SAC:
    env = make_symmetric_vec_env(env_id, n_envs=1, seed=seed)
    kwargs = dict(learning_starts=100, batch_size=32, buffer_size=1000, seed=seed, device="cpu")
    return SAC(policy, env, policy_kwargs=dict(net_arch=[32, 32]), **kwargs)


def _states_and_actions(model: SAC, n: int = 32, seed: int = 0) -> tuple[th.Tensor, th.Tensor]:
    """Random states, and random squashed actions in (-1, 1) (the actor's units)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, *model.observation_space.shape)).astype(np.float32)
    actions = rng.uniform(-0.95, 0.95, size=(n, *model.action_space.shape)).astype(np.float32)
    return th.as_tensor(obs), th.as_tensor(actions)


def assert_symmetrized_sac_exact(policy: SymmetrizedSACPolicy, obs: th.Tensor, actions: th.Tensor) -> None:
    """log π̄(K_g a | L_g s) = log π̄(a | s), deterministic actions K_g a(s), Q(L_g s, K_g a) = Q(s, a): every g."""
    sym, actor = policy.symmetry, policy.actor
    critics = (policy.critic, policy.critic_target)
    with th.no_grad():
        log_prob = actor.log_prob(obs, actions)
        deterministic = actor(obs, deterministic=True)
        q_values = [critic(obs, actions) for critic in critics]
        q1 = policy.critic.q1_forward(obs, actions)
        assert log_prob.shape == (len(obs),) and deterministic.shape == actions.shape
        for g in sym.group.elements:
            obs_g, actions_g = sym.transform_obs(obs, g), sym.transform_action(actions, g)
            th.testing.assert_close(actor.log_prob(obs_g, actions_g), log_prob, atol=1e-5, rtol=0)
            th.testing.assert_close(actor(obs_g, deterministic=True), sym.transform_action(deterministic, g), atol=1e-5, rtol=0)
            for critic, values in zip(critics, q_values, strict=True):
                for got, want in zip(critic(obs_g, actions_g), values, strict=True):
                    th.testing.assert_close(got, want, atol=1e-5, rtol=0)
            th.testing.assert_close(policy.critic.q1_forward(obs_g, actions_g), q1, atol=1e-5, rtol=0)


def assert_predict_equivariant(model: SAC, obs: th.Tensor) -> None:
    """``model.predict`` in the env's action units (Pendulum: [-2, 2])."""
    sym, obs_np = model.policy.symmetry, obs.numpy()
    action, _ = model.predict(obs_np, deterministic=True)
    for g in sym.group.elements:
        action_g, _ = model.predict(sym.transform_obs(obs_np, g), deterministic=True)
        np.testing.assert_allclose(action_g, sym.transform_action(action, g), atol=1e-5, rtol=0)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "Walker2d-v5"])
def test_symmetrized_sac_is_exactly_equivariant_before_and_after_learning(env_id: str) -> None:
    model = _sac(env_id)
    policy = model.policy
    assert isinstance(policy.actor, SymmetrizedSACActor)
    assert isinstance(policy.critic, SymmetrizedContinuousCritic)
    assert isinstance(policy.critic_target, SymmetrizedContinuousCritic)
    perturb(policy)
    obs, actions = _states_and_actions(model)
    sym = policy.symmetry
    # The wrapped networks themselves are not equivariant; the orbit is what makes the policy so.
    with th.no_grad():
        raw_mean = Actor.get_action_dist_params(policy.actor, obs)[0]
        raw_q = ContinuousCritic.forward(policy.critic, obs, actions)[0]
        g = sym.group.elements[-1]
        obs_g, actions_g = sym.transform_obs(obs, g), sym.transform_action(actions, g)
        raw_mean_g = Actor.get_action_dist_params(policy.actor, obs_g)[0]
        assert float((raw_mean_g - sym.transform_action(raw_mean, g)).abs().max()) > 1e-3
        assert float((ContinuousCritic.forward(policy.critic, obs_g, actions_g)[0] - raw_q).abs().max()) > 1e-3
    for training in (True, False):
        policy.set_training_mode(training)
        assert_symmetrized_sac_exact(policy, obs, actions)
        assert_predict_equivariant(model, obs)
    before = policy.actor.log_prob(obs, actions).detach()
    model.learn(300)
    assert model.num_timesteps == 300 and model._n_updates > 0
    assert not th.allclose(policy.actor.log_prob(obs, actions).detach(), before)  # learning changed the policy
    for training in (True, False):
        policy.set_training_mode(training)
        assert_symmetrized_sac_exact(policy, obs, actions)
        assert_predict_equivariant(model, obs)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "Walker2d-v5"])
def test_symmetrized_sac_log_prob_is_the_orbit_mixture(env_id: str) -> None:
    model = _sac(env_id)  # SB3's init: moderate means and stds, so that tanh does not saturate in float32
    actor, sym = model.policy.actor, model.policy.symmetry
    obs, actions = _states_and_actions(model)
    with th.no_grad():
        # Built independently from SB3's own Actor and squashed Gaussian: component h at L_h s, mapped back by K_h⁻¹
        # (the std only permuted), averaged as densities.
        components = []
        for h in sym.group.elements:
            mean, log_std, _ = Actor.get_action_dist_params(actor, sym.transform_obs(obs, h))
            back = sym.group.inv(h)
            mean, std = sym.action_rep.apply(mean, back), sym.action_rep.apply(log_std.exp(), back).abs()
            dist = SquashedDiagGaussianDistribution(actions.shape[1]).proba_distribution(mean, std.log())
            components.append(dist.log_prob(actions))
        expected = th.logsumexp(th.stack(components), dim=0) - math.log(len(sym))
        th.testing.assert_close(actor.log_prob(obs, actions), expected, atol=1e-5, rtol=1e-6)
        # Not the log-prob of one component: the components differ.
        assert float((components[0] - components[-1]).abs().max()) > 1e-2
    with pytest.raises(NotImplementedError, match="mixture_params"):
        actor.get_action_dist_params(obs)
    # action_log_prob (what SAC.train calls) returns the mixture's log-prob of its own sample, SB3's shapes, with
    # gradients to the network (reparameterized given the drawn component).
    th.manual_seed(0)
    sampled, sampled_log_prob = actor.action_log_prob(obs)
    assert sampled.shape == actions.shape and sampled_log_prob.shape == (len(obs),)
    assert float(sampled.detach().abs().max()) < 0.999
    th.testing.assert_close(sampled_log_prob.detach(), actor.log_prob(obs, sampled).detach(), atol=1e-4, rtol=0)
    # The sample itself is reparameterized (SAC's actor loss -Q(s, a) trains the actor through it) ...
    sampled.sum().backward(retain_graph=True)
    assert actor.mu.weight.grad is not None and float(actor.mu.weight.grad.abs().max()) > 0
    assert actor.log_std.weight.grad is not None and float(actor.log_std.weight.grad.abs().max()) > 0
    # ... and so is its log-probability (the entropy term).
    actor.zero_grad()
    sampled_log_prob.sum().backward()
    assert actor.mu.weight.grad is not None and float(actor.mu.weight.grad.abs().max()) > 0


def test_symmetrized_sac_deterministic_action_is_equivariant_where_components_are_close() -> None:
    # At SB3's init Pendulum's means are small and its two components' stds often nearly equal: at many states the
    # mixture's densities at the two means differ below float32 resolution (picked in float32, the mode jumps by up to
    # 0.08 on 1.4% of these states), so the mode is picked in float64.
    model = _sac("Pendulum-v1")
    actor, sym = model.policy.actor, model.policy.symmetry
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(4096, 3)).astype(np.float32))
    with th.no_grad():
        means, _ = actor.mixture_params(obs)
        assert float((means[0] - means[1]).abs().min()) < 1e-4
        deterministic = actor(obs, deterministic=True)
        for g in sym.group.elements:
            actions_g = actor(sym.transform_obs(obs, g), deterministic=True)
            th.testing.assert_close(actions_g, sym.transform_action(deterministic, g), atol=1e-5, rtol=0)


def test_symmetrized_sac_mixture_is_bimodal_at_a_symmetric_state() -> None:
    """
    At a Walker2d state fixed by the leg swap, an equivariant Gaussian's mean is symmetric (both legs do the same);
    the orbit mixture has one mode per leg and samples both, so it can pick which leg leads.
    """
    model = _sac("Walker2d-v5")
    actor, sym = model.policy.actor, model.policy.symmetry
    perturb(actor)
    with th.no_grad():
        actor.log_std.bias.fill_(-4.0)  # narrow components (std ~0.02), so that the modes stand apart
    x = np.random.default_rng(3).normal(size=17).astype(np.float32)
    state = (x + sym.transform_obs(x, 1)) / 2
    np.testing.assert_array_equal(sym.transform_obs(state, 1), state)
    obs = th.as_tensor(state).expand(4000, -1)
    with th.no_grad():
        means, _ = actor.mixture_params(obs[:1])
        modes = th.tanh(means[:, 0])
        th.testing.assert_close(modes[1], sym.transform_action(modes[0], 1), atol=1e-6, rtol=0)  # mirror images
        separation = float((modes[0] - modes[1]).norm())
        assert separation > 0.2
        th.manual_seed(0)
        samples = actor(obs)
        assert float((samples - sym.transform_action(samples, 1)).abs().mean()) > 0.05
        # Each sample is near one mode, and both modes are drawn about equally often.
        distances = th.stack([(samples - mode).norm(dim=1) for mode in modes])
        assert float(distances.min(dim=0).values.max()) < 0.1 * separation
        assert 0.45 < float((distances[0] < distances[1]).float().mean()) < 0.55
        # The mixture's deterministic action is one of the (asymmetric) modes.
        deterministic = actor(obs[:1], deterministic=True)[0]
        assert min(float((deterministic - mode).abs().max()) for mode in modes) < 1e-6
        assert float((deterministic - sym.transform_action(deterministic, 1)).abs().max()) > 0.05
    equivariant = _sac("Walker2d-v5", policy=EquivariantSACPolicy)
    perturb(equivariant.policy)
    with th.no_grad():
        symmetric = equivariant.policy.actor(obs[:1], deterministic=True)
        assert float((symmetric - sym.transform_action(symmetric, 1)).abs().max()) < 1e-5


def test_symmetrized_sac_save_load_strict(tmp_path) -> None:
    model = _sac("Walker2d-v5")
    model.learn(150)
    obs, actions = _states_and_actions(model)
    model.save(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 warns when it falls back to non-strict loading
        loaded = SAC.load(tmp_path / "model", device="cpu")
    assert type(loaded.policy) is SymmetrizedSACPolicy and type(loaded.policy.actor) is SymmetrizedSACActor
    assert type(loaded.policy.critic_target) is SymmetrizedContinuousCritic
    assert loaded.policy.symmetry.name == "Walker2d-legswap"
    loaded.policy.load_state_dict(model.policy.state_dict(), strict=True)
    with th.no_grad():
        for policy in (model.policy, loaded.policy):
            policy.set_training_mode(False)
        th.testing.assert_close(loaded.actor(obs, deterministic=True), model.actor(obs, deterministic=True), atol=0, rtol=0)
        th.testing.assert_close(loaded.actor.log_prob(obs, actions), model.actor.log_prob(obs, actions), atol=0, rtol=0)
        for critic in ("critic", "critic_target"):
            got, want = getattr(loaded.policy, critic)(obs, actions), getattr(model.policy, critic)(obs, actions)
            for a, b in zip(got, want, strict=True):
                th.testing.assert_close(a, b, atol=0, rtol=0)
    np.testing.assert_array_equal(
        loaded.predict(obs.numpy(), deterministic=True)[0], model.predict(obs.numpy(), deterministic=True)[0]
    )
    assert_symmetrized_sac_exact(loaded.policy, obs, actions)
    # The actor alone is rebuilt from its constructor parameters, which carry the symmetry.
    assert model.actor._get_constructor_parameters()["symmetry"] is model.policy.symmetry
    model.actor.save(str(tmp_path / "actor.pth"))
    actor = SymmetrizedSACActor.load(str(tmp_path / "actor.pth"))
    with th.no_grad():
        th.testing.assert_close(actor.log_prob(obs, actions), model.actor.log_prob(obs, actions), atol=0, rtol=0)


def _plane_d4_symmetry() -> Symmetry:
    # D4 (non-abelian: catches a wrong order of composition or a missing inverse) on images and a planar action:
    # the quarter turn (x, y) -> (-y, x), the mirror x -> -x.
    d4 = dihedral_group(4)
    planar = signed_permutation(d4, {1: [1, 0], 4: [0, 1]}, {1: [1, -1], 4: [-1, 1]}, name="plane")
    return Symmetry(ImageAction(dihedral_action(), channels=1), planar, discrete=False, name="plane-D4")


def test_symmetrized_cnn_sac_policy_is_exact_over_d4() -> None:
    obs_space, act_space = spaces.Box(0, 255, (1, 36, 36), np.uint8), spaces.Box(-1, 1, (2,), np.float32)
    policy = SymmetrizedSACCnnPolicy(
        obs_space,
        act_space,
        lambda _: 1e-3,
        symmetry=_plane_d4_symmetry(),
        net_arch=[16],
        features_extractor_kwargs=dict(features_dim=16),
    )
    assert isinstance(policy.actor.features_extractor, NatureCNN)
    assert isinstance(policy.critic.features_extractor, NatureCNN)
    perturb(policy)
    obs = random_obs(obs_space, 6)
    actions = th.as_tensor(np.random.default_rng(0).uniform(-0.95, 0.95, (6, 2)).astype(np.float32))
    policy.set_training_mode(False)
    assert_symmetrized_sac_exact(policy, policy.obs_to_tensor(obs.numpy())[0], actions)


def test_symmetrized_sac_is_exact_with_a_four_cycle_of_action_dimensions() -> None:
    """C4 permuting four action dimensions cyclically (as an Ant's legs): the only case here where an element's
    permutation is not its own inverse, so a log-std moved by K_h instead of K_h⁻¹ fails."""
    c4 = cyclic_group(4)
    sym = Symmetry(direct_sum(regular(c4), regular(c4)), regular(c4), discrete=False, name="four-legs")
    obs_space, act_space = spaces.Box(-np.inf, np.inf, (8,), np.float32), spaces.Box(-1, 1, (4,), np.float32)
    policy = SymmetrizedSACPolicy(obs_space, act_space, lambda _: 1e-3, symmetry=sym, net_arch=[16])
    perturb(policy)
    obs = random_obs(obs_space, 16)
    actions = th.as_tensor(np.random.default_rng(0).uniform(-0.95, 0.95, (16, 4)).astype(np.float32))
    policy.set_training_mode(False)
    assert_symmetrized_sac_exact(policy, obs, actions)


def test_symmetrized_sac_rejects_gsde_and_asymmetric_boxes() -> None:
    with pytest.raises(SymmetryError, match=r"SymmetrizedSACPolicy does not support gSDE \(use_sde=True\).*use_sde=False"):
        SAC(SymmetrizedSACPolicy, make_symmetric_env("Pendulum-v1"), use_sde=True)
    space = spaces.Box(-5, 5, (3,), np.float32)
    with pytest.raises(SymmetryError, match="SymmetrizedSACActor does not support gSDE"):
        SymmetrizedSACActor(
            space, spaces.Box(-2, 2, (1,)), [8], FlattenExtractor(space), 3, use_sde=True, symmetry=pendulum_symmetry()
        )
    with pytest.raises(SymmetryError, match="does not map the action box"):
        SymmetrizedSACPolicy(space, spaces.Box(-1, 2, (1,)), lambda _: 1e-3, symmetry=pendulum_symmetry())
    with pytest.raises(SymmetryError, match="supports Box action spaces"):
        SymmetrizedSACPolicy(space, spaces.Discrete(2), lambda _: 1e-3, symmetry=cartpole_symmetry())


@pytest.mark.parametrize("share_features_extractor", [False, True])
def test_symmetrized_sac_critic_passes_gradients_to_the_actions(share_features_extractor: bool) -> None:
    """SAC's actor loss differentiates Q̄(s, π(s)) through the actions, also with a features extractor shared with the
    actor (whose features SB3's critic computes without gradient); TD3-style q1_forward too."""
    model = SAC(
        SymmetrizedSACPolicy, "Pendulum-v1", seed=0, policy_kwargs=dict(share_features_extractor=share_features_extractor)
    )
    obs, actions = _states_and_actions(model)
    actions = actions.clone().requires_grad_(True)
    critic = model.policy.critic
    for q_values in (critic(obs, actions)[0], critic(obs, actions)[1], critic.q1_forward(obs, actions)):
        (grad,) = th.autograd.grad(q_values.sum(), actions)
        assert grad.abs().max() > 1e-4
