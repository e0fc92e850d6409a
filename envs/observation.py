"""The observation vector, built in one place for sim and robot alike.

`ObservationBuilder.build(data)` reads only joint positions/velocities, object free-joint
poses/velocities and the kinematics derived from them. The ROS bridge fills a scratch
MjData from /joint_states and object poses, calls `refresh_kinematics`, then `build`, so
a policy sees on the robot exactly the vector it was trained on.

Layout (names -> slices in `layout`), Fetch-like:
  tcp_pos(3) gripper_width(1) tcp_vel(3) gripper_vel(1) joint_pos(n_arm: 7 on the Panda)
  then per object o: o_pos(3) o_rel_pos(3) o_quat(4, w >= 0) o_linvel(3) o_angvel(3)
The gripper width and its rate come through the robot description's width map.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from envs.robot import ARM_JOINT_NAMES, Robot


def robot_fields(n_arm: int) -> tuple[tuple[str, int], ...]:
    """The robot part of the layout for an arm of `n_arm` joints."""
    return (("tcp_pos", 3), ("gripper_width", 1), ("tcp_vel", 3), ("gripper_vel", 1), ("joint_pos", n_arm))


ROBOT_FIELDS: tuple[tuple[str, int], ...] = robot_fields(len(ARM_JOINT_NAMES))  # the default robot's
OBJECT_FIELDS: tuple[tuple[str, int], ...] = (
    ("pos", 3),
    ("rel_pos", 3),
    ("quat", 4),
    ("linvel", 3),
    ("angvel", 3),
)


def refresh_kinematics(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Recompute poses and Jacobian inputs from qpos (cheaper than mj_forward: no dynamics)."""
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)


class ObservationBuilder:
    """Builds the flat observation vector for a robot scene with the given cubes."""

    def __init__(self, model: mujoco.MjModel, objects: Sequence[str], robot: Robot | None = None):
        self.model = model
        self.robot = robot or Robot.from_model(model)
        self.objects = tuple(objects)
        self._obj_qpos = []
        self._obj_dof = []
        for name in self.objects:
            try:
                j = model.joint(f"cube_{name}_joint")
            except KeyError:
                raise ValueError(f"scene has no cube {name!r}") from None
            self._obj_qpos.append(j.qposadr[0])
            self._obj_dof.append(j.dofadr[0])
        self.layout: dict[str, slice] = {}
        offset = 0
        fields = list(robot_fields(self.robot.n_arm)) + [(f"{o}_{f}", n) for o in self.objects for f, n in OBJECT_FIELDS]
        for name, size in fields:
            self.layout[name] = slice(offset, offset + size)
            offset += size
        self.size = offset
        self._jacp = np.zeros((3, model.nv))

    def object_pos(self, data: mujoco.MjData, name: str) -> np.ndarray:
        """World position of a cube (from its free joint, exact at the current state)."""
        adr = self._obj_qpos[self.objects.index(name)]
        return data.qpos[adr : adr + 3]

    def build(self, data: mujoco.MjData) -> np.ndarray:
        """Observation at the current state; kinematics must be current (see refresh_kinematics)."""
        robot = self.robot
        out = np.empty(self.size, dtype=np.float64)
        tcp = data.site_xpos[robot.tcp_site]
        out[0:3] = tcp
        out[3] = robot.gripper_width(data)
        mujoco.mj_jacSite(self.model, data, self._jacp, None, robot.tcp_site)
        out[4:7] = self._jacp @ data.qvel
        out[7] = robot.gripper_width_rate(data)
        i = 8 + robot.n_arm
        out[8:i] = data.qpos[robot.arm_qpos]
        for qadr, dadr in zip(self._obj_qpos, self._obj_dof):
            pos = data.qpos[qadr : qadr + 3]
            quat = data.qpos[qadr + 3 : qadr + 7]
            out[i : i + 3] = pos
            out[i + 3 : i + 6] = pos - tcp
            out[i + 6 : i + 10] = quat if quat[0] >= 0 else -quat
            out[i + 10 : i + 13] = data.qvel[dadr : dadr + 3]
            out[i + 13 : i + 16] = data.qvel[dadr + 3 : dadr + 6]
            i += 16
        return out
