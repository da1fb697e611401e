"""
The committed results: every run record under ``results/`` (a finished run's ``manifest.json``, a failed run's
``failed.json``, a script's ``manifest.json``) names a clean commit of this repository that contains the benchmark
runner, an experiment mixes commits only where its runs say they were allowed to, and every committed summary counts
the finished runs on disk (``benchmarks/check_results.py`` recomputes every number of them).
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
SUMMARIES = sorted(p for p in RESULTS.glob("*/summary*.json") if "rows" in json.loads(p.read_text()))


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


@pytest.mark.parametrize("path", SUMMARIES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_summary_counts_the_finished_runs(path: Path) -> None:
    finished: dict[str, int] = defaultdict(int)
    for manifest in path.parent.glob("*/*/seed*/manifest.json"):
        if json.loads(manifest.read_text()).get("status") == "done":
            finished[manifest.parent.parent.name] += 1
    counted = {label: row["n_runs"] for label, row in json.loads(path.read_text())["rows"].items()}
    assert counted == dict(finished), f"{path} was not regenerated after runs were added: --aggregate-only"


def test_check_results_finds_a_summary_not_regenerated(tmp_path: Path) -> None:
    """benchmarks/check_results.py: same numbers for a fresh summary, a difference once a run is added after it."""
    import importlib.util

    from sb3_equivariant.benchmark.aggregate import summarize
    from sb3_equivariant.benchmark.files import curve_text

    spec = importlib.util.spec_from_file_location("check_results", RESULTS.parent / "benchmarks" / "check_results.py")
    assert spec and spec.loader
    check_results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_results)

    def add_run(method: str, seed: int) -> None:
        run_dir = tmp_path / "exp" / "Env-v0" / method / f"seed{seed}"
        rows = [
            dict(step=s, timesteps=s, mean_return=float(s * (seed + 1)), std_return=0.0, episodes=2, wall_time=1.0)
            for s in (0, 10, 20)
        ]
        (run_dir).mkdir(parents=True)
        (run_dir / "curve.csv").write_text(curve_text(rows))
        (run_dir / "manifest.json").write_text(json.dumps({"status": "done", "spec": {"seed": seed, "n_timesteps": 20}}))

    for method in ("a", "b"):
        for seed in (0, 1, 2):
            add_run(method, seed)
    summarize(tmp_path / "exp", threshold=15.0, reps=50)
    assert check_results.check(tmp_path / "exp" / "summary.json", reps=50) == []
    add_run("b", 3)
    differences = check_results.check(tmp_path / "exp" / "summary.json", reps=50)
    assert any(line.startswith("b.n_runs: 3 -> 4") for line in differences)
