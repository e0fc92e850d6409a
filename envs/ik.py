"""Differential inverse kinematics: end-effector pose targets -> arm joint targets.

Damped least squares on MuJoCo's site Jacobian, with a null-space pull towards the home
posture, a per-period joint velocity limit and joint position limits. It reads only
kinematic quantities (site pose and Jacobian of the current configuration), so the ROS
bridge runs the very same code on a scratch MjData filled from /joint_states.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from envs.robot import PandaRobot

# Gripper pointing straight down, fingers opening along world y: the TCP frame at the
# home pose. Yaw rotates this about world z.
DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def yaw_rotation(yaw: float) -> np.ndarray:
    """TCP orientation pointing down, rotated by `yaw` (rad) about world z."""
    c, s = np.cos(yaw), np.sin(yaw)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return rz @ DOWN


def tcp_yaw(tcp_mat: np.ndarray) -> float:
    """Yaw of a (roughly downward) TCP frame about world z."""
    return float(np.arctan2(tcp_mat[1, 0], tcp_mat[0, 0]))


def orientation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Small-angle rotation vector taking `current` to `target` (both 3x3, world frame)."""
    return 0.5 * (
        np.cross(current[:, 0], target[:, 0]) + np.cross(current[:, 1], target[:, 1]) + np.cross(current[:, 2], target[:, 2])
    )


@dataclass
class IKConfig:
    damping: float = 0.05  # lambda of damped least squares (m / rad)
    rotation_gain: float = 0.5  # weight of orientation error against position error
    nullspace_gain: float = 0.1  # pull towards the home posture, per control period
    limit_margin: float = 0.02  # rad kept clear of every joint limit
    velocity_scale: float = 0.9  # fraction of the joint velocity limit usable per control period


class DifferentialIK:
    """Maps a TCP position/orientation target to arm joint position targets.

    One damped-least-squares step per control period from the measured configuration:
    dq = J^T (J J^T + lambda^2 I)^-1 e + (I - J^+ J) k (q_home - q), clamped to the joint
    velocity limit over `dt` and to the position limits.
    """

    def __init__(self, model: mujoco.MjModel, robot: PandaRobot | None = None, config: IKConfig | None = None):
        self.model = model
        self.robot = robot or PandaRobot.from_model(model)
        self.config = config or IKConfig()
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._lo = self.robot.q_min + self.config.limit_margin
        self._hi = self.robot.q_max - self.config.limit_margin

    def jacobian(self, data: mujoco.MjData) -> np.ndarray:
        """6x7 TCP Jacobian (linear; angular) over the arm joints at the current kinematics."""
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self.robot.tcp_site)
        cols = self.robot.arm_dof
        return np.vstack((self._jacp[:, cols], self._jacr[:, cols]))

    def solve(
        self,
        data: mujoco.MjData,
        target_pos: np.ndarray,
        target_mat: np.ndarray,
        dt: float,
    ) -> np.ndarray:
        """Joint targets moving the TCP towards (target_pos, target_mat) within one period `dt`.

        `data` must hold current kinematics (mj_kinematics + mj_comPos, or mj_forward).
        """
        cfg = self.config
        robot = self.robot
        q = data.qpos[robot.arm_qpos]
        pos = data.site_xpos[robot.tcp_site]
        mat = data.site_xmat[robot.tcp_site].reshape(3, 3)
        err = np.concatenate((target_pos - pos, cfg.rotation_gain * orientation_error(mat, target_mat)))
        jac = self.jacobian(data)
        jac[3:] *= cfg.rotation_gain
        jjt = jac @ jac.T
        jjt[np.diag_indices(6)] += cfg.damping**2
        pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
        dq = pinv @ err
        null = np.eye(7) - pinv @ jac
        dq += null @ (cfg.nullspace_gain * (robot.home_qpos[:7] - q))
        # Scale the whole step (not per joint) into the velocity limit: clipping joints
        # one by one would bend the Cartesian direction of motion.
        step = cfg.velocity_scale * robot.qd_max * dt
        ratio = np.max(np.abs(dq) / step)
        if ratio > 1.0:
            dq /= ratio
        return np.clip(q + dq, self._lo, self._hi)
