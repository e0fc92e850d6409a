"""Read what a demonstration needs out of one ROS 2 bag (rosbags, pure Python; MCAP or sqlite3).

`read_bag` returns a `BagContents`: per joint-state topic the time series of every joint it
carries, object poses (geometry_msgs/PoseStamped, in their header's frame), the tf2 tree of
/tf and /tf_static, and decoded camera frames (sensor_msgs/Image and CompressedImage, the
latter decoded with OpenCV; resized when asked). Times are seconds from the bag's start
(message header stamps; the receive time when a stamp is zero). Any unreadable bag or message
is a `BagImportError` that names the file, and the topic when one is at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demos.bag_poses import TfTree
from demos.errors import BagImportError

__all__ = ["BagContents", "JointSeries", "camera_key", "read_bag"]

JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
TF_TOPICS = ("/tf", "/tf_static")
OBJECT_POSE_TOPIC = re.compile(r"^/objects/(?P<name>[A-Za-z0-9_]+)/pose$")  # /objects/<name>/pose
OBJECT_FRAME = re.compile(r"^objects?[/_](?P<name>[A-Za-z0-9_]+)$")  # tf frames object_<name> or objects/<name>
_TOPIC_NOISE = {"image_raw", "image", "image_rect", "image_rect_color", "image_color", "compressed", "color", "rgb"}


@dataclass
class JointSeries:
    """One joint's samples on one topic: times (s), positions, velocities (NaN where none was published)."""

    times: np.ndarray
    position: np.ndarray
    velocity: np.ndarray


@dataclass
class BagContents:
    """What `read_bag` found (see the module docstring)."""

    path: Path
    storage: str
    start_ns: int  # the bag's start time: every time below is seconds since it
    listing: str  # "topic [type], ..." for error messages
    joints: dict[str, dict[str, JointSeries]] = field(default_factory=dict)  # topic -> joint -> series
    poses: dict[str, tuple[str, str, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)  # name -> (topic, frame, t, pos, quat wxyz)
    tf: TfTree = field(default_factory=TfTree)
    tf_objects: dict[str, str] = field(default_factory=dict)  # object name -> tf frame
    images: dict[str, tuple[str, np.ndarray, list[np.ndarray]]] = field(default_factory=dict)  # camera -> (topic, t, frames)


def camera_key(topic: str, taken: set[str]) -> str:
    """A camera name for an image topic (/camera/front/image_raw -> camera_front), unique within `taken`."""
    parts = [p for p in topic.split("/") if p and p not in _TOPIC_NOISE]
    base = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts)) or "camera"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _stamp(msg: Any, fallback_ns: int) -> int:
    """Message time in integer nanoseconds (float seconds since 1970 lose ~0.2 us)."""
    header = getattr(msg, "header", None)
    if header is not None:
        ns = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
        if ns > 0:
            return ns
    return int(fallback_ns)


