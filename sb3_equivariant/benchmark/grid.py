"""
Run a grid of :class:`~.runner.RunSpec` not finished yet, resumably, on one of two backends:

- ``local`` (default): ``jobs`` worker processes on this machine, one process per run. A worker that dies (killed,
  out of memory) costs only its own run, which restarts from its checkpoint (up to ``max_restarts`` times); the
  other runs, running or queued, are unaffected. Workers end within a second of their grid's death (SIGKILL
  included), so a killed grid leaves no run training unattended.
- ``ray``: every run a Ray task with one CPU (and ``gpus_per_run`` GPUs), on a local Ray instance or a cluster
  (``ray_address``). Ray reschedules the task of a dead worker (up to ``max_restarts`` times), and it resumes from
  its checkpoint. On a cluster, the results and checkpoint roots must be one shared filesystem mounted at the same
  path on every node, and every node must run the same commit (a node running other code refuses the run).

Both write the same files (:mod:`.runner`). Before anything runs, the grid refuses to add runs to an experiment whose
finished runs were produced by other code (:func:`~.provenance.check_same_code`) unless ``allow_mixed_commits``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import Any

from sb3_equivariant.benchmark.aggregate import failure_text
from sb3_equivariant.benchmark.provenance import check_same_code, code_version
from sb3_equivariant.benchmark.runner import RunFailedError, RunSpec, is_done, run_one
from sb3_equivariant.benchmark.storage import atomic_write_text

BACKENDS = ("local", "ray")
#: Seconds between progress updates while waiting for runs.
POLL_SECONDS = 5.0
#: Seconds between a worker's checks that its grid is still running.
PARENT_POLL_SECONDS = 1.0

Event = tuple[RunSpec, dict[str, Any]] | None


def run_safely(spec: RunSpec, kwargs: dict[str, Any]) -> dict[str, Any]:
    """:func:`~.runner.run_one`, with an exception (e.g. a run diverged to NaN) returned as a ``failed`` summary."""
    try:
        return run_one(spec, **kwargs)
    except RunFailedError as err:  # a failed run must not stop the others; it is reported, with where it stood
        failed = {"status": "failed", "error": repr(err.error), **err.record, "traceback": traceback.format_exc()}
        return {"run": str(spec.relative_dir()), **failed}
    except Exception as err:
        return {"run": str(spec.relative_dir()), "status": "failed", "error": repr(err), "traceback": traceback.format_exc()}


def _ray_task(cwd: str, spec: RunSpec, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A run as a Ray task, in the driver's working directory (relative results paths mean the same on every node)."""
    os.chdir(cwd)
    return run_safely(spec, kwargs)


