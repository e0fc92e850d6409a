"""Hand-eye calibration (issue 25): the solver on exact synthetic views, in simulation against the true
camera pose (real MuJoCo renders), writing the result into a profile YAML, and the perception wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from perception.calibration import CalibrationError, calibrate_in_sim, pose_error, solve_hand_eye, write_profile_calibration
from perception.camera import CameraModel, invert


def _random_pose(rng: np.random.Generator, scale: float = 0.3) -> np.ndarray:
    import cv2

    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rng.uniform(-0.6, 0.6, 3))[0]
    T[:3, 3] = rng.uniform(-scale, scale, 3) + (0.5, 0, 0.3)
    return T


@pytest.mark.parametrize("mode", ["eye_to_hand", "eye_in_hand"])
def test_solver_recovers_the_transform_from_exact_views(mode):
    rng = np.random.default_rng(1)
    X = _random_pose(rng)  # T_base_camera (eye-to-hand) or T_flange_camera (eye-in-hand)
    fixed = _random_pose(rng, 0.05)  # target in the gripper (eye-to-hand) or in the base (eye-in-hand)
    grippers = [_random_pose(rng) for _ in range(10)]
    if mode == "eye_to_hand":
        targets = [invert(X) @ G @ fixed for G in grippers]
    else:
        targets = [invert(G @ X) @ fixed for G in grippers]
    result = solve_hand_eye(grippers, targets, mode)
    err_mm, err_deg = pose_error(result.T, X)
    assert err_mm < 1e-3 and err_deg < 1e-3
    assert result.residual_mm < 1e-3 and result.n_views == 10


def test_solver_refuses_too_few_or_unpaired_views():
    rng = np.random.default_rng(0)
    poses = [_random_pose(rng) for _ in range(3)]
    with pytest.raises(CalibrationError, match="at least"):
        solve_hand_eye(poses, poses, "eye_to_hand")
    with pytest.raises(CalibrationError, match="3 gripper poses but 2"):
        solve_hand_eye(poses, poses[:2], "eye_in_hand")
    with pytest.raises(CalibrationError, match="mode"):
        solve_hand_eye(poses, poses, "eye_on_table")


@pytest.mark.parametrize("camera,mode", [("scene", "eye_to_hand"), ("wrist", "eye_in_hand")])
def test_calibration_in_sim_recovers_the_true_camera_pose(camera, mode):
    result, views = calibrate_in_sim("panda", camera, n_views=8, seed=0)
    assert views.mode == mode and result.n_views == 8
    assert result.error_mm < 10.0 and result.error_deg < 1.0, result.summary()
    assert result.residual_mm < 5.0


def test_calibration_is_written_into_the_profile_keeping_the_rest(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("# my robot\nname: p\nrobot: panda   # the arm\nbase_frame: world\ncameras:\n  scene:\n"
                       "    image_topic: /cam/image_raw   # raw\n    calibration:\n      name: old\n  other:\n    image_topic: /x\n"
                       "watchdog: {missed_messages: 5}\n")
    T = np.eye(4)
    T[:3, 3] = (1.0, 0.0, 0.5)
    cam = CameraModel("scene", 640, 480, np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]]),
                      T_base_camera=T, base_frame="world")
    write_profile_calibration(profile, cam)
    text = profile.read_text()
    assert "# my robot" in text and "robot: panda   # the arm" in text and "image_topic: /cam/image_raw   # raw" in text
    doc = yaml.safe_load(text)
    assert doc["cameras"]["other"] == {"image_topic": "/x"} and doc["watchdog"] == {"missed_messages": 5}
    back = CameraModel.from_dict(doc["cameras"]["scene"]["calibration"])
    assert np.allclose(back.T_base_camera, T) and back.frame_id == "scene_optical_frame"
    wrist = CameraModel("wrist", 320, 240, cam.K / [2, 2, 1] * [1, 1, 1], base_frame="panda_flange")
    write_profile_calibration(profile, wrist)  # a camera the profile did not list is added
    doc = yaml.safe_load(profile.read_text())
    assert doc["cameras"]["wrist"]["calibration"]["base_frame"] == "panda_flange"
    assert np.allclose(doc["cameras"]["scene"]["calibration"]["T_base_camera"], T)


def test_perceived_pose_wrapper_puts_pixel_poses_into_the_observation():
    import envs
    from perception.wrapper import PerceivedPoseWrapper

    env = PerceivedPoseWrapper(envs.make("skillstack/PandaPickPlace-v0"), width=640, height=480)
    try:
        obs, info = env.reset(seed=3)
        layout = env.unwrapped.observation_layout
        true = info["true_object_positions"]["red"]
        assert info["perception"]["seen"] == ["red"]
        perceived = obs["observation"][layout["red_pos"]]
        assert 0 < np.linalg.norm(perceived - true) < 0.004  # from pixels: close, never bit-equal
        assert np.array_equal(obs["achieved_goal"], perceived)
        assert np.allclose(obs["observation"][layout["red_rel_pos"]], perceived - obs["observation"][layout["tcp_pos"]])
        obs, _, _, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
        assert np.linalg.norm(obs["observation"][layout["red_pos"]] - info["true_object_positions"]["red"]) < 0.004
    finally:
        env.close()
