"""Safety cost of a robot state: joint-limit proximity, table contact force, joint speed.

Returned as a non-negative cost (0 when the robot is comfortably safe); the envs expose
it as `info["safety_cost"]` and as the reward term `safety = -cost`. Each part is scaled
to be about 1 for a clear violation, so the parts are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from envs.robot import PandaRobot


@dataclass
class SafetyConfig:
    limit_margin: float = 0.1  # rad: cost rises linearly inside this distance to a limit
    speed_fraction: float = 0.8  # of the velocity limit at which speed cost starts
    contact_force_scale: float = 20.0  # N of robot-table contact force per unit cost


class SafetyCost:
    """Computes the safety cost and its parts from MjData after a step."""

    def __init__(self, model: mujoco.MjModel, robot: PandaRobot, config: SafetyConfig | None = None):
        self.model = model
        self.robot = robot
        self.config = config or SafetyConfig()
        self._table = model.geom("table").id
        self._is_robot = np.zeros(model.ngeom, dtype=bool)
        self._is_robot[robot.robot_geoms] = True
        self._force = np.zeros(6)

    def table_contact_force(self, data: mujoco.MjData) -> float:
        """Total normal force (N) between robot geoms and the table."""
        if data.ncon == 0:
            return 0.0
        geoms = data.contact.geom
        g0, g1 = geoms[:, 0], geoms[:, 1]
        hits = np.flatnonzero(((g0 == self._table) & self._is_robot[g1]) | ((g1 == self._table) & self._is_robot[g0]))
        total = 0.0
        for i in hits:
            mujoco.mj_contactForce(self.model, data, int(i), self._force)
            total += abs(self._force[0])
        return total

    def parts(self, data: mujoco.MjData) -> dict[str, float]:
        """The three cost parts: joint_limit, table_contact, joint_speed."""
        cfg = self.config
        robot = self.robot
        q = data.qpos[robot.arm_qpos]
        qd = data.qvel[robot.arm_dof]
        dist = np.minimum(q - robot.q_min, robot.q_max - q)
        limit = float(np.clip((cfg.limit_margin - dist) / cfg.limit_margin, 0.0, None).sum())
        ratio = np.abs(qd) / robot.qd_max
        speed = float(np.clip((ratio - cfg.speed_fraction) / (1.0 - cfg.speed_fraction), 0.0, None).sum())
        contact = self.table_contact_force(data) / cfg.contact_force_scale
        return {"joint_limit": limit, "table_contact": contact, "joint_speed": speed}

    def __call__(self, data: mujoco.MjData) -> float:
        return float(sum(self.parts(data).values()))
