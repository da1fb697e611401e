"""Equivariant SB3 policies: actor-critic (PPO, A2C, TRPO, MaskablePPO) and Q-networks (DQN, QR-DQN)."""

from sb3_equivariant.policies.actor_critic import (
    EquivariantActorCriticPolicy,
    EquivariantCnnPolicy,
    EquivariantMlpPolicy,
    ExportedActorCritic,
    MaskableEquivariantActorCriticPolicy,
    MaskableEquivariantCnnPolicy,
)
from sb3_equivariant.policies.common import count_parameters
from sb3_equivariant.policies.dqn import (
    EquivariantCnnDQNPolicy,
    EquivariantCnnQRDQNPolicy,
    EquivariantDQNPolicy,
    EquivariantQRDQNPolicy,
    ExportedQNetwork,
)
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor

__all__ = [
    "EquivariantActorCriticPolicy",
    "EquivariantCnnDQNPolicy",
    "EquivariantCnnExtractor",
    "EquivariantCnnPolicy",
    "EquivariantCnnQRDQNPolicy",
    "EquivariantDQNPolicy",
    "EquivariantMlpPolicy",
    "EquivariantQRDQNPolicy",
    "ExportedActorCritic",
    "ExportedQNetwork",
    "MaskableEquivariantActorCriticPolicy",
    "MaskableEquivariantCnnPolicy",
    "count_parameters",
]
