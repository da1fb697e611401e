"""rl_zoo3 config: sac.yml with the `symmetrised` method of methods.yml (see README.md)."""

from sb3_equivariant.benchmark.config import zoo_hyperparams

hyperparams = zoo_hyperparams("sac", "symmetrised")
