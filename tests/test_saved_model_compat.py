"""Models saved before the representation module was split load with the current code, with the same outputs.

``tests/data/compat_*.zip`` were written by main's code at a99c3f9 (``sb3_equivariant.representation`` still held every
class, so their pickles name ``sb3_equivariant.representation.Representation`` / ``.ImageAction``), with the outputs of
the saved policies on a few observations in ``compat_outputs.npz``. Every policy kwarg whose default may change
(``activation_fn``) was given explicitly, so that the saved models do not depend on this tree's defaults.
"""

import base64
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["ppo_cartpole", "ppo_gridworld"])
def test_model_saved_by_older_layout_loads_with_the_same_outputs(name: str) -> None:
    with zipfile.ZipFile(DATA / f"compat_{name}.zip") as archive:
        kwargs = base64.b64decode(json.loads(archive.read("data"))["policy_kwargs"][":serialized:"])
    assert b"sb3_equivariant.representation\x94" in kwargs  # pickled under the old module path
    model = PPO.load(DATA / f"compat_{name}.zip", device="cpu")
    expected = np.load(DATA / "compat_outputs.npz")
    obs, _ = model.policy.obs_to_tensor(expected[f"{name}_obs"])
    model.policy.set_training_mode(False)
    with th.no_grad():
        probs = model.policy.get_distribution(obs).distribution.probs.numpy()  # type: ignore[attr-defined]
        values = model.policy.predict_values(obs).numpy()
    # Equal to float rounding: the conv kernels' summation order depends on the CPU (6e-8 measured on another machine);
    # a model loaded wrongly differs by orders of magnitude more.
    np.testing.assert_allclose(probs, expected[f"{name}_probs"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(values, expected[f"{name}_values"], rtol=0, atol=1e-6)
