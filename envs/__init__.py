"""Gymnasium tasks for a simulated robot arm on a tabletop (Franka Panda, UR5e, ...).

Importing this package registers the `skillstack/...` ids of every shipped robot
(`ROBOT_ENV_IDS`); `ENV_IDS` are the default robot's. Layer 2: imports sim_assets and
mujoco only (no learning code here).
"""

import sim_assets  # noqa: F401  first: picks headless EGL rendering before mujoco is imported

from envs.base import REWARD_TERMS, PandaEnv, TabletopEnv
from envs.registry import (
    ENV_IDS,
    LONG_HORIZON_IDS,
    ROBOT_ENV_IDS,
    ROBOT_LONG_HORIZON_IDS,
    id_for_robot,
    make,
    register_all,
    robot_of,
)
from envs.tasks import TASKS, PandaPickPlaceEnv, PandaPushEnv, PandaReachEnv, PandaStackEnv

register_all()

__all__ = [
    "ENV_IDS",
    "LONG_HORIZON_IDS",
    "REWARD_TERMS",
    "TASKS",
    "PandaEnv",
    "PandaPickPlaceEnv",
    "PandaPushEnv",
    "PandaReachEnv",
    "PandaStackEnv",
    "ROBOT_ENV_IDS",
    "ROBOT_LONG_HORIZON_IDS",
    "TabletopEnv",
    "id_for_robot",
    "make",
    "register_all",
    "robot_of",
]
