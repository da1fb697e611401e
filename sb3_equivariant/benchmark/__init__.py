"""
Benchmarks of equivariant policies against baselines and augmentation: ``python -m sb3_equivariant.benchmark``.

- :mod:`.config`: hyperparameters of every (algorithm, env, method) from ``zoo_configs/`` (one source for rl_zoo3
  and the runner).
- :mod:`.runner`: one resumable run writing its curve and manifest; :mod:`.grid`: the grid of runs on worker
  processes or Ray; :mod:`.checkpoint`, :mod:`.storage`, :mod:`.provenance`: crash-safe files and what code ran.
- :mod:`.aggregate` / :mod:`.plots`: rliable statistics, markdown tables, PNG figures.
- :mod:`.presets`: named experiments. :mod:`.compute`: throughput and inference-time measurements.
"""

from sb3_equivariant.benchmark.config import ConfigError, method_hyperparams, model_kwargs, zoo_hyperparams
from sb3_equivariant.benchmark.grid import run_grid
from sb3_equivariant.benchmark.presets import PRESETS, THRESHOLDS, Experiment
from sb3_equivariant.benchmark.runner import RunSpec, run_one

__all__ = [
    "PRESETS",
    "THRESHOLDS",
    "ConfigError",
    "Experiment",
    "RunSpec",
    "method_hyperparams",
    "model_kwargs",
    "run_grid",
    "run_one",
    "zoo_hyperparams",
]
