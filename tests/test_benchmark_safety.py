"""
Results anyone can trust: provenance of every run, crash safety under faults injected at exact points (kills of a run
or of its worker, two crashes in a row), the steps-to-threshold rule, disjoint evaluation seeds.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3.common.logger import Logger

import sb3_equivariant
from sb3_equivariant.benchmark import checkpoint, grid, storage
from sb3_equivariant.benchmark.aggregate import (
    missing_markdown,
    run_scores,
    run_status,
    steps_to_threshold,
    summarize,
    threshold_sensitivity,
)
from sb3_equivariant.benchmark.files import is_done, snapshot_partial
from sb3_equivariant.benchmark.provenance import MixedCommitsError, check_same_code, code_version, write_record
from sb3_equivariant.benchmark.runner import (
    EVAL_SEED_STRIDE,
    AppendingCSVOutputFormat,
    RunSpec,
    curve_text,
    eval_seed,
    read_curve,
    run_one,
)
from sb3_equivariant.benchmark.storage import RunLock, atomic_write_text, clean_stale_tmp, lock_holder

# ---------------------------------------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    names = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
    env = {**os.environ, **dict.fromkeys(names, "t")}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture
def fake_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding an ``sb3_equivariant`` package that ``code_version`` takes as the imported one."""
    repo = tmp_path / "repo"
    (repo / "sb3_equivariant").mkdir(parents=True)
    (repo / "sb3_equivariant" / "__init__.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text(".venv/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "init")
    monkeypatch.setattr(sb3_equivariant, "__file__", str(repo / "sb3_equivariant" / "__init__.py"))
    return repo


def test_code_version_commit_dirty_and_diff_hash(fake_checkout: Path) -> None:
    repo = fake_checkout
    clean = code_version(exclude=[repo / "results"])
    assert clean["commit"] == _git(repo, "rev-parse", "HEAD") and clean["dirty"] is False and clean["diff_sha256"] is None
    (repo / "results" / "exp").mkdir(parents=True)
    (repo / "results" / "exp" / "curve.csv").write_text("step\n0\n")  # results do not make the code dirty
    assert code_version(exclude=[repo / "results"])["dirty"] is False
    assert code_version()["dirty"] is True
    (repo / "sb3_equivariant" / "__init__.py").write_text("x = 2\n")
    edited = code_version(exclude=[repo / "results"])
    assert edited["dirty"] is True and edited["commit"] == clean["commit"] and len(edited["diff_sha256"]) == 64
    (repo / "sb3_equivariant" / "new.py").write_text("y = 1\n")  # untracked code counts too
    untracked = code_version(exclude=[repo / "results"])
    assert untracked["diff_sha256"] != edited["diff_sha256"]
    (repo / "sb3_equivariant" / "__init__.py").write_text("x = 3\n")
    assert code_version(exclude=[repo / "results"])["diff_sha256"] != untracked["diff_sha256"]


def test_measurement_record_names_its_code(fake_checkout: Path) -> None:
    out = fake_checkout / "results" / "memory.json"
    write_record(out, [{"peak_mb": 1.0}], ["benchmarks/memory.py", "--json", str(out)])
    record = json.loads(out.read_text())
    assert record["rows"] == [{"peak_mb": 1.0}] and record["command"].endswith(str(out))
    assert record["code"]["commit"] == _git(fake_checkout, "rev-parse", "HEAD") and record["code"]["dirty"] is False
    # files the measurement wrote beside the record do not make the code dirty when excluded
    (fake_checkout / "results" / "scores.csv").write_text("1\n")
    write_record(out, [], [], exclude=[fake_checkout / "results"])
    assert json.loads(out.read_text())["code"]["dirty"] is False
    write_record(out, [], [])
    assert json.loads(out.read_text())["code"]["dirty"] is True
    (fake_checkout / "sb3_equivariant" / "__init__.py").write_text("x = 2\n")
    write_record(out, [], [])
    assert json.loads(out.read_text())["code"]["dirty"] is True


