"""Write a franka_ros2-style ROS 2 bag with known content (what the bag tests and `bench demos` import).

`write_franka_bag` writes a real rosbag2 (rosbags' writer; sqlite3 or MCAP) as a Franka
Research 3 under franka_ros2 records it: the arm's joint states (fr3_joint1..7, positions and
velocities) on /franka/joint_states at 1 kHz, the gripper's (fr3_finger_joint1/2, each finger at
half the width, no velocities) on /fr3_gripper/joint_states at 50 Hz, an object pose as
geometry_msgs/PoseStamped on /objects/red/pose (in the profile's camera frame), another object
as a tf2 frame object_blue under a static `table` frame (/tf at 30 Hz, /tf_static), and a JPEG
sensor_msgs/CompressedImage camera at 30 Hz. The motion is a closed-form function of time
(`FrankaMotion`), so an import can be checked against it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FrankaMotion", "write_franka_bag"]

T0_NS = 1_700_000_000 * 10**9  # stamps are integer nanoseconds, as in ROS
ARM_NAMES = tuple(f"fr3_joint{i}" for i in range(1, 8))
FINGER_NAMES = ("fr3_finger_joint1", "fr3_finger_joint2")
TABLE_IN_BASE = (np.array([0.3, 0.0, 0.0]), np.array([np.cos(np.pi / 8), 0.0, 0.0, np.sin(np.pi / 8)]))  # 45 deg about z


@dataclass(frozen=True)
class FrankaMotion:
    """The recorded motion as functions of time t (s since the bag's start)."""

    seconds: float
    q0: tuple[float, ...] = (0.0, 0.2, 0.0, -2.2, 0.0, 2.4, 0.785)

    def arm(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arm positions and velocities (N, 7): a slow sine per joint."""
        t = np.asarray(t, dtype=np.float64)[:, None]
        w = 2 * np.pi / np.array([4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
        a = np.array([0.3, 0.2, 0.3, 0.2, 0.3, 0.2, 0.3])
        return np.asarray(self.q0) + a * np.sin(w * t), a * w * np.cos(w * t)

    def width(self, t: np.ndarray) -> np.ndarray:
        """Gripper opening (m): linear from 0.08 to 0.02 over the bag (interpolation is exact)."""
        return 0.08 - 0.06 * np.asarray(t, dtype=np.float64) / self.seconds

    def red(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The red cube in the base frame: a line across the table, turning about z at a constant rate."""
        t = np.asarray(t, dtype=np.float64)
        pos = np.stack([0.5 + 0.1 * t / self.seconds, -0.1 + 0.2 * t / self.seconds, np.full_like(t, 0.02)], axis=1)
        half = 0.5 * 0.4 * t  # 0.4 rad/s
        return pos, np.stack([np.cos(half), np.zeros_like(t), np.zeros_like(t), np.sin(half)], axis=1)

    def blue_in_table(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The blue cube in the `table` frame: a line, fixed orientation."""
        t = np.asarray(t, dtype=np.float64)
        pos = np.stack([0.2 - 0.1 * t / self.seconds, 0.1 * t / self.seconds, np.full_like(t, 0.02)], axis=1)
        return pos, np.tile([1.0, 0.0, 0.0, 0.0], (len(t), 1))

    def frame_value(self, k: np.ndarray) -> np.ndarray:
        """The grey level of camera frame k (frames count up in steps of 8, mod 256)."""
        return (8 * np.asarray(k)) % 256


def write_franka_bag(
    path: str | Path,
    seconds: float = 2.0,
    *,
    storage: str = "sqlite3",
    arm_hz: float = 1000.0,
    gripper_hz: float = 50.0,
    camera_hz: float = 30.0,
    image_shape: tuple[int, int] = (48, 64),
    arm_names: tuple[str, ...] = ARM_NAMES,
    camera_frame: str = "camera_color_optical_frame",
    camera_in_base: tuple[np.ndarray, np.ndarray] | None = None,
    with_joints: bool = True,
    gripper_nan_at_s: float | None = None,
) -> FrankaMotion:
    """Write the bag (see the module docstring) and return its motion.

    camera_in_base: the pose of `camera_frame` in the base frame (translation, quaternion wxyz),
    default the fr3 profile's; the red cube's PoseStamped is expressed in that frame.
    gripper_nan_at_s: publish NaN finger positions from then on (a broken driver, for bad-input tests).
    """
    import cv2
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from demos.bag_poses import quat_conj, quat_mul, quat_rotate

    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    JointState, Header, Time = T["sensor_msgs/msg/JointState"], T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    PoseStamped, Pose, Point, Quat = T["geometry_msgs/msg/PoseStamped"], T["geometry_msgs/msg/Pose"], T["geometry_msgs/msg/Point"], T["geometry_msgs/msg/Quaternion"]
    TFMessage, TransformStamped, Transform, Vector3 = (T["tf2_msgs/msg/TFMessage"], T["geometry_msgs/msg/TransformStamped"],
                                                       T["geometry_msgs/msg/Transform"], T["geometry_msgs/msg/Vector3"])  # fmt: skip
    CompressedImage = T["sensor_msgs/msg/CompressedImage"]
    motion = FrankaMotion(float(seconds))
    if camera_in_base is None:
        from demos.bag_profile import load_bag_profile

        camera_in_base = load_bag_profile("fr3").frames[camera_frame]
    cam_t, cam_q = camera_in_base
    empty = np.array([], dtype=np.float64)

    def header(ns: int, frame: str = "") -> object:
        return Header(stamp=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id=frame)

    def transform(ns: int, parent: str, child: str, p: np.ndarray, q: np.ndarray) -> object:
        return TransformStamped(header=header(ns, parent), child_frame_id=child, transform=Transform(
            translation=Vector3(x=p[0], y=p[1], z=p[2]), rotation=Quat(x=q[1], y=q[2], z=q[3], w=q[0])))  # fmt: skip

    def stamps(hz: float) -> np.ndarray:
        return T0_NS + np.round(np.arange(int(np.floor(seconds * hz + 1e-9)) + 1) * (1e9 / hz)).astype(np.int64)

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    events: list[tuple[int, int, object, str]] = []  # (stamp, order, message, type), written in time order
    if with_joints:
        arm_ns = stamps(arm_hz)
        q, qd = motion.arm((arm_ns - T0_NS) * 1e-9)
        for k, ns in enumerate(arm_ns):
            events.append((int(ns), 0, JointState(header=header(int(ns)), name=list(arm_names), position=q[k], velocity=qd[k], effort=empty), "arm"))
        grip_ns = stamps(gripper_hz) + 300_000  # the gripper's clock is its own
        width = motion.width((grip_ns - T0_NS) * 1e-9)
        if gripper_nan_at_s is not None:
            width[(grip_ns - T0_NS) * 1e-9 >= gripper_nan_at_s] = np.nan
        for ns, w in zip(grip_ns, width):
            events.append((int(ns), 1, JointState(header=header(int(ns)), name=list(FINGER_NAMES), position=np.array([w / 2, w / 2]),
                                                  velocity=empty, effort=empty), "gripper"))  # fmt: skip
    pose_ns = stamps(camera_hz) + 1_000_000
    red_p, red_q = motion.red((pose_ns - T0_NS) * 1e-9)
    inv = quat_conj(cam_q)
    red_cam_p, red_cam_q = quat_rotate(inv, red_p - cam_t), quat_mul(inv, red_q)  # what the camera reports
    blue_p, blue_q = motion.blue_in_table((pose_ns - T0_NS) * 1e-9)
    for k, ns in enumerate(pose_ns):
        p, qq = red_cam_p[k], red_cam_q[k]
        pose = Pose(position=Point(x=p[0], y=p[1], z=p[2]), orientation=Quat(x=qq[1], y=qq[2], z=qq[3], w=qq[0]))
        events.append((int(ns), 2, PoseStamped(header=header(int(ns), camera_frame), pose=pose), "red"))
        events.append((int(ns), 3, TFMessage(transforms=[transform(int(ns), "table", "object_blue", blue_p[k], blue_q[k])]), "tf"))
    h, w = image_shape
    for k, ns in enumerate(stamps(camera_hz)):
        _, jpg = cv2.imencode(".jpg", np.full((h, w, 3), int(motion.frame_value(k)), np.uint8))
        events.append((int(ns), 4, CompressedImage(header=header(int(ns), camera_frame), format="jpeg", data=jpg.reshape(-1)), "image"))
    events.sort(key=lambda e: (e[0], e[1]))
    with Writer(Path(path), version=9, storage_plugin=plugin) as writer:
        conns = {}
        for key, topic, msgtype in (
            ("arm", "/franka/joint_states", "sensor_msgs/msg/JointState"),
            ("gripper", "/fr3_gripper/joint_states", "sensor_msgs/msg/JointState"),
            ("red", "/objects/red/pose", "geometry_msgs/msg/PoseStamped"),
            ("tf", "/tf", "tf2_msgs/msg/TFMessage"),
            ("tf_static", "/tf_static", "tf2_msgs/msg/TFMessage"),
            ("image", "/camera/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
        ):
            if with_joints or key not in ("arm", "gripper"):
                conns[key] = (writer.add_connection(topic, msgtype, typestore=ts), msgtype)
        static = TFMessage(transforms=[transform(T0_NS, "fr3_link0", "table", *TABLE_IN_BASE)])
        writer.write(conns["tf_static"][0], T0_NS, ts.serialize_cdr(static, "tf2_msgs/msg/TFMessage"))
        for ns, _, msg, key in events:
            conn, msgtype = conns[key]
            writer.write(conn, ns, ts.serialize_cdr(msg, msgtype))
    return motion
