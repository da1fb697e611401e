"""The files of a run: its ``curve.csv``, its ``manifest.json`` and SB3's ``progress.csv`` continued on resume."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import CSVOutputFormat

#: Columns of ``curve.csv``. ``mean_return`` / ``std_return`` / ``episodes``: the deterministic evaluation;
#: ``train_mean_return``: mean return of the last (up to) 100 training episodes (SB3's ``ep_info_buffer``: stochastic
#: actions, the quantity the paper plots), ``nan`` before the first one ends. Curves of earlier runners lack it.
CURVE_FIELDS = ("step", "timesteps", "mean_return", "std_return", "episodes", "wall_time", "train_mean_return")


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


__all__ = ["CURVE_FIELDS", "AppendingCSVOutputFormat", "curve_text", "is_done", "read_curve", "read_manifest"]


def snapshot_partial(run_dir: Path, ckpt_dir: Path) -> dict[str, Any] | None:
    """
    Copy the curve of an unfinished run's newest complete checkpoint to ``<run_dir>/partial/`` (``curve.csv`` and
    ``state.json``: steps, wall time and the code that trained it), so that long runs can be committed as they go.
    Aggregation reads finished runs only; a finished run's ``partial/`` is removed.

    :param run_dir: the run's results directory.
    :param ckpt_dir: the run's checkpoint directory.
    :return: the snapshot's state, or ``None`` (finished, or no checkpoint yet).
    """
    import shutil

    from sb3_equivariant.benchmark.checkpoint import latest_checkpoint
    from sb3_equivariant.benchmark.storage import atomic_write_text

    partial = run_dir / "partial"
    if is_done(run_dir):
        shutil.rmtree(partial, ignore_errors=True)
        return None
    latest = latest_checkpoint(ckpt_dir)
    if latest is None:
        return None
    path, state = latest
    rows = read_curve(path / "curve.csv")
    snapshot = {
        "status": "partial",
        "num_timesteps": int(state["num_timesteps"]),
        "wall_time": float(state["wall_time"]),
        "code": state.get("code"),
        "resumed_codes": state.get("resumed_codes", []),
    }
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write_text(partial / "curve.csv", curve_text(rows))
    atomic_write_text(partial / "state.json", json.dumps(snapshot, indent=1))
    return snapshot