def test_code_version_installed_copy_is_not_the_checkout(fake_checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A non-editable install into a venv inside a checkout: the copy is not tracked, so it has no commit.
    installed = fake_checkout / ".venv" / "lib" / "sb3_equivariant"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("x = 1\n")
    monkeypatch.setattr(sb3_equivariant, "__file__", str(installed / "__init__.py"))
    info = code_version()
    assert info["commit"] is None and info["package_path"] == str(installed.resolve())


def _manifest(run_dir: Path, code: dict[str, Any] | None = None, git_commit: str | None = None) -> None:
    manifest: dict[str, Any] = {"status": "done", "spec": {"seed": 0, "n_timesteps": 40}}
    if code is not None:
        manifest["code"] = code
    if git_commit is not None:
        manifest["versions"] = {"git_commit": git_commit}
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest))


def test_check_same_code(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    this = {"commit": "a" * 40, "diff_sha256": None}
    check_same_code(exp, this, allow_mixed=False)  # empty experiment
    _manifest(exp / "Env" / "m" / "seed0", code=this)
    check_same_code(exp, this, allow_mixed=False)
    _manifest(exp / "Env" / "m" / "seed1", git_commit="c29d062" + "0" * 33)  # an earlier runner's manifest
    with pytest.raises(MixedCommitsError, match=r"c29d062000.*1 runs.*--allow-mixed-commits"):
        check_same_code(exp, this, allow_mixed=False)
    check_same_code(exp, this, allow_mixed=True)
    same_dir = tmp_path / "same"
    _manifest(same_dir / "Env" / "m" / "seed0", code=this)
    with pytest.raises(MixedCommitsError, match=r"aaaaaaaaaa: 1 runs"):  # same commit, uncommitted changes: other code
        check_same_code(same_dir, {"commit": "a" * 40, "diff_sha256": "f" * 64}, allow_mixed=False)


def test_cli_refuses_to_mix_commits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sb3_equivariant.benchmark.__main__ import main

    _manifest(tmp_path / "res" / "x" / "CartPole-v1" / "baseline" / "seed0", code={"commit": "0" * 40, "diff_sha256": None})
    argv = ["--experiment", "x", "--config", "ppo", "--env", "CartPole-v1", "--methods", "baseline", "--seeds", "1"]
    argv += ["--results", str(tmp_path / "res"), "--checkpoints", str(tmp_path / "ckpt"), "--no-progress"]
    assert main(argv) == 2
    assert "--allow-mixed-commits" in capsys.readouterr().out
    assert not (tmp_path / "res" / "x" / "CartPole-v1" / "baseline" / "seed1").exists()


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints: a crash at every filesystem operation of a save, twice in a row
# ---------------------------------------------------------------------------------------------------------------------


class Crash(BaseException):
    """A kill: nothing after it runs (a BaseException, so no ``except Exception`` cleanup runs either)."""


REAL_OPS = (os.replace, shutil.rmtree, storage.atomic_write_text)


def _crash_at(monkeypatch: pytest.MonkeyPatch, n: int | None) -> dict[str, int]:
    """Make the ``n``-th filesystem operation of the checkpoint module (rename, delete, state write) crash."""
    calls = {"k": 0}

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls["k"] += 1
            if calls["k"] == n:
                raise Crash
            return fn(*args, **kwargs)

        return wrapped

    replace, rmtree, write = REAL_OPS
    monkeypatch.setattr(checkpoint.os, "replace", wrap(replace))
    monkeypatch.setattr(checkpoint.shutil, "rmtree", wrap(rmtree))
    monkeypatch.setattr(checkpoint, "atomic_write_text", wrap(write))
    return calls


def _save(ckpt_dir: Path, step: int) -> None:
    def write_files(directory: Path) -> None:
        (directory / "model.zip").write_text(f"model {step}")

    checkpoint.save_checkpoint(ckpt_dir, write_files, {"num_timesteps": step})


def _newest(ckpt_dir: Path) -> int:
    """The step of the newest complete checkpoint, checking that its files are that checkpoint's."""
    path, state = checkpoint.latest_checkpoint(ckpt_dir)  # type: ignore[misc]
    assert (path / "model.zip").read_text() == f"model {state['num_timesteps']}"
    return int(state["num_timesteps"])


def test_checkpoint_survives_two_crashes_in_a_row_at_every_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path / "count", 100)
    calls = _crash_at(monkeypatch, None)
    _save(tmp_path / "count", 200)
    n_ops = calls["k"]
    assert n_ops >= 4
    for first in range(1, n_ops + 1):
        for second in range(1, n_ops + 1):
            ckpt_dir = tmp_path / f"{first}-{second}"
            _crash_at(monkeypatch, None)
            _save(ckpt_dir, 100)
            _crash_at(monkeypatch, first)
            with pytest.raises(Crash):
                _save(ckpt_dir, 200)
            _crash_at(monkeypatch, None)
            after_first = _newest(ckpt_dir)
            assert after_first in (100, 200)  # 200 from the moment its state is written
            resumed = checkpoint.resume_point(ckpt_dir)  # the restarted run
            assert resumed is not None and resumed[1]["num_timesteps"] == after_first
            _crash_at(monkeypatch, second)
            with pytest.raises(Crash):
                _save(ckpt_dir, 300)
            _crash_at(monkeypatch, None)
            assert _newest(ckpt_dir) >= after_first  # nothing checkpointed is ever lost
            _save(ckpt_dir, 400)
            assert _newest(ckpt_dir) == 400 and sorted(p.name for p in ckpt_dir.iterdir()) == ["checkpoint"]


