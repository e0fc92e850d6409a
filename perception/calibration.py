"""Hand-eye calibration: where a camera is, from a marker seen over a set of arm poses (cv2.calibrateHandEye).

Two set-ups, as OpenCV names them:
- eye-to-hand (a fixed camera, e.g. "scene"): a marker rigidly on the gripper; the unknown is the
  camera in the robot base frame, T_base_camera. OpenCV solves it when handed the inverted gripper
  poses (base in gripper) instead of the gripper poses.
- eye-in-hand (a camera on the arm, e.g. "wrist"): a marker fixed in the world (here the
  calibration marker lying on the table); the unknown is the camera in the gripper (flange) frame,
  T_flange_camera.

Residual: with the solved transform, the target's pose implied by each view (in the gripper frame
for eye-to-hand, in the base frame for eye-in-hand) should be one and the same; its spread over the
views (RMS, mm and degrees) is the calibration's residual. Every OpenCV method is tried and the one
with the smallest residual kept. In simulation the true camera pose is known, so
`calibrate_in_sim` also reports the error against it.

`write_profile_calibration` puts the result into a robot/ROS profile YAML
(`cameras.<camera>.calibration`, `CameraModel.to_dict()`), keeping the rest of the file and its
comments as they are, atomically (common.atomic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import mujoco
import numpy as np
import yaml

from common.atomic import atomic_write_text
from perception.camera import CameraModel, _base_of, body_pose, invert
from perception.detector import MarkerPoseEstimator, rotation_to_quat
from perception.markers import MarkerSet
from perception.sim import quat_angle_deg

METHODS = {
    "tsai": cv2.CALIB_HAND_EYE_TSAI,
    "park": cv2.CALIB_HAND_EYE_PARK,
    "horaud": cv2.CALIB_HAND_EYE_HORAUD,
    "andreff": cv2.CALIB_HAND_EYE_ANDREFF,
    "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
MIN_VIEWS = 5


class CalibrationError(ValueError):
    """A calibration that cannot be computed or written (too few views, degenerate motion, bad profile)."""


@dataclass
class HandEyeResult:
    """A hand-eye solution: `T` is T_base_camera (eye-to-hand) or T_flange_camera (eye-in-hand)."""

    mode: str  # "eye_to_hand" | "eye_in_hand"
    T: np.ndarray
    method: str
    n_views: int
    residual_mm: float
    residual_deg: float
    error_mm: float | None = None  # against the true pose (simulation only)
    error_deg: float | None = None
    per_method: dict[str, tuple[float, float]] = field(default_factory=dict)  # method -> (residual mm, deg)
    dropped_views: list[int] = field(default_factory=list)  # views left out as outliers

    def summary(self) -> dict[str, Any]:
        """Plain values for JSON and printing."""
        out = {"mode": self.mode, "method": self.method, "views": self.n_views, "dropped_views": len(self.dropped_views),
               "residual_mm": round(self.residual_mm, 3), "residual_deg": round(self.residual_deg, 3),
               "T": np.round(self.T, 6).tolist()}
        if self.error_mm is not None:
            out.update(error_vs_truth_mm=round(self.error_mm, 3), error_vs_truth_deg=round(self.error_deg, 3))
        return out


def solve_hand_eye(T_base_gripper: list[np.ndarray], T_camera_target: list[np.ndarray], mode: str,
                   methods: tuple[str, ...] = tuple(METHODS), outlier_factor: float = 3.0) -> HandEyeResult:
    """Solve the hand-eye problem for paired views (gripper pose from FK, target pose from the image).

    Views whose implied target pose is more than `outlier_factor` x the median deviation off the others
    (a misread marker, a pose flipped by IPPE's ambiguity) are dropped once and the rest solved again,
    keeping at least MIN_VIEWS; `HandEyeResult.dropped_views` lists them."""
    if mode not in ("eye_to_hand", "eye_in_hand"):
        raise CalibrationError(f"mode must be 'eye_to_hand' or 'eye_in_hand', got {mode!r}")
    if len(T_base_gripper) != len(T_camera_target):
        raise CalibrationError(f"{len(T_base_gripper)} gripper poses but {len(T_camera_target)} target poses")
    if len(T_base_gripper) < MIN_VIEWS:
        raise CalibrationError(f"{len(T_base_gripper)} usable views; hand-eye calibration needs at least {MIN_VIEWS} "
                               "(move the arm so the marker is seen from more poses)")
    first = _solve(list(T_base_gripper), list(T_camera_target), mode, methods)
    dev = _deviations(first.T, T_base_gripper, T_camera_target, mode)
    cut = outlier_factor * max(float(np.median(dev)), 1e-4)
    keep = [i for i, d in enumerate(dev) if d <= cut]
    if len(keep) == len(dev) or len(keep) < MIN_VIEWS:
        return first
    result = _solve([T_base_gripper[i] for i in keep], [T_camera_target[i] for i in keep], mode, methods)
    result.dropped_views = [i for i in range(len(dev)) if i not in keep]
    return result


def _solve(T_base_gripper: list[np.ndarray], T_camera_target: list[np.ndarray], mode: str,
           methods: tuple[str, ...]) -> HandEyeResult:
    gripper = [invert(T) for T in T_base_gripper] if mode == "eye_to_hand" else list(T_base_gripper)
    Rg, tg = [T[:3, :3] for T in gripper], [T[:3, 3] for T in gripper]
    Rt, tt = [T[:3, :3] for T in T_camera_target], [T[:3, 3] for T in T_camera_target]
    best: HandEyeResult | None = None
    per_method = {}
    for name in methods:
        R, t = cv2.calibrateHandEye(Rg, tg, Rt, tt, method=METHODS[name])
        X = np.eye(4)
        X[:3, :3], X[:3, 3] = R, np.ravel(t)
        if not np.isfinite(X).all():
            continue
        res_mm, res_deg = _residual(X, T_base_gripper, T_camera_target, mode)
        per_method[name] = (res_mm, res_deg)
        if best is None or res_mm + res_deg < best.residual_mm + best.residual_deg:
            best = HandEyeResult(mode, X, name, len(gripper), res_mm, res_deg)
    if best is None:
        raise CalibrationError("every hand-eye method failed (degenerate motion: rotate the gripper about more than one axis)")
    best.per_method = per_method
    return best


def _implied_targets(X: np.ndarray, T_base_gripper: list[np.ndarray], T_camera_target: list[np.ndarray], mode: str) -> list[np.ndarray]:
    """The target pose each view implies under X: in the gripper (eye-to-hand) or in the base (eye-in-hand)."""
    if mode == "eye_to_hand":
        return [invert(Tg) @ X @ Tc for Tg, Tc in zip(T_base_gripper, T_camera_target)]
    return [Tg @ X @ Tc for Tg, Tc in zip(T_base_gripper, T_camera_target)]


def _deviations(X: np.ndarray, T_base_gripper: list[np.ndarray], T_camera_target: list[np.ndarray], mode: str) -> np.ndarray:
    """Per view: distance (m) of its implied target position from the median of all views'."""
    p = np.array([T[:3, 3] for T in _implied_targets(X, T_base_gripper, T_camera_target, mode)])
    return np.linalg.norm(p - np.median(p, axis=0), axis=1)


def _residual(X: np.ndarray, T_base_gripper: list[np.ndarray], T_camera_target: list[np.ndarray], mode: str) -> tuple[float, float]:
    """Spread (RMS mm, RMS deg) of the target pose each view implies, which should be constant."""
    implied = _implied_targets(X, T_base_gripper, T_camera_target, mode)
    p = np.array([T[:3, 3] for T in implied])
    U, _, Vt = np.linalg.svd(sum(T[:3, :3] for T in implied))
    R_mean = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    q_mean = rotation_to_quat(R_mean)
    angles = [quat_angle_deg(rotation_to_quat(T[:3, :3]), q_mean) for T in implied]
    return float(np.sqrt(((p - p.mean(axis=0)) ** 2).sum(axis=1).mean()) * 1000), float(np.sqrt(np.mean(np.square(angles))))


def pose_error(T_est: np.ndarray, T_true: np.ndarray) -> tuple[float, float]:
    """(translation error mm, rotation error deg) between two poses."""
    return (float(np.linalg.norm(T_est[:3, 3] - T_true[:3, 3]) * 1000),
            quat_angle_deg(rotation_to_quat(T_est[:3, :3]), rotation_to_quat(T_true[:3, :3])))


# ---------------------------------------------------------------------------------- simulation
@dataclass
class SimCalibrationViews:
    """Views collected in simulation, with the truth to score the solution against."""

    mode: str
    T_base_gripper: list[np.ndarray]
    T_camera_target: list[np.ndarray]
    T_true: np.ndarray  # T_base_camera (eye-to-hand) or T_flange_camera (eye-in-hand)
    camera: CameraModel  # the camera's intrinsics (and true extrinsic at the home pose)
    tried: int


def collect_sim_views(robot: str = "panda", camera: str = "scene", n_views: int = 20, seed: int = 0,
                      width: int = 640, height: int = 480, joint_range: float = 0.3,
                      marker_set: MarkerSet | None = None) -> SimCalibrationViews:
    """Move the simulated arm through random poses around home and measure the target in each image.

    A fixed camera sees the calibration marker mounted on the hand (eye-to-hand); a camera on the arm
    sees it lying on the table where the camera looks at home (eye-in-hand). Poses are set by kinematics
    (no physics): the calibration needs only where the gripper is, which the robot's FK says."""
    import sim_assets

    markers = marker_set or MarkerSet.load()
    desc = sim_assets.load_robot(robot)
    spec = mujoco.MjSpec.from_string(sim_assets.scene_xml(("red",), (), desc))
    model = spec.compile()
    data = mujoco.MjData(model)
    try:
        cam_id = model.camera(camera).id
    except KeyError:
        raise CalibrationError(f"robot {robot!r} scene has no camera {camera!r}; cameras: "
                               f"{[model.camera(i).name for i in range(model.ncam)]}") from None
    mode = "eye_to_hand" if model.cam_bodyid[cam_id] == 0 else "eye_in_hand"
    arm_q = np.array([model.joint(j).qposadr[0] for j in desc.arm.joints])
    home = np.asarray(desc.home_arm, dtype=np.float64)
    lo, hi = np.asarray(desc.arm.position_lower), np.asarray(desc.arm.position_upper)
    hand = model.body(model.site(desc.tcp_site).bodyid[0]).name

    def set_arm(q: np.ndarray) -> None:
        data.qpos[arm_q] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)  # camera and light poses (what rendering and the truth read)

    set_arm(home)
    if mode == "eye_to_hand":
        _mount_calibration_marker(spec, model, data, hand, cam_id, markers)
    else:
        _lay_calibration_marker(spec, data, cam_id, markers)
    model = spec.compile()
    data = mujoco.MjData(model)
    set_arm(home)
    base_body, base_frame = _base_of(model, None, None)
    flange = model.site(desc.flange_site).id
    cam_model = CameraModel.from_mujoco(model, data, camera, width, height)
    # Target poses in the camera frame: an estimator whose extrinsic is the identity.
    estimator = MarkerPoseEstimator(markers, cam_model.with_extrinsic(np.eye(4)))
    renderer = mujoco.Renderer(model, height=height, width=width)
    option = mujoco.MjvOption()
    option.sitegroup[:] = 0
    rng = np.random.default_rng(seed)
    T_bg, T_ct = [], []
    tried = 0
    T_true = None
    try:
        while len(T_bg) < n_views and tried < 10 * n_views:
            q = home if tried == 0 else np.clip(home + rng.uniform(-joint_range, joint_range, home.size), lo, hi)
            tried += 1
            set_arm(q)
            renderer.update_scene(data, camera=camera, scene_option=option)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False  # 5x cheaper in software GL; not needed
            T_target = _target_in_camera(estimator, renderer.render(), markers)
            if T_target is None:
                continue
            T_base_flange = invert(body_pose(model, data, base_body))
            Tf = np.eye(4)
            Tf[:3, :3], Tf[:3, 3] = data.site_xmat[flange].reshape(3, 3), data.site_xpos[flange]
            T_base_flange = T_base_flange @ Tf
            T_bg.append(T_base_flange)
            T_ct.append(T_target)
            if T_true is None:
                T_cam = CameraModel.from_mujoco(model, data, camera, width, height).T_base_camera
                T_true = T_cam if mode == "eye_to_hand" else invert(T_base_flange) @ T_cam
    finally:
        renderer.close()
    if T_true is None:
        raise CalibrationError(f"the target was never seen by camera {camera!r} in {tried} poses")
    return SimCalibrationViews(mode, T_bg, T_ct, T_true, cam_model, tried)


