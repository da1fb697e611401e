"""Which equivariant policy each algorithm needs: a wrong pairing fails with the name of the right policy."""

from __future__ import annotations

from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy

# SB3's policy families, most specific first (the recurrent and maskable ones are actor-critics too): what they
# are, the algorithms that build them, and the equivariant and the symmetrized policies that belong to them.
POLICY_FAMILIES: list[tuple[type[BasePolicy], str, str, str, str | None]] = [
    (
        RecurrentActorCriticPolicy,
        "a recurrent actor-critic policy",
        "RecurrentPPO",
        "EquivariantMlpLstmPolicy (EquivariantCnnLstmPolicy for images)",
        None,
    ),
    (
        MaskableActorCriticPolicy,
        "a maskable actor-critic policy",
        "MaskablePPO",
        "MaskableEquivariantActorCriticPolicy (MaskableEquivariantCnnPolicy for images)",
        None,
    ),
    (
        ActorCriticPolicy,
        "an actor-critic policy",
        "PPO, A2C, TRPO",
        "EquivariantMlpPolicy (EquivariantCnnPolicy for images)",
        "SymmetrizedActorCriticPolicy (SymmetrizedActorCriticCnnPolicy for images)",
    ),
    (
        QRDQNPolicy,
        "a quantile Q-network policy",
        "QRDQN",
        "EquivariantQRDQNPolicy (EquivariantCnnQRDQNPolicy for images)",
        "SymmetrizedQRDQNPolicy (SymmetrizedQRDQNCnnPolicy for images)",
    ),
    (
        DQNPolicy,
        "a Q-network policy",
        "DQN",
        "EquivariantDQNPolicy (EquivariantCnnDQNPolicy for images)",
        "SymmetrizedDQNPolicy (SymmetrizedDQNCnnPolicy for images)",
    ),
    (
        SACPolicy,
        "a stochastic actor + Q-critics policy",
        "SAC",
        "EquivariantSACPolicy (EquivariantCnnSACPolicy for images)",
        "SymmetrizedSACPolicy (SymmetrizedSACCnnPolicy for images)",
    ),
    (
        TD3Policy,
        "a deterministic actor + Q-critics policy",
        "TD3, DDPG",
        "EquivariantTD3Policy (EquivariantCnnTD3Policy for images)",
        None,
    ),
]


def policy_family(policy_class: type) -> type[BasePolicy] | None:
    """The SB3 policy family (e.g. ``ActorCriticPolicy``, ``SACPolicy``) that ``policy_class`` belongs to."""
    for base, *_ in POLICY_FAMILIES:
        if issubclass(policy_class, base):
            return base
    return None


def algorithm_family(algorithm: type[BaseAlgorithm]) -> type[BasePolicy] | None:
    """The policy family an algorithm builds, read from its ``policy_aliases`` (``"MlpPolicy"`` & co.)."""
    families = {policy_family(cls) for cls in algorithm.policy_aliases.values()}
    return families.pop() if len(families) == 1 else None


def check_pairing(policy_class: type[BasePolicy], algorithm: BaseAlgorithm | None) -> None:
    """
    Raise a ``TypeError`` naming the policy to use when ``policy_class`` does not belong to the policy family of
    ``algorithm``: the symmetrized policy of that family for a symmetrized one (where the family has one), else the
    equivariant one. Called before SB3 builds anything, so that ``DQN(EquivariantMlpPolicy, env)`` (or ``DQN.load`` of
    a PPO model) does not end in an ``AttributeError`` deep inside the algorithm.

    :param policy_class: the equivariant or symmetrized policy class being constructed.
    :param algorithm: the algorithm it is built for (see :func:`~sb3_equivariant.envs.discovery.constructing_algorithm`);
        nothing is checked without one.
    """
    if algorithm is None:
        return
    name, algo_name = policy_class.__name__, type(algorithm).__name__
    own = policy_family(policy_class)
    wanted = algorithm_family(type(algorithm))
    if own is not None and own is wanted:
        return
    own_text = next((f"{text} ({algos})" for base, text, algos, *_ in POLICY_FAMILIES if base is own), "not an SB3 policy")
    is_symmetrized = bool(getattr(policy_class, "symmetrized", False))
    kind = "symmetrized" if is_symmetrized else "equivariant"
    if wanted is None:
        supported = ", ".join(algos for _, _, algos, eq, sym in POLICY_FAMILIES if (sym if is_symmetrized else eq))
        raise TypeError(f"{name} is {own_text}; there is no {kind} policy for {algo_name} (supported: {supported})")
    equivariant, symmetrized = next((eq, sym) for base, _, _, eq, sym in POLICY_FAMILIES if base is wanted)
    use = (symmetrized or f"{equivariant}; {algo_name} has no symmetrized policy") if is_symmetrized else equivariant
    raise TypeError(f"{name} is {own_text}, not a policy for {algo_name}: use {use}")
