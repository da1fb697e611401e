import warnings

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from sb3_equivariant import EquivariantMlpPolicy, SymmetricVecNormalize, SymmetryError, make_symmetric_vec_env


def _filled(env_id: str, cls: type[VecNormalize]) -> VecNormalize:
    venv = cls(make_symmetric_vec_env(env_id, n_envs=2, seed=0))
    venv.reset()
    for _ in range(200):
        venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    return venv


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
def test_normalization_commutes_with_every_element(env_id: str) -> None:
    venv = _filled(env_id, SymmetricVecNormalize)
    sym = venv.symmetry
    raw = venv.get_original_obs()
    for g in range(len(sym)):
        np.testing.assert_allclose(
            venv.normalize_obs(sym.transform_obs(raw, g)), sym.transform_obs(venv.normalize_obs(raw), g), atol=1e-5
        )
    plain = _filled(env_id, VecNormalize)
    errors = [
        np.abs(plain.normalize_obs(sym.transform_obs(raw, g)) - sym.transform_obs(plain.normalize_obs(raw), g)).max()
        for g in range(len(sym))
    ]
    assert max(errors) > 1e-3  # SB3's statistics do break it: the test above is not vacuous


def test_policy_on_normalized_env_is_equivariant_and_stats_save(tmp_path) -> None:
    venv = _filled("CartPole-v1", SymmetricVecNormalize)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*VecNormalize.*")  # symmetric statistics: no warning
        model = PPO(EquivariantMlpPolicy, venv, n_steps=32, batch_size=32, seed=0)
    model.learn(64)
    sym = venv.symmetry
    obs = venv.get_original_obs()
    with th.no_grad():
        for g in range(len(sym)):
            probs = model.policy.get_distribution(th.as_tensor(venv.normalize_obs(obs))).distribution.probs
            g_probs = model.policy.get_distribution(
                th.as_tensor(venv.normalize_obs(sym.transform_obs(obs, g)))
            ).distribution.probs
            th.testing.assert_close(g_probs, sym.action_rep.apply(probs, g), atol=1e-5, rtol=0)
    venv.save(tmp_path / "norm.pkl")
    loaded = SymmetricVecNormalize.load(tmp_path / "norm.pkl", make_symmetric_vec_env("CartPole-v1", n_envs=2))
    assert isinstance(loaded, SymmetricVecNormalize)
    np.testing.assert_allclose(loaded.normalize_obs(obs), venv.normalize_obs(obs))


def test_image_symmetry_is_refused() -> None:
    with pytest.raises(SymmetryError, match="vector observations"):
        SymmetricVecNormalize(make_symmetric_vec_env("sb3_equivariant/GridWorld-v0", n_envs=1))


def test_deprecated_spelling_of_the_statistics() -> None:
    venv = _filled("CartPole-v1", SymmetricVecNormalize)
    assert isinstance(venv, SymmetricVecNormalize)
    with pytest.deprecated_call():
        old = venv.symmetrised_statistics(venv.obs_rms)
    for a, b in zip(old, venv.symmetrized_statistics(venv.obs_rms)):
        np.testing.assert_array_equal(a, b)
