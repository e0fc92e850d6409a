"""A pinhole camera: intrinsics (K, distortion), image size, optical frame and its pose in the robot's base frame.

`CameraModel.from_mujoco` derives it from a MuJoCo camera: fy = h / 2 / tan(fovy / 2), square pixels,
principal point at the image centre in OpenCV's pixel convention (pixel centres at integers, so
(w - 1) / 2); the extrinsic from the camera's pose, turned from MuJoCo's camera axes (looks along -z,
y up) to OpenCV's optical frame (z forward, y down). `to_camera_info_dict` / `from_camera_info_dict`
mirror sensor_msgs/CameraInfo's fields so the ROS side converts without this package importing rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import mujoco
import numpy as np

# MuJoCo camera axes -> OpenCV optical axes: flip y and z.
MJ_TO_CV = np.diag([1.0, -1.0, -1.0])


class CameraModelError(ValueError):
    """A camera model that cannot be used, or one that does not match the images or calibration it meets."""


@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera: `K` (3, 3), `distortion` (plumb_bob k1 k2 t1 t2 k3), `T_base_camera` (4, 4): the
    optical frame `frame_id` in the robot base frame `base_frame` (OpenCV axes: z forward, y down)."""

    name: str
    width: int
    height: int
    K: np.ndarray
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(5))
    frame_id: str = ""
    T_base_camera: np.ndarray = field(default_factory=lambda: np.eye(4))
    base_frame: str = "base"

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64)
        D = np.asarray(self.distortion, dtype=np.float64).ravel()
        T = np.asarray(self.T_base_camera, dtype=np.float64)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "distortion", D)
        object.__setattr__(self, "T_base_camera", T)
        object.__setattr__(self, "frame_id", self.frame_id or f"{self.name}_optical_frame")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise CameraModelError(f"camera {self.name!r}: image size must be positive, got {self.width}x{self.height}")
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1.0:
            raise CameraModelError(f"camera {self.name!r}: K must be a finite 3x3 matrix with fx, fy > 0 and K[2,2] = 1, got {K.tolist()}")
        if D.size not in (0, 4, 5, 8, 12, 14) or not np.isfinite(D).all():
            raise CameraModelError(f"camera {self.name!r}: distortion must hold 0, 4, 5, 8, 12 or 14 finite coefficients, got {D.tolist()}")
        if T.shape != (4, 4) or not np.isfinite(T).all() or not np.allclose(T[3], [0, 0, 0, 1]):
            raise CameraModelError(f"camera {self.name!r}: T_base_camera must be a finite 4x4 homogeneous transform")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise CameraModelError(f"camera {self.name!r}: T_base_camera's rotation is not a rotation (R R^T != I or det < 0)")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mujoco(
        cls,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        camera_name: str,
        width: int,
        height: int,
        base_body: str | None = None,
        base_frame: str | None = None,
    ) -> "CameraModel":
        """The camera `camera_name` of a MuJoCo model at `data`'s current kinematics, rendered at width x height.

        base_body: the MJCF body that is the robot's base (default: the shipped robot description's
        `base_body` if the model has one of their arms, else the world); base_frame: its TF name
        (default: the description's `base_frame`, else "world").
        """
        try:
            cam = model.camera(camera_name)
        except KeyError:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise CameraModelError(f"model has no camera {camera_name!r}; cameras: {names}") from None
        if np.any(model.cam_sensorsize[cam.id] > 0):
            raise CameraModelError(f"camera {camera_name!r} uses sensorsize/focal intrinsics; only fovy cameras are supported")
        fovy = np.deg2rad(model.cam_fovy[cam.id])
        f = 0.5 * height / np.tan(0.5 * fovy)
        K = np.array([[f, 0.0, 0.5 * (width - 1)], [0.0, f, 0.5 * (height - 1)], [0.0, 0.0, 1.0]])
        T_world_cam = np.eye(4)
        T_world_cam[:3, :3] = data.cam_xmat[cam.id].reshape(3, 3) @ MJ_TO_CV
        T_world_cam[:3, 3] = data.cam_xpos[cam.id]
        base_body, base_frame = _base_of(model, base_body, base_frame)
        T_world_base = body_pose(model, data, base_body)
        return cls(
            name=camera_name,
            width=int(width),
            height=int(height),
            K=K,
            distortion=np.zeros(5),
            frame_id=f"{camera_name}_optical_frame",
            T_base_camera=invert(T_world_base) @ T_world_cam,
            base_frame=base_frame,
        )

    # ------------------------------------------------------------------ CameraInfo
    def to_camera_info_dict(self) -> dict[str, Any]:
        """sensor_msgs/CameraInfo's fields as plain Python values (k, d, r, p row-major lists)."""
        P = np.zeros((3, 4))
        P[:3, :3] = self.K
        return {
            "width": int(self.width),
            "height": int(self.height),
            "distortion_model": "plumb_bob" if self.distortion.size <= 5 else "rational_polynomial",
            "d": self.distortion.tolist(),
            "k": self.K.ravel().tolist(),
            "r": np.eye(3).ravel().tolist(),
            "p": P.ravel().tolist(),
            "frame_id": self.frame_id,
        }

    @classmethod
    def from_camera_info_dict(
        cls,
        info: dict[str, Any],
        name: str | None = None,
        T_base_camera: np.ndarray | None = None,
        base_frame: str = "base",
    ) -> "CameraModel":
        """A camera from CameraInfo fields (as `to_camera_info_dict` writes them); the extrinsic is not part
        of CameraInfo and comes from the calibration (`T_base_camera`, default identity)."""
        if not info:
            raise CameraModelError("no CameraInfo: the detector needs the camera's intrinsics (k, d, width, height)")
        missing = [k for k in ("width", "height", "k", "frame_id") if k not in info]
        if missing:
            raise CameraModelError(f"CameraInfo lacks {missing}")
        K = np.asarray(info["k"], dtype=np.float64)
        if K.size != 9 or not K.any():
            raise CameraModelError(f"CameraInfo k must hold 9 numbers, not all zero (an uncalibrated camera), got {list(K.ravel())}")
        model = info.get("distortion_model", "plumb_bob") or "plumb_bob"
        if model not in ("plumb_bob", "rational_polynomial"):
            raise CameraModelError(f"CameraInfo distortion_model {model!r} is not supported (plumb_bob, rational_polynomial)")
        frame_id = str(info["frame_id"])
        return cls(
            name=name or frame_id.removesuffix("_optical_frame"),
            width=int(info["width"]),
            height=int(info["height"]),
            K=K.reshape(3, 3),
            distortion=np.asarray(info.get("d") or np.zeros(5), dtype=np.float64),
            frame_id=frame_id,
            T_base_camera=np.eye(4) if T_base_camera is None else T_base_camera,
            base_frame=base_frame,
        )

    def with_camera_info(self, info: dict[str, Any]) -> "CameraModel":
        """This camera's calibration (extrinsic) with intrinsics from a CameraInfo of the same camera.

        CameraModelError when the CameraInfo's frame_id is another camera's: an extrinsic calibrated for
        one camera must never be applied to another's images."""
        other = CameraModel.from_camera_info_dict(info, self.name, self.T_base_camera, self.base_frame)
        if other.frame_id != self.frame_id:
            raise CameraModelError(
                f"CameraInfo is for frame {other.frame_id!r} but the calibration of camera {self.name!r} is for {self.frame_id!r}")
        return other

    # ------------------------------------------------------------------ profile YAML (intrinsics + extrinsic)
    def to_dict(self) -> dict[str, Any]:
        """CameraInfo fields plus name, base_frame and T_base_camera (4x4 nested list): what a profile stores."""
        return {"name": self.name, **self.to_camera_info_dict(), "base_frame": self.base_frame,
                "T_base_camera": np.round(self.T_base_camera, 9).tolist()}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "CameraModel":
        """Inverse of `to_dict`."""
        if "T_base_camera" not in doc:
            raise CameraModelError(f"camera {doc.get('name')!r} has no T_base_camera (extrinsic calibration)")
        return cls.from_camera_info_dict(doc, doc.get("name"), np.asarray(doc["T_base_camera"], dtype=np.float64),
                                         str(doc.get("base_frame", "base")))

    def check_calibration_for(self, other: "CameraModel") -> None:
        """Raise CameraModelError unless `other` describes the same camera (frame and image size)."""
        if other.frame_id != self.frame_id:
            raise CameraModelError(f"calibration is for camera frame {other.frame_id!r}, this camera is {self.frame_id!r}")
        if (other.width, other.height) != (self.width, self.height):
            raise CameraModelError(f"calibration is for {other.width}x{other.height} images, camera {self.name!r} gives {self.width}x{self.height}")

    def with_extrinsic(self, T_base_camera: np.ndarray) -> "CameraModel":
        """The same camera with another extrinsic (a calibration result)."""
        return replace(self, T_base_camera=np.asarray(T_base_camera, dtype=np.float64))

    # ------------------------------------------------------------------ geometry
    def project(self, points_base: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) of points (N, 3) in the base frame (pinhole + distortion)."""
        import cv2

        T = invert(self.T_base_camera)
        rvec, _ = cv2.Rodrigues(T[:3, :3])
        pts, _ = cv2.projectPoints(np.asarray(points_base, dtype=np.float64).reshape(-1, 1, 3), rvec, T[:3, 3], self.K, self.distortion)
        return pts.reshape(-1, 2)


def invert(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform."""
    out = np.eye(4)
    R = T[:3, :3]
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ T[:3, 3]
    return out


def body_pose(model: mujoco.MjModel, data: mujoco.MjData, body: str | None) -> np.ndarray:
    """World pose (4, 4) of an MJCF body (identity for None: the world)."""
    T = np.eye(4)
    if body is None:
        return T
    b = model.body(body).id
    T[:3, :3] = data.xmat[b].reshape(3, 3)
    T[:3, 3] = data.xpos[b]
    return T


def _base_of(model: mujoco.MjModel, base_body: str | None, base_frame: str | None) -> tuple[str | None, str]:
    if base_body is not None:
        return base_body, base_frame or base_body
    from sim_assets import RobotDescriptionError, robot_for_model

    try:
        desc = robot_for_model(model)
    except RobotDescriptionError:
        return None, base_frame or "world"
    return desc.base_body, base_frame or desc.base_frame