def _child(conn: Connection, spec: RunSpec, kwargs: dict[str, Any], parent: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    conn.send(run_safely(spec, kwargs))
    conn.close()


def _exit_with_parent(parent: int) -> None:
    """
    End this worker once the grid that started it is gone (killed by SIGKILL or SIGTERM, which skip its clean-up):
    nobody would collect the run, and an orphan would keep training it beside the next grid. The run resumes from its
    checkpoint, and its lock, held by a dead process, is taken over.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _receive(connection: Connection) -> dict[str, Any] | None:
    """The summary a worker sent, ``None`` if it died first (also mid-send)."""
    try:
        return connection.recv() if connection.poll() else None
    except (EOFError, OSError, pickle.UnpicklingError):
        return None


def _exit_cause(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            name = signal.Signals(-exitcode).name
            return f"killed by {name}" + (", e.g. out of memory" if name == "SIGKILL" else "")
    return f"exit code {exitcode}"


def local_backend(
    specs: list[RunSpec], kwargs: dict[str, Any], jobs: int, max_restarts: int, log: Callable[[str], None]
) -> Iterator[Event]:
    """Runs ``specs`` in ``jobs`` spawned processes, one per run; yields ``(spec, summary)``, or ``None`` to tick."""
    ctx = get_context("spawn")
    queue = list(specs)
    deaths: dict[RunSpec, int] = {}
    running: dict[Any, tuple[Any, RunSpec, Connection]] = {}
    try:
        while queue or running:
            while queue and len(running) < jobs:
                spec = queue.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_child, args=(send, spec, kwargs, os.getpid()), name=f"run {spec.relative_dir()}")
                process.start()
                send.close()
                running[process.sentinel] = (process, spec, receive)
            ready = wait_for(list(running), timeout=POLL_SECONDS)
            if not ready:
                yield None
                continue
            for sentinel in ready:
                process, spec, receive = running.pop(sentinel)
                summary = _receive(receive)
                process.join()
                receive.close()
                if summary is not None:
                    yield spec, summary
                    continue
                deaths[spec] = deaths.get(spec, 0) + 1
                cause = _exit_cause(process.exitcode)
                if deaths[spec] <= max_restarts:
                    log(f"worker of {spec.relative_dir()} died ({cause}); restarting it from its checkpoint")
                    queue.insert(0, spec)
                else:
                    error = f"worker process died {deaths[spec]} times (last: {cause})"
                    yield spec, {"run": str(spec.relative_dir()), "status": "failed", "error": error}
    finally:
        for process, _, receive in running.values():
            process.terminate()
            process.join()
            receive.close()


def ray_backend(
    specs: list[RunSpec],
    kwargs: dict[str, Any],
    jobs: int,
    max_restarts: int,
    log: Callable[[str], None],
    address: str | None = None,
    gpus_per_run: float = 0.0,
) -> Iterator[Event]:
    """
    Runs ``specs`` as Ray tasks (one CPU each); yields ``(spec, summary)``, or ``None`` to tick.

    :param address: a Ray cluster to join (``"auto"``, ``"ray://host:10001"``...); ``None`` starts a local instance
        with ``jobs`` CPUs (stopped at the end).
    :param gpus_per_run: GPUs each run requests; runs then train on ``cuda``.
    """
    try:
        import ray
        from ray.exceptions import RayError
    except ImportError:
        raise ImportError("the ray backend needs Ray: pip install 'sb3-equivariant[ray]'") from None

    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1, num_gpus=gpus_per_run, max_retries=max_restarts)(_ray_task)
        task_kwargs = {**kwargs, "device": "cuda" if gpus_per_run > 0 else "cpu"}
        refs = {task.remote(os.getcwd(), spec, task_kwargs): spec for spec in specs}
        pending = list(refs)
        log(f"ray: {len(refs)} tasks on {ray.cluster_resources().get('CPU', 0):g} CPUs")
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=POLL_SECONDS)
            if not done:
                yield None
                continue
            for ref in done:
                spec = refs[ref]
                try:
                    summary = ray.get(ref)
                except RayError as err:  # the worker (or its node) died more than max_restarts times
                    summary = {"run": str(spec.relative_dir()), "status": "failed", "error": f"ray task failed: {err!r}"}
                yield spec, summary
    finally:
        if started:
            ray.shutdown()


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
    backend: str = "local",
    ray_address: str | None = None,
    gpus_per_run: float = 0.0,
    allow_mixed_commits: bool = False,
    max_restarts: int = 2,
) -> list[dict[str, Any]]:
    """
    Run every spec not finished yet, ``jobs`` at a time (one torch thread each), in the given order.

    :param backend: ``"local"`` (worker processes) or ``"ray"``.
    :param ray_address: Ray cluster to join (ray backend; default: a local instance).
    :param gpus_per_run: GPUs per run (ray backend).
    :param allow_mixed_commits: add runs to experiments holding results of other code (recorded in the manifests).
    :param max_restarts: restarts of a run whose worker died, before it counts as failed.
    :return: one summary per spec: ``done``, ``skipped`` (finished before), ``locked`` (another live process trains
        it) or ``failed`` (with the error; also written to the run's ``failed.json``).
    :raises ~.provenance.MixedCommitsError: an experiment holds results of other code.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    results_root, checkpoint_root = Path(results_root), Path(checkpoint_root)
    code = code_version(exclude=(results_root, checkpoint_root))
    for experiment in dict.fromkeys(s.experiment for s in specs):
        check_same_code(results_root / experiment, code, allow_mixed_commits)
    todo = [s for s in specs if not is_done(results_root / s.relative_dir())]
    summaries: list[dict[str, Any]] = [{"run": str(s.relative_dir()), "status": "skipped"} for s in specs if s not in todo]
    if not todo:
        return summaries
    kwargs = dict(
        results_root=str(results_root),
        checkpoint_root=str(checkpoint_root),
        checkpoint_seconds=checkpoint_seconds,
        expected_code=code,
        allow_mixed_commits=allow_mixed_commits,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not show_progress) as progress:
        runs_bar = progress.add_task("runs", total=len(specs), completed=len(specs) - len(todo))
        steps_bar = progress.add_task("env steps", total=sum(s.n_timesteps for s in specs))
        log = progress.console.print
        if backend == "ray":
            events = ray_backend(todo, kwargs, jobs, max_restarts, log, ray_address, gpus_per_run)
        else:
            events = local_backend(todo, kwargs, jobs, max_restarts, log)
        for event in events:
            if event is not None:
                spec, summary = event
                summaries.append(summary)
                if summary["status"] == "failed":
                    error = {k: v for k, v in summary.items() if k not in ("run", "status")}
                    failed_json = json.dumps(error, indent=1, default=str)
                    atomic_write_text(results_root / spec.relative_dir() / "failed.json", failed_json)
                    log(f"[red]failed[/red] {spec.relative_dir()}: {failure_text(error)}")
                elif summary["status"] == "locked":
                    log(f"[yellow]skipped[/yellow] {spec.relative_dir()}: another process trains it ({summary.get('holder')})")
                progress.advance(runs_bar)
            progress.update(steps_bar, completed=_progress_steps(specs, results_root, checkpoint_root))
    return summaries
