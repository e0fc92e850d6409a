"""The robot as the envs see it: joint/actuator indices into a compiled scene, and its limits.

Built from a robot description (`sim_assets.load_robot`), so the IK controller, the
observation builder, the safety cost and the ROS bridge address any robot the same way,
whatever scene it stands in. Nothing here names a particular robot's joints or links.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim_assets import DEFAULT_ROBOT, RobotDescription, load_robot, robot_for_model

_DEFAULT = load_robot(DEFAULT_ROBOT)

# The default robot's names and limits, for callers written before robots were data.
# New code reads them from a `Robot` (or its `description`) instead.
ARM_JOINT_NAMES: tuple[str, ...] = _DEFAULT.arm.joints
FINGER_JOINT_NAMES: tuple[str, ...] = _DEFAULT.gripper.joints
TCP_SITE = _DEFAULT.tcp_site
MAX_GRIPPER_WIDTH = _DEFAULT.gripper.max_width  # metres between the fingers when fully open
Q_MIN = np.array(_DEFAULT.arm.position_lower)
Q_MAX = np.array(_DEFAULT.arm.position_upper)
QD_MAX = np.array(_DEFAULT.arm.velocity)
TAU_MAX = np.array(_DEFAULT.arm.torque)


@dataclass(frozen=True)
class Robot:
    """Index map of one described robot inside one compiled MuJoCo model."""

    arm_qpos: np.ndarray  # qpos addresses of the arm joints
    arm_dof: np.ndarray  # dof addresses of the arm joints
    finger_qpos: np.ndarray  # qpos addresses of the gripper joints
    finger_dof: np.ndarray
    arm_actuators: np.ndarray
    finger_actuators: np.ndarray
    tcp_site: int
    q_min: np.ndarray
    q_max: np.ndarray
    qd_max: np.ndarray
    tau_max: np.ndarray
    home_qpos: np.ndarray  # arm then gripper joints
    robot_geoms: np.ndarray  # geom ids belonging to the robot (collision-enabled ones)
    gripper_geoms: np.ndarray  # collision-enabled geoms moved by the gripper joints (finger pads)
    description: RobotDescription
    arm_joint_names: tuple[str, ...]
    finger_joint_names: tuple[str, ...]

    @property
    def name(self) -> str:
        """The robot's name (its description's)."""
        return self.description.name

    @property
    def n_arm(self) -> int:
        """Number of arm joints."""
        return len(self.arm_joint_names)

    @property
    def max_gripper_width(self) -> float:
        """Fully open gripper width (m)."""
        return self.description.gripper.max_width

    @property
    def joint_names(self) -> tuple[str, ...]:
        """All joint names in controller order (arm then gripper)."""
        return self.arm_joint_names + self.finger_joint_names

    @classmethod
    def from_model(cls, model: mujoco.MjModel, description: str | RobotDescription | None = None) -> "Robot":
        """Look a robot up by name in a compiled model (robot alone or any scene).

        `description`: the robot's name or description; None finds the shipped robot whose
        arm joints the model has. The model is checked against the description.
        """
        desc = robot_for_model(model) if description is None else load_robot(description)
        desc.check_model(model)
        arm = [model.joint(n) for n in desc.arm.joints]
        fingers = [model.joint(n) for n in desc.gripper.joints]
        act_ids = {model.actuator(i).trnid[0]: i for i in range(model.nu)}
        root = model.body(desc.base_body).id
        robot_bodies = {b for b in range(model.nbody) if _has_ancestor(model, b, root)}
        collides = model.geom_contype.astype(bool) | model.geom_conaffinity.astype(bool)
        robot_geoms = np.array([g for g in range(model.ngeom) if model.geom_bodyid[g] in robot_bodies and collides[g]], dtype=np.int64)
        finger_bodies = {int(model.jnt_bodyid[j.id]) for j in fingers}
        gripper_geoms = np.array([g for g in robot_geoms if model.geom_bodyid[g] in finger_bodies], dtype=np.int64)
        return cls(
            arm_qpos=np.array([j.qposadr[0] for j in arm]),
            arm_dof=np.array([j.dofadr[0] for j in arm]),
            finger_qpos=np.array([j.qposadr[0] for j in fingers]),
            finger_dof=np.array([j.dofadr[0] for j in fingers]),
            arm_actuators=np.array([act_ids[j.id] for j in arm]),
            finger_actuators=np.array([act_ids[j.id] for j in fingers]),
            tcp_site=model.site(desc.tcp_site).id,
            q_min=np.array([j.range[0] for j in arm]),
            q_max=np.array([j.range[1] for j in arm]),
            qd_max=np.array(desc.arm.velocity, dtype=np.float64),
            tau_max=np.array(desc.arm.torque, dtype=np.float64),
            home_qpos=desc.home_qpos,
            robot_geoms=robot_geoms,
            gripper_geoms=gripper_geoms,
            description=desc,
            arm_joint_names=desc.arm.joints,
            finger_joint_names=desc.gripper.joints,
        )

    def __post_init__(self) -> None:
        # Hot-path indices: a slice (a view, no gather) when the addresses are contiguous, as in
        # our scenes; else the address array. Same values either way, so results stay bit-identical.
        for name in ("arm_qpos", "arm_dof", "finger_qpos", "finger_dof", "arm_actuators", "finger_actuators"):
            object.__setattr__(self, f"{name}_ix", _as_slice(getattr(self, name)))
        # Arm then gripper actuators: one write of all joint targets (a slice when contiguous).
        object.__setattr__(self, "actuators_ix", _as_slice(np.concatenate((self.arm_actuators, self.finger_actuators))))
        grip = self.description.gripper
        object.__setattr__(self, "_width_weights", grip.width_weights())
        object.__setattr__(self, "_width_offset", np.asarray(grip.width_to_joint_offset, dtype=np.float64))
        object.__setattr__(self, "_width_scale", np.asarray(grip.width_to_joint_scale, dtype=np.float64))
        # The gripper map as Python floats for the step path (offset + scale * width per joint: the
        # same two roundings as the numpy expression, so the same bits).
        object.__setattr__(self, "_width_map", tuple(zip(self._width_offset.tolist(), self._width_scale.tolist())))
        object.__setattr__(self, "max_gripper_width_f", float(grip.max_width))
        object.__setattr__(self, "finger_actuator_list", [int(i) for i in self.finger_actuators])
        object.__setattr__(self, "finger_velocity_list", [float(v) for v in grip.velocity])
        object.__setattr__(self, "_views", None)

    def __getstate__(self) -> dict:
        # Copies and pickles leave the views behind: copied arrays would no longer alias the data.
        return {**self.__dict__, "_views": None}

    def views(self, data: mujoco.MjData) -> "DataViews":
        """Views into `data`'s arrays that the step path reads, made once per MjData (see DataViews)."""
        v = self._views
        if v is None or v.data is not data:
            v = DataViews(data, self.tcp_site, self)
            object.__setattr__(self, "_views", v)
        return v

    # -- state accessors (cheap views into MjData) ---------------------------------------
    def arm_q(self, data: mujoco.MjData) -> np.ndarray:
        """Arm joint positions (a copy, in controller order)."""
        return data.qpos[self.arm_qpos]

    def arm_qd(self, data: mujoco.MjData) -> np.ndarray:
        """Arm joint velocities (a copy, in controller order)."""
        return data.qvel[self.arm_dof]

    def gripper_width(self, data: mujoco.MjData) -> float:
        """Opening between the fingers (m), through the description's width map."""
        return float(self._width_weights @ (data.qpos[self.finger_qpos_ix] - self._width_offset))

    def gripper_width_rate(self, data: mujoco.MjData) -> float:
        """Rate of change of the opening (m/s)."""
        return float(self._width_weights @ data.qvel[self.finger_dof_ix])

    def gripper_targets(self, width: float) -> np.ndarray:
        """Gripper joint commands for an opening `width` (m)."""
        return self._width_offset + self._width_scale * width

    def gripper_targets_list(self, width: float) -> list[float]:
        """`gripper_targets` as Python floats (the same values, without numpy's per-call cost)."""
        return [o + s * width for o, s in self._width_map]

    def rate_limited_gripper_targets(self, data: mujoco.MjData, width: float, dt: float) -> list[float]:
        """The gripper joint targets for `width`, each moved at most its description velocity x `dt` from the
        target in `data.ctrl`: the fingers close no faster than the robot's own (the Franka Hand's 0.05 m/s
        per finger), exactly as the ROS 2 safety layer lets a target move on the robot."""
        out = []
        for (o, s), i, v in zip(self._width_map, self.finger_actuator_list, self.finger_velocity_list):
            prev, step = float(data.ctrl[i]), v * dt
            t = o + s * width
            out.append(prev - step if t < prev - step else (prev + step if t > prev + step else t))
        return out

    def gripper_action(self, width: float) -> float:
        """The gripper action (-1 closed .. +1 open) that commands `width`."""
        return 2.0 * width / self.max_gripper_width - 1.0

    def tcp_pos(self, data: mujoco.MjData) -> np.ndarray:
        """TCP position (a view into `data`)."""
        return data.site_xpos[self.tcp_site]

    def tcp_mat(self, data: mujoco.MjData) -> np.ndarray:
        """TCP orientation as a 3x3 matrix."""
        return data.site_xmat[self.tcp_site].reshape(3, 3)

    def set_home(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Put the robot at its home pose with servos holding it there."""
        n = self.n_arm
        data.qpos[self.arm_qpos] = self.home_qpos[:n]
        data.qpos[self.finger_qpos] = self.home_qpos[n:]
        data.qvel[self.arm_dof] = 0.0
        data.qvel[self.finger_dof] = 0.0
        data.ctrl[self.arm_actuators] = self.home_qpos[:n]
        data.ctrl[self.finger_actuators] = self.home_qpos[n:]


PandaRobot = Robot  # the name before robots were data


class DataViews:
    """The arrays of one MjData that the step path reads, as numpy views made once.

    Every attribute read of an MjData array (`data.qpos`) builds a new numpy wrapper, and every
    row of it (`data.site_xpos[i]`) another; the buffers behind them never move for the life of
    an MjData (resets and mj_setState write into them), so views made once stay valid and
    always show the current state. A step reads a dozen of them.

    With `robot`, also the arm's and the gripper's joint positions and velocities as views when the
    robot's joints are contiguous in qpos/qvel (as in our scenes; a slice made per read is a numpy
    call each time); None where they are not (read `qpos[index]` then, a gather).
    """

    def __init__(self, data: mujoco.MjData, tcp_site: int, robot: Robot | None = None):
        self.data = data
        self.qpos: np.ndarray = data.qpos
        self.qvel: np.ndarray = data.qvel
        self.arm_q: np.ndarray | None = None if robot is None else _block(data.qpos, robot.arm_qpos_ix)
        self.arm_qd: np.ndarray | None = None if robot is None else _block(data.qvel, robot.arm_dof_ix)
        self.finger_q: np.ndarray | None = None if robot is None else _block(data.qpos, robot.finger_qpos_ix)
        self.finger_qd: np.ndarray | None = None if robot is None else _block(data.qvel, robot.finger_dof_ix)
        self.ctrl: np.ndarray = data.ctrl
        self.sensordata: np.ndarray = data.sensordata
        self.tcp_pos: np.ndarray = data.site_xpos[tcp_site]  # (3,)
        self.tcp_xmat: np.ndarray = data.site_xmat[tcp_site]  # (9,) row-major
        self.tcp_mat: np.ndarray = self.tcp_xmat.reshape(3, 3)  # a view: the row is contiguous
        self.tcp_mat_T: np.ndarray = self.tcp_mat.T


def _block(array: np.ndarray, index: slice | np.ndarray) -> np.ndarray | None:
    """`array[index]` as a view when `index` is a slice, else None (a gather is a copy, not a view)."""
    return array[index] if isinstance(index, slice) else None


def _as_slice(index: np.ndarray) -> slice | np.ndarray:
    """`index` as a slice when it is a contiguous ascending run, else unchanged."""
    if len(index) and bool(np.all(np.diff(index) == 1)):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _has_ancestor(model: mujoco.MjModel, body: int, root: int) -> bool:
    while body > 0:
        if body == root:
            return True
        body = model.body_parentid[body]
    return body == root
