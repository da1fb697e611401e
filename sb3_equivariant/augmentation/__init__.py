"""
Symmetry-aware augmentation baselines, to compare against equivariant networks on equal terms.

- Off-policy: :class:`SymmetricReplayBuffer` (``augment="random" | "all" | "store"``) for DQN, QR-DQN, SAC, TD3.
- On-policy: :class:`SymmetricRolloutBuffer`, :class:`SymmetricPPO` / :class:`SymmetricA2C` (rollout augmentation
  ``augment="random" | "all"``, symmetry loss ``symmetry_loss_coef``).
- Policy symmetrization: :class:`SymmetrizedActorCriticPolicy`, :class:`SymmetrizedDQNPolicy`,
  :class:`SymmetrizedQRDQNPolicy`, :class:`SymmetrizedSACPolicy` (an orbit mixture of squashed Gaussians), and CNN
  variants.
- Test-time symmetrization of any trained discrete-action policy: :func:`symmetrized_probabilities`.
- :class:`SymmetryCallback` hands the env / the collecting policy to the buffers under stock SB3 algorithms.

Wherever a ``symmetry`` is taken, a registered env id (``"CartPole-v1"``) may name it; the buffers and
``SymmetricPPO`` / ``SymmetricA2C`` also find it from the env when it is ``None``.

Python::

    DQN("MlpPolicy", env, replay_buffer_class=SymmetricReplayBuffer, replay_buffer_kwargs=dict(symmetry=sym, augment="all"))
    SymmetricPPO("MlpPolicy", env, augment="random", symmetry_loss_coef=0.0)
    PPO("MlpPolicy", env, rollout_buffer_class=SymmetricRolloutBuffer, rollout_buffer_kwargs=dict(augment="all"))
        .learn(n, callback=SymmetryCallback())
    A2C(SymmetrizedActorCriticPolicy, env, policy_kwargs=dict(symmetry=sym))

rl_zoo3 only knows its own algorithm names and evaluates ``policy_kwargs`` / ``replay_buffer_*`` strings in its own
namespace. A YAML file can use the symmetrized policies (``policy: sb3_equivariant.augmentation.SymmetrizedActorCriticPolicy``,
``policy_kwargs: "dict(symmetry='CartPole-v1')"``) and the callback (``callback:
sb3_equivariant.augmentation.SymmetryCallback``); the buffer classes need a Python config (``-conf my_module``, a
module defining ``hyperparams``) that passes the classes themselves, e.g. ``replay_buffer_class=SymmetricReplayBuffer,
replay_buffer_kwargs=dict(symmetry="CartPole-v1")`` or ``rollout_buffer_class=SymmetricRolloutBuffer,
callback="sb3_equivariant.augmentation.SymmetryCallback"``.
"""

from sb3_equivariant.augmentation.algorithms import SymmetricA2C, SymmetricPPO
from sb3_equivariant.augmentation.buffers import AugmentationRecord, SymmetricReplayBuffer
from sb3_equivariant.augmentation.callbacks import SymmetryCallback
from sb3_equivariant.augmentation.common import deprecated_aliases
from sb3_equivariant.augmentation.loss import symmetry_loss
from sb3_equivariant.augmentation.rollout import SymmetricDictRolloutBuffer, SymmetricRolloutBuffer
from sb3_equivariant.augmentation.symmetrized import (
    SymmetrizedActorCriticCnnPolicy,
    SymmetrizedActorCriticPolicy,
    SymmetrizedContinuousCritic,
    SymmetrizedDQNCnnPolicy,
    SymmetrizedDQNPolicy,
    SymmetrizedQNetwork,
    SymmetrizedQRDQNCnnPolicy,
    SymmetrizedQRDQNPolicy,
    SymmetrizedQuantileNetwork,
    SymmetrizedSACActor,
    SymmetrizedSACCnnPolicy,
    SymmetrizedSACPolicy,
)
from sb3_equivariant.augmentation.test_time import action_probabilities, symmetrized_probabilities

__all__ = [
    "AugmentationRecord",
    "SymmetricA2C",
    "SymmetricDictRolloutBuffer",
    "SymmetricPPO",
    "SymmetricReplayBuffer",
    "SymmetricRolloutBuffer",
    "SymmetrizedActorCriticCnnPolicy",
    "SymmetrizedActorCriticPolicy",
    "SymmetrizedContinuousCritic",
    "SymmetrizedDQNCnnPolicy",
    "SymmetrizedDQNPolicy",
    "SymmetrizedQNetwork",
    "SymmetrizedQRDQNCnnPolicy",
    "SymmetrizedQRDQNPolicy",
    "SymmetrizedQuantileNetwork",
    "SymmetrizedSACActor",
    "SymmetrizedSACCnnPolicy",
    "SymmetrizedSACPolicy",
    "SymmetryCallback",
    "action_probabilities",
    "symmetrized_probabilities",
    "symmetry_loss",
]

# The names before the American spelling (kept for old imports, rl_zoo3 configs and pickled models). A closed list:
# classes added since never had a British name.
_BRITISH_NAMES = (
    "SymmetrisedActorCriticCnnPolicy",
    "SymmetrisedActorCriticPolicy",
    "SymmetrisedDQNCnnPolicy",
    "SymmetrisedDQNPolicy",
    "SymmetrisedQNetwork",
    "SymmetrisedQRDQNCnnPolicy",
    "SymmetrisedQRDQNPolicy",
    "SymmetrisedQuantileNetwork",
)
__getattr__ = deprecated_aliases(
    __name__,
    {
        **{name: globals()[name.replace("Symmetrised", "Symmetrized")] for name in _BRITISH_NAMES},
        "symmetrised_probabilities": symmetrized_probabilities,
    },
)
