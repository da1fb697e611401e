"""The package works installed, outside the checkout: the zoo configs ship with it as package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sb3_equivariant.benchmark.config import ZOO_CONFIGS

ROOT = Path(__file__).resolve().parent.parent

INSTALLED_SCRIPT = """
import importlib, sys
import sb3_equivariant
assert sb3_equivariant.__file__.startswith(sys.argv[1]), sb3_equivariant.__file__
from sb3_equivariant.benchmark import zoo_hyperparams
from sb3_equivariant.benchmark.config import model_kwargs, method_hyperparams
from stable_baselines3 import PPO
from sb3_equivariant.envs import get_symmetry, make_symmetric_vec_env
params = method_hyperparams("ppo", "CartPole-v1", "equivariant")
env = make_symmetric_vec_env("CartPole-v1", n_envs=2, seed=0)
kwargs = model_kwargs(params, lambda: get_symmetry(env, required=True))
model = PPO(kwargs.pop("policy"), env, **kwargs)
assert type(model.policy).__name__ == "EquivariantActorCriticPolicy", type(model.policy)
assert "CartPole-v1" in zoo_hyperparams("dqn", "equivariant")
# rl_zoo3's --conf-file accepts a module name: the per-method configs are importable from the installed package
module = importlib.import_module("sb3_equivariant.zoo_configs.ppo_equivariant")
assert module.hyperparams["CartPole-v1"]["policy"].endswith("EquivariantMlpPolicy"), module.hyperparams
print("ok")
"""


def test_checkout_link_points_at_the_package_data() -> None:
    # rl_zoo3 commands in the README use zoo_configs/<file> from the checkout
    assert (ROOT / "zoo_configs").resolve() == ZOO_CONFIGS
    assert (ROOT / "zoo_configs" / "ppo_equivariant.py").is_file()


@pytest.mark.slow
def test_installed_package_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: pip's in-tree build would leave build/ in the checkout
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "sb3_equivariant", source / "sb3_equivariant", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    assert (target / "sb3_equivariant" / "zoo_configs" / "methods.yml").is_file()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", INSTALLED_SCRIPT, str(target)], cwd=outside, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
