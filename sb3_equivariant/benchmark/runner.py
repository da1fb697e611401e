"""
One training run of a benchmark grid, resumable, and the files it writes.

Each run writes, under ``<results>/<experiment>/<env>/<label>/seed<k>/``, only when it has finished:
``curve.csv`` (deterministic evaluations on a separate env, plus the mean return of the last 100 training episodes:
see :data:`CURVE_FIELDS`) and ``manifest.json`` (exact hyperparameters, seed, evaluation seeds, the code that ran
(commit, dirty tree and diff hash), package versions, parameter count, times). Both are written atomically
(temporary file + ``os.replace``), the manifest last: a run is finished iff its manifest says so. While a process
trains a run, it holds the run's lock, ``.lock`` in the same directory (:class:`~.storage.RunLock`): two grids sharing
a results directory never train the same run, whatever their checkpoint directories.

While it runs, a checkpoint (model with its optimizer, the replay buffer for off-policy algorithms, the curve so far,
the last training episodes) is written under ``<checkpoints>/<experiment>/<env>/<label>/seed<k>/`` at most every
``checkpoint_seconds`` of wall time, at the start of a rollout (after SB3's update, so model, optimizer and curve agree;
a long evaluation interval does not stretch the time between checkpoints); see
:mod:`.checkpoint` for why a kill at any moment loses nothing but the steps since the last one. A killed run resumes
from it (the training envs restart their episodes: resumed runs are not bit-identical to uninterrupted ones);
rerunning skips finished runs. SB3's ``progress.csv`` log is appended to on resume.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import CSVOutputFormat, Logger
from stable_baselines3.common.vec_env import VecEnv

from sb3_equivariant.benchmark import checkpoint as ckpt_io
from sb3_equivariant.benchmark.provenance import MixedCommitsError, code_key, code_version, describe, package_versions
from sb3_equivariant.benchmark.storage import LOCK_NAME, RunLock, atomic_write_text, clean_stale_tmp, legacy_lock_pid

__all__ = [
    "CURVE_FIELDS",
    "EvalCurveCallback",
    "RunSpec",
    "atomic_write_text",
    "curve_text",
    "eval_seed",
    "is_done",
    "read_curve",
    "read_manifest",
    "run_one",
]

#: Columns of ``curve.csv``. ``mean_return`` / ``std_return`` / ``episodes``: the deterministic evaluation;
#: ``train_mean_return``: mean return of the last (up to) 100 training episodes (SB3's ``ep_info_buffer``: stochastic
#: actions, the quantity the paper plots), ``nan`` before the first one ends. Curves of earlier runners lack it.
CURVE_FIELDS = ("step", "timesteps", "mean_return", "std_return", "episodes", "wall_time", "train_mean_return")
#: Evaluation seeds of training seed ``s`` are ``EVAL_SEED_BASE + s * EVAL_SEED_STRIDE + i``, ``i < n_eval_episodes``:
#: disjoint between training seeds (and from the training envs' seeds ``s + i``).
EVAL_SEED_BASE = 1_000_000
EVAL_SEED_STRIDE = 10_000
#: Training seeds stay below this, far below the evaluation seeds.
MAX_SEED = 100_000


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """
    One training run.

    :param experiment: name of the experiment (a directory under the results root).
    :param config: zoo config name (``"ppo"``, ``"ppo_paper"``...), which also fixes the algorithm.
    :param algo: rl_zoo3's name: ``"ppo"``, ``"a2c"``, ``"dqn"``, ``"qrdqn"``, ``"sac"``, ``"td3"`` or ``"ppo_lstm"``.
    :param env_id: gymnasium id.
    :param method: method of ``methods.yml``.
    :param seed: seed of the algorithm and the training envs (eval envs: :func:`eval_seed`).
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


