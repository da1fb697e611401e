import warnings

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_equivariant import SymmetryError, get_symmetry, make_symmetric_vec_env
from sb3_equivariant.augmentation import SymmetricDictRolloutBuffer, SymmetricRolloutBuffer, SymmetryCallback
from sb3_equivariant.multiagent import TRAFFIC_ID, WILDLIFE_ID, traffic_symmetry, wildlife_symmetry
from sb3_equivariant.multiagent.policies import EquivariantMessagePassingPolicy, MessagePassingPolicy, neighbor_mask
from sb3_equivariant.policies.common import count_parameters

KWARGS = dict(n_steps=8, batch_size=8, n_epochs=1)


def _env(n_agents: int = 3, n_envs: int = 2) -> VecEnv:
    return make_symmetric_vec_env(WILDLIFE_ID, n_envs=n_envs, seed=0, env_kwargs=dict(n_agents=n_agents))


def _batch(env: VecEnv, n: int = 6) -> tuple[dict[str, th.Tensor], th.Tensor]:
    """Observations from a few random steps, and random joint actions."""
    env.action_space.seed(0)
    obs = [env.reset()]
    for _ in range(n // env.num_envs - 1):
        obs.append(env.step(np.stack([env.action_space.sample() for _ in range(env.num_envs)]))[0])
    stacked = {key: th.as_tensor(np.concatenate([o[key] for o in obs])) for key in obs[0]}
    actions = th.as_tensor(np.stack([env.action_space.sample() for _ in range(len(stacked["view"]))]))
    return stacked, actions


def _max_error(model: BaseAlgorithm, obs: dict[str, th.Tensor], actions: th.Tensor, traffic: bool = False) -> float:
    """Largest |log π(g·a | g·s) − log π(a | s)| and |V(g·s) − V(s)| over every group element."""
    sym = traffic_symmetry() if traffic else wildlife_symmetry(n_agents=obs["position"].shape[1])
    policy = model.policy
    with th.no_grad():
        values, log_prob, _ = policy.evaluate_actions(obs, actions)
        error = 0.0
        for g in sym.group.elements:
            g_values, g_log_prob, _ = policy.evaluate_actions(sym.transform_obs(obs, g), sym.transform_action(actions, g))
            error = max(error, float((g_values - values).abs().max()), float((g_log_prob - log_prob).abs().max()))
    return error


@pytest.mark.parametrize("algo", [PPO, A2C])
@pytest.mark.parametrize("training", [True, False])
def test_equivariant_policy_exact_before_and_after_learning(algo: type[BaseAlgorithm], training: bool) -> None:
    env = _env()
    kwargs = KWARGS if algo is PPO else dict(n_steps=8)
    model = algo(EquivariantMessagePassingPolicy, env, seed=0, policy_kwargs=dict(radius=2.0, period=5), **kwargs)
    obs, actions = _batch(env)
    model.policy.set_training_mode(training)
    assert _max_error(model, obs, actions) <= 1e-5
    before = model.policy.evaluate_actions(obs, actions)[1].detach()
    model.learn(32)
    model.policy.set_training_mode(training)
    after = model.policy.evaluate_actions(obs, actions)[1].detach()
    assert not th.allclose(before, after)  # learning changed the policy...
    assert _max_error(model, obs, actions) <= 1e-5  # ...which stayed exactly equivariant


@pytest.mark.parametrize("training", [True, False])
def test_equivariant_policy_exact_when_lights_permute(training: bool) -> None:
    """TrafficLights: a quarter turn moves every light to another junction and swaps phases."""
    env = make_symmetric_vec_env(TRAFFIC_ID, n_envs=2, seed=0, env_kwargs=dict(car_prob=0.5))
    model = PPO(EquivariantMessagePassingPolicy, env, seed=0, policy_kwargs=dict(radius=1.0), **KWARGS)
    obs, actions = _batch(env, n=8)
    obs["view"][:, :, 2] = (th.rand(obs["view"][:, :, 2].shape) > 0.7).float()  # busy roads, different per light
    model.policy.set_training_mode(training)
    assert _max_error(model, obs, actions, traffic=True) <= 1e-5
    model.learn(16)
    model.policy.set_training_mode(training)
    assert _max_error(model, obs, actions, traffic=True) <= 1e-5
    plain = PPO(MessagePassingPolicy, env, seed=0, policy_kwargs=dict(radius=1.0), **KWARGS)
    assert _max_error(plain, obs, actions, traffic=True) > 1e-3


def test_standard_policy_is_not_equivariant() -> None:
    env = _env()
    model = PPO(MessagePassingPolicy, env, seed=0, policy_kwargs=dict(radius=2.0, period=5), **KWARGS)
    obs, actions = _batch(env)
    assert _max_error(model, obs, actions) > 1e-3
    # same architecture, about as many parameters as the equivariant one
    equivariant = PPO(EquivariantMessagePassingPolicy, env, policy_kwargs=dict(radius=2.0, period=5), **KWARGS)
    assert 0.8 < count_parameters(equivariant.policy) / count_parameters(model.policy) < 1.2


@pytest.mark.parametrize("training", [True, False])
def test_save_load_strict_identical(training: bool, tmp_path) -> None:
    env = _env()
    model = PPO(EquivariantMessagePassingPolicy, env, seed=0, policy_kwargs=dict(radius=1.5, period=5, rounds=1), **KWARGS)
    model.learn(16)
    obs, actions = _batch(env)
    model.policy.set_training_mode(training)
    before = model.policy.evaluate_actions(obs, actions)[:2]
    model.save(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 warns when it falls back to non-strict loading
        loaded = PPO.load(tmp_path / "model", device="cpu")
    loaded.policy.set_training_mode(not training)
    after = loaded.policy.evaluate_actions(obs, actions)[:2]
    for x, y in zip(before, after):
        th.testing.assert_close(x, y, atol=0, rtol=0)
    assert type(loaded.policy) is EquivariantMessagePassingPolicy
    assert loaded.policy.mp_kwargs == model.policy.mp_kwargs
    assert _max_error(loaded, obs, actions) <= 1e-5


def _logits(policy: MessagePassingPolicy, obs: dict[str, th.Tensor]) -> th.Tensor:
    with th.no_grad():
        dist = policy.get_distribution(obs)
    return th.stack([d.logits for d in dist.distribution], dim=1)  # [B, n_agents, 5]


def _chain_obs(positions: list[tuple[int, int]], seed: int) -> dict[str, th.Tensor]:
    gen = th.Generator().manual_seed(seed)
    n = len(positions)
    return {
        "view": (th.rand((1, n, 1, 15, 15), generator=gen) > 0.8).float(),
        "position": th.tensor([positions], dtype=th.float32),
    }


@pytest.mark.parametrize("policy_class", [EquivariantMessagePassingPolicy, MessagePassingPolicy])
@pytest.mark.parametrize("rounds", [1, 2])
def test_communication_is_local(policy_class: type[MessagePassingPolicy], rounds: int) -> None:
    """Agent 0 hears agent 1 (distance 1); agent 2 is 1 from agent 1 but 2 from agent 0; agent 3 is out of reach."""
    env = _env(n_agents=4, n_envs=1)
    model = PPO(policy_class, env, seed=0, policy_kwargs=dict(radius=1.0, rounds=rounds), **KWARGS)
    positions = [(0, 0), (0, 1), (0, 2), (-2, -2)]
    obs = _chain_obs(positions, seed=0)
    base = _logits(model.policy, obs)

    def changed(agent: int) -> th.Tensor:
        other = dict(obs)
        other["view"] = obs["view"].clone()
        other["view"][0, agent] = 1.0 - other["view"][0, agent]  # a completely different view of that agent
        return (_logits(model.policy, other) - base).abs().amax(dim=-1)[0]  # change of each agent's logits

    assert changed(1)[0] > 1e-6  # a neighbor's view reaches agent 0
    assert changed(2)[0] > 1e-6 if rounds == 2 else changed(2)[0] == 0  # two hops away: only with two rounds
    assert changed(3)[:3].max() == 0  # an agent out of everyone's reach influences no one


def test_neighbor_mask_radius_and_torus() -> None:
    positions = th.tensor([[[2.0, 0.0], [-2.0, 0.0], [0.0, 0.0]]])
    relative = positions[:, None] - positions[:, :, None]
    expected = th.tensor([[0, 0, 0], [0, 0, 0], [0, 0, 0.0]])
    th.testing.assert_close(neighbor_mask(relative, 1.5)[0], expected)
    th.testing.assert_close(neighbor_mask(relative, None)[0], 1 - th.eye(3))
    env = _env(n_agents=3, n_envs=1)
    model = PPO(MessagePassingPolicy, env, policy_kwargs=dict(radius=1.5, period=5), **KWARGS)
    wrapped = model.policy.features_extractor.relative_positions(positions)  # on the 5x5 torus rows 2 and -2 touch
    th.testing.assert_close(neighbor_mask(wrapped, 1.5)[0], th.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0.0]]))


