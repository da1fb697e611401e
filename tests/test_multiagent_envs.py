import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_equivariant
from sb3_equivariant import (
    AgentAction,
    DictAction,
    Symmetry,
    SymmetryError,
    check_symmetry,
    get_symmetry,
    make_symmetric_env,
    make_symmetric_vec_env,
    symmetry_for,
)
from sb3_equivariant.envs.gridworld import ROTATE_ACTION
from sb3_equivariant.group import cyclic_group, flip_group
from sb3_equivariant.multiagent import TRAFFIC_ID, WILDLIFE_ID, TrafficLightsEnv, WildlifeEnv, traffic_symmetry, wildlife_symmetry
from sb3_equivariant.multiagent.traffic import ENTRANCE, ENTRANCE_JUNCTION, LIGHT_PERM, ROUTES, VERTICAL
from sb3_equivariant.representation import (
    ImageAction,
    RepresentationError,
    SpatialAction,
    SpatialOp,
    permutation,
    rotation_action,
    signed_permutation,
    trivial,
)

pytest.importorskip("pettingzoo")
from pettingzoo.test import parallel_api_test

from sb3_equivariant.multiagent import traffic_parallel_env, wildlife_parallel_env

REST, UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3, 4


def _wildlife(**kwargs: object) -> WildlifeEnv:
    env = WildlifeEnv(**kwargs)  # type: ignore[arg-type]
    env.reset(seed=0)
    return env


def test_registered_with_sb3_equivariant_import() -> None:
    assert WILDLIFE_ID in gym.registry and WILDLIFE_ID in sb3_equivariant.envs.registered_envs()
    env = gym.make(WILDLIFE_ID, n_agents=4, size=7)
    assert isinstance(env.unwrapped, WildlifeEnv) and env.unwrapped.n_agents == 4
    sym = get_symmetry(env, required=True)
    assert sym.name == "Wildlife-C4" and sym.exact and len(sym) == 4


def test_spaces_and_observation() -> None:
    env = _wildlife()
    obs, _ = env.reset(seed=3)
    assert env.action_space == gym.spaces.MultiDiscrete([5, 5, 5])
    assert obs["view"].shape == (3, 1, 15, 15) and obs["position"].shape == (3, 2)
    assert env.observation_space.contains(obs)
    half = 2
    for i in range(3):
        cells = obs["view"][i, 0].reshape(5, 3, 5, 3).max(axis=(1, 3)) > 0
        np.testing.assert_array_equal(obs["view"][i, 0, 6:9, 6:9], [[1, 0, 1], [0, 1, 0], [1, 0, 1]])  # self: an "x"
        prey = (env.prey - env.agents[i] + half) % 5
        assert cells[prey[0], prey[1]]
        np.testing.assert_array_equal(obs["position"][i], env.agents[i] - half)


