"""
Equivariant SB3 policies: actor-critic (PPO, A2C, TRPO, MaskablePPO), recurrent (RecurrentPPO), Q-networks (DQN,
QR-DQN), SAC and TD3.
"""

from sb3_equivariant.policies.actor_critic import (
    EquivariantActorCriticPolicy,
    EquivariantCnnPolicy,
    EquivariantMlpPolicy,
    ExportedActorCritic,
    MaskableEquivariantActorCriticPolicy,
    MaskableEquivariantCnnPolicy,
)
from sb3_equivariant.policies.common import count_parameters
from sb3_equivariant.policies.continuous import EquivariantContinuousCritic, ExportedActor
from sb3_equivariant.policies.dqn import (
    EquivariantCnnDQNPolicy,
    EquivariantCnnQRDQNPolicy,
    EquivariantDQNPolicy,
    EquivariantQRDQNPolicy,
    ExportedQNetwork,
)
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor
from sb3_equivariant.policies.recurrent import (
    EquivariantCnnLstmPolicy,
    EquivariantLSTM,
    EquivariantMlpLstmPolicy,
    EquivariantRecurrentActorCriticPolicy,
    ExportedRecurrentActor,
)
from sb3_equivariant.policies.sac import EquivariantCnnSACPolicy, EquivariantSACPolicy
from sb3_equivariant.policies.td3 import EquivariantCnnTD3Policy, EquivariantTD3Policy

__all__ = [
    "EquivariantActorCriticPolicy",
    "EquivariantCnnDQNPolicy",
    "EquivariantCnnExtractor",
    "EquivariantCnnLstmPolicy",
    "EquivariantCnnPolicy",
    "EquivariantCnnQRDQNPolicy",
    "EquivariantCnnSACPolicy",
    "EquivariantCnnTD3Policy",
    "EquivariantContinuousCritic",
    "EquivariantDQNPolicy",
    "EquivariantLSTM",
    "EquivariantMlpLstmPolicy",
    "EquivariantMlpPolicy",
    "EquivariantQRDQNPolicy",
    "EquivariantRecurrentActorCriticPolicy",
    "EquivariantSACPolicy",
    "EquivariantTD3Policy",
    "ExportedActor",
    "ExportedActorCritic",
    "ExportedQNetwork",
    "ExportedRecurrentActor",
    "MaskableEquivariantActorCriticPolicy",
    "MaskableEquivariantCnnPolicy",
    "count_parameters",
]
