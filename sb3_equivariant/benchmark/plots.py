"""PNG figures of an experiment: IQM learning curves with 95% bootstrap bands, and rliable's interval-estimate plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sb3_equivariant.benchmark.aggregate import curve_matrix, load_experiment
from sb3_equivariant.benchmark.storage import atomic_savefig


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(
    exp_dir: str | Path, summary: dict[str, Any], out: str | Path | None = None, reps: int = 500, seed: int = 0
) -> Path:
    """
    IQM of the evaluation return over runs at every evaluation step, with a 95% stratified bootstrap band.

    :return: the PNG path (default ``<exp_dir>/learning_curves.png``).
    """
    from rliable import library as rly
    from rliable import metrics

    plt = _pyplot()
    runs = load_experiment(exp_dir)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in summary["labels"]:
        steps, matrix = curve_matrix(runs[label])
        np.random.seed(seed)
        point, interval = rly.get_interval_estimates(
            {label: matrix}, lambda x: np.array([metrics.aggregate_iqm(x[:, [j]]) for j in range(x.shape[1])]), reps=reps
        )
        line = ax.plot(steps, point[label], label=f"{label} ({matrix.shape[0]} runs)")[0]
        ax.fill_between(steps, interval[label][0], interval[label][1], color=line.get_color(), alpha=0.2)
    if summary.get("threshold") is not None:
        ax.axhline(summary["threshold"], color="grey", linestyle="--", linewidth=1, label=f"threshold {summary['threshold']:g}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (IQM, 95% CI)")
    ax.set_title(summary["experiment"])
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(out) if out is not None else Path(exp_dir) / "learning_curves.png"
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def aggregate_plot(exp_dir: str | Path, summary: dict[str, Any], out: str | Path | None = None) -> Path:
    """rliable's interval-estimate plot of the IQM of the final return and of the AUC."""
    from rliable import plot_utils

    plt = _pyplot()
    labels = summary["labels"]
    rows = summary["rows"]
    point = {k: np.array([rows[k]["iqm_final"], rows[k]["iqm_auc"]]) for k in labels}
    interval = {k: np.array([rows[k]["iqm_final_ci"], rows[k]["iqm_auc_ci"]]).T for k in labels}
    metric_names = ["IQM final return", "IQM AUC (mean return)"]
    # rliable places its x label with fig.text at a fixed position, over the tick labels: label each axis instead, and
    # let constrained layout place titles, labels and the experiment's name without overlap.
    fig, axes = plot_utils.plot_interval_estimates(point, interval, metric_names=metric_names, algorithms=labels, xlabel="")
    fig.set_size_inches(9, 1.8 + 0.45 * len(labels))  # rliable's height (0.5 in per row) leaves no room for the titles
    for ax in np.atleast_1d(axes):
        ax.set_xlabel("return", fontsize="x-large")
    fig.set_layout_engine("constrained")
    fig.suptitle(summary["experiment"], fontsize="xx-large")
    path = Path(out) if out is not None else Path(exp_dir) / "aggregate.png"
    atomic_savefig(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
