"""Object poses from one image: ArUco markers -> per-marker PnP -> a consensus per object -> a joint
refinement over every agreeing marker of the object -> the robot's base frame.

Steps (`MarkerPoseEstimator.estimate`):
1. detect markers (cv2.aruco.ArucoDetector, subpixel corner refinement), then refine each corner
   from the marker's outer edges (perception.corners); ids that are not in the marker set are
   reported (`last_report.unknown_ids`), never used;
2. per marker, both IPPE_SQUARE solutions (a small square has two plausible poses), each turned
   into a pose of its object through the marker's known place on the object;
3. per object, the candidate that most markers agree with (reprojection error under
   `max_reprojection_px`) wins; markers that disagree are dropped as outliers;
4. Levenberg-Marquardt over all inlier corners of the object (cv2.solvePnPRefineLM), a final
   reprojection gate, then T_base_object = T_base_camera @ T_camera_object;
5. with `priors` (each object's recent orientation, from the caller's filter): a pose that rests on
   one marker alone and turns more than `max_prior_turn_deg` from it takes the marker's other IPPE
   solution if that one agrees, else is dropped. One small marker seen at a slant, its corners a
   pixel off (aliasing, a neighbouring cube's marker), can reproject better in the flipped pose,
   which moves a 4 cm cube's centre by 2-3 cm (the perceived stack-two failures, docs/ros2.md).

`PoseFilter` smooths the per-frame poses over time, gates jumps, and keeps each object's last pose
with its age, so a caller can hold when a pose gets old.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from common import transforms
from common.transforms import matrix_to_quat as rotation_to_quat  # perception's name for it (wrapper, calibration, sim)
from perception.camera import CameraModel, CameraModelError, invert
from perception.corners import refine_corners_by_edges
from perception.markers import MarkerSet, square_corners


class ImageError(ValueError):
    """An image the detector cannot use (wrong type, shape, dtype or size for the camera)."""


@dataclass(frozen=True)
class ObjectPose:
    """An object's pose in `frame_id` (the robot base frame) from one image."""

    name: str
    position: np.ndarray  # (3,) metres
    quat_wxyz: np.ndarray  # (4,) w >= 0
    n_markers: int  # markers that agreed and were fused
    reprojection_error_px: float  # RMS over the fused corners
    frame_id: str
    stamp: float | None = None

    def matrix(self) -> np.ndarray:
        """The pose as a 4x4 transform."""
        return transforms.pose_matrix(self.position, self.quat_wxyz)


@dataclass
class DetectionReport:
    """What the last `estimate` saw besides the poses (for status and bad-input reports)."""

    marker_ids: list[int] = field(default_factory=list)  # our markers found
    unknown_ids: list[int] = field(default_factory=list)  # decoded ids that are not in the marker set
    rejected_candidates: int = 0  # square shapes that decoded in no id of our dictionary
    outlier_markers: dict[str, list[int]] = field(default_factory=dict)  # object -> markers that disagreed
    rejected_objects: dict[str, str] = field(default_factory=dict)  # object -> why no pose


def pose_matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """4x4 transform from an OpenCV rotation vector and translation."""
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))[0]
    T[:3, 3] = np.ravel(tvec)
    return T


