"""
Checkpoints of a run that survive a kill at any point, also several kills in a row.

A checkpoint is a directory (model, replay buffer, curve so far, training-episode statistics) that is *complete* iff
its ``state.json`` exists: that file is written last, atomically, after every other file was flushed to disk, and it
is deleted first when the directory is dropped. A new checkpoint is written to ``checkpoint.tmp`` and then promoted:
every other checkpoint directory is dropped and ``checkpoint.tmp`` renamed to ``checkpoint`` (one atomic rename).
Whatever the moment of a kill, the newest complete checkpoint is still on disk under one of the candidate names,
and :func:`latest_checkpoint` finds it (``checkpoint.new`` / ``checkpoint.old`` are the names of earlier versions of
the runner, still read).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sb3_equivariant.benchmark.storage import atomic_write_text

#: Where a run's checkpoint may be, in order of preference between equally new ones.
CANDIDATES = ("checkpoint", "checkpoint.tmp", "checkpoint.new", "checkpoint.old")
STATE = "state.json"


def read_state(directory: Path) -> dict[str, Any] | None:
    """The state of a complete checkpoint directory, ``None`` if it is incomplete or absent."""
    try:
        state = json.loads((directory / STATE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return state if isinstance(state, dict) and "num_timesteps" in state else None


def latest_checkpoint(ckpt_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint of a run (most env steps) and its state, or ``None``."""
    found = []
    for rank, name in enumerate(CANDIDATES):
        state = read_state(ckpt_dir / name)
        if state is not None:
            found.append((-int(state["num_timesteps"]), rank, ckpt_dir / name, state))
    if not found:
        return None
    _, _, path, state = min(found, key=lambda item: item[:2])
    return path, state


def drop(directory: Path) -> None:
    """Delete a checkpoint directory, marking it incomplete first (a kill during the deletion leaves no half one)."""
    (directory / STATE).unlink(missing_ok=True)
    shutil.rmtree(directory, ignore_errors=True)


def promote(source: Path) -> Path:
    """
    Make the complete checkpoint ``source`` the run's only checkpoint, named ``checkpoint``. ``source`` stays complete
    throughout, so a kill at any point leaves it (under its old or new name) as the newest.
    """
    target = source.with_name(CANDIDATES[0])
    for name in CANDIDATES:
        other = source.with_name(name)
        if other != source and (other.exists() or other.is_symlink()):
            drop(other)
    if source != target:
        os.replace(source, target)
    return target


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def save_checkpoint(ckpt_dir: Path, write_files: Any, state: dict[str, Any]) -> Path:
    """
    Write a new checkpoint and promote it.

    :param ckpt_dir: the run's checkpoint directory.
    :param write_files: ``write_files(directory)`` writes the model and everything else except the state.
    :param state: the state (must contain ``num_timesteps``), written last.
    :return: the checkpoint's path.
    """
    tmp = ckpt_dir / CANDIDATES[1]
    drop(tmp)
    tmp.mkdir(parents=True)
    write_files(tmp)
    _fsync_tree(tmp)
    atomic_write_text(tmp / STATE, json.dumps(state))
    return promote(tmp)


def resume_point(ckpt_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """
    The checkpoint to resume from: the newest complete one, promoted to ``checkpoint`` so that the next save cannot
    drop it before its successor is complete; ``None`` if there is none (incomplete ones are dropped).
    """
    latest = latest_checkpoint(ckpt_dir)
    if latest is None:
        for name in CANDIDATES:
            if (ckpt_dir / name).exists():
                drop(ckpt_dir / name)
        return None
    path, state = latest
    return promote(path), state
