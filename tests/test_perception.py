"""Perception (issue 25): markers, camera models from the MJCF, marker poses from real MuJoCo renders,
the pose filter, and clear errors on bad input. Images are small where no pose is read; 640x480 (the
scene camera's calibrated size) where cube poses are checked against the simulator's truth."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import mujoco
import numpy as np
import pytest

import sim_assets
from perception import (
    CameraModel,
    CameraModelError,
    ImageError,
    MarkerPoseEstimator,
    MarkerSet,
    MarkerSetError,
    ObjectPose,
    PoseFilter,
    SimCamera,
    quat_angle_deg,
    true_object_poses,
)
from perception.markers import SIM_MARKERS_FILE


@pytest.fixture(scope="module")
def markers() -> MarkerSet:
    return MarkerSet.load()


# ---------------------------------------------------------------------------------- markers
def test_sim_marker_geometry_is_generated_from_the_marker_set(markers):
    shipped = json.loads((Path(sim_assets.__file__).parent / SIM_MARKERS_FILE).read_text())
    regenerated = json.loads(json.dumps(markers.sim_markers_doc()))
    assert shipped == regenerated, "run `python -m perception.markers` after editing perception/markers.yaml"


def test_generated_marker_images_decode_to_their_ids(markers):
    detector = cv2.aruco.ArucoDetector(markers.dictionary())
    for marker_id in (0, 13, markers.calibration_id):
        img = markers.marker_image(marker_id, pixels_per_cell=20)
        assert img[0, 0] == 255 and img[-1, -1] == 255  # white quiet zone
        _, ids, _ = detector.detectMarkers(img)
        assert ids is not None and ids.ravel().tolist() == [marker_id]


def test_marker_corners_lie_on_their_faces(markers):
    half = markers.objects["red"].size / 2
    for marker_id, corners in markers.object_corners("red").items():
        face = markers.owner(marker_id)[1]
        axis, sign = "xyz".index(face[1]), 1.0 if face[0] == "+" else -1.0
        assert np.allclose(sign * corners[:, axis], half, atol=1e-3)
        edges = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
        assert np.allclose(edges, markers.marker_size)


def test_marker_set_refuses_duplicate_ids_and_unknown_dictionaries(markers):
    doc = {"dictionary": "DICT_4X4_50", "marker_size": 0.03, "quiet_zone": 0.004,
           "objects": {"a": {"size": 0.04, "faces": {"+x": 1}}, "b": {"size": 0.04, "faces": {"+x": 1}}}}
    with pytest.raises(MarkerSetError, match="marker id 1 is on both"):
        MarkerSet.from_dict(doc)
    with pytest.raises(MarkerSetError, match="unknown ArUco dictionary"):
        MarkerSet.from_dict({**doc, "dictionary": "DICT_NOPE", "objects": {}})
    with pytest.raises(MarkerSetError, match="not in DICT_4X4_50"):
        MarkerSet.from_dict({**doc, "objects": {"a": {"size": 0.04, "faces": {"+x": 77}}}})


def test_marker_geoms_leave_the_cube_physics_unchanged():
    model = sim_assets.load_scene(("red",))
    body = model.body("cube_red").id
    visual = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body and model.geom(g).name != "cube_red"]
    assert len(visual) > 6
    assert all(model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0 for g in visual)
    m, a = sim_assets.CUBE_MASS, sim_assets.CUBE_HALF_SIZE
    assert model.body_mass[body] == pytest.approx(m)
    assert np.allclose(model.body_inertia[body], m * (2 * a) ** 2 / 6)
    assert np.allclose(model.body_ipos[body], 0)


# ---------------------------------------------------------------------------------- camera model
def test_intrinsics_from_mjcf_match_where_a_known_point_renders():
    points = [(x, y, 0.0) for x in (-0.2, 0.0, 0.15) for y in (-0.1, 0.12)]
    spheres = "".join(f'<geom type="sphere" size="0.006" pos="{x} {y} {z}" rgba="1 1 1 1"/>' for x, y, z in points)
    xml = f"""<mujoco><visual><headlight ambient="1 1 1" diffuse="0 0 0" specular="0 0 0"/></visual>
      <worldbody><camera name="c" pos="0.05 -0.02 1" xyaxes="0.995 0.0998 0 -0.0998 0.995 0" fovy="50"/>{spheres}</worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    w, h = 200, 150
    cam = CameraModel.from_mujoco(model, data, "c", w, h, base_body="world")
    assert cam.K[1, 1] == pytest.approx(h / 2 / np.tan(np.radians(25)))
    with mujoco.Renderer(model, h, w) as r:
        r.update_scene(data, "c")
        img = r.render()[:, :, 0].astype(float)
    ys, xs = np.mgrid[0:h, 0:w]
    for p in cam.project(np.array(points)):
        win = img * ((abs(xs - p[0]) < 8) & (abs(ys - p[1]) < 8))
        centroid = np.array([(win * xs).sum(), (win * ys).sum()]) / win.sum()
        assert np.linalg.norm(centroid - p) < 0.3, (centroid, p)  # a wrong principal point is off by 0.5 px


