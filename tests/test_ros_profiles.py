"""Robot profiles without ROS: loading and refusing profiles, frames, merged joint states with
per-topic watchdogs, the start ramp, and the bring-up plan and summary (no rclpy needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ros_bridge.bringup import plan_bringup, summary_lines
from ros_bridge.joint_states import MergedJointStates, StateTopic
from ros_bridge.params import ExecutorParams, SimRobotParams
from ros_bridge.profile import ProfileError, load_profile, profile_names
from ros_bridge.safety import JointLimits, SafetyConfig, SafetyLayer
from ros_bridge.task import TaskModel
from sim_assets import load_robot

PROFILES = Path(__file__).resolve().parents[1] / "ros_bridge" / "config" / "profiles"
FR3_ARM = [f"fr3_joint{i}" for i in range(1, 8)]
FR3_FINGERS = ["fr3_finger_joint1", "fr3_finger_joint2"]


def test_shipped_profiles_map_every_joint_of_their_robot() -> None:
    assert profile_names()[0] == "panda_sim" and {"fr3", "ur"} <= set(profile_names())
    for name in profile_names():
        p = load_profile(name)
        desc = load_robot(p.robot)
        assert sorted(p.to_description(p.driver_joints)) == sorted(desc.joint_names)
        carried = [j for s in p.state_sources for j in s.joints]
        assert sorted(carried) == sorted(p.driver_joints)
    fr3 = load_profile("fr3")
    assert fr3.driver_joints == (*FR3_ARM, *FR3_FINGERS) and fr3.arm.controller == "fr3_arm_controller"
    assert [s.topic for s in fr3.sources] == ["/franka/joint_states", "/fr3_gripper/joint_states"]
    assert fr3.merged.topic == "/joint_states" and fr3.merged.rate_hz == 30
    assert fr3.gripper.interface == "action" and fr3.gripper.action == "/fr3_gripper/gripper_action"
    assert fr3.arm.joints == tuple(FR3_ARM)  # the gripper is not in the arm's command
    ur = load_profile("ur")
    assert ur.arm.controller == "scaled_joint_trajectory_controller" and ur.gripper.interface == "action"
    assert ur.driver_joints[:6] == load_robot("ur5e").arm.joints
    sim = load_profile("panda_sim")
    assert sim.gripper.interface == "arm" and len(sim.arm.joints) == 9  # one controller over all nine joints


def test_watchdog_thresholds_follow_each_topics_rate() -> None:
    fr3 = load_profile("fr3")
    arm, grip = fr3.sources
    assert arm.stale_after_s(0.1, fr3.missed_messages) == pytest.approx(0.1)  # 5 ms of messages, floored at 100 ms
    assert grip.stale_after_s(0.1, fr3.missed_messages) == pytest.approx(0.1)
    assert fr3.merged.stale_after_s(0.1, fr3.missed_messages) == pytest.approx(5 / 30)  # not 3 messages
    assert fr3.merged.stale_after_s(0.5, fr3.missed_messages) == pytest.approx(0.5)


def _write(tmp_path: Path, edit, base: str = "fr3") -> Path:
    doc = yaml.safe_load((PROFILES / f"{base}.yaml").read_text())
    edit(doc)
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d["joints"].update({"fr3_joint8": "panda_joint8"}), r"joints: names joints the panda description does not have: \['panda_joint8'\]"),
        (lambda d: d["joints"].pop("fr3_finger_joint2"), r"unmapped: \['panda_finger_joint2'\]"),
        (lambda d: d["joint_states"]["sources"][0]["joints"].append("fr3_joint9"), r"sources\[0\].joints: unknown or repeated joints \['fr3_joint9'\]"),
        (lambda d: d["joint_states"]["sources"].pop(1), r"must carry every joint exactly once"),
        (lambda d: d["joint_states"]["sources"][1].update(rate_hz=0), r"sources\[1\].rate_hz: must be > 0"),
        (lambda d: d["limits"].update({"elbow": {"lower": 0, "upper": 1, "velocity": 1}}), r"limits: unknown joint 'elbow'"),
        (lambda d: d["gripper"].update(command_joint="fr3_joint1"), r"gripper.command_joint: must be one of the gripper's joints"),
        (lambda d: d["arm"].update(interface="effort"), r"arm.interface: must be one of"),
        (lambda d: d["frames"]["camera_color_optical_frame"].update(rotation_xyzw=[1, 1, 0, 0]), r"must be a unit quaternion"),
        (lambda d: d.update(robot="kuka"), r"robot: unknown robot 'kuka'"),
        (lambda d: d.update(colour="red"), r"unknown key\(s\) \['colour'\]"),
        (lambda d: d["joint_states"].update(use="merged", merged=None), r"joint_states.use"),
    ],
)
def test_bad_profiles_are_refused_naming_file_and_key(tmp_path: Path, edit, match: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(ProfileError, match=match) as err:
        load_profile(str(path))
    assert str(path) in str(err.value)


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="unknown robot profile 'kuka_iiwa'; shipped profiles: panda_sim, fr3, ur"):
        load_profile("kuka_iiwa")
    with pytest.raises(ValueError, match="unknown robot profile"):
        ExecutorParams(profile="kuka_iiwa")


def test_poses_in_other_frames_are_transformed_or_refused() -> None:
    fr3 = load_profile("fr3")
    pos, quat = fr3.to_base("fr3_link0", [0.5, 0.1, 0.02], [1, 0, 0, 0])
    np.testing.assert_allclose(pos, [0.5, 0.1, 0.02])
    cam = fr3.frame("camera_color_optical_frame")
    in_cam = cam.inverse_apply([0.5, 0.1, 0.02], [math.cos(0.3), 0, 0, math.sin(0.3)])
    back = fr3.to_base("camera_color_optical_frame", *in_cam)
    np.testing.assert_allclose(back[0], [0.5, 0.1, 0.02], atol=1e-9)
    np.testing.assert_allclose(back[1], [math.cos(0.3), 0, 0, math.sin(0.3)], atol=1e-9)
    assert np.linalg.norm(in_cam[0] - [0.5, 0.1, 0.02]) > 0.5  # the camera really is elsewhere
    ur = load_profile("ur")  # ur_description's "base" is base_link turned by pi about z
    np.testing.assert_allclose(ur.to_base("base", [0.4, 0.1, 0.2], [1, 0, 0, 0])[0], [-0.4, -0.1, 0.2], atol=1e-12)
    with pytest.raises(ProfileError, match=r"frame 'camera_link' has no transform to the base frame 'fr3_link0'.*add it under 'frames'"):
        fr3.to_base("camera_link", [0, 0, 0], [1, 0, 0, 0])
    with pytest.raises(ProfileError, match="frame '' has no transform"):
        fr3.to_base("", [0, 0, 0], [1, 0, 0, 0])


def _fr3_states(stale=(0.1, 0.1)) -> MergedJointStates:
    fr3 = load_profile("fr3")
    desc = fr3.description
    topics = [StateTopic(s.topic, tuple(fr3.to_description(s.joints)), t) for s, t in zip(fr3.sources, stale)]
    return MergedJointStates(desc.joint_names, topics, desc.velocity_limits, dict(fr3.joint_map))


def test_split_topics_merge_by_name_at_different_rates() -> None:
    m = _fr3_states()
    home = load_robot("panda").home_qpos
    assert m.update(0, FR3_ARM[::-1], home[:7][::-1], [], 1.0, 1.0) is None  # any order
    assert m.latest() is None and m.missing() == ["/fr3_gripper/joint_states"]
    assert m.worst_age(1.0) is None
    assert m.update(1, FR3_FINGERS, [0.03, 0.03], [], 0.98, 0.98) is None
    for k in range(1, 20):  # the arm at 1 kHz, the gripper still at its one old message
        assert m.update(0, FR3_ARM, home[:7], [], 1.0 + k * 1e-3, 1.0 + k * 1e-3) is None
    r = m.latest()
    np.testing.assert_allclose(r.position, [*home[:7], 0.03, 0.03])
    assert r.stamp_s == pytest.approx(1.019)  # the arm's stamp clocks the reading
    assert m.worst_age(1.05) == ("/fr3_gripper/joint_states", pytest.approx(0.07), 0.1)
    # A message naming a joint the topic should carry under another robot's name is refused
    # whole, with the driver's names in the reason.
    err = m.update(1, ["panda_finger_joint1"], [0.03], [], 1.02, 1.02)
    assert "lacks ['fr3_finger_joint2']" in err and err.startswith("/fr3_gripper/joint_states")
    assert m.rejected == 1 and m.accepted == 21


def test_each_topic_is_judged_by_its_own_threshold() -> None:
    m = _fr3_states(stale=(0.1, 0.1667))  # the gripper at 30 Hz
    m.update(0, FR3_ARM, np.zeros(7), [], 10.0, 10.0)
    m.update(1, FR3_FINGERS, [0.0, 0.0], [], 9.96, 9.96)
    topic, age, limit = m.worst_age(10.085)
    assert age <= limit  # the gripper's reading is 125 ms old: fine at 30 Hz (a flat 100 ms would trip)
    topic, age, limit = m.worst_age(10.12)
    assert topic == "/franka/joint_states" and age > limit  # the arm's 120 ms is too old
    m.update(0, FR3_ARM, np.zeros(7), [], float("nan"), 10.2)
    assert m.worst_age(10.2)[0] == "/franka/joint_states" and not m.worst_age(10.2)[1] <= 0.1


def test_start_ramp_grows_the_velocity_limit_from_zero() -> None:
    desc = load_robot("panda")
    limits = JointLimits(desc.joint_names, np.full(9, -5.0), np.full(9, 5.0), desc.velocity_limits)
    cfg = SafetyConfig(period_s=0.04, ramp_s=0.4, workspace_enabled=False, max_tracking_error=math.inf)
    layer = SafetyLayer(limits, cfg)
    q = np.zeros(9)
    far = np.full(9, 3.0)
    full = desc.velocity_limits * 0.04
    steps = []
    for _ in range(12):
        out = layer.step(far, q, 0.01)
        steps.append(out.target - q)
        q = out.target
    for k, s in enumerate(steps):
        np.testing.assert_allclose(s, full * min(1.0, (k + 1) / 10))  # 1/10, 2/10, ... then the full step
    layer.pause()  # a stop/start re-anchors and the ramp begins again
    np.testing.assert_allclose(layer.step(far, q, 0.01).target - q, full / 10)


def test_bringup_plan_of_each_profile() -> None:
    task = TaskModel("skillstack/PandaStackTwo-v0")
    fr3 = plan_bringup(ExecutorParams(profile="fr3"), task.model, 0.04)
    assert fr3.arm_joints == tuple(FR3_ARM) and fr3.gripper_joints == tuple(FR3_FINGERS)
    assert fr3.limits.names == load_robot("panda").joint_names and fr3.safety.ramp_s == 1.0
    # The FR3's own limits are tighter than the Panda model's where they differ.
    assert fr3.limits.lower[5] == pytest.approx(0.5445) and fr3.limits.upper[3] == pytest.approx(-0.1518)
    assert [t.topic for t in fr3.state_topics] == ["/franka/joint_states", "/fr3_gripper/joint_states"]
    merged = plan_bringup(ExecutorParams(profile="fr3", state_source="merged"), task.model, 0.04)
    assert [(t.topic, round(t.stale_after_s, 4)) for t in merged.state_topics] == [("/joint_states", 0.1667)]
    sim = plan_bringup(ExecutorParams(), task.model, 0.04)
    assert sim.controller == "arm_controller" and sim.interface == "position" and sim.gripper_joints == ()
    assert len(sim.arm_joints) == 9 and sim.safety.ramp_s == 0.0
    lines = summary_lines(fr3, rate_hz=25, arm_path="/fr3_arm_controller/joint_trajectory", gripper_path="GripperCommand", autostart=False)
    text = "\n".join(lines)
    for needle in ("/franka/joint_states at 1000 Hz", "/fr3_gripper/joint_states at 50 Hz", "stale after 100 ms",
                   "fr3_joint6", "+0.5445", "ramp 1 s", "waits for ~/start"):
        assert needle in text, needle
    shadow = plan_bringup(ExecutorParams(profile="fr3", shadow=True), task.model, 0.04)
    assert "SHADOW MODE" in "\n".join(summary_lines(shadow, rate_hz=25, arm_path="-", gripper_path="-", autostart=True))
    ur_task = TaskModel("skillstack/PandaStackTwo-v0", robot="ur5e")
    assert ur_task.env_id == "skillstack/UR5eStackTwo-v0"
    ur = plan_bringup(ExecutorParams(profile="ur"), ur_task.model, 0.04)
    assert ur.controller == "scaled_joint_trajectory_controller" and len(ur.arm_joints) == 6
    with pytest.raises(ProfileError, match="drives the ur5e, but the task's model lacks"):
        plan_bringup(ExecutorParams(profile="ur"), task.model, 0.04)


def test_executor_and_sim_parameters_check_the_profile() -> None:
    with pytest.raises(ValueError, match=r"unknown joints \['panda_joint1'\]; the fr3 profile's joints"):
        ExecutorParams(profile="fr3", joints=["panda_joint1"])
    with pytest.raises(ValueError, match="has no merged joint-state topic"):
        ExecutorParams(profile="ur", state_source="merged")
    with pytest.raises(ValueError, match="conflicts with profile 'fr3'"):
        SimRobotParams(profile="fr3", robot="ur5e")
    with pytest.raises(ValueError, match="are set by profile 'ur'"):
        SimRobotParams(profile="ur", controller="my_controller")
    assert SimRobotParams(profile="ur").description.name == "ur5e"
    with pytest.raises(ValueError, match="interface must be one of"):
        ExecutorParams(interface="effort")