def test_checkpoint_complete_new_of_an_earlier_runner_is_used(tmp_path: Path) -> None:
    # The earlier runner's crash window: checkpoint moved to .old, the complete .new not yet renamed.
    for name, step in (("checkpoint.old", 100), ("checkpoint.new", 200)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.zip").write_text(f"model {step}")
        (tmp_path / name / "state.json").write_text(json.dumps({"num_timesteps": step, "wall_time": 1.0}))
    (tmp_path / "checkpoint.tmp").mkdir()  # incomplete: no state
    path, state = checkpoint.resume_point(tmp_path)  # type: ignore[misc]
    assert path == tmp_path / "checkpoint" and state["num_timesteps"] == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


# ---------------------------------------------------------------------------------------------------------------------
# Real runs killed with SIGKILL at exact points
# ---------------------------------------------------------------------------------------------------------------------


def _spec(**changes: Any) -> RunSpec:
    base: dict[str, Any] = dict(
        experiment="t", config="ppo", algo="ppo", env_id="CartPole-v1", method="baseline", seed=0, n_timesteps=768,
        eval_freq=256, n_eval_episodes=2,
    )  # fmt: skip
    return RunSpec(**{**base, **changes})


def _run_killed(spec: RunSpec, root: Path, at: str) -> int | None:
    """
    Run ``spec`` in a forked process that SIGKILLs itself: ``at="swap"`` when its second checkpoint is about to be
    renamed into place (the previous one already deleted), ``at="save"`` when its first checkpoint save starts.
    """

    def target() -> None:
        real_replace, real_save = os.replace, checkpoint.save_checkpoint
        swaps = {"k": 0}

        def replace(src: Any, dst: Any) -> None:
            if Path(src).name == "checkpoint.tmp":
                swaps["k"] += 1
                if swaps["k"] == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
            real_replace(src, dst)

        def save(*args: Any, **kwargs: Any) -> Any:
            os.kill(os.getpid(), signal.SIGKILL)
            return real_save(*args, **kwargs)

        if at == "swap":
            checkpoint.os.replace = replace  # type: ignore[assignment]
        else:
            checkpoint.save_checkpoint = save  # type: ignore[assignment]
        run_one(spec, str(root / "res"), str(root / "ckpt"), checkpoint_seconds=0)

    process = multiprocessing.get_context("fork").Process(target=target)
    process.start()
    process.join()
    return process.exitcode


def test_run_killed_twice_around_the_checkpoint_swap_resumes(tmp_path: Path) -> None:
    spec = _spec(n_timesteps=1024)  # checkpoints at the rollout starts 256, 512, 768
    ckpt_dir = tmp_path / "ckpt" / spec.relative_dir()
    # Killed between deleting its first checkpoint (256) and renaming the second (512): only checkpoint.tmp is left.
    assert _run_killed(spec, tmp_path, "swap") == -signal.SIGKILL
    assert sorted(p.name for p in ckpt_dir.glob("checkpoint*")) == ["checkpoint.tmp"]
    assert _newest_state(ckpt_dir) == 512
    # Killed again, resumed from it, when saving the next one: the resumed checkpoint is still there.
    assert _run_killed(spec, tmp_path, "save") == -signal.SIGKILL
    assert _newest_state(ckpt_dir) == 512
    assert (tmp_path / "res" / spec.relative_dir() / ".lock").exists()  # left by the killed process
    log = ckpt_dir / "sb3_log" / "progress.csv"
    rows_before = len(log.read_text().splitlines())
    out = run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))  # takes over the stale lock
    assert out["status"] == "done"
    run_dir = tmp_path / "res" / spec.relative_dir()
    assert [r["step"] for r in read_curve(run_dir / "curve.csv")] == [0, 256, 512, 768, 1024]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["resumed"] and manifest["eval_seeds"] == [eval_seed(0, 2), eval_seed(0, 2) + 2]
    assert len(log.read_text().splitlines()) > rows_before  # appended, not truncated
    assert sorted(p.name for p in run_dir.iterdir()) == ["curve.csv", "manifest.json"]


