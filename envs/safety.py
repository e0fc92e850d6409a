"""Safety cost of a robot state: joint-limit proximity, table contact force, joint speed.

Returned as a non-negative cost (0 when the robot is comfortably safe); the envs expose
it as `info["safety_cost"]` and as the reward term `safety = -cost`. Each part is scaled
to be about 1 for a clear violation, so the parts are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import mujoco
import numpy as np

from envs.robot import Robot


@dataclass
class SafetyConfig:
    limit_margin: float = 0.1  # rad: cost rises linearly inside this distance to a limit
    speed_fraction: float = 0.8  # of the velocity limit at which speed cost starts
    contact_force_scale: float = 20.0  # N of robot-table contact force per unit cost


class SafetyCost:
    """Computes the safety cost and its parts from MjData after a step."""

    def __init__(self, model: mujoco.MjModel, robot: Robot, config: SafetyConfig | None = None):
        self.model = model
        self.robot = robot
        self.config = config or SafetyConfig()
        # A MuJoCo contact sensor (table vs the robot subtree) sums the force in C during
        # mj_step; reading contacts from Python every step cost more than the rest of the env.
        self._sensor = model.sensor_adr[model.sensor("robot_table_contact").id]
        self._inv_qd_max = 1.0 / robot.qd_max
        # The per-step cost runs on Python floats: a handful of numpy calls on 6-7 numbers cost
        # more than the arithmetic. Same operations in the same order, so the same bits as `parts`.
        self._lo_list, self._hi_list = robot.q_min.tolist(), robot.q_max.tolist()
        self._inv_qd_list = self._inv_qd_max.tolist()
        self._qpos_ix, self._dof_ix = robot.arm_qpos_ix, robot.arm_dof_ix
        self._force = slice(self._sensor + 1, self._sensor + 4)  # the sensor's force (after its normal-count field)

    def table_contact_force(self, data: mujoco.MjData) -> float:
        """Magnitude (N) of the net robot-table contact force, from the scene's contact sensor."""
        f = data.sensordata[self._sensor + 1 : self._sensor + 4]
        return float(np.sqrt(f @ f))

    def parts(self, data: mujoco.MjData) -> dict[str, float]:
        """The three cost parts: joint_limit, table_contact, joint_speed."""
        cfg = self.config
        robot = self.robot
        q = data.qpos[robot.arm_qpos_ix]
        dist = np.minimum(q - robot.q_min, robot.q_max - q)
        limit = float(np.maximum(cfg.limit_margin - dist, 0.0).sum()) / cfg.limit_margin
        ratio = np.abs(data.qvel[robot.arm_dof_ix]) * self._inv_qd_max
        speed = float(np.maximum(ratio - cfg.speed_fraction, 0.0).sum()) / (1.0 - cfg.speed_fraction)
        contact = self.table_contact_force(data) / cfg.contact_force_scale
        return {"joint_limit": limit, "table_contact": contact, "joint_speed": speed}

    def __call__(self, data: mujoco.MjData) -> float:
        """The total cost: joint_limit + table_contact + joint_speed (as `parts` sums them)."""
        cfg = self.config
        margin, frac = cfg.limit_margin, cfg.speed_fraction
        views = self.robot.views(data)
        limit = speed = 0.0
        # One pass over the joints; each sum still adds its joints in order.
        q = views.arm_q if views.arm_q is not None else views.qpos[self._qpos_ix]
        qd = views.arm_qd if views.arm_qd is not None else views.qvel[self._dof_ix]
        for x, lo, hi, v, inv in zip(q.tolist(), self._lo_list, self._hi_list, qd.tolist(), self._inv_qd_list):
            below, above = x - lo, hi - x
            excess = margin - (above if above < below else below)  # min(below, above), NaN as min keeps it
            if excess > 0.0:  # adding the zeros numpy adds changes no sum
                limit += excess
            excess = (v if v >= 0.0 else -v) * inv - frac  # abs(v) without a builtin call (a NaN stays NaN)
            if excess > 0.0:
                speed += excess
        f = views.sensordata[self._force]
        contact = math.sqrt(f.dot(f)) / cfg.contact_force_scale  # BLAS's dot (`f @ f` without the ufunc dispatch)
        return limit / margin + contact + speed / (1.0 - frac)
