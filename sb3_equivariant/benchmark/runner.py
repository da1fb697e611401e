"""
Run a grid of (env, method, seed) trainings in parallel worker processes, resumably.

Each run writes, under ``<results>/<experiment>/<env>/<label>/seed<k>/``, only when it has finished:
``curve.csv`` (deterministic evaluations on a separate env: ``step, timesteps, mean_return, std_return, episodes,
wall_time``) and ``manifest.json`` (exact hyperparameters, seed, package versions, parameter count, times). Both are
written atomically (temporary file + ``os.replace``), the manifest last: a run is finished iff its manifest says so.

While it runs, a checkpoint (model with its optimizer, the replay buffer for off-policy algorithms, the curve so far)
is written to ``<checkpoints>/<experiment>/<env>/<label>/seed<k>/checkpoint`` at most every ``checkpoint_seconds``
of wall time, always right after an evaluation so that model and curve agree. A killed run resumes from it (the
training envs restart their episodes: resumed runs are not bit-identical to uninterrupted ones); rerunning skips
finished runs.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

CURVE_FIELDS = ("step", "timesteps", "mean_return", "std_return", "episodes", "wall_time")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """
    One training run.

    :param experiment: name of the experiment (a directory under the results root).
    :param config: zoo config name (``"ppo"``, ``"ppo_paper"``...), which also fixes the algorithm.
    :param algo: rl_zoo3's name: ``"ppo"``, ``"a2c"``, ``"dqn"``, ``"qrdqn"``, ``"sac"``, ``"td3"`` or ``"ppo_lstm"``.
    :param env_id: gymnasium id.
    :param method: method of ``methods.yml``.
    :param seed: seed of the algorithm and the training envs (eval envs use ``seed + 10_000``).
    :param n_timesteps: training budget in env steps.
    :param eval_freq: env steps between evaluations (the first is at step 0).
    :param n_eval_episodes: deterministic evaluation episodes (one per eval env).
    :param overrides: hyperparameters that replace the config's (e.g. ``(("learning_rate", 1e-3),)``).
    :param label: name of the variant in results (default: ``method``).
    """

    experiment: str
    config: str
    algo: str
    env_id: str
    method: str
    seed: int
    n_timesteps: int
    eval_freq: int
    n_eval_episodes: int = 10
    overrides: tuple[tuple[str, Any], ...] = ()
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.method

    def relative_dir(self) -> Path:
        return Path(self.experiment) / env_slug(self.env_id) / self.name / f"seed{self.seed}"


def env_slug(env_id: str) -> str:
    """A directory name for an env id (``sb3_equivariant/GridWorld-v0`` -> ``sb3_equivariant-GridWorld-v0``)."""
    return env_id.replace("/", "-")


# ---------------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def curve_text(rows: list[dict[str, Any]]) -> str:
    lines = [",".join(CURVE_FIELDS)]
    lines += [",".join(_fmt(row[k]) for k in CURVE_FIELDS) for row in rows]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def read_curve(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        return [
            {k: (int(float(v)) if k in ("step", "timesteps", "episodes") else float(v)) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def is_done(run_dir: Path) -> bool:
    manifest = read_manifest(run_dir)
    return manifest is not None and manifest.get("status") == "done" and (run_dir / "curve.csv").exists()


def package_versions() -> dict[str, str]:
    """Versions of everything that changes results."""
    import gymnasium
    import sb3_contrib
    import stable_baselines3
    import torch

    import sb3_equivariant

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_contrib": sb3_contrib.__version__,
        "sb3_equivariant": sb3_equivariant.__version__,
    }
    try:
        commit = subprocess.run(
            ["git", "-C", str(Path(sb3_equivariant.__file__).parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        versions["git_commit"] = commit.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        versions["git_commit"] = "unknown"
    return versions


# ---------------------------------------------------------------------------------------------------------------------
# One run (inside a worker process)
# ---------------------------------------------------------------------------------------------------------------------


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    from sb3_contrib import QRDQN, RecurrentPPO
    from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

    # rl_zoo3's names
    classes: dict[str, type[BaseAlgorithm]] = {
        "ppo": PPO,
        "a2c": A2C,
        "dqn": DQN,
        "qrdqn": QRDQN,
        "sac": SAC,
        "td3": TD3,
        "ppo_lstm": RecurrentPPO,
    }
    if algo not in classes:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {', '.join(classes)}")
    return classes[algo]


def resolved_hyperparams(spec: RunSpec) -> dict[str, Any]:
    """The structured hyperparameters of a run: the zoo config's for its method, with the spec's overrides."""
    from sb3_equivariant.benchmark.config import merge, method_hyperparams

    params = merge(method_hyperparams(spec.config, spec.env_id, spec.method), dict(spec.overrides))
    params["n_timesteps"] = spec.n_timesteps
    return params


def make_envs(spec: RunSpec, params: dict[str, Any], seed: int, n_envs: int) -> Any:
    """Training or evaluation envs with the env's symmetry attached (``make_symmetric_vec_env`` / Atari)."""
    from sb3_equivariant.benchmark.config import ConfigError, _is_atari
    from sb3_equivariant.envs import make_symmetric_atari_env, make_symmetric_vec_env

    if params.get("normalize"):
        raise ConfigError(
            f"{spec.config}/{spec.env_id}: normalize is not supported by the benchmark (VecNormalize's per-dimension "
            "statistics break the symmetry); set normalize: false"
        )
    env_kwargs = params.get("env_kwargs") or {}
    if _is_atari(spec.env_id):
        return make_symmetric_atari_env(
            spec.env_id, n_envs=n_envs, seed=seed, frame_stack=int(params.get("frame_stack", 4)), env_kwargs=env_kwargs
        )
    return make_symmetric_vec_env(spec.env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)


