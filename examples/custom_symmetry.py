"""Your own env with your own symmetry: a 1-d corridor where "left" and "right" mirror each other.

A Symmetry says how each group element acts on observations, on actions and on the env's state; `check_symmetry`
verifies it against the env's dynamics before you train on it (strict: it refuses a map it could not compare with the
dynamics), and the policy is then equivariant by construction.

    python examples/custom_symmetry.py
"""

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3 import PPO

from sb3_equivariant import EquivariantMlpPolicy, SymmetricEnv, Symmetry, check_symmetry, flip_group
from sb3_equivariant.representation import permutation, signed_permutation


class Corridor(gym.Env):
    """Walk from the middle of [-1, 1] to either end. Observation [position, velocity]; actions 0 left, 1 stay, 2 right."""

    observation_space = spaces.Box(-2.0, 2.0, (2,), np.float32)
    action_space = spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = np.array([self.np_random.uniform(-0.1, 0.1), 0.0], dtype=np.float32)
        return self.get_obs(), {}

    def step(self, action):
        velocity = 0.9 * self.state[1] + 0.02 * (int(action) - 1)
        self.state = np.array([self.state[0] + velocity, velocity], dtype=np.float32)
        done = bool(abs(self.state[0]) >= 1.0)
        return self.get_obs(), (1.0 if done else -0.01), done, False, {}

    # For check_symmetry: read, write and observe the state (here the observation is the whole state).
    def get_state(self):
        return self.state.copy()

    def set_state(self, state):
        self.state = np.asarray(state, dtype=np.float32).copy()

    def get_obs(self):
        return self.state.copy()


def corridor_symmetry() -> Symmetry:
    flip = flip_group()
    mirror = signed_permutation(flip, None, {1: [-1, -1]})  # position and velocity change sign
    return Symmetry(
        obs_action=mirror,
        action_rep=permutation(flip, {1: [2, 1, 0]}),  # left <-> right, stay fixed
        name="corridor-mirror",
        state_transform=mirror,  # how the mirror acts on the state: without it the dynamics cannot be checked
    )


def main(total_timesteps: int = 5_000) -> None:
    env = SymmetricEnv(Corridor(), corridor_symmetry())
    print(check_symmetry(env, n_samples=50, seed=0, strict=True))

    model = PPO(EquivariantMlpPolicy, env, n_steps=256, seed=0)
    model.learn(total_timesteps)
    print("probabilities at x=+0.5 and at its mirror x=-0.5 (left/stay/right, then mirrored):")
    for obs in (np.array([0.5, 0.0], np.float32), np.array([-0.5, 0.0], np.float32)):
        probs = model.policy.get_distribution(model.policy.obs_to_tensor(obs)[0]).distribution.probs
        print(np.round(probs.detach().numpy(), 4))


if __name__ == "__main__":
    main()