def calibrate_in_sim(robot: str = "panda", camera: str = "scene", n_views: int = 20, seed: int = 0,
                     width: int = 640, height: int = 480) -> tuple[HandEyeResult, SimCalibrationViews]:
    """Collect views in simulation, solve, and score the solution against the true camera pose."""
    views = collect_sim_views(robot, camera, n_views, seed, width, height)
    result = solve_hand_eye(views.T_base_gripper, views.T_camera_target, views.mode)
    result.error_mm, result.error_deg = pose_error(result.T, views.T_true)
    return result, views


def _target_in_camera(estimator: MarkerPoseEstimator, image: np.ndarray, markers: MarkerSet) -> np.ndarray | None:
    """T_camera_target of the calibration marker; None when unseen, badly fit or ambiguous."""
    corners, ids, _ = estimator.detect(image)
    for c, marker_id in zip(corners, ids):
        if marker_id == markers.calibration_id:
            solutions = estimator.marker_pose(int(marker_id), c)
            if solutions[0][1] > estimator.max_reprojection_px:
                return None
            if len(solutions) > 1 and solutions[1][1] < estimator.min_ambiguity_ratio * max(solutions[0][1], 1e-3):
                return None  # ambiguous: seen nearly head-on, too small
            return solutions[0][0]
    return None


