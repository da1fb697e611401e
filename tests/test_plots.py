"""The benchmark's figures are readable: no title, label or tick label overlaps another."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from sb3_equivariant.benchmark import plots


def _summary(labels: list[str]) -> dict:
    rows = {
        label: {
            "iqm_final": 100.0 * i,
            "iqm_final_ci": (90.0 * i, 110.0 * i + 5),
            "iqm_auc": 50.0 * i,
            "iqm_auc_ci": (40.0 * i, 60.0 * i + 5),
        }
        for i, label in enumerate(labels, start=1)
    }
    return {"experiment": "cartpole_demo", "labels": labels, "rows": rows}


@pytest.mark.parametrize(
    "labels", [["baseline", "equivariant"], ["baseline@lr=0.001", "augment_random", "equivariant", "nullspace"]]
)
def test_aggregate_plot_text_does_not_overlap(tmp_path: Path, labels: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to inspect it
    path = plots.aggregate_plot(tmp_path, _summary(labels))
    assert path.stat().st_size > 0
    (fig,) = figures
    fig.canvas.draw()  # lays the figure out as savefig did
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle]
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        low, high = sorted(ax.get_xlim())
        texts += [t for t, x in zip(ax.get_xticklabels(), ax.get_xticks()) if low <= x <= high]  # drawn ticks only
        texts += list(ax.get_yticklabels())
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t is not None and t.get_text().strip()]
    assert {"cartpole_demo", "IQM final return", "return"} <= {name for name, _ in boxes}
    overlaps = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert not overlaps, overlaps
    plt.close("all")


def test_rerun_says_which_runs_were_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sb3_equivariant.benchmark import __main__ as cli
    from sb3_equivariant.benchmark import grid

    def finished_before(specs: list, *args: object, **kwargs: object) -> list[dict]:
        return [{"run": str(s.relative_dir()), "status": "skipped"} for s in specs]

    monkeypatch.setattr(grid, "run_grid", finished_before)
    monkeypatch.setattr(cli, "report", lambda *args, **kwargs: None)
    argv = ["--preset", "demo", "--results", str(tmp_path / "res"), "--checkpoints", str(tmp_path / "ck"), "--no-progress"]
    assert cli.main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "reused 9 of 9 runs finished before (not retrained)" in out
    assert f"delete {tmp_path / 'res' / 'demo'}" in out and "--results DIR" in out
    monkeypatch.setattr(grid, "run_grid", lambda specs, *a, **k: [{"run": "x", "status": "done"} for _ in specs])
    assert cli.main(argv) == 0
    assert "reused" not in capsys.readouterr().out
