"""
Compute cost of equivariant policies against baselines of about the same size: training throughput (env steps per
second of PPO's ``learn``) and rollout inference time (``policy.predict`` on one batch of observations, one per env).

Times are CPU times of this process (``time.process_time``), which a shared machine distorts less than wall time;
every number of a table comes from the same run, so the ratios compare like with like. One torch thread.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Case:
    """
    One env and a baseline / equivariant pair of policies.

    :param name: row name.
    :param make_env: ``make_env(n_envs)`` -> VecEnv with the env's symmetry.
    :param n_envs: parallel envs.
    :param ppo_kwargs: PPO arguments shared by both policies.
    :param policies: ``{label: (policy, policy_kwargs)}``; the first is the reference.
    :param train_steps: env steps of ``learn`` per policy.
    """

    name: str
    make_env: Callable[[int], Any]
    n_envs: int
    ppo_kwargs: dict[str, Any]
    policies: dict[str, tuple[Any, dict[str, Any]]]
    train_steps: int


def _vec(env_id: str) -> Callable[[int], Any]:
    from sb3_equivariant.envs import make_symmetric_vec_env

    return lambda n: make_symmetric_vec_env(env_id, n_envs=n, seed=0)


def _pong(n: int) -> Any:
    from sb3_equivariant.envs import make_symmetric_atari_env

    return make_symmetric_atari_env("PongNoFrameskip-v4", n_envs=n, seed=0, frame_stack=4)


def default_cases(scale: float = 1.0) -> list[Case]:
    """
    CartPole (MLPs), GridWorld (the paper's nets) and Pong (NatureCNN-sized nets, 4 stacked frames): the baseline,
    the equivariant policy at its default widths and at the other sizing rules.
    """
    from sb3_equivariant.benchmark.networks import SmallCnn
    from sb3_equivariant.policies import EquivariantCnnPolicy, EquivariantMlpPolicy

    grid_cnn = dict(channels=(16, 32), kernel_sizes=(7, 5), strides=(2, 1), pooling="mean", features_dim=512)
    grid_eq = dict(kernel_sizes=(7, 5), strides=(2, 1), pooling="max")
    return [
        Case(
            "CartPole-v1",
            _vec("CartPole-v1"),
            8,
            dict(n_steps=32, batch_size=256, n_epochs=20),
            {
                "MLP [64, 64]": ("MlpPolicy", {}),
                "equivariant [45, 45] (default: parameters)": (EquivariantMlpPolicy, {}),
                "equivariant [64, 64] (channels)": (EquivariantMlpPolicy, dict(sizing="channels")),
            },
            int(8192 * scale),
        ),
        Case(
            "GridWorld",
            _vec("sb3_equivariant/GridWorld-v0"),
            16,
            dict(n_steps=16, batch_size=64, n_epochs=4),
            {
                "CNN 16/32, fc 512": (
                    "CnnPolicy",
                    dict(features_extractor_class=SmallCnn, features_extractor_kwargs=grid_cnn, net_arch=[]),
                ),
                "equivariant 16/32, fc 512 (channels)": (
                    EquivariantCnnPolicy,
                    dict(features_extractor_kwargs=dict(grid_eq, channels=(16, 32), features_channels=512)),
                ),
                "equivariant 8/16, fc 256 (parameters)": (
                    EquivariantCnnPolicy,
                    dict(features_extractor_kwargs=dict(grid_eq, channels=(8, 16), features_channels=256)),
                ),
            },
            int(4096 * scale),
        ),
        Case(
            "PongNoFrameskip-v4",
            _pong,
            8,
            dict(n_steps=128, batch_size=256, n_epochs=4),
            {
                "NatureCNN": ("CnnPolicy", {}),
                "equivariant NatureCNN / sqrt(2) (default: parameters)": (EquivariantCnnPolicy, {}),
                "equivariant NatureCNN (channels)": (EquivariantCnnPolicy, dict(sizing="channels")),
                "equivariant NatureCNN / 2 (units)": (EquivariantCnnPolicy, dict(sizing="units")),
            },
            int(2048 * scale),
        ),
    ]


def _repeat(fn: Callable[[], Any], n: int) -> None:
    for _ in range(n):
        fn()


def _cpu_timed(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def measure(case: Case, inference_calls: int = 200) -> list[dict[str, Any]]:
    """Parameters, training steps per CPU second and inference CPU time per ``predict`` call, per policy."""
    import torch as th
    from stable_baselines3 import PPO

    from sb3_equivariant.policies import count_parameters

    th.set_num_threads(1)
    rows = []
    for label, (policy, policy_kwargs) in case.policies.items():
        env = case.make_env(case.n_envs)
        model = PPO(policy, env, seed=0, device="cpu", verbose=0, policy_kwargs=policy_kwargs, **case.ppo_kwargs)
        n_rollout = case.ppo_kwargs["n_steps"] * case.n_envs
        steps = max(n_rollout, case.train_steps // n_rollout * n_rollout)
        model.learn(n_rollout)  # warm-up: first-call allocations
        train_cpu = _cpu_timed(functools.partial(model.learn, steps, reset_num_timesteps=False))
        obs = env.reset()
        predict = functools.partial(model.policy.predict, obs, deterministic=True)
        predict()
        infer_cpu = _cpu_timed(functools.partial(_repeat, predict, inference_calls))
        rows.append(
            dict(
                env=case.name,
                policy=label,
                n_envs=case.n_envs,
                parameters=count_parameters(model.policy),
                steps=steps,
                train_steps_per_cpu_s=steps / train_cpu,
                inference_ms=1e3 * infer_cpu / inference_calls,
            )
        )
        env.close()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """Rows as a markdown table with ratios against the first policy of each env."""
    head = "| env | policy | params | train env steps / CPU s | ratio | predict (ms / batch of n_envs) | ratio |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    reference: dict[str, dict[str, Any]] = {}
    for row in rows:
        ref = reference.setdefault(row["env"], row)
        lines.append(
            f"| {row['env']} (n_envs={row['n_envs']}) | {row['policy']} | {row['parameters']:,} | "
            f"{row['train_steps_per_cpu_s']:,.0f} | {row['train_steps_per_cpu_s'] / ref['train_steps_per_cpu_s']:.2f} | "
            f"{row['inference_ms']:.2f} | {row['inference_ms'] / ref['inference_ms']:.2f} |"
        )
    return "\n".join(lines)


def run(envs: list[str] | None = None, scale: float = 1.0, inference_calls: int = 200) -> list[dict[str, Any]]:
    """:param envs: case names to run (default: all). :param scale: multiplies the training steps."""
    cases = [c for c in default_cases(scale) if envs is None or c.name in envs]
    if envs is not None and len(cases) != len(envs):
        known = [c.name for c in default_cases()]
        raise ValueError(f"unknown env in {envs}; known: {known}")
    rows = []
    for case in cases:
        rows += measure(case, inference_calls)
    return rows
