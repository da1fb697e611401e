"""Multi-agent MDP homomorphic networks (van der Pol et al., ICLR 2022): cooperative tasks whose global symmetry
transforms every agent's local view, and equivariant message-passing policies for them.

The tasks are joint Gymnasium envs (``Dict`` of per-agent observations, ``MultiDiscrete`` joint action, team reward),
registered as ``sb3_equivariant/Wildlife-v0``, ``sb3_equivariant/TrafficLights-v0`` and the two-player lever game
``sb3_equivariant/LeverGame-v0``, with their symmetries in the registry; the PettingZoo views of the same tasks
(:func:`wildlife_parallel_env`, :func:`traffic_parallel_env`, :func:`lever_parallel_env`) need the ``multiagent``
extra. Policies: :mod:`sb3_equivariant.multiagent.policies`.
"""

from typing import Any

import gymnasium as gym

from sb3_equivariant.envs.registry import has_symmetry, register_symmetry
from sb3_equivariant.envs.symmetry import Symmetry
from sb3_equivariant.multiagent.lever import LEVER_ID, LeverGameEnv, cross_play_scores, lever_symmetry, register_lever_game
from sb3_equivariant.multiagent.policies import EquivariantMessagePassingPolicy, MessagePassingPolicy
from sb3_equivariant.multiagent.traffic import TRAFFIC_ID, TrafficLightsEnv, register_traffic, traffic_symmetry
from sb3_equivariant.multiagent.wildlife import WILDLIFE_ID, WildlifeEnv, register_wildlife, wildlife_symmetry

_PARALLEL = ("JointParallelEnv", "LeverGameParallelEnv", "lever_parallel_env", "traffic_parallel_env", "wildlife_parallel_env")


def _wildlife(env: gym.Env | None) -> Symmetry:
    """sb3_equivariant/Wildlife-v0, exact: C4 turns of the torus (see :func:`wildlife_symmetry`)."""
    if env is None:
        return wildlife_symmetry()
    base: Any = env.unwrapped
    return wildlife_symmetry(base.n_agents, base.size)


def _traffic(env: gym.Env | None) -> Symmetry:
    """sb3_equivariant/TrafficLights-v0, exact: C4 turns of the road grid, lights permute, phases swap."""
    return traffic_symmetry() if env is None else traffic_symmetry(env.unwrapped.spawn_steps)  # type: ignore[attr-defined]


def _lever(env: gym.Env | None) -> Symmetry:
    """sb3_equivariant/LeverGame-v0, exact: turns of the interchangeable levers."""
    return lever_symmetry() if env is None else lever_symmetry(env.unwrapped.n_levers)  # type: ignore[attr-defined]


def register_multiagent_envs() -> None:
    """Register the multi-agent envs with gymnasium and their symmetries with the registry (idempotent)."""
    register_wildlife()
    register_traffic()
    register_lever_game()
    for env_id, factory in ((WILDLIFE_ID, _wildlife), (TRAFFIC_ID, _traffic), (LEVER_ID, _lever)):
        if not has_symmetry(env_id):
            register_symmetry(env_id, factory)


def __getattr__(name: str) -> Any:
    # The PettingZoo views import pettingzoo, an optional dependency: load them on first use.
    if name in _PARALLEL:
        try:
            from sb3_equivariant.multiagent import parallel
        except ImportError as err:
            raise ImportError(
                f"{name} needs PettingZoo: pip install 'sb3-equivariant[multiagent]' (or pip install pettingzoo)"
            ) from err
        return getattr(parallel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_multiagent_envs()

__all__ = [
    "LEVER_ID",
    "TRAFFIC_ID",
    "WILDLIFE_ID",
    "EquivariantMessagePassingPolicy",
    "JointParallelEnv",
    "LeverGameEnv",
    "LeverGameParallelEnv",
    "MessagePassingPolicy",
    "TrafficLightsEnv",
    "WildlifeEnv",
    "cross_play_scores",
    "lever_parallel_env",
    "lever_symmetry",
    "register_multiagent_envs",
    "traffic_parallel_env",
    "traffic_symmetry",
    "wildlife_parallel_env",
    "wildlife_symmetry",
]
