"""Differential inverse kinematics: end-effector pose targets -> arm joint targets.

Damped least squares on MuJoCo's site Jacobian, with a null-space pull towards the home
posture, a per-period joint velocity limit and joint position limits. It reads only
kinematic quantities (site pose and Jacobian of the current configuration), so the ROS
bridge runs the very same code on a scratch MjData filled from /joint_states.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import mujoco
import numpy as np

from envs.robot import DataViews, Robot

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


def clamp(x: float, lo: float, hi: float) -> float:
    """min(max(x, lo), hi) (= np.minimum(np.maximum(x, lo), hi), NaN included) without two builtin calls."""
    x = lo if lo > x else x  # max(x, lo): x unless lo is greater (a NaN x stays)
    return hi if hi < x else x  # min(x, hi): x unless hi is smaller


def _times_transpose(target_mat: np.ndarray, views: DataViews, rows: list[list[float]] | None = None) -> list[list[float]]:
    """target_mat @ R^T (R: the TCP orientation) as nested Python lists (`rows`: `target_mat.tolist()`, if known).

    A diagonal target (straight down, the orientation of every non-yaw step) has one nonzero
    product per entry, which Python computes exactly as BLAS does (the other terms are zeros), so
    the common case skips a BLAS matrix product; any other target takes it.
    """
    t = target_mat.tolist() if rows is None else rows
    if t[0][1] == t[0][2] == t[1][0] == t[1][2] == t[2][0] == t[2][1] == 0.0:
        a, b, c = t[0][0], t[1][1], t[2][2]
        r = views.tcp_xmat.tolist()  # R row-major: R[j][i] = r[3 * j + i]
        return [[a * r[0], a * r[3], a * r[6]], [b * r[1], b * r[4], b * r[7]], [c * r[2], c * r[5], c * r[8]]]
    return target_mat.dot(views.tcp_mat_T).tolist()


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
        # The arm columns of the Jacobian buffer: a view made once when they are contiguous (mj_jacSite
        # writes into the buffer in place), else gathered per solve.
        self._jac_arm = self._jac_full[:, self._cols] if contiguous else None
        self._jac_arm_T = self._jac_arm.T if contiguous else None  # its transpose, also a view made once
        self._n = self.robot.n_arm
        self._home = self.robot.home_qpos[: self._n]
        # The solve weights the Jacobian's angular rows by the rotation gain (its position rows by 1,
        # which changes no number), fixed at construction as before.
        self._rot_gain = float(self.config.rotation_gain)
        self._qpos_ix = self.robot.arm_qpos_ix
        self._site = self.robot.tcp_site
        self._y = np.empty(6)  # the 6x6 solve's result (read at once, so one buffer serves every call)
        # The pose error (6) and the posture term (n_arm) side by side, written together each solve.
        self._err_v = np.empty(6 + self._n)
        self._err, self._v = self._err_v[:6], self._err_v[6:]
        # The joint limits as Python floats for the final clamp (min/max on floats = np.minimum/maximum).
        self._lo_list, self._hi_list = self._lo.tolist(), self._hi.tolist()
        self._home_list = self._home.tolist()

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
        return np.array(self.solve_floats(data, _floats(target_pos), target_mat, dt))

    def solve_floats(
        self,
        data: mujoco.MjData,
        target: list[float],
        target_mat: np.ndarray,
        dt: float,
        tcp: list[float] | None = None,
        target_rows: list[list[float]] | None = None,
    ) -> list[float]:
        """`solve` with the target position and the joint targets as Python floats (the env's step path).

        `tcp`: the current TCP position when the caller has already read it (as floats);
        `target_rows`: `target_mat.tolist()` when the caller keeps it (the env does, per target yaw).
        Bit-identical to the numpy formulation: the matrix products are the same BLAS calls
        (`a.dot(b)` is `a @ b` without the ufunc dispatch), and the elementwise parts (the posture
        term, the step, the velocity-limit scale, the clamp) do the same IEEE operations on floats.
        """
        cfg = self.config
        views = self.robot.views(data)
        q = (views.arm_q if views.arm_q is not None else views.qpos[self._qpos_ix]).tolist()
        # The pose error in Python floats (the same arithmetic as numpy's on six numbers, cheaper):
        # position error, then rotation_gain * orientation_error(current, target).
        t, p, g = target, views.tcp_pos.tolist() if tcp is None else tcp, cfg.rotation_gain
        r = _times_transpose(target_mat, views, target_rows)
        err = [t[0] - p[0], t[1] - p[1], t[2] - p[2],
               g * (0.5 * (r[2][1] - r[1][2])), g * (0.5 * (r[0][2] - r[2][0])), g * (0.5 * (r[1][0] - r[0][1]))]
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self._site)
        # Weight the angular rows in place: one multiply on a contiguous buffer, no new array (a
        # weighted copy of the strided arm columns cost twice as much right after the physics). The
        # products are the ones the 6 x n_arm gain matrix gave; BLAS reads the arm columns as a view.
        self._jacr *= self._rot_gain
        if self._jac_arm is not None:
            jac, jac_T = self._jac_arm, self._jac_arm_T
        else:
            jac = self._jac_full[:, self._cols]
            jac_T = jac.T
        # Damped least squares with a null-space posture term v, using one 6x6 solve:
        #   dq = J+ e + (I - J+ J) v = v + J^T (J J^T + l^2 I)^-1 (e - J v)
        k = cfg.nullspace_gain
        v = [k * (h - x) for h, x in zip(self._home_list, q)]
        self._err_v[:] = err + v  # the error and the posture term into numpy in one write
        jjt = jac.dot(jac_T)
        jjt += self._damping_eye
        rhs = self._err - jac.dot(self._v)
        y = self._y
        mujoco.mju_cholFactor(jjt, 0.0)
        mujoco.mju_cholSolve(y, jjt, rhs)
        # v + J^T y; `y.dot(jac)` is the transposed product BLAS computed for the contiguous copy
        # (`jac.T.dot(y)` on the strided view takes another kernel, with other roundings).
        dq = list(map(operator.add, v, y.dot(jac).tolist()))
        # Scale the whole step (not per joint) into the velocity limit: clipping joints
        # one by one would bend the Cartesian direction of motion.
        if dt != self._limit_dt:
            self._limit_dt, self._step_limit = dt, (self._step_per_s * dt).tolist()
        ratio = max(map(operator.truediv, map(abs, dq), self._step_limit))  # max |dq_i| / limit_i
        scale = ratio > 1.0
        targets = []
        for a, b, lo, hi in zip(q, dq, self._lo_list, self._hi_list):
            x = a + (b / ratio if scale else b)
            x = lo if lo > x else x  # min(max(x, lo), hi) inline: this loop runs every control step
            targets.append(hi if hi < x else x)
        return targets
