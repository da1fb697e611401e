"""The symmetry (mirror) loss: its value, its gradients, and SymmetricPPO's use and logging of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor

from sb3_equivariant.augmentation import SymmetricA2C, SymmetricPPO, SymmetrizedActorCriticPolicy, symmetry_loss
from sb3_equivariant.augmentation.algorithms import add_to_loss
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.group import cyclic_group, flip_group, trivial_group
from sb3_equivariant.representation import ImageAction, permutation, rotation_action, signed_permutation


def acrobot_symmetry() -> Symmetry:
    obs = signed_permutation(flip_group(), None, {1: [1, -1, 1, -1, -1, -1]})
    return Symmetry(obs, permutation(flip_group(), {1: [2, 1, 0]}))


def gridworld_symmetry() -> Symmetry:
    return Symmetry(ImageAction(rotation_action(), channels=1), permutation(cyclic_group(4), {1: [0, 2, 3, 4, 1]}))


def pendulum_symmetry() -> Symmetry:
    return Symmetry(signed_permutation(flip_group(), None, {1: [1, -1, -1]}), signed_permutation(flip_group(), None, {1: [-1]}))


CASES = {
    "acrobot": (acrobot_symmetry, spaces.Box(-5, 5, (6,), np.float32), spaces.Discrete(3)),
    "gridworld": (gridworld_symmetry, spaces.Box(0, 255, (1, 7, 7), np.uint8), spaces.Discrete(5)),
    "pendulum": (pendulum_symmetry, spaces.Box(-5, 5, (3,), np.float32), spaces.Box(-2, 2, (1,), np.float32)),
}


def random_obs(space: spaces.Box, n: int) -> th.Tensor:
    rng = np.random.default_rng(0)
    if space.dtype == np.uint8:
        return th.as_tensor(rng.integers(0, 256, size=(n, *space.shape), dtype=np.uint8))
    return th.as_tensor(rng.normal(size=(n, *space.shape)).astype(np.float32))


def make_policy(case: str, cls: type[ActorCriticPolicy] = ActorCriticPolicy, **kwargs) -> ActorCriticPolicy:
    _, obs_space, act_space = CASES[case]
    th.manual_seed(0)
    policy = cls(obs_space, act_space, lambda _: 1e-3, net_arch=[16], **kwargs)
    with th.no_grad():
        for name, param in policy.named_parameters():
            if name.endswith("bias"):
                param.add_(th.randn_like(param))
    return policy


@pytest.mark.parametrize("case", list(CASES))
def test_loss_matches_its_definition(case: str) -> None:
    sym = CASES[case][0]()
    policy = make_policy(case)
    obs = random_obs(CASES[case][1], 7)
    loss = symmetry_loss(policy, obs, sym)
    with th.no_grad():
        expected = _per_sample_losses(policy, obs, sym)
    assert loss.item() == pytest.approx(np.mean(expected), rel=1e-5, abs=1e-8)
    assert loss.item() > 1e-6  # the perturbed network is not equivariant
    loss.backward()
    grads = [p.grad for p in policy.parameters() if p.grad is not None]
    assert grads and max(float(g.abs().max()) for g in grads) > 0


def _per_sample_losses(policy: ActorCriticPolicy, obs: th.Tensor, sym: Symmetry) -> list[float]:
    expected = []
    for g in range(1, len(sym)):
        for i in range(len(obs)):
            here = policy.get_distribution(obs[i : i + 1]).distribution
            there = policy.get_distribution(sym.transform_obs(obs[i : i + 1], g)).distribution
            if isinstance(here, th.distributions.Categorical):
                # π(K_g a | L_g s) against π(a | s), action by action.
                perm = sym.action_permutations[g]
                diff = [there.probs[0, perm[a]] - here.probs[0, a] for a in range(here.probs.shape[1])]
            else:
                diff = list(there.mean[0] - sym.action_rep.apply(here.mean, g)[0])
            expected.append(sum(float(d) ** 2 for d in diff))
    return expected


@pytest.mark.parametrize("case", list(CASES))
def test_loss_vanishes_on_an_equivariant_policy(case: str) -> None:
    sym = CASES[case][0]()
    policy = make_policy(case, SymmetrizedActorCriticPolicy, symmetry=sym)
    assert symmetry_loss(policy, random_obs(CASES[case][1], 7), sym).item() < 1e-10


def test_trivial_group_and_unsupported_distributions() -> None:
    trivial = Symmetry(signed_permutation(trivial_group(), None, [[1] * 6]), permutation(trivial_group(), [[0, 1, 2]]))
    policy = make_policy("acrobot")
    assert symmetry_loss(policy, random_obs(CASES["acrobot"][1], 3), trivial).item() == 0.0
    multi = ActorCriticPolicy(spaces.Box(-1, 1, (6,)), spaces.MultiDiscrete([3, 3]), lambda _: 1e-3)
    with pytest.raises(SymmetryError, match="supports Categorical and Gaussian"):
        symmetry_loss(multi, th.zeros(2, 6), acrobot_symmetry())


def test_add_to_loss_keeps_the_value_and_adds_the_gradient_once() -> None:
    w = th.randn(5, requires_grad=True)
    carried = add_to_loss(2 * w, (w**3).sum())
    th.testing.assert_close(carried, 2 * w, atol=0, rtol=0)

    def loss(x: th.Tensor) -> th.Tensor:
        return (x.sin() * x).sum() + x.mean()  # uses x twice: the added loss still counts once

    (got,) = th.autograd.grad(loss(carried), w)
    (expected,) = th.autograd.grad(loss(2 * w) + (w**3).sum(), w)
    th.testing.assert_close(got, expected)


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_stock_train_gets_the_symmetry_loss_gradient(algo: str) -> None:
    """One SB3 train() step: the gradient with coefficient c is the stock one plus c times the symmetry loss's."""
    coef, sym, grads = 3.0, acrobot_symmetry(), {}
    for c in (0.0, coef):
        env = make_vec_env("Acrobot-v1", n_envs=2, seed=0)
        common = dict(symmetry=sym, augment=None, symmetry_loss_coef=c, n_steps=16, max_grad_norm=1e9, seed=0, device="cpu")
        if algo == "ppo":
            model = SymmetricPPO("MlpPolicy", env, batch_size=32, n_epochs=1, **common)  # one minibatch: the rollout
        else:
            model = SymmetricA2C("MlpPolicy", env, **common)
        params = list(model.policy.parameters())
        captured: list[list[th.Tensor]] = []
        model.policy.optimizer.step = lambda *_, out=captured, ps=params: out.append([p.grad.clone() for p in ps])
        model.learn(32)
        assert len(captured) == 1 and "evaluate_actions" not in vars(model.policy)  # the hook is removed after train
        grads[c] = captured[0]
    obs = th.as_tensor(model.rollout_buffer.observations.reshape(32, 6))
    sym_grads = th.autograd.grad(symmetry_loss(model.policy, obs, sym), params, allow_unused=True)
    for with_loss, stock, extra in zip(grads[coef], grads[0.0], sym_grads):
        expected = stock if extra is None else stock + coef * extra
        th.testing.assert_close(with_loss, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_tiny_coefficient_reproduces_the_stock_algorithm(algo: str) -> None:
    """SB3's own update runs: with a negligible coefficient the weights match the stock algorithm's exactly."""
    stock, symmetric = (PPO, SymmetricPPO) if algo == "ppo" else (A2C, SymmetricA2C)
    kwargs = dict(n_steps=32, batch_size=16, n_epochs=2, clip_range_vf=0.2) if algo == "ppo" else dict(n_steps=8)
    models = []
    for cls, extra in ((stock, {}), (symmetric, dict(symmetry=acrobot_symmetry(), augment=None, symmetry_loss_coef=1e-30))):
        env = make_vec_env("Acrobot-v1", n_envs=2, seed=0)
        model = cls("MlpPolicy", env, seed=0, device="cpu", **kwargs, **extra)
        model.learn(64)
        models.append(model)
    for p, q in zip(models[0].policy.parameters(), models[1].policy.parameters()):
        th.testing.assert_close(p, q, atol=1e-6, rtol=0)
    assert models[1]._n_updates == models[0]._n_updates > 0


class Capture(KVWriter):
    """Keeps every dump of SB3's logger."""

    def __init__(self) -> None:
        self.dumps: list[dict] = []

    def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
        self.dumps.append(dict(key_values))


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_symmetry_loss_is_logged_and_reduced(algo: str) -> None:
    losses, logged = {}, {}
    obs = obs_as_tensor(np.random.default_rng(1).normal(size=(256, 6)).astype(np.float32), "cpu")
    for coef in (0.0, 10.0):
        env = make_vec_env("Acrobot-v1", n_envs=4, seed=0)
        common = dict(symmetry=acrobot_symmetry(), augment=None, symmetry_loss_coef=coef, seed=0, device="cpu")
        if algo == "ppo":
            model = SymmetricPPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=4, **common)
        else:
            model = SymmetricA2C("MlpPolicy", env, n_steps=64, **common)
        capture = Capture()
        model.set_logger(Logger(None, [capture]))
        model.learn(1024, log_interval=1)
        with th.no_grad():
            losses[coef] = symmetry_loss(model.policy, obs, acrobot_symmetry()).item()
        logged[coef] = [d["train/symmetry_loss"] for d in capture.dumps if "train/symmetry_loss" in d]
    assert logged[0.0] == []  # coefficient 0 runs the stock train()
    assert len(logged[10.0]) == 3 and all(v >= 0 for v in logged[10.0])  # logged at each dump after an update
    assert losses[10.0] < 0.5 * losses[0.0]