def test_camera_info_dict_round_trips_and_refuses_missing_or_foreign_info():
    model = sim_assets.load_scene(("red",))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    cam = CameraModel.from_mujoco(model, data, "scene", 320, 240)
    info = cam.to_camera_info_dict()
    assert set(info) >= {"k", "d", "p", "r", "width", "height", "distortion_model", "frame_id"}
    back = CameraModel.from_camera_info_dict(info, T_base_camera=cam.T_base_camera)
    assert np.allclose(back.K, cam.K) and back.frame_id == cam.frame_id == "scene_optical_frame"
    assert np.allclose(CameraModel.from_dict(cam.to_dict()).T_base_camera, cam.T_base_camera)
    with pytest.raises(CameraModelError, match="no CameraInfo"):
        CameraModel.from_camera_info_dict({})
    with pytest.raises(CameraModelError, match="uncalibrated"):
        CameraModel.from_camera_info_dict({**info, "k": [0.0] * 9})
    with pytest.raises(CameraModelError, match="calibration of camera 'scene'"):
        cam.with_camera_info({**info, "frame_id": "wrist_optical_frame"})
    with pytest.raises(CameraModelError, match="no camera 'nope'"):
        CameraModel.from_mujoco(model, data, "nope", 320, 240)


# ---------------------------------------------------------------------------------- poses from renders
def test_a_rendered_marked_cube_is_located_within_a_few_mm(markers):
    model = sim_assets.load_scene(("red", "blue"))
    data = mujoco.MjData(model)
    sim_assets.load_robot("panda")
    for name, pos, yaw in (("red", (0.55, 0.06, 0.02), 0.4), ("blue", (0.62, -0.1, 0.02), -0.9)):
        adr = model.joint(f"cube_{name}_joint").qposadr[0]
        data.qpos[adr : adr + 7] = (*pos, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2))
    mujoco.mj_forward(model, data)
    cam = SimCamera(model, data, "scene", 640, 480)
    try:
        est = MarkerPoseEstimator(markers, cam.camera)
        poses = est.estimate(cam.render(), stamp=1.5)
    finally:
        cam.close()
    truth = true_object_poses(model, data, ("red", "blue"))
    assert set(poses) == {"red", "blue"}
    for name, (p, q) in truth.items():
        pose = poses[name]
        assert pose.n_markers >= 2 and pose.frame_id == "panda_link0" and pose.stamp == 1.5
        assert np.linalg.norm(pose.position - p) < 0.004, (name, pose.position, p)
        assert quat_angle_deg(pose.quat_wxyz, q) < 2.0


def _canvas_with(marker: np.ndarray, size=(320, 240)) -> np.ndarray:
    w, h = size
    img = np.full((h, w), 255, np.uint8)
    y0, x0 = (h - marker.shape[0]) // 2, (w - marker.shape[1]) // 2
    img[y0 : y0 + marker.shape[0], x0 : x0 + marker.shape[1]] = marker
    return np.repeat(img[:, :, None], 3, axis=2)


def _plain_camera(w=320, h=240) -> CameraModel:
    return CameraModel("test", w, h, np.array([[300.0, 0, (w - 1) / 2], [0, 300.0, (h - 1) / 2], [0, 0, 1]]))


def test_bad_images_and_missing_camera_give_clear_errors(markers):
    est = MarkerPoseEstimator(markers, _plain_camera())
    with pytest.raises(ImageError, match="uint8"):
        est.estimate(np.zeros((240, 320, 3), np.float32))
    with pytest.raises(ImageError, match="HxWx3"):
        est.estimate(np.zeros((240, 320, 4), np.uint8))
    with pytest.raises(ImageError, match="calibrated for 320x240"):
        est.estimate(np.zeros((480, 640, 3), np.uint8))
    with pytest.raises(ImageError, match="numpy array"):
        est.estimate([[0]])
    with pytest.raises(CameraModelError, match="no camera model"):
        MarkerPoseEstimator(markers, None)
    with pytest.raises(CameraModelError, match="calibration is for camera frame"):
        est.set_camera(CameraModel("other", 320, 240, _plain_camera().K))
    assert est.estimate(np.zeros((240, 320, 3), np.uint8)) == {}  # black frame: nothing, no error


def test_markers_from_another_dictionary_or_unknown_ids_are_reported_not_used(markers):
    est = MarkerPoseEstimator(markers, _plain_camera())
    other = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_6X6_250), 3, 120)
    assert est.estimate(_canvas_with(np.pad(other, 20, constant_values=255))) == {}
    assert est.last_report.marker_ids == [] and est.last_report.rejected_candidates >= 1
    stranger = cv2.aruco.generateImageMarker(markers.dictionary(), 30, 120)  # in DICT_4X4_50, on no object
    assert est.estimate(_canvas_with(np.pad(stranger, 20, constant_values=255))) == {}
    assert est.last_report.unknown_ids == [30]


