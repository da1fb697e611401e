import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import DDPG, DQN, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_equivariant import Symmetry, SymmetryError, make_symmetric_env, make_symmetric_vec_env
from sb3_equivariant.group import cyclic_group
from sb3_equivariant.nn import BasisLayer
from sb3_equivariant.policies import (
    EquivariantCnnSACPolicy,
    EquivariantCnnTD3Policy,
    EquivariantDQNPolicy,
    EquivariantQRDQNPolicy,
    EquivariantSACPolicy,
    EquivariantTD3Policy,
    count_parameters,
)
from sb3_equivariant.representation import ImageAction, rotation_action, signed_permutation

ATOL = 1e-5
SMALL = dict(net_arch=[16, 16])
OFF_POLICY = dict(learning_starts=32, batch_size=32, buffer_size=1000, seed=0)


class PlaneImageEnv(gym.Env):
    """Random 1×7×7 images and a planar Box action: a C4 test bed for the Cnn policies (the dynamics are irrelevant)."""

    observation_space = spaces.Box(0, 255, (1, 7, 7), np.uint8)
    action_space = spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), float(action[0]), False, False, {}


def plane_symmetry() -> Symmetry:
    # A quarter turn rotates the image and the planar action (x, y) -> (-y, x): a signed permutation.
    rotate = signed_permutation(cyclic_group(4), {1: [1, 0]}, {1: [1, -1]}, name="plane")
    return Symmetry(ImageAction(rotation_action(), channels=1), rotate, discrete=False, name="plane-C4")


CNN = dict(
    symmetry=plane_symmetry(),
    features_extractor_kwargs=dict(channels=(4,), kernel_sizes=(3,), strides=(1,), pooling="max", features_channels=8),
    net_arch=[8],
)

CASES = {
    "SAC Pendulum": (SAC, EquivariantSACPolicy, "Pendulum-v1", SMALL),
    "SAC Walker2d": (SAC, EquivariantSACPolicy, "Walker2d-v5", SMALL),
    "SAC shared extractor": (SAC, EquivariantSACPolicy, "Pendulum-v1", dict(**SMALL, share_features_extractor=True)),
    "SAC image C4": (SAC, EquivariantCnnSACPolicy, "plane", CNN),
    "TD3 Pendulum": (TD3, EquivariantTD3Policy, "Pendulum-v1", SMALL),
    "TD3 Walker2d": (TD3, EquivariantTD3Policy, "Walker2d-v5", dict(net_arch=dict(pi=[8], qf=[16, 8]))),
    "TD3 image C4": (TD3, EquivariantCnnTD3Policy, "plane", CNN),
    "DDPG Pendulum": (DDPG, EquivariantTD3Policy, "Pendulum-v1", SMALL),
}


def _model(case: str) -> BaseAlgorithm:
    algo, policy, env_id, kwargs = CASES[case]
    env = DummyVecEnv([PlaneImageEnv] * 2) if env_id == "plane" else make_symmetric_vec_env(env_id, n_envs=2, seed=0)
    return algo(policy, env, policy_kwargs=dict(kwargs), **OFF_POLICY)  # SB3 adds keys to policy_kwargs


def _obs_batch(model: BaseAlgorithm, n: int = 8) -> np.ndarray:
    env = model.get_env()
    env.action_space.seed(0)
    obs, batch = env.reset(), []
    while len(batch) < n:
        batch.extend(obs)
        obs = env.step(np.array([env.action_space.sample() for _ in range(env.num_envs)]))[0]
    return np.stack(batch[:n])


