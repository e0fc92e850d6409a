"""Joint-space trajectory of a demonstration, the same for simulated and real-robot demos.

What "send a recorded motion to the robot" needs (the ROS bridge's replay streams it as
a JointTrajectory): the Panda's nine joint positions at the control rate. Real-robot
imports store them as `obs/joint_pos`; simulated recordings store the robot part of
the env observation, whose layout (`envs.observation.ROBOT_FIELDS`) puts the 7 arm
joints in `joint_pos` and the finger opening in `gripper_width` (two fingers, half each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from demos.format import Episode

__all__ = ["JointTrajectory", "joint_trajectory"]


@dataclass
class JointTrajectory:
    """Positions (T+1, joints) of the robot's joints (arm then gripper, `joint_names`) every `dt` seconds."""

    joint_names: tuple[str, ...]
    dt: float
    positions: np.ndarray

    @property
    def times(self) -> np.ndarray:
        """Time of each row from the start of the demo (s)."""
        return np.arange(len(self.positions)) * self.dt


def _robot_slices() -> dict[str, slice]:
    from envs.observation import ROBOT_FIELDS

    out, offset = {}, 0
    for name, size in ROBOT_FIELDS:
        out[name] = slice(offset, offset + size)
        offset += size
    return out


def joint_trajectory(episode: Episode, dt: float | None = None) -> JointTrajectory:
    """Joint positions of `episode` at every step, plus the final state (T+1 rows).

    dt defaults to the demo's `rate_hz` attribute (real-robot imports) or the envs'
    control period (0.04 s). Raises ValueError when the demo has neither `joint_pos`
    nor `observation` in `obs/`.
    """
    from envs.base import PandaEnv
    from envs.robot import ARM_JOINT_NAMES, FINGER_JOINT_NAMES

    if dt is None:
        rate = episode.attrs.get("rate_hz")
        dt = 1.0 / float(rate) if rate else float(PandaEnv.control_dt)
    names = ARM_JOINT_NAMES + FINGER_JOINT_NAMES
    order = episode.attrs.get("joint_order")  # an import's own joints (any robot), description names
    if isinstance(order, str):
        order = json.loads(order)
    if order and "joint_pos" in episode.obs and np.shape(episode.obs["joint_pos"])[1:] == (len(order),):
        names = tuple(order)
        q = np.concatenate((episode.obs["joint_pos"], episode.next_obs["joint_pos"][-1:]))
    elif "joint_pos" in episode.obs and np.shape(episode.obs["joint_pos"])[1:] == (9,):
        q = np.concatenate((episode.obs["joint_pos"], episode.next_obs["joint_pos"][-1:]))
    elif "observation" in episode.obs:
        sl = _robot_slices()
        obs = np.concatenate((episode.obs["observation"], episode.next_obs["observation"][-1:]))
        q = np.empty((len(obs), 9))
        q[:, :7] = obs[:, sl["joint_pos"]]
        q[:, 7:] = obs[:, sl["gripper_width"]] / 2.0
    else:
        raise ValueError(f"demo {episode.name or '?'} has neither obs/joint_pos nor obs/observation")
    return JointTrajectory(joint_names=names, dt=float(dt), positions=q)
