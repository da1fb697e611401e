"""Symmetrized policies: exactly equivariant over every group element, whatever the weights; save and load."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.utils import obs_as_tensor
from symmetries import CASES, acrobot_symmetry, cartpole_symmetry, pendulum_symmetry

from sb3_equivariant.augmentation import (
    SymmetrizedActorCriticCnnPolicy,
    SymmetrizedActorCriticPolicy,
    SymmetrizedDQNPolicy,
    SymmetrizedQNetwork,
    SymmetrizedQRDQNCnnPolicy,
    SymmetrizedQRDQNPolicy,
    SymmetrizedQuantileNetwork,
)
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.representation import permutation


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
