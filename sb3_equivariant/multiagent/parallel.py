"""PettingZoo ``ParallelEnv`` views of the joint multi-agent envs (needs the ``multiagent`` extra: ``pettingzoo``).

A joint env of this package observes a ``Dict`` of per-agent arrays stacked on a leading agent axis and takes a
``MultiDiscrete`` joint action; :class:`JointParallelEnv` splits the observation agent by agent, gathers the agents'
actions into the joint action, and gives every agent the team reward. The dynamics are the joint env's own.
"""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from sb3_equivariant.multiagent.lever import LeverGameEnv
from sb3_equivariant.multiagent.traffic import TrafficLightsEnv
from sb3_equivariant.multiagent.wildlife import WildlifeEnv


class JointParallelEnv(ParallelEnv):
    """
    A PettingZoo ``ParallelEnv`` driving a joint env: agent ``i`` observes ``{key: obs[key][i]}`` and chooses entry
    ``i`` of the joint action; every agent receives the team reward; when the joint env terminates or truncates,
    every agent does and ``agents`` empties.

    :param env: a joint env with a ``Dict`` observation of ``(n_agents, ...)`` boxes and a ``MultiDiscrete`` action.
    :param name: the agents' name prefix (agent ``i`` is ``f"{name}_{i}"``).
    """

    metadata = {"render_modes": [], "name": "joint_parallel_v0"}

    def __init__(self, env: gym.Env, name: str = "agent"):
        if not isinstance(env.action_space, spaces.MultiDiscrete) or np.asarray(env.action_space.nvec).ndim != 1:
            raise TypeError(f"JointParallelEnv needs a 1-d MultiDiscrete joint action, got {env.action_space}")
        n_agents = len(env.action_space.nvec)
        obs_space = env.observation_space
        if not isinstance(obs_space, spaces.Dict) or not all(
            isinstance(s, spaces.Box) and s.shape[:1] == (n_agents,) for s in obs_space.spaces.values()
        ):
            raise TypeError(f"JointParallelEnv needs a Dict of boxes with a leading axis of {n_agents} agents, got {obs_space}")
        self.env = env
        self.possible_agents = [f"{name}_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        boxes = cast(dict[str, spaces.Box], obs_space.spaces)
        self._obs_spaces = {
            agent: spaces.Dict(
                {key: spaces.Box(box.low[i], box.high[i], box.shape[1:], dtype=box.dtype) for key, box in boxes.items()}  # type: ignore[arg-type]
            )
            for agent, i in self._index.items()
        }
        self._act_spaces = {agent: spaces.Discrete(int(env.action_space.nvec[i])) for agent, i in self._index.items()}

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_spaces[agent]

    def _split(self, obs: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        return {agent: {key: value[self._index[agent]] for key, value in obs.items()} for agent in self.agents}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, Any], dict[str, dict]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            for i, space in enumerate(self._act_spaces.values()):
                space.seed(seed + i)
        self.agents = list(self.possible_agents)
        return self._split(obs), {agent: dict(info) for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"no action given for {missing}; every live agent acts in every step")
        joint = np.array([int(actions[agent]) for agent in self.possible_agents], dtype=np.int64)
        obs, reward, terminated, truncated, info = self.env.step(joint)
        agents = list(self.agents)
        split = self._split(obs)
        rewards = {agent: float(reward) for agent in agents}
        terminations = {agent: bool(terminated) for agent in agents}
        truncations = {agent: bool(truncated) for agent in agents}
        infos = {agent: dict(info) for agent in agents}
        if terminated or truncated:
            self.agents = []
        return split, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return np.asarray(self.env.unwrapped.get_state())  # type: ignore[attr-defined]

    def close(self) -> None:
        self.env.close()


def wildlife_parallel_env(**kwargs: Any) -> JointParallelEnv:
    """The wildlife task (:class:`~sb3_equivariant.multiagent.wildlife.WildlifeEnv`, same kwargs) as a PettingZoo
    ``ParallelEnv`` with agents ``drone_0 .. drone_{n-1}``."""
    env = JointParallelEnv(WildlifeEnv(**kwargs), name="drone")
    env.metadata = {**env.metadata, "name": "wildlife_v0"}
    return env


def traffic_parallel_env(**kwargs: Any) -> JointParallelEnv:
    """The traffic light task (:class:`~sb3_equivariant.multiagent.traffic.TrafficLightsEnv`, same kwargs) as a
    PettingZoo ``ParallelEnv`` with agents ``light_0 .. light_3``."""
    env = JointParallelEnv(TrafficLightsEnv(**kwargs), name="light")
    env.metadata = {**env.metadata, "name": "traffic_lights_v0"}
    return env


class LeverGameParallelEnv(ParallelEnv):
    """
    The lever game (:class:`~sb3_equivariant.multiagent.lever.LeverGameEnv`, same kwargs) as a two-player PettingZoo
    ``ParallelEnv``: ``player_0`` and ``player_1`` observe nothing (a constant 0), each pulls a lever, both receive
    the payoff, and the game ends after one step.
    """

    metadata = {"render_modes": [], "name": "lever_game_v0"}

    def __init__(self, **kwargs: Any):
        self.game = LeverGameEnv(**kwargs)
        self.possible_agents = ["player_0", "player_1"]
        self.agents: list[str] = []
        self._action_space = spaces.Discrete(self.game.n_levers)

    def observation_space(self, agent: str) -> spaces.Space:
        return self.game.observation_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, Any], dict[str, dict]]:
        obs, _ = self.game.reset(seed=seed)
        if seed is not None:
            self._action_space.seed(seed)
        self.agents = list(self.possible_agents)
        return {agent: obs.copy() for agent in self.agents}, {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"no action given for {missing}; both players pull a lever at once")
        obs, reward, _, _, _ = self.game.step(np.array([int(actions[agent]) for agent in self.possible_agents]))
        agents, self.agents = self.agents, []
        return (
            {agent: obs.copy() for agent in agents},
            {agent: reward for agent in agents},
            {agent: True for agent in agents},
            {agent: False for agent in agents},
            {agent: {} for agent in agents},
        )


def lever_parallel_env(**kwargs: Any) -> LeverGameParallelEnv:
    """The lever game as a two-player PettingZoo ``ParallelEnv`` (kwargs of :class:`LeverGameParallelEnv`)."""
    return LeverGameParallelEnv(**kwargs)


__all__ = ["JointParallelEnv", "LeverGameParallelEnv", "lever_parallel_env", "traffic_parallel_env", "wildlife_parallel_env"]
