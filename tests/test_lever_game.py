import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from sb3_equivariant import EquivariantMlpPolicy, Symmetry, check_symmetry, get_symmetry, make_symmetric_vec_env
from sb3_equivariant.augmentation.test_time import action_probabilities, symmetrized_probabilities
from sb3_equivariant.group import cyclic_group
from sb3_equivariant.multiagent import LEVER_ID, LeverGameEnv, cross_play_scores, lever_symmetry, wildlife_symmetry
from sb3_equivariant.multiagent.lever import lever_payoffs
from sb3_equivariant.representation import permutation

pytest.importorskip("pettingzoo")
from pettingzoo.test import parallel_api_test

from sb3_equivariant.multiagent import lever_parallel_env

OBS = np.zeros((1, 1), dtype=np.float32)


def test_payoffs_and_official_checkers() -> None:
    env = LeverGameEnv()
    env.reset(seed=0)
    assert env.step(np.array([3, 3]))[1] == 1.0 and env.step(np.array([9, 9]))[1] == 0.9
    assert env.step(np.array([3, 4]))[1:3] == (0.0, True)
    gym_check_env(LeverGameEnv(), skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(LeverGameEnv())
    parallel_api_test(lever_parallel_env(), num_cycles=20)
    with pytest.raises(ValueError, match="n_levers"):
        lever_payoffs(2)


def test_symmetry_verified_and_a_corrupted_one_fails() -> None:
    env = gym.make(LEVER_ID)
    assert get_symmetry(env, required=True).name == "LeverGame-C9"
    assert check_symmetry(env, n_samples=32).passed
    # turning levers 1..9 instead of 0..8 moves the distinct lever: payoffs differ
    wrong = lever_symmetry().replace(action_rep=permutation(cyclic_group(9), {1: [0, *range(2, 10), 1]}))
    report = check_symmetry(env, wrong, n_samples=32)
    assert not report.passed and "reward" in {c.name for c in report.failures}


def test_cross_play_scores() -> None:
    payoffs = lever_payoffs()
    one_hot = np.eye(10)[[0, 4, 9]]  # three pairs, each on its own lever
    scores = cross_play_scores(one_hot, one_hot, payoffs)
    np.testing.assert_allclose(scores, np.diag([1.0, 1.0, 0.9]))
    uniform = np.full((1, 10), 0.1)
    np.testing.assert_allclose(cross_play_scores(uniform, uniform, payoffs), [[0.099]])


def test_equivariant_policy_on_multidiscrete_joint_actions_is_exact() -> None:
    env = make_symmetric_vec_env(LEVER_ID, n_envs=2, seed=0)
    model = PPO(EquivariantMlpPolicy, env, seed=0, n_steps=16, batch_size=32, n_epochs=1, policy_kwargs=dict(net_arch=[4]))
    model.learn(32)
    sym = lever_symmetry()
    actions = th.tensor([[0, 0], [3, 9], [8, 2], [9, 9]])
    obs = th.zeros((4, 1))
    with th.no_grad():
        values, log_prob, _ = model.policy.evaluate_actions(obs, actions)
        for g in sym.group.elements:
            g_values, g_log_prob, _ = model.policy.evaluate_actions(sym.transform_obs(obs, g), sym.transform_action(actions, g))
            assert (g_values - values).abs().max() <= 1e-5 and (g_log_prob - log_prob).abs().max() <= 1e-5
    probs = action_probabilities(model.policy, OBS)[0]
    th.testing.assert_close(probs[:, :9], probs[:, :1].expand(2, 9), atol=1e-6, rtol=0)  # interchangeable levers tie


def test_test_time_symmetrisation() -> None:
    env = make_symmetric_vec_env(LEVER_ID, n_envs=2, seed=0)
    model = PPO("MlpPolicy", env, seed=0, n_steps=16, batch_size=32, n_epochs=1)
    with th.no_grad():  # an arbitrary, asymmetric policy
        model.policy.action_net.bias.copy_(th.arange(20, dtype=th.float32) / 5)
    sym = lever_symmetry()
    probs = action_probabilities(model.policy, OBS)[0]
    assert (probs[:, :9].max(dim=1).values - probs[:, :9].min(dim=1).values).min() > 0.1
    symmetrised = symmetrized_probabilities(model.policy, OBS, sym)[0]
    th.testing.assert_close(symmetrised.sum(dim=1), th.ones(2))
    th.testing.assert_close(symmetrised[:, :9], probs[:, :9].mean(dim=1, keepdim=True).expand(2, 9))  # averaged orbit
    th.testing.assert_close(symmetrised[:, 9], probs[:, 9])  # the distinct lever is fixed


def test_test_time_symmetrisation_follows_agent_permutations() -> None:
    """With a symmetry that moves agents, agent i's symmetrised policy reads agent σ_g(i)'s output at g·s."""
    from sb3_equivariant.multiagent import TRAFFIC_ID, traffic_symmetry
    from sb3_equivariant.multiagent.policies import MessagePassingPolicy

    env = make_symmetric_vec_env(TRAFFIC_ID, n_envs=1, seed=0, env_kwargs=dict(car_prob=0.5))
    model = PPO(MessagePassingPolicy, env, seed=0, n_steps=8, batch_size=8)
    obs = env.reset()
    obs["view"][:, :, 2] = (np.random.default_rng(0).random(obs["view"][:, :, 2].shape) > 0.7).astype(np.float32)
    sym: Symmetry = traffic_symmetry()
    symmetrised = symmetrized_probabilities(model.policy, obs, sym)
    for g in sym.group.elements:  # exactly equivariant: π̄_{σ_g(i)}(K_g a | g·s) = π̄_i(a | s)
        turned = symmetrized_probabilities(model.policy, sym.transform_obs(obs, g), sym)
        expected = th.empty_like(symmetrised)
        slots, moves = sym.agents.permutations[g], sym.action_permutations[g]  # type: ignore[union-attr]
        for i in range(4):
            expected[:, slots[i], moves] = symmetrised[:, i, :]
        th.testing.assert_close(turned, expected, atol=1e-6, rtol=0)
    assert wildlife_symmetry().agents is None
