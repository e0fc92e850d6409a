"""Parameters of the camera side of the bridge: sim_robot's rendered cameras and the perception node (no rclpy).

`SimCameraParams` is nested in sim_robot's parameters as ``camera.*`` (``camera.rate: 10.0``
turns images on; off by default so a plain sim_robot costs no rendering). `PerceptionParams`
configures the perception node; its camera (topics, frame, resolution) comes from the robot
profile's ``cameras`` section unless overridden here.

Topic names follow image_transport and camera drivers: ``<prefix>/<camera>/image_raw``
(sensor_msgs/Image), ``<prefix>/<camera>/image_raw/compressed`` (sensor_msgs/CompressedImage) and
``<prefix>/<camera>/camera_info`` (sensor_msgs/CameraInfo); images are stamped in the camera's
optical frame (``NAME_optical_frame``: z forward, x right, y down, as REP 103 asks).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ros_bridge.profile import DEFAULT_PROFILE, CameraSpec, RobotProfile, load_profile

__all__ = ["COMPRESSIONS", "TRANSPORTS", "PerceptionParams", "SimCameraParams", "camera_topics", "load_calibration"]

COMPRESSIONS = ("", "jpeg", "png")
QUALITIES = ("fast", "full")
TRANSPORTS = ("", "raw", "compressed")


def load_calibration(path: str) -> Any:
    """A camera calibration file (YAML of `perception.camera.CameraModel.to_dict()`) -> CameraModel."""
    from perception.camera import CameraModel, CameraModelError

    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"calibration file not found: {file}")
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        return CameraModel.from_dict(doc if isinstance(doc, dict) else {})
    except (yaml.YAMLError, CameraModelError, TypeError, ValueError) as exc:
        raise ValueError(f"{file}: not a camera calibration: {exc}") from None


def camera_topics(prefix: str, camera: str) -> tuple[str, str, str]:
    """(image, compressed image, camera info) topics of `camera` under `prefix`."""
    base = ("/" + prefix.strip("/") if prefix.strip("/") else "") + f"/{camera}"
    return f"{base}/image_raw", f"{base}/image_raw/compressed", f"{base}/camera_info"


@dataclass
class SimCameraParams:
    """sim_robot's cameras (``camera.*``): which MJCF cameras it renders, how often, how big, how sent."""

    rate: float = 0.0  # Hz of each camera's images; 0 = no images (the default: rendering costs CPU)
    width: int = 640
    height: int = 480
    names: list[str] = field(default_factory=lambda: ["scene"])  # MJCF cameras (the scene camera, "wrist", ...)
    topic_prefix: str = "/cameras"  # <prefix>/<name>/image_raw, .../image_raw/compressed, .../camera_info
    raw: bool = True  # publish sensor_msgs/Image (rgb8)
    compression: str = ""  # also publish sensor_msgs/CompressedImage: "" (none), "jpeg" or "png"
    jpeg_quality: int = 90
    quality: str = "fast"  # fast: no shadows, no multisampling (~5-9x cheaper on a CPU, ~3 mm less exact); full: both

    def __post_init__(self) -> None:
        if not (self.rate >= 0 and math.isfinite(self.rate)):
            raise ValueError(f"camera.rate must be >= 0 Hz (0 = no images), got {self.rate}")
        if not (16 <= self.width <= 4096 and 16 <= self.height <= 4096):
            raise ValueError(f"camera.width/height must be within 16..4096 pixels, got {self.width}x{self.height}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"camera.compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if self.quality not in QUALITIES:
            raise ValueError(f"camera.quality must be one of {QUALITIES}, got {self.quality!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"camera.jpeg_quality must be within 1..100, got {self.jpeg_quality}")
        if self.rate > 0 and not self.names:
            raise ValueError("camera.names is empty: name at least one MJCF camera to render")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate camera names in {self.names}")
        if self.rate > 0 and not (self.raw or self.compression):
            raise ValueError("camera.raw is false and camera.compression is empty: nothing would be published")


@dataclass
class PerceptionParams:
    """Parameters of the perception node (images + CameraInfo in, /objects/<name>/pose out)."""

    profile: str = DEFAULT_PROFILE  # robot profile: base frame, camera frames' extrinsics, its cameras
    camera: str = ""  # the profile's camera to use ("" = its first)
    transport: str = ""  # "" = the profile camera's; "raw" (Image) or "compressed" (CompressedImage)
    image_topic: str = ""  # "" = the profile camera's (compressed: this + "/compressed")
    camera_info_topic: str = ""  # "" = the profile camera's
    image_qos: str = "reliable"  # reliable (repairs lost fragments of large images; needs a reliable publisher) or best_effort
    calibration: str = ""  # a calibration YAML (CameraModel.to_dict(), in the base frame); "" = the profile camera's
    marker_set: str = ""  # marker description YAML ("" = the shipped perception/markers.yaml)
    objects: list[str] = field(default_factory=list)  # objects to publish ([] = every object of the marker set)
    object_pose_prefix: str = "/objects"  # poses on <prefix>/<name>/pose
    min_markers: int = 1  # markers a fused estimate needs to count as seen
    max_reprojection_px: float = 2.0  # markers / fused poses reprojecting worse than this are outliers
    filter_alpha: float = 1.0  # PoseFilter: weight of the newest estimate (1 = no smoothing: 0.6 lagged a lifted
    # cube 20-30 mm behind at 10 Hz, and a scripted skill then re-grasps a cube it holds)
    max_speed: float = 1.0  # PoseFilter: m/s an object may move between images (+ jump_margin) before it is an outlier
    jump_margin: float = 0.02  # m
    publish_timing: bool = False  # per-image timing on ~/timing (benchmark)
    status_rate: float = 2.0  # Hz of ~/status (JSON)

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS} ('' = the profile camera's), got {self.transport!r}")
        if self.image_qos not in ("reliable", "best_effort"):
            raise ValueError(f"image_qos must be 'reliable' or 'best_effort', got {self.image_qos!r}")
        for name in ("image_topic", "camera_info_topic"):
            value = getattr(self, name)
            if value and not value.startswith("/"):
                raise ValueError(f"{name} must be an absolute topic name, got {value!r}")
        if self.min_markers < 1:
            raise ValueError(f"min_markers must be >= 1, got {self.min_markers}")
        for name in ("max_reprojection_px", "max_speed", "jump_margin"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.filter_alpha <= 1:
            raise ValueError(f"filter_alpha must be in (0, 1], got {self.filter_alpha}")
        if self.status_rate <= 0:
            raise ValueError("status_rate must be > 0")
        self.camera_spec  # raises (a ValueError) when the profile or its camera is unknown

    @property
    def robot_profile(self) -> RobotProfile:
        """The robot profile these parameters name."""
        return load_profile(self.profile)

    @property
    def camera_spec(self) -> CameraSpec:
        """The camera this node reads: the profile's, with this node's overrides applied."""
        profile = self.robot_profile
        spec = profile.camera(self.camera or None)
        calibration = load_calibration(self.calibration) if self.calibration else spec.calibration
        if calibration is not None and calibration.base_frame != profile.base_frame:
            raise ValueError(f"calibration {self.calibration or spec.name!r} is in frame {calibration.base_frame!r}, "
                             f"not the base frame {profile.base_frame!r} of profile {profile.name!r}")
        return dataclasses.replace(
            spec,
            transport=self.transport or spec.transport,
            image_topic=self.image_topic or spec.image_topic,
            camera_info_topic=self.camera_info_topic or spec.camera_info_topic,
            calibration=calibration,
        )
