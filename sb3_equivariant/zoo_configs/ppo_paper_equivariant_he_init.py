"""rl_zoo3 config: ppo_paper.yml with the `equivariant_he_init` method of methods.yml (see README.md)."""

from sb3_equivariant.benchmark.config import zoo_hyperparams

hyperparams = zoo_hyperparams("ppo_paper", "equivariant_he_init")
