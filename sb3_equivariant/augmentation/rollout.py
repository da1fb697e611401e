"""
A rollout buffer that augments on-policy data (PPO, A2C) with an environment's symmetry.

When the rollout is complete, :meth:`SymmetricRolloutBuffer.compute_returns_and_advantage` (which SB3 calls after
the last step, before ``train()``, so the policy is still the one that collected the data and is in eval mode)
replaces the data by transformed samples ``(L_g s, K_g a)``:

- ``augment="random"``: each sample is transformed by one uniformly random group element (identity included); the
  amount of data, the minibatch size and the number of gradient steps are unchanged.
- ``augment="all"``: each sample is expanded by every group element. The data grows by ``|G|`` and so does every
  minibatch (``batch_size * |G|`` samples), so the number of gradient steps per epoch is unchanged while the
  effective batch size is multiplied by ``|G|``.

Advantages and returns of a transformed sample are those of its source (the MDP is invariant, so the return does
not change). The "old" log-probabilities and values are *recomputed* for transformed samples under the collecting
policy, ``log π_old(K_g a | L_g s)`` and ``V_old(L_g s)``: for a policy that is not equivariant these differ from
the source's, and PPO's ratio must compare against the probability the pre-update policy gives to the sample it is
trained on. Samples under the identity keep their stored values.

A transformed action can be almost impossible under a non-equivariant collecting policy; PPO's ratio
``exp(log π − log π_old)`` then overflows to ``inf`` and the update to NaN (on CartPole with the paper's protocol,
7 of 10 runs at learning rates 5e-3 and 1e-2: docs/results.md, "Open issues"). Recomputed old log-probabilities are
therefore floored at ``min_log_prob`` (default −20: ratios stay finite, and only samples the old policy gave
probability < 2e-9 are affected; gradient clipping bounds the rest).
"""

from __future__ import annotations

import weakref
from collections.abc import Generator
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from stable_baselines3.common.utils import obs_as_tensor

from sb3_equivariant.augmentation.buffers import AugmentationRecord
from sb3_equivariant.augmentation.common import AUGMENT_MODES, apply_per_element, check_mode, seed_rng
from sb3_equivariant.envs.discovery import constructing_algorithm, env_of, resolve_symmetry
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError

_FLAT_FIELDS = ("observations", "actions", "values", "log_probs", "advantages", "returns")


