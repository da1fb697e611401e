"""The benchmark package: config parsing and merging, the resumable runner, rliable aggregation, plots, presets, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rliable import metrics
from torch import nn

from sb3_equivariant.augmentation import SymmetricA2C, SymmetricPPO
from sb3_equivariant.benchmark import checkpoint, runner
from sb3_equivariant.benchmark.__main__ import main
from sb3_equivariant.benchmark.aggregate import markdown_table, run_scores, summarize
from sb3_equivariant.benchmark.config import (
    ConfigError,
    env_ids,
    merge,
    method_hyperparams,
    methods_of,
    model_kwargs,
    parse_kwargs_string,
    resolve_class,
    zoo_hyperparams,
)
from sb3_equivariant.benchmark.plots import aggregate_plot, learning_curves
from sb3_equivariant.benchmark.presets import PRESETS, Experiment
from sb3_equivariant.benchmark.runner import RunSpec, curve_text, read_curve, run_one
from sb3_equivariant.benchmark.storage import RunLock
from sb3_equivariant.envs import symmetry_for

CONFIGS = ("ppo", "ppo_paper", "a2c", "dqn", "qrdqn")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("dict(net_arch=[64, 64])", {"net_arch": [64, 64]}),
        (
            "dict(net_arch=dict(pi=[64], vf=[32]), activation_fn=nn.ReLU)",
            {"net_arch": {"pi": [64], "vf": [32]}, "activation_fn": "torch.nn.ReLU"},
        ),
        ("{'log_std_init': -2.0, 'ortho_init': False}", {"log_std_init": -2.0, "ortho_init": False}),
        ("dict(n_quantiles=25, optimizer_kwargs=dict(eps=1e-5))", {"n_quantiles": 25, "optimizer_kwargs": {"eps": 1e-5}}),
        (
            "dict(optimizer_class=RMSpropTFLike)",
            {"optimizer_class": "stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike"},
        ),
    ],
)
def test_parse_kwargs_string(text: str, expected: dict) -> None:
    assert parse_kwargs_string(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "dict(x=open('/etc/passwd'))",
        "dict(x=[i for i in range(3)])",
        "dict(x=lambda: 1)",
        "dict(x=1 + 2)",
        "dict(x=os.system)",
        "[1, 2]",
        "dict(net_arch=",
    ],
)
def test_parse_kwargs_string_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_kwargs_string(text)


def test_resolve_class() -> None:
    assert resolve_class("torch.nn.ReLU") is nn.ReLU
    with pytest.raises(ConfigError, match="not under an allowed module"):
        resolve_class("os.system")
    with pytest.raises(ConfigError, match="cannot import"):
        resolve_class("sb3_equivariant.NoSuchPolicy")


def test_merge() -> None:
    base = {"policy": "MlpPolicy", "policy_kwargs": {"net_arch": [64], "features_extractor_class": "x.Y"}, "lr": 1}
    out = merge(base, {"policy_kwargs": {"basis": "random", "features_extractor_class": None}, "lr": 2})
    assert out == {"policy": "MlpPolicy", "policy_kwargs": {"net_arch": [64], "basis": "random"}, "lr": 2}
    assert base["policy_kwargs"]["features_extractor_class"] == "x.Y"  # not mutated


@pytest.mark.parametrize("config", CONFIGS)
def test_every_method_renders(config: str) -> None:
    for env_id in env_ids(config):
        for method in methods_of(config):
            params = method_hyperparams(config, env_id, method)
            assert "policy" in params and "n_timesteps" in params


def test_method_hyperparams_values() -> None:
    eq = method_hyperparams("ppo_paper", "CartPole-v1", "equivariant")
    assert eq["policy"] == "sb3_equivariant.EquivariantMlpPolicy"
    assert eq["policy_kwargs"] == {"net_arch": [64, 64], "basis": "equivariant"}
    assert (eq["n_steps"], eq["n_envs"], eq["batch_size"], eq["normalize_advantage"]) == (5, 16, 20, False)
    grid = method_hyperparams("a2c", "sb3_equivariant/GridWorld-v0", "nullspace")
    assert grid["policy"] == "sb3_equivariant.EquivariantCnnPolicy"
    assert "features_extractor_class" not in grid["policy_kwargs"]
    assert (grid["policy_kwargs"]["basis"], grid["learning_rate"]) == ("nullspace", 3e-3)
    aug = method_hyperparams("ppo", "CartPole-v1", "augment_all")
    assert aug["rollout_buffer_kwargs"] == {"augment": "all"}
    atari = method_hyperparams("ppo", "PongNoFrameskip-v4", "equivariant")
    assert atari["policy"] == "sb3_equivariant.EquivariantCnnPolicy"


@pytest.mark.parametrize(
    "config, env_id, method, match",
    [
        ("ppo", "CartPole-v1", "no_such_method", "unknown method"),
        ("ppo", "MountainCar-v0", "baseline", "no entry for"),
        ("no_such_config", "CartPole-v1", "baseline", "no zoo config"),
    ],
)
def test_method_hyperparams_errors(config: str, env_id: str, method: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        method_hyperparams(config, env_id, method)


def test_model_kwargs() -> None:
    params = method_hyperparams("dqn", "CartPole-v1", "replay_store")
    kwargs = model_kwargs(params, lambda: symmetry_for("CartPole-v1"))
    from sb3_equivariant.augmentation import SymmetricReplayBuffer

    assert kwargs["replay_buffer_class"] is SymmetricReplayBuffer
    assert kwargs["replay_buffer_kwargs"]["symmetry"].name == "CartPole-mirror"
    assert "n_timesteps" not in kwargs and kwargs["policy"] == "MlpPolicy"
    lin = model_kwargs(method_hyperparams("ppo", "CartPole-v1", "baseline"), lambda: None)["learning_rate"]
    assert (lin(1.0), lin(0.5)) == pytest.approx((1e-3, 5e-4))


def _spec(tmp_experiment: str = "t", **changes: object) -> RunSpec:
    base = dict(
        experiment=tmp_experiment,
        config="ppo",
        algo="ppo",
        env_id="CartPole-v1",
        method="baseline",
        seed=0,
        n_timesteps=1024,
        eval_freq=512,
        n_eval_episodes=2,
    )
    return RunSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_run_one_writes_and_skips(tmp_path: Path) -> None:
    spec = _spec(method="equivariant")
    out = run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))
    assert out["status"] == "done"
    run_dir = tmp_path / "res" / "t" / "CartPole-v1" / "equivariant" / "seed0"
    rows = read_curve(run_dir / "curve.csv")
    assert [r["step"] for r in rows] == [0, 512, 1024]
    assert all(r["episodes"] == 2 for r in rows)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "done" and not manifest["resumed"]
    assert manifest["hyperparams"]["policy"] == "sb3_equivariant.EquivariantMlpPolicy"
    assert manifest["hyperparams"]["n_timesteps"] == 1024
    assert manifest["spec"]["seed"] == 0 and "torch" in manifest["versions"]
    assert not (tmp_path / "ckpt" / spec.relative_dir() / "checkpoint").exists()
    assert run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))["status"] == "skipped"


def test_run_one_trains_a_method_with_its_own_algorithm(tmp_path: Path) -> None:
    spec = _spec(method="symmetry_loss")
    params = runner.resolved_hyperparams(spec)
    assert runner.algorithm_class("ppo", params) is SymmetricPPO
    assert runner.algorithm_class("a2c", params) is SymmetricA2C
    with pytest.raises(ConfigError, match="runs only with PPO, A2C, not DQN"):
        runner.algorithm_class("dqn", params)
    with pytest.raises(ConfigError, match="maps SB3 class names to dotted paths"):
        runner.algorithm_class("ppo", {"algorithm": "sb3_equivariant.augmentation.SymmetricPPO"})
    with pytest.raises(ConfigError, match="not a subclass of PPO"):
        runner.algorithm_class("ppo", {"algorithm": {"PPO": "stable_baselines3.A2C"}})
    with pytest.raises(ConfigError, match="run it with `python -m sb3_equivariant"):
        zoo_hyperparams("ppo", "symmetry_loss")
    assert run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))["status"] == "done"
    manifest = json.loads((tmp_path / "res" / spec.relative_dir() / "manifest.json").read_text())
    assert manifest["hyperparams"]["symmetry_loss_coef"] == 1.0
    log = (tmp_path / "ckpt" / spec.relative_dir() / "sb3_log" / "progress.csv").read_text()
    assert "train/symmetry_loss" in log.splitlines()[0]  # the loss was computed, so the model was a SymmetricPPO


def test_run_one_resumes_after_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = checkpoint.save_checkpoint

    def save_then_crash(*args: object, **kwargs: object) -> None:
        real_save(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("simulated crash")

    spec = _spec(config="dqn", algo="dqn", method="replay_random", n_timesteps=1200, eval_freq=400)
    monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"), checkpoint_seconds=0)
    ckpt = tmp_path / "ckpt" / spec.relative_dir()
    assert (ckpt / "checkpoint" / "replay_buffer.pkl").exists()
    assert not (tmp_path / "res" / spec.relative_dir() / ".lock").exists()
    # The first rollout boundary after step 0: rl_zoo3's CartPole DQN collects train_freq=256 steps per rollout.
    assert json.loads((ckpt / "checkpoint" / "state.json").read_text())["num_timesteps"] == 256
    monkeypatch.setattr(checkpoint, "save_checkpoint", real_save)
    assert run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))["status"] == "done"
    run_dir = tmp_path / "res" / spec.relative_dir()
    assert [r["step"] for r in read_curve(run_dir / "curve.csv")] == [0, 400, 800, 1200]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["resumed"] and manifest["num_timesteps"] >= 1200  # DQN collects train_freq steps at a time


def test_run_one_respects_lock(tmp_path: Path) -> None:
    spec = _spec()
    lock = RunLock(tmp_path / "res" / spec.relative_dir() / ".lock")
    assert lock.acquire()  # held by a live process (us), from a grid with other checkpoints
    for ckpt_root in ("ckpt", "other_ckpt"):
        assert run_one(spec, str(tmp_path / "res"), str(tmp_path / ckpt_root))["status"] == "locked"
    lock.release()
    legacy = tmp_path / "ckpt" / spec.relative_dir() / "lock"  # an earlier runner's lock: a live pid
    legacy.parent.mkdir(parents=True)
    legacy.write_text(str(__import__("os").getpid()))
    assert run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))["status"] == "locked"


def _fake_runs(root: Path, curves: dict[str, list[list[float]]], steps: list[int]) -> Path:
    for label, runs in curves.items():
        for seed, returns in enumerate(runs):
            run_dir = root / "exp" / "Env-v0" / label / f"seed{seed}"
            rows = [
                dict(step=s, timesteps=s, mean_return=float(r), std_return=0.0, episodes=5, wall_time=1.0)
                for s, r in zip(steps, returns)
            ]
            runner.atomic_write_text(run_dir / "curve.csv", curve_text(rows))
            manifest = {"status": "done", "spec": {"seed": seed, "n_timesteps": steps[-1]}, "n_parameters": 10}
            runner.atomic_write_text(run_dir / "manifest.json", json.dumps(manifest))
    return root / "exp"


def test_run_scores() -> None:
    steps = np.array([0, 10, 20, 30, 40])
    runs = [
        {"step": steps, "returns": np.array([0.0, 10, 0, 10, 10])},  # above at 10, then only at the last 2 < SUSTAIN
        {"step": steps, "returns": np.array([0.0, 0, 10, 10, 10])},
        {"step": steps, "returns": np.array([0.0, 0, 0, 0, 5])},
    ]
    scores = run_scores(runs, threshold=10)
    np.testing.assert_allclose(scores["final"], [20 / 3, 10, 5 / 3])
    # trapezoid / span: run 1 = (5 + 5 + 5 + 10) * 10 / 40
    np.testing.assert_allclose(scores["auc"][0], 6.25)
    np.testing.assert_array_equal(scores["steps"], [np.inf, 20, np.inf])


def test_training_return_steps_to_threshold(tmp_path: Path) -> None:
    steps = np.array([0, 10, 20, 30, 40, 50])
    runs = [
        {"step": steps, "returns": np.full(6, 9.0), "train_returns": np.array([np.nan, 1, 10, 10, 10, 10])},
        {"step": steps, "returns": np.full(6, 9.0), "train_returns": np.array([np.nan, np.nan, 2, 3, 10, 10])},
    ]
    scores = run_scores(runs, threshold=10)
    np.testing.assert_array_equal(scores["train_steps"], [20, np.inf])  # NaN (no episode ended yet) is not above
    np.testing.assert_allclose(scores["train_final"], [10, 23 / 3])
    rows = [dict(step=int(s), timesteps=int(s), mean_return=9.0, std_return=0.0, episodes=5, wall_time=1.0) for s in steps]
    for seed, run in enumerate(runs):
        run_dir = tmp_path / "exp" / "Env-v0" / "m" / f"seed{seed}"
        with_train = [{**row, "train_mean_return": float(t)} for row, t in zip(rows, run["train_returns"])]
        runner.atomic_write_text(run_dir / "curve.csv", curve_text(with_train))
        runner.atomic_write_text(run_dir / "manifest.json", json.dumps({"status": "done", "spec": {"seed": seed}}))
    summary = summarize(tmp_path / "exp", threshold=10, reps=50)
    assert (summary["rows"]["m"]["train_steps_median"], summary["rows"]["m"]["train_steps_reached"]) == (np.inf, 1)
    table = markdown_table(summary)
    assert "steps to 10, training return (median, reached)" in table.splitlines()[0]
    assert table.splitlines()[2].endswith("| not reached (1/2) |")


def test_summarize_table_plots(tmp_path: Path) -> None:
    steps = [0, 100, 200, 300, 400, 500]
    rng = np.random.default_rng(0)
    fast = [[0, 8 + rng.random(), 10, 10, 10, 10] for _ in range(5)]
    slow = [[0, 1, 4 + rng.random(), 10, 10, 10] for _ in range(5)]
    exp_dir = _fake_runs(tmp_path, {"slow": slow, "fast": fast}, steps)
    summary = summarize(exp_dir, threshold=9.5, reference="slow", order=["slow", "fast"], reps=200)
    rows = summary["rows"]
    assert summary["labels"] == ["slow", "fast"] and rows["fast"]["n_runs"] == 5
    finals = run_scores([{"step": np.array(steps), "returns": np.array(r, float)} for r in fast], None)["final"]
    assert rows["fast"]["iqm_final"] == pytest.approx(metrics.aggregate_iqm(finals[:, None]))
    assert rows["fast"]["p_improve_auc"] == pytest.approx(1.0)
    assert rows["fast"]["steps_median"] == 200 and rows["slow"]["steps_median"] == 300
    assert rows["fast"]["steps_ratio"] == pytest.approx(2 / 3)
    low, high = rows["slow"]["iqm_auc_ci"]
    assert low <= rows["slow"]["iqm_auc"] <= high
    table = markdown_table(summary)
    assert "| fast | 5 |" in table and "0.67" in table
    assert json.loads((exp_dir / "summary.json").read_text())["reference"] == "slow"
    for path in (learning_curves(exp_dir, summary, reps=50), aggregate_plot(exp_dir, summary)):
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"


def test_cli_reference_writes_its_own_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = [0, 100, 200, 300, 400, 500]
    _fake_runs(tmp_path, {"slow": [[0, 1, 4, 10, 10, 10]] * 3, "fast": [[0, 8, 10, 10, 10, 10]] * 3}, steps)
    grid = ["--experiment", "exp", "--config", "ppo", "--env", "Env-v0", "--methods", "slow", "fast"]
    common = [*grid, "--results", str(tmp_path), "--aggregate-only", "--reps", "50"]
    assert main(common) == 0
    default = (tmp_path / "exp" / "summary.md").read_text()
    assert main([*common, "--reference", "fast"]) == 0
    assert (tmp_path / "exp" / "summary.md").read_text() == default  # the default table is left alone
    assert json.loads((tmp_path / "exp" / "summary.json").read_text())["reference"] == "slow"
    assert json.loads((tmp_path / "exp" / "summary_vs_fast.json").read_text())["reference"] == "fast"
    table = (tmp_path / "exp" / "summary_vs_fast.md").read_text()
    assert "P(> fast) AUC" in table and "| slow | 3 |" in table
    capsys.readouterr()
    assert main([*common, "--reference", "medium"]) == 2
    err = capsys.readouterr().out
    assert "'medium' has no finished runs" in err and "fast, slow" in err
    with pytest.raises(ValueError, match="choose one of slow, fast"):
        summarize(tmp_path / "exp", threshold=None, reference="medium", order=["slow", "fast"], reps=50)


def test_presets_are_seed_major_and_resolve() -> None:
    specs = PRESETS["demo"].specs()
    first = [(s.seed, s.method) for s in specs[:4]]
    assert first == [(0, "baseline"), (0, "augment_random"), (0, "equivariant"), (1, "baseline")]
    for exp in PRESETS.values():
        for method in exp.methods:  # every method of every preset exists and has an algorithm class
            params = method_hyperparams(exp.config, exp.env_id, method)
            assert issubclass(runner.algorithm_class(exp.algo, params), runner.algorithm_class(exp.algo)), exp.name
            assert exp.eval_freq % int(params.get("n_envs", 1)) == 0, exp.name


def test_sweep_labels_and_lr_from(tmp_path: Path) -> None:
    sweep = Experiment("sw", "ppo", "ppo", "CartPole-v1", ("baseline",), (0,), 100, 10, learning_rates=(1e-3, 1e-2))
    assert [s.name for s in sweep.specs()] == ["baseline@lr=0.001", "baseline@lr=0.01"]
    main_exp = Experiment("m", "ppo", "ppo", "CartPole-v1", ("baseline",), (0,), 100, 10, lr_from="sw")
    with pytest.raises(ValueError, match=r"run `python -m sb3_equivariant\.benchmark --preset sw` first"):
        main_exp.specs(tmp_path)
    steps = [0, 50, 100]
    _fake_runs(tmp_path, {"baseline@lr=0.001": [[0, 1, 2]] * 2, "baseline@lr=0.01": [[0, 5, 9]] * 2}, steps)
    (tmp_path / "exp").rename(tmp_path / "sw")
    assert main_exp.specs(tmp_path)[0].overrides == (("learning_rate", 0.01),)
    # A learning rate with a failed (diverged) run is not eligible.
    runner.atomic_write_text(tmp_path / "sw" / "Env-v0" / "baseline@lr=0.01" / "seed2" / "failed.json", "{}")
    assert main_exp.specs(tmp_path)[0].overrides == (("learning_rate", 0.001),)


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    assert "demo" in capsys.readouterr().out


def test_compute_benchmark_rows() -> None:
    from sb3_equivariant.benchmark.compute import markdown, run

    rows = run(["CartPole-v1"], scale=0.05, inference_calls=3)
    assert [r["policy"] for r in rows] == [
        "MLP [64, 64]",
        "equivariant [45, 45] (default: parameters)",
        "equivariant [64, 64] (channels)",
    ]
    # The default is parameter-matched: within 10% of the MLP; SB3's widths in channels of C2 have about twice as many.
    assert abs(rows[1]["parameters"] / rows[0]["parameters"] - 1) < 0.1
    assert 1.7 < rows[2]["parameters"] / rows[0]["parameters"] < 2.3
    assert all(r["train_steps_per_cpu_s"] > 0 and r["inference_ms"] > 0 for r in rows)
    table = markdown(rows)
    assert table.count("\n") == 4 and "| 1.00 |" in table
    with pytest.raises(ValueError, match="unknown env"):
        run(["NoSuchEnv"])


def test_asymmetry_of_symmetric_states_and_a_finished_run(tmp_path: Path) -> None:
    """The non-invariant norm is 0 on symmetric points and half the left-right difference for a swap; an equivariant
    greedy SAC policy gives a symmetric state a symmetric action, an MLP does not; measure() reads a finished run."""
    from stable_baselines3 import SAC

    from sb3_equivariant.benchmark.asymmetry import markdown, measure, non_invariant_norm
    from sb3_equivariant.policies import EquivariantSACPolicy
    from sb3_equivariant.representation import Representation

    walker = symmetry_for("Walker2d-v5")
    x = np.random.default_rng(0).normal(size=17)
    swapped = walker.transform_obs(x, 1)
    assert non_invariant_norm(walker.obs_action, (x + swapped) / 2) < 1e-12
    assert non_invariant_norm(walker.obs_action, x) == pytest.approx(np.linalg.norm(x - swapped) / 2)

    pendulum = symmetry_for("Pendulum-v1")
    upright = np.array([1.0, 0.0, 0.0], dtype=np.float32)  # fixed by the mirror: sin θ and θ' negate
    for policy, symmetric in ((EquivariantSACPolicy, True), ("MlpPolicy", False)):
        model = SAC(policy, "Pendulum-v1", seed=0)
        action, _ = model.predict(upright, deterministic=True)
        assert (non_invariant_norm(pendulum.action_rep, action) < 1e-6) == symmetric

    run_dir = Path("pendulum_sac") / "Pendulum-v1" / "baseline" / "seed0"
    (tmp_path / "ck" / run_dir).mkdir(parents=True)
    (tmp_path / "res" / run_dir).mkdir(parents=True)
    model.save(tmp_path / "ck" / run_dir / "final_model.zip")
    manifest = {"status": "done", "code": {"commit": "abc"}, "resumed_from_code": [{"commit": "def"}]}
    (tmp_path / "res" / run_dir / "manifest.json").write_text(json.dumps(manifest))
    rows = measure("pendulum_sac", tmp_path / "ck", tmp_path / "res", episodes=1)
    assert [(r["method"], r["seed"], r["policy"], r["length"], r["model_commits"]) for r in rows] == [
        ("baseline", 0, "greedy", 200, ["abc", "def"]),
        ("baseline", 0, "stochastic", 200, ["abc", "def"]),
    ]
    assert all(r["obs_asymmetry"] > 0 and r["action_asymmetry"] > 0 for r in rows)
    assert markdown(rows).count("\n") == 3
    (tmp_path / "res" / run_dir / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    assert measure("pendulum_sac", tmp_path / "ck", tmp_path / "res", episodes=1) == []
    with pytest.raises(ValueError, match=r"episodes must be in 1\.\.5000"):
        measure("pendulum_sac", tmp_path / "ck", tmp_path / "res", episodes=6000)
    with pytest.raises(ValueError, match="not orthogonal"):
        non_invariant_norm(Representation(walker.group, [np.eye(2), [[1.0, 1.0], [0.0, -1.0]]]), np.ones(2))
