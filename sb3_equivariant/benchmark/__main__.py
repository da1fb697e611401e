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
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from rich.console import Console

from sb3_equivariant.benchmark.presets import PRESETS, THRESHOLDS, Experiment


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
    parser.add_argument("--jobs", type=int, default=2, help="parallel worker processes (one torch thread each)")
    parser.add_argument(
        "--results", help="results root (small CSVs + manifests); default results/, or runs/results/ for scratch presets (demo)"
    )
    parser.add_argument("--checkpoints", default="runs/checkpoints", help="checkpoints and final models")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0, help="minimum wall time between checkpoints")
    parser.add_argument("--aggregate-only", action="store_true", help="only aggregate and plot finished runs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap repetitions")
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


def report(exp: Experiment, results: Path, reps: int, console: Console) -> None:
    from sb3_equivariant.benchmark.aggregate import markdown_table, summarize
    from sb3_equivariant.benchmark.plots import aggregate_plot, learning_curves

    exp_dir = results / exp.name
    order = [f"{m}@lr={lr:g}" for m in exp.methods for lr in exp.learning_rates] or list(exp.methods)
    summary = summarize(exp_dir, THRESHOLDS.get(exp.env_id), reference=order[0], order=order, reps=reps)
    table = markdown_table(summary)
    (exp_dir / "summary.md").write_text(f"# {exp.name}\n\n{exp.description}\n\n{table}\n")
    curves = learning_curves(exp_dir, summary)
    agg = aggregate_plot(exp_dir, summary)
    print(table, flush=True)
    console.print(f"learning curves: {curves.resolve()}")
    console.print(f"aggregate plot:  {agg.resolve()}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if args.list:
        for name, exp in PRESETS.items():
            console.print(f"[bold]{name}[/bold]: {exp.description}")
        return 0
    exp = experiment_from_args(args)
    results = Path(args.results or ("runs/results" if exp.scratch else "results"))
    if not args.aggregate_only:
        from sb3_equivariant.benchmark.runner import run_grid

        specs = exp.specs(results)
        console.print(
            f"{exp.name}: {len(specs)} runs ({exp.env_id}, {', '.join(exp.methods)}; seeds {list(exp.seeds)}; "
            f"{exp.n_timesteps:,} steps each), {args.jobs} jobs"
        )
        summaries = run_grid(specs, results, args.checkpoints, args.jobs, args.checkpoint_seconds, not args.no_progress)
        failed = [s for s in summaries if s["status"] == "failed"]
        for s in failed:
            console.print(f"[red]failed[/red] {s['run']}: {s['error']}")
        if len(failed) == len(summaries):
            return 1
    report(exp, results, args.reps, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