class EvalCurveCallback(BaseCallback):
    """
    Deterministic evaluation every ``eval_freq`` env steps (at grid points ``k * eval_freq``, including 0), appended
    to ``rows``; calls ``checkpoint()`` after an evaluation when ``checkpoint_seconds`` have passed since the last one.

    :param eval_env: evaluation envs (one episode each).
    :param eval_seed: reseeds ``eval_env`` before every evaluation: the same start states every time, so differences
        between points are the policy's.
    :param eval_freq: env steps between evaluations.
    :param n_eval_episodes: episodes per evaluation.
    :param rows: the curve, appended to (resumed runs pass the rows of their checkpoint).
    :param checkpoint: writes a checkpoint.
    :param checkpoint_seconds: minimum wall time between checkpoints.
    :param wall_offset: wall time already spent (resumed runs).
    :param progress_path: file updated with the step count after each evaluation (for the progress bar).
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_seed: int,
        eval_freq: int,
        n_eval_episodes: int,
        rows: list[dict[str, Any]],
        checkpoint: Callable[[], None],
        checkpoint_seconds: float,
        wall_offset: float,
        progress_path: Path,
    ):
        super().__init__()
        self.eval_env, self.eval_seed = eval_env, eval_seed
        self.eval_freq, self.n_eval_episodes = eval_freq, n_eval_episodes
        self.rows, self.checkpoint, self.checkpoint_seconds = rows, checkpoint, checkpoint_seconds
        self.progress_path = progress_path
        self.start = time.time() - wall_offset
        self.last_checkpoint = time.time()

    def _next_step(self) -> int:
        return 0 if not self.rows else self.rows[-1]["step"] + self.eval_freq

    def _evaluate(self) -> None:
        self.eval_env.seed(self.eval_seed)
        returns, _ = evaluate_policy(
            self.model, self.eval_env, n_eval_episodes=self.n_eval_episodes, deterministic=True, return_episode_rewards=True
        )
        self.rows.append(
            dict(
                step=(self.num_timesteps // self.eval_freq) * self.eval_freq,
                timesteps=int(self.num_timesteps),
                mean_return=float(np.mean(returns)),
                std_return=float(np.std(returns)),
                episodes=len(np.atleast_1d(returns)),
                wall_time=time.time() - self.start,
            )
        )
        self.logger.record("eval/mean_return", self.rows[-1]["mean_return"])
        self.progress_path.write_text(str(self.num_timesteps))

    def _on_training_start(self) -> None:
        if not self.rows:
            self._evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_step():
            self._evaluate()
            if time.time() - self.last_checkpoint >= self.checkpoint_seconds:
                self.checkpoint()
                self.last_checkpoint = time.time()
        return True


def _save_checkpoint(model: Any, rows: list[dict[str, Any]], ckpt: Path, off_policy: bool, wall: float) -> None:
    """Write the checkpoint to a new directory, then swap it in: a crash leaves the previous one intact."""
    new, old = ckpt.with_name("checkpoint.new"), ckpt.with_name("checkpoint.old")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    model.save(new / "model.zip")
    if off_policy:
        model.save_replay_buffer(new / "replay_buffer.pkl")
    (new / "curve.csv").write_text(curve_text(rows))
    (new / "state.json").write_text(json.dumps({"num_timesteps": int(model.num_timesteps), "wall_time": wall}))
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        os.replace(ckpt, old)
    os.replace(new, ckpt)
    shutil.rmtree(old, ignore_errors=True)


def _latest_checkpoint(ckpt: Path) -> Path | None:
    for candidate in (ckpt, ckpt.with_name("checkpoint.old")):
        if (candidate / "state.json").exists():
            return candidate
    return None


def run_one(spec: RunSpec, results_root: str, checkpoint_root: str, checkpoint_seconds: float = 60.0) -> dict[str, Any]:
    """
    Train one run to completion (resuming from its checkpoint if any) and write its results.

    :return: a summary: ``{"run": ..., "status": "done" | "skipped" | "locked", "final": last evaluation}``
        (``locked``: another process is training this run).
    """
    run_dir = Path(results_root) / spec.relative_dir()
    if is_done(run_dir):
        return {"run": str(spec.relative_dir()), "status": "skipped"}
    ckpt_dir = Path(checkpoint_root) / spec.relative_dir()
    ckpt = ckpt_dir / "checkpoint"
    if not _acquire_lock(ckpt_dir / "lock"):
        return {"run": str(spec.relative_dir()), "status": "locked"}
    try:
        return _train(spec, run_dir, ckpt_dir, ckpt, checkpoint_seconds)
    finally:
        (ckpt_dir / "lock").unlink(missing_ok=True)


def _acquire_lock(path: Path) -> bool:
    """Create ``path`` holding our pid; False if another live process holds it (two grids sharing a run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(path.read_text() or 0), 0)
                return False
            except (ValueError, ProcessLookupError, PermissionError):
                path.unlink(missing_ok=True)  # stale: its process died
                continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def _train(spec: RunSpec, run_dir: Path, ckpt_dir: Path, ckpt: Path, checkpoint_seconds: float) -> dict[str, Any]:
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    from sb3_equivariant.benchmark.config import action_noise, callbacks_of, model_kwargs
    from sb3_equivariant.envs import get_symmetry
    from sb3_equivariant.policies import count_parameters

    cpu_start = time.process_time()
    params = resolved_hyperparams(spec)
    algo_cls = algorithm_class(spec.algo)
    off_policy = issubclass(algo_cls, OffPolicyAlgorithm)
    env = make_envs(spec, params, spec.seed, int(params.get("n_envs", 1)))
    eval_env = make_envs(spec, params, spec.seed + 10_000, spec.n_eval_episodes)
    kwargs = model_kwargs(params, lambda: get_symmetry(env, required=True))
    noise = action_noise(params, env.action_space)
    if noise is not None:
        kwargs["action_noise"] = noise

    rows: list[dict[str, Any]] = []
    wall_offset = 0.0
    resume = _latest_checkpoint(ckpt)
    if resume is not None:
        model = algo_cls.load(resume / "model.zip", env=env, device="cpu")
        if isinstance(model, OffPolicyAlgorithm):
            model.load_replay_buffer(resume / "replay_buffer.pkl")
        rows = read_curve(resume / "curve.csv")
        wall_offset = json.loads((resume / "state.json").read_text())["wall_time"]
    else:
        policy = kwargs.pop("policy")
        model = algo_cls(policy, env, seed=spec.seed, device="cpu", verbose=0, **kwargs)
    model.set_logger(configure(str(ckpt_dir / "sb3_log"), ["csv"]))

    def checkpoint() -> None:
        _save_checkpoint(model, rows, ckpt, off_policy, rows[-1]["wall_time"])

    eval_callback = EvalCurveCallback(
        eval_env=eval_env,
        eval_seed=spec.seed + 10_000,
        eval_freq=spec.eval_freq,
        n_eval_episodes=spec.n_eval_episodes,
        rows=rows,
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
        wall_offset=wall_offset,
        progress_path=ckpt_dir / "progress",
    )
    remaining = spec.n_timesteps - int(model.num_timesteps)
    if remaining > 0:
        model.learn(remaining, callback=[*callbacks_of(params), eval_callback], reset_num_timesteps=resume is None)
    model.save(ckpt_dir / "final_model.zip")
    atomic_write_text(run_dir / "curve.csv", curve_text(rows))
    manifest = {
        "status": "done",
        "spec": {**dataclasses.asdict(spec), "overrides": dict(spec.overrides)},
        "algo": spec.algo,
        "hyperparams": params,
        "n_parameters": count_parameters(model.policy),
        "num_timesteps": int(model.num_timesteps),
        "wall_time": rows[-1]["wall_time"],
        "cpu_time_this_process": time.process_time() - cpu_start,
        "resumed": resume is not None,
        "versions": package_versions(),
        "final_model": str(ckpt_dir / "final_model.zip"),
    }
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest, indent=1, default=str))
    (run_dir / "failed.json").unlink(missing_ok=True)
    shutil.rmtree(ckpt, ignore_errors=True)
    env.close()
    eval_env.close()
    return {"run": str(spec.relative_dir()), "status": "done", "final": rows[-1]["mean_return"]}


