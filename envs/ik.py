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

from envs.robot import Robot

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
    """Small-angle rotation vector taking `current` to `target` (both 3x3, world frame).

    Equals 0.5 * sum_i current[:, i] x target[:, i], written as the vee of a skew matrix
    because np.cross is slow on tiny arrays and this runs every control step.
    """
    s = (target @ current.T).ravel().tolist()  # Python floats: cheaper than numpy indexing on 9 numbers
    return np.array([0.5 * (s[7] - s[5]), 0.5 * (s[2] - s[6]), 0.5 * (s[3] - s[1])])


@dataclass
class IKConfig:
    damping: float = 0.05  # lambda of damped least squares (m / rad)
    rotation_gain: float = 0.5  # weight of orientation error against position error
    nullspace_gain: float = 0.1  # pull towards the home posture, per control period
    limit_margin: float = 0.02  # rad kept clear of every joint limit
    velocity_scale: float = 0.9  # fraction of the joint velocity limit usable per control period


def _floats(v) -> list[float]:
    """A short vector as a list of Python floats."""
    return v.tolist() if isinstance(v, np.ndarray) else [float(x) for x in v]


class DifferentialIK:
    """Maps a TCP position/orientation target to arm joint position targets.

    One damped-least-squares step per control period from the measured configuration:
    dq = J^T (J J^T + lambda^2 I)^-1 e + (I - J^+ J) k (q_home - q), clamped to the joint
    velocity limit over `dt` and to the position limits.
    """

    def __init__(self, model: mujoco.MjModel, robot: Robot | None = None, config: IKConfig | None = None):
        self.model = model
        self.robot = robot or Robot.from_model(model)
        self.config = config or IKConfig()
        # One 6 x nv buffer: mj_jacSite fills its linear rows and its angular rows (both contiguous).
        self._jac_full = np.zeros((6, model.nv))
        self._jacp, self._jacr = self._jac_full[:3], self._jac_full[3:]
        self._lo = self.robot.q_min + self.config.limit_margin
        self._hi = self.robot.q_max - self.config.limit_margin
        self._damping_eye = self.config.damping**2 * np.eye(6)
        self._step_per_s = self.config.velocity_scale * self.robot.qd_max
        self._limit_dt, self._step_limit = None, None  # the per-period step limit, kept for the last dt
        dof = self.robot.arm_dof
        contiguous = bool(np.all(np.diff(dof) == 1))
        # A slice is a view (no copy) when the arm's dofs are contiguous, as in our scenes.
        self._cols = slice(int(dof[0]), int(dof[-1]) + 1) if contiguous else dof
        self._n = self.robot.n_arm
        self._home = self.robot.home_qpos[: self._n]
        # Row weights of the solve's Jacobian (1 for position rows, the rotation gain for angular
        # rows): one multiply picks the arm columns and weights them (x1.0 is exact).
        self._row_gain = np.array([1.0, 1.0, 1.0] + [self.config.rotation_gain] * 3)[:, None]
        self._qpos_ix = self.robot.arm_qpos_ix
        self._site = self.robot.tcp_site

    def jacobian(self, data: mujoco.MjData) -> np.ndarray:
        """6 x n_arm TCP Jacobian (linear; angular) over the arm joints at the current kinematics."""
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self.robot.tcp_site)
        jac = np.empty((6, self._n))
        jac[:3] = self._jacp[:, self._cols]
        jac[3:] = self._jacr[:, self._cols]
        return jac

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
        site = self._site
        q = data.qpos[self._qpos_ix]
        # The pose error in Python floats (the same arithmetic as numpy's on six numbers, cheaper):
        # position error, then rotation_gain * orientation_error(current, target).
        t, p, g = _floats(target_pos), data.site_xpos[site].tolist(), cfg.rotation_gain
        r = (target_mat @ data.site_xmat[site].reshape(3, 3).T).ravel().tolist()
        err = np.array((t[0] - p[0], t[1] - p[1], t[2] - p[2],
                        g * (0.5 * (r[7] - r[5])), g * (0.5 * (r[2] - r[6])), g * (0.5 * (r[3] - r[1]))))
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, site)
        jac = self._jac_full[:, self._cols] * self._row_gain
        # Damped least squares with a null-space posture term v, using one 6x6 solve:
        #   dq = J+ e + (I - J+ J) v = v + J^T (J J^T + l^2 I)^-1 (e - J v)
        v = cfg.nullspace_gain * (self._home - q)
        jjt = jac @ jac.T
        jjt += self._damping_eye
        rhs = err - jac @ v
        y = np.empty(6)
        mujoco.mju_cholFactor(jjt, 0.0)
        mujoco.mju_cholSolve(y, jjt, rhs)
        dq = v + jac.T @ y
        # Scale the whole step (not per joint) into the velocity limit: clipping joints
        # one by one would bend the Cartesian direction of motion.
        if dt != self._limit_dt:
            self._limit_dt, self._step_limit = dt, (self._step_per_s * dt).tolist()
        ratio = max(abs(x) / lim for x, lim in zip(dq.tolist(), self._step_limit))
        if ratio > 1.0:
            dq /= ratio
        return np.minimum(np.maximum(q + dq, self._lo), self._hi)
