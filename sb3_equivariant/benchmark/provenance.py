"""
Which code produced a result: the git commit of the checkout the *imported* ``sb3_equivariant`` comes from, whether
its working tree had changes (and a hash of them), and the versions of every package that changes results.

An installed copy (``pip install .`` into a virtualenv that happens to live inside some checkout) is not a checkout:
its commit is recorded as ``None`` rather than the commit of the surrounding repository.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class MixedCommitsError(RuntimeError):
    """An experiment already holds results (or a checkpoint) produced by different code."""


def _git(cwd: Path, *args: str) -> bytes | None:
    try:
        out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def code_version(exclude: Iterable[str | Path] = ()) -> dict[str, Any]:
    """
    The code identity of the imported ``sb3_equivariant``.

    :param exclude: paths whose changes do not count (the results and checkpoint roots when they are inside the
        checkout: writing results must not make the tree "dirty").
    :return: ``{"package_path", "repository", "commit", "dirty", "diff_sha256"}``; ``diff_sha256`` hashes the diff
        against the commit plus the untracked, not ignored files (names and contents), ``None`` when clean.
    """
    import sb3_equivariant

    package = Path(sb3_equivariant.__file__).resolve().parent
    info: dict[str, Any] = {"package_path": str(package), "repository": None, "commit": None, "dirty": None, "diff_sha256": None}
    top = _git(package, "rev-parse", "--show-toplevel")
    # The package must be tracked by that repository, not merely sit somewhere below it (a venv in a checkout).
    if top is None or _git(package, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return info
    root = Path(top.decode().strip())
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return info
    pathspec = ["."]
    for path in exclude:
        resolved = Path(path).resolve()
        if resolved.is_relative_to(root) and resolved != root:
            pathspec.append(f":(exclude){resolved.relative_to(root).as_posix()}")
    diff = _git(root, "diff", "HEAD", "--binary", "--", *pathspec) or b""
    untracked = (_git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", *pathspec) or b"").split(b"\0")
    digest = hashlib.sha256(diff)
    for name in sorted(n for n in untracked if n):
        digest.update(b"\0" + name + b"\0")
        try:
            digest.update((root / name.decode()).read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    dirty = bool(diff) or any(untracked)
    info.update(repository=str(root), commit=commit.decode().strip(), dirty=dirty)
    info["diff_sha256"] = digest.hexdigest() if dirty else None
    return info


def package_versions() -> dict[str, str]:
    """Versions of everything that changes results."""
    import gymnasium
    import numpy as np
    import sb3_contrib
    import stable_baselines3
    import torch

    import sb3_equivariant

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_contrib": sb3_contrib.__version__,
        "sb3_equivariant": sb3_equivariant.__version__,
    }


def code_key(code: dict[str, Any] | None) -> tuple[Any, Any]:
    """What must agree between two results of one experiment: the commit and the uncommitted changes."""
    code = code or {}
    return code.get("commit"), code.get("diff_sha256")


def describe(code: dict[str, Any] | None) -> str:
    """``abc1234``, ``abc1234+dirty(diff 0123abcd)`` or ``unknown``."""
    commit, diff = code_key(code)
    if commit is None:
        return "unknown (not a git checkout)"
    return f"{commit[:10]}" + (f"+dirty(diff {diff[:8]})" if diff else "")


def manifest_code(manifest: dict[str, Any]) -> dict[str, Any]:
    """The code identity a manifest records (manifests of earlier runners have only ``versions.git_commit``)."""
    if "code" in manifest:
        return manifest["code"]
    commit = manifest.get("versions", {}).get("git_commit")
    return {"commit": None if commit in (None, "unknown") else commit, "diff_sha256": None}


def recorded_codes(exp_dir: Path) -> dict[tuple[Any, Any], list[str]]:
    """The code identities the manifests of an experiment record, each with the runs that have it."""
    import json

    found: dict[tuple[Any, Any], list[str]] = {}
    for path in sorted(Path(exp_dir).glob("*/*/seed*/manifest.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        found.setdefault(code_key(manifest_code(manifest)), []).append(str(path.parent.relative_to(exp_dir)))
    return found


def check_same_code(exp_dir: Path, code: dict[str, Any], allow_mixed: bool) -> None:
    """
    Refuse to add results to an experiment whose finished runs were produced by other code.

    :raises MixedCommitsError: naming the commits found and the fix, unless ``allow_mixed``.
    """
    others = {k: runs for k, runs in recorded_codes(exp_dir).items() if k != code_key(code)}
    if not others or allow_mixed:
        return
    found = "; ".join(
        f"{describe({'commit': c, 'diff_sha256': d})}: {len(runs)} runs (e.g. {runs[0]})" for (c, d), runs in others.items()
    )
    raise MixedCommitsError(
        f"{exp_dir} holds results of other code than this one ({describe(code)}): {found}. Rerun the experiment from "
        "scratch in a new --results directory (or delete it), check out the commit it was run with, or pass "
        "--allow-mixed-commits to mix them (recorded in every new manifest)"
    )


def write_record(path: str | Path, rows: list[dict[str, Any]], argv: list[str], exclude: Iterable[str | Path] = ()) -> None:
    """
    Write a one-off measurement (memory, compute, the lever game's scores) with what produced it: the command, the
    code identity (a dirty tree says so), the package versions and the machine's CPU count and load.

    :param path: the JSON file to write.
    :param rows: the measured rows.
    :param argv: the command line (``sys.argv``).
    :param exclude: more paths whose changes do not make the code dirty (the other files the measurement wrote, when
        they are inside the checkout); ``path`` itself never does.
    """
    import json
    import os

    path = Path(path)
    record = {
        "command": " ".join(argv),
        "code": code_version(exclude=(path, *exclude)),
        "versions": package_versions(),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "rows": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
