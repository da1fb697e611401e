"""
PRAE benchmark: average episode length of the planned policy (PRAE, the autoencoder baseline, the no-contrastive
ablation) on CartPole and the Room with one or two objects, one CSV row per (task, method, seed). Resumable: rows
already in the CSV are skipped.

    python benchmarks/prae.py --task cartpole --seeds 0 1 2 3 4 --episodes 500 --epochs 30
    python benchmarks/prae.py --task room1 --seeds 0 1 2 3 4 --episodes 100 --epochs 40 --out results/prae
    python benchmarks/prae.py --summarize --out results/prae   # markdown table of every CSV in the folder
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th

from sb3_equivariant.envs.room import ROOM_ID
from sb3_equivariant.prae import CARTPOLE_ID, PRAE, TransitionDataset, collect_dataset, evaluate_cartpole, evaluate_room

#: The model options of each method (everything else as the paper).
METHODS = {
    "prae": {},
    "autoencoder": {"objective": "reconstruction"},
    "no_contrastive": {"n_negatives": 0},
}
TASKS = {"cartpole": (CARTPOLE_ID, {}), "room1": (ROOM_ID, {"n_objects": 1}), "room2": (ROOM_ID, {"n_objects": 2})}
FIELDS = [
    "task",
    "method",
    "seed",
    "train_episodes",
    "validation_episodes",
    "transitions",
    "epochs",
    "validation_loss",
    "fit_seconds",
    "train_goal_length",
    "test_goal_length",
    "eval_episodes",
]


def run(task: str, method: str, seed: int, data: tuple[TransitionDataset, TransitionDataset], epochs: int, n_eval: int) -> dict:
    """Fit one model and evaluate it on the task's train (and, for the Room, test) goals."""
    env_id, env_kwargs = TASKS[task]
    env = gym.make(env_id, **env_kwargs)
    train, valid = data
    model = PRAE(env.observation_space, env.action_space, seed=seed, **METHODS[method])  # type: ignore[arg-type]
    start = time.time()
    model.fit(train, epochs=epochs, validation_data=valid)
    fit_seconds = time.time() - start
    if task == "cartpole":
        train_length, test_length = evaluate_cartpole(model, n_eval, seed).mean(), float("nan")
    else:
        n_objects = env_kwargs["n_objects"]
        train_length = evaluate_room(model, n_objects, "train", n_eval, seed).mean()
        test_length = evaluate_room(model, n_objects, "test", n_eval, seed).mean()
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "train_episodes": train.n_episodes,
        "validation_episodes": valid.n_episodes,
        "transitions": len(train),
        "epochs": epochs,
        "validation_loss": round(model.evaluate_loss(valid), 5),
        "fit_seconds": round(fit_seconds, 1),
        "train_goal_length": round(float(train_length), 3),
        "test_goal_length": round(float(test_length), 3),
        "eval_episodes": n_eval,
    }


#: The authors' numbers (their notebooks, seed 0, 100 epochs): average episode length on (train, test) goals.
PAPER = {"cartpole": ("192.1", "—"), "room1": ("9.01", "7.98"), "room2": ("8.95", "7.56")}


def summarize(folder: Path) -> str:
    """Markdown table: mean ± standard deviation over seeds of the average episode length, per task and method."""
    lines = [
        "| task | method | seeds | train episodes × epochs | train goals | test goals | paper (PRAE, train / test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        path = folder / f"{task}.csv"
        if not path.exists():
            continue
        with open(path) as file:
            # The first row of each (method, seed): runs of one task may be split over processes.
            rows = list({(row["method"], row["seed"]): row for row in reversed(list(csv.DictReader(file)))}.values())
        for method in METHODS:
            mine = [row for row in rows if row["method"] == method]
            if not mine:
                continue
            cells = []
            for key in ("train_goal_length", "test_goal_length"):
                values = np.array([float(row[key]) for row in mine])
                cells.append("—" if np.isnan(values).all() else f"{values.mean():.1f} ± {values.std():.1f}")
            budget = f"{mine[0]['train_episodes']} × {mine[0]['epochs']}"
            paper = " / ".join(PAPER[task]) if method == "prae" else ""
            lines.append(f"| {task} | {method} | {len(mine)} | {budget} | {cells[0]} | {cells[1]} | {paper} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS))
    parser.add_argument("--summarize", action="store_true", help="print the markdown table of --out and exit")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=1000, help="training episodes (paper: 1000)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (paper: 100)")
    parser.add_argument("--eval-episodes", type=int, default=100, help="episodes per goal set (paper: 100)")
    parser.add_argument("--out", default="results/prae", help="folder of <task>.csv")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    if args.summarize:
        print(summarize(Path(args.out)))
        return
    if args.task is None:
        parser.error("--task is required (or --summarize)")
    th.set_num_threads(args.threads)
    path = Path(args.out) / f"{args.task}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if path.exists():
        with open(path) as file:
            done = {(row["method"], int(row["seed"])) for row in csv.DictReader(file)}
    env_id, env_kwargs = TASKS[args.task]
    for seed in args.seeds:
        todo = [method for method in args.methods if (method, seed) not in done]
        if not todo:
            continue
        # The paper collects 1000 training and 200 validation episodes with a uniform policy.
        train = collect_dataset(env_id, args.episodes, seed=seed, env_kwargs=env_kwargs)
        valid = collect_dataset(env_id, max(1, args.episodes // 5), seed=10_000 + seed, env_kwargs=env_kwargs)
        for method in todo:
            row = run(args.task, method, seed, (train, valid), args.epochs, args.eval_episodes)
            print(row, flush=True)
            new_file = not path.exists()
            with open(path, "a", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=FIELDS)
                if new_file:
                    writer.writeheader()
                writer.writerow(row)


if __name__ == "__main__":
    main()
