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
  A curve that is above the threshold only at its last ``SUSTAIN - 1`` evaluations or fewer has not reached it.
- ``train_final``: mean over the last 3 evaluation points of the mean return of the last 100 *training* episodes
  (stochastic actions; the quantity the paper plots), for curves that record it.

The summary also lists the runs that are not finished (expected by the grid or present on disk): running, failed,
or not started, so that a table of fewer runs never passes for a complete one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sb3_equivariant.benchmark.runner import is_done, read_curve, read_manifest
from sb3_equivariant.benchmark.storage import LOCK_NAME, atomic_write_text, holder_alive, read_lock

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
                "train_returns": np.array([r.get("train_mean_return", np.nan) for r in rows]),
                "manifest": manifest,
            }
        )
    return out


def curve_matrix(runs: list[dict[str, Any]], key: str = "returns") -> tuple[np.ndarray, np.ndarray]:
    """Steps common to all runs and the values of ``key`` there, shape ``(n_runs, n_steps)``."""
    common = runs[0]["step"]
    for run in runs[1:]:
        common = np.intersect1d(common, run["step"])
    matrix = np.stack([run[key][np.searchsorted(run["step"], common)] for run in runs])
    return common, matrix


def steps_to_threshold(steps: np.ndarray, matrix: np.ndarray, threshold: float, sustain: int = SUSTAIN) -> np.ndarray:
    """
    Per run (row of ``matrix``), the first step from which ``sustain`` consecutive evaluations are all at or above
    ``threshold``; ``inf`` if there is none. Only complete windows count: fewer than ``sustain`` evaluations at the
    end of a curve, however high, are not a sustained level.
    """
    n = matrix.shape[1] - sustain + 1
    if n <= 0:
        return np.full(matrix.shape[0], np.inf)
    above = matrix >= threshold
    reached = np.stack([above[:, i : i + sustain].all(axis=1) for i in range(n)], axis=1)
    return np.where(reached.any(axis=1), steps[reached.argmax(axis=1)], np.inf)


def run_scores(runs: list[dict[str, Any]], threshold: float | None) -> dict[str, np.ndarray]:
    """Per-run ``final``, ``auc`` and (if ``threshold``) ``steps`` arrays."""
    steps, matrix = curve_matrix(runs)
    span = float(steps[-1] - steps[0]) or 1.0
    scores = {
        "final": matrix[:, -FINAL_WINDOW:].mean(axis=1),
        "auc": np.trapezoid(matrix, steps, axis=1) / span,
    }
    if threshold is not None:
        scores["steps"] = steps_to_threshold(steps, matrix, threshold)
    if all("train_returns" in run for run in runs):
        train = curve_matrix(runs, "train_returns")[1]
        if np.isfinite(train[:, -FINAL_WINDOW:]).all():
            scores["train_final"] = train[:, -FINAL_WINDOW:].mean(axis=1)
            if threshold is not None:
                # The paper's quantity (mean return of the last 100 training episodes). Before the first episode
                # ends it is NaN, which compares below any threshold.
                scores["train_steps"] = steps_to_threshold(steps, train, threshold)
    return scores


def run_status(run_dir: Path) -> dict[str, Any]:
    """
    Where an unfinished run stands: ``running`` (a live process holds its lock), ``failed`` (``failed.json``, with the
    error), or ``not finished`` (never started, or interrupted: rerunning the grid resumes it).
    """
    holder = read_lock(run_dir / LOCK_NAME)
    if holder and holder_alive(holder, run_dir / LOCK_NAME):
        return {"status": "running", "detail": f"host {holder.get('host')}, pid {holder.get('pid')}"}
    failed = run_dir / "failed.json"
    if failed.exists():
        try:
            detail = failure_text(json.loads(failed.read_text()))
        except (OSError, json.JSONDecodeError, AttributeError):
            detail = "unreadable failed.json"
        return {"status": "failed", "detail": detail}
    return {"status": "not finished", "detail": ""}


def failure_text(failure: dict[str, Any], width: int = 160) -> str:
    """
    One line for a failed run: the error's first line (an exception's repr can hold a whole tensor), shortened to
    ``width`` characters, and the step it happened at when ``failed.json`` records it.
    """
    error = str(failure.get("error") or "no error recorded")
    error = error.replace("\\n", "\n").splitlines()[0]  # a repr escapes its message's newlines
    if len(error) > width:
        error = error[: width - 1] + "…"
    steps = failure.get("num_timesteps")
    return f"{error} at step {steps:,}" if isinstance(steps, int) else error


