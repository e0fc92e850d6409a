"""Import real-robot recordings (ROS 2 bags) into the demonstration layout.

A bag (a rosbag2 folder with metadata.yaml, or a bare `.mcap` / `.db3` file; MCAP and
sqlite3 storage) is read with the pure-Python `rosbags` library, so no ROS install is
needed. What is read:

- `sensor_msgs/msg/JointState` on `/joint_states`: joints are matched to the Panda's by
  name (exactly as its robot description names them, `skillstack robots`, else by suffix
  such as `fr3_joint3` -> joint 3, else an explicit `joint_map`). Each joint keeps its own time
  series, so arm and gripper may come from different publishers.
- optionally `sensor_msgs/msg/Image` (rgb8/bgr8/rgba8/bgra8/mono8) or
  `sensor_msgs/msg/CompressedImage` topics, all Image topics by default.

Message time is the header stamp, or the bag's receive time when the stamp is zero.
Everything is resampled onto one grid at the control rate (25 Hz by default, the envs'
rate): joint positions and velocities by linear interpolation (velocities by finite
differences when the bag has none), images by the latest frame at or before each tick.

Each bag becomes one demo with T = ticks - 1 samples, no `states` (a real robot has no
simulator state) and these observations (obs = ticks 0..T-1, next_obs = ticks 1..T):
`joint_pos` (9: arm then fingers), `joint_vel` (9), `robot_state` (the robot part of
the env observation, built by `envs.observation.ObservationBuilder` from the joints:
tcp_pos, gripper_width, tcp_vel, gripper_vel, joint_pos) and `<camera>_image` frames.
`actions` are what the env's joint action mode (`action_mode="joint"`) would have
commanded: per-tick joint steps as a fraction of the max joint step, and the gripper
command that targets the next finger width; `rewards` are 0.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demos.errors import BagImportError
from demos.format import IMAGE_SUFFIX, Episode, make_env_args
from demos.writer import DemoWriter

__all__ = ["REAL_ROBOT_ENV", "BagImportResult", "import_bag", "match_joints"]

REAL_ROBOT_ENV = "real/panda"  # env_name stored when no --env is given
JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
_TOPIC_NOISE = {"image_raw", "image", "image_rect", "image_rect_color", "image_color", "compressed", "color", "rgb"}


@dataclass
class BagImportResult:
    """What `import_bag` wrote."""

    path: Path
    demos: list[str] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)


def match_joints(
    bag_names: Sequence[str],
    panda_names: Sequence[str],
    joint_map: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map Panda joint names to bag joint names: explicit map, exact name, then name suffix.

    Returns {panda_name: bag_name} for every Panda joint that could be matched.
    """
    found: dict[str, str] = {}
    if joint_map:
        for bag_name, panda_name in joint_map.items():
            if panda_name not in panda_names:
                raise BagImportError(f"joint_map targets unknown joint {panda_name!r}; Panda joints: {list(panda_names)}")
            if bag_name in bag_names:
                found[panda_name] = bag_name
    for p in panda_names:
        if p not in found and p in bag_names:
            found[p] = p
    for p in panda_names:
        if p in found:
            continue
        finger = "finger" in p
        k = re.search(r"(\d+)$", p)
        if k is None:
            continue
        pat = re.compile(rf"(^|[_/]){'finger_' if finger else ''}joint_?{k.group(1)}$")
        cands = [b for b in bag_names if pat.search(b) and (("finger" in b) == finger) and b not in found.values()]
        if len(cands) == 1:
            found[p] = cands[0]
    return found


def _stamp(msg: Any, fallback_ns: int) -> int:
    """Message time in integer nanoseconds (float seconds since 1970 lose ~0.2 us)."""
    header = getattr(msg, "header", None)
    if header is not None:
        ns = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
        if ns > 0:
            return ns
    return int(fallback_ns)