class SymmetricRolloutBuffer(RolloutBuffer):
    """
    A :class:`~stable_baselines3.common.buffers.RolloutBuffer` whose completed rollout is augmented by a symmetry.

    It needs the collecting policy to recompute log-probabilities and values: :class:`SymmetricPPO` /
    :class:`SymmetricA2C` hand it over, with stock ``PPO(rollout_buffer_class=SymmetricRolloutBuffer, ...)`` train
    with :class:`~sb3_equivariant.augmentation.SymmetryCallback` (or call :meth:`set_policy`).

    :param buffer_size: steps per env in a rollout (``n_steps``).
    :param observation_space: observation space (Box, images in CHW layout; or Dict, for which an instance of
        :class:`SymmetricDictRolloutBuffer` is made, as SB3 picks a ``DictRolloutBuffer``).
    :param action_space: action space (Discrete, MultiDiscrete or 1-d Box).
    :param device: PyTorch device.
    :param gae_lambda: GAE lambda.
    :param gamma: discount factor.
    :param n_envs: number of parallel environments.
    :param symmetry: the symmetry, or a registered env id; ``None``: found from the env by :meth:`set_env`.
    :param augment: ``"random"`` or ``"all"`` (see the module docstring).
    :param seed: seed of the buffer's own generator; default: drawn from numpy's global generator (seeded by SB3).
    :param min_log_prob: floor of the recomputed old log-probabilities (see the module docstring).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> SymmetricRolloutBuffer:
        # PPO / A2C take the rollout_buffer_class as given: follow SB3's choice of a DictRolloutBuffer for Dict spaces.
        observation_space = args[1] if len(args) > 1 else kwargs.get("observation_space")
        if cls is SymmetricRolloutBuffer and isinstance(observation_space, spaces.Dict):
            cls = SymmetricDictRolloutBuffer
        return super().__new__(cls)

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
        symmetry: Symmetry | str | None = None,
        augment: str = "random",
        seed: int | None = None,
        min_log_prob: float = -20.0,
    ):
        owner = type(self).__name__
        self.augment = check_mode(augment, AUGMENT_MODES, owner)
        self.min_log_prob = min_log_prob
        algo = constructing_algorithm(self)
        self.symmetry: Symmetry | None = None  # without a symmetry and an env: found later by set_env
        if symmetry is not None or env_of(algo) is not None:
            self.symmetry = resolve_symmetry(
                symmetry, observation_space, action_space, owner, algorithm=algo, record_in="rollout_buffer_kwargs"
            )
        self.policy: ActorCriticPolicy | None = None
        # SB3 builds the rollout buffer just before the policy: keep the algorithm to take its policy when needed.
        self._algorithm = weakref.ref(algo) if algo is not None else None
        self.rng = seed_rng(seed)
        self.last_record: AugmentationRecord | None = None
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["policy"] = None  # the policy is saved by the algorithm, not inside its buffer
        state["_algorithm"] = None
        return state

    def set_policy(self, policy: ActorCriticPolicy) -> None:
        """:param policy: the policy that collects the rollouts (its log-probabilities and values are recomputed)."""
        self.policy = policy

    def set_env(self, env: Any) -> None:
        """:param env: the training env, used to find the symmetry if none was given."""
        if self.symmetry is None:
            self.symmetry = resolve_symmetry(None, self.observation_space, self.action_space, type(self).__name__, env=env)

    @property
    def expansion(self) -> int:
        """How many samples each collected sample becomes (``|G|`` for ``"all"``, else 1)."""
        return len(self.symmetry) if self.augment == "all" and self.symmetry is not None else 1

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        super().compute_returns_and_advantage(last_values, dones)
        self._augment()

    def _augment(self) -> None:
        if self.symmetry is None:
            raise SymmetryError(
                f"{type(self).__name__} has no symmetry: pass rollout_buffer_kwargs=dict(symmetry=...), call "
                "buffer.set_env(env), or train with sb3_equivariant.augmentation.SymmetryCallback"
            )
        if self.policy is None and self._algorithm is not None and self._algorithm() is not None:
            self.policy = self._algorithm().policy  # type: ignore[union-attr, assignment]
        if self.policy is None:
            raise RuntimeError(
                f"{type(self).__name__} needs the collecting policy: use SymmetricPPO / SymmetricA2C, train with "
                "sb3_equivariant.augmentation.SymmetryCallback, or call buffer.set_policy(model.policy)"
            )
        sym = self.symmetry
        for name in _FLAT_FIELDS:
            value = self.__dict__[name]
            flat = (
                {k: self.swap_and_flatten(v) for k, v in value.items()}
                if isinstance(value, dict)
                else self.swap_and_flatten(value)
            )
            self.__dict__[name] = flat
        self.generator_ready = True
        n = len(self.actions)
        if self.augment == "random":
            sources, elements = np.arange(n), self.rng.integers(0, len(sym), size=n)
        else:
            sources, elements = np.tile(np.arange(n), len(sym)), np.repeat(np.arange(len(sym)), n)
        obs = _transform_obs(sym, _take(self.observations, sources), elements)
        actions = apply_per_element(sym.transform_action, self.actions[sources], elements)
        values, log_probs = self.values[sources].copy(), self.log_probs[sources].copy()
        moved = np.flatnonzero(elements != 0)
        if moved.size:
            new_values, new_log_probs = self._evaluate(_take(obs, moved), actions[moved])
            values[moved], log_probs[moved] = new_values, np.maximum(new_log_probs, self.min_log_prob)
        self.observations, self.actions, self.values, self.log_probs = obs, actions, values, log_probs
        self.advantages, self.returns = self.advantages[sources], self.returns[sources]
        # swap_and_flatten puts (step t, env e) at index e * buffer_size + t.
        self.last_record = AugmentationRecord(sources % self.buffer_size, sources // self.buffer_size, elements)

    def _evaluate(self, obs: Any, actions: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Values, shape ``(n, 1)``, and log-probabilities, shape ``(n,)``, under the current (collecting) policy."""
        assert self.policy is not None
        values, log_probs = [], []
        with th.no_grad():
            for start in range(0, len(actions), chunk):
                rows = slice(start, start + chunk)
                part = {k: np.ascontiguousarray(v[rows]) for k, v in obs.items()} if isinstance(obs, dict) else obs[rows]
                obs_t = obs_as_tensor(np.ascontiguousarray(part) if not isinstance(part, dict) else part, self.device)
                act_t = th.as_tensor(actions[start : start + chunk], device=self.device)
                # As PPO / A2C feed actions to evaluate_actions.
                act_t = act_t.long().flatten() if isinstance(self.action_space, spaces.Discrete) else act_t.float()
                value, log_prob, _ = self.policy.evaluate_actions(obs_t, act_t)
                values.append(value.cpu().numpy().reshape(-1, 1))
                log_probs.append(log_prob.cpu().numpy().reshape(-1, 1))
        return np.concatenate(values), np.concatenate(log_probs)

    def get(self, batch_size: int | None = None) -> Generator[RolloutBufferSamples, None, None]:
        """
        Minibatches of the augmented data: ``batch_size * expansion`` samples each (all data when ``None``).

        :param batch_size: the algorithm's minibatch size, before augmentation.
        """
        assert self.full, "the rollout is not complete"
        if not self.generator_ready:
            raise RuntimeError("call compute_returns_and_advantage before get(): it augments the rollout")
        n = len(self.actions)
        indices = np.random.permutation(n)
        size = n if batch_size is None else batch_size * self.expansion
        for start in range(0, n, size):
            yield self._get_samples(indices[start : start + size])


class SymmetricDictRolloutBuffer(SymmetricRolloutBuffer, DictRolloutBuffer):  # type: ignore[misc]
    """
    :class:`SymmetricRolloutBuffer` for ``Dict`` observations (e.g. the joint multi-agent envs), on SB3's
    ``DictRolloutBuffer``; ``SymmetricRolloutBuffer(...)`` makes one by itself for a ``Dict`` observation space.
    Same parameters.
    """


def _take(obs: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of observations (an array, or a dict of arrays)."""
    return {k: v[index] for k, v in obs.items()} if isinstance(obs, dict) else obs[index]


def _transform_obs(symmetry: Symmetry, obs: Any, elements: np.ndarray) -> Any:
    """``out[i] = L_{elements[i]} obs[i]`` for arrays or dicts of arrays."""
    if not isinstance(obs, dict):
        return apply_per_element(symmetry.transform_obs, obs, elements)
    out = {k: np.empty_like(v) for k, v in obs.items()}
    for g in np.unique(elements):
        mask = elements == g
        moved = symmetry.transform_obs({k: v[mask] for k, v in obs.items()}, int(g))
        for k in out:
            out[k][mask] = moved[k]
    return out
