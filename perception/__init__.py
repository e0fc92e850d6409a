"""Object poses from camera images: fiducial markers on the objects (OpenCV ArUco), camera
models from the MJCF or a CameraInfo, PnP with several markers fused per object, hand–eye
calibration, and an observation wrapper that puts the perceived poses into an env.

Layer 3 (beside `policies/`): may import common, sim_assets and envs; no torch, no rclpy.
The public API (what the ROS 2 node and the commands use):

- `MarkerSet.load()`: the shipped marker layout (perception/markers.yaml);
- `CameraModel.from_mujoco(...)`, `.to_camera_info_dict()`, `.from_camera_info_dict(...)`;
- `MarkerPoseEstimator(marker_set, camera).estimate(image_rgb, stamp) -> {name: ObjectPose}`;
- `PoseFilter().update(poses, stamp)`: smoothing, outlier gate, last pose with its age;
- `SimCamera`, `true_object_poses`: the simulator as a camera, and ground truth.
"""

import sim_assets  # noqa: F401  first: picks headless EGL rendering before mujoco is imported

from perception.camera import CameraModel, CameraModelError
from perception.detector import DetectionReport, FilteredPose, ImageError, MarkerPoseEstimator, ObjectPose, PoseFilter
from perception.markers import MarkerSet, MarkerSetError
from perception.sim import SimCamera, quat_angle_deg, true_object_poses

__all__ = [
    "CameraModel",
    "CameraModelError",
    "DetectionReport",
    "FilteredPose",
    "ImageError",
    "MarkerPoseEstimator",
    "MarkerSet",
    "MarkerSetError",
    "ObjectPose",
    "PoseFilter",
    "SimCamera",
    "quat_angle_deg",
    "true_object_poses",
]