def _mount_calibration_marker(spec: mujoco.MjSpec, model: mujoco.MjModel, data: mujoco.MjData, hand: str,
                              cam_id: int, markers: MarkerSet) -> None:
    """Visual-only calibration marker on the hand, facing the camera at the home pose."""
    b = model.body(hand).id
    R_wh = data.xmat[b].reshape(3, 3)
    to_cam = data.cam_xpos[cam_id] - data.xpos[b]
    z = R_wh.T @ (to_cam / np.linalg.norm(to_cam))  # plate normal, hand frame
    x = np.cross([0.0, 0.0, 1.0], z) if abs(z[2]) < 0.9 else np.cross([1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.column_stack((x, np.cross(z, x), z))
    centre = 0.07 * z  # in front of the hand, towards the camera
    quat = rotation_to_quat(R)
    body = spec.body(hand)
    for c, half, colour in markers.marker_boxes(markers.calibration_id):
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, pos=R @ c + centre, quat=quat, size=half,
                      material=f"marker_{colour}", contype=0, conaffinity=0, group=2, mass=0)


def _lay_calibration_marker(spec: mujoco.MjSpec, data: mujoco.MjData, cam_id: int, markers: MarkerSet) -> None:
    """Visual-only calibration marker lying on the table where the camera's optical axis meets it at home."""
    origin = data.cam_xpos[cam_id]
    forward = -data.cam_xmat[cam_id].reshape(3, 3)[:, 2]
    if forward[2] >= -0.1:
        raise CalibrationError("the camera does not look down at the table at the home pose")
    p = origin - origin[2] / forward[2] * forward
    for c, half, colour in markers.marker_boxes(markers.calibration_id):
        spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, pos=c + (p[0], p[1], 0.0), size=half,
                                material=f"marker_{colour}", contype=0, conaffinity=0, group=2, mass=0)