def test_checkpoints_do_not_wait_for_evaluations(tmp_path: Path) -> None:
    # Evaluations at 0 and 1024 only: a run killed at its second checkpoint still resumes from step 512.
    spec = _spec(n_timesteps=1024, eval_freq=1024)
    ckpt_dir = tmp_path / "ckpt" / spec.relative_dir()
    assert _run_killed(spec, tmp_path, "swap") == -signal.SIGKILL
    assert _newest_state(ckpt_dir) == 512
    path, state = checkpoint.latest_checkpoint(ckpt_dir)  # type: ignore[misc]
    assert [r["step"] for r in read_curve(path / "curve.csv")] == [0] and state["wall_time"] > 0
    assert run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))["status"] == "done"
    assert [r["step"] for r in read_curve(tmp_path / "res" / spec.relative_dir() / "curve.csv")] == [0, 1024]


def test_snapshot_of_an_unfinished_run_and_its_removal(tmp_path: Path) -> None:
    spec = _spec(n_timesteps=1024)
    run_dir, ckpt_dir = tmp_path / "res" / spec.relative_dir(), tmp_path / "ckpt" / spec.relative_dir()
    assert snapshot_partial(run_dir, ckpt_dir) is None  # nothing trained yet
    assert _run_killed(spec, tmp_path, "swap") == -signal.SIGKILL  # its newest checkpoint: step 512
    state = snapshot_partial(run_dir, ckpt_dir)
    assert state is not None and state["num_timesteps"] == 512 and state["code"]["commit"] == code_version()["commit"]
    assert [r["step"] for r in read_curve(run_dir / "partial" / "curve.csv")] == [0, 256, 512]
    assert run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))["status"] == "done"
    assert snapshot_partial(run_dir, ckpt_dir) is None and not (run_dir / "partial").exists()


def _newest_state(ckpt_dir: Path) -> int:
    return int(checkpoint.latest_checkpoint(ckpt_dir)[1]["num_timesteps"])  # type: ignore[index]