def assert_actor_critics_equivariant(model: BaseAlgorithm, obs_np: np.ndarray | None = None) -> None:
    """Every network of the policy, over every group element: actor (and target), critics and critic target, predict."""
    policy, sym = model.policy, model.policy.symmetry
    obs_np = _obs_batch(model) if obs_np is None else obs_np
    rng = np.random.default_rng(1)
    actions = th.as_tensor(rng.uniform(-0.99, 0.99, (len(obs_np), *model.action_space.shape)), dtype=th.float32)
    actors = [policy.actor] + ([policy.actor_target] if isinstance(model, TD3) else [])
    critics = [policy.critic, policy.critic_target]
    obs = policy.obs_to_tensor(obs_np)[0]
    with th.no_grad():
        mu = [actor(obs) if isinstance(model, TD3) else actor(obs, deterministic=True) for actor in actors]
        q = [critic(obs, actions) for critic in critics]
        if isinstance(model, SAC):
            mean, log_std, _ = policy.actor.get_action_dist_params(obs)
            logp = policy.actor.action_dist.proba_distribution(mean, log_std).log_prob(actions)
        for g in range(len(sym)):
            g_obs = policy.obs_to_tensor(sym.transform_obs(obs_np, g))[0]
            g_actions = sym.transform_action(actions, g)
            for actor, m in zip(actors, mu):
                g_mu = actor(g_obs) if isinstance(model, TD3) else actor(g_obs, deterministic=True)
                th.testing.assert_close(g_mu, sym.transform_action(m, g), atol=ATOL, rtol=0)
            for critic, values in zip(critics, q):
                for g_value, value in zip(critic(g_obs, g_actions), values, strict=True):
                    th.testing.assert_close(g_value, value, atol=ATOL, rtol=0)
            if isinstance(model, SAC):
                g_mean, g_log_std, _ = policy.actor.get_action_dist_params(g_obs)
                th.testing.assert_close(g_mean, sym.transform_action(mean, g), atol=ATOL, rtol=0)
                # std > 0 moves with the permutation part of K_g: |K_g std|
                th.testing.assert_close(g_log_std.exp(), sym.transform_action(log_std.exp(), g).abs(), atol=ATOL, rtol=1e-5)
                g_logp = policy.actor.action_dist.proba_distribution(g_mean, g_log_std).log_prob(g_actions)
                # a sum over permuted dimensions, in another order: float32 rounding relative to |log p| (~100s)
                th.testing.assert_close(g_logp, logp, atol=ATOL, rtol=1e-5)
    deterministic, _ = model.predict(obs_np, deterministic=True)
    for g in range(len(sym)):
        g_action, _ = model.predict(sym.transform_obs(obs_np, g), deterministic=True)
        np.testing.assert_allclose(g_action, sym.transform_action(deterministic, g), atol=ATOL)


@pytest.mark.parametrize("case", CASES)
def test_actor_and_critics_equivariant_train_eval_and_after_learning(case: str) -> None:
    model = _model(case)
    for training in (True, False):
        model.policy.set_training_mode(training)
        assert_actor_critics_equivariant(model)
    model.learn(96)
    assert_actor_critics_equivariant(model)