def test_batched_over_envs_equals_one_by_one() -> None:
    env = _env()
    model = PPO(EquivariantMessagePassingPolicy, env, seed=0, policy_kwargs=dict(radius=2.0, period=5), **KWARGS)
    obs, actions = _batch(env)
    with th.no_grad():
        values = model.policy.predict_values(obs)
        single = th.cat([model.policy.predict_values({k: v[i : i + 1] for k, v in obs.items()}) for i in range(len(actions))])
    th.testing.assert_close(values, single, atol=1e-6, rtol=0)


def test_clear_errors() -> None:
    env = _env()
    with pytest.raises(ValueError, match="Dict observation"):
        MessagePassingPolicy(spaces.Box(0, 1, (3, 4)), env.action_space, lambda _: 1e-3)
    with pytest.raises(ValueError, match="MultiDiscrete"):
        MessagePassingPolicy(env.observation_space, spaces.Discrete(5), lambda _: 1e-3)
    with pytest.raises(ValueError, match="net_arch cannot be set"):
        PPO(MessagePassingPolicy, env, policy_kwargs=dict(net_arch=[64]))
    with pytest.raises(SymmetryError, match="no symmetry found"):
        EquivariantMessagePassingPolicy(env.observation_space, env.action_space, lambda _: 1e-3)
    with pytest.raises(ValueError, match="is not exactly equivariant"):
        PPO(EquivariantMessagePassingPolicy, env, policy_kwargs=dict(strides=(3, 1)))


