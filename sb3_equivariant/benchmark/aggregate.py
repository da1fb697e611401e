"""
Aggregate finished runs with rliable (Agarwal et al. 2021): interquartile mean (IQM) of the final return and of the
area under the learning curve with 95% stratified-bootstrap confidence intervals, the probability of improvement
over the reference method, and steps to a return threshold.

Per-run scores (on the evaluation grid ``0, eval_freq, ..., budget``):

- ``final``: mean of the last 3 evaluations (less noisy than the last one alone).
- ``auc``: area under the curve divided by the budget, i.e. the time-averaged return (trapezoid rule).
- ``steps``: the first grid step from which the evaluation return stays at or above the threshold for
  ``SUSTAIN`` consecutive evaluations (``inf`` if never). Requiring a sustained level avoids crediting a lucky
  evaluation: on CartPole an untrained deterministic MLP policy sometimes balances the pole for 500 steps at step 0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sb3_equivariant.benchmark.runner import is_done, read_curve, read_manifest

FINAL_WINDOW = 3
SUSTAIN = 3


def load_experiment(exp_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """
    Finished runs of an experiment: ``{label: [{"seed", "step", "returns", "manifest"}, ...]}``, labels in the order of
    the experiment's methods as recorded (sorted by first appearance on disk otherwise).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for run_dir in sorted(Path(exp_dir).glob("*/*/seed*")):
        if not is_done(run_dir):
            continue
        rows = read_curve(run_dir / "curve.csv")
        manifest = read_manifest(run_dir) or {}
        out.setdefault(run_dir.parent.name, []).append(
            {
                "seed": manifest.get("spec", {}).get("seed"),
                "step": np.array([r["step"] for r in rows]),
                "returns": np.array([r["mean_return"] for r in rows]),
                "manifest": manifest,
            }
        )
    return out


