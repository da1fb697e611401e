"""The one resolution path of the symmetry: explicit ``symmetry=`` else the env's, found on the algorithm building us."""

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN, RecurrentPPO
from stable_baselines3 import DQN, PPO, SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_equivariant import SymmetricVecNormalize, make_symmetric_env, make_symmetric_vec_env
from sb3_equivariant import policies as eq
from sb3_equivariant.augmentation import (
    SymmetricPPO,
    SymmetricReplayBuffer,
    SymmetricRolloutBuffer,
    SymmetrizedActorCriticPolicy,
    SymmetrizedDQNPolicy,
)
from sb3_equivariant.envs import Symmetry, SymmetryError, discovery, symmetry_for
from sb3_equivariant.envs.discovery import to_channel_first
from sb3_equivariant.policies import EquivariantMlpPolicy
from sb3_equivariant.policies import base as policy_base
from sb3_equivariant.representation import ImageAction

DATA = Path(__file__).parent / "data"
TINY = dict(net_arch=[2])


class BuildInsideCallback(BaseCallback):
    """At the start of training, builds a second model on another env, and a bare policy."""

    def _on_training_start(self) -> None:
        self.outer_kwargs = dict(self.model.policy_kwargs)
        self.inner = PPO(
            EquivariantMlpPolicy, make_symmetric_vec_env("Acrobot-v1", n_envs=1), n_steps=8, batch_size=8, device="cpu"
        )
        with pytest.raises(SymmetryError, match="no symmetry found"):  # not the training model's env
            EquivariantMlpPolicy(self.model.observation_space, self.model.action_space, lambda _: 1e-3)
        with pytest.raises(SymmetryError, match="no symmetry found"):
            SymmetrizedActorCriticPolicy(self.model.observation_space, self.model.action_space, lambda _: 1e-3)
        self.unresolved = SymmetricReplayBuffer(8, self.model.observation_space, self.model.action_space)

    def _on_step(self) -> bool:
        return True


def test_model_built_in_a_callback_gets_its_own_symmetry() -> None:
    outer = PPO(EquivariantMlpPolicy, make_symmetric_vec_env("CartPole-v1", n_envs=1), n_steps=8, batch_size=8, device="cpu")
    callback = BuildInsideCallback()
    outer.learn(8, callback=callback)
    assert outer.policy.symmetry.name == "CartPole-mirror"
    assert callback.inner.policy.symmetry.name == symmetry_for("Acrobot-v1").name != "CartPole-mirror"
    assert callback.inner.policy_kwargs["symmetry"] is callback.inner.policy.symmetry
    assert outer.policy_kwargs == callback.outer_kwargs and outer.policy_kwargs["symmetry"] is outer.policy.symmetry
    assert callback.unresolved.symmetry is None  # left for set_env, not taken from the training model


def test_stack_is_walked_once_per_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counting(obj: object) -> object:
        calls.append(type(obj).__name__)
        return discovery.constructing_algorithm(obj)

    monkeypatch.setattr(policy_base, "constructing_algorithm", counting)
    model = PPO(EquivariantMlpPolicy, make_symmetric_vec_env("CartPole-v1", n_envs=1), n_steps=8, batch_size=8)
    assert calls == ["EquivariantActorCriticPolicy"] and model.policy.symmetry.name == "CartPole-mirror"


@pytest.mark.parametrize(
    "algo, policy, env_id",
    [
        (PPO, EquivariantMlpPolicy, "CartPole-v1"),
        (RecurrentPPO, eq.EquivariantMlpLstmPolicy, "CartPole-v1"),
        (DQN, eq.EquivariantDQNPolicy, "CartPole-v1"),
        (QRDQN, eq.EquivariantQRDQNPolicy, "CartPole-v1"),
        (SAC, eq.EquivariantSACPolicy, "Pendulum-v1"),
        (TD3, eq.EquivariantTD3Policy, "Pendulum-v1"),
        (PPO, SymmetrizedActorCriticPolicy, "CartPole-v1"),
        (DQN, SymmetrizedDQNPolicy, "CartPole-v1"),
    ],
)
def test_every_policy_takes_a_registry_id_on_a_plain_env(algo: type, policy: type, env_id: str) -> None:
    kwargs = {"symmetry": env_id} if "Symmetrized" in policy.__name__ else {"symmetry": env_id, **TINY}
    extra = dict(buffer_size=64) if algo in (DQN, QRDQN, SAC, TD3) else dict(n_steps=8, batch_size=8)
    model = algo(policy, gym.make(env_id), policy_kwargs=kwargs, device="cpu", **extra)
    assert model.policy.symmetry.name == symmetry_for(env_id).name