def _outputs(model: BaseAlgorithm, obs: np.ndarray) -> th.Tensor:
    # With gradients enabled the layers rebuild their weights from the parameters (no eval cache): this compares what
    # was saved with what was loaded (the eval cache's staleness is test_target_networks_follow_polyak_updates').
    policy = model.policy
    tensor = policy.obs_to_tensor(obs)[0]
    actions = th.zeros(len(obs), *model.action_space.shape) + 0.3
    mu = policy.actor(tensor) if isinstance(model, TD3) else th.cat(policy.actor.get_action_dist_params(tensor)[:2], dim=1)
    return th.cat([mu, *policy.critic(tensor, actions), *policy.critic_target(tensor, actions)], dim=1).detach()


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("case", ["SAC Walker2d", "TD3 Pendulum", "SAC image C4"])
def test_save_load_strict_identical(case: str, training: bool, tmp_path) -> None:
    model = _model(case)
    model.learn(64)
    obs = _obs_batch(model)
    model.policy.set_training_mode(training)
    before = _outputs(model, obs)
    model.save(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 warns when it falls back to non-strict loading
        loaded = type(model).load(tmp_path / "model", device="cpu")
    loaded.policy.set_training_mode(not training)
    th.testing.assert_close(_outputs(loaded, obs), before, atol=0, rtol=0)
    assert type(loaded.policy) is type(model.policy)
    assert loaded.policy.symmetry.name == model.policy.symmetry.name
    assert_actor_critics_equivariant(loaded, obs)


INIT_CASES = {
    "DQN CartPole": (DQN, EquivariantDQNPolicy, "CartPole-v1"),
    "QRDQN CartPole": (QRDQN, EquivariantQRDQNPolicy, "CartPole-v1"),
    "SAC Walker2d": (SAC, EquivariantSACPolicy, "Walker2d-v5"),
    "TD3 Pendulum": (TD3, EquivariantTD3Policy, "Pendulum-v1"),
}


def _networks_outputs(model: BaseAlgorithm, obs: np.ndarray) -> list[th.Tensor]:
    """Every network's output: Q-values / quantiles (online and target), or actor and critics (and targets)."""
    tensor = model.policy.obs_to_tensor(obs)[0]
    with th.no_grad():
        if isinstance(model, (DQN, QRDQN)):
            nets = ("q_net", "q_net_target") if isinstance(model, DQN) else ("quantile_net", "quantile_net_target")
            return [getattr(model.policy, name)(tensor) for name in nets]
        actions = th.zeros((len(obs), *model.action_space.shape))
        return [_outputs(model, obs), *model.policy.critic(tensor, actions), *model.policy.critic_target(tensor, actions)]


@pytest.mark.parametrize("case", INIT_CASES)
def test_init_variance_exact_and_saved(case: str, tmp_path) -> None:
    algo, policy_class, env_id = INIT_CASES[case]
    env = make_symmetric_vec_env(env_id, n_envs=2, seed=0)
    model = algo(policy_class, env, policy_kwargs=dict(net_arch=[32, 32]), **OFF_POLICY)
    assert model.policy.init == "torch"  # the default
    # Every equivariant layer, hidden or head, actor or critic: torch's nn.Linear variance 1 / (3 fan_in) per dense
    # weight entry (init="he" gives 2 / fan_in in hidden layers, 1 / fan_in in heads).
    # A head of 64 inputs tied in pairs has ~32 free entries: single layers scatter by ±25%, their mean much less.
    he = algo(policy_class, env, policy_kwargs=dict(net_arch=[32, 32], init="he"), **OFF_POLICY)
    assert he.policy.init == "he"
    for policy, low, high in ((model.policy, 0.1, 0.7), (he.policy, 0.6, 3.0)):
        with th.no_grad():
            scaled = [
                float(m.weight_and_bias()[0].pow(2).mean()) * m.fan_in for m in policy.modules() if isinstance(m, BasisLayer)
            ]
        assert len(scaled) >= 3 and all(low < v < high for v in scaled), scaled
        mean_low, mean_high = (0.28, 0.39) if policy is model.policy else (1.2, 2.0)
        assert mean_low < np.mean(scaled) < mean_high, scaled
    obs = _obs_batch(model)
    # Targets start as copies of the networks they track.
    outputs = _networks_outputs(model, obs)
    if isinstance(model, (DQN, QRDQN)):
        th.testing.assert_close(outputs[0], outputs[1], atol=0, rtol=0)
        sym = model.policy.symmetry
        for g in range(len(sym)):
            g_q = _networks_outputs(model, sym.transform_obs(obs, g))[0]
            th.testing.assert_close(g_q, sym.action_rep.apply(outputs[0], g), atol=ATOL, rtol=0)
    else:
        assert_actor_critics_equivariant(model, obs)
    model.save(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = algo.load(tmp_path / "model", device="cpu")
    assert loaded.policy.init == "torch"
    for before, after in zip(outputs, _networks_outputs(loaded, obs), strict=True):
        th.testing.assert_close(after, before, atol=0, rtol=0)
    he.save(tmp_path / "he")  # a non-default init is saved too (load re-builds with it, then loads the weights)
    assert algo.load(tmp_path / "he", device="cpu").policy.init == "he"


def test_init_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown init 'xavier'; choose one of \('torch', 'he'\)"):
        DQN(EquivariantDQNPolicy, make_symmetric_env("CartPole-v1"), policy_kwargs=dict(init="xavier"))


@pytest.mark.parametrize("case", ["SAC Walker2d", "TD3 Pendulum", "SAC image C4"])
def test_export_matches_predict(case: str) -> None:
    model = _model(case)
    exported = model.policy.export()
    assert not any(isinstance(m, BasisLayer) for m in exported.modules())
    obs = _obs_batch(model)
    with th.no_grad():
        np.testing.assert_allclose(exported(th.as_tensor(obs)).numpy(), model.predict(obs, deterministic=True)[0], atol=1e-5)


@pytest.mark.parametrize("case", ["SAC Pendulum", "TD3 Pendulum", "DQN CartPole"])
def test_target_networks_follow_polyak_updates(case: str) -> None:
    if case == "DQN CartPole":  # the same for the existing DQN policy: its target network never follows the online one
        model = DQN(
            EquivariantDQNPolicy, make_symmetric_vec_env("CartPole-v1", n_envs=2, seed=0), target_update_interval=4, **OFF_POLICY
        )
    else:
        model = _model(case)
    policy = model.policy
    obs = policy.obs_to_tensor(_obs_batch(model))[0]
    actions = th.zeros(len(obs), 1)

    def target() -> th.Tensor:
        return policy.q_net_target(obs) if isinstance(model, DQN) else policy.critic_target(obs, actions)[0]

    model.learn(64)
    with th.no_grad():
        cached = target()
    # What SB3 should compute as the target, fresh from the target's parameters (grad enabled: no cache).
    th.testing.assert_close(cached, target().detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("sizing, low, high", [("parameters", 0.9, 1.1), ("channels", 1.8, 2.2), ("units", 0.4, 0.6)])
def test_default_sizes(sizing: str, low: float, high: float) -> None:
    env = make_symmetric_env("Pendulum-v1")
    for algo, policy in ((SAC, EquivariantSACPolicy), (TD3, EquivariantTD3Policy)):
        model = algo(policy, env, policy_kwargs=dict(sizing=sizing))
        ratio = count_parameters(model.policy) / count_parameters(algo("MlpPolicy", env).policy)
        assert low < ratio < high, (algo, ratio)


def test_ablation_basis_breaks_the_symmetry() -> None:
    model = SAC(EquivariantSACPolicy, make_symmetric_env("Pendulum-v1"), policy_kwargs=dict(basis="random", **SMALL))
    with pytest.raises(AssertionError):
        assert_actor_critics_equivariant(model)


def test_errors() -> None:
    with pytest.raises(ValueError, match="gSDE"):
        SAC(EquivariantSACPolicy, make_symmetric_env("Pendulum-v1"), use_sde=True)
    # A box [-1, 1] x [-1, 2] is not mapped onto itself by quarter turns.
    env = gym.wrappers.RescaleAction(PlaneImageEnv(), np.float32(-1), np.array([1, 2], np.float32))
    with pytest.raises(SymmetryError, match="does not map the action box"):
        SAC(EquivariantCnnSACPolicy, env, policy_kwargs=dict(CNN))


def test_exported_actor_runs_in_onnxruntime(tmp_path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    model = _model("TD3 Walker2d")
    exported = model.policy.export()
    obs = th.as_tensor(_obs_batch(model))
    path = str(tmp_path / "actor.onnx")
    th.onnx.export(
        exported, (obs,), path, input_names=["obs"], output_names=["action"], dynamic_axes={"obs": {0: "batch"}}, dynamo=False
    )
    (action,) = onnxruntime.InferenceSession(path).run(None, {"obs": obs.numpy()})
    np.testing.assert_allclose(action, model.predict(obs.numpy(), deterministic=True)[0], atol=1e-5)
