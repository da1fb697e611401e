import csv
import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

from sb3_equivariant.envs.room import ROOM_ID
from sb3_equivariant.prae import (
    CARTPOLE_ID,
    PRAE,
    TransitionDataset,
    cartpole_goal,
    collect_dataset,
    run_episodes,
    soft_transitions,
    value_iteration,
)

SIZE = 4  # the hand-built grid is SIZE x SIZE
SPACING = 2.0  # distance between neighboring cells, in observation and latent space
GRID_MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])  # up, right, down, left


class Grid(gym.Env):
    """A deterministic SIZE x SIZE grid; the observation is SPACING * (row, col); the episode ends at the goal."""

    observation_space = spaces.Box(0.0, SPACING * (SIZE - 1), (2,), np.float32)
    action_space = spaces.Discrete(4)

    def __init__(self, goal: tuple[int, int] = (0, 0), start: tuple[int, int] | None = None):
        self.goal, self.start = np.array(goal), start
        self.cell = np.zeros(2, dtype=np.int64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = np.array(self.start) if self.start is not None else self.np_random.integers(0, SIZE, 2)
        return self._obs(), {}

    def step(self, action):
        self.cell = np.clip(self.cell + GRID_MOVES[int(action)], 0, SIZE - 1)
        at_goal = bool(np.array_equal(self.cell, self.goal))
        return self._obs(), -0.1, at_goal, False, {}

    def _obs(self) -> np.ndarray:
        return (SPACING * self.cell).astype(np.float32)


def _hand_built_model() -> PRAE:
    """A PRAE whose networks are an exact homomorphism of Grid away from its walls: Z = identity, z' = z + move."""
    model = PRAE(Grid.observation_space, Grid.action_space, latent_dim=2, seed=0)
    with th.no_grad():
        for param in model.networks.parameters():
            param.zero_()
        for layer in (0, 2, 4):  # identity through the encoder's ReLUs (coordinates are non-negative)
            model.networks["encoder"].net[layer].weight[[0, 1], [0, 1]] = 1.0
        hidden, out = model.networks["action_model"].net[0], model.networks["action_model"].net[2]
        for a, move in enumerate(GRID_MOVES):
            hidden.weight[a, 2 + a] = 1.0  # hidden unit a is the one-hot of action a
            out.weight[:, a] = th.as_tensor(SPACING * move, dtype=th.float32)
        model.networks["reward_model"].net[2].bias.fill_(-0.1)
    cells = np.array(list(itertools.product(range(SIZE), range(SIZE))), dtype=np.float32) * SPACING
    model.abstract_states = model.encode(cells)
    return model


def _interior_transitions(n_negatives: int = 5, seed: int = 0) -> tuple[th.Tensor, ...]:
    """Every move that stays inside the grid, with negatives drawn among the other cells."""
    rng = np.random.default_rng(seed)
    cells = list(itertools.product(range(SIZE), range(SIZE)))
    obs, actions, next_obs, negatives = [], [], [], []
    for cell, (a, move) in itertools.product(cells, enumerate(GRID_MOVES)):
        nxt = np.array(cell) + move
        if np.all((nxt >= 0) & (nxt < SIZE)):
            others = [c for c in cells if c != tuple(nxt)]
            obs.append(cell)
            actions.append(a)
            next_obs.append(nxt)
            negatives.append([others[i] for i in rng.choice(len(others), n_negatives)])
    as_obs = lambda x: th.as_tensor(SPACING * np.array(x), dtype=th.float32)  # noqa: E731
    rewards = th.full((len(actions),), -0.1)
    return as_obs(obs), th.as_tensor(actions), rewards, as_obs(next_obs), as_obs(negatives)


def test_loss_is_zero_on_an_exact_homomorphism() -> None:
    terms = _hand_built_model().loss(*_interior_transitions())
    assert set(terms) == {"loss", "transition", "reward", "contrastive"}
    for value in terms.values():
        assert value.item() == pytest.approx(0.0, abs=1e-10)


def test_loss_is_positive_when_transitions_are_shuffled() -> None:
    obs, actions, rewards, next_obs, negatives = _interior_transitions()
    shuffled = next_obs[th.as_tensor(np.random.default_rng(0).permutation(len(next_obs)))]
    terms = _hand_built_model().loss(obs, actions, rewards, shuffled, negatives)
    assert terms["transition"].item() > 1.0


def test_contrastive_term_penalises_collapse() -> None:
    model = _hand_built_model()
    obs, actions, rewards, next_obs, negatives = _interior_transitions()
    with th.no_grad():
        model.networks["encoder"].net[4].weight.zero_()  # every observation encodes to 0: transitions are "exact"
        model.networks["action_model"].net[2].weight.zero_()
    terms = model.loss(obs, actions, rewards, next_obs, negatives)
    assert terms["transition"].item() == pytest.approx(0.0, abs=1e-10)
    assert terms["contrastive"].item() == pytest.approx(5 * model.hinge)  # every negative inside the hinge


def test_value_iteration_on_a_chain() -> None:
    # Chain 0 - 1 - 2 - 3 - 4 with actions left / right (deterministic) and the reward in state 4.
    n = 5
    left, right = np.zeros((n, n)), np.zeros((n, n))
    for s in range(n):
        left[s, max(s - 1, 0)] = 1.0
        right[s, min(s + 1, n - 1)] = 1.0
    transitions = th.as_tensor(np.stack([left, right]), dtype=th.float32)
    rewards = th.zeros(n)
    rewards[-1] = 1.0
    q = value_iteration(transitions, rewards, gamma=0.9, n_sweeps=200)
    assert q.argmax(dim=1)[:-1].tolist() == [1] * (n - 1)
    v = q.max(dim=1).values
    expected = [0.9 ** (n - 1 - s) / (1 - 0.9) for s in range(n)]  # steps to the goal, then reward forever
    np.testing.assert_allclose(v.numpy(), expected, rtol=1e-4)


def test_soft_transitions_pick_the_nearest_state() -> None:
    states = th.tensor([[0.0], [1.0], [5.0]])
    predicted = th.tensor([[[0.9], [4.0], [5.2]]])
    probs = soft_transitions(predicted, states, temperature=0.01)
    np.testing.assert_allclose(probs.sum(dim=-1).numpy(), 1.0, rtol=1e-6)
    assert probs.argmax(dim=-1).tolist() == [[1, 2, 2]]
    with pytest.raises(ValueError, match="temperature"):
        soft_transitions(predicted, states, temperature=0.0)


@pytest.mark.parametrize("goal", [(0, 0), (3, 1), (2, 2)])
def test_planned_policy_takes_shortest_paths(goal: tuple[int, int]) -> None:
    model = _hand_built_model()
    policy = model.plan(SPACING * np.array(goal, dtype=np.float32), seed=0)
    for start in itertools.product(range(SIZE), range(SIZE)):
        if start == goal:
            continue
        env = Grid(goal, start)
        obs, _ = env.reset()
        for steps in itertools.count(1):
            action, _ = policy.predict(obs, deterministic=False)
            obs, _, done, _, _ = env.step(action)
            if done or steps > 2 * SIZE:
                break
        assert steps == abs(start[0] - goal[0]) + abs(start[1] - goal[1])
    # SB3's evaluate_policy accepts the policy (batched observations from a VecEnv).
    env = Monitor(Grid(goal, (3, 3)))
    _, lengths = evaluate_policy(policy, env, 3, return_episode_rewards=True)
    assert len(lengths) == 3 and max(lengths) <= 2 * (SIZE - 1)
    if goal != (3, 3):
        lengths, successes = run_episodes(policy, Grid(goal, (3, 3)), 2, seed=0)
        np.testing.assert_array_equal(lengths, [6 - goal[0] - goal[1]] * 2)
        assert np.isnan(successes).all() and len(successes) == 2  # Grid reports no "is_success"


@pytest.fixture(scope="module")
def cartpole_data() -> TransitionDataset:
    return collect_dataset(CARTPOLE_ID, 12, seed=0)


def test_collect_dataset_and_npz_round_trip(cartpole_data: TransitionDataset, tmp_path) -> None:
    data = cartpole_data
    assert data.n_episodes == 12 and len(data.states) == len(data) + 12
    np.testing.assert_array_equal(
        data.next_observations[:-1][data.episodes[:-1] == data.episodes[1:]],
        data.observations[1:][data.episodes[:-1] == data.episodes[1:]],
    )
    again = collect_dataset(CARTPOLE_ID, 12, seed=0)
    np.testing.assert_array_equal(again.actions, data.actions)  # seeded
    data.save(tmp_path / "data.npz")
    loaded = TransitionDataset.load(tmp_path / "data.npz")
    for name in ("states", "actions", "rewards", "episodes", "state_index"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(data, name))
    train, valid = data.split(1 / 6)
    assert train.n_episodes == 10 and valid.n_episodes == 2 and len(train) + len(valid) == len(data)
    np.testing.assert_array_equal(valid.next_observations, data.next_observations[len(train) :])


def test_episode_bounds(cartpole_data: TransitionDataset) -> None:
    first, length = cartpole_data.episode_bounds()
    for i in range(len(cartpole_data)):
        same = np.flatnonzero(cartpole_data.episodes == cartpole_data.episodes[i])
        assert first[i] == same[0] and length[i] == len(same)


@pytest.mark.parametrize(
    "kwargs, extra_term",
    [({}, "contrastive"), ({"n_negatives": 0}, None), ({"objective": "reconstruction"}, "reconstruction")],
)
def test_fit_logs_and_save_load_round_trip(
    cartpole_data: TransitionDataset, kwargs: dict, extra_term: str | None, tmp_path
) -> None:
    env = gym.make(CARTPOLE_ID)
    model = PRAE(env.observation_space, env.action_space, batch_size=64, seed=0, **kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.fit(cartpole_data, epochs=2, progress_bar=True)
    with open(tmp_path / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 and all(float(row["validation/loss"]) > 0 for row in rows)
    expected = {"train/loss", "train/transition_loss", "train/reward_loss"}
    if extra_term:
        expected.add(f"train/{extra_term}_loss")
    assert {key for key in rows[0] if key.startswith("train/")} == expected

    model.save(tmp_path / "prae.zip")
    loaded = PRAE.load(tmp_path / "prae.zip")
    assert loaded.objective == model.objective and loaded.n_negatives == model.n_negatives
    for (name, a), (_, b) in zip(model.networks.state_dict().items(), loaded.networks.state_dict().items()):
        assert th.equal(a, b), name
    assert model.abstract_states is not None and loaded.abstract_states is not None
    assert th.equal(model.abstract_states, loaded.abstract_states)
    obs = cartpole_data.observations[:50]
    q, q_loaded = model.plan(cartpole_goal()).q_values, loaded.plan(cartpole_goal()).q_values
    th.testing.assert_close(q, q_loaded, rtol=0, atol=0)
    np.testing.assert_array_equal(model.plan(cartpole_goal()).predict(obs)[0], loaded.plan(cartpole_goal()).predict(obs)[0])


def test_bad_input_gets_a_clear_error(cartpole_data: TransitionDataset) -> None:
    env = gym.make(CARTPOLE_ID)
    model = PRAE(env.observation_space, env.action_space, batch_size=64, seed=0)
    with pytest.raises(ValueError, match="n_episodes must be at least 1"):
        collect_dataset(CARTPOLE_ID, 0)
    empty = TransitionDataset(np.zeros((0, 4), np.float32), *(np.zeros(0, np.int64) for _ in range(4)))
    with pytest.raises(ValueError, match="empty"):
        model.fit(empty)
    room_data = collect_dataset(ROOM_ID, 1, seed=0)
    with pytest.raises(ValueError, match=r"shape \(3, 48, 48\) per observation .* \(4,\)"):
        model.fit(room_data)
    with pytest.raises(RuntimeError, match="call fit"):
        model.plan(cartpole_goal())
    model.fit(cartpole_data, epochs=1)
    with pytest.raises(ValueError, match="outside the observation space"):
        model.plan(np.array([10.0, 0.0, 0.0, 0.0], dtype=np.float32))
    with pytest.raises(ValueError, match="goal_observations have shape"):
        model.plan(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="does not match the observation space"):
        model.plan(cartpole_goal()).predict(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="Discrete action space"):
        PRAE(env.observation_space, spaces.Box(-1, 1, (1,)))


def test_benchmark_refuses_the_room_oracle_on_cartpole(tmp_path) -> None:
    """benchmarks/prae.py: a clear error instead of an AssertionError after the first seed's models are fitted."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "prae.py"
    out = subprocess.run(
        [sys.executable, str(script), "--task", "cartpole", "--methods", "shortest_path", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "CartPole has none" in out.stderr
    assert not list(tmp_path.iterdir())
