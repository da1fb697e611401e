"""PRAE: learn an action-equivariant latent MDP from logged transitions, then plan in it (van der Pol et al., AAMAS 2020).

The encoder ``Z`` and the latent action model ``T(z, a) = z + MLP([z, one_hot(a)])`` are trained so that encoding then
stepping in latent space equals stepping then encoding, with the contrastive loss

    0.5 |Z(o') - T(Z(o), a)|^2 + 0.5 (r - R(T(Z(o), a)))^2 + sum_neg max(0, hinge - 0.5 |Z(o') - Z(o_neg)|^2)

(negatives drawn from the same episode). Encoding a sample of training observations gives the states of an abstract
MDP with soft transitions; value iteration towards an encoded goal observation gives a greedy policy that acts from the
nearest abstract state (:meth:`PRAE.plan`). The paper's baselines are options of the same class: ``n_negatives=0``
(no contrastive term) and ``objective="reconstruction"`` (an autoencoder: a decoder reconstructs ``o`` and ``o'``
in place of the contrastive term).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, Literal

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file
from stable_baselines3.common.utils import configure_logger, get_device, set_random_seed

from sb3_equivariant.prae.dataset import TransitionDataset
from sb3_equivariant.prae.networks import ActionModel, CnnDecoder, CnnEncoder, MlpDecoder, MlpEncoder, RewardModel
from sb3_equivariant.prae.planning import PlannedPolicy, soft_transitions, value_iteration

Objective = Literal["contrastive", "reconstruction"]
#: Latent states closer than this (half squared distance) to a goal are dropped: the goal stands for them.
_DUPLICATE_DISTANCE = 1e-8


class PRAE:
    """
    Plannable approximate MDP homomorphism (PRAE) and its baselines.

    :param observation_space: a ``Box``: a channel-first image (uint8 0..255, encoded by a CNN) or a vector (MLP).
    :param action_space: ``Discrete``.
    :param latent_dim: size of the latent state (paper: 50).
    :param objective: ``"contrastive"`` (PRAE) or ``"reconstruction"`` (the autoencoder baseline).
    :param n_negatives: negatives per transition, drawn from its episode (paper: 5; 0 drops the contrastive term,
        the paper's ablation). Ignored by ``objective="reconstruction"``.
    :param hinge: margin of the hinge on negatives (paper: 1).
    :param learning_rate: Adam learning rate (paper: 1e-3).
    :param batch_size: minibatch size (paper: 1024).
    :param n_abstract_states: how many training observations are encoded as abstract states (paper: 1024).
    :param transition_temperature: softmax temperature of the abstract transitions; ``None`` picks the paper's 0.01
        for images and 0.1 for vectors.
    :param gamma: discount of value iteration (paper: 0.9).
    :param n_sweeps: value-iteration sweeps (paper: 500).
    :param seed: seeds torch, the minibatches, the negatives and the abstract-state sample.
    :param device: torch device (``"auto"`` as SB3).
    :param verbose: 0 silent, 1 logs per-epoch losses to stdout (SB3's logger).
    :param tensorboard_log: folder for tensorboard logs (optional, as SB3).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        latent_dim: int = 50,
        objective: Objective = "contrastive",
        n_negatives: int = 5,
        hinge: float = 1.0,
        learning_rate: float = 1e-3,
        batch_size: int = 1024,
        n_abstract_states: int = 1024,
        transition_temperature: float | None = None,
        gamma: float = 0.9,
        n_sweeps: int = 500,
        seed: int | None = None,
        device: th.device | str = "auto",
        verbose: int = 0,
        tensorboard_log: str | None = None,
    ):
        if not isinstance(observation_space, spaces.Box) or observation_space.shape is None:
            raise ValueError(f"PRAE needs a Box observation space (image or vector), got {observation_space}")
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"PRAE needs a Discrete action space, got {action_space}")
        if objective not in ("contrastive", "reconstruction"):
            raise ValueError(f"objective must be 'contrastive' or 'reconstruction', got {objective!r}")
        if n_negatives < 0:
            raise ValueError(f"n_negatives must be >= 0, got {n_negatives}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.latent_dim = latent_dim
        self.objective = objective
        self.n_negatives = n_negatives if objective == "contrastive" else 0
        self.hinge = hinge
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_abstract_states = n_abstract_states
        self.is_image = is_image_space(observation_space, check_channels=False)
        self.transition_temperature = (
            (0.01 if self.is_image else 0.1) if transition_temperature is None else transition_temperature
        )
        self.gamma = gamma
        self.n_sweeps = n_sweeps
        self.seed = seed
        self.device = get_device(device)
        self.verbose = verbose
        self.tensorboard_log = tensorboard_log
        self._logger: Logger | None = None
        if seed is not None:
            set_random_seed(seed)
        self.rng = np.random.default_rng(seed)

        shape = tuple(observation_space.shape)
        n_flat = int(np.prod(shape))
        modules: dict[str, th.nn.Module] = {
            "encoder": CnnEncoder(shape, latent_dim) if self.is_image else MlpEncoder(n_flat, latent_dim),  # type: ignore[arg-type]
            "action_model": ActionModel(latent_dim, int(action_space.n)),
            "reward_model": RewardModel(latent_dim),
        }
        if objective == "reconstruction":
            modules["decoder"] = CnnDecoder(latent_dim, shape) if self.is_image else MlpDecoder(latent_dim, n_flat)  # type: ignore[arg-type]
        self.networks = th.nn.ModuleDict(modules).to(self.device)
        self.optimizer = th.optim.Adam(self.networks.parameters(), lr=learning_rate)
        #: Latent states of a sample of training observations, set by :meth:`fit`.
        self.abstract_states: th.Tensor | None = None

    # Construction arguments saved with the model (everything but the spaces, saved apart, and the run-time ones).
    _SAVED = (
        "latent_dim",
        "objective",
        "n_negatives",
        "hinge",
        "learning_rate",
        "batch_size",
        "n_abstract_states",
        "transition_temperature",
        "gamma",
        "n_sweeps",
        "seed",
    )

    @property
    def logger(self) -> Logger:
        """SB3's logger (configured from ``verbose`` / ``tensorboard_log`` on first use, or by :meth:`set_logger`)."""
        if self._logger is None:
            self._logger = configure_logger(self.verbose, self.tensorboard_log, "PRAE")
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Use this SB3 logger (e.g. ``stable_baselines3.common.logger.configure(folder, ["csv"])``)."""
        self._logger = logger

    def to_tensor(self, observations: np.ndarray) -> th.Tensor:
        """Observations as the networks' float input (images scaled to [0, 1] as SB3 does)."""
        obs = preprocess_obs(th.as_tensor(np.asarray(observations), device=self.device), self.observation_space)
        assert isinstance(obs, th.Tensor)
        return obs.float()

    def encode(self, observations: np.ndarray) -> th.Tensor:
        """
        Latent states of a batch of observations (no gradient).

        :param observations: ``(batch, *observation_shape)``.
        """
        self._check_shape(observations, "observations", batched=True)
        with th.no_grad():
            return self.networks["encoder"](self.to_tensor(observations))

    def loss(
        self,
        observations: th.Tensor,
        actions: th.Tensor,
        rewards: th.Tensor,
        next_observations: th.Tensor,
        negatives: th.Tensor | None = None,
    ) -> dict[str, th.Tensor]:
        """
        The training loss on preprocessed tensors, averaged over the batch.

        :param observations: ``(batch, *observation_shape)``.
        :param actions: ``(batch,)``.
        :param rewards: ``(batch,)``.
        :param next_observations: ``(batch, *observation_shape)``.
        :param negatives: ``(batch, n_negatives, *observation_shape)`` (contrastive objective with negatives only).
        :return: ``{"loss", "transition", "reward"}`` and ``"contrastive"`` or ``"reconstruction"``.
        """
        encoder = self.networks["encoder"]
        z, z_next = encoder(observations), encoder(next_observations)
        z_neg = None
        if negatives is not None and negatives.shape[1] > 0 and self.objective == "contrastive":
            z_neg = encoder(negatives.flatten(0, 1)).view(*negatives.shape[:2], -1)
        error = None
        if self.objective == "reconstruction":
            error = self._reconstruction_error(z, observations) + self._reconstruction_error(z_next, next_observations)
        return self._terms(z, actions, rewards, z_next, z_neg, error)

    def _terms(
        self,
        z: th.Tensor,
        actions: th.Tensor,
        rewards: th.Tensor,
        z_next: th.Tensor,
        z_neg: th.Tensor | None,
        reconstruction_error: th.Tensor | None,
    ) -> dict[str, th.Tensor]:
        """Loss terms from latent states (``z_neg``: ``(batch, n_negatives, latent_dim)``)."""
        z_pred = self.networks["action_model"](z, actions)
        terms = {
            "transition": 0.5 * (z_next - z_pred).pow(2).sum(dim=1).mean(),
            "reward": 0.5 * (rewards - self.networks["reward_model"](z_pred)).pow(2).mean(),
        }
        if reconstruction_error is not None:
            terms["reconstruction"] = 0.5 * reconstruction_error.mean()
        if z_neg is not None:
            distance = 0.5 * (z_next[:, None] - z_neg).pow(2).sum(dim=2)
            terms["contrastive"] = th.clamp(self.hinge - distance, min=0.0).sum(dim=1).mean()
        terms["loss"] = th.stack(list(terms.values())).sum()
        return terms

    def _reconstruction_error(self, z: th.Tensor, observations: th.Tensor) -> th.Tensor:
        """Squared reconstruction error of each observation, ``(batch,)``."""
        return (self.networks["decoder"](z).flatten(1) - observations.flatten(1)).pow(2).sum(dim=1)

    def fit(
        self,
        dataset: TransitionDataset,
        epochs: int = 100,
        validation_data: TransitionDataset | None = None,
        validation_fraction: float = 1 / 6,
        progress_bar: bool = False,
    ) -> PRAE:
        """
        Train on logged transitions, log train and validation losses each epoch (SB3's logger), then encode a sample of
        the training observations as the abstract states used by :meth:`plan`.

        :param dataset: transitions from :func:`~sb3_equivariant.prae.collect_dataset`.
        :param epochs: passes over the data (paper: 100).
        :param validation_data: held-out transitions; ``None`` holds out the last ``validation_fraction`` of the
            episodes of ``dataset`` (the paper: 200 validation episodes for 1000 training ones).
        :param validation_fraction: used when ``validation_data`` is ``None``.
        :param progress_bar: show a tqdm/rich progress bar over minibatches (as SB3's ``learn(progress_bar=True)``).
        :return: ``self``.
        """
        self._check_dataset(dataset, "dataset")
        if validation_data is None:
            dataset, validation_data = dataset.split(validation_fraction)
        else:
            self._check_dataset(validation_data, "validation_data")
        train_index, valid_index = _index_dataset(dataset), _index_dataset(validation_data)
        n_batches = int(np.ceil(len(dataset) / self.batch_size))
        bar = _progress_bar(epochs * n_batches) if progress_bar else None
        start = time.time()
        try:
            for epoch in range(1, epochs + 1):
                self.networks.train()
                sums: dict[str, float] = {}
                for index in np.array_split(self.rng.permutation(len(dataset)), n_batches):
                    terms = self._batch_loss(dataset, train_index, index)
                    self.optimizer.zero_grad()
                    terms["loss"].backward()
                    self.optimizer.step()
                    for key, term in terms.items():
                        sums[key] = sums.get(key, 0.0) + term.item() * len(index)
                    if bar is not None:
                        bar.update(1)
                for key, value in sums.items():
                    self.logger.record(f"train/{key}_loss" if key != "loss" else "train/loss", value / len(dataset))
                self.logger.record("validation/loss", self._mean_loss(validation_data, valid_index))
                self.logger.record("time/epochs", epoch)
                self.logger.record("time/time_elapsed", int(time.time() - start), exclude="tensorboard")
                self.logger.dump(step=epoch)
        finally:
            if bar is not None:
                bar.close()
        self._set_abstract_states(dataset)
        return self

    def evaluate_loss(self, dataset: TransitionDataset) -> float:
        """Mean loss over ``dataset`` (no gradient; negatives drawn with the model's generator)."""
        self._check_dataset(dataset, "dataset")
        return self._mean_loss(dataset, _index_dataset(dataset))

    def _mean_loss(self, dataset: TransitionDataset, indexed: tuple[np.ndarray, ...]) -> float:
        self.networks.eval()
        total = 0.0
        with th.no_grad():
            for index in np.array_split(np.arange(len(dataset)), int(np.ceil(len(dataset) / self.batch_size))):
                total += self._batch_loss(dataset, indexed, index)["loss"].item() * len(index)
        return total / len(dataset)

    def plan(self, goal_observations: np.ndarray, seed: int | None = None) -> PlannedPolicy:
        """
        Solve the abstract MDP for a goal once and return the lifted greedy policy.

        The abstract states are the encoded training sample plus the encoded goal(s), which alone give reward 1;
        transitions are ``softmax(-0.5 |T(z_i, a) - z_j|^2 / temperature)``; value iteration runs ``n_sweeps`` sweeps.

        :param goal_observations: one goal observation or a batch of them (each is a rewarding abstract state).
        :param seed: seeds the policy's tie-breaking.
        :return: a policy with SB3's ``predict``.
        """
        if self.abstract_states is None:
            raise RuntimeError("the model has no abstract states yet: call fit() (or load a fitted model) before plan()")
        goals = np.asarray(goal_observations)
        if goals.shape == self.observation_space.shape:
            goals = goals[None]
        self._check_shape(goals, "goal_observations", batched=True)
        assert isinstance(self.observation_space, spaces.Box)
        if not np.all((goals >= self.observation_space.low) & (goals <= self.observation_space.high)):
            raise ValueError(
                f"goal observation outside the observation space {self.observation_space}: give a goal the env can "
                "produce (e.g. Room.goal_observation())"
            )
        self.networks.eval()
        with th.no_grad():
            z_goal = self.encode(goals)
            distance = 0.5 * th.cdist(self.abstract_states, z_goal).pow(2)
            keep = (distance > _DUPLICATE_DISTANCE).all(dim=1)
            states = th.cat([self.abstract_states[keep], z_goal])
            rewards = th.zeros(len(states), device=self.device)
            rewards[-len(z_goal) :] = 1.0
            actions = th.arange(int(self.action_space.n), device=self.device)  # type: ignore[attr-defined]
            predicted = th.stack([self.networks["action_model"](states, a.expand(len(states))) for a in actions])
            transitions = soft_transitions(predicted, states, self.transition_temperature)
            q_values = value_iteration(transitions, rewards, self.gamma, self.n_sweeps)
        return PlannedPolicy(self.encode, states, q_values, self.observation_space, seed=seed)

    def save(self, path: str | os.PathLike) -> None:
        """Save hyperparameters, spaces, weights and abstract states to a zip file (SB3's format)."""
        data = {name: getattr(self, name) for name in self._SAVED}
        data.update(observation_space=self.observation_space, action_space=self.action_space)
        params = {"networks": self.networks.state_dict(), "optimizer": self.optimizer.state_dict()}
        variables = {} if self.abstract_states is None else {"abstract_states": self.abstract_states}
        save_to_zip_file(str(path), data=data, params=params, pytorch_variables=variables)

    @classmethod
    def load(cls, path: str | os.PathLike, device: th.device | str = "auto", **kwargs: Any) -> PRAE:
        """
        Load a model written by :meth:`save` (weights loaded strictly).

        :param path: the zip file.
        :param device: torch device.
        :param kwargs: run-time options (``verbose``, ``tensorboard_log``).
        """
        data, params, variables = load_from_zip_file(str(path), device=device)
        if data is None or params is None or "networks" not in params:
            raise ValueError(f"{path} is not a saved PRAE model")
        model = cls(**data, device=device, **kwargs)
        model.networks.load_state_dict(params["networks"], strict=True)  # type: ignore[arg-type]
        model.optimizer.load_state_dict(params["optimizer"])  # type: ignore[arg-type]
        if variables and "abstract_states" in variables:
            model.abstract_states = variables["abstract_states"].to(model.device)
        return model

    def _batch_loss(self, dataset: TransitionDataset, indexed: tuple[np.ndarray, ...], index: np.ndarray) -> dict[str, th.Tensor]:
        """
        :meth:`loss` on the transitions ``index``, encoding each distinct observation of the batch once (observations
        repeat often in small MDPs such as the Room); the loss and its gradient are those of encoding every copy.
        """
        canonical, first, length = indexed
        obs_index = dataset.state_index[index]
        wanted = [obs_index, obs_index + 1]
        if self.n_negatives:
            draws = first[index, None] + (self.rng.random((len(index), self.n_negatives)) * length[index, None]).astype(int)
            wanted.append(dataset.state_index[draws].reshape(-1))
        unique, inverse = np.unique(canonical[np.concatenate(wanted)], return_inverse=True)
        observations = self.to_tensor(dataset.states[unique])
        z_all = self.networks["encoder"](observations)
        inverse_t = th.as_tensor(inverse, device=self.device)
        n = len(index)
        z, z_next = z_all[inverse_t[:n]], z_all[inverse_t[n : 2 * n]]
        z_neg = z_all[inverse_t[2 * n :]].view(n, self.n_negatives, -1) if self.n_negatives else None
        error = None
        if self.objective == "reconstruction":
            per_state = self._reconstruction_error(z_all, observations)
            error = per_state[inverse_t[:n]] + per_state[inverse_t[n : 2 * n]]
        actions = th.as_tensor(dataset.actions[index], device=self.device)
        rewards = th.as_tensor(dataset.rewards[index], dtype=th.float32, device=self.device)
        return self._terms(z, actions, rewards, z_next, z_neg, error)

    def _set_abstract_states(self, dataset: TransitionDataset) -> None:
        sample = dataset.states[dataset.state_index[self.rng.permutation(len(dataset))[: self.n_abstract_states]]]
        # Repeated observations would be repeated abstract states.
        sample = np.stack(list({row.tobytes(): row for row in sample}.values()))
        self.networks.eval()
        self.abstract_states = self.encode(sample)

    def _check_dataset(self, dataset: TransitionDataset, name: str) -> None:
        if len(dataset) == 0:
            raise ValueError(f"{name} is empty: collect at least one episode with collect_dataset()")
        self._check_shape(dataset.states, f"{name}.states", batched=True)
        n_actions = int(self.action_space.n)  # type: ignore[attr-defined]
        if dataset.actions.min() < 0 or dataset.actions.max() >= n_actions:
            raise ValueError(f"{name} has actions outside 0..{n_actions - 1} of {self.action_space}")

    def _check_shape(self, array: np.ndarray, name: str, batched: bool) -> None:
        shape = tuple(np.shape(array)[1:] if batched else np.shape(array))
        if shape != self.observation_space.shape:
            raise ValueError(
                f"{name} have shape {shape} per observation but the observation space has {self.observation_space.shape}: "
                "collect the data from the env the model was built for"
            )


def _index_dataset(dataset: TransitionDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    For every stored state, the index of the first stored state with the same content; for every transition, the
    first transition of its episode and the episode's length (where negatives are drawn).
    """
    seen: dict[bytes, int] = {}
    canonical = np.array([seen.setdefault(row.tobytes(), i) for i, row in enumerate(dataset.states)], dtype=np.int64)
    return (canonical, *dataset.episode_bounds())


def _progress_bar(total: int) -> Any:
    """SB3's progress bar (tqdm with rich), with SB3's message when tqdm or rich are missing."""
    try:
        from tqdm import TqdmExperimentalWarning
        from tqdm.rich import tqdm
    except ImportError as error:
        raise ImportError("progress_bar=True needs tqdm and rich: pip install tqdm rich (or stable-baselines3[extra])") from error
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
        return tqdm(total=total)
