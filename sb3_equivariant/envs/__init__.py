"""Environment symmetries: the Symmetry object, wrappers, the registry of known symmetric envs, the verifier."""

from sb3_equivariant.envs import catalogue  # noqa: F401 - registers the built-in symmetries
from sb3_equivariant.envs.factories import make_symmetric_atari_env, make_symmetric_env, make_symmetric_vec_env
from sb3_equivariant.envs.gridworld import GRIDWORLD_ID, GridWorld, gridworld_symmetry, register_gridworld
from sb3_equivariant.envs.masked import MASKED_CARTPOLE_ID, MaskedVelocityCartPole, register_masked_cartpole
from sb3_equivariant.envs.normalize import SymmetricVecNormalize
from sb3_equivariant.envs.propagation import SymmetricEnv, get_symmetry, register_wrapper
from sb3_equivariant.envs.registry import register_symmetry, registered_envs, symmetry_for
from sb3_equivariant.envs.room import ROOM_ID, Room, register_room
from sb3_equivariant.envs.structured import AgentAction, DictAction
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.envs.verify import SymmetryReport, check_symmetry

register_gridworld()
register_masked_cartpole()
register_room()

__all__ = [
    "GRIDWORLD_ID",
    "MASKED_CARTPOLE_ID",
    "ROOM_ID",
    "AgentAction",
    "DictAction",
    "GridWorld",
    "MaskedVelocityCartPole",
    "Room",
    "SymmetricEnv",
    "SymmetricVecNormalize",
    "Symmetry",
    "SymmetryError",
    "SymmetryReport",
    "check_symmetry",
    "get_symmetry",
    "gridworld_symmetry",
    "make_symmetric_atari_env",
    "make_symmetric_env",
    "make_symmetric_vec_env",
    "register_room",
    "register_symmetry",
    "register_wrapper",
    "registered_envs",
    "symmetry_for",
]
