"""The observation vector, built in one place for sim and robot alike.

`ObservationBuilder.build(data)` reads only joint positions/velocities, object free-joint
poses/velocities and the kinematics derived from them. The ROS bridge fills a scratch
MjData from /joint_states and object poses, calls `refresh_kinematics`, then `build`, so
a policy sees on the robot exactly the vector it was trained on.

Two layouts (names -> slices in `layout`), Fetch-like, chosen per env (`obs_layout`):

- "joint" (the default): tcp_pos(3) gripper_width(1) tcp_vel(3) gripper_vel(1)
  joint_pos(n_arm: 7 on the Panda, 6 on the UR5e);
- "tcp", robot-independent (no joint angles; the same names and sizes on every robot, so a
  skill trained on one arm reads the same vector on another): tcp_pos(3) gripper_width(1)
  tcp_vel(3) gripper_vel(1) tcp_rot(6: the first two columns of the TCP rotation matrix, a
  continuous encoding) tcp_angvel(3);

then in both, per object o: o_pos(3) o_rel_pos(3: o_pos - tcp_pos) o_quat(4, w >= 0)
o_linvel(3) o_angvel(3). The gripper width and its rate come through the robot
description's width map. All positions are in the table's (world) frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from envs.robot import ARM_JOINT_NAMES, Robot


OBS_LAYOUTS: tuple[str, ...] = ("joint", "tcp")
_COMMON_FIELDS = (("tcp_pos", 3), ("gripper_width", 1), ("tcp_vel", 3), ("gripper_vel", 1))
TCP_FIELDS: tuple[tuple[str, int], ...] = _COMMON_FIELDS + (("tcp_rot", 6), ("tcp_angvel", 3))


def robot_fields(n_arm: int, obs_layout: str = "joint") -> tuple[tuple[str, int], ...]:
    """The robot part of a layout: with `n_arm` joint angles ("joint") or robot-independent ("tcp")."""
    if obs_layout not in OBS_LAYOUTS:
        raise ValueError(f"obs_layout must be one of {list(OBS_LAYOUTS)}, got {obs_layout!r}")
    return _COMMON_FIELDS + (("joint_pos", n_arm),) if obs_layout == "joint" else TCP_FIELDS


ROBOT_FIELDS: tuple[tuple[str, int], ...] = robot_fields(len(ARM_JOINT_NAMES))  # the default robot's joint layout
# The first two columns of a row-major 3x3 rotation matrix, column by column.
_ROT6 = np.array([0, 3, 6, 1, 4, 7])
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

    def __init__(self, model: mujoco.MjModel, objects: Sequence[str], robot: Robot | None = None, obs_layout: str = "joint"):
        self.model = model
        self.robot = robot or Robot.from_model(model)
        self.objects = tuple(objects)
        self.obs_layout = obs_layout
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
        fields = list(robot_fields(self.robot.n_arm, obs_layout)) + [(f"{o}_{f}", n) for o in self.objects for f, n in OBJECT_FIELDS]
        for name, size in fields:
            self.layout[name] = slice(offset, offset + size)
            offset += size
        self.size = offset
        self._robot_size = sum(n for _, n in robot_fields(self.robot.n_arm, obs_layout))
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv)) if obs_layout == "tcp" else None
        self._obj_index = {name: i for i, name in enumerate(self.objects)}
        # Every cube's free joint read at once: (n_objects, 7) qpos and (n_objects, 6) qvel, as
        # views when the joints follow each other in the objects' order (as in our scenes).
        n = len(self.objects)
        self._obj_q = _rows(np.array(self._obj_qpos, dtype=np.int64), 7)
        self._obj_v = _rows(np.array(self._obj_dof, dtype=np.int64), 6)
        self._n_objects = n
        self._arm_qpos_ix, self._site = self.robot.arm_qpos_ix, self.robot.tcp_site
        self._finger_qpos_ix, self._finger_dof_ix = self.robot.finger_qpos_ix, self.robot.finger_dof_ix
        self._width_weights, self._width_offset = self.robot._width_weights, self.robot._width_offset
        # A +0.0 offset changes no joint position (x - 0.0 is x in IEEE arithmetic, -0.0 and NaN
        # included; not so for -0.0), so `build` skips that subtraction, a numpy call, for such
        # robots (both shipped ones).
        self._width_offset_zero = not (self._width_offset.any() or np.signbit(self._width_offset).any())
        self._init_scratch()

    def _init_scratch(self) -> None:
        """The buffer `build` fills, in the order the sources come in, and the permutation to the layout.

        Numpy's cost per call (~0.2-1 us) dwarfs the arithmetic on these few numbers, so `build`
        writes each source in one operation into a fixed buffer through views made here: the robot
        part (already in layout order), the cubes' free-joint positions (n, 7) and velocities (n, 6)
        as they lie in qpos/qvel, and their positions relative to the TCP (n, 3); one gather then
        puts everything in layout order (and is the fresh array the caller keeps).
        """
        n, r = self._n_objects, self._robot_size
        buf = self._scratch = np.zeros(r + 16 * n)
        q0, v0, rel0 = r, r + 7 * n, r + 13 * n
        self._s_tcp, self._s_vel, self._s_robot_tail = buf[0:3], buf[4:7], buf[8:r]
        self._s_q = buf[q0:v0].reshape(n, 7)  # each cube's free joint: pos(3) quat(4)
        self._s_v = buf[v0:rel0].reshape(n, 6)  # linvel(3) angvel(3)
        # Where qpos[_obj_q] / qvel[_obj_v] go: flat when those reads are slices (flat), else (n, 7) / (n, 6).
        self._s_q_dst = buf[q0:v0] if isinstance(self._obj_q, slice) else self._s_q
        self._s_v_dst = buf[v0:rel0] if isinstance(self._obj_v, slice) else self._s_v
        self._s_rel = buf[rel0:].reshape(n, 3)
        self._s_pos = self._s_q[:, :3]
        self._s_w = self._s_q[:, 3]  # quaternion w of each cube
        perm = list(range(r))
        for j in range(n):
            q, v, rel = q0 + 7 * j, v0 + 6 * j, rel0 + 3 * j
            perm += [q, q + 1, q + 2, rel, rel + 1, rel + 2, q + 3, q + 4, q + 5, q + 6, *range(v, v + 6)]  # OBJECT_FIELDS
        self._perm = np.array(perm, dtype=np.intp)
        assert len(perm) == self.size
        # Without cubes the buffer is already in layout order: a copy gives the same array as the gather.
        self._perm_identity = perm == list(range(self.size))

    def object_pos(self, data: mujoco.MjData, name: str) -> np.ndarray:
        """World position of a cube (from its free joint, exact at the current state)."""
        adr = self._obj_qpos[self._obj_index[name]]
        return data.qpos[adr : adr + 3]

    def object_qpos_range(self, name: str) -> np.ndarray:
        """The three qpos addresses of a cube's position."""
        adr = self._obj_qpos[self.objects.index(name)]
        return np.arange(adr, adr + 3)

    def build(self, data: mujoco.MjData) -> np.ndarray:
        """Observation at the current state; kinematics must be current (see refresh_kinematics).

        Returns a new array (the scratch buffer behind it is reused).
        """
        views = self.robot.views(data)
        qpos, qvel, tcp = views.qpos, views.qvel, views.tcp_pos
        buf = self._scratch
        self._s_tcp[...] = tcp
        # The gripper width and its rate through the description's width map, as Robot.gripper_width
        # and gripper_width_rate compute them (`a.dot(b)` is `a @ b`, without the ufunc dispatch).
        finger_q = views.finger_q if views.finger_q is not None else qpos[self._finger_qpos_ix]
        buf[3] = self._width_weights.dot(finger_q if self._width_offset_zero else finger_q - self._width_offset)
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self._site)
        self._jacp.dot(qvel, out=self._s_vel)
        buf[7] = self._width_weights.dot(views.finger_qd if views.finger_qd is not None else qvel[self._finger_dof_ix])
        if self._jacr is None:
            self._s_robot_tail[...] = views.arm_q if views.arm_q is not None else qpos[self._arm_qpos_ix]
        else:
            buf[8:14] = views.tcp_xmat[_ROT6]
            self._jacr.dot(qvel, out=buf[14:17])
        if self._n_objects:
            self._s_q_dst[...] = qpos[self._obj_q]
            self._s_v_dst[...] = qvel[self._obj_v]
            np.subtract(self._s_pos, tcp, out=self._s_rel)
            for j, w in enumerate(self._s_w.tolist()):
                if not w >= 0:  # the hemisphere w >= 0 (a NaN flips too, as `quat if w >= 0 else -quat` did)
                    self._s_q[j, 3:7] = -self._s_q[j, 3:7]
        return buf.copy() if self._perm_identity else buf[self._perm]


def _rows(addresses: np.ndarray, width: int) -> slice | np.ndarray:
    """Index of `len(addresses)` blocks of `width` starting at `addresses`: one slice when they
    follow each other (the read is then a view), else a (n, width) index array."""
    n = len(addresses)
    if n and bool(np.all(addresses == addresses[0] + width * np.arange(n))):
        return slice(int(addresses[0]), int(addresses[0]) + width * n)
    return addresses[:, None] + np.arange(width)