# ---------------------------------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------------------------------


def _progress_steps(specs: list[RunSpec], results_root: Path, checkpoint_root: Path) -> int:
    """Env steps done so far: finished runs count fully, running ones by their last evaluation."""
    done = 0
    for spec in specs:
        if is_done(results_root / spec.relative_dir()):
            done += spec.n_timesteps
            continue
        with contextlib.suppress(ValueError, OSError):
            done += min(spec.n_timesteps, int((checkpoint_root / spec.relative_dir() / "progress").read_text()))
    return done


def run_grid(
    specs: list[RunSpec],
    results_root: str | Path,
    checkpoint_root: str | Path,
    jobs: int = 1,
    checkpoint_seconds: float = 60.0,
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    """
    Run every spec not finished yet, ``jobs`` at a time (one torch thread each), in the given order.

    :return: one summary per spec (failed runs have ``status: "failed"`` and the error).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results_root, checkpoint_root = Path(results_root), Path(checkpoint_root)
    todo = [s for s in specs if not is_done(results_root / s.relative_dir())]
    summaries: list[dict[str, Any]] = [{"run": str(s.relative_dir()), "status": "skipped"} for s in specs if s not in todo]
    if not todo:
        return summaries
    total_steps = sum(s.n_timesteps for s in specs)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, disable=not show_progress) as progress,
        ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool,
    ):
        runs_bar = progress.add_task("runs", total=len(specs), completed=len(specs) - len(todo))
        steps_bar = progress.add_task("env steps", total=total_steps)
        futures: dict[Future, RunSpec] = {
            pool.submit(run_one, s, str(results_root), str(checkpoint_root), checkpoint_seconds): s for s in todo
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=5.0, return_when=FIRST_COMPLETED)
            for future in finished:
                spec = futures[future]
                try:
                    summaries.append(future.result())
                except Exception as err:  # a failed run (e.g. diverged to NaN) must not stop the others; it is reported
                    summaries.append({"run": str(spec.relative_dir()), "status": "failed", "error": repr(err)})
                    atomic_write_text(results_root / spec.relative_dir() / "failed.json", json.dumps({"error": repr(err)}))
                    progress.console.print(f"[red]failed[/red] {spec.relative_dir()}: {err!r}")
                progress.advance(runs_bar)
            progress.update(steps_bar, completed=_progress_steps(specs, results_root, checkpoint_root))
    return summaries
