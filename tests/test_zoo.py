"""rl_zoo3 integration: the configs in zoo_configs/ build the intended models, and rl_zoo3's own train / enjoy / plot
scripts run on them end to end (subprocesses with tiny budgets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from rl_zoo3 import ALGOS
from rl_zoo3.utils import get_class_by_name
from stable_baselines3.common.env_util import make_vec_env

import sb3_equivariant  # noqa: F401  (registers GridWorld)
from sb3_equivariant import EquivariantActorCriticPolicy, EquivariantCnnPolicy
from sb3_equivariant.augmentation import (
    SymmetricReplayBuffer,
    SymmetricRolloutBuffer,
    SymmetrizedActorCriticPolicy,
    SymmetrizedSACPolicy,
)
from sb3_equivariant.benchmark.config import ZOO_CONFIGS, ZOO_ONLY_KEYS
from sb3_equivariant.envs import get_symmetry

ROOT = Path(__file__).resolve().parent.parent  # the checkout: rl_zoo3 runs from here, as the README says
STUBS = sorted(p for p in ZOO_CONFIGS.glob("*.py") if p.name != "__init__.py")
YAMLS = sorted(p for p in ZOO_CONFIGS.glob("*.yml") if p.stem != "methods")


def _load_stub(path: Path) -> dict[str, Any]:
    # As rl_zoo3's ExperimentManager.read_hyperparameters loads a .py config.
    namespace: dict[str, Any] = {}
    exec(path.read_text(), namespace)
    return namespace["hyperparams"]


def _algo_of(path: Path) -> str:
    return "ppo_lstm" if path.stem.startswith("ppo_lstm") else path.stem.split("_")[0]


def test_stubs_cover_every_config_and_method() -> None:
    methods = yaml.safe_load((ZOO_CONFIGS / "methods.yml").read_text())
    for config in YAMLS:
        family = yaml.safe_load(config.read_text())["sb3_equivariant"]["family"]
        for method, overlay in methods[family].items():
            stub = ZOO_CONFIGS / f"{config.stem}_{method}.py"
            # A method that trains with its own algorithm class cannot be an rl_zoo3 config.
            assert stub.exists() != ("algorithm" in (overlay or {})), (config.stem, method)


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_yaml_entries_are_rl_zoo3_entries(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    for env_id, params in data.items():
        if env_id == "sb3_equivariant":
            continue
        assert isinstance(params["policy"], str) and "n_timesteps" in params, env_id
        # rl_zoo3 passes every non-zoo key to the algorithm's constructor.
        assert not set(params) & {"symmetry", "basis", "method"}, env_id


@pytest.mark.parametrize("path", STUBS, ids=lambda p: p.name)
def test_stub_builds_model_on_rl_zoo3_env(path: Path) -> None:
    """Build every stub's CartPole (GridWorld, Pendulum, masked CartPole) model the way rl_zoo3 does: make_vec_env(env_id)."""
    hyperparams = _load_stub(path)
    for env_id in ("CartPole-v1", "sb3_equivariant/GridWorld-v0", "Pendulum-v1", "sb3_equivariant/CartPoleNoVel-v1"):
        if env_id not in hyperparams:
            continue
        params = dict(hyperparams[env_id])
        assert isinstance(params["policy"], str)  # rl_zoo3 imports dotted policy strings itself
        policy = get_class_by_name(params.pop("policy")) if "." in params["policy"] else params.pop("policy")
        env = make_vec_env(env_id, n_envs=int(params.get("n_envs", 1)))
        kwargs = {k: v for k, v in params.items() if k not in ZOO_ONLY_KEYS}
        kwargs = {k: (float(v.split("_")[1]) if isinstance(v, str) and v.startswith("lin_") else v) for k, v in kwargs.items()}
        model = ALGOS[_algo_of(path)](policy, env, device="cpu", **kwargs)
        method = path.stem.split("_", 2 if path.stem.startswith(("ppo_paper", "ppo_lstm")) else 1)[-1]
        if method in ("equivariant", "nullspace", "random"):
            assert getattr(model.policy, "basis", None) == method
            assert model.policy.symmetry.name == get_symmetry(env).name
        if method.startswith("augment"):
            assert isinstance(model.rollout_buffer, SymmetricRolloutBuffer)
            assert params["callback"] == "sb3_equivariant.augmentation.SymmetryCallback"
        if method.startswith("replay"):
            assert isinstance(model.replay_buffer, SymmetricReplayBuffer)
        if method == "symmetrised" and _algo_of(path) in ("ppo", "a2c"):
            assert isinstance(model.policy, SymmetrizedActorCriticPolicy)
        if method == "symmetrised" and _algo_of(path) == "sac":
            assert type(model.policy) is SymmetrizedSACPolicy
            assert model.policy.symmetry.name == get_symmetry(env).name
        env.close()


