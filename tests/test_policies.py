import warnings

import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN, TRPO
from sb3_contrib.common.maskable.distributions import MaskableCategoricalDistribution
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_equivariant import SymmetryError, get_symmetry, make_symmetric_atari_env, make_symmetric_env, make_symmetric_vec_env
from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.nn import BasisLayer
from sb3_equivariant.policies import (
    EquivariantCnnDQNPolicy,
    EquivariantCnnExtractor,
    EquivariantCnnPolicy,
    EquivariantCnnQRDQNPolicy,
    EquivariantDQNPolicy,
    EquivariantMlpPolicy,
    EquivariantQRDQNPolicy,
    MaskableEquivariantActorCriticPolicy,
    count_parameters,
)

ATOL = 1e-5
GRID_CNN = dict(channels=(8, 16), kernel_sizes=(7, 5), strides=(2, 1), pooling="max", features_channels=64)


def _env(name: str):
    if name == "Pong":
        return make_symmetric_atari_env("PongNoFrameskip-v4", n_envs=1, seed=0, frame_stack=4)
    return make_symmetric_vec_env(name, n_envs=2, seed=0)


ON_POLICY_CASES = {
    "CartPole-v1": (EquivariantMlpPolicy, {}),
    "Acrobot-v1": (EquivariantMlpPolicy, {}),
    "Pendulum-v1": (EquivariantMlpPolicy, {}),
    "sb3_equivariant/GridWorld-v0": (EquivariantCnnPolicy, dict(features_extractor_kwargs=GRID_CNN)),
    "Pong": (EquivariantCnnPolicy, dict(features_extractor_kwargs=dict(channels=(8, 16, 16), features_channels=32))),
}


def _obs_batch(model: BaseAlgorithm, n: int = 8) -> np.ndarray:
    """Observations from random play (sampling the space would give values like 1e38 for CartPole's velocities)."""
    env = model.get_env()
    env.action_space.seed(0)
    obs, batch = env.reset(), []
    while len(batch) < n:
        batch.extend(obs)
        obs = env.step(np.array([env.action_space.sample() for _ in range(env.num_envs)]))[0]
    return np.stack(batch[:n])


def _symmetry(model: BaseAlgorithm) -> Symmetry:
    return model.policy.symmetry


def assert_actor_critic_equivariant(model: BaseAlgorithm, obs_np: np.ndarray | None = None) -> None:
    policy, sym = model.policy, _symmetry(model)
    obs_np = _obs_batch(model) if obs_np is None else obs_np
    obs = policy.obs_to_tensor(obs_np)[0]
    actions_np = np.stack([model.action_space.sample() for _ in range(len(obs_np))])
    actions = th.as_tensor(actions_np)
    with th.no_grad():
        # SB3 reuses one Distribution object per policy: read its tensors before the next call.
        dist = policy.get_distribution(obs).distribution
        probs = dist.probs if sym.discrete else None
        mean, std = (None, None) if sym.discrete else (dist.mean, dist.stddev)
        values = policy.predict_values(obs)
        ev_values, ev_logp, ev_ent = policy.evaluate_actions(obs, actions)
        for g in range(len(sym)):
            g_obs = policy.obs_to_tensor(sym.transform_obs(obs_np, g))[0]
            g_dist = policy.get_distribution(g_obs).distribution
            if sym.discrete:
                th.testing.assert_close(g_dist.probs, sym.action_rep.apply(probs, g), atol=ATOL, rtol=0)
            else:
                th.testing.assert_close(g_dist.mean, sym.action_rep.apply(mean, g), atol=ATOL, rtol=0)
                th.testing.assert_close(g_dist.stddev, sym.action_rep.apply(std, g).abs(), atol=ATOL, rtol=0)
            th.testing.assert_close(policy.predict_values(g_obs), values, atol=ATOL, rtol=0)
            g_actions = th.as_tensor(sym.transform_action(actions_np, g))
            g_values, g_logp, g_ent = policy.evaluate_actions(g_obs, g_actions)
            th.testing.assert_close(g_values, ev_values, atol=ATOL, rtol=0)
            th.testing.assert_close(g_logp, ev_logp, atol=ATOL, rtol=0)
            th.testing.assert_close(g_ent, ev_ent, atol=ATOL, rtol=0)
    deterministic, _ = model.predict(obs_np, deterministic=True)
    for g in range(len(sym)):
        g_action, _ = model.predict(sym.transform_obs(obs_np, g), deterministic=True)
        np.testing.assert_allclose(g_action, sym.transform_action(deterministic, g), atol=ATOL)