@pytest.mark.parametrize("env_id", [WILDLIFE_ID, TRAFFIC_ID])
@pytest.mark.parametrize("augment", ["random", "all"])
def test_rollout_augmentation_with_dict_observations_and_joint_actions(env_id: str, augment: str) -> None:
    """The augment_random / augment_all baselines on the joint envs: SB3 gets a Dict rollout buffer, every sample is
    its source transformed, and the old log-probabilities / values are those of the collecting policy."""
    env = make_symmetric_vec_env(env_id, n_envs=2, seed=0)
    model = PPO(
        MessagePassingPolicy,
        env,
        seed=0,
        rollout_buffer_class=SymmetricRolloutBuffer,
        rollout_buffer_kwargs=dict(augment=augment),
        learning_rate=0.0,
        **KWARGS,
    )
    buffer = model.rollout_buffer
    assert isinstance(buffer, SymmetricDictRolloutBuffer)
    stored: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
    original_add = buffer.add

    def add(obs, action, *args, **kwargs):  # type: ignore[no-untyped-def]
        stored.append(({k: v.copy() for k, v in obs.items()}, action.copy()))
        return original_add(obs, action, *args, **kwargs)

    buffer.add = add  # type: ignore[method-assign]
    model.learn(16, callback=SymmetryCallback())
    record = buffer.last_record
    sym = get_symmetry(env, required=True)
    assert len(buffer.actions) == 16 * (len(sym) if augment == "all" else 1)
    for i, (step, env_index, g) in enumerate(zip(record.batch_indices, record.env_indices, record.elements)):
        source_obs, source_action = stored[step]
        expected = sym.transform_obs({k: v[env_index] for k, v in source_obs.items()}, int(g))
        for key, value in expected.items():
            np.testing.assert_array_equal(buffer.observations[key][i], value)
        np.testing.assert_array_equal(buffer.actions[i], sym.transform_action(source_action[env_index], int(g)))
    moved = np.flatnonzero(record.elements != 0)
    assert moved.size
    obs_t = {k: th.as_tensor(v[moved]) for k, v in buffer.observations.items()}
    with th.no_grad():  # learning_rate=0: the policy is still the collecting one
        values, log_prob, _ = model.policy.evaluate_actions(obs_t, th.as_tensor(buffer.actions[moved]))
    np.testing.assert_allclose(buffer.values[moved, 0], values[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(buffer.log_probs[moved, 0], np.maximum(log_prob.numpy(), -20.0), atol=1e-5)


@pytest.mark.parametrize("method", ["baseline", "equivariant", "nullspace", "augment_random"])
@pytest.mark.parametrize("env_id", [WILDLIFE_ID, TRAFFIC_ID])
def test_zoo_stubs_build_on_plain_envs(method: str, env_id: str) -> None:
    """rl_zoo3's route: a plain make_vec_env(env_id); the policy finds the symmetry through the registry."""
    import importlib

    from stable_baselines3.common.env_util import make_vec_env

    from sb3_equivariant.benchmark.config import ZOO_CONFIGS

    namespace: dict = {}
    exec((ZOO_CONFIGS / f"ppo_multiagent_{method}.py").read_text(), namespace)
    params = dict(namespace["hyperparams"][env_id])
    module, name = params.pop("policy").rsplit(".", 1)  # as rl_zoo3 imports a dotted policy
    policy = getattr(importlib.import_module(module), name)
    kwargs = {k: v for k, v in params.items() if k not in ("n_envs", "n_timesteps", "callback")}
    model = PPO(policy, make_vec_env(env_id, n_envs=2), device="cpu", **kwargs)
    assert isinstance(model.policy, EquivariantMessagePassingPolicy) == (method in ("equivariant", "nullspace"))
    assert isinstance(model.policy, MessagePassingPolicy)
    assert isinstance(model.rollout_buffer, SymmetricDictRolloutBuffer) == (method == "augment_random")
    if method in ("equivariant", "nullspace"):
        assert model.policy.basis == method


def test_neighbour_mask_is_a_deprecated_alias() -> None:
    from sb3_equivariant.multiagent.policies import neighbour_mask

    relative = th.randn(2, 3, 3, 2)
    with pytest.warns(DeprecationWarning, match="use neighbor_mask"):
        th.testing.assert_close(neighbour_mask(relative, 1.0), neighbor_mask(relative, 1.0))
