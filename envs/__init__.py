"""Gymnasium tasks for a simulated Franka Panda on a tabletop.

Importing this package registers the `skillstack/...` ids. Layer 2: imports sim_assets
and mujoco only (no learning code here).
"""

import sim_assets  # noqa: F401  first: picks headless EGL rendering before mujoco is imported

from envs.base import REWARD_TERMS, PandaEnv
from envs.registry import ENV_IDS, LONG_HORIZON_IDS, make, register_all
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
    "make",
    "register_all",
]