def _zoo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _train(logs: Path, conf: str, seed: int, algo: str = "ppo", env: str = "CartPole-v1", n: int = 512) -> None:
    _zoo(
        "rl_zoo3.train", "--algo", algo, "--env", env, "--gym-packages", "sb3_equivariant", "--conf-file",
        str(ZOO_CONFIGS / conf), "-n", str(n), "-f", str(logs), "--seed", str(seed), "--eval-freq", "256",
        "--eval-episodes", "2", "--n-eval-envs", "1", "--device", "cpu", cwd=ROOT,
    )  # fmt: skip


def test_rl_zoo3_train_and_enjoy_equivariant(tmp_path: Path) -> None:
    _train(tmp_path, "ppo_equivariant.py", seed=1)
    run = tmp_path / "ppo" / "CartPole-v1_1"
    assert (run / "evaluations.npz").exists() and (run / "CartPole-v1.zip").exists()
    model = ALGOS["ppo"].load(run / "CartPole-v1.zip", device="cpu")
    assert type(model.policy) is EquivariantActorCriticPolicy and model.policy.basis == "equivariant"
    out = _zoo(
        "rl_zoo3.enjoy", "--algo", "ppo", "--env", "CartPole-v1", "--gym-packages", "sb3_equivariant", "-f", str(tmp_path),
        "--exp-id", "1", "-n", "600", "--no-render", "--deterministic", "--device", "cpu", cwd=ROOT,
    )  # fmt: skip
    assert "Atari Episode" in out.stdout or "Episode Reward" in out.stdout or "Mean reward" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "algo, env, conf, policy_class",
    [
        ("a2c", "sb3_equivariant/GridWorld-v0", "a2c_equivariant.py", EquivariantCnnPolicy),
        ("ppo", "CartPole-v1", "ppo_augment_random.py", None),
        ("dqn", "CartPole-v1", "dqn_replay_store.py", None),
    ],
)
def test_rl_zoo3_train_other_methods(tmp_path: Path, algo: str, env: str, conf: str, policy_class: type | None) -> None:
    _train(tmp_path, conf, seed=1, algo=algo, env=env, n=1200 if algo == "dqn" else 800)
    runs = list((tmp_path / algo).iterdir())
    assert len(runs) == 1
    model = ALGOS[algo].load(next(runs[0].glob("*.zip")), device="cpu")
    if policy_class is not None:
        assert type(model.policy) is policy_class


def _plotting_recipe() -> str:
    """The README's plotting recipe, at a tiny budget (the only change: the numbers of steps)."""
    text = (ZOO_CONFIGS / "README.md").read_text()
    block = text.split("<!-- plotting recipe -->")[1].split("<!-- end plotting recipe -->")[0]
    script = block.split("```bash")[1].split("```")[0]
    budget = "-n 20000 --eval-freq 2000 --eval-episodes 5"
    assert budget in script, "the recipe changed: update this test's budget substitution"
    return script.replace(budget, "-n 512 --eval-freq 256 --eval-episodes 2")


@pytest.mark.slow
def test_rl_zoo3_plotting_recipe_as_written(tmp_path: Path) -> None:
    """zoo_configs/README.md's comparison recipe runs headless at a small budget and writes a table and a figure."""
    (tmp_path / "zoo_configs").symlink_to(ZOO_CONFIGS)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `python` is this interpreter
    env = {**os.environ, "PATH": path, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        ["bash", "-e", "-c", _plotting_recipe()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert (tmp_path / "logs" / "cmp.pkl").exists()
    assert (tmp_path / "logs" / "cmp_curves.png").stat().st_size > 0
    assert "0.0 ± 0.0" not in result.stdout  # an empty table: no evaluation within the budget


def test_paper_protocol_learning_rates_are_the_committed_sweeps_choice() -> None:
    # ppo_paper.yml says its per-method rates are the sweep's winners: an rl_zoo3 user must train what the benchmark
    # (which reads the sweep's results directly) trains.
    from sb3_equivariant.benchmark.config import method_hyperparams
    from sb3_equivariant.benchmark.presets import best_learning_rates

    chosen = best_learning_rates(ROOT / "results" / "cartpole_paper_sweep")
    assert chosen, "results/cartpole_paper_sweep has no finished runs"
    for method, lr in chosen.items():
        assert method_hyperparams("ppo_paper", "CartPole-v1", method)["learning_rate"] == pytest.approx(lr), method