# ---------------------------------------------------------------------------------------------------------------------
# Locks, temporary files, atomic writes, SB3's CSV log
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, taken_over",
    [
        ({}, False),  # our own live process
        ({"start_time": "0"}, True),  # the pid is alive but belongs to a later process: stale
        ({"boot_id": "another boot"}, True),
        ({"pid": 2**22 + 1}, True),  # no such process
        ({"host": "another-host"}, False),  # cannot be checked from here: alive while its heartbeat is recent
        ({"host": "another-host", "heartbeat_age": storage.STALE_SECONDS + 1}, True),
    ],
)
def test_lock_takes_over_only_stale_locks(tmp_path: Path, change: dict[str, Any], taken_over: bool) -> None:
    path = tmp_path / ".lock"
    age = change.pop("heartbeat_age", 0.0)
    path.write_text(json.dumps({**lock_holder(), **change}))
    os.utime(path, (time.time() - age, time.time() - age))
    lock = RunLock(path)
    assert lock.acquire() is taken_over
    if taken_over:
        lock.release()
        assert not path.exists()
    else:
        assert lock.other is not None and path.exists()


def test_lock_heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "HEARTBEAT_SECONDS", 0.01)
    lock = RunLock(tmp_path / ".lock")
    assert lock.acquire()
    os.utime(lock.path, (0, 0))
    deadline = time.time() + 30
    while lock.path.stat().st_mtime == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert lock.path.stat().st_mtime > 0  # touched by the heartbeat
    lock.release()
    assert not lock.path.exists() and not lock._heartbeat.is_alive()  # type: ignore[union-attr]


def test_run_with_stale_lock_of_reused_pid_is_trained(tmp_path: Path) -> None:
    spec = _spec(n_timesteps=256)
    lock = tmp_path / "res" / spec.relative_dir() / ".lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({**lock_holder(), "pid": os.getppid(), "start_time": "0"}))  # pid alive, other process
    assert run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))["status"] == "done"


def test_clean_stale_tmp(tmp_path: Path) -> None:
    dead = tmp_path / f".curve.csv.{2**22 + 1}.tmp"
    live = tmp_path / f".summary.json.{os.getppid()}.tmp"
    for path in (dead, live):
        path.write_text("partial")
    assert clean_stale_tmp(tmp_path) == [dead]
    assert live.exists()