@pytest.mark.parametrize("env_id", ON_POLICY_CASES)
def test_actor_critic_equivariant_train_eval_and_after_learning(env_id: str) -> None:
    policy_class, kwargs = ON_POLICY_CASES[env_id]
    model = PPO(policy_class, _env(env_id), n_steps=32, batch_size=32, n_epochs=2, policy_kwargs=kwargs, seed=0)
    for training in (True, False):
        model.policy.set_training_mode(training)
        assert_actor_critic_equivariant(model)
    model.learn(64 if env_id == "Pong" else 256)
    assert_actor_critic_equivariant(model)


def assert_q_equivariant(model: BaseAlgorithm, obs_np: np.ndarray | None = None) -> None:
    policy, sym = model.policy, _symmetry(model)
    obs_np = _obs_batch(model) if obs_np is None else obs_np
    net = policy.q_net if isinstance(model, DQN) else policy.quantile_net
    with th.no_grad():
        q = net(policy.obs_to_tensor(obs_np)[0])
        for g in range(len(sym)):
            g_q = net(policy.obs_to_tensor(sym.transform_obs(obs_np, g))[0])
            th.testing.assert_close(g_q, sym.action_rep.apply(q, g), atol=ATOL, rtol=0)


Q_CASES = {
    "DQN CartPole": (DQN, EquivariantDQNPolicy, "CartPole-v1", {}),
    "DQN Acrobot": (DQN, EquivariantDQNPolicy, "Acrobot-v1", {}),
    "DQN GridWorld CNN": (DQN, EquivariantCnnDQNPolicy, "sb3_equivariant/GridWorld-v0", dict(features_extractor_kwargs=GRID_CNN)),
    "QRDQN CartPole": (QRDQN, EquivariantQRDQNPolicy, "CartPole-v1", dict(n_quantiles=7)),
    "QRDQN GridWorld CNN": (
        QRDQN,
        EquivariantCnnQRDQNPolicy,
        "sb3_equivariant/GridWorld-v0",
        dict(n_quantiles=5, features_extractor_kwargs=GRID_CNN),
    ),
}


@pytest.mark.parametrize("case", Q_CASES)
def test_q_networks_equivariant(case: str) -> None:
    algo, policy_class, env_id, kwargs = Q_CASES[case]
    model = algo(policy_class, _env(env_id), learning_starts=32, buffer_size=1000, policy_kwargs=kwargs, seed=0)
    assert_q_equivariant(model)
    model.learn(128)
    model.policy.set_training_mode(True)
    assert_q_equivariant(model)


def test_maskable_policy_masks_transform_with_actions() -> None:
    env = make_symmetric_env("sb3_equivariant/GridWorld-v0")
    sym = get_symmetry(env)
    policy = MaskableEquivariantActorCriticPolicy(
        env.observation_space,
        env.action_space,
        lambda _: 3e-4,
        features_extractor_class=EquivariantCnnExtractor,
        features_extractor_kwargs=GRID_CNN,
        net_arch=[],
        symmetry=sym,
    )
    obs_np = np.stack([env.reset(seed=seed)[0] for seed in range(6)])
    masks = np.random.default_rng(0).random((6, 5)) < 0.7
    masks[:, 0] = True
    with th.no_grad():
        dist = policy.get_distribution(policy.obs_to_tensor(obs_np)[0], action_masks=masks)
        assert isinstance(dist, MaskableCategoricalDistribution)
        probs = dist.distribution.probs
        for g in range(len(sym)):
            g_masks = sym.action_rep.apply(masks.astype(np.float32), g) > 0.5
            g_dist = policy.get_distribution(policy.obs_to_tensor(sym.transform_obs(obs_np, g))[0], action_masks=g_masks)
            th.testing.assert_close(g_dist.distribution.probs, sym.action_rep.apply(probs, g), atol=ATOL, rtol=0)


