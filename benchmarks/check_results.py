"""
Recompute every committed summary from its committed curves and compare: each ``results/<experiment>/summary*.json``
is aggregated again (threshold, reference and label order read from it; the same bootstrap seed and repetitions) in a
temporary copy of the experiment, and every number of every row must come out the same (relative tolerance 1e-9).
The committed results stay untouched.

    python benchmarks/check_results.py [--results results] [--reps 2000]

A difference means a summary was written before its last runs were added, or the aggregation changed since: rerun
``python -m sb3_equivariant.benchmark --preset <name> --aggregate-only`` and update the docs' table. Takes about
20 CPU-seconds per experiment (the bootstrap).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from sb3_equivariant.benchmark.aggregate import summarize


def same(a: Any, b: Any) -> bool:
    """Equal numbers (to 1e-9 relative; NaN equals NaN), lists element-wise, anything else by ``==``."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


def check(summary_path: Path, reps: int) -> list[str]:
    """The differences between a committed summary and its recomputation (empty: they agree)."""
    committed = json.loads(summary_path.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / summary_path.parent.name
        shutil.copytree(summary_path.parent, copy)
        recomputed = summarize(
            copy,
            committed.get("threshold"),
            reference=committed.get("reference"),
            order=committed.get("labels"),
            reps=reps,
            filename="recomputed.json",
        )
    differences = []
    for label in sorted(set(committed["rows"]) | set(recomputed["rows"])):
        old, new = committed["rows"].get(label, {}), recomputed["rows"].get(label, {})
        differences += [
            f"{label}.{key}: {old.get(key)} -> {new.get(key)}" for key in old | new if not same(old.get(key), new.get(key))
        ]
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="results root (default: results)")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap repetitions the summaries were made with")
    args = parser.parse_args()
    summaries = sorted(p for p in Path(args.results).glob("*/summary*.json") if "rows" in json.loads(p.read_text()))
    if not summaries:
        print(f"no summaries under {args.results}/", file=sys.stderr)
        return 2
    failed = 0
    for path in summaries:
        differences = check(path, args.reps)
        failed += bool(differences)
        print(f"{'differs' if differences else 'same   '} {path}")
        for line in differences[:10]:
            print(f"    {line}")
    print(f"{len(summaries) - failed} of {len(summaries)} summaries recomputed to the same numbers")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
