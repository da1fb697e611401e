"""What a run trains: the algorithm class, its resolved hyperparameters and its envs (with the symmetry attached)."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_equivariant.benchmark.spec import RunSpec


def algorithm_class(algo: str, params: dict[str, Any] | None = None) -> type[BaseAlgorithm]:
    """
    The class that trains a run: rl_zoo3's class for ``algo``, or the subclass a method names under ``algorithm``
    (a mapping from SB3's class name to a dotted path, e.g. ``{PPO: sb3_equivariant.augmentation.SymmetricPPO}``).

    :param algo: rl_zoo3's algorithm name (``ppo``, ``a2c``, ``dqn``, ...).
    :param params: the run's structured hyperparameters (see :func:`resolved_hyperparams`).
    :raises ValueError: for an unknown algorithm, or a method that has no class for it or names one that is not a
        subclass of it.
    """
    from sb3_contrib import QRDQN, RecurrentPPO
    from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

    from sb3_equivariant.benchmark.config import ConfigError, resolve_class

    # rl_zoo3's names
    classes: dict[str, type[BaseAlgorithm]] = {
        "ppo": PPO,
        "a2c": A2C,
        "dqn": DQN,
        "qrdqn": QRDQN,
        "sac": SAC,
        "td3": TD3,
        "ppo_lstm": RecurrentPPO,
    }
    if algo not in classes:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {', '.join(classes)}")
    base = classes[algo]
    replacements = (params or {}).get("algorithm")
    if replacements is None:
        return base
    if not isinstance(replacements, dict):
        raise ConfigError(f"a method's `algorithm` maps SB3 class names to dotted paths, got {replacements!r}")
    if base.__name__ not in replacements:
        raise ConfigError(f"this method runs only with {', '.join(replacements)}, not {base.__name__} ({algo})")
    cls = resolve_class(replacements[base.__name__])
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"the method's algorithm {replacements[base.__name__]!r} is not a subclass of {base.__name__}")
    return cls  # type: ignore[no-any-return]


def resolved_hyperparams(spec: RunSpec) -> dict[str, Any]:
    """The structured hyperparameters of a run: the zoo config's for its method, with the spec's overrides."""
    from sb3_equivariant.benchmark.config import merge, method_hyperparams

    params = merge(method_hyperparams(spec.config, spec.env_id, spec.method), dict(spec.overrides))
    params["n_timesteps"] = spec.n_timesteps
    return params


def make_envs(spec: RunSpec, params: dict[str, Any], seed: int, n_envs: int) -> Any:
    """Training or evaluation envs with the env's symmetry attached (``make_symmetric_vec_env`` / Atari)."""
    from sb3_equivariant.benchmark.config import ConfigError, _is_atari
    from sb3_equivariant.envs import make_symmetric_atari_env, make_symmetric_vec_env

    if params.get("normalize"):
        raise ConfigError(
            f"{spec.config}/{spec.env_id}: normalize is not supported by the benchmark (VecNormalize's per-dimension "
            "statistics break the symmetry); set normalize: false"
        )
    env_kwargs = params.get("env_kwargs") or {}
    if _is_atari(spec.env_id):
        return make_symmetric_atari_env(
            spec.env_id, n_envs=n_envs, seed=seed, frame_stack=int(params.get("frame_stack", 4)), env_kwargs=env_kwargs
        )
    return make_symmetric_vec_env(spec.env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)


__all__ = ["algorithm_class", "make_envs", "resolved_hyperparams"]