def missing_runs(exp_dir: Path, expected: Iterable[str] = ()) -> list[dict[str, Any]]:
    """
    The runs of an experiment that are not finished: those of ``expected`` (run directories relative to the results
    root, ``<experiment>/<env>/<label>/seed<k>``) and those with a directory on disk.
    """
    exp_dir = Path(exp_dir)
    dirs = {exp_dir.parent / run for run in expected} | set(exp_dir.glob("*/*/seed*"))
    return [{"run": str(d.relative_to(exp_dir.parent)), **run_status(d)} for d in sorted(dirs) if not is_done(d)]


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
    expected: Iterable[str] = (),
    filename: str = "summary.json",
) -> dict[str, Any]:
    """
    Everything the table and plots need, also written (atomically) to ``<exp_dir>/<filename>``.

    :param exp_dir: the experiment's results directory.
    :param threshold: return threshold for steps-to-threshold (``None``: skipped).
    :param reference: label of the reference method (default: the first label).
    :param order: label order (default: as found).
    :param reps: bootstrap repetitions.
    :param seed: seed of the bootstrap.
    :param expected: the grid's runs (relative run directories), to list those not finished.
    :param filename: name of the JSON file written in ``exp_dir``.
    :raises ValueError: if ``reference`` names a method without finished runs.
    """
    runs = load_experiment(exp_dir)
    if not runs:
        raise FileNotFoundError(f"no finished runs under {exp_dir}")
    labels = [k for k in (order or []) if k in runs] + [k for k in runs if k not in (order or [])]
    if reference is None:
        reference = labels[0]
    elif reference not in runs:
        raise ValueError(f"reference {reference!r} has no finished runs in {exp_dir}; choose one of {', '.join(labels)}")
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
        if "train_final" in scores[k]:
            rows[k]["train_final_median"] = float(np.median(scores[k]["train_final"]))
        if "train_steps" in scores[k]:
            rows[k]["train_steps_median"] = float(np.median(scores[k]["train_steps"]))
            rows[k]["train_steps_reached"] = int(np.isfinite(scores[k]["train_steps"]).sum())
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
    summary = {
        "experiment": Path(exp_dir).name,
        "threshold": threshold,
        "sustain": SUSTAIN,
        "reference": reference,
        "labels": labels,
        "rows": rows,
        "missing": missing_runs(Path(exp_dir), expected),
    }
    atomic_write_text(Path(exp_dir, filename), json.dumps(summary, indent=1, default=_json_default))
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
    with_train = all("train_final_median" in summary["rows"][label] for label in summary["labels"])
    with_train_steps = with_train and all("train_steps_median" in summary["rows"][label] for label in summary["labels"])
    if with_train:
        head.append("final training return (median)")
    if with_train_steps:
        head.append(f"steps to {threshold:g}, training return (median, reached)")
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
            cells.append(_steps_cell(row["steps_median"], row["steps_reached"], row["n_runs"]))
            ratio = row.get("steps_ratio")
            cells.append(f"{ratio:.2f}" if ratio is not None else "—")
        if with_train:
            cells.append(f"{row['train_final_median']:.1f}")
        if with_train_steps:
            cells.append(_steps_cell(row["train_steps_median"], row["train_steps_reached"], row["n_runs"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _steps_cell(median: float, reached: int, n_runs: int) -> str:
    return f"{median:,.0f} ({reached}/{n_runs})" if math.isfinite(median) else f"not reached ({reached}/{n_runs})"


def missing_markdown(summary: dict[str, Any]) -> str:
    """The runs the table lacks, as a markdown list (empty if none)."""
    missing = summary.get("missing") or []
    if not missing:
        return ""
    lines = [f"**Not in this table: {len(missing)} unfinished runs** (rerun the grid to resume them):", ""]
    lines += [f"- `{m['run']}`: {m['status']}" + (f" ({m['detail']})" if m["detail"] else "") for m in missing]
    return "\n".join(lines)


def threshold_sensitivity(exp_dir: str | Path, thresholds: Iterable[float], order: list[str] | None = None) -> str:
    """
    Steps to each threshold per method (median over runs, runs that reached it), as a markdown table; also written
    (atomically) as ``<exp_dir>/threshold_sensitivity.csv``. An ordering of methods that flips between thresholds is
    not carried by the data.
    """
    runs = load_experiment(exp_dir)
    labels = [k for k in (order or []) if k in runs] + [k for k in runs if k not in (order or [])]
    thresholds = list(thresholds)
    csv_lines = ["method,threshold,runs,reached,steps_median,steps_per_run"]
    head = ["method", "runs"] + [f"steps to {t:g} (median, reached)" for t in thresholds]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in labels:
        cells = [label, str(len(runs[label]))]
        ordered = sorted(runs[label], key=lambda r: r["seed"] if r["seed"] is not None else -1)
        for threshold in thresholds:
            steps = run_scores(ordered, threshold)["steps"]
            median, reached = float(np.median(steps)), int(np.isfinite(steps).sum())
            shown = f"{median:,.0f}" if math.isfinite(median) else "not reached"
            cells.append(f"{shown} ({reached}/{len(steps)})")
            per_run = " ".join(f"{s:.0f}" if math.isfinite(s) else "inf" for s in steps)
            csv_lines.append(f"{label},{threshold:g},{len(steps)},{reached},{median:g},{per_run}")
        lines.append("| " + " | ".join(cells) + " |")
    atomic_write_text(Path(exp_dir) / "threshold_sensitivity.csv", "\n".join(csv_lines) + "\n")
    return "\n".join(lines)