def _decode_image(msg: Any, topic: str, msgtype: str) -> np.ndarray:
    import cv2

    if msgtype == COMPRESSED_IMAGE:
        img = cv2.imdecode(np.frombuffer(bytes(msg.data), dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise BagImportError(f"topic {topic}: cannot decode CompressedImage (format {msg.format!r})")
        return np.ascontiguousarray(img[:, :, ::-1])
    enc = str(msg.encoding).lower()
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3}
    if enc not in channels:
        raise BagImportError(
            f"topic {topic}: unsupported image encoding {msg.encoding!r}; supported: {', '.join(channels)}"
        )
    c = channels[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size < h * step or step < w * c:
        raise BagImportError(f"topic {topic}: image data has {data.size} bytes, expected {h}x{step}")
    img = data[: h * step].reshape(h, step)[:, : w * c].reshape(h, w, c)
    if c == 1:
        img = np.repeat(img, 3, axis=2)
    elif enc.startswith("bgr"):
        img = img[:, :, 2::-1]
    else:
        img = img[:, :, :3]
    return np.ascontiguousarray(img)


def _camera_key(topic: str, taken: set[str]) -> str:
    parts = [p for p in topic.split("/") if p and p not in _TOPIC_NOISE]
    base = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts)) or "camera"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _read_bag(
    bag: Path,
    joint_topic: str,
    image_topics: Mapping[str, str] | None,
) -> tuple[dict[str, tuple[list[int], list[float], list[float]]], dict[str, tuple[list[int], list[np.ndarray]]], str]:
    """Joint series {bag joint: (times, positions, velocities)} and images {camera: (times, frames)}."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    if not bag.exists():
        raise FileNotFoundError(f"{bag}: no such ROS 2 bag")
    storage = "mcap" if bag.suffix == ".mcap" or any(bag.glob("*.mcap")) else "sqlite3"
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except FileNotFoundError:
        raise
    except Exception as exc:  # rosbags raises several unrelated error types for unreadable bags
        raise BagImportError(f"{bag}: cannot read as a ROS 2 bag (MCAP or sqlite3): {exc}") from None
    try:
        by_topic: dict[str, list[Any]] = {}
        for c in reader.connections:
            by_topic.setdefault(c.topic, []).append(c)
        listing = ", ".join(f"{t} [{cs[0].msgtype}]" for t, cs in sorted(by_topic.items())) or "none"
        joint_conns = [c for c in by_topic.get(joint_topic, []) if c.msgtype == JOINT_STATE]
        if not joint_conns:
            raise BagImportError(f"{bag}: no {JOINT_STATE} messages on {joint_topic}; topics in the bag: {listing}")
        auto = image_topics is None
        if image_topics is None:
            taken: set[str] = set()
            image_topics = {
                t: _camera_key(t, taken)
                for t, cs in sorted(by_topic.items())
                if cs[0].msgtype in (IMAGE, COMPRESSED_IMAGE)
            }
        image_conns = []
        for topic in image_topics:
            cs = [c for c in by_topic.get(topic, []) if c.msgtype in (IMAGE, COMPRESSED_IMAGE)]
            if not cs:
                raise BagImportError(f"{bag}: no Image/CompressedImage messages on {topic}; topics in the bag: {listing}")
            image_conns += cs
        joints: dict[str, tuple[list[int], list[float], list[float]]] = {}
        images: dict[str, tuple[list[int], list[np.ndarray]]] = {image_topics[t]: ([], []) for t in image_topics}
        try:
            for conn, ts_ns, raw in reader.messages(connections=joint_conns + image_conns):
                msg = reader.deserialize(raw, conn.msgtype)
                t = _stamp(msg, ts_ns)
                if conn.msgtype == JOINT_STATE:
                    pos, vel = list(msg.position), list(msg.velocity)
                    if len(pos) != len(msg.name):
                        continue  # a message without positions (effort only) carries nothing we use
                    for i, name in enumerate(msg.name):
                        series = joints.setdefault(str(name), ([], [], []))
                        series[0].append(t)
                        series[1].append(float(pos[i]))
                        series[2].append(float(vel[i]) if len(vel) == len(pos) else np.nan)
                else:
                    times, frames = images[image_topics[conn.topic]]
                    times.append(t)
                    frames.append(_decode_image(msg, conn.topic, conn.msgtype))
        except BagImportError:
            raise
        except Exception as exc:
            raise BagImportError(f"{bag}: cannot read messages (truncated or corrupt bag?): {exc}") from None
    finally:
        reader.close()
    if auto:  # auto-detected topics that carried no frame are skipped, asked-for ones are errors
        images = {cam: v for cam, v in images.items() if v[1]}
    return joints, images, storage


def _series(times: list[int], values: list[float], ref_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since ref_ns, values), sorted, duplicate stamps dropped."""
    t = (np.asarray(times, dtype=np.int64) - ref_ns) * 1e-9
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    keep = np.concatenate(([True], np.diff(t) > 0))  # drop duplicate stamps (keep the first)
    return t[keep], v[keep]


