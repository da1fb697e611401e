"""
``python -m sb3_equivariant.benchmark``: run a preset or a custom grid, then aggregate and plot.

Examples::

    python -m sb3_equivariant.benchmark --preset demo
    python -m sb3_equivariant.benchmark --list
    python -m sb3_equivariant.benchmark --preset cartpole_paper --jobs 2 --seeds 0 1 2
    python -m sb3_equivariant.benchmark --preset cartpole_paper --aggregate-only
    python -m sb3_equivariant.benchmark --preset cartpole_paper --methods baseline --learning-rates 0.001
    python -m sb3_equivariant.benchmark --experiment my_grid --config ppo --env CartPole-v1 \\
        --methods baseline equivariant --seeds 0 1 --n-timesteps 20000 --eval-freq 1000
    python -m sb3_equivariant.benchmark --preset cartpole_paper --backend ray --ray-address auto  # a Ray cluster
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from rich.console import Console

from sb3_equivariant.benchmark.grid import BACKENDS
from sb3_equivariant.benchmark.presets import PRESETS, THRESHOLDS, Experiment
from sb3_equivariant.benchmark.provenance import MixedCommitsError
from sb3_equivariant.benchmark.storage import atomic_write_text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sb3_equivariant.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a named experiment (see --list)")
    parser.add_argument("--list", action="store_true", help="list the presets and exit")
    parser.add_argument("--experiment", help="name of a custom experiment (with --config, --env, --methods)")
    parser.add_argument(
        "--config", help="zoo config for a custom experiment (ppo, ppo_paper, a2c, dqn, qrdqn, sac, td3, ppo_lstm)"
    )
    parser.add_argument("--algo", help="algorithm (default: ppo_lstm for ppo_lstm*, else the config's name up to the first '_')")
    parser.add_argument("--env", help="env id for a custom experiment")
    parser.add_argument("--methods", nargs="+", help="methods (override the preset's)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (override the preset's)")
    parser.add_argument("--n-timesteps", type=int, help="budget per run (overrides the preset's)")
    parser.add_argument("--eval-freq", type=int, help="env steps between evaluations")
    parser.add_argument("--n-eval-episodes", type=int, help="episodes per evaluation")
    parser.add_argument(
        "--learning-rates", nargs="+", type=float, help="run every method with each of these learning rates (labels method@lr=x)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="parallel runs (one process and torch thread each)")
    parser.add_argument("--backend", choices=BACKENDS, default="local", help="worker processes here, or Ray tasks")
    parser.add_argument(
        "--ray-address", help="Ray cluster to join (e.g. auto, ray://head:10001); default: a local Ray with --jobs CPUs"
    )
    parser.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs per run (ray backend); runs train on cuda")
    parser.add_argument("--max-restarts", type=int, default=2, help="restarts of a run whose worker died (killed, OOM)")
    parser.add_argument(
        "--allow-mixed-commits",
        action="store_true",
        help="add runs to an experiment holding results of other code (recorded in every new manifest)",
    )
    parser.add_argument(
        "--results", help="results root (small CSVs + manifests); default results/, or runs/results/ for scratch presets (demo)"
    )
    parser.add_argument("--checkpoints", default="runs/checkpoints", help="checkpoints and final models")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0, help="minimum wall time between checkpoints")
    parser.add_argument("--aggregate-only", action="store_true", help="only aggregate and plot finished runs")
    parser.add_argument(
        "--snapshot-partial",
        action="store_true",
        help="copy each unfinished run's newest checkpointed curve to <results>/.../partial/ (to commit long runs as they go)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap repetitions")
    parser.add_argument(
        "--thresholds", nargs="+", type=float, help="also tabulate steps to each of these thresholds (threshold_sensitivity.csv)"
    )
    parser.add_argument(
        "--reference",
        help="compare every method with this one (P(improvement), steps ratio) in summary_vs_<reference>.md / .json; "
        "the default summary compares with the first method",
    )
    return parser


def experiment_from_args(args: argparse.Namespace) -> Experiment:
    if args.preset:
        exp = PRESETS[args.preset]
    else:
        if not (args.experiment and args.config and args.env and args.methods):
            raise SystemExit("give --preset NAME, or --experiment, --config, --env and --methods for a custom grid")
        exp = Experiment(
            args.experiment,
            args.config,
            args.algo or ("ppo_lstm" if args.config.startswith("ppo_lstm") else args.config.split("_")[0]),
            args.env,
            tuple(args.methods),
            tuple(args.seeds or (0,)),
            args.n_timesteps or 20_000,
            args.eval_freq or 1_000,
            args.n_eval_episodes or 10,
        )
    changes = {
        "methods": tuple(args.methods) if args.methods else None,
        "seeds": tuple(args.seeds) if args.seeds else None,
        "n_timesteps": args.n_timesteps,
        "eval_freq": args.eval_freq,
        "n_eval_episodes": args.n_eval_episodes,
        "learning_rates": tuple(args.learning_rates) if args.learning_rates else None,
    }
    return dataclasses.replace(exp, **{k: v for k, v in changes.items() if v is not None})


def report(
    exp: Experiment,
    results: Path,
    reps: int,
    console: Console,
    thresholds: list[float] | None = None,
    reference: str | None = None,
) -> None:
    """
    Aggregate an experiment's finished runs: ``summary.md`` / ``summary.json`` and the plots, or, with ``reference``,
    ``summary_vs_<reference>.md`` / ``.json`` only (the default files stay as they are).

    :param exp: the experiment.
    :param results: the results root.
    :param reps: bootstrap repetitions.
    :param console: where to print paths and missing runs.
    :param thresholds: also tabulate steps to each of these thresholds.
    :param reference: the method every other is compared with (default: the first).
    """
    from sb3_equivariant.benchmark.aggregate import markdown_table, missing_markdown, summarize, threshold_sensitivity
    from sb3_equivariant.benchmark.plots import aggregate_plot, learning_curves
    from sb3_equivariant.benchmark.storage import clean_stale_tmp

    exp_dir = results / exp.name
    clean_stale_tmp(exp_dir)
    order = [f"{m}@lr={lr:g}" for m in exp.methods for lr in exp.learning_rates] or list(exp.methods)
    try:
        expected = [str(s.relative_dir()) for s in exp.specs(results)]
    except ValueError:  # its learning rates come from a sweep that is not finished
        expected = []
    stem = "summary" if reference is None else f"summary_vs_{reference}"
    summary = summarize(
        exp_dir,
        THRESHOLDS.get(exp.env_id),
        reference=reference,
        order=order,
        reps=reps,
        expected=expected,
        filename=f"{stem}.json",
    )
    table = markdown_table(summary)
    missing = missing_markdown(summary)
    text = f"# {exp.name}\n\n{exp.description}\n\n{table}\n" + (f"\n{missing}\n" if missing else "")
    if thresholds:
        sensitivity = threshold_sensitivity(exp_dir, thresholds, order)
        text += f"\nThreshold sensitivity (steps to threshold, {summary['sustain']} consecutive evaluations):\n\n{sensitivity}\n"
        print(sensitivity, flush=True)
    atomic_write_text(exp_dir / f"{stem}.md", text)
    print(table, flush=True)
    if missing:
        console.print(missing)
    if reference is not None:
        console.print(f"table: {(exp_dir / f'{stem}.md').resolve()}")
        return
    curves = learning_curves(exp_dir, summary)
    agg = aggregate_plot(exp_dir, summary)
    console.print(f"learning curves: {curves.resolve()}")
    console.print(f"aggregate plot:  {agg.resolve()}")


def reuse_note(summaries: list[dict], experiment: str, results: Path, checkpoints: Path) -> str | None:
    """A line saying which runs were finished before and reused rather than trained again, and how to start fresh."""
    reused = [s["run"] for s in summaries if s["status"] == "skipped"]
    if not reused:
        return None
    shown = ", ".join(reused[:4]) + (f" and {len(reused) - 4} more" if len(reused) > 4 else "")
    return (
        f"reused {len(reused)} of {len(summaries)} runs finished before (not retrained): {shown}. To start fresh, delete "
        f"{results / experiment} and {checkpoints / experiment}, or pass --results DIR --checkpoints DIR"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if args.list:
        for name, exp in PRESETS.items():
            console.print(f"[bold]{name}[/bold]: {exp.description}")
        return 0
    exp = experiment_from_args(args)
    results = Path(args.results or ("runs/results" if exp.scratch else "results"))
    if args.snapshot_partial:
        from sb3_equivariant.benchmark.files import snapshot_partial

        for spec in exp.specs(results):
            state = snapshot_partial(results / spec.relative_dir(), Path(args.checkpoints) / spec.relative_dir())
            if state is not None:
                console.print(f"partial {spec.relative_dir()}: {state['num_timesteps']:,} of {spec.n_timesteps:,} steps")
        return 0
    if not args.aggregate_only:
        from sb3_equivariant.benchmark.grid import run_grid

        specs = exp.specs(results)
        console.print(
            f"{exp.name}: {len(specs)} runs ({exp.env_id}, {', '.join(exp.methods)}; seeds {list(exp.seeds)}; "
            f"{exp.n_timesteps:,} steps each), {args.jobs} jobs, {args.backend} backend"
        )
        try:
            summaries = run_grid(
                specs,
                results,
                args.checkpoints,
                jobs=args.jobs,
                checkpoint_seconds=args.checkpoint_seconds,
                show_progress=not args.no_progress,
                backend=args.backend,
                ray_address=args.ray_address,
                gpus_per_run=args.gpus_per_run,
                allow_mixed_commits=args.allow_mixed_commits,
                max_restarts=args.max_restarts,
            )
        except MixedCommitsError as err:
            console.print(f"[red]refused[/red]: {err}")
            return 2
        note = reuse_note(summaries, exp.name, results, Path(args.checkpoints))
        if note:
            print(note, flush=True)
        failed = [s for s in summaries if s["status"] == "failed"]
        for s in failed:
            console.print(f"[red]failed[/red] {s['run']}: {s['error']}")
        if len(failed) == len(summaries):
            return 1
    if args.reference is not None:
        from sb3_equivariant.benchmark.aggregate import load_experiment

        finished = sorted(load_experiment(results / exp.name))
        if args.reference not in finished:
            console.print(
                f"[red]error[/red]: --reference {args.reference!r} has no finished runs in {results / exp.name}; "
                f"choose one of: {', '.join(finished) or '(none finished)'}"
            )
            return 2
    report(exp, results, args.reps, console, args.thresholds, args.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