def test_atomic_writes_leave_old_file_and_no_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")
    monkeypatch.setattr(storage.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    fig = plt.figure()
    png = tmp_path / "curves.png"
    png.write_bytes(b"old png")
    with pytest.raises(OSError, match="disk full"):
        storage.atomic_savefig(fig, png)
    plt.close(fig)
    assert target.read_text() == "old" and png.read_bytes() == b"old png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "summary.json"]


def test_csv_log_appends_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "progress.csv"
    for keys in ({"a": 1}, {"a": 2, "b": 3}):
        logger = Logger(str(tmp_path), [AppendingCSVOutputFormat(str(path))])
        for key, value in keys.items():
            logger.record(key, value)
        logger.dump()
        logger.close()
    with open(path, "a") as f:
        f.write("4,")  # a row cut by a kill
    logger = Logger(str(tmp_path), [AppendingCSVOutputFormat(str(path))])
    logger.record("a", 5)
    logger.dump()
    logger.close()
    assert path.read_text().splitlines() == ["a,b", "1,", "2,3", "5,"]


# ---------------------------------------------------------------------------------------------------------------------
# The grid: a killed worker, two grids on one results directory
# ---------------------------------------------------------------------------------------------------------------------


def _kill_first_worker(lock: Path, killed: list[int], stop: threading.Event) -> None:
    while not stop.is_set() and not killed:
        holder = storage.read_lock(lock)
        if holder and holder.get("pid") != os.getpid():
            os.kill(holder["pid"], signal.SIGKILL)  # as the out-of-memory killer would
            killed.append(holder["pid"])
        time.sleep(0.05)


@pytest.mark.parametrize("max_restarts", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_killed_worker_fails_only_its_run(tmp_path: Path, max_restarts: int) -> None:
    specs = [_spec(n_timesteps=256), _spec(n_timesteps=256, seed=1)]
    killed: list[int] = []
    stop = threading.Event()
    lock = tmp_path / "res" / specs[0].relative_dir() / ".lock"
    killer = threading.Thread(target=_kill_first_worker, args=(lock, killed, stop))
    killer.start()
    try:
        out = grid.run_grid(specs, tmp_path / "res", tmp_path / "ckpt", jobs=1, show_progress=False, max_restarts=max_restarts)
    finally:
        stop.set()
        killer.join()
    assert killed
    status = {s["run"]: s["status"] for s in out}
    assert status[str(specs[1].relative_dir())] == "done"  # queued behind the killed run: never marked failed
    first = str(specs[0].relative_dir())
    if max_restarts == 0:
        assert status[first] == "failed"
        error = json.loads((tmp_path / "res" / first / "failed.json").read_text())["error"]
        assert "killed by SIGKILL" in error
    else:
        assert status[first] == "done" and not (tmp_path / "res" / first / "failed.json").exists()


def test_workers_end_with_their_killed_grid(tmp_path: Path) -> None:
    """SIGKILL of the grid (no clean-up runs) must not leave its worker training the run unattended."""
    spec = _spec(n_timesteps=1_000_000)
    script = (
        "import sys; from sb3_equivariant.benchmark import grid; from sb3_equivariant.benchmark.spec import RunSpec\n"
        "if __name__ == '__main__':\n"
        f"    grid.run_grid([RunSpec(**{dataclasses.asdict(spec)!r})], sys.argv[1], sys.argv[2], show_progress=False)\n"
    )
    (tmp_path / "grid_script.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(Path(sb3_equivariant.__file__).parents[1])}
    lock = tmp_path / "res" / spec.relative_dir() / ".lock"
    command = [sys.executable, str(tmp_path / "grid_script.py"), str(tmp_path / "res"), str(tmp_path / "ckpt")]
    parent = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (storage.read_lock(lock) or {}).get("pid"):
            assert parent.poll() is None and time.monotonic() < deadline, "the grid did not start its run"
            time.sleep(0.1)
        holder = storage.read_lock(lock)
        assert holder and holder["pid"] != parent.pid  # trained by a worker process
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5 * grid.PARENT_POLL_SECONDS + 5
        while storage.holder_alive(holder) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphaned = storage.holder_alive(holder)
    finally:
        parent.kill()
    if orphaned:
        os.kill(holder["pid"], signal.SIGKILL)
    assert not orphaned, "the worker kept training after its grid was killed"
    assert not is_done(tmp_path / "res" / spec.relative_dir())  # ended, not finished


def test_summary_lists_runs_of_other_grids_and_failures(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    steps = [0, 10, 20, 30]
    for seed in (0, 1):
        run_dir = exp / "Env-v0" / "m" / f"seed{seed}"
        rows = [dict(step=s, timesteps=s, mean_return=float(s), std_return=0.0, episodes=2, wall_time=1.0) for s in steps]
        atomic_write_text(run_dir / "curve.csv", curve_text(rows))
        _manifest(run_dir)
    running = exp / "Env-v0" / "m" / "seed2"  # trained by another grid right now
    assert RunLock(running / ".lock").acquire()
    atomic_write_text(exp / "Env-v0" / "m" / "seed3" / "failed.json", json.dumps({"error": "ValueError('nan')"}))
    summary = summarize(exp, threshold=None, reps=50, expected=[f"exp/Env-v0/m/seed{k}" for k in range(5)])
    missing = {m["run"]: m["status"] for m in summary["missing"]}
    assert missing == {"exp/Env-v0/m/seed2": "running", "exp/Env-v0/m/seed3": "failed", "exp/Env-v0/m/seed4": "not finished"}
    assert summary["rows"]["m"]["n_runs"] == 2
    text = missing_markdown(summary)
    assert "3 unfinished runs" in text and "ValueError('nan')" in text
    assert json.loads((exp / "summary.json").read_text())["missing"] == summary["missing"]


def test_failed_run_records_its_step_code_and_curve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose training raises (as a NaN loss does) reports when it failed, on which code, and its curve so far."""
    from stable_baselines3 import PPO

    real_train, calls = PPO.train, {"n": 0}

    def train_then_nan(self: PPO) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ValueError("Expected parameter logits to satisfy the constraint, but found invalid values:\ntensor([[nan]])")
        real_train(self)

    monkeypatch.setattr(PPO, "train", train_then_nan)
    spec = _spec(n_timesteps=2048, eval_freq=256)
    summary = grid.run_safely(spec, dict(results_root=str(tmp_path / "res"), checkpoint_root=str(tmp_path / "ckpt")))
    assert summary["status"] == "failed" and summary["error"].startswith("ValueError('Expected parameter logits")
    assert summary["num_timesteps"] == 3 * 256  # rl_zoo3's CartPole PPO: 8 envs x 32 steps; the third update fails
    assert summary["code"] == code_version(exclude=(str(tmp_path / "res"), str(tmp_path / "ckpt")))
    assert [row["step"] for row in summary["curve"]] == [0, 256, 512, 768]
    assert "ValueError" in summary["traceback"] and summary["versions"]["torch"]
    # The summary gives one line per failed run, however long the error's repr.
    atomic_write_text(tmp_path / "seed0" / "failed.json", json.dumps(summary, default=str))
    detail = run_status(tmp_path / "seed0")["detail"]
    assert detail == "ValueError('Expected parameter logits to satisfy the constraint, but found invalid values: at step 768"


# ---------------------------------------------------------------------------------------------------------------------
# Steps to threshold, evaluation seeds, training-episode return
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "returns, expected",
    [
        ([0, 0, 0, 0, 0, 500], np.inf),  # above only at the last evaluation
        ([0, 0, 0, 0, 500, 500], np.inf),  # the last two: still fewer than SUSTAIN = 3
        ([0, 0, 0, 500, 500, 500], 30),
        ([500, 0, 500, 500, 500, 0], 20),
        ([0, 500, 500, 0, 500, 500], np.inf),
    ],
)
def test_steps_to_threshold_needs_a_complete_window(returns: list[float], expected: float) -> None:
    steps = np.arange(6) * 10
    assert steps_to_threshold(steps, np.array([returns], dtype=float), 475.0)[0] == expected
    runs = [{"step": steps, "returns": np.array(returns, dtype=float)}]
    assert run_scores(runs, 475.0)["steps"][0] == expected


def test_threshold_sensitivity_shows_an_ordering_that_flips(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    curves = {"early_low": [0, 5, 5, 5, 5, 5, 5], "late_high": [0, 0, 0, 0, 10, 10, 10]}
    for label, returns in curves.items():
        run_dir = exp / "Env-v0" / label / "seed0"
        rows = [dict(step=10 * i, timesteps=10 * i, mean_return=float(r), std_return=0.0, episodes=1, wall_time=1.0)
                for i, r in enumerate(returns)]  # fmt: skip
        atomic_write_text(run_dir / "curve.csv", curve_text(rows))
        _manifest(run_dir)
    table = threshold_sensitivity(exp, [4.0, 8.0], order=["late_high", "early_low"])
    assert table.splitlines()[2] == "| late_high | 1 | 40 (1/1) | 40 (1/1) |"
    assert table.splitlines()[3] == "| early_low | 1 | 10 (1/1) | not reached (0/1) |"
    assert (exp / "threshold_sensitivity.csv").read_text().splitlines()[1] == "late_high,4,1,1,40,40"


def test_eval_seeds_are_disjoint_between_seeds_and_from_training() -> None:
    n_eval, n_envs = 20, 16
    eval_sets = [set(range(eval_seed(s, n_eval), eval_seed(s, n_eval) + n_eval)) for s in range(200)]
    assert sum(len(s) for s in eval_sets) == len(set().union(*eval_sets))
    train = set(range(0, 200 + n_envs))
    assert not train & set().union(*eval_sets)
    for bad in ((-1, 5), (0, EVAL_SEED_STRIDE + 1)):
        with pytest.raises(ValueError, match="disjoint evaluation seeds"):
            eval_seed(*bad)


def test_gridworld_eval_start_states_differ_between_seeds() -> None:
    from sb3_equivariant.envs import make_symmetric_vec_env

    def starts(first_seed: int) -> set[tuple[int, ...]]:
        env = make_symmetric_vec_env("sb3_equivariant/GridWorld-v0", n_envs=20, seed=first_seed)
        env.reset()
        states = {(*a, *p) for a, p in zip(env.get_attr("agent"), env.get_attr("prey"))}
        env.close()
        return states

    assert len(starts(10_000) & starts(10_001)) == 19  # the old ``seed + 10_000 + i``: seeds 0 and 1
    assert len(starts(eval_seed(0, 20)) & starts(eval_seed(1, 20))) <= 2  # 49 * 48 start states: chance overlap


def test_curve_records_training_episode_return(tmp_path: Path) -> None:
    spec = _spec(n_timesteps=512)
    run_one(spec, str(tmp_path / "res"), str(tmp_path / "ckpt"))
    rows = read_curve(tmp_path / "res" / spec.relative_dir() / "curve.csv")
    assert np.isnan(rows[0]["train_mean_return"])  # no training episode has ended at step 0
    assert all(np.isfinite(r["train_mean_return"]) and r["train_mean_return"] > 0 for r in rows[1:])
    manifest = json.loads((tmp_path / "res" / spec.relative_dir() / "manifest.json").read_text())
    assert set(manifest["code"]) >= {"commit", "dirty", "diff_sha256", "package_path"} and not manifest["allow_mixed_commits"]


# ---------------------------------------------------------------------------------------------------------------------
# The Ray backend: the same files as the local one; a killed Ray worker's run resumes
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


#: What legitimately differs between two runs of one spec: times and the process that trained it.
VOLATILE = {"wall_time", "cpu_time_this_process", "final_model"}


def _files(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("seed*/*")):
        key = str(path.relative_to(root))
        if path.name == "curve.csv":
            text = path.read_text().splitlines()
            column = text[0].split(",").index("wall_time")
            out[key] = [",".join(c for i, c in enumerate(line.split(",")) if i != column) for line in text]
        elif path.name == "manifest.json":
            out[key] = {k: v for k, v in json.loads(path.read_text()).items() if k not in VOLATILE}
        else:
            out[key] = path.read_bytes()
    return out


def test_ray_backend_writes_the_files_of_the_local_backend(tmp_path: Path, local_ray: Any) -> None:
    specs = [_spec(n_timesteps=256), _spec(n_timesteps=256, method="equivariant")]
    files = {}
    for backend in ("local", "ray"):
        root = tmp_path / backend
        out = grid.run_grid(specs, root / "res", root / "ckpt", jobs=1, show_progress=False, backend=backend)
        assert sorted(s["status"] for s in out) == ["done", "done"]
        files[backend] = _files(root / "res")
    assert len(files["local"]) == 4 and files["ray"] == files["local"]
    # Rerunning skips the finished runs, on either backend.
    again = grid.run_grid(specs, tmp_path / "ray" / "res", tmp_path / "ray" / "ckpt", show_progress=False, backend="ray")
    assert [s["status"] for s in again] == ["skipped", "skipped"]


@pytest.mark.slow
def test_ray_killed_worker_resumes_its_run(tmp_path: Path, local_ray: Any) -> None:
    specs = [_spec(n_timesteps=1024)]
    killed: list[int] = []
    stop = threading.Event()
    ckpt = tmp_path / "ckpt" / specs[0].relative_dir() / "checkpoint"
    lock = tmp_path / "res" / specs[0].relative_dir() / ".lock"

    def kill_after_checkpoint() -> None:
        while not stop.is_set() and not (ckpt / "state.json").exists():
            time.sleep(0.05)
        _kill_first_worker(lock, killed, stop)

    killer = threading.Thread(target=kill_after_checkpoint)
    killer.start()
    try:
        out = grid.run_grid(
            specs, tmp_path / "res", tmp_path / "ckpt", checkpoint_seconds=0, show_progress=False, backend="ray", max_restarts=1
        )
    finally:
        stop.set()
        killer.join()
    assert killed and out[0]["status"] == "done"
    manifest = json.loads((tmp_path / "res" / specs[0].relative_dir() / "manifest.json").read_text())
    assert manifest["resumed"]