def eval_seed(seed: int, n_eval_episodes: int) -> int:
    """
    Seed of the first evaluation env of training seed ``seed`` (env ``i`` gets ``eval_seed + i``). Seeds ``k`` and
    ``k + 1`` must not share start states (with ``seed + 10_000 + i`` they shared all but one).
    """
    if not 0 <= seed < MAX_SEED or n_eval_episodes > EVAL_SEED_STRIDE:
        raise ValueError(
            f"seed {seed} / n_eval_episodes {n_eval_episodes}: disjoint evaluation seeds need 0 <= seed < {MAX_SEED} "
            f"and n_eval_episodes <= {EVAL_SEED_STRIDE}"
        )
    return EVAL_SEED_BASE + seed * EVAL_SEED_STRIDE


# ---------------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------------


def curve_text(rows: list[dict[str, Any]]) -> str:
    fields = [k for k in CURVE_FIELDS if all(k in row for row in rows)]
    lines = [",".join(fields)]
    lines += [",".join(_fmt(row[k]) for k in fields) for row in rows]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def read_curve(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``curve.csv`` (also of earlier runners, without ``train_mean_return``)."""
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


class AppendingCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV log, continuing an existing file (a resumed run) instead of truncating it."""

    def __init__(self, filename: str):
        path = Path(filename)
        text = path.read_text() if path.exists() else ""
        if text and not text.endswith("\n"):  # a row cut by a kill
            text = text[: text.rfind("\n") + 1]
            path.write_text(text)
        super().__init__(filename if not text else os.devnull)
        if text:
            self.file.close()
            self.file = open(path, "r+")  # noqa: SIM115 - closed by Logger.close, as SB3's own
            self.file.seek(0, 2)
            self.keys = text.partition("\n")[0].split(",")


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
    to ``rows`` with the mean return of the last training episodes; calls ``checkpoint(wall_time)`` at the start of a
    rollout when ``checkpoint_seconds`` have passed since the last one and steps were taken since.

    :param eval_env: evaluation envs (one episode each).
    :param eval_seed: reseeds ``eval_env`` before every evaluation: the same start states every time, so differences
        between points are the policy's.
    :param eval_freq: env steps between evaluations.
    :param n_eval_episodes: episodes per evaluation.
    :param rows: the curve, appended to (resumed runs pass the rows of their checkpoint).
    :param checkpoint: writes a checkpoint, given the run's wall time so far.
    :param checkpoint_seconds: minimum wall time between checkpoints.
    :param wall_offset: wall time already spent (resumed runs).
    :param progress_path: file updated with the step count after each evaluation and checkpoint (for the progress bar).
    :param episodes: training episodes to restore into SB3's ``ep_info_buffer`` (resumed runs: SB3 does not save it).
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_seed: int,
        eval_freq: int,
        n_eval_episodes: int,
        rows: list[dict[str, Any]],
        checkpoint: Callable[[float], None],
        checkpoint_seconds: float,
        wall_offset: float,
        progress_path: Path,
        episodes: list[dict[str, float]] | None = None,
    ):
        super().__init__()
        self.eval_env, self.eval_seed = eval_env, eval_seed
        self.eval_freq, self.n_eval_episodes = eval_freq, n_eval_episodes
        self.rows, self.checkpoint, self.checkpoint_seconds = rows, checkpoint, checkpoint_seconds
        self.progress_path = progress_path
        self.episodes = episodes or []
        self.start = time.time() - wall_offset
        self.last_checkpoint = time.time()
        self.checkpointed_steps: int | None = None

    def _next_step(self) -> int:
        return 0 if not self.rows else self.rows[-1]["step"] + self.eval_freq

    def _train_mean_return(self) -> float:
        buffer = self.model.ep_info_buffer
        return float(np.mean([ep["r"] for ep in buffer])) if buffer else math.nan

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
                train_mean_return=self._train_mean_return(),
            )
        )
        self.logger.record("eval/mean_return", self.rows[-1]["mean_return"])
        atomic_write_text(self.progress_path, str(self.num_timesteps))

    def _on_training_start(self) -> None:
        self.checkpointed_steps = self.num_timesteps
        if self.model.ep_info_buffer is not None:
            self.model.ep_info_buffer.extend(self.episodes)
        if not self.rows:
            self._evaluate()

    def _on_rollout_start(self) -> None:
        # Between SB3's update and the next rollout: nothing collected is lost by resuming from here.
        if self.num_timesteps > (self.checkpointed_steps or 0) and time.time() - self.last_checkpoint >= self.checkpoint_seconds:
            self.checkpoint(time.time() - self.start)
            self.checkpointed_steps, self.last_checkpoint = self.num_timesteps, time.time()
            atomic_write_text(self.progress_path, str(self.num_timesteps))

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_step():
            self._evaluate()
        return True


