"""Self-occlusion (ros_bridge.occlusion): which old object poses the executor may keep.

Real MuJoCo geometry: the task's scratch scene, the panda_sim profile's calibrated scene camera.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from ros_bridge.occlusion import OcclusionConfig, SelfOcclusion
from ros_bridge.params import ExecutorParams
from ros_bridge.profile import load_profile
from ros_bridge.task import TaskModel


@pytest.fixture(scope="module")
def scene():
    task = TaskModel("skillstack/PandaStack-v0")
    camera = load_profile("panda_sim").camera("scene").calibration
    m, d = task.model, task.data
    occ = SelfOcclusion(m, d, camera.T_base_camera[:3, 3], int(m.site_bodyid[task.robot.tcp_site]), task.robot.robot_geoms)
    return task, occ, camera.T_base_camera[:3, 3].copy()


def place(task: TaskModel, name: str, position) -> None:
    qa = task.model.joint(f"cube_{name}_joint").qposadr[0]
    task.data.qpos[qa : qa + 3] = position
    task.data.qpos[qa + 3 : qa + 7] = (1.0, 0.0, 0.0, 0.0)
    mujoco.mj_kinematics(task.model, task.data)


def behind(camera: np.ndarray, point: np.ndarray, beyond: float) -> np.ndarray:
    """A point on the ray camera -> point, `beyond` metres past it."""
    u = (point - camera) / np.linalg.norm(point - camera)
    return point + beyond * u


def test_a_cube_in_open_view_is_not_hidden(scene) -> None:
    task, occ, _ = scene
    task.env.reset(seed=0)
    place(task, "red", (0.5, 0.1, 0.02))
    place(task, "blue", (0.5, -0.1, 0.02))
    covered, readable = occ.hidden_faces("red")
    assert covered == 0 and readable >= 2  # the top and the face towards the camera at least
    assert not occ.hidden_by_robot("red") and not occ.hidden_by_robot("blue")


def test_a_cube_behind_the_arm_is_hidden(scene) -> None:
    task, occ, camera = scene
    task.env.reset(seed=0)
    link = task.data.xpos[task.model.body("panda_link4").id].copy()
    place(task, "red", behind(camera, link, 0.15))
    covered, readable = occ.hidden_faces("red")
    assert covered == readable > 0
    assert occ.hidden_by_robot("red")


def test_a_hidden_cube_the_arm_touches_is_not_kept(scene) -> None:
    """A cube against a finger may be hidden by the hand, but the hand may be moving it."""
    task, occ, camera = scene
    task.env.reset(seed=0)
    place(task, "red", task.robot.tcp_pos(task.data))  # between the open fingers, touching neither
    assert not occ.touching("red")
    finger = task.data.xpos[task.model.body("panda_leftfinger").id]
    place(task, "red", finger + np.array([0.0, 0.0, -0.03]))
    assert occ.touching("red")
    assert not occ.hidden_by_robot("red")


def test_an_object_in_the_hand_hides_what_is_behind_it(scene) -> None:
    """Only the robot (and what it holds) explains a hidden cube: another cube on the table does not."""
    task, occ, camera = scene
    task.env.reset(seed=0)
    red = np.array([0.55, 0.1, 0.02])
    place(task, "red", red)
    place(task, "blue", behind(camera, red, 0.06))
    assert not occ.hidden_by_robot("blue")  # red on the table: not the robot
    assert occ.hidden_by_robot("blue", held=("red",))


def test_bad_settings_and_names_are_refused(scene) -> None:
    task, occ, _ = scene
    with pytest.raises(KeyError, match="no object 'green'"):
        occ.hidden_by_robot("green")
    with pytest.raises(ValueError, match="max_view_angle_deg"):
        OcclusionConfig(max_view_angle_deg=90.0)
    with pytest.raises(ValueError, match="faces_left_in_view"):
        OcclusionConfig(faces_left_in_view=-1)
    with pytest.raises(ValueError, match="contact_margin"):
        OcclusionConfig(contact_margin=float("nan"))
    with pytest.raises(ValueError, match="camera position must be finite"):
        SelfOcclusion(task.model, task.data, np.array([np.nan, 0, 1]), 1, [])


def test_executor_occlusion_camera_must_be_a_calibrated_profile_camera() -> None:
    assert ExecutorParams(occlusion_camera="scene").occlusion_camera == "scene"
    with pytest.raises(ValueError, match="no camera 'ceiling'.*scene"):
        ExecutorParams(occlusion_camera="ceiling")
    with pytest.raises(ValueError, match="occluded_pose_max_age_s"):
        ExecutorParams(occluded_pose_max_age_s=0.0)


def test_deploy_perception_turns_the_test_on_for_its_camera_unless_told_otherwise() -> None:
    from ros_bridge.deploy import perception_overrides

    overrides: dict = {}
    perception_overrides("sim", {}, overrides, ["red", "blue"], 10.0)
    ex = overrides["skill_executor"]
    assert ex["occlusion_camera"] == "scene" and ex["carry_held_objects"] and ex["predict_object_poses"]
    overrides = {"skill_executor": {"occlusion_camera": ""}}
    perception_overrides("sim", {}, overrides, ["red"], 10.0)
    assert overrides["skill_executor"]["occlusion_camera"] == ""  # the user's choice stands