# ---------------------------------------------------------------------------------- profiles
def write_profile_calibration(profile: str | Path, camera: CameraModel) -> Path:
    """Write `camera` (`CameraModel.to_dict()`) as `cameras.<name>.calibration` in a profile YAML.

    Only that block changes; the rest of the file, comments included, stays. The camera's base_frame
    is the profile's `base_frame` unless it is a flange frame (eye-in-hand). Atomic (common.atomic)."""
    path = Path(profile)
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise CalibrationError(f"{path}: not a profile (expected a mapping)")
    block = yaml.safe_dump(camera.to_dict(), sort_keys=False, default_flow_style=None, width=200)
    lines = text.splitlines()
    cam_line = _find_key(lines, camera.name, indent=2, within=_find_key(lines, "cameras", indent=0))
    if cam_line is None:
        add = [f"  {camera.name}:", "    calibration:"] + ["      " + ln for ln in block.splitlines()]
        top = _find_key(lines, "cameras", indent=0)
        if top is None:
            lines += ["cameras:"] + add
        else:
            end = _block_end(lines, top, 0)
            lines[end:end] = add
    else:
        cal = _find_key(lines, "calibration", indent=4, within=cam_line)
        new = ["    calibration:                      # written by skillstack calibrate"] + ["      " + ln for ln in block.splitlines()]
        if cal is None:
            end = _block_end(lines, cam_line, 2)
            lines[end:end] = new
        else:
            lines[cal : _block_end(lines, cal, 4)] = new
    out = "\n".join(lines) + "\n"
    check = yaml.safe_load(out)["cameras"][camera.name]["calibration"]
    written = CameraModel.from_dict(check)
    if not np.allclose(written.T_base_camera, camera.T_base_camera, atol=1e-8) or written.frame_id != camera.frame_id:
        raise CalibrationError(f"{path}: the calibration would not read back as written; file left unchanged")
    return atomic_write_text(path, out)


def _find_key(lines: list[str], key: str, indent: int, within: int | None = -1) -> int | None:
    if within is None:
        return None
    start, end = (0, len(lines)) if within < 0 else (within + 1, _block_end(lines, within, indent - 2))
    pattern = re.compile(rf"^ {{{indent}}}{re.escape(key)}:(\s|$)")
    for i in range(start, end):
        if pattern.match(lines[i]):
            return i
    return None


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index after the last line of the block opened at `start` (a key at `indent`): lines more indented, or blank."""
    i = start + 1
    while i < len(lines):
        ln = lines[i]
        if ln.strip() and (len(ln) - len(ln.lstrip(" "))) <= indent and not ln.lstrip().startswith("#"):
            break
        i += 1
    while i > start + 1 and not lines[i - 1].strip():
        i -= 1
    return i