SAVE_CASES = {
    "PPO": (PPO, EquivariantMlpPolicy, "CartPole-v1", dict(n_steps=32, batch_size=32)),
    "A2C": (A2C, EquivariantMlpPolicy, "Pendulum-v1", dict(n_steps=8)),
    "TRPO": (TRPO, EquivariantMlpPolicy, "Acrobot-v1", dict(n_steps=32, batch_size=32)),
    "DQN": (DQN, EquivariantDQNPolicy, "CartPole-v1", dict(learning_starts=16, buffer_size=500)),
    "QRDQN": (QRDQN, EquivariantQRDQNPolicy, "CartPole-v1", dict(learning_starts=16, buffer_size=500)),
}


def _outputs(model: BaseAlgorithm, obs: np.ndarray) -> th.Tensor:
    tensor = model.policy.obs_to_tensor(obs)[0]
    with th.no_grad():
        if isinstance(model, DQN):
            return model.policy.q_net(tensor)
        if isinstance(model, QRDQN):
            return model.policy.quantile_net(tensor)
        dist = model.policy.get_distribution(tensor)
        params = dist.distribution.logits if hasattr(dist.distribution, "logits") else dist.distribution.mean
        return th.cat([params, model.policy.predict_values(tensor)], dim=1)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("case", SAVE_CASES)
