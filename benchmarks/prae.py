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

from sb3_equivariant.benchmark.provenance import code_version
from sb3_equivariant.envs.room import KEY_CELL, LETTER_CELL, ROOM_ID, ROOM_MOVES
from sb3_equivariant.prae import CARTPOLE_ID, PRAE, TransitionDataset, collect_dataset, evaluate_cartpole, evaluate_room

#: The model options of each method (everything else as the paper); "shortest_path" is the Room's oracle (no model).
METHODS: dict[str, dict] = {
    "prae": {},
    "autoencoder": {"objective": "reconstruction"},
    "no_contrastive": {"n_negatives": 0},
    "shortest_path": {},
}
ROOM_SHAPE = (3, 48, 48)
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
    "train_goal_success",
    "test_goal_success",
    "code",
]


def _robot_cell(obs: np.ndarray) -> tuple[int, int]:
    """The Room cell of the robot (channel 0 inside the walls)."""
    rows, cols = np.nonzero(obs[0, 6:-6, 6:-6])
    return int(rows.min()) // 6 + 1, int(cols.min()) // 6 + 1


class ShortestPathPolicy:
    """The Room oracle: walk a shortest path around the letter to the key, then to the goal (SB3's ``predict``)."""

    def __init__(self, goal: tuple[int, int]):
        self.goal = goal

    def predict(self, observation: np.ndarray, state=None, episode_start=None, deterministic: bool = True):
        actions = []
        for obs in np.asarray(observation).reshape(-1, *ROOM_SHAPE):
            target = KEY_CELL if obs[1, 6:-6, 6:-6].any() else self.goal
            blocked = {LETTER_CELL} if obs[2, 6:-6, 6:-6].any() else set()
            actions.append(_first_move(_robot_cell(obs), target, blocked))
        return np.array(actions), state


class ShortestPathPlanner:
    """Stands in for a fitted model in ``evaluate_room``: ``plan`` reads the goal cell off the goal observation."""

    def plan(self, goal_observation: np.ndarray, seed: int | None = None) -> ShortestPathPolicy:
        return ShortestPathPolicy(_robot_cell(goal_observation))


def _first_move(start: tuple[int, int], target: tuple[int, int], blocked: set) -> int:
    """First action of a shortest path on the 6 x 6 interior (breadth-first search)."""
    if start == target:
        return 0
    parents: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    queue, seen = [start], {start}
    while queue:
        cell = queue.pop(0)
        for action, (dr, dc) in enumerate(ROOM_MOVES):
            nxt = (cell[0] + int(dr), cell[1] + int(dc))
            if nxt in seen or nxt in blocked or not (1 <= nxt[0] <= 6 and 1 <= nxt[1] <= 6):
                continue
            seen.add(nxt)
            parents[nxt] = (cell, action)
            if nxt == target:
                while parents[nxt][0] != start:
                    nxt = parents[nxt][0]
                return parents[nxt][1]
            queue.append(nxt)
    raise ValueError(f"no path from {start} to {target}")


def run(task: str, method: str, seed: int, data: tuple[TransitionDataset, TransitionDataset], epochs: int, n_eval: int) -> dict:
    """Fit one model (none for the oracle) and evaluate it on the task's train (and, for the Room, test) goals."""
    env_id, env_kwargs = TASKS[task]
    row: dict = {"task": task, "method": method, "seed": seed, "eval_episodes": n_eval}
    if method == "shortest_path":
        model: PRAE | ShortestPathPlanner = ShortestPathPlanner()
        row.update(train_episodes="", validation_episodes="", transitions=0, epochs=0, validation_loss="", fit_seconds="")
    else:
        env = gym.make(env_id, **env_kwargs)
        train, valid = data
        model = PRAE(env.observation_space, env.action_space, seed=seed, **METHODS[method])  # type: ignore[arg-type]
        start = time.time()
        model.fit(train, epochs=epochs, validation_data=valid)
        row.update(
            train_episodes=train.n_episodes,
            validation_episodes=valid.n_episodes,
            transitions=len(train),
            epochs=epochs,
            fit_seconds=round(time.time() - start, 1),
            validation_loss=round(model.evaluate_loss(valid), 5),
        )
    if task == "cartpole":
        assert isinstance(model, PRAE)
        row.update(train_goal_length=round(float(evaluate_cartpole(model, n_eval, seed).mean()), 3))
    else:
        for goals in ("train", "test"):
            lengths, successes = evaluate_room(model, env_kwargs["n_objects"], goals, n_eval, seed)  # type: ignore[arg-type]
            row[f"{goals}_goal_length"] = round(float(lengths.mean()), 3)
            row[f"{goals}_goal_success"] = round(float(successes.mean()), 3)
    return row


