"""PRAE: plannable approximations to MDP homomorphisms (van der Pol, Kipf, Oliehoek, Welling, AAMAS 2020)."""

from sb3_equivariant.prae.dataset import TransitionDataset, collect_dataset
from sb3_equivariant.prae.evaluation import (
    CARTPOLE_ID,
    cartpole_goal,
    evaluate_cartpole,
    evaluate_room,
    room_goal_cells,
    run_episodes,
)
from sb3_equivariant.prae.model import PRAE
from sb3_equivariant.prae.planning import PlannedPolicy, soft_transitions, value_iteration

__all__ = [
    "CARTPOLE_ID",
    "PRAE",
    "PlannedPolicy",
    "TransitionDataset",
    "cartpole_goal",
    "collect_dataset",
    "evaluate_cartpole",
    "evaluate_room",
    "room_goal_cells",
    "run_episodes",
    "soft_transitions",
    "value_iteration",
]
