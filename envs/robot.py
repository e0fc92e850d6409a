"""The Panda as the envs see it: joint/actuator indices into a compiled scene and its limits.

Kept separate from the tasks so the IK controller, the observation builder and the
ROS bridge address the robot the same way, whatever scene it stands in.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

ARM_JOINT_NAMES: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
TCP_SITE = "tcp"
MAX_GRIPPER_WIDTH = 0.08  # metres between the fingers when fully open

# Franka datasheet limits (also in the MJCF; kept here to cross-check the model in tests).
Q_MIN = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
Q_MAX = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
QD_MAX = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])
TAU_MAX = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])


@dataclass(frozen=True)
class PandaRobot:
    """Index map of the Panda inside one compiled MuJoCo model."""

    arm_qpos: np.ndarray  # qpos addresses of the 7 arm joints
    arm_dof: np.ndarray  # dof addresses of the 7 arm joints
    finger_qpos: np.ndarray
    finger_dof: np.ndarray
    arm_actuators: np.ndarray
    finger_actuators: np.ndarray
    tcp_site: int
    q_min: np.ndarray
    q_max: np.ndarray
    qd_max: np.ndarray
    tau_max: np.ndarray
    home_qpos: np.ndarray  # 9 values: arm + fingers
    robot_geoms: np.ndarray  # geom ids belonging to the robot (collision-enabled ones)
    arm_joint_names: tuple[str, ...] = ARM_JOINT_NAMES
    finger_joint_names: tuple[str, ...] = FINGER_JOINT_NAMES

    @property
    def joint_names(self) -> tuple[str, ...]:
        """All nine joint names in controller order (arm then fingers)."""
        return self.arm_joint_names + self.finger_joint_names

    @classmethod
    def from_model(cls, model: mujoco.MjModel) -> "PandaRobot":
        """Look the Panda up by name in a compiled model (robot alone or any scene)."""

        def joint(name: str) -> mujoco._structs._MjModelJointViews:
            try:
                return model.joint(name)
            except KeyError:
                raise ValueError(f"model has no joint {name!r}; is this a skillstack Panda model?") from None

        arm = [joint(n) for n in ARM_JOINT_NAMES]
        fingers = [joint(n) for n in FINGER_JOINT_NAMES]
        act_ids = {model.actuator(i).trnid[0]: i for i in range(model.nu)}
        arm_act = np.array([act_ids[j.id] for j in arm])
        finger_act = np.array([act_ids[j.id] for j in fingers])
        root = model.body("panda_link0").id
        robot_bodies = {b for b in range(model.nbody) if _has_ancestor(model, b, root)}
        robot_geoms = np.array(
            [
                g
                for g in range(model.ngeom)
                if model.geom_bodyid[g] in robot_bodies and (model.geom_contype[g] or model.geom_conaffinity[g])
            ],
            dtype=np.int64,
        )
        home = np.array(model.numeric("panda_home_qpos").data, dtype=np.float64)
        return cls(
            arm_qpos=np.array([j.qposadr[0] for j in arm]),
            arm_dof=np.array([j.dofadr[0] for j in arm]),
            finger_qpos=np.array([j.qposadr[0] for j in fingers]),
            finger_dof=np.array([j.dofadr[0] for j in fingers]),
            arm_actuators=arm_act,
            finger_actuators=finger_act,
            tcp_site=model.site(TCP_SITE).id,
            q_min=np.array([j.range[0] for j in arm]),
            q_max=np.array([j.range[1] for j in arm]),
            qd_max=np.array(model.numeric("panda_velocity_limits").data[:7], dtype=np.float64),
            tau_max=TAU_MAX.copy(),
            home_qpos=home,
            robot_geoms=robot_geoms,
        )

    # -- state accessors (cheap views into MjData) ---------------------------------------
    def arm_q(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.arm_qpos]

    def arm_qd(self, data: mujoco.MjData) -> np.ndarray:
        return data.qvel[self.arm_dof]

    def gripper_width(self, data: mujoco.MjData) -> float:
        return float(data.qpos[self.finger_qpos].sum())

    def tcp_pos(self, data: mujoco.MjData) -> np.ndarray:
        return data.site_xpos[self.tcp_site]

    def tcp_mat(self, data: mujoco.MjData) -> np.ndarray:
        return data.site_xmat[self.tcp_site].reshape(3, 3)

    def set_home(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Put the arm at its home pose with servos holding it there."""
        data.qpos[self.arm_qpos] = self.home_qpos[:7]
        data.qpos[self.finger_qpos] = self.home_qpos[7:]
        data.qvel[self.arm_dof] = 0.0
        data.qvel[self.finger_dof] = 0.0
        data.ctrl[self.arm_actuators] = self.home_qpos[:7]
        data.ctrl[self.finger_actuators] = self.home_qpos[7:]


def _has_ancestor(model: mujoco.MjModel, body: int, root: int) -> bool:
    while body > 0:
        if body == root:
            return True
        body = model.body_parentid[body]
    return body == root