def _bag_episode(
    bag: Path,
    rate: float,
    joint_topic: str,
    image_topics: Mapping[str, str] | None,
    joint_map: Mapping[str, str] | None,
    model_file: str | None,
) -> tuple[Episode, list[str]]:
    import mujoco

    import sim_assets
    from envs.ik import IKConfig
    from envs.observation import ObservationBuilder, refresh_kinematics
    from envs.robot import ARM_JOINT_NAMES, FINGER_JOINT_NAMES, MAX_GRIPPER_WIDTH, PandaRobot

    joints, images, storage = _read_bag(bag, joint_topic, image_topics)
    panda_names = ARM_JOINT_NAMES + FINGER_JOINT_NAMES
    mapping = match_joints(list(joints), panda_names, joint_map)
    missing_arm = [n for n in ARM_JOINT_NAMES if n not in mapping]
    if missing_arm:
        raise BagImportError(
            f"{bag}: {joint_topic} lacks Panda arm joints {missing_arm}; joints in the bag: {sorted(joints)} "
            "(map them with joint_map / --joint-map BAG_NAME=PANDA_JOINT)"
        )
    missing = [n for n in FINGER_JOINT_NAMES if n not in mapping]
    ref_ns = min(joints[b][0][0] for b in mapping.values())
    series = {
        p: (_series(joints[b][0], joints[b][1], ref_ns), _series(joints[b][0], joints[b][2], ref_ns)[1])
        for p, b in mapping.items()
    }
    t0 = max(s[0][0][0] for s in series.values())
    t1 = min(s[0][0][-1] for s in series.values())
    dt = 1.0 / rate
    n_ticks = int(np.floor((t1 - t0) / dt + 1e-9)) + 1 if t1 >= t0 else 0
    if n_ticks < 2:
        raise BagImportError(
            f"{bag}: joint states span {max(t1 - t0, 0.0):.3f} s, too short for two ticks at {rate:g} Hz"
        )
    grid = t0 + dt * np.arange(n_ticks)
    q = np.zeros((n_ticks, 9))
    qd = np.zeros((n_ticks, 9))
    for j, name in enumerate(panda_names):
        if name not in series:
            continue
        (t, pos), vel = series[name]
        q[:, j] = np.interp(grid, t, pos)
        if np.all(np.isfinite(vel)):
            qd[:, j] = np.interp(grid, t, vel)
        else:
            qd[:, j] = np.gradient(q[:, j], dt)
    if len(missing) == 1:  # one finger published (mimic joint): the other mirrors it
        have = FINGER_JOINT_NAMES.index(next(n for n in FINGER_JOINT_NAMES if n in mapping))
        q[:, 7 + 1 - have], qd[:, 7 + 1 - have] = q[:, 7 + have], qd[:, 7 + have]
    elif len(missing) == 2:
        warnings.warn(f"{bag}: no finger joints on {joint_topic}; gripper width recorded as 0", stacklevel=3)

    # Robot part of the env observation, from the same builder the envs use.
    model = sim_assets.load_panda()
    data = mujoco.MjData(model)
    robot = PandaRobot.from_model(model)
    builder = ObservationBuilder(model, (), robot)
    robot_state = np.empty((n_ticks, builder.size))
    for k in range(n_ticks):
        data.qpos[robot.arm_qpos] = q[k, :7]
        data.qpos[robot.finger_qpos] = q[k, 7:]
        data.qvel[robot.arm_dof] = qd[k, :7]
        data.qvel[robot.finger_dof] = qd[k, 7:]
        refresh_kinematics(model, data)
        robot_state[k] = builder.build(data)

    # Joint-mode actions, as envs.base.PandaEnv._apply_action interprets them.
    max_step = IKConfig().velocity_scale * robot.qd_max * dt
    actions = np.empty((n_ticks - 1, 8))
    actions[:, :7] = np.clip((q[1:, :7] - q[:-1, :7]) / max_step, -1.0, 1.0)
    width = q[:, 7:].sum(axis=1)
    actions[:, 7] = np.clip(2.0 * width[1:] / MAX_GRIPPER_WIDTH - 1.0, -1.0, 1.0)

    ticks = {"joint_pos": q, "joint_vel": qd, "robot_state": robot_state}
    for cam, (times, frames) in images.items():
        if not frames:
            raise BagImportError(f"{bag}: camera {cam!r} has no frames")
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise BagImportError(f"{bag}: camera {cam!r} changes frame size within the bag: {sorted(shapes)}")
        ft = (np.asarray(times, dtype=np.int64) - ref_ns) * 1e-9
        order = np.argsort(ft, kind="stable")
        idx = np.clip(np.searchsorted(ft[order], grid, side="right") - 1, 0, len(frames) - 1)
        stack = np.stack(frames)[order]
        ticks[cam + IMAGE_SUFFIX] = stack[idx]
    n = n_ticks - 1
    dones = np.zeros(n, dtype=np.int64)
    dones[-1] = 1
    episode = Episode(
        actions=actions,
        rewards=np.zeros(n),
        dones=dones,
        obs={k: v[:-1] for k, v in ticks.items()},
        next_obs={k: v[1:] for k, v in ticks.items()},
        states=None,
        model_file=model_file,
        attrs={
            "source": "ros2_bag",
            "bag": str(bag),
            "storage": storage,
            "rate_hz": float(rate),
            "start_time": (ref_ns + round(t0 * 1e9)) * 1e-9,  # first tick, seconds since 1970
            "start_time_ns": int(ref_ns + round(t0 * 1e9)),
            "action_mode": "joint",
            "joint_names": {p: mapping[p] for p in panda_names if p in mapping},
            "missing_joints": missing,
        },
    )
    return episode, sorted(images)