def curve_matrix(runs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Steps common to all runs and the returns there, shape ``(n_runs, n_steps)``."""
    common = runs[0]["step"]
    for run in runs[1:]:
        common = np.intersect1d(common, run["step"])
    matrix = np.stack([run["returns"][np.searchsorted(run["step"], common)] for run in runs])
    return common, matrix


def run_scores(runs: list[dict[str, Any]], threshold: float | None) -> dict[str, np.ndarray]:
    """Per-run ``final``, ``auc`` and (if ``threshold``) ``steps`` arrays."""
    steps, matrix = curve_matrix(runs)
    span = float(steps[-1] - steps[0]) or 1.0
    scores = {
        "final": matrix[:, -FINAL_WINDOW:].mean(axis=1),
        "auc": np.trapezoid(matrix, steps, axis=1) / span,
    }
    if threshold is not None:
        above = matrix >= threshold
        # reached[:, i]: evaluations i .. i + SUSTAIN - 1 (those that exist) are all above the threshold.
        reached = np.stack([above[:, i : i + SUSTAIN].all(axis=1) for i in range(matrix.shape[1])], axis=1)
        scores["steps"] = np.where(reached.any(axis=1), steps[reached.argmax(axis=1)], np.inf)
    return scores


def _iqm_estimates(score_dict: dict[str, np.ndarray], reps: int, seed: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    from rliable import library as rly
    from rliable import metrics

    np.random.seed(seed)  # rliable's bootstrap draws from numpy's global generator
    point, interval = rly.get_interval_estimates(
        {k: v[:, None] for k, v in score_dict.items()},
        lambda x: np.array([metrics.aggregate_iqm(x)]),
        reps=reps,
    )
    return {k: float(v[0]) for k, v in point.items()}, {k: v[:, 0] for k, v in interval.items()}


def probability_of_improvement(
    scores: dict[str, np.ndarray], reference: str, reps: int, seed: int
) -> dict[str, tuple[float, np.ndarray]]:
    """``P(X > Y)`` of each method's runs over the reference's, with a 95% stratified bootstrap CI."""
    from rliable import library as rly
    from rliable import metrics

    pairs = {k: (v[:, None], scores[reference][:, None]) for k, v in scores.items() if k != reference}
    if not pairs:
        return {}
    np.random.seed(seed)
    point, interval = rly.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=reps)
    return {k: (float(point[k]), interval[k][:, 0] if interval[k].ndim == 2 else interval[k]) for k in pairs}


def summarize(
    exp_dir: str | Path,
    threshold: float | None,
    reference: str | None = None,
    order: list[str] | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """
    Everything the table and plots need, also written to ``<exp_dir>/summary.json``.

    :param exp_dir: the experiment's results directory.
    :param threshold: return threshold for steps-to-threshold (``None``: skipped).
    :param reference: label of the reference method (default: the first label).
    :param order: label order (default: as found).
    :param reps: bootstrap repetitions.
    :param seed: seed of the bootstrap.
    """
    runs = load_experiment(exp_dir)
    if not runs:
        raise FileNotFoundError(f"no finished runs under {exp_dir}")
    labels = [k for k in (order or []) if k in runs] + [k for k in runs if k not in (order or [])]
    reference = reference if reference in runs else labels[0]
    scores = {k: run_scores(runs[k], threshold) for k in labels}
    rows: dict[str, dict[str, Any]] = {}
    for metric in ("final", "auc"):
        point, interval = _iqm_estimates({k: scores[k][metric] for k in labels}, reps, seed)
        for k in labels:
            rows.setdefault(k, {})[f"iqm_{metric}"] = point[k]
            rows[k][f"iqm_{metric}_ci"] = [float(x) for x in interval[k]]
    for metric in ("final", "auc"):
        for k, (p, ci) in probability_of_improvement({k: scores[k][metric] for k in labels}, reference, reps, seed).items():
            rows[k][f"p_improve_{metric}"] = p
            rows[k][f"p_improve_{metric}_ci"] = [float(x) for x in ci]
    ref_median = None
    for k in labels:
        manifest = runs[k][0]["manifest"]
        rows[k]["n_runs"] = len(runs[k])
        rows[k]["seeds"] = sorted(r["seed"] for r in runs[k])
        rows[k]["n_parameters"] = manifest.get("n_parameters")
        rows[k]["learning_rate"] = manifest.get("hyperparams", {}).get("learning_rate")
        rows[k]["budget"] = manifest.get("spec", {}).get("n_timesteps")
        rows[k]["wall_time_mean"] = float(np.mean([r["manifest"].get("wall_time", np.nan) for r in runs[k]]))
        if threshold is not None:
            steps = scores[k]["steps"]
            median = float(np.median(steps))
            rows[k]["steps_median"] = median
            rows[k]["steps_reached"] = int(np.isfinite(steps).sum())
            if k == reference:
                ref_median = median
    if threshold is not None:
        for k in labels:
            m = rows[k]["steps_median"]
            finite = ref_median is not None and math.isfinite(ref_median) and ref_median > 0 and math.isfinite(m)
            rows[k]["steps_ratio"] = m / ref_median if finite else None
    summary = {"experiment": Path(exp_dir).name, "threshold": threshold, "reference": reference, "labels": labels, "rows": rows}
    Path(exp_dir, "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
    return summary


def _json_default(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return str(x)


def _ci(row: dict[str, Any], key: str, fmt: str) -> str:
    low, high = row[f"{key}_ci"]
    return f"{row[key]:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def markdown_table(summary: dict[str, Any]) -> str:
    """The summary as a markdown table (IQM [95% CI]; steps to threshold: median over runs, reached / runs)."""
    threshold, reference = summary["threshold"], summary["reference"]
    head = ["method", "runs", "params", "lr", "IQM final return", "IQM AUC", f"P(> {reference}) AUC"]
    if threshold is not None:
        head += [f"steps to {threshold:g} (median, reached)", f"ratio vs {reference}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in summary["labels"]:
        row = summary["rows"][label]
        lr = row.get("learning_rate")
        cells = [
            label,
            str(row["n_runs"]),
            str(row.get("n_parameters", "")),
            f"{lr:g}" if isinstance(lr, (int, float)) else ("SB3 default" if lr is None else str(lr)),
            _ci(row, "iqm_final", ".1f"),
            _ci(row, "iqm_auc", ".1f"),
            _ci(row, "p_improve_auc", ".2f") if "p_improve_auc" in row else "—",
        ]
        if threshold is not None:
            median = row["steps_median"]
            cells.append(
                f"{median:,.0f} ({row['steps_reached']}/{row['n_runs']})"
                if math.isfinite(median)
                else f"not reached ({row['steps_reached']}/{row['n_runs']})"
            )
            ratio = row.get("steps_ratio")
            cells.append(f"{ratio:.2f}" if ratio is not None else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