#: The authors' numbers (their notebooks, seed 0, 100 epochs): average episode length on (train, test) goals.
PAPER = {"cartpole": ("192.1", "—"), "room1": ("9.01", "7.98"), "room2": ("8.95", "7.56")}


def summarize(folder: Path) -> str:
    """Markdown table: mean ± standard deviation over seeds of the average episode length, per task and method."""
    lines = [
        "| task | method | seeds | train episodes × epochs | train goals | test goals | shortest path, same seeds |"
        " paper (PRAE, train / test) |",
        "|---|---|---|---|---|---|---|---|",
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
                values = np.array([float(row[key] or "nan") for row in mine])
                cell = "—" if np.isnan(values).all() else f"{values.mean():.1f} ± {values.std():.1f}"
                success = [
                    float(row[key.replace("length", "success")]) for row in mine if row.get(key.replace("length", "success"))
                ]
                if len(success) == len(mine):
                    cell += f" ({np.mean(success):.0%} key delivered)"
                cells.append(cell)
            budget = f"{mine[0]['train_episodes']} × {mine[0]['epochs']}" if method != "shortest_path" else "—"
            paper = " / ".join(PAPER[task]) if method == "prae" else ""
            seeds = {row["seed"] for row in mine}
            oracle = [row for row in rows if row["method"] == "shortest_path" and row["seed"] in seeds]
            floor = ""
            if oracle and method != "shortest_path" and len(oracle) == len(seeds):
                means = [np.mean([float(row[key]) for row in oracle]) for key in ("train_goal_length", "test_goal_length")]
                floor = f"{means[0]:.1f} / {means[1]:.1f}"
            lines.append(f"| {task} | {method} | {len(mine)} | {budget} | {cells[0]} | {cells[1]} | {floor} | {paper} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS))
    parser.add_argument("--summarize", action="store_true", help="print the markdown table of --out and exit")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), help="default: all (CartPole: all but shortest_path)")
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
    if args.methods is None:
        args.methods = [m for m in METHODS if not (args.task == "cartpole" and m == "shortest_path")]
    elif args.task == "cartpole" and "shortest_path" in args.methods:
        parser.error("shortest_path is the Room's oracle: CartPole has none (leave it out of --methods)")
    th.set_num_threads(args.threads)
    path = Path(args.out) / f"{args.task}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if path.exists():
        with open(path) as file:
            reader = csv.DictReader(file)
            if reader.fieldnames != FIELDS:
                raise SystemExit(f"{path} has other columns than this version writes ({reader.fieldnames}): pass a new --out")
            done = {(row["method"], int(row["seed"])) for row in reader}
    # Which code produced each row: the commit, "+dirty" (and the diff's hash) when the tree had changes.
    code = code_version(exclude=(path,))
    code_id = f"{str(code.get('commit'))[:10]}" + (f"+dirty({str(code.get('diff_sha256'))[:8]})" if code.get("dirty") else "")
    env_id, env_kwargs = TASKS[args.task]
    for seed in args.seeds:
        todo = [method for method in args.methods if (method, seed) not in done]
        if not todo:
            continue
        # The paper collects 1000 training and 200 validation episodes with a uniform policy.
        needs_data = any(method != "shortest_path" for method in todo)
        train = collect_dataset(env_id, args.episodes, seed=seed, env_kwargs=env_kwargs) if needs_data else None
        valid = (
            collect_dataset(env_id, max(1, args.episodes // 5), seed=10_000 + seed, env_kwargs=env_kwargs) if needs_data else None
        )
        for method in todo:
            row = run(args.task, method, seed, (train, valid), args.epochs, args.eval_episodes)  # type: ignore[arg-type]
            row["code"] = code_id
            print(row, flush=True)
            new_file = not path.exists()
            with open(path, "a", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=FIELDS, restval="")
                if new_file:
                    writer.writeheader()
                writer.writerow(row)


if __name__ == "__main__":
    main()
