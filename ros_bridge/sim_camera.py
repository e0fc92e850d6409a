"""sim_robot's cameras: MuJoCo renders of the scene published as a camera driver would.

For each camera in ``camera.names`` (an MJCF camera of the scene: the fixed scene camera, the
robot's wrist camera), at ``camera.rate`` Hz and ``camera.width`` x ``camera.height``:

* sensor_msgs/Image (rgb8) on ``<prefix>/<name>/image_raw`` (``camera.raw``);
* sensor_msgs/CompressedImage on ``.../image_raw/compressed`` (``camera.compression``: jpeg or
  png through ``cv2.imencode``, format ``"rgb8; jpeg compressed bgr8"`` as image_transport writes);
* sensor_msgs/CameraInfo on ``<prefix>/<name>/camera_info``: the intrinsics MuJoCo renders with
  (`perception.camera.CameraModel.from_mujoco`), no distortion;

rendered by `perception.sim.SimCamera` (pixels only: no helper sites, as a real camera sees it), all
stamped with the time of the physics state the frame shows (the clock joint states are
stamped with), in the camera's optical frame (``<name>_optical_frame``).

Rendering is CPU work (EGL on llvmpipe): ``camera.quality: fast`` (the default) draws without
shadows or multisampling, ~5-9x cheaper than ``full`` (60 vs 528 ms a 640x480 frame on the loaded
2-core machine; a still cube's pose 3.3 vs 1-3.3 mm off: aliased edges cost accuracy). It never runs in the physics callback: the
physics timer only copies the state (`offer`, a few microseconds) when a frame is due and the
render thread is free, and a thread of its own, with its own MjData and renderer, draws and
publishes. MuJoCo releases the GIL while it renders, so the 200 Hz
joint-state loop keeps its rate; when rendering cannot keep up, frames are skipped, never queued.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import mujoco
import numpy as np

from ros_bridge._ros import to_stamp
from ros_bridge.perception_params import SimCameraParams, camera_topics

from rclpy.node import Node  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

__all__ = ["IMAGE_QOS", "SimCameras", "camera_info_message"]

# Reliable, newest only: matches best-effort and reliable subscribers, and a slow reader gets the
# latest frame rather than a backlog (the QoS camera drivers use for their image topics).
IMAGE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)


def camera_info_message(info: dict) -> CameraInfo:
    """A sensor_msgs/CameraInfo from `CameraModel.to_camera_info_dict()` (its field names)."""
    msg = CameraInfo()
    msg.header.frame_id = str(info["frame_id"])
    msg.width, msg.height = int(info["width"]), int(info["height"])
    msg.distortion_model = str(info.get("distortion_model", "plumb_bob"))
    msg.d = [float(v) for v in info.get("d", [0.0] * 5)]
    msg.k = [float(v) for v in info["k"]]
    msg.r = [float(v) for v in info.get("r", [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])]
    msg.p = [float(v) for v in info["p"]]
    return msg


class _Camera:
    """One MJCF camera's publishers and CameraInfo."""

    def __init__(self, node: Node, model: mujoco.MjModel, data: mujoco.MjData, name: str, p: SimCameraParams):
        from perception.camera import CameraModel

        try:
            model.camera(name)
        except KeyError:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(f"camera.names: the scene has no camera {name!r}; its cameras: {names}") from None
        self.name = name
        self.info = camera_info_message(CameraModel.from_mujoco(model, data, name, p.width, p.height).to_camera_info_dict())
        self.frame_id = self.info.header.frame_id
        image_topic, compressed_topic, info_topic = camera_topics(p.topic_prefix, name)
        self.image_pub = node.create_publisher(Image, image_topic, IMAGE_QOS) if p.raw else None
        self.compressed_pub = node.create_publisher(CompressedImage, compressed_topic, IMAGE_QOS) if p.compression else None
        self.info_pub = node.create_publisher(CameraInfo, info_topic, IMAGE_QOS)
        self.topics = [t for t, on in ((image_topic, p.raw), (compressed_topic, bool(p.compression)), (info_topic, True)) if on]