def test_save_load_strict_identical(case: str, training: bool, tmp_path) -> None:
    algo, policy_class, env_id, kwargs = SAVE_CASES[case]
    model = algo(policy_class, _env(env_id), seed=0, **kwargs)
    model.learn(64)
    obs = _obs_batch(model)
    model.policy.set_training_mode(training)
    before = _outputs(model, obs)
    model.save(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 warns when it falls back to non-strict loading
        loaded = algo.load(tmp_path / "model", device="cpu")
    loaded.policy.set_training_mode(not training)
    th.testing.assert_close(_outputs(loaded, obs), before, atol=0, rtol=0)
    assert type(loaded.policy) is type(model.policy)
    assert loaded.policy.symmetry.name == model.policy.symmetry.name
    if isinstance(loaded, (PPO, A2C, TRPO)):
        assert_actor_critic_equivariant(loaded, obs)
    else:
        assert_q_equivariant(loaded, obs)


def test_explicit_symmetry_and_missing_symmetry_errors() -> None:
    import gymnasium as gym

    plain = gym.make("CartPole-v1")
    sym = get_symmetry(make_symmetric_env("CartPole-v1"))
    model = PPO(EquivariantMlpPolicy, plain, policy_kwargs=dict(symmetry=sym), n_steps=32)
    assert_actor_critic_equivariant(model)
    with pytest.raises(SymmetryError, match="make_symmetric_env"):
        PPO(EquivariantMlpPolicy, gym.make("MountainCar-v0"))
    with pytest.raises(SymmetryError, match=r"Discrete\(3\) action space needs a discrete permutation symmetry of dim 3"):
        PPO(EquivariantMlpPolicy, gym.make("Acrobot-v1"), policy_kwargs=dict(symmetry=sym))
    with pytest.raises(ValueError, match="gSDE"):
        PPO(EquivariantMlpPolicy, make_symmetric_env("Pendulum-v1"), use_sde=True)
    with pytest.raises(ValueError, match="unknown basis"):
        PPO(EquivariantMlpPolicy, make_symmetric_env("CartPole-v1"), policy_kwargs=dict(basis="bogus"))


def test_vecnormalize_warns() -> None:
    from stable_baselines3.common.vec_env import VecNormalize

    with pytest.warns(UserWarning, match="VecNormalize"):
        PPO(EquivariantMlpPolicy, VecNormalize(make_symmetric_vec_env("CartPole-v1", n_envs=1)), n_steps=32)


@pytest.mark.parametrize("activation", [th.nn.Tanh, th.nn.ReLU])
def test_odd_activation_makes_cartpole_value_constant_at_init(activation: type[th.nn.Module]) -> None:
    """docs §6e: CartPole's flip negates the whole observation, so with tanh (odd) and zero biases the invariant value
    is constant at init and its weights get no gradient (only float rounding); ReLU does not have this."""
    model = PPO(EquivariantMlpPolicy, make_symmetric_env("CartPole-v1"), policy_kwargs=dict(activation_fn=activation), seed=0)
    values = model.policy.predict_values(th.randn(256, 4, generator=th.Generator().manual_seed(0)))
    values.sum().backward()
    grads = {n: p.grad.abs().max().item() for n, p in model.policy.named_parameters() if "value" in n}
    weight_grad = max(g for n, g in grads.items() if not n.endswith("bias_coefficients"))
    bias_grad = max(g for n, g in grads.items() if n.endswith("bias_coefficients"))
    if activation is th.nn.Tanh:
        assert values.std().item() < 1e-6 and weight_grad < 1e-5 * bias_grad
    else:
        assert values.std().item() > 1e-2 and weight_grad > 1e-2 * bias_grad


@pytest.mark.parametrize("basis", ["nullspace", "random"])
def test_ablation_bases_are_not_equivariant(basis: str) -> None:
    model = PPO(EquivariantMlpPolicy, make_symmetric_env("CartPole-v1"), policy_kwargs=dict(basis=basis), n_steps=32)
    with pytest.raises(AssertionError):
        assert_actor_critic_equivariant(model)


@pytest.mark.parametrize(("sizing", "low", "high"), [("parameters", 0.8, 1.2), ("channels", 1.6, 2.4), ("units", 0.4, 0.6)])
@pytest.mark.parametrize("algo", [PPO, DQN])
def test_sizing_sets_parameter_counts(algo: type, sizing: str, low: float, high: float) -> None:
    """|G| = 2: "parameters" matches SB3's count, "channels" has about |G|x, "units" about 1/|G|x."""
    env = make_symmetric_env("CartPole-v1")
    policy = EquivariantMlpPolicy if algo is PPO else EquivariantDQNPolicy
    kwargs = {"buffer_size": 1000} if algo is DQN else {}
    plain = algo("MlpPolicy", env, **kwargs)
    equivariant = algo(policy, env, policy_kwargs=dict(sizing=sizing), **kwargs)
    ratio = count_parameters(equivariant.policy) / count_parameters(plain.policy)
    assert low < ratio < high, ratio
    assert equivariant.policy.sizing == sizing


@pytest.mark.parametrize("init", ["orthogonal", "he"])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "sb3_equivariant/GridWorld-v0"])
def test_ortho_init_variance(env_id: str, init: str, tmp_path) -> None:
    """
    Under SB3's ortho_init every equivariant layer starts with SB3's gain and an orthogonal matrix's variance,
    gain²/max(fan) (init="orthogonal", the default) or He's gain²/fan_in (init="he"); the choice is saved.
    """
    policy_class, kwargs = ON_POLICY_CASES[env_id]
    kwargs = {**kwargs, "init": init} if init != "orthogonal" else kwargs
    model = PPO(policy_class, make_symmetric_env(env_id), policy_kwargs=kwargs, seed=0)
    policy = model.policy
    assert policy.init == init
    gains = {"action_net": 0.01, "value_net": 1.0}
    layers = [(name, m) for name, m in policy.named_modules() if isinstance(m, BasisLayer)]
    assert len(layers) >= 4
    for name, layer in layers:
        gain = gains.get(name, 2**0.5)
        fan_out = layer.out_channels * layer.block_rep_out.dim
        expected = gain**2 / (max(layer.fan_in, fan_out) if init == "orthogonal" else layer.fan_in)
        variance = layer.weight_and_bias()[0].detach().pow(2).mean().item()
        assert 0.6 < variance / expected < 1.6, (name, variance, expected)
    model.save(tmp_path / "model")
    loaded = PPO.load(tmp_path / "model")
    assert loaded.policy.init == init
    obs = policy.obs_to_tensor(_obs_batch(model))[0]
    with th.no_grad():
        probs = [p.get_distribution(obs).distribution.probs for p in (policy, loaded.policy)]
    th.testing.assert_close(probs[1], probs[0], atol=0, rtol=0)
    with pytest.raises(ValueError, match="fan must be"):
        layers[0][1].reset_parameters(fan="out")


def test_init_errors() -> None:
    env = make_symmetric_env("CartPole-v1")
    with pytest.raises(ValueError, match=r"unknown init 'torch'; choose one of \('orthogonal', 'he'\)"):
        PPO(EquivariantMlpPolicy, env, policy_kwargs=dict(init="torch"))
    with pytest.raises(ValueError, match=r"init='he' is applied by SB3's orthogonal init, which ortho_init=False"):
        PPO(EquivariantMlpPolicy, env, policy_kwargs=dict(init="he", ortho_init=False))


