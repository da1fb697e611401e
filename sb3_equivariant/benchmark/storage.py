"""
Crash-safe files of the benchmark: atomic writes, cleanup of the temporary files a killed writer leaves behind, and
the per-run lock that keeps two grids (or two machines) from training the same run.

A temporary file is named ``.<name>.<pid>.tmp`` next to its target, so that a later process can tell whether its
writer is still alive (:func:`clean_stale_tmp`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

#: Name of a run's lock file (in the run's results directory).
LOCK_NAME = ".lock"
#: A lock holder touches its lock this often (seconds) while it trains.
HEARTBEAT_SECONDS = 60.0
#: A lock from another host whose last heartbeat is older than this (seconds) is stale: its host or process is gone.
STALE_SECONDS = 900.0


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem supports fsync on directories
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the complete new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for text (UTF-8)."""
    atomic_write_bytes(path, text.encode())


def atomic_savefig(fig: Any, path: Path, **kwargs: Any) -> None:
    """``fig.savefig`` to a temporary file, then moved into place (a killed plot never leaves half a PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def clean_stale_tmp(directory: Path) -> list[Path]:
    """
    Delete the temporary files (``.<name>.<pid>.tmp``) in ``directory`` whose writer is no longer alive.

    :return: the deleted files.
    """
    removed = []
    for tmp in Path(directory).glob(".*.tmp"):
        pid = tmp.name[: -len(".tmp")].rpartition(".")[2]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


# ---------------------------------------------------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    with contextlib.suppress(OSError):  # Linux: a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    return True


def process_start_time(pid: int) -> str | None:
    """
    When process ``pid`` started, as an opaque string (``None`` if it does not exist or the platform cannot say):
    with the boot id, it tells a process from a later one that reuses its pid.
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return repr(psutil.Process(pid).create_time())
        except psutil.Error:
            return None
    try:  # Linux without psutil: field 22 of /proc/<pid>/stat, in clock ticks since boot
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def boot_id() -> str:
    """An id of this boot of this machine (pids and process start times are only unique within one)."""
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    with contextlib.suppress(ImportError):
        import psutil

        return repr(psutil.boot_time())
    return "unknown"


def lock_holder() -> dict[str, Any]:
    """What a lock written by this process records: host, boot, pid, process start time and a unique nonce."""
    return {
        "host": socket.gethostname(),
        "boot_id": boot_id(),
        "pid": os.getpid(),
        "start_time": process_start_time(os.getpid()),
        "nonce": uuid.uuid4().hex,
    }


def holder_alive(holder: dict[str, Any], path: Path | None = None) -> bool:
    """
    Whether the process that wrote a lock is still running. The process of a lock from another host (a cluster with
    a shared filesystem) cannot be checked from here: it counts as alive while its heartbeat (the lock file's
    modification time, ``path``) is more recent than :data:`STALE_SECONDS`.
    """
    if holder.get("host") != socket.gethostname():
        try:
            return path is None or time.time() - Path(path).stat().st_mtime < STALE_SECONDS
        except FileNotFoundError:
            return False
    if holder.get("boot_id") != boot_id():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return False
    # The pid is in use, but by the lock's writer only if that process started when the writer did.
    return process_start_time(pid) == holder.get("start_time")


def read_lock(path: Path) -> dict[str, Any] | None:
    """The holder recorded in a lock file, ``{}`` if unreadable (a writer killed mid-write), ``None`` if absent."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else {}


def legacy_lock_pid(path: Path) -> int | None:
    """
    The pid in a lock of earlier runners (a pid in ``<checkpoints>/.../lock``) if that process is alive. Such a lock
    records no start time, so a reused pid keeps it alive: delete the file if no runner holds it.
    """
    try:
        pid = int(Path(path).read_text() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _pid_alive(pid) else None


class RunLock:
    """
    An exclusive lock on one run, as a file created with ``O_EXCL`` holding :func:`lock_holder`. A lock whose holder
    died (:func:`holder_alive` is False, also when its pid now belongs to another process) is taken over.

    :param path: the lock file.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.holder = lock_holder()
        #: After a failed :meth:`acquire`: the live holder.
        self.other: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> bool:
        """:return: True if this process now holds the lock; False if a live process does (see :attr:`other`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                other = read_lock(self.path)
                if other is None:
                    continue  # released meanwhile
                if other and holder_alive(other, self.path):
                    self.other = other
                    return False
                if not other and self._recent():
                    self.other = {"note": "a process is writing this lock"}
                    return False
                self._remove_if(other)  # stale: its holder died
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self.holder, f)
                f.flush()
                os.fsync(f.fileno())
            self._heartbeat = threading.Thread(target=self._beat, name=f"heartbeat {self.path}", daemon=True)
            self._heartbeat.start()
            return True
        return False

    def _beat(self) -> None:
        """Touch the lock while it is ours, so that other hosts see it is alive."""
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if read_lock(self.path) != self.holder:
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def _recent(self, seconds: float = 60.0) -> bool:
        with contextlib.suppress(FileNotFoundError):
            return time.time() - self.path.stat().st_mtime < seconds
        return False

    def _remove_if(self, holder: dict[str, Any]) -> None:
        """Remove the lock only if it still records ``holder`` (another process may have replaced it meanwhile)."""
        if read_lock(self.path) == holder:
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still ours."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self._remove_if(self.holder)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
