"""
How far from the symmetric states do an experiment's trained policies go? For every finished run of a preset whose
final model is still under ``--checkpoints``, roll the model out (greedy and stochastic) and record the mean norm of
the part of the observation and of the action that the symmetry does not fix: ``|x - P x|`` with
``P = 1/|G| Σ_g ρ(g)``, the projector onto the invariant subspace (for a leg swap: half the left-right difference).

    python benchmarks/asymmetry.py --preset walker2d_sac --checkpoints checkpoints [--episodes 5]

An equivariant deterministic policy maps a symmetric state to a symmetric action, so under equivariant dynamics the
symmetric states form an invariant set: a policy that stays near it cannot, e.g., alternate its legs. This measures
how near. Writes ``results/<preset>/asymmetry.json`` (rows and the code that measured them; each row also names the
commits its model was trained at) and prints a table of medians over seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sb3_equivariant.benchmark.asymmetry import markdown, measure
from sb3_equivariant.benchmark.presets import PRESETS
from sb3_equivariant.benchmark.provenance import write_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--episodes", type=int, default=5)
    args = parser.parse_args()
    rows = measure(args.preset, args.checkpoints, args.results, args.episodes)
    if not rows:
        sys.exit(f"no finished run of {args.preset} has a final model under {args.checkpoints}")
    write_record(args.results / args.preset / "asymmetry.json", rows, sys.argv)
    print(markdown(rows))


if __name__ == "__main__":
    main()
