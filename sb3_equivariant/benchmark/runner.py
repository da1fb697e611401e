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

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import Logger

from sb3_equivariant.benchmark import checkpoint as ckpt_io
from sb3_equivariant.benchmark.build import algorithm_class, make_envs, resolved_hyperparams
from sb3_equivariant.benchmark.callbacks import EvalCurveCallback, training_episodes
from sb3_equivariant.benchmark.files import (
    CURVE_FIELDS,
    AppendingCSVOutputFormat,
    curve_text,
    is_done,
    read_curve,
    read_manifest,
)
from sb3_equivariant.benchmark.provenance import MixedCommitsError, code_key, code_version, describe, package_versions
from sb3_equivariant.benchmark.spec import EVAL_SEED_BASE, EVAL_SEED_STRIDE, MAX_SEED, RunSpec, env_slug, eval_seed
from sb3_equivariant.benchmark.storage import LOCK_NAME, RunLock, atomic_write_text, clean_stale_tmp, legacy_lock_pid

# The names below moved to .spec, .files, .build and .callbacks; importing them from here keeps working.
__all__ = [
    "CURVE_FIELDS",
    "EVAL_SEED_BASE",
    "EVAL_SEED_STRIDE",
    "MAX_SEED",
    "AppendingCSVOutputFormat",
    "EvalCurveCallback",
    "RunFailedError",
    "RunSpec",
    "algorithm_class",
    "atomic_write_text",
    "curve_text",
    "env_slug",
    "eval_seed",
    "is_done",
    "make_envs",
    "read_curve",
    "read_manifest",
    "resolved_hyperparams",
    "run_one",
]


class RunFailedError(RuntimeError):
    """
    Training raised (e.g. the loss went NaN): the original error, and where the run stood for its ``failed.json``.

    :param error: the exception training raised.
    :param record: ``num_timesteps`` reached, the ``code`` and package ``versions`` that ran, the ``curve`` so far.
    """

    def __init__(self, error: BaseException, record: dict[str, Any]):
        super().__init__(repr(error))
        self.error, self.record = error, record


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
    algo_cls = algorithm_class(spec.algo, params)
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
            "episodes": training_episodes(model),
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
        try:
            model.learn(remaining, callback=[*callbacks_of(params), eval_callback], reset_num_timesteps=resume is None)
        except Exception as err:  # the failure is a result too: record when it happened and which code ran
            record = {"num_timesteps": int(model.num_timesteps), "code": code, "versions": package_versions(), "curve": rows}
            raise RunFailedError(err, record) from err
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
