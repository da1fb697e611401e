"""
Compute benchmark: training throughput and rollout inference time of equivariant vs baseline policies of about the
same size, on CartPole, GridWorld and Pong frames, printed as a markdown table with ratios (one run).

    python benchmarks/compute.py                    # all three envs
    python benchmarks/compute.py --envs CartPole-v1 --scale 0.5 --json results/compute/compute.json
"""

from __future__ import annotations

import argparse
import sys

from sb3_equivariant.benchmark.compute import markdown, run
from sb3_equivariant.benchmark.provenance import write_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", help="CartPole-v1, GridWorld, PongNoFrameskip-v4 (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the training steps measured")
    parser.add_argument("--inference-calls", type=int, default=200, help="predict calls timed per policy")
    parser.add_argument("--json", help="also write the rows, the command and the code identity to this JSON file")
    args = parser.parse_args()
    rows = run(args.envs, args.scale, args.inference_calls)
    print(markdown(rows))
    if args.json:
        write_record(args.json, rows, sys.argv)


if __name__ == "__main__":
    main()