def import_bag(
    bags: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    env_id: str | None = None,
    rate: float | None = None,
    joint_topic: str = "/joint_states",
    image_topics: Sequence[str] | Mapping[str, str] | None = None,
    joint_map: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> BagImportResult:
    """Convert ROS 2 bags (one demo each) into a demonstration file at `out`.

    env_id: the skillstack env the motion belongs to (stored in env_args with
    `action_mode="joint"`, and its MJCF as model_file); default `REAL_ROBOT_ENV`.
    rate: resampling rate in Hz (default: the envs' control rate, 25 Hz).
    image_topics: topics to import (list, or {topic: camera name}); default all Image topics.
    joint_map: {bag joint name: Panda joint name} for robots with other joint names.
    All bags are read and checked before anything is written; `out` is never
    overwritten unless overwrite=True.
    """
    from envs.base import PandaEnv

    if isinstance(bags, (str, Path)):
        bags = [bags]
    bag_paths = [Path(b) for b in bags]
    if not bag_paths:
        raise BagImportError("no bag given")
    out = Path(out)
    if out.exists() and not overwrite:
        from demos.errors import OutputExistsError

        raise OutputExistsError(f"{out}: already exists; pass --overwrite (overwrite=True) to replace it")
    rate = float(rate) if rate is not None else 1.0 / PandaEnv.control_dt
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    topics: dict[str, str] | None
    if image_topics is None:
        topics = None
    elif isinstance(image_topics, Mapping):
        topics = {str(k): str(v) for k, v in image_topics.items()}
    else:
        taken: set[str] = set()
        topics = {str(t): _camera_key(str(t), taken) for t in image_topics}
    model_file = None
    env_kwargs: dict[str, Any] = {}
    if env_id is not None:
        import envs

        env = envs.make(env_id, action_mode="joint")
        model_file = env.unwrapped.model_xml
        env.close()
        env_kwargs = {"action_mode": "joint"}
    else:
        import sim_assets

        model_file = sim_assets.panda_xml()
    episodes = []
    cameras: list[str] = []
    for bag in bag_paths:
        ep, cams = _bag_episode(bag, rate, joint_topic, topics, joint_map, model_file)
        episodes.append(ep)
        cameras = sorted(set(cameras) | set(cams))
    result = BagImportResult(path=out, cameras=cameras)
    env_args = make_env_args(env_id or REAL_ROBOT_ENV, env_kwargs)
    with DemoWriter(out, env_args, overwrite=overwrite, attrs={"source": "ros2_bag"}) as writer:
        for ep in episodes:
            result.demos.append(writer.add_episode(ep))
            result.samples.append(ep.num_samples)
    return result
