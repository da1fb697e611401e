"""
Replay buffers that augment off-policy data (DQN, QR-DQN, SAC, TD3) with an environment's symmetry.

Three published ways of using a symmetry as data augmentation are offered as ``augment`` (formerly ``mode``):

- ``"random"``: every sampled transition is transformed by one uniformly random group element (identity included);
  the batch size is unchanged (RAD / invariant-transform experience replay).
- ``"all"``: every sampled transition is expanded by every group element; the batch grows by ``|G|``
  (Kaleidoscope experience replay). Element-major layout: sample ``g * n + i`` is source ``i`` under ``g``.
  With ``keep_batch_size=True`` only ``batch_size / |G|`` sources are drawn, so the batch keeps its size (equal
  compute per gradient step; needed by algorithms that assume the batch size, such as sb3-contrib's QR-DQN).
- ``"store"``: at insertion every transition is stored together with its ``|G| - 1`` transformed copies; sampling is
  then uniform over all stored copies (equi_rl). Copies count towards ``buffer_size``, so the buffer holds
  ``buffer_size / |G|`` distinct transitions: the memory is the same as a plain buffer's.

Observations and next observations are transformed by ``L_g``, actions by ``K_g``; rewards and dones are unchanged
(the MDP is invariant). The transform is applied to raw observations, before any ``VecNormalize`` normalization.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_equivariant.augmentation.common import apply_per_element, check_mode, renamed_keyword, seed_rng
from sb3_equivariant.envs.discovery import constructing_algorithm, env_of, resolve_symmetry
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError

REPLAY_MODES = ("random", "all", "store")


class AugmentationRecord(NamedTuple):
    """
    Where each sample of the last batch came from: sample ``i`` is the stored, untransformed transition
    ``(batch_indices[i], env_indices[i])`` transformed by group element ``elements[i]``.
    """

    batch_indices: np.ndarray
    env_indices: np.ndarray
    elements: np.ndarray


class SymmetricReplayBuffer(ReplayBuffer):
    """
    A :class:`~stable_baselines3.common.buffers.ReplayBuffer` that augments transitions with a symmetry.

    Use it as ``DQN(..., replay_buffer_class=SymmetricReplayBuffer, replay_buffer_kwargs=dict(symmetry=sym))``.

    :param buffer_size: maximum number of stored transitions (with ``augment="store"`` transformed copies included).
    :param observation_space: observation space (a Box; images in CHW layout as SB3 stores them).
    :param action_space: action space (Discrete or 1-d Box).
    :param device: PyTorch device.
    :param n_envs: number of parallel environments.
    :param optimize_memory_usage: SB3's memory-efficient variant (next observations share the observation array).
    :param handle_timeout_termination: treat time-limit truncations as non-terminal.
    :param symmetry: the symmetry to augment with, or a registered env id. ``None``: the env's, found on the
        algorithm building the buffer, or later by :meth:`set_env` (done by
        :class:`~sb3_equivariant.augmentation.SymmetryCallback`); ``augment="store"`` needs it at construction.
    :param augment: ``"random"``, ``"all"`` or ``"store"`` (see the module docstring; default ``"random"``).
    :param seed: seed of the buffer's own generator that draws group elements; default: drawn from numpy's global
        generator, which the algorithm's ``seed`` fixes.
    :param keep_batch_size: ``augment="all"`` only: draw ``batch_size / |G|`` sources so that a batch keeps
        ``batch_size`` samples instead of growing to ``batch_size * |G|``.
    :param mode: deprecated name of ``augment``.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: Any = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        symmetry: Symmetry | str | None = None,
        augment: str | None = None,
        seed: int | None = None,
        keep_batch_size: bool = False,
        mode: str | None = None,
    ):
        owner = type(self).__name__
        augment = renamed_keyword(augment, mode, "augment", "mode", owner, default="random")
        self.augment = check_mode(augment, REPLAY_MODES, owner)
        if keep_batch_size and augment != "all":
            raise ValueError(f"{owner}: keep_batch_size only applies to augment='all', got augment={augment!r}")
        self.keep_batch_size = keep_batch_size
        algo = constructing_algorithm(self)
        self.symmetry: Symmetry | None = None  # without a symmetry and an env: found later by set_env
        if symmetry is not None or env_of(algo) is not None:
            self.symmetry = resolve_symmetry(
                symmetry,
                observation_space,
                action_space,
                owner,
                algorithm=algo,
                record_in="replay_buffer_kwargs",
                allow_dict=False,
                acts_on_normalized_obs=False,  # raw observations are transformed, then normalized
            )
        elif augment == "store":
            raise SymmetryError(f"{owner}: augment='store' needs the symmetry at construction (`symmetry=`)")
        self.source_n_envs = n_envs
        # "store" keeps the copy of env e under element g in column g * n_envs + e, so each column is one consistent
        # stream of transitions (needed by optimize_memory_usage, where the next observation is the next row).
        columns = n_envs * (len(self.symmetry) if augment == "store" and self.symmetry is not None else 1)
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=columns,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.rng = seed_rng(seed)
        self.last_record: AugmentationRecord | None = None

    @property
    def mode(self) -> str:
        """Deprecated name of :attr:`augment`."""
        warnings.warn("SymmetricReplayBuffer.mode is deprecated, use .augment", DeprecationWarning, stacklevel=2)
        return self.augment

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Buffers pickled before the rename of ``mode`` to ``augment``.
        if "mode" in state:
            state["augment"] = state.pop("mode")
        self.__dict__.update(state)

    def set_env(self, env: Any) -> None:
        """
        Find the symmetry from ``env`` when none was given (the env itself is not kept, so the buffer pickles).

        :param env: the training environment (gymnasium env or VecEnv).
        """
        if self.symmetry is None:
            self.symmetry = resolve_symmetry(
                None,
                self.observation_space,
                self.action_space,
                type(self).__name__,
                env=env,
                allow_dict=False,
                acts_on_normalized_obs=False,
            )

    def _require_symmetry(self) -> Symmetry:
        if self.symmetry is None:
            raise SymmetryError(
                f"{type(self).__name__} has no symmetry: pass replay_buffer_kwargs=dict(symmetry=...), call "
                "buffer.set_env(env), or train with sb3_equivariant.augmentation.SymmetryCallback"
            )
        return self.symmetry

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """
        A batch of augmented transitions: ``batch_size`` samples, or ``batch_size * |G|`` for ``augment="all"``
        unless ``keep_batch_size``.

        :param batch_size: number of samples (of sources for ``"all"`` without ``keep_batch_size``).
        :param env: the VecNormalize wrapper whose statistics normalize observations and rewards, if any.
        """
        if self.keep_batch_size:
            order = len(self._require_symmetry())
            if batch_size % order:
                raise ValueError(f"keep_batch_size: batch_size {batch_size} is not a multiple of the group order {order}")
            batch_size //= order
        return super().sample(batch_size, env=env)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        if self.augment != "store":
            super().add(obs, next_obs, action, reward, done, infos)
            return
        sym = self._require_symmetry()
        n = self.source_n_envs
        obs = np.asarray(obs).reshape((n, *self.obs_shape))
        next_obs = np.asarray(next_obs).reshape((n, *self.obs_shape))
        action = np.asarray(action).reshape((n, self.action_dim))
        elements = list(sym.group.elements)
        super().add(
            np.concatenate([sym.transform_obs(obs, g) for g in elements]),
            np.concatenate([sym.transform_obs(next_obs, g) for g in elements]),
            np.concatenate([sym.transform_action(action, g) for g in elements]),
            np.tile(np.asarray(reward).reshape(n), len(sym)),
            np.tile(np.asarray(done).reshape(n), len(sym)),
            list(infos) * len(sym),
        )

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        sym = self._require_symmetry()
        # Same index draw as SB3's ReplayBuffer, so only the group elements come from the buffer's own generator.
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        obs, actions, next_obs, dones, rewards = self._stored(batch_inds, env_indices)
        if self.augment == "store":
            elements = env_indices // self.source_n_envs
            self.last_record = AugmentationRecord(batch_inds, env_indices % self.source_n_envs, elements)
        else:
            if self.augment == "random":
                elements = self.rng.integers(0, len(sym), size=len(batch_inds))
            else:
                elements = np.repeat(np.arange(len(sym)), len(batch_inds))
                batch_inds, env_indices = np.tile(batch_inds, len(sym)), np.tile(env_indices, len(sym))
                obs, actions, next_obs = (np.tile(x, (len(sym),) + (1,) * (x.ndim - 1)) for x in (obs, actions, next_obs))
                dones, rewards = np.tile(dones, (len(sym), 1)), np.tile(rewards, (len(sym), 1))
            obs = apply_per_element(sym.transform_obs, obs, elements)
            next_obs = apply_per_element(sym.transform_obs, next_obs, elements)
            actions = apply_per_element(sym.transform_action, actions, elements)
            self.last_record = AugmentationRecord(batch_inds, env_indices, elements)
        data = (
            self._normalize_obs(obs, env),
            actions,
            self._normalize_obs(next_obs, env),
            dones,
            self._normalize_reward(rewards, env),
        )
        return ReplayBufferSamples(*(self.to_torch(np.ascontiguousarray(x)) for x in data))

    def _stored(self, batch_inds: np.ndarray, env_indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """Raw (obs, actions, next_obs, dones, rewards) at the given rows and columns, as SB3 reads them."""
        if self.optimize_memory_usage:
            next_obs = self.observations[(batch_inds + 1) % self.buffer_size, env_indices]
        else:
            next_obs = self.next_observations[batch_inds, env_indices]
        # Only dones that are not time-limit truncations end the bootstrap (as in SB3).
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        return (
            self.observations[batch_inds, env_indices],
            self.actions[batch_inds, env_indices],
            next_obs,
            dones.reshape(-1, 1),
            self.rewards[batch_inds, env_indices].reshape(-1, 1),
        )