def _episodes(model: BaseAlgorithm) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in ep.items() if k in ("r", "l", "t")} for ep in (model.ep_info_buffer or [])]


def run_one(
    spec: RunSpec,
    results_root: str,
    checkpoint_root: str,
    checkpoint_seconds: float = 60.0,
    expected_code: dict[str, Any] | None = None,
    allow_mixed_commits: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """
    Train one run to completion (resuming from its checkpoint if any) and write its results.

    :param expected_code: the code identity of the grid (:func:`~.provenance.code_version` of the process that
        planned it); a worker running other code (another machine's checkout, an edited tree) refuses the run.
    :param allow_mixed_commits: accept other code, and a checkpoint written by other code (recorded in the manifest).
    :param device: torch device of the model.
    :return: a summary: ``{"run": ..., "status": "done" | "skipped" | "locked", "final": last evaluation}``
        (``locked``: another live process is training this run; ``holder`` says which).
    """
    run_dir = Path(results_root) / spec.relative_dir()
    if is_done(run_dir):
        return {"run": str(spec.relative_dir()), "status": "skipped"}
    ckpt_dir = Path(checkpoint_root) / spec.relative_dir()
    code = code_version(exclude=(results_root, checkpoint_root))
    if expected_code is not None and code_key(code) != code_key(expected_code) and not allow_mixed_commits:
        raise MixedCommitsError(
            f"{spec.relative_dir()}: this worker runs {describe(code)} from {code['package_path']}, the grid was "
            f"planned with {describe(expected_code)}; install the same commit on every machine, or pass "
            "--allow-mixed-commits"
        )
    legacy_pid = legacy_lock_pid(ckpt_dir / "lock")  # an earlier runner (a pinned commit) may train it right now
    if legacy_pid is not None:
        return {
            "run": str(spec.relative_dir()),
            "status": "locked",
            "holder": {"pid": legacy_pid, "lock": str(ckpt_dir / "lock")},
        }
    lock = RunLock(run_dir / LOCK_NAME)
    if not lock.acquire():
        return {"run": str(spec.relative_dir()), "status": "locked", "holder": lock.other}
    try:
        for directory in (run_dir, ckpt_dir):
            clean_stale_tmp(directory)
        return _train(spec, run_dir, ckpt_dir, checkpoint_seconds, code, allow_mixed_commits, device)
    finally:
        lock.release()


def _train(
    spec: RunSpec,
    run_dir: Path,
    ckpt_dir: Path,
    checkpoint_seconds: float,
    code: dict[str, Any],
    allow_mixed: bool,
    device: str,
) -> dict[str, Any]:
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    from sb3_equivariant.benchmark.config import action_noise, callbacks_of, model_kwargs
    from sb3_equivariant.envs import get_symmetry
    from sb3_equivariant.policies import count_parameters

    cpu_start = time.process_time()
    params = resolved_hyperparams(spec)
    algo_cls = algorithm_class(spec.algo)
    first_eval_seed = eval_seed(spec.seed, spec.n_eval_episodes)
    env = make_envs(spec, params, spec.seed, int(params.get("n_envs", 1)))
    eval_env = make_envs(spec, params, first_eval_seed, spec.n_eval_episodes)
    kwargs = model_kwargs(params, lambda: get_symmetry(env, required=True))
    noise = action_noise(params, env.action_space)
    if noise is not None:
        kwargs["action_noise"] = noise

    rows: list[dict[str, Any]] = []
    wall_offset = 0.0
    episodes: list[dict[str, float]] = []
    resumed_codes: list[dict[str, Any]] = []
    resume = ckpt_io.resume_point(ckpt_dir)
    if resume is not None:
        path, state = resume
        checkpoint_code: dict[str, Any] = state.get("code") or {}
        if code_key(checkpoint_code) != code_key(code) and not allow_mixed:
            raise MixedCommitsError(
                f"{path} was written by {describe(checkpoint_code)}, this is {describe(code)}: resuming would mix "
                "code within one run; delete the checkpoint to start over, or pass --allow-mixed-commits"
            )
        resumed_codes = [*state.get("resumed_codes", []), checkpoint_code]
        model = algo_cls.load(path / "model.zip", env=env, device=device)
        if isinstance(model, OffPolicyAlgorithm):
            model.load_replay_buffer(path / "replay_buffer.pkl")
        rows = read_curve(path / "curve.csv")
        wall_offset = float(state["wall_time"])
        episodes = state.get("episodes", [])
    else:
        policy = kwargs.pop("policy")
        model = algo_cls(policy, env, seed=spec.seed, device=device, verbose=0, **kwargs)
    log_dir = ckpt_dir / "sb3_log"
    log_dir.mkdir(parents=True, exist_ok=True)
    model.set_logger(Logger(str(log_dir), [AppendingCSVOutputFormat(str(log_dir / "progress.csv"))]))

    def write_files(directory: Path) -> None:
        model.save(directory / "model.zip")
        if isinstance(model, OffPolicyAlgorithm):
            model.save_replay_buffer(directory / "replay_buffer.pkl")
        (directory / "curve.csv").write_text(curve_text(rows))

    def checkpoint(wall_time: float) -> None:
        state = {
            "num_timesteps": int(model.num_timesteps),
            "wall_time": wall_time,
            "episodes": _episodes(model),
            "code": code,
            "resumed_codes": resumed_codes,
        }
        ckpt_io.save_checkpoint(ckpt_dir, write_files, state)

    eval_callback = EvalCurveCallback(
        eval_env=eval_env,
        eval_seed=first_eval_seed,
        eval_freq=spec.eval_freq,
        n_eval_episodes=spec.n_eval_episodes,
        rows=rows,
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
        wall_offset=wall_offset,
        progress_path=ckpt_dir / "progress",
        episodes=episodes,
    )
    remaining = spec.n_timesteps - int(model.num_timesteps)
    if remaining > 0:
        model.learn(remaining, callback=[*callbacks_of(params), eval_callback], reset_num_timesteps=resume is None)
    model.logger.close()
    model.save(ckpt_dir / "final_model.zip")
    atomic_write_text(run_dir / "curve.csv", curve_text(rows))
    manifest = {
        "status": "done",
        "spec": {**dataclasses.asdict(spec), "overrides": dict(spec.overrides)},
        "algo": spec.algo,
        "device": device,
        "hyperparams": params,
        "n_parameters": count_parameters(model.policy),
        "num_timesteps": int(model.num_timesteps),
        "eval_seeds": [first_eval_seed, first_eval_seed + spec.n_eval_episodes],
        "wall_time": rows[-1]["wall_time"],
        "cpu_time_this_process": time.process_time() - cpu_start,
        "resumed": resume is not None,
        "code": code,
        "resumed_from_code": [c for c in resumed_codes if code_key(c) != code_key(code)],
        "allow_mixed_commits": allow_mixed,
        "versions": package_versions(),
        "final_model": str(ckpt_dir / "final_model.zip"),
    }
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest, indent=1, default=str))
    (run_dir / "failed.json").unlink(missing_ok=True)
    for name in ckpt_io.CANDIDATES:
        ckpt_io.drop(ckpt_dir / name)
    env.close()
    eval_env.close()
    return {"run": str(spec.relative_dir()), "status": "done", "final": rows[-1]["mean_return"]}