def test_default_sizing(tmp_path) -> None:
    model = PPO(EquivariantMlpPolicy, make_symmetric_env("CartPole-v1"))
    assert model.policy.mlp_extractor.channels_pi == 45  # SB3's 64 units / sqrt(|G|): about SB3's parameter count
    model.save(tmp_path / "model.zip")
    assert PPO.load(tmp_path / "model.zip").policy.mlp_extractor.channels_pi == 45
    # The CNN defaults to NatureCNN's parameter count, written into the saved extractor kwargs.
    pong = PPO(EquivariantCnnPolicy, _env("Pong"), n_steps=16)
    assert pong.policy.features_extractor_kwargs["sizing"] == "parameters"
    assert [c.out_channels for c in pong.policy.features_extractor.cnn if isinstance(c, BasisLayer)] == [23, 45, 45, 362]
    with pytest.raises(ValueError, match="unknown sizing"):
        PPO(EquivariantMlpPolicy, make_symmetric_env("CartPole-v1"), policy_kwargs=dict(sizing="wide"))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "sb3_equivariant/GridWorld-v0"])
def test_export_matches_policy(env_id: str) -> None:
    policy_class, kwargs = ON_POLICY_CASES[env_id]
    model = PPO(policy_class, make_symmetric_env(env_id), policy_kwargs=kwargs, n_steps=32)
    exported = model.policy.export()
    assert not any(isinstance(m, BasisLayer) for m in exported.modules())
    obs = _obs_batch(model)
    tensor = model.policy.obs_to_tensor(obs)[0]
    with th.no_grad():
        action_out, value = exported(th.as_tensor(obs))
        latent_pi, latent_vf = model.policy.mlp_extractor(model.policy.extract_features(tensor))
        th.testing.assert_close(action_out, model.policy.action_net(latent_pi), atol=1e-6, rtol=1e-5)
        th.testing.assert_close(value, model.policy.value_net(latent_vf), atol=1e-6, rtol=1e-5)
    traced = th.jit.trace(exported, th.as_tensor(obs))
    th.testing.assert_close(traced(th.as_tensor(obs))[0], action_out)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "sb3_equivariant/GridWorld-v0"])
def test_exported_policy_runs_in_onnxruntime(env_id: str, tmp_path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    policy_class, kwargs = ON_POLICY_CASES[env_id]
    model = PPO(policy_class, make_symmetric_env(env_id), policy_kwargs=kwargs, n_steps=32)
    exported = model.policy.export()
    obs = th.as_tensor(_obs_batch(model))
    path = str(tmp_path / "policy.onnx")
    th.onnx.export(
        exported,
        (obs,),
        path,
        input_names=["obs"],
        output_names=["action", "value"],
        dynamic_axes={"obs": {0: "batch"}},
        dynamo=False,
    )
    action, value = onnxruntime.InferenceSession(path).run(None, {"obs": obs.numpy()})
    with th.no_grad():
        expected_action, expected_value = exported(obs)
    np.testing.assert_allclose(action, expected_action.numpy(), atol=1e-5)
    np.testing.assert_allclose(value, expected_value.numpy(), atol=1e-5)


def test_maskable_ppo_learns_saves_and_loads(tmp_path) -> None:
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.wrappers import ActionMasker

    # GridWorld with "stay" masked out: a mask that is invariant under the rotation of the moves.
    env = ActionMasker(make_symmetric_env("sb3_equivariant/GridWorld-v0"), lambda _: np.array([False, True, True, True, True]))
    kwargs = dict(features_extractor_class=EquivariantCnnExtractor, features_extractor_kwargs=GRID_CNN, net_arch=[])
    model = MaskablePPO(MaskableEquivariantActorCriticPolicy, env, n_steps=64, batch_size=32, policy_kwargs=kwargs, seed=0)
    model.learn(128)
    obs = np.stack([env.reset(seed=s)[0] for s in range(4)])
    masks = np.tile(env.action_masks(), (4, 1))
    actions, _ = model.predict(obs, action_masks=masks, deterministic=True)
    assert np.all(actions != 0)
    sym = model.policy.symmetry
    for g in range(len(sym)):
        g_actions, _ = model.predict(sym.transform_obs(obs, g), action_masks=masks, deterministic=True)
        np.testing.assert_array_equal(g_actions, sym.transform_action(actions, g))
    model.save(tmp_path / "maskable")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = MaskablePPO.load(tmp_path / "maskable")
    np.testing.assert_array_equal(loaded.predict(obs, action_masks=masks, deterministic=True)[0], actions)