class SimCameras:
    """Renders sim_robot's cameras on a thread of its own and publishes them (see the module docstring)."""

    def __init__(self, node: Node, model: mujoco.MjModel, data: mujoco.MjData, params: SimCameraParams,
                 on_error: Callable[[str], None] | None = None):
        """`data` is the physics' MjData, read only inside `offer` (the physics thread)."""
        self.params = p = params
        self._context = node.context
        self._period = 1.0 / p.rate
        self._model = model
        # One llvmpipe thread: the render thread then takes one core, not both, from the physics.
        os.environ.setdefault("LP_NUM_THREADS", "1")
        if p.quality == "fast":  # rendering options only: the physics does not read them
            model.vis.quality.offsamples = 0
        if model.vis.global_.offwidth < p.width or model.vis.global_.offheight < p.height:
            model.vis.global_.offwidth = max(model.vis.global_.offwidth, p.width)
            model.vis.global_.offheight = max(model.vis.global_.offheight, p.height)
        self.cameras = [_Camera(node, model, data, name, p) for name in p.names]
        self._render_data = mujoco.MjData(model)
        self._render_data.qpos[:] = data.qpos
        mujoco.mj_forward(model, self._render_data)
        self._qpos = data.qpos.copy()
        self._stamp = 0.0
        self._next_due = 0.0
        self._frame_ready = threading.Event()
        self._busy = False  # the render thread holds a state (set in offer, cleared after publishing)
        self._stop = threading.Event()
        self._on_error = on_error or (lambda m: None)
        self.counters = {"frames": 0, "skipped": 0, "errors": 0}
        self.render_s: list[float] = []  # the last render+publish durations (seconds), newest last
        self._thread = threading.Thread(target=self._run, name="sim_camera", daemon=True)
        self._thread.start()

    @property
    def topics(self) -> list[str]:
        """Every topic published."""
        return [t for c in self.cameras for t in c.topics]

    def offer(self, data: mujoco.MjData, clock_s: Callable[[], float], now_mono: float) -> None:
        """Called by the physics after each step: copy the state (and its time, `clock_s()`, the
        clock joint states are stamped with) for a frame when one is due."""
        if now_mono + 1e-4 < self._next_due:
            return
        self._next_due = max(self._next_due + self._period, now_mono + 0.5 * self._period)
        if self._busy:  # still drawing the last frame: skip this one rather than queue it
            self.counters["skipped"] += 1
            return
        self._qpos[:] = data.qpos
        self._stamp = clock_s()
        self._busy = True
        self._frame_ready.set()

    def _run(self) -> None:
        from perception.sim import SimCamera

        p = self.params
        try:  # the GL contexts live in the thread that renders
            views = [SimCamera(self._model, self._render_data, cam.name, p.width, p.height, shadows=p.quality == "full")
                     for cam in self.cameras]
        except Exception as exc:  # no EGL/OSMesa: say so once; physics and joint states go on
            self.counters["errors"] += 1
            self._on_error(f"cannot render cameras (MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}): {type(exc).__name__}: {exc}")
            return
        try:
            while not self._stop.is_set():
                if not self._frame_ready.wait(0.1):
                    continue
                self._frame_ready.clear()
                t0 = time.perf_counter()
                try:
                    self._render_data.qpos[:] = self._qpos
                    mujoco.mj_forward(self._model, self._render_data)
                    for cam, view in zip(self.cameras, views):
                        self._publish(cam, view.render())
                    self.counters["frames"] += 1
                except Exception as exc:  # a bad frame must not end the images for good
                    if self._stop.is_set() or not self._context.ok():
                        break  # shutting down: the publishers' context is gone
                    self.counters["errors"] += 1
                    self._on_error(f"camera frame failed: {type(exc).__name__}: {exc}")
                finally:
                    self._busy = False
                self.render_s = [*self.render_s[-99:], time.perf_counter() - t0]
        finally:
            for view in views:
                view.close()

    def _publish(self, cam: _Camera, rgb: np.ndarray) -> None:
        """One camera's frame: Image, CompressedImage and CameraInfo, stamped with the state's time."""
        import cv2

        p = self.params
        to_stamp(cam.info.header.stamp, self._stamp)
        cam.info_pub.publish(cam.info)  # first: a subscriber has the intrinsics before the image
        if cam.image_pub is not None:
            msg = Image()
            to_stamp(msg.header.stamp, self._stamp)
            msg.header.frame_id = cam.frame_id
            msg.height, msg.width = rgb.shape[:2]
            msg.encoding = "rgb8"
            msg.step = 3 * msg.width
            msg.data = rgb.tobytes()
            cam.image_pub.publish(msg)
        if cam.compressed_pub is not None:
            if p.compression == "jpeg":
                ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, p.jpeg_quality])
            else:
                ok, buf = cv2.imencode(".png", rgb[..., ::-1])
            if not ok:
                raise RuntimeError(f"cv2.imencode failed ({p.compression})")
            cmsg = CompressedImage()
            to_stamp(cmsg.header.stamp, self._stamp)
            cmsg.header.frame_id = cam.frame_id
            cmsg.format = f"rgb8; {p.compression} compressed bgr8"
            cmsg.data = buf.tobytes()
            cam.compressed_pub.publish(cmsg)

    def close(self) -> None:
        """Stop the render thread (and release its GL context)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