def decode_image(msg: Any, topic: str, msgtype: str, size: int | None) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an Image / CompressedImage message, resized to size x size when given."""
    import cv2

    if msgtype == COMPRESSED_IMAGE:
        img = cv2.imdecode(np.frombuffer(bytes(msg.data), dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise BagImportError(f"topic {topic}: cannot decode CompressedImage (format {msg.format!r})")
        img = img[:, :, ::-1]
    else:
        enc = str(msg.encoding).lower()
        channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3}
        if enc not in channels:
            raise BagImportError(f"topic {topic}: unsupported image encoding {msg.encoding!r}; supported: {', '.join(channels)}")
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
    if size is not None and img.shape[:2] != (size, size):
        img = cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def _pose_of(p: Any) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([p.position.x, p.position.y, p.position.z], dtype=np.float64),
            np.array([p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z], dtype=np.float64))  # fmt: skip


def _transform_of(t: Any) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([t.translation.x, t.translation.y, t.translation.z], dtype=np.float64),
            np.array([t.rotation.w, t.rotation.x, t.rotation.y, t.rotation.z], dtype=np.float64))  # fmt: skip


def _open(bag: Path):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    if not bag.exists():
        raise FileNotFoundError(f"{bag}: no such ROS 2 bag")
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as exc:  # rosbags raises several unrelated error types for unreadable bags
        raise BagImportError(f"{bag}: cannot read as a ROS 2 bag (MCAP or sqlite3): {exc}") from None
    return reader


def read_bag(
    bag: Path,
    joint_topics: Sequence[str],
    image_topics: Mapping[str, str] | None = None,
    *,
    pose_topics: Mapping[str, str] | None = None,
    tf_frames: Mapping[str, str] | None = None,
    image_size: int | None = None,
    expect: str = "",
) -> BagContents:
    """Read `bag` (see the module docstring).

    joint_topics: JointState topics, each required. image_topics: {topic: camera}, each
    required; None: every Image/CompressedImage topic. pose_topics: {PoseStamped topic: object},
    None: every /objects/<name>/pose. tf_frames: {tf frame: object}, None: frames named
    object_<name> or objects/<name>. expect: what asked for the joint topics (for errors).
    """
    bag = Path(bag)
    storage = "mcap" if bag.suffix == ".mcap" or (bag.is_dir() and any(bag.glob("*.mcap"))) else "sqlite3"
    reader = _open(bag)
    try:
        by_topic: dict[str, str] = {c.topic: c.msgtype for c in reader.connections}
        listing = ", ".join(f"{t} [{m}]" for t, m in sorted(by_topic.items())) or "none"
        out = BagContents(bag, storage, int(reader.start_time), listing)
        for topic in joint_topics:
            if by_topic.get(topic) != JOINT_STATE:
                raise BagImportError(f"{bag}: no {JOINT_STATE} messages on {topic}{expect}; topics in the bag: {listing}")
        auto_images = image_topics is None
        if image_topics is None:
            taken: set[str] = set()
            image_topics = {t: camera_key(t, taken) for t, m in sorted(by_topic.items()) if m in (IMAGE, COMPRESSED_IMAGE)}
        for topic in image_topics:
            if by_topic.get(topic) not in (IMAGE, COMPRESSED_IMAGE):
                raise BagImportError(f"{bag}: no Image/CompressedImage messages on {topic}; topics in the bag: {listing}")
        if pose_topics is None:
            pose_topics = {t: m.group("name") for t in by_topic if (m := OBJECT_POSE_TOPIC.match(t)) and by_topic[t] == POSE_STAMPED}
        for topic in pose_topics:
            if by_topic.get(topic) != POSE_STAMPED:
                raise BagImportError(f"{bag}: no {POSE_STAMPED} messages on {topic}; topics in the bag: {listing}")
        tf_topics = [t for t in TF_TOPICS if by_topic.get(t) == TF_MESSAGE]
        wanted = set(joint_topics) | set(image_topics) | set(pose_topics) | set(tf_topics)
        conns = [c for c in reader.connections if c.topic in wanted]
        raw_joints: dict[str, dict[tuple[str, ...], tuple[list[int], list[Any], list[Any]]]] = {t: {} for t in joint_topics}
        raw_poses: dict[str, tuple[list[int], list[np.ndarray], list[np.ndarray], set[str]]] = {t: ([], [], [], set()) for t in pose_topics}
        raw_images: dict[str, tuple[list[int], list[np.ndarray]]] = {t: ([], []) for t in image_topics}
        start = out.start_ns
        topic = ""
        try:
            for conn, ts_ns, raw in reader.messages(connections=conns):
                topic = conn.topic
                msg = reader.deserialize(raw, conn.msgtype)
                if conn.msgtype == JOINT_STATE:
                    if len(msg.position) != len(msg.name):
                        continue  # a message without positions (effort only) carries nothing we use
                    groups = raw_joints[topic].setdefault(tuple(msg.name), ([], [], []))
                    groups[0].append(_stamp(msg, ts_ns))
                    groups[1].append(msg.position)
                    groups[2].append(msg.velocity if len(msg.velocity) == len(msg.name) else None)
                elif conn.msgtype == TF_MESSAGE:
                    for tr in msg.transforms:
                        p, q = _transform_of(tr.transform)
                        out.tf.add(tr.header.frame_id, tr.child_frame_id, (_stamp(tr, ts_ns) - start) * 1e-9, p, q,
                                   topic == "/tf_static", f"{bag}: {topic}")  # fmt: skip
                elif conn.msgtype == POSE_STAMPED:
                    series = raw_poses[topic]
                    p, q = _pose_of(msg.pose)
                    series[0].append(_stamp(msg, ts_ns))
                    series[1].append(p)
                    series[2].append(q)
                    series[3].add(str(msg.header.frame_id))
                else:
                    series_i = raw_images[topic]
                    series_i[0].append(_stamp(msg, ts_ns))
                    series_i[1].append(decode_image(msg, topic, conn.msgtype, image_size))
        except BagImportError as exc:
            raise BagImportError(f"{bag}: {exc}") from None
        except Exception as exc:
            raise BagImportError(f"{bag}: cannot read messages{f' on {topic}' if topic else ''} (truncated or corrupt bag?): {exc}") from None
    finally:
        reader.close()

    for topic, groups in raw_joints.items():
        per_joint: dict[str, tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = {}
        for names, (times, pos, vel) in groups.items():
            t = (np.asarray(times, dtype=np.int64) - start) * 1e-9
            p = np.asarray(pos, dtype=np.float64).reshape(len(times), len(names))
            v = np.asarray([np.full(len(names), np.nan) if x is None else x for x in vel], dtype=np.float64).reshape(p.shape)
            for j, name in enumerate(names):
                acc = per_joint.setdefault(name, ([], [], []))
                acc[0].append(t)
                acc[1].append(p[:, j])
                acc[2].append(v[:, j])
        out.joints[topic] = {name: _sorted_series(*(np.concatenate(a) for a in acc)) for name, acc in per_joint.items()}
        if not out.joints[topic]:
            raise BagImportError(f"{bag}: {topic} has no JointState message with positions")
    for topic, (times, pos, quat, frames) in raw_poses.items():
        if len(frames) > 1:
            raise BagImportError(f"{bag}: {topic} changes frame_id within the bag: {sorted(frames)}")
        if times:
            s = _sorted_series(np.asarray(times, dtype=np.int64), np.arange(len(times)), np.zeros(len(times)), start)
            idx = s.position.astype(np.int64)
            out.poses[pose_topics[topic]] = (topic, next(iter(frames)).lstrip("/"), s.times, np.asarray(pos)[idx], np.asarray(quat)[idx])
    if tf_frames is None:
        tf_frames = {f: m.group("name") for f in out.tf.frames() if (m := OBJECT_FRAME.match(f))}
    out.tf_objects = {name: frame.lstrip("/") for frame, name in tf_frames.items()}
    for topic, (times, frames) in raw_images.items():
        if not frames:
            if auto_images:
                continue  # auto-detected topics that carried no frame are skipped, asked-for ones are errors
            raise BagImportError(f"{bag}: {topic} has no frames")
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise BagImportError(f"{bag}: {topic} changes frame size within the bag: {sorted(shapes)} (pass an image size to resize)")
        t = (np.asarray(times, dtype=np.int64) - start) * 1e-9
        order = np.argsort(t, kind="stable")
        out.images[image_topics[topic]] = (topic, t[order], [frames[i] for i in order])
    return out


def _sorted_series(times: np.ndarray, pos: np.ndarray, vel: np.ndarray, start_ns: int | None = None) -> JointSeries:
    """Sorted by time, duplicate stamps dropped (the first kept); int ns -> seconds when start_ns is given."""
    t = (times - start_ns) * 1e-9 if start_ns is not None else np.asarray(times, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, pos, vel = t[order], pos[order], vel[order]
    keep = np.concatenate(([True], np.diff(t) > 0))
    return JointSeries(t[keep], pos[keep], vel[keep])