def test_official_checkers() -> None:
    gym_check_env(WildlifeEnv(), skip_render_check=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(WildlifeEnv())
    # SB3 only notes that (agents, ...) boxes need a custom policy, which the message-passing policies are.
    assert all("unconventional shape" in str(w.message) for w in caught)
    parallel_api_test(wildlife_parallel_env(n_agents=3, size=5), num_cycles=200)


def test_parallel_view_matches_the_joint_env() -> None:
    par = wildlife_parallel_env(prey_move_prob=0.0)
    joint = WildlifeEnv(prey_move_prob=0.0)
    obs, _ = par.reset(seed=1)
    jobs, _ = joint.reset(seed=1)
    assert par.agents == ["drone_0", "drone_1", "drone_2"]
    for t in range(5):
        for i, agent in enumerate(par.agents):
            np.testing.assert_array_equal(obs[agent]["view"], jobs["view"][i])
            np.testing.assert_array_equal(obs[agent]["position"], jobs["position"][i])
        actions = {agent: (t + i) % 5 for i, agent in enumerate(par.agents)}
        obs, rewards, terms, truncs, _ = par.step(actions)
        jobs, reward, term, trunc, _ = joint.step(np.array(list(actions.values())))
        assert set(rewards.values()) == {reward} and set(terms.values()) == {term} and set(truncs.values()) == {trunc}
    with pytest.raises(ValueError, match="no action given"):
        par.step({"drone_0": 0})


def test_collisions_send_drones_back() -> None:
    env = _wildlife(prey_move_prob=0.0)
    env.set_state(np.array([2, 1, 2, 3, 0, 0, 4, 4]))  # drones 0 and 1 both move into (2, 2)
    env.step(np.array([RIGHT, LEFT, REST]))
    np.testing.assert_array_equal(env.agents, [[2, 1], [2, 3], [0, 0]])
    # a drone sent back blocks the one that moved into its old cell
    env.set_state(np.array([2, 1, 2, 3, 1, 1, 4, 4]))
    env.step(np.array([RIGHT, LEFT, DOWN]))  # drone 2 moves into drone 0's old cell
    np.testing.assert_array_equal(env.agents, [[2, 1], [2, 3], [1, 1]])
    assert len({tuple(a) for a in env.agents}) == 3


def test_capture_reward() -> None:
    env = _wildlife(prey_move_prob=0.0)
    env.set_state(np.array([2, 1, 1, 2, 4, 4, 2, 2]))  # prey at (2, 2); drone 0 left of it, drone 1 above it
    _, reward, terminated, truncated, info = env.step(np.array([RIGHT, REST, REST]))  # 0 lands on it, 1 is adjacent
    assert terminated and not truncated and info["captured"]
    assert reward == pytest.approx(-0.05 + 2)
    # alone on the prey: no capture
    env.set_state(np.array([2, 1, 0, 0, 4, 4, 2, 2]))
    _, reward, terminated, _, _ = env.step(np.array([RIGHT, REST, REST]))
    assert not terminated and reward == pytest.approx(-0.05)
    # adjacency wraps around the torus: drone 1 at (2, 4) is next to the prey at (2, 0)
    env.set_state(np.array([2, 1, 2, 4, 0, 2, 2, 0]))
    _, reward, terminated, _, _ = env.step(np.array([LEFT, REST, REST]))
    assert terminated and reward == pytest.approx(1.95)


def test_time_limit() -> None:
    env = _wildlife(max_steps=3, prey_move_prob=0.0)
    env.set_state(np.array([0, 0, 0, 2, 0, 4, 3, 3]))
    results = [env.step(np.array([REST, REST, REST]))[2:4] for _ in range(3)]
    assert results == [(False, False), (False, False), (False, True)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_agents=1), "n_agents"),
        (dict(size=4), "odd"),
        (dict(n_agents=9, size=3), "do not fit"),
        (dict(prey_move_prob=1.5), "prey_move_prob"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WildlifeEnv(**kwargs)


def test_set_state_refuses_overlapping_drones() -> None:
    with pytest.raises(ValueError, match="distinct cells"):
        _wildlife().set_state(np.array([1, 1, 1, 1, 0, 0, 3, 3]))


@pytest.mark.parametrize("deterministic", [True, False])
def test_symmetry_verified_against_dynamics(deterministic: bool) -> None:
    if deterministic:  # a still prey: every transition is compared pathwise
        report = check_symmetry(gym.make(WILDLIFE_ID, prey_move_prob=0.0), n_samples=16)
    else:  # the prey's random move: compared as distributions
        report = check_symmetry(gym.make(WILDLIFE_ID), n_samples=3)
        assert report["transition_distribution"].n_checked > 0
    assert report.passed, str(report)
    assert report.dynamics_verified and report["transition"].n_checked > 0


def _corrupt(name: str) -> Symmetry:
    sym = wildlife_symmetry()
    group = sym.group
    assert isinstance(sym.obs_action, DictAction)
    parts = dict(sym.obs_action.actions)
    if name == "moves_turn_the_wrong_way":
        return sym.replace(action_rep=permutation(group, {1: [0, 2, 3, 4, 1]}))
    if name == "positions_turn_the_wrong_way":
        parts["position"] = AgentAction(signed_permutation(group, {1: [1, 0]}, {1: [-1, 1]}), 3)
    elif name == "views_not_rotated":  # a wrong map that is still a group action
        still = ImageAction(SpatialAction(cyclic_group(4), [SpatialOp()] * 4), channels=1)
        parts["view"] = AgentAction(still, 3)
    return sym.replace(obs_action=DictAction(parts))


@pytest.mark.parametrize("name", ["moves_turn_the_wrong_way", "positions_turn_the_wrong_way", "views_not_rotated"])
def test_corrupted_maps_fail(name: str) -> None:
    report = check_symmetry(gym.make(WILDLIFE_ID, prey_move_prob=0.0), _corrupt(name), n_samples=3)
    assert not report.passed
    assert {c.name for c in report.failures} & {"transition", "obs_of_state"}


def test_transform_obs_dict_batched_numpy_and_torch() -> None:
    sym = wildlife_symmetry()
    env = _wildlife()
    batch = []
    for _ in range(4):
        obs, *_ = env.step(env.action_space.sample())
        batch.append(obs)
    stacked = {key: np.stack([o[key] for o in batch]) for key in batch[0]}
    for g in range(4):
        out = sym.transform_obs(stacked, g)
        out_t = sym.transform_obs({k: th.as_tensor(v) for k, v in stacked.items()}, g)
        for i, obs in enumerate(batch):
            single = sym.transform_obs(obs, g)
            for key in obs:
                np.testing.assert_array_equal(out[key][i], single[key])
                np.testing.assert_array_equal(out_t[key][i].numpy(), single[key])
        np.testing.assert_array_equal(
            out["view"][:, 1, 0], np.rot90(stacked["view"][:, 1, 0], g, axes=(-2, -1))
        )  # each drone's view turns, drones keep their slots
        rotated = stacked["position"]
        for _ in range(g):
            rotated = np.stack([-rotated[..., 1], rotated[..., 0]], axis=-1)
        np.testing.assert_array_equal(out["position"], rotated)


def test_transform_joint_actions() -> None:
    sym = wildlife_symmetry()
    actions = np.array([[0, 1, 2], [3, 4, 0]])
    np.testing.assert_array_equal(sym.transform_action(actions, 1), np.array(ROTATE_ACTION)[actions])
    np.testing.assert_array_equal(sym.transform_action(th.as_tensor(actions), 3).numpy(), sym.transform_action(actions, 3))


def test_agent_permutation_of_joint_actions_and_observations() -> None:
    """Symmetries that exchange agents' places (traffic lights at fixed crossings) permute the agent axis too."""
    group = flip_group()
    agents = permutation(group, {1: [2, 1, 0]})  # agents 0 and 2 swap places, 1 stays
    item = signed_permutation(group, None, {1: [-1, 1]})
    obs_action = AgentAction(item, 3, agents)
    x = np.arange(12.0).reshape(2, 3, 2)
    y = obs_action.transform(x, 1)
    np.testing.assert_array_equal(y[:, 0], x[:, 2] * [-1, 1])
    np.testing.assert_array_equal(y[:, 1], x[:, 1] * [-1, 1])
    np.testing.assert_array_equal(obs_action.transform(th.as_tensor(x), 1).numpy(), y)
    sym = Symmetry(obs_action, permutation(group, {1: [1, 0]}), agents=agents)
    np.testing.assert_array_equal(sym.transform_action(np.array([[0, 0, 1]]), 1), [[0, 1, 1]])
    sym.check_spaces(gym.spaces.Box(-1, 1, (3, 2)), gym.spaces.MultiDiscrete([2, 2, 2]))
    with pytest.raises(SymmetryError, match="2 agents act, but the agent permutation has dim 3"):
        sym.check_spaces(gym.spaces.Box(-1, 1, (3, 2)), gym.spaces.MultiDiscrete([2, 2]))
    with pytest.raises(SymmetryError, match="joint action of 3 agents"):
        sym.transform_action(1, 1)


def test_clear_errors_for_mismatched_structures() -> None:
    sym = wildlife_symmetry()
    with pytest.raises(SymmetryError, match="Dict observation is needed"):
        sym.transform_obs(np.zeros((3, 2)), 1)
    with pytest.raises(SymmetryError, match="keys"):
        sym.transform_obs({"view": np.zeros((3, 1, 15, 15))}, 1)
    with pytest.raises(SymmetryError, match=r"key 'position'.*3 agents"):
        sym.check_spaces(WildlifeEnv(n_agents=2).observation_space, WildlifeEnv().action_space)
    with pytest.raises(SymmetryError, match="MultiDiscrete"):
        sym.check_spaces(WildlifeEnv().observation_space, gym.spaces.MultiDiscrete([4, 4, 4]))
    with pytest.raises(RepresentationError, match="one group"):
        DictAction({"a": trivial(flip_group(), 2), "b": ImageAction(rotation_action(), channels=1)})
    with pytest.raises(RepresentationError, match="permutation representation of dim 3"):
        AgentAction(trivial(flip_group(), 2), 3, permutation(flip_group(), {1: [1, 0]}))


def test_make_symmetric_vec_env_and_subprocess() -> None:
    venv = make_symmetric_vec_env(WILDLIFE_ID, n_envs=2, env_kwargs=dict(n_agents=2))
    sym = get_symmetry(venv, required=True)
    obs = venv.reset()
    assert obs["view"].shape == (2, 2, 1, 15, 15)
    assert sym.transform_obs(obs, 1)["position"].shape == (2, 2, 2)
    # what SubprocVecEnv needs: the env and its symmetry pickle
    env = make_symmetric_env(WILDLIFE_ID)
    clone = pickle.loads(pickle.dumps(env))
    assert get_symmetry(clone, required=True).name == symmetry_for(WILDLIFE_ID).name


# ---------------------------------------------------------------------------------------------------------------------
# Traffic lights
# ---------------------------------------------------------------------------------------------------------------------


def test_traffic_official_checkers_and_registration() -> None:
    gym_check_env(TrafficLightsEnv(), skip_render_check=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(TrafficLightsEnv())
    assert all("unconventional shape" in str(w.message) for w in caught)
    parallel_api_test(traffic_parallel_env(), num_cycles=200)
    env = gym.make(TRAFFIC_ID, car_prob=0.2)
    assert get_symmetry(env, required=True).name == "TrafficLights-C4"
    assert traffic_parallel_env().possible_agents == ["light_0", "light_1", "light_2", "light_3"]


def _one_car(route: int, step: int, phases: list[int]) -> TrafficLightsEnv:
    env = TrafficLightsEnv(car_prob=0.0)
    env.reset(seed=0)
    state = env.get_state()
    env.set_state(state)
    env.cars[ROUTES[route, step, 0], ROUTES[route, step, 1]] = route
    env.phases = np.array(phases)
    return env


@pytest.mark.parametrize("route", range(8))
def test_traffic_lights_stop_and_release_cars(route: int) -> None:
    step = int(np.flatnonzero(ENTRANCE[route])[0]) - 1  # just before the first junction
    light = ENTRANCE_JUNCTION[route, step + 1]
    go = 0 if VERTICAL[route] else 1
    env = _one_car(route, step, [go] * 4)
    stop = [go] * 4
    stop[light] = 1 - go
    _, reward, *_ = env.step(np.array(stop))  # red: the car waits
    assert env.cars[ROUTES[route, step, 0], ROUTES[route, step, 1]] == route and reward == pytest.approx(-1 / 1000)
    env.step(np.array([go] * 4))  # green: it enters the junction
    assert env.cars[ROUTES[route, step + 1, 0], ROUTES[route, step + 1, 1]] == route


def test_traffic_episode_ends_when_the_roads_are_empty() -> None:
    env = _one_car(0, 13, [0] * 4)
    env.spawn_steps = 0
    env.schedule = np.zeros((0, 8), dtype=np.int64)
    results = [env.step(np.zeros(4, dtype=np.int64))[2] for _ in range(2)]
    assert results == [False, True]


def test_traffic_symmetry_verified_against_dynamics() -> None:
    report = check_symmetry(gym.make(TRAFFIC_ID, car_prob=0.3), n_samples=32)
    assert report.passed, str(report)
    assert report["transition"].n_checked == 96  # deterministic given the state: every case compared pathwise


def _corrupt_traffic(name: str) -> Symmetry:
    sym = traffic_symmetry()
    group = sym.group
    assert isinstance(sym.obs_action, DictAction)
    if name == "phases_not_swapped":
        return sym.replace(action_rep=permutation(group, {1: [0, 1]}))
    wrong = None if name == "lights_not_permuted" else permutation(group, {1: LIGHT_PERM[3].tolist()})
    parts = {key: AgentAction(a.item, 4, wrong) for key, a in sym.obs_action.actions.items()}  # type: ignore[union-attr]
    return sym.replace(obs_action=DictAction(parts), agents=wrong)


@pytest.mark.parametrize("name", ["phases_not_swapped", "lights_not_permuted", "lights_permuted_backwards"])
def test_traffic_corrupted_maps_fail(name: str) -> None:
    report = check_symmetry(gym.make(TRAFFIC_ID, car_prob=0.3), _corrupt_traffic(name), n_samples=4)
    assert not report.passed
    assert {c.name for c in report.failures} & {"transition", "obs_of_state"}


def test_traffic_joint_actions_follow_the_lights() -> None:
    sym = traffic_symmetry()
    actions = np.array([[0, 0, 1, 1]])
    turned = sym.transform_action(actions, 1)  # light i's phase, swapped, moves to slot LIGHT_PERM[1][i]
    expected = np.empty_like(actions)
    expected[:, LIGHT_PERM[1]] = 1 - actions
    np.testing.assert_array_equal(turned, expected)
