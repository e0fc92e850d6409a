"""perception: object poses from a camera's images, published where the skill executor reads them.

Subscribes a camera's sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8 or mono8) or CompressedImage
(jpeg/png, decoded with OpenCV) and its sensor_msgs/CameraInfo, detects the fiducial markers on
the objects (`perception.detector.MarkerPoseEstimator`: PnP per marker, several markers per
object fused), expresses each pose in the robot's base frame through the camera's calibration
(its pose in the base frame: the robot profile's ``cameras.<name>.calibration`` or the
`calibration` file), filters it over time (`perception.detector.PoseFilter`: smoothing, a jump
gate, the last pose kept with its age) and publishes geometry_msgs/PoseStamped on
``<object_pose_prefix>/<name>/pose`` stamped with the IMAGE's time, in the base frame.

Objects not seen in a frame keep their last pose: it is published again with the stamp of the
image it was last seen in, so its age shows (the executor holds on a pose older than
``safety.max_pose_age_s``). ~/status (std_msgs/String, JSON) says per object whether it was seen
in the last image, its age, markers fused and reprojection error, plus the camera's state.

Bad input gives a clear error and no pose: no CameraInfo yet (images are counted, not used); a
CameraInfo or image from another camera frame, or at another resolution than the calibration's
(a calibration for another camera); an image encoding it cannot read; an estimate in a frame that
is not the robot's base frame. With ``publish_timing``, ~/timing (Float64MultiArray) carries per
image [image_stamp, received, published, processing_s] (seconds, ROS time) for the benchmark.

Run: ``python -m ros_bridge.perception_node --ros-args -p profile:=fr3`` (``ros2 run ros_bridge perception``).
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from ros_bridge._ros import COMMAND_QOS, STATE_QOS, declare_params, run_node, stamp_s, to_stamp
from ros_bridge.perception_params import PerceptionParams

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402

__all__ = ["PerceptionNode", "decode_image", "main"]

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def decode_image(msg: Any, compressed: bool) -> np.ndarray:
    """An Image or CompressedImage message as an RGB (or grey) uint8 array; ValueError says why not."""
    import cv2

    if compressed:
        buf = np.frombuffer(msg.data, dtype=np.uint8)  # array.array: no copy
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
        if bgr is None:
            raise ValueError(f"compressed image ({msg.format!r}, {buf.size} bytes) does not decode as jpeg or png")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    enc = msg.encoding
    if enc not in _CHANNELS:
        raise ValueError(f"image encoding {enc!r} is not supported ({', '.join(_CHANNELS)})")
    c, h, w = _CHANNELS[enc], int(msg.height), int(msg.width)
    if msg.step < w * c or len(msg.data) != msg.step * h:
        raise ValueError(f"{enc} image {w}x{h}: step {msg.step} and {len(msg.data)} data bytes do not match")
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(h, msg.step)[:, : w * c]
    img = rows.reshape(h, w, c) if c > 1 else rows.reshape(h, w)
    if enc == "rgb8":
        return img
    if enc == "mono8":
        return np.ascontiguousarray(img)
    code = {"bgr8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB, "bgra8": cv2.COLOR_BGRA2RGB}[enc]
    return cv2.cvtColor(img, code)


def camera_info_dict(msg: CameraInfo) -> dict[str, Any]:
    """CameraInfo fields as `perception.camera.CameraModel.from_camera_info_dict` reads them."""
    return {
        "width": int(msg.width), "height": int(msg.height), "distortion_model": msg.distortion_model,
        "d": [float(v) for v in msg.d], "k": [float(v) for v in msg.k], "r": [float(v) for v in msg.r],
        "p": [float(v) for v in msg.p], "frame_id": msg.header.frame_id,
    }  # fmt: skip


class PerceptionNode(Node):
    """The perception node (see the module docstring)."""

    def __init__(self, **node_kwargs):
        super().__init__("perception", **node_kwargs)
        from perception.detector import PoseFilter
        from perception.markers import MarkerSet

        p: PerceptionParams = declare_params(self, PerceptionParams())
        self.params = p
        self.profile = p.robot_profile
        self.spec = spec = p.camera_spec
        if spec.calibration is None:
            raise ValueError(f"camera {spec.name!r} of profile {self.profile.name!r} has no calibration (its pose in "
                             f"{self.profile.base_frame!r}): run `skillstack calibrate` or pass calibration:=FILE")
        self.calibration = spec.calibration
        self.marker_set = MarkerSet.load(p.marker_set or None)
        self.objects = tuple(p.objects) or tuple(self.marker_set.objects)
        unknown = [o for o in self.objects if o not in self.marker_set.objects]
        if unknown:
            raise ValueError(f"objects {unknown} carry no markers in {self.marker_set.source}; marked: {list(self.marker_set.objects)}")
        self.filter = PoseFilter(alpha=p.filter_alpha, max_speed=p.max_speed, jump_margin=p.jump_margin)
        self.estimator = None  # built from the first acceptable CameraInfo
        self._info_key: tuple | None = None
        self.camera_state = "waiting for CameraInfo"  # "ok" or why images are not used
        self.counters = {"images": 0, "processed": 0, "without_camera_info": 0, "rejected_images": 0, "published": 0}
        self.last_error = ""
        self._seen: dict[str, Any] = {}  # object -> its estimate in the last processed image
        self._latency: deque[float] = deque(maxlen=2000)  # image receipt -> poses published (s)
        self._last_image_stamp: float | None = None

        prefix = "/" + p.object_pose_prefix.strip("/") if p.object_pose_prefix.strip("/") else ""
        self._pose_pubs = {o: self.create_publisher(PoseStamped, f"{prefix}/{o}/pose", COMMAND_QOS) for o in self.objects}
        self._compressed = spec.transport == "compressed"
        image_topic = spec.compressed_topic if self._compressed else spec.image_topic
        # Newest image only; reliable by default: best effort over loopback lost about half of the 640x480 frames here.
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE
                         if p.image_qos == "reliable" else ReliabilityPolicy.BEST_EFFORT)
        self.create_subscription(CompressedImage if self._compressed else Image, image_topic, self._on_image, qos)
        self.create_subscription(CameraInfo, spec.camera_info_topic, self._on_camera_info, STATE_QOS)
        self._status_pub = self.create_publisher(String, "~/status", 10)
        self._timing_pub = self.create_publisher(Float64MultiArray, "~/timing", COMMAND_QOS) if p.publish_timing else None
        self.create_timer(1.0 / p.status_rate, self.publish_status)
        self.image_topic = image_topic
        self.get_logger().info(
            f"perception: camera {spec.name!r} ({self.calibration.frame_id}, calibrated at {self.calibration.width}x"
            f"{self.calibration.height}) on {image_topic} + {spec.camera_info_topic}; objects {list(self.objects)} -> "
            f"{prefix}/<name>/pose in {self.profile.base_frame!r} (profile {self.profile.name})"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _fail(self, counter: str, message: str) -> None:
        self.counters[counter] += 1
        if message != self.last_error:
            self.get_logger().error(message)
        self.last_error = message

    # -- camera info ----------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        from perception.camera import CameraModelError
        from perception.detector import MarkerPoseEstimator

        key = (msg.header.frame_id, msg.width, msg.height, tuple(msg.k), tuple(msg.d))
        if key == self._info_key:
            return
        self._info_key = key
        try:
            camera = self.calibration.with_camera_info(camera_info_dict(msg))  # another frame -> CameraModelError
            camera.check_calibration_for(self.calibration)  # another resolution -> CameraModelError
            self.estimator = MarkerPoseEstimator(self.marker_set, camera, max_reprojection_px=self.params.max_reprojection_px)
        except (CameraModelError, ValueError) as exc:
            self.estimator = None
            self.camera_state = f"CameraInfo on {self.spec.camera_info_topic} refused: {exc}"
            self._fail("rejected_images", self.camera_state)
            return
        self.camera_state = "ok"
        self.get_logger().info(f"CameraInfo accepted: {msg.header.frame_id} {msg.width}x{msg.height} fx={msg.k[0]:.1f}")

    # -- images ---------------------------------------------------------------------------------
    def _on_image(self, msg: Any) -> None:
        t0 = time.perf_counter()
        received = self._now()
        self.counters["images"] += 1
        if self.estimator is None:
            why = self.camera_state if self.camera_state != "waiting for CameraInfo" else (
                f"no CameraInfo on {self.spec.camera_info_topic}: refusing to estimate poses without the camera's intrinsics")
            self._fail("without_camera_info", why)
            return
        frame = msg.header.frame_id
        if frame != self.estimator.camera.frame_id:
            return self._fail("rejected_images", f"image in frame {frame!r}, but the camera (CameraInfo and calibration) "
                              f"is {self.estimator.camera.frame_id!r}: not used")
        stamp = stamp_s(msg.header.stamp)
        try:
            image = decode_image(msg, self._compressed)
            poses = self.estimator.estimate(image, stamp, self.filter.priors(stamp))
        except ValueError as exc:  # ImageError: undecodable, or another resolution than the calibration's
            return self._fail("rejected_images", f"image refused: {exc}")
        base = self.profile.base_frame
        seen = {}
        for name, pose in poses.items():
            if name not in self._pose_pubs or pose.n_markers < self.params.min_markers:
                continue
            if pose.frame_id != base:
                self._fail("rejected_images", f"pose of {name!r} in frame {pose.frame_id!r}, not the base frame {base!r}: not published")
                continue
            seen[name] = pose
        self._seen = seen
        self._last_image_stamp = stamp
        filtered = self.filter.update(seen, stamp)
        for name, fp in filtered.items():
            pub = self._pose_pubs.get(name)
            if pub is None:
                continue
            out = PoseStamped()
            to_stamp(out.header.stamp, fp.stamp)  # the image it was last seen in: its age shows
            out.header.frame_id = base
            out.pose.position.x, out.pose.position.y, out.pose.position.z = (float(v) for v in fp.position)
            q = fp.quat_wxyz
            out.pose.orientation.w, out.pose.orientation.x = float(q[0]), float(q[1])
            out.pose.orientation.y, out.pose.orientation.z = float(q[2]), float(q[3])
            pub.publish(out)
            self.counters["published"] += 1
        self.counters["processed"] += 1
        dt = time.perf_counter() - t0
        self._latency.append(dt)
        if self._timing_pub is not None:
            self._timing_pub.publish(Float64MultiArray(data=[stamp, received, self._now(), dt]))

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The JSON published on ~/status."""
        now = self._now()
        poses = self.filter.poses(now)
        objects = {}
        for name in self.objects:
            fp, est = poses.get(name), self._seen.get(name)
            objects[name] = {
                "visible": est is not None,
                "age_s": None if fp is None else round(fp.age, 3),
                "n_markers": 0 if est is None else int(est.n_markers),
                "reprojection_error_px": None if est is None else round(float(est.reprojection_error_px), 3),
                "position": None if fp is None else np.round(fp.position, 4).tolist(),
                "rejected": int(self.filter.rejected.get(name, 0)),
            }
        lat = np.asarray(self._latency) * 1e3
        report = self.estimator.last_report if self.estimator is not None else None
        return {
            "camera": self.spec.name,
            "frame": self.calibration.frame_id,
            "image_topic": self.image_topic,
            "camera_info": self.camera_state,
            "base_frame": self.profile.base_frame,
            "objects": objects,
            **self.counters,
            "last_error": self.last_error,
            "image_age_s": None if self._last_image_stamp is None else round(now - self._last_image_stamp, 3),
            "unknown_marker_ids": [] if report is None else sorted(set(report.unknown_ids)),
            "latency_ms": {"n": int(lat.size), "p50": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
                           "p99": round(float(np.percentile(lat, 99)), 3) if lat.size else None},
        }  # fmt: skip

    def publish_status(self) -> None:
        """Publish ~/status now."""
        self._status_pub.publish(String(data=json.dumps(self.status())))


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: ``perception --ros-args [--params-file F] [-p name:=value]``."""
    return run_node(PerceptionNode, sys.argv if args is None else args)


if __name__ == "__main__":
    raise SystemExit(main())
