"""Time each equivariant layer against a plain torch layer of the same input/output sizes, in one run.

Train mode: forward + backward (the dense weight is rebuilt from the coefficients every step).
Eval mode: forward under ``no_grad`` (the dense weight is cached), as in ``policy.predict``.
Prints ratios equivariant / plain; also the time to build every basis of the paper's Pong network.

    python benchmarks/layers.py [--threads 1] [--batch 64]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch as th
from torch import nn
from torch.utils import benchmark

from sb3_equivariant.group import cyclic_group, dihedral_group, flip_group
from sb3_equivariant.nn import EquivariantConv2d, EquivariantLinear
from sb3_equivariant.representation import (
    ImageAction,
    dihedral_action,
    flip_action,
    permutation,
    regular,
    rotation_action,
    signed_permutation,
    trivial,
)
from sb3_equivariant.symmetrizer import clear_cache, equivariant_basis


def cases(batch: int) -> list[tuple[str, nn.Module, th.Tensor]]:
    c2, c4, d4 = flip_group(), cyclic_group(4), dihedral_group(4)
    return [
        (
            "CartPole obs->64 reg (C2)",
            EquivariantLinear(signed_permutation(c2, None, {1: [-1] * 4}), regular(c2), 1, 64),
            th.randn(batch, 4),
        ),
        ("hidden 64 reg->64 reg (C2)", EquivariantLinear(regular(c2), regular(c2), 64, 64), th.randn(batch, 128)),
        ("hidden 64 reg->64 reg (D4)", EquivariantLinear(regular(d4), regular(d4), 64, 64), th.randn(batch, 512)),
        (
            "policy 64 reg->5 actions (C4)",
            EquivariantLinear(regular(c4), permutation(c4, {1: [0, 2, 3, 4, 1]}), 64, 1),
            th.randn(batch, 256),
        ),
        (
            "GridWorld conv1 7x7/2 (C4)",
            EquivariantConv2d(rotation_action(), 1, 8, 7, stride=2, rep_in=trivial(c4)),
            th.randn(batch, 1, 21, 21),
        ),
        ("GridWorld conv2 5x5 (C4)", EquivariantConv2d(rotation_action(), 8, 16, 5), th.randn(batch, 32, 8, 8)),
        (
            "Pong conv1 8x8/4, 4 frames (C2)",
            EquivariantConv2d(flip_action("vertical"), 1, 11, 8, stride=4, rep_in=trivial(c2, 4)),
            th.randn(batch // 8, 4, 84, 84),
        ),
        (
            "Pong conv2 4x4/2 (C2)",
            EquivariantConv2d(flip_action("vertical"), 11, 22, 4, stride=2),
            th.randn(batch // 8, 22, 20, 20),
        ),
        ("D4 group conv 3x3 (D4)", EquivariantConv2d(dihedral_action(), 8, 8, 3, padding=1), th.randn(batch // 4, 64, 16, 16)),
    ]


def _time(fn: Callable[[], object], min_run_time: float) -> float:
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def measure(layer: nn.Module, x: th.Tensor, min_run_time: float) -> dict[str, float]:
    plain = layer.export()
    results = {}
    for name, module in (("equivariant", layer), ("plain", plain)):
        module.train()

        def train_step(module: nn.Module = module) -> None:
            module.zero_grad(set_to_none=True)
            module(x).sum().backward()

        results[f"train_{name}"] = _time(train_step, min_run_time)
        module.eval()

        def eval_step(module: nn.Module = module) -> None:
            with th.no_grad():
                module(x)

        results[f"eval_{name}"] = _time(eval_step, min_run_time)
    return results


def pong_basis_time() -> float:
    clear_cache()
    start = time.perf_counter()
    c2, flip = flip_group(), flip_action("vertical")
    equivariant_basis(ImageAction(flip, channels=4).as_representation(8, 8), regular(c2))
    equivariant_basis(ImageAction(flip, regular(c2)).as_representation(4, 4), regular(c2))
    equivariant_basis(ImageAction(flip, regular(c2)).as_representation(5, 5), regular(c2))
    equivariant_basis(regular(c2), regular(c2))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--min-run-time", type=float, default=0.3)
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    print(f"Pong network bases built in {pong_basis_time() * 1e3:.1f} ms (cold cache)")
    print(f"torch {th.__version__}, {args.threads} thread(s), batch {args.batch}")
    header = (
        f"{'layer':34s} {'train eq ms':>11s} {'plain ms':>9s} {'ratio':>6s}   {'eval eq ms':>10s} {'plain ms':>9s} {'ratio':>6s}"
    )
    print(header)
    print("-" * len(header))
    for name, layer, x in cases(args.batch):
        r = measure(layer, x, args.min_run_time)
        print(
            f"{name:34s} {r['train_equivariant'] * 1e3:11.3f} {r['train_plain'] * 1e3:9.3f} "
            f"{r['train_equivariant'] / r['train_plain']:6.2f}   {r['eval_equivariant'] * 1e3:10.3f} "
            f"{r['eval_plain'] * 1e3:9.3f} {r['eval_equivariant'] / r['eval_plain']:6.2f}"
        )


if __name__ == "__main__":
    main()
