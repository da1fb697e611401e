"""
Memory and build time of PPO with an equivariant CNN policy against SB3's CnnPolicy on Pong frames, each measured in
a fresh process, printed as ratios from one run.

Each child process imports everything, makes the Pong env (8 envs, 4 stacked frames), then builds ``PPO(policy, env)``
(timed: the build time), trains one rollout + update (``learn(n_steps * n_envs)``), and reports its peak resident
memory (``ru_maxrss``) and the resident memory before the build, so that the table shows both the whole process and
what the model adds.

    python benchmarks/memory.py [--repeats 3] [--json results/compute/memory.json]

Measured results: docs/results.md, "Memory and build time".
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

from sb3_equivariant.benchmark.provenance import write_record

CHILD = r"""
import json, resource, sys, time
import torch as th
from stable_baselines3 import PPO
from sb3_equivariant import EquivariantCnnPolicy, make_symmetric_atari_env

def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

th.set_num_threads(1)
policy, policy_kwargs = sys.argv[1], json.loads(sys.argv[2])
env = make_symmetric_atari_env("PongNoFrameskip-v4", n_envs=8, seed=0, frame_stack=4)
env.reset()
before = rss_mb()
start = time.perf_counter()
model = PPO(EquivariantCnnPolicy if policy == "equivariant" else "CnnPolicy", env, n_steps=128, batch_size=256,
            n_epochs=1, device="cpu", policy_kwargs=policy_kwargs, seed=0)
build = time.perf_counter() - start
after_build = rss_mb()
model.learn(128 * 8)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
buffers = sum(b.numel() * b.element_size() for b in model.policy.buffers()) / 2**20
print(json.dumps(dict(build_s=build, rss_before_mb=before, rss_after_build_mb=after_build, peak_mb=peak, buffers_mb=buffers)))
"""

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "CnnPolicy (NatureCNN)": ("plain", {}),
    "EquivariantCnnPolicy (default: sizing=parameters)": ("equivariant", {}),
    "EquivariantCnnPolicy (sizing=channels)": ("equivariant", {"sizing": "channels"}),
    "EquivariantCnnPolicy (sizing=units)": ("equivariant", {"sizing": "units"}),
}


def measure(policy: str, policy_kwargs: dict[str, Any]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, policy, json.dumps(policy_kwargs)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per variant (medians are reported)")
    parser.add_argument("--json", help="also write the rows, the command and the code identity to this JSON file")
    args = parser.parse_args()
    # Variants interleaved in every repeat, so that a change of load on a shared machine hits all of them alike.
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in VARIANTS}
    for _ in range(args.repeats):
        for label, (policy, kwargs) in VARIANTS.items():
            runs[label].append(measure(policy, kwargs))
    rows = []
    for label, measured in runs.items():
        row = {key: statistics.median(r[key] for r in measured) for key in measured[0]}
        row["added_mb"] = row["peak_mb"] - row["rss_before_mb"]
        rows.append({"policy": label, **row})
    ref = rows[0]
    print("| policy | build s | ratio | peak RSS MB | ratio | added by model + training MB | ratio | policy buffers MB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['policy']} | {row['build_s']:.3f} | {row['build_s'] / ref['build_s']:.2f} | {row['peak_mb']:.0f} | "
            f"{row['peak_mb'] / ref['peak_mb']:.2f} | {row['added_mb']:.0f} | {row['added_mb'] / ref['added_mb']:.2f} | "
            f"{row['buffers_mb']:.2f} |"
        )
    if args.json:
        write_record(args.json, rows, sys.argv)


if __name__ == "__main__":
    main()