@pytest.mark.parametrize(
    "algo, policy", [(PPO, EquivariantMlpPolicy), (DQN, eq.EquivariantDQNPolicy), (PPO, SymmetrizedActorCriticPolicy)]
)
def test_env_without_symmetry_is_explained_as_make_symmetric_env_does(algo: type, policy: type) -> None:
    with pytest.raises(SymmetryError) as made:
        make_symmetric_env("MountainCar-v0")
    with pytest.raises(SymmetryError) as built:
        algo(policy, make_vec_env("MountainCar-v0", n_envs=1), device="cpu")
    assert str(made.value) in str(built.value) and policy.__name__ in str(built.value)


def test_channel_first_adaptation_keeps_the_state_transform() -> None:
    sym = symmetry_for("sb3_equivariant/GridWorld-v0")
    action = sym.obs_action
    assert isinstance(action, ImageAction)
    raw = sym.replace(obs_action=action.with_layout("HWC"), state_transform=lambda state, g: state)
    adapted = to_channel_first(raw, gym.spaces.Box(0, 255, (action.channels, 7, 7), np.uint8))
    assert isinstance(adapted.obs_action, ImageAction) and adapted.obs_action.layout == "CHW"
    assert adapted.state_transform is raw.state_transform and adapted.name == raw.name


@pytest.mark.parametrize("build", ["equivariant", "augmentation", "symmetry loss"])
def test_one_normalization_warning_not_for_the_symmetric_statistics(build: str) -> None:
    def make(wrapper: type) -> None:
        env = wrapper(make_symmetric_vec_env("CartPole-v1", n_envs=1))
        if build == "equivariant":
            PPO(EquivariantMlpPolicy, env, n_steps=8, batch_size=8, device="cpu")
        else:
            loss = 1.0 if build == "symmetry loss" else 0.0
            augment = None if loss else "random"
            SymmetricPPO("MlpPolicy", env, augment=augment, symmetry_loss_coef=loss, n_steps=8, batch_size=8)

    with pytest.warns(UserWarning, match="normalizes each observation dimension") as caught:
        make(VecNormalize)
    assert {str(w.message) for w in caught if "VecNormalize" in str(w.message)} == {
        "VecNormalize(norm_obs=True) normalizes each observation dimension with its own running statistics, which "
        "break CartPole-mirror: the symmetry is exact on normalized observations only if the statistics respect it; "
        "use sb3_equivariant.SymmetricVecNormalize instead"
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*VecNormalize.*")
        make(SymmetricVecNormalize)


def test_replay_buffer_does_not_warn_about_normalization() -> None:
    # Replay buffers transform raw observations, before VecNormalize normalizes them.
    env = VecNormalize(make_symmetric_vec_env("CartPole-v1", n_envs=1))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*VecNormalize.*")
        DQN("MlpPolicy", env, buffer_size=64, replay_buffer_class=SymmetricReplayBuffer, device="cpu")


def test_models_saved_by_the_previous_release_load() -> None:
    """Zips written by main at 8208e1f (replay buffer kwarg ``mode=``, symmetry recorded in the stored kwargs)."""
    expected = np.load(DATA / "main_outputs.npz")
    obs = th.as_tensor(expected["obs"])
    ppo = PPO.load(DATA / "main_ppo_cartpole.zip", device="cpu")
    with th.no_grad():
        logits = ppo.policy.get_distribution(obs).distribution.logits.numpy()
    np.testing.assert_allclose(logits, expected["ppo_logits"], atol=1e-6, rtol=0)
    with pytest.warns(DeprecationWarning, match="mode= is deprecated, use augment="):
        dqn = DQN.load(DATA / "main_dqn_cartpole.zip", device="cpu")
    with th.no_grad():
        np.testing.assert_allclose(dqn.q_net(obs).numpy(), expected["dqn_q"], atol=1e-6, rtol=0)
    dqn.load_replay_buffer(DATA / "main_dqn_cartpole_buffer.pkl")
    buffer = dqn.replay_buffer
    assert isinstance(buffer, SymmetricReplayBuffer) and buffer.augment == "store" and buffer.size() > 0


def test_loading_a_model_with_the_wrong_algorithm_names_the_right_policy(tmp_path: Path) -> None:
    PPO(EquivariantMlpPolicy, make_symmetric_vec_env("CartPole-v1", n_envs=1), n_steps=8, device="cpu").save(tmp_path / "m")
    with pytest.raises(TypeError, match="not a policy for DQN: use EquivariantDQNPolicy"):
        DQN.load(tmp_path / "m", device="cpu")


def test_replay_mode_keyword_is_a_deprecated_alias_of_augment() -> None:
    space, actions = gym.spaces.Box(-5, 5, (4,), np.float32), gym.spaces.Discrete(2)
    with pytest.warns(DeprecationWarning, match="mode= is deprecated, use augment="):
        old = SymmetricReplayBuffer(8, space, actions, symmetry="CartPole-v1", mode="all")
    assert old.augment == "all"
    with pytest.warns(DeprecationWarning, match=r"\.mode is deprecated"):
        assert old.mode == "all"
    with pytest.raises(TypeError, match="pass augment= only"):
        SymmetricReplayBuffer(8, space, actions, symmetry="CartPole-v1", augment="all", mode="all")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert SymmetricReplayBuffer(8, space, actions, symmetry="CartPole-v1", augment="store").augment == "store"


def test_rollout_buffer_takes_the_symmetry_of_the_model_building_it() -> None:
    model = PPO("MlpPolicy", make_symmetric_vec_env("CartPole-v1", n_envs=1), n_steps=8, batch_size=8,
                rollout_buffer_class=SymmetricRolloutBuffer, device="cpu")  # fmt: skip
    assert isinstance(model.rollout_buffer, SymmetricRolloutBuffer)
    assert (
        isinstance(model.rollout_buffer.symmetry, Symmetry) and model.rollout_buffer_kwargs["symmetry"].name == "CartPole-mirror"
    )


def test_test_time_symmetrization_takes_a_registry_id_and_checks_the_spaces() -> None:
    from sb3_equivariant.augmentation import symmetrized_probabilities

    model = PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=8, batch_size=8, device="cpu")
    obs = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    by_id = symmetrized_probabilities(model.policy, obs, "CartPole-v1")
    th.testing.assert_close(by_id, symmetrized_probabilities(model.policy, obs, symmetry_for("CartPole-v1")))
    with pytest.raises(SymmetryError, match=r"symmetrized_probabilities: .*Discrete\(2\) action space needs"):
        symmetrized_probabilities(model.policy, obs, "Acrobot-v1")


