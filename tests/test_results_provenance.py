"""
The committed results name the code that produced them: every run record under ``results/`` (a finished run's
``manifest.json``, a failed run's ``failed.json``, a script's ``manifest.json``) names a clean commit of this
repository that contains the benchmark runner, and an experiment mixes commits only where its runs say they were
allowed to.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

RESULTS = Path(__file__).resolve().parent.parent / "results"
RECORDS = sorted([*RESULTS.rglob("manifest.json"), *RESULTS.rglob("failed.json")])


def _code(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()).get("code") or {}


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(RESULTS.parent), *args], capture_output=True, text=True, check=False)


def test_there_are_records() -> None:
    assert len(RECORDS) > 500


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_record_names_a_clean_commit(path: Path) -> None:
    code = _code(path)
    assert re.fullmatch(r"[0-9a-f]{40}", str(code.get("commit"))), f"{path}: no commit recorded"
    assert code.get("dirty") is False and code.get("diff_sha256") is None, f"{path}: ran on a dirty tree"


def test_commits_contain_the_benchmark_runner() -> None:
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() != "false":
        pytest.skip("needs a full git clone of the repository")
    commits = {_code(path)["commit"] for path in RECORDS}
    missing = [c for c in sorted(commits) if _git("cat-file", "-e", f"{c}:sb3_equivariant/benchmark/runner.py").returncode]
    assert not missing, f"commits without the benchmark runner (or not in this repository): {missing}"


def test_experiments_mix_commits_only_where_allowed() -> None:
    by_experiment: dict[str, set[str]] = defaultdict(set)
    allowed: dict[str, bool] = defaultdict(bool)
    for path in RECORDS:
        experiment = path.relative_to(RESULTS).parts[0]
        by_experiment[experiment].add(_code(path)["commit"])
        allowed[experiment] |= bool(json.loads(path.read_text()).get("allow_mixed_commits"))
    mixed = {name: len(commits) for name, commits in by_experiment.items() if len(commits) > 1 and not allowed[name]}
    assert not mixed, f"experiments whose runs name several commits without --allow-mixed-commits: {mixed}"