def _slanted_marker(markers: MarkerSet, cam: CameraModel, marker_id: int, tilt_deg: float, distance: float) -> np.ndarray:
    """An image of one marker `tilt_deg` from head-on at `distance` m, warped onto a grey canvas."""
    a = np.radians(tilt_deg)
    R = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]) @ np.diag([1.0, -1.0, -1.0])
    px, pad = 200, 66
    img = np.pad(cv2.aruco.generateImageMarker(markers.dictionary(), marker_id, px), pad, constant_values=255)
    s = markers.marker_length(marker_id) / px * (px + 2 * pad) / 2  # half the padded square, metres
    square = np.array([[-s, s, 0], [s, s, 0], [s, -s, 0], [-s, -s, 0]])
    p = (square @ R.T + (0.0, 0.0, distance)) @ cam.K.T
    n = img.shape[0] - 1
    H = cv2.getPerspectiveTransform(np.float32([[0, 0], [n, 0], [n, n], [0, n]]), (p[:, :2] / p[:, 2:]).astype(np.float32))
    out = cv2.warpPerspective(img, H, (cam.width, cam.height), flags=cv2.INTER_LINEAR, borderValue=200)
    return np.repeat(out[:, :, None], 3, axis=2)


def test_a_one_marker_pose_must_agree_with_the_objects_recent_orientation(markers):
    """One slanted marker has two IPPE poses; with a prior orientation the estimator keeps the one
    that agrees with it (the flipped one moves a cube's centre by centimetres), and drops the pose
    when neither does."""
    from common.transforms import matrix_to_quat, quat_to_matrix

    cam = _plain_camera()
    est = MarkerPoseEstimator(markers, cam)
    img = _slanted_marker(markers, cam, 12, 60.0, 0.25)  # a face of the blue cube
    plain = est.estimate(img)["blue"]
    assert plain.n_markers == 1
    (corners,), (marker_id,), _ = est.detect(img)
    (T_best, e_best), (T_flip, e_flip) = est.marker_pose(int(marker_id), corners)
    assert e_best < e_flip < est.max_reprojection_px  # both fit the corners; the flip a little worse
    flip = matrix_to_quat((T_flip @ est._marker_to_object[12])[:3, :3])

    same = est.estimate(img, priors={"blue": plain.quat_wxyz})["blue"]
    np.testing.assert_allclose(same.position, plain.position)
    flipped = est.estimate(img, priors={"blue": flip})["blue"]
    assert quat_angle_deg(flipped.quat_wxyz, flip) < 30.0
    assert np.linalg.norm(flipped.position - plain.position) > 0.01  # the other solution, centimetres away

    turned = matrix_to_quat(quat_to_matrix(plain.quat_wxyz) @ np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]))
    assert est.estimate(img, priors={"blue": turned}) == {}
    assert "recent orientation" in est.last_report.rejected_objects["blue"]
    with pytest.raises(ValueError, match="max_prior_turn_deg"):
        MarkerPoseEstimator(markers, cam, max_prior_turn_deg=0.0)


def test_pose_filter_priors_are_recent_orientations():
    f = PoseFilter(alpha=1.0, prior_max_age=0.5)
    f.update({"red": _pose(0.5)}, 1.0)
    np.testing.assert_allclose(f.priors(1.4)["red"], [1.0, 0, 0, 0])
    assert f.priors(1.6) == {}
    with pytest.raises(ValueError, match="prior_max_age"):
        PoseFilter(prior_max_age=float("nan"))


# ---------------------------------------------------------------------------------- filter
def _pose(x: float, frame: str = "base") -> ObjectPose:
    return ObjectPose("red", np.array([x, 0.0, 0.02]), np.array([1.0, 0, 0, 0]), 2, 0.1, frame)


def test_pose_filter_smooths_gates_jumps_reanchors_and_ages():
    f = PoseFilter(alpha=0.5, max_speed=0.5, jump_margin=0.01, reanchor_after=3)
    f.update({"red": _pose(0.50)}, 0.0)
    out = f.update({"red": _pose(0.51)}, 0.04)
    assert out["red"].position[0] == pytest.approx(0.505) and out["red"].age == 0.0
    out = f.update({"red": _pose(0.80)}, 0.08)  # 0.3 m in 40 ms: an outlier, held
    assert out["red"].position[0] == pytest.approx(0.505) and out["red"].age == pytest.approx(0.04)
    assert f.rejected["red"] == 1
    f.update({"red": _pose(0.80)}, 0.12)
    out = f.update({"red": _pose(0.80)}, 0.16)  # three agreeing "outliers": it really moved
    assert out["red"].position[0] == pytest.approx(0.80)
    assert f.get("red", now=2.0, max_age=1.0) is None and f.get("red", now=1.0).age == pytest.approx(0.84)
    with pytest.raises(ValueError, match="frame"):
        f.update({"red": _pose(0.80, frame="camera")}, 0.2)