@pytest.mark.parametrize(
    "module, old, new",
    [
        ("sb3_equivariant.augmentation", "SymmetrisedActorCriticPolicy", "SymmetrizedActorCriticPolicy"),
        ("sb3_equivariant.augmentation", "SymmetrisedQRDQNPolicy", "SymmetrizedQRDQNPolicy"),
        ("sb3_equivariant.augmentation", "symmetrised_probabilities", "symmetrized_probabilities"),
        ("sb3_equivariant.augmentation.symmetrised", "SymmetrisedDQNCnnPolicy", "SymmetrizedDQNCnnPolicy"),
        ("sb3_equivariant.augmentation.symmetrised", "SymmetrisedQuantileNetwork", "SymmetrizedQuantileNetwork"),
        ("sb3_equivariant.augmentation.test_time", "symmetrised_probabilities", "symmetrized_probabilities"),
    ],
)
def test_british_names_are_deprecated_aliases(module: str, old: str, new: str) -> None:
    import importlib

    import sb3_equivariant.augmentation as augmentation

    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated, use {new}"):
        obj = getattr(importlib.import_module(module), old)
    assert obj is getattr(augmentation, new)
    assert not hasattr(importlib.import_module(module), "Nope")  # other names: a plain AttributeError


@pytest.mark.parametrize("module", ["sb3_equivariant.augmentation", "sb3_equivariant.augmentation.symmetrised"])
def test_classes_added_after_the_renaming_have_no_british_alias(module: str) -> None:
    import importlib

    assert not hasattr(importlib.import_module(module), "SymmetrisedSACPolicy")


def test_model_saved_with_a_british_class_path_loads() -> None:
    expected = np.load(DATA / "main_outputs.npz")
    with pytest.warns(DeprecationWarning, match="SymmetrisedActorCriticPolicy is deprecated"):
        model = PPO.load(DATA / "main_symmetrised_ppo_cartpole.zip", device="cpu")
    assert type(model.policy) is SymmetrizedActorCriticPolicy
    with th.no_grad():
        logits = model.policy.get_distribution(th.as_tensor(expected["obs"])).distribution.logits.numpy()
    np.testing.assert_allclose(logits, expected["symmetrised_logits"], atol=1e-6, rtol=0)
