"""rl_zoo3 config: ppo.yml with the `equivariant_he_init` method of methods.yml (see README.md)."""

from sb3_equivariant.benchmark.config import zoo_hyperparams

hyperparams = zoo_hyperparams("ppo", "equivariant_he_init")