class MarkerPoseEstimator:
    """Estimates the pose of every marked object in an image from one camera.

    marker_set: which markers are on which object; camera: the camera's intrinsics and extrinsic
    (a `CameraModel`; None is refused: there is no pose without intrinsics).
    """

    def __init__(
        self,
        marker_set: MarkerSet,
        camera: CameraModel | None,
        max_reprojection_px: float = 2.0,
        min_marker_px: float = 12.0,
        refine_edges: bool = True,
        min_ambiguity_ratio: float = 3.0,
        max_view_angle_deg: float = 65.0,
        max_prior_turn_deg: float = 30.0,
    ):
        if camera is None:
            raise CameraModelError("no camera model (CameraInfo): marker poses need the camera's intrinsics")
        if not isinstance(camera, CameraModel):
            raise TypeError(f"camera must be a perception.camera.CameraModel, got {type(camera).__name__}")
        self.marker_set = marker_set
        self.camera = camera
        self.max_reprojection_px = float(max_reprojection_px)
        self.refine_edges = bool(refine_edges)  # corners from the marker's edges (perception.corners)
        self.min_ambiguity_ratio = float(min_ambiguity_ratio)
        self.min_view_cos = math.cos(math.radians(max_view_angle_deg))  # steeper faces are left out when others are seen
        if not 0.0 < max_prior_turn_deg <= 180.0:
            raise ValueError(f"max_prior_turn_deg must be in (0, 180], got {max_prior_turn_deg}")
        self.max_prior_turn_deg = float(max_prior_turn_deg)
        params = cv2.aruco.DetectorParameters()
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        params.cornerRefinementWinSize = 3
        params.cornerRefinementMinAccuracy = 0.01
        params.cornerRefinementMaxIterations = 50
        # Markers smaller than min_marker_px on a side are not looked for (too few pixels per cell to decode reliably).
        params.minMarkerPerimeterRate = 4 * float(min_marker_px) / max(camera.width, camera.height)
        self._detector = cv2.aruco.ArucoDetector(marker_set.dictionary(), params)
        self._object_corners = {name: marker_set.object_corners(name) for name in marker_set.objects}
        # T_marker_object per marker: a marker's pose in the camera times this is its object's pose.
        self._marker_to_object = {m: invert(_marker_in_object(c)) for corners in self._object_corners.values() for m, c in corners.items()}
        self._square = {m: square_corners(marker_set.marker_length(m)) for m in range(marker_set.dictionary().bytesList.shape[0])}
        self.last_report = DetectionReport()

    def set_camera(self, camera: CameraModel) -> None:
        """Use another calibration of the same camera (CameraModelError if it is another camera's)."""
        if camera.frame_id != self.camera.frame_id:
            raise CameraModelError(f"calibration is for camera frame {camera.frame_id!r}, this estimator's camera is {self.camera.frame_id!r}")
        self.camera = camera

    # ------------------------------------------------------------------ inputs
    def _grey(self, image: np.ndarray) -> np.ndarray:
        if not isinstance(image, np.ndarray):
            raise ImageError(f"image must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ImageError(f"image must be uint8 (0..255), got {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 3:
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        elif image.ndim == 2:
            grey = image
        else:
            raise ImageError(f"image must be HxWx3 RGB or HxW grey, got shape {image.shape}")
        h, w = grey.shape
        if (w, h) != (self.camera.width, self.camera.height):
            raise ImageError(f"image is {w}x{h} but camera {self.camera.name!r} is calibrated for "
                             f"{self.camera.width}x{self.camera.height} (a calibration for another camera or resolution)")
        return grey

    def detect(self, image: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, int]:
        """Marker corners (each (4, 2), detector order), their ids, and the number of rejected candidates."""
        grey = self._grey(image)
        corners, ids, rejected = self._detector.detectMarkers(grey)
        ids = np.zeros(0, dtype=int) if ids is None else ids.ravel().astype(int)
        quads = [c.reshape(4, 2).astype(np.float64) for c in corners]
        if self.refine_edges and quads:
            g = grey.astype(np.float32)
            quads = [refine_corners_by_edges(g, q) for q in quads]
        return quads, ids, len(rejected)

    # ------------------------------------------------------------------ estimation
    def estimate(self, image_rgb: np.ndarray, stamp: float | None = None,
                 priors: dict[str, np.ndarray] | None = None) -> dict[str, ObjectPose]:
        """Poses (base frame) of every marked object seen in the image; objects not seen are absent.
        `priors`: object -> a recent orientation (quat wxyz, base frame), which a pose resting on one
        marker must agree with (step 5 of the module docstring)."""
        corners, ids, n_rejected = self.detect(image_rgb)
        report = DetectionReport(rejected_candidates=n_rejected)
        per_object: dict[str, list[tuple[int, np.ndarray]]] = {}
        for c, marker_id in zip(corners, ids):
            owner = self.marker_set.owner(marker_id)
            if owner is None:
                report.unknown_ids.append(int(marker_id))
                continue
            report.marker_ids.append(int(marker_id))
            if owner[0] in self._object_corners:
                per_object.setdefault(owner[0], []).append((int(marker_id), c))
        poses = {}
        R_cam_base = invert(self.camera.T_base_camera)[:3, :3]
        for name, seen in per_object.items():
            prior = None if not priors or name not in priors else R_cam_base @ transforms.quat_to_matrix(priors[name])
            pose = self._object_pose(name, seen, report, prior)
            if pose is not None:
                T = self.camera.T_base_camera @ pose[0]
                poses[name] = ObjectPose(name, T[:3, 3].copy(), rotation_to_quat(T[:3, :3]), pose[1], pose[2],
                                         self.camera.base_frame, stamp)
        self.last_report = report
        return poses

    def marker_pose(self, marker_id: int, corners: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Both IPPE_SQUARE poses (T_camera_marker, reprojection RMS px) of one marker, best first."""
        n, rvecs, tvecs, errs = cv2.solvePnPGeneric(self._square[marker_id], corners, self.camera.K, self.camera.distortion,
                                                    flags=cv2.SOLVEPNP_IPPE_SQUARE)
        out = [(pose_matrix(rvecs[i], tvecs[i]), float(np.ravel(errs)[i])) for i in range(n)]
        return sorted(out, key=lambda p: p[1])

    def _object_pose(self, name: str, seen: list[tuple[int, np.ndarray]], report: DetectionReport,
                     prior: np.ndarray | None = None) -> tuple[np.ndarray, int, float] | None:
        obj_corners = self._object_corners[name]
        K, D = self.camera.K, self.camera.distortion
        # Candidates: every marker's IPPE solutions, as object poses in the camera.
        candidates, ambiguity = [], {}
        for marker_id, c in seen:
            solutions = self.marker_pose(marker_id, c)
            ambiguity[marker_id] = solutions[-1][1] / max(solutions[0][1], 1e-3) if len(solutions) > 1 else math.inf
            for T_cam_marker, _ in solutions:
                candidates.append(T_cam_marker @ self._marker_to_object[marker_id])
        best, best_key = None, None
        for T in candidates:
            errs = [self._rms(obj_corners[m], c, T) for m, c in seen]
            inliers = [e < self.max_reprojection_px for e in errs]
            key = (sum(inliers), -sum(e for e, ok in zip(errs, inliers) if ok))
            if best_key is None or key > best_key:
                best, best_key = T, key
        inlier = [(m, c) for m, c in seen if self._rms(obj_corners[m], c, best) < self.max_reprojection_px]
        outliers = [m for m, _ in seen if m not in {i for i, _ in inlier}]
        if outliers:
            report.outlier_markers[name] = outliers
        if not inlier:
            report.rejected_objects[name] = f"no marker pose reprojects within {self.max_reprojection_px} px"
            return None
        if len(inlier) > 1:
            # A face seen edge-on has corners good to a pixel at best; while a better-placed face of the
            # same cube is in view, it only pulls the fit (measured: 0.6 px RMS, 5 mm off, with one at 75 deg).
            steep = [m for m, _ in inlier if self._view_cos(m, best) < self.min_view_cos]
            if len(steep) < len(inlier):
                inlier = [(m, c) for m, c in inlier if m not in steep]
        if len(inlier) == 1 and ambiguity[inlier[0][0]] < self.min_ambiguity_ratio:
            # One small marker seen nearly head-on: both of IPPE's poses fit the corners, and the wrong
            # one tilts the cube, moving its centre by up to a cube edge. No pose beats a wrong one.
            report.rejected_objects[name] = (f"one marker, ambiguous pose (the two IPPE solutions reproject "
                                             f"{ambiguity[inlier[0][0]]:.1f}x apart, need {self.min_ambiguity_ratio})")
            return None
        pts3 = np.concatenate([obj_corners[m] for m, _ in inlier])
        pts2 = np.concatenate([c for _, c in inlier])
        rvec, _ = cv2.Rodrigues(best[:3, :3])
        tvec = best[:3, 3].copy()
        rvec, tvec = cv2.solvePnPRefineLM(pts3, pts2, K, D, rvec, tvec.reshape(3, 1))
        T = pose_matrix(rvec, tvec)
        err = self._rms(pts3, pts2, T)
        if not np.isfinite(err) or err > self.max_reprojection_px or T[2, 3] <= 0:
            report.rejected_objects[name] = f"fused pose reprojects with {err:.2f} px (gate {self.max_reprojection_px} px)"
            return None
        if prior is not None and len(inlier) == 1 and _turn_deg(prior, T[:3, :3]) > self.max_prior_turn_deg:
            return self._other_ippe_solution(name, inlier[0], prior, report)
        return T, len(inlier), err

    def _other_ippe_solution(self, name: str, marker: tuple[int, np.ndarray], prior: np.ndarray,
                             report: DetectionReport) -> tuple[np.ndarray, int, float] | None:
        """The one fused marker's IPPE solution that agrees with the prior orientation (refined), or None."""
        marker_id, corners = marker
        pts3 = self._object_corners[name][marker_id]
        for T_cam_marker, _ in self.marker_pose(marker_id, corners):
            T = T_cam_marker @ self._marker_to_object[marker_id]
            if _turn_deg(prior, T[:3, :3]) > self.max_prior_turn_deg:
                continue
            rvec, _ = cv2.Rodrigues(T[:3, :3])
            rvec, tvec = cv2.solvePnPRefineLM(pts3, corners, self.camera.K, self.camera.distortion, rvec, T[:3, 3].reshape(3, 1).copy())
            T = pose_matrix(rvec, tvec)
            err = self._rms(pts3, corners, T)
            if np.isfinite(err) and err <= self.max_reprojection_px and T[2, 3] > 0 and _turn_deg(prior, T[:3, :3]) <= self.max_prior_turn_deg:
                return T, 1, err
        report.rejected_objects[name] = (f"one marker, and neither of its poses within {self.max_prior_turn_deg:g} deg "
                                         "of the object's recent orientation")
        return None

    def _view_cos(self, marker_id: int, T_cam_obj: np.ndarray) -> float:
        """Cosine between a marker's normal and the line of sight to it (1: head-on, 0: edge-on)."""
        T = T_cam_obj @ invert(self._marker_to_object[marker_id])  # the marker in the camera
        centre = T[:3, 3]
        return float(-T[:3, 2] @ centre / np.linalg.norm(centre))

    def _rms(self, pts3: np.ndarray, pts2: np.ndarray, T_cam_obj: np.ndarray) -> float:
        p = pts3 @ T_cam_obj[:3, :3].T + T_cam_obj[:3, 3]
        if np.any(p[:, 2] <= 1e-6):
            return math.inf
        if self.camera.distortion.any():
            rvec, _ = cv2.Rodrigues(T_cam_obj[:3, :3])
            proj = cv2.projectPoints(pts3, rvec, T_cam_obj[:3, 3], self.camera.K, self.camera.distortion)[0].reshape(-1, 2)
        else:
            K = self.camera.K
            x, y = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
            proj = np.column_stack((K[0, 0] * x + K[0, 1] * y + K[0, 2], K[1, 1] * y + K[1, 2]))
        d = proj - pts2
        return math.sqrt(float((d * d).sum()) / len(d))


def _turn_deg(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Angle (degrees) of the rotation between two rotation matrices."""
    c = (float(np.trace(R_a.T @ R_b)) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def _marker_in_object(corners: np.ndarray) -> np.ndarray:
    """T_object_marker from a marker's 4 object-frame corners (detector order)."""
    centre = corners.mean(axis=0)
    x = corners[1] - corners[0]
    y = corners[0] - corners[3]
    x /= np.linalg.norm(x)
    y /= np.linalg.norm(y)
    T = np.eye(4)
    T[:3, :3] = np.column_stack((x, y, np.cross(x, y)))
    T[:3, 3] = centre
    return T


@dataclass
class FilteredPose:
    """An object's smoothed pose and how old its last accepted measurement is."""

    name: str
    position: np.ndarray
    quat_wxyz: np.ndarray
    stamp: float  # time of the last accepted measurement
    age: float  # now - stamp
    frame_id: str
    n_markers: int


class PoseFilter:
    """Per-object smoothing with an outlier gate, keeping each object's last pose and its age.

    alpha: weight of a new measurement (1 = no smoothing); max_speed: m/s an object may move between
    measurements (plus `jump_margin` metres) before a measurement counts as an outlier; after
    `reanchor_after` consecutive outliers that agree with each other the filter jumps to them (the
    object really moved, e.g. it was carried while hidden); prior_max_age: how recent an orientation
    must be to serve as an estimator prior (`priors`).
    """

    def __init__(self, alpha: float = 0.6, max_speed: float = 1.0, jump_margin: float = 0.02, reanchor_after: int = 3,
                 prior_max_age: float = 1.0):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not (prior_max_age >= 0 and math.isfinite(prior_max_age)):
            raise ValueError(f"prior_max_age must be >= 0 s, got {prior_max_age}")
        self.prior_max_age = float(prior_max_age)  # s: orientations older than this are no prior (see `priors`)
        self.alpha, self.max_speed, self.jump_margin, self.reanchor_after = float(alpha), float(max_speed), float(jump_margin), int(reanchor_after)
        self._poses: dict[str, FilteredPose] = {}
        self._suspects: dict[str, list[ObjectPose]] = {}
        self.rejected: dict[str, int] = {}

    def update(self, poses: dict[str, ObjectPose], stamp: float) -> dict[str, FilteredPose]:
        """Fold one frame's poses in (all stamped `stamp`, seconds); returns every object's pose at `stamp`."""
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        for name, pose in poses.items():
            if not (np.isfinite(pose.position).all() and np.isfinite(pose.quat_wxyz).all()):
                self.rejected[name] = self.rejected.get(name, 0) + 1
                continue
            last = self._poses.get(name)
            if last is None:
                self._accept(pose, stamp, None)
                continue
            if last.frame_id != pose.frame_id:
                raise ValueError(f"{name}: pose in frame {pose.frame_id!r}, the filter holds {last.frame_id!r}")
            gate = self.max_speed * max(stamp - last.stamp, 0.0) + self.jump_margin
            if np.linalg.norm(pose.position - last.position) <= gate:
                self._suspects.pop(name, None)
                self._accept(pose, stamp, last)
                continue
            self.rejected[name] = self.rejected.get(name, 0) + 1
            suspects = self._suspects.setdefault(name, [])
            if suspects and np.linalg.norm(pose.position - suspects[-1].position) > self.jump_margin:
                suspects.clear()
            suspects.append(pose)
            if len(suspects) >= self.reanchor_after:
                self._suspects.pop(name)
                self._accept(pose, stamp, None)
        return self.poses(stamp)

    def _accept(self, pose: ObjectPose, stamp: float, last: FilteredPose | None) -> None:
        if last is None:
            pos, quat = np.array(pose.position, dtype=np.float64), np.array(pose.quat_wxyz, dtype=np.float64)
        else:
            a = self.alpha
            pos = (1 - a) * last.position + a * pose.position
            q = np.asarray(pose.quat_wxyz, dtype=np.float64)
            q = q if np.dot(q, last.quat_wxyz) >= 0 else -q
            quat = (1 - a) * last.quat_wxyz + a * q  # nlerp: close to slerp for the small steps the gate lets through
            quat /= np.linalg.norm(quat)
        self._poses[pose.name] = FilteredPose(pose.name, pos, quat, stamp, 0.0, pose.frame_id, pose.n_markers)

    def poses(self, now: float) -> dict[str, FilteredPose]:
        """Every object's last pose, with its age at `now`."""
        return {n: FilteredPose(p.name, p.position.copy(), p.quat_wxyz.copy(), p.stamp, now - p.stamp, p.frame_id, p.n_markers)
                for n, p in self._poses.items()}

    def get(self, name: str, now: float, max_age: float | None = None) -> FilteredPose | None:
        """The object's pose at `now`; None if never seen or (with max_age) older than max_age seconds."""
        p = self._poses.get(name)
        if p is None or (max_age is not None and now - p.stamp > max_age):
            return None
        return FilteredPose(p.name, p.position.copy(), p.quat_wxyz.copy(), p.stamp, now - p.stamp, p.frame_id, p.n_markers)

    def priors(self, now: float) -> dict[str, np.ndarray]:
        """Each object's orientation (quat wxyz) no older than `prior_max_age` at `now`: the
        `priors` a `MarkerPoseEstimator.estimate` checks one-marker poses against."""
        return {n: p.quat_wxyz.copy() for n, p in self._poses.items() if now - p.stamp <= self.prior_max_age}

    def reset(self) -> None:
        """Forget every object (a new episode)."""
        self._poses.clear()
        self._suspects.clear()
        self.rejected.clear()
