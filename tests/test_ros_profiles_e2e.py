"""Robot profiles end to end over real rclpy/Fast DDS on loopback: sim_robot speaking each driver,
stack-two through each profile, merged 30 Hz states, the FollowJointTrajectory/GripperCommand
actions, a real robot that waits for ~/start, shadow mode, and bad input held safely.

Every test gets a fresh ROS_DOMAIN_ID and localhost-only discovery and starts the nodes as
processes, as `skillstack deploy` does. Every arm command a test sees is checked against the
limits in force (the profile's and the model's) and against one velocity step from the last.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ros_bridge._env import child_env, ros_available

pytestmark = [
    pytest.mark.skipif(not ros_available(), reason="ROS 2 (rclpy) not installed: pip install 'skillstack[ros]'"),
    pytest.mark.timeout(180),
]

if ros_available():
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from ros_bridge._ros import STATE_QOS, to_stamp
    from ros_bridge.interfaces import actions_available
    from ros_bridge.launcher import NodeProcess, write_params_file
    from ros_bridge.probe import Probe

from ros_bridge.bringup import plan_bringup
from ros_bridge.params import ExecutorParams
from ros_bridge.profile import load_profile
from ros_bridge.task import TaskModel

_DOMAINS = itertools.count(random.Random(os.getpid() ^ int(time.time() * 7)).randrange(100))
FR3 = load_profile("fr3")
UR = load_profile("ur")
STACK_POSITIONS = [0.5, 0.12, 0.02, 0.5, -0.1, 0.02]  # red, blue (x y z, world = base frame)
needs_actions = pytest.mark.skipif(
    ros_available() and not actions_available(),
    reason="control_msgs actions not built: python -m ros_bridge.interfaces (test_control_msgs_actions_build_here fails if they should be)",
)


def limits_of(profile: str, task: str = "skillstack/PandaStackTwo-v0"):
    """The limits the executor enforces for `profile` (driver names in command order)."""
    p = ExecutorParams(profile=profile)
    return plan_bringup(p, TaskModel(task, robot=p.robot_profile.robot).model, 0.04)


class Rig:
    """The nodes of one test, a probe on their domain, and what it recorded."""

    def __init__(self, tmp: Path, profile: str, record_arm: bool = True):
        self.domain = 100 + next(_DOMAINS) % 100
        self.tmp = tmp
        self.profile = load_profile(profile)
        self.nodes: dict[str, NodeProcess] = {}
        self.probe = Probe(domain_id=self.domain, name="test_probe")
        self.status = self.probe.record_status()
        self.summary = self.probe.record_summary()
        arm = self.profile.arm
        # The probe listening on the arm's topic counts as a controller there (record_arm=False: none).
        self.arm_commands = self.probe.record(arm.trajectory_topic, JointTrajectory) if record_arm else None
        self.preview = self.probe.record("/skill_executor/preview", JointTrajectory)

    def start(self, node: str, **params) -> NodeProcess:
        f = write_params_file(self.tmp / f"{node}.yaml", {node: params})
        proc = NodeProcess(node, f, domain_id=self.domain, localhost_only=True, log_path=self.tmp / f"{node}.log")
        self.nodes[node] = proc.start()
        return proc

    def start_executor(self, ready, *, start: bool = True, timeout: float = 40.0, **params) -> None:
        self.start("skill_executor", profile=self.profile.name, autostart=False, **params)
        ok = self.probe.wait_for(lambda: bool(self.status.last()) and ready(self.status.last()), timeout)
        assert ok, f"executor never ready; status {self.status.last()}\n{self.logs()}"
        if start:
            assert self.probe.call_trigger("/skill_executor/start").success

    def wait_state(self, state: str, timeout: float) -> dict:
        ok = self.probe.wait_for(lambda: (self.status.last() or {}).get("state") == state, timeout)
        assert ok, f"executor never reached {state!r}; status {self.status.last()}\n{self.logs()}"
        return self.status.last()

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{p.log_text()[-3000:]}" for n, p in self.nodes.items())

    def close(self) -> None:
        for proc in reversed(list(self.nodes.values())):
            proc.stop()
        self.probe.close()


@pytest.fixture
def rig_factory(tmp_path: Path):
    rigs: list[Rig] = []

    def make(profile: str, record_arm: bool = True) -> Rig:
        rigs.append(Rig(tmp_path, profile, record_arm))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


def check_trajectories(messages, plan, period: float = 0.04) -> None:
    """Every streamed arm command: the driver's joint names, inside the limits in force, one
    velocity step (or less, while ramping) from the previous one."""
    n = len(plan.arm_joints)
    lo, hi, vel = plan.limits.lower[:n], plan.limits.upper[:n], plan.limits.velocity[:n]
    prev = None
    for m in messages:
        assert list(m.joint_names) == list(plan.arm_joints) and len(m.points) == 1
        q = np.array(m.points[0].positions)
        assert np.all(np.isfinite(q)) and np.all(q >= lo - 1e-9) and np.all(q <= hi + 1e-9), q
        if prev is not None:
            assert np.all(np.abs(q - prev) <= vel * period + 0.1), q - prev  # + tracking re-anchors on a stall
        prev = q


def starter_library(path: Path) -> Path:
    from skill_library import SkillLibrary, build_starter_skills

    build_starter_skills(SkillLibrary(path))
    return path


# --------------------------------------------------------------------------- sim_robot speaks the drivers


@needs_actions
@pytest.mark.parametrize("profile", ["fr3", "ur"])
def test_sim_robot_speaks_the_profiles_driver(rig_factory, profile: str) -> None:
    rig = rig_factory(profile)
    prof = rig.profile
    streams = {s.topic: rig.probe.record(s.topic, JointState, STATE_QOS) for s in (*prof.sources, *([prof.merged] if prof.merged else []))}
    rig.start("sim_robot", profile=profile, objects=["red"])
    assert rig.probe.wait_for(lambda: all(len(r) > 3 for r in streams.values()), 30), rig.logs()
    for s in prof.sources:
        assert list(streams[s.topic].last().name) == list(s.joints)  # the driver's names, its own topic
    if prof.merged:
        assert list(streams[prof.merged.topic].last().name) == list(prof.driver_joints)
        first = prof.sources[0].topic
        streams[first].clear()
        streams[prof.merged.topic].clear()
        time.sleep(1.0)
        assert len(streams[first]) > len(streams[prof.merged.topic])  # 1 kHz arm, 30 Hz merged
    # It obeys the profile's controllers: an arm trajectory by driver names, a gripper goal.
    from rclpy.action import ActionClient
    from trajectory_msgs.msg import JointTrajectoryPoint

    from ros_bridge.interfaces import action_types

    follow, grip = action_types()
    arm_topic = rig.probe.publisher(prof.arm.trajectory_topic, JointTrajectory)
    assert rig.probe.wait_for_subscribers(arm_topic, 1, 10)
    last_arm = streams[prof.sources[0].topic]
    q0 = dict(zip(last_arm.last().name, last_arm.last().position))
    j = prof.arm.joints[0]
    msg = JointTrajectory(joint_names=[j], points=[JointTrajectoryPoint(positions=[q0[j] + 0.2])])
    msg.points[0].time_from_start.nanosec = 200_000_000
    arm_topic.publish(msg)
    assert rig.probe.wait_for(lambda: abs(dict(zip(last_arm.last().name, last_arm.last().position))[j] - q0[j] - 0.2) < 0.01, 10)
    client = ActionClient(rig.probe.node, grip, prof.gripper.action)
    assert client.wait_for_server(timeout_sec=10), rig.logs()
    goal = grip.Goal()
    goal.command.position = 0.01
    goal.command.max_effort = 10.0
    done = threading.Event()
    client.send_goal_async(goal).add_done_callback(lambda f: done.set())
    assert done.wait(10)
    grip_states = streams[prof.sources[1].topic]
    cmd = prof.gripper.command_joint
    assert rig.probe.wait_for(lambda: abs(dict(zip(grip_states.last().name, grip_states.last().position))[cmd] - 0.01) < 0.003, 10)
    # Unknown joints are refused by the arm's action server, as joint_trajectory_controller does.
    arm = ActionClient(rig.probe.node, follow, prof.arm.action_name)
    assert arm.wait_for_server(timeout_sec=10)
    bad = follow.Goal()
    bad.trajectory = JointTrajectory(joint_names=["not_a_joint"], points=[JointTrajectoryPoint(positions=[0.0])])
    fut = arm.send_goal_async(bad)
    assert rig.probe.wait_for(fut.done, 10) and not fut.result().accepted


# --------------------------------------------------------------------------- stack-two through each profile


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["panda_sim", pytest.param("fr3", marks=needs_actions), pytest.param("ur", marks=needs_actions)])
def test_stack_two_through_each_profile(rig_factory, tmp_path: Path, profile: str) -> None:
    """stack-two on sim_robot speaking the profile's driver, by the hierarchical controller over
    the library's starter skills: red ends on blue, every arm command and gripper goal within the
    limits in force. Cube poses come in a frame other than the base for fr3 (a camera's) and ur
    (UR's "base", turned by pi), transformed by the profile."""
    rig = rig_factory(profile)
    prof = rig.profile
    plan = limits_of(profile)
    frame = "camera_color_optical_frame" if profile == "fr3" else ("base" if profile == "ur" else "world")
    red = rig.probe.record("/objects/red/pose", PoseStamped, STATE_QOS)
    blue = rig.probe.record("/objects/blue/pose", PoseStamped, STATE_QOS)
    rig.start("sim_robot", profile=profile, objects=["red", "blue"], object_positions=STACK_POSITIONS, object_frame=frame)
    what = {"plan_task": "stack-two", "library_root": str(starter_library(tmp_path / "library"))}
    topic = prof.arm.interface == "trajectory"
    rig.start_executor(lambda st: st["command_subscribers"] >= 1 + topic and st["state_age"] is not None
                       and (not topic or rig.arm_commands.publisher_count() >= 1), **what)
    st = rig.wait_state("done", 90)
    assert st["executor_fault"] == "" and st["profile"] == profile, st
    time.sleep(0.5)
    r_msg, b_msg = red.last(), blue.last()
    assert r_msg.header.frame_id == b_msg.header.frame_id == frame
    r = prof.to_base(frame, [r_msg.pose.position.x, r_msg.pose.position.y, r_msg.pose.position.z], [1, 0, 0, 0])[0]
    b = prof.to_base(frame, [b_msg.pose.position.x, b_msg.pose.position.y, b_msg.pose.position.z], [1, 0, 0, 0])[0]
    assert abs(r[0] - b[0]) < 0.02 and abs(r[1] - b[1]) < 0.02 and 0.03 < r[2] - b[2] < 0.05, (r, b)  # red on blue
    if prof.arm.interface == "trajectory":
        assert len(rig.arm_commands) > 10
        check_trajectories(rig.arm_commands.messages(), plan)
    if prof.gripper.interface == "action":
        assert st["gripper_goals"] >= 2 and st["gripper_goals_rejected"] == 0, st  # closed on red, opened on blue
        n = len(plan.arm_joints)
        k = plan.gripper_joints.index(prof.gripper.command_joint)
        lo, hi = plan.limits.lower[n + k], plan.limits.upper[n + k]
        goals = {s["gripper_goal"] for s in rig.status.messages() if s["gripper_goal"] is not None}
        assert len(goals) >= 2 and all(lo <= g <= hi for g in goals), (goals, lo, hi)


# --------------------------------------------------------------------------- merged 30 Hz states, actions


@needs_actions
def test_fr3_on_merged_30hz_states_through_the_actions(rig_factory) -> None:
    """The executor listens only to the driver's merged /joint_states (30 Hz: watchdog 167 ms, not
    three messages) and commands the arm by FollowJointTrajectory goals: the arm reaches the goal."""
    rig = rig_factory("fr3")
    goal = [0.45, 0.2, 0.3]
    merged = rig.probe.record("/joint_states", JointState, STATE_QOS)
    rig.start("sim_robot", profile="fr3")
    rig.start_executor(lambda st: st["command_subscribers"] >= 1 and st["state_age"] is not None,
                       state_source="merged", interface="action", goal=goal)
    assert rig.probe.wait_for(lambda: rig.summary.last() is not None, 10), "no latched /skill_executor/summary"
    summary = rig.summary.last()
    assert [(t["topic"], t["rate_hz"], t["stale_after_s"]) for t in summary["joint_states"]] == [("/joint_states", 30, 0.1667)]
    assert "FollowJointTrajectory" in summary["arm_path"] and "GripperCommand" in summary["gripper_path"]
    st = rig.wait_state("done", 40)
    assert st["state_topic"] == "/joint_states" and st["arm_goals"] > 5 and st["arm_goals_rejected"] == 0, st
    assert len(rig.arm_commands) == 0  # goals, not the streaming topic
    from ros_bridge.safety import TcpKinematics

    merged.clear()
    assert rig.probe.wait_for(lambda: len(merged) > 0, 10), "no merged /joint_states reached the probe"
    q = dict(zip(merged.last().name, merged.last().position))
    tcp = TcpKinematics(robot="panda").tcp_position(np.array([q[j] for j in FR3.arm.joints]))
    assert np.linalg.norm(tcp - goal) < 0.05, tcp


# --------------------------------------------------------------------------- safe bring-up


@needs_actions
def test_real_robot_waits_for_start_and_ramps_from_the_measured_joints(tmp_path: Path) -> None:
    """`skillstack deploy --robot real --profile fr3` with the default parameters: the summary is
    printed, nothing is sent until ~/start, then the first commands creep from where the arm is."""
    domain = 100 + next(_DOMAINS) % 100
    probe = Probe(domain_id=domain, name="test_probe")
    sim = NodeProcess("sim_robot", write_params_file(tmp_path / "sim.yaml", {"sim_robot": {"profile": "fr3"}}),
                      domain_id=domain, localhost_only=True, log_path=tmp_path / "sim.log")
    arm_states = probe.record("/franka/joint_states", JointState, STATE_QOS)
    commands = probe.record(FR3.arm.trajectory_topic, JointTrajectory)
    status = probe.record_status()
    deploy = None
    try:
        sim.start()
        assert probe.wait_for(lambda: len(arm_states) > 5, 30), sim.log_text()
        deploy = subprocess.Popen(
            [sys.executable, "-m", "skillstack", "deploy", "--robot", "real", "--profile", "fr3", "--goal", "0.45", "0.2", "0.3",
             "--duration", "60", "--log-dir", str(tmp_path / "logs")],
            env=child_env(domain_id=domain, localhost_only=True), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert probe.wait_for(lambda: (status.last() or {}).get("command_subscribers", 0) >= 2, 40), status.last()
        time.sleep(1.5)
        assert len(commands) == 0 and status.last()["state"] == "stopped" and status.last()["published"] == 0
        measured = np.array([dict(zip(arm_states.last().name, arm_states.last().position))[j] for j in FR3.arm.joints])
        assert probe.call_trigger("/skill_executor/start").success
        assert probe.wait_for(lambda: len(commands) >= 3, 20), status.last()
        plan = limits_of("fr3", "skillstack/PandaReach-v0")
        full_step = plan.limits.velocity[:7] * 0.04
        first, second = (np.array(m.points[0].positions) for m in commands.messages()[:2])
        assert np.all(np.abs(first - measured) <= full_step * 0.04 / FR3.ramp_s + 1e-3)  # 1/25 of a step: the ramp
        assert np.all(np.abs(second - first) <= full_step * 0.08 + 1e-9)
        assert probe.wait_for(lambda: status.last()["state"] == "done", 40), status.last()
        out, _ = deploy.communicate(timeout=30)
        assert deploy.returncode == 0, out[-3000:]
        assert "deploy:   joint states /franka/joint_states at 1000 Hz" in out and "waits for ~/start before it moves" in out
        assert "does not move until you call /skill_executor/start" in out and "finished (done)" in out
        check_trajectories(commands.messages(), plan)
    finally:
        if deploy is not None and deploy.poll() is None:
            deploy.kill()
        sim.stop()
        probe.close()


@needs_actions
def test_shadow_mode_sends_nothing_to_the_controllers(rig_factory) -> None:
    from rclpy.action import get_action_client_names_and_types_by_node

    rig = rig_factory("fr3")
    arm_states = rig.probe.record("/franka/joint_states", JointState, STATE_QOS)
    rig.start("sim_robot", profile="fr3")
    rig.start_executor(lambda st: st["state_age"] is not None and rig.preview.publisher_count() >= 1, shadow=True, goal=[0.45, 0.2, 0.3],
                       stop_on_success=False)  # fmt: skip
    assert rig.probe.wait_for(lambda: len(rig.preview) >= 30, 30), rig.status.last()
    st = rig.status.last()
    assert st["shadow"] and st["published"] > 0 and st["gripper_goals"] == 0 and st["arm_goals"] == 0
    # No publisher on the arm's topics, no client of either action: nothing could reach a controller.
    node = rig.probe.node
    for topic in (FR3.arm.trajectory_topic, FR3.arm.commands_topic):
        assert node.count_publishers(topic) == 0, topic
    assert len(rig.arm_commands) == 0
    assert get_action_client_names_and_types_by_node(node, "skill_executor", "/") == []
    # The arm did not move (sim_robot starts at home); the preview carries every joint by the
    # driver's names, within limits.
    arm_states.clear()
    assert rig.probe.wait_for(lambda: len(arm_states) > 0, 10), "no /franka/joint_states reached the probe"
    np.testing.assert_allclose(np.array(arm_states.last().position), FR3.description.home_qpos[:7], atol=2e-3)
    plan = limits_of("fr3", "skillstack/PandaReach-v0")
    for m in rig.preview.messages():
        assert list(m.joint_names) == list(FR3.driver_joints)
        q = np.array(m.points[0].positions)
        assert np.all(q >= plan.limits.lower - 1e-9) and np.all(q <= plan.limits.upper + 1e-9)
    assert rig.probe.wait_for(lambda: rig.summary.last() is not None, 10), "no latched /skill_executor/summary"
    assert "SHADOW MODE" in "\n".join(rig.summary.last()["lines"])


# --------------------------------------------------------------------------- bad input


class FakeDriver:
    """Publishes the fr3 arm's joint states (and, when told, the gripper's) at 100 Hz."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.arm = probe.publisher("/franka/joint_states", JointState, 10)
        self.grip = probe.publisher("/fr3_gripper/joint_states", JointState, 10)
        self.gripper_on = False
        self.q = load_profile("fr3").description.home_qpos
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pub, names, q, on in ((self.arm, FR3.arm.joints, self.q[:7], True), (self.grip, FR3.gripper.joints, self.q[7:], self.gripper_on)):
                if on:
                    msg = JointState(name=list(names), position=[float(v) for v in q])
                    to_stamp(msg.header.stamp, self.probe.now())
                    pub.publish(msg)
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


@needs_actions
def test_missing_gripper_states_controllers_and_frames_hold_safely(rig_factory) -> None:
    """Each fault holds the arm (nothing published) with a status that names it: the gripper's
    topic never publishes; then no controller listens / no action server; then an object pose
    arrives in a frame the profile has no transform for."""
    rig = rig_factory("fr3", record_arm=False)
    driver = FakeDriver(rig.probe)
    try:
        rig.start_executor(lambda st: True, start=False, task="skillstack/PandaPush-v0", stop_on_success=False,
                           **{"safety.stale_after_s": 0.5})  # fmt: skip
        assert rig.probe.call_trigger("/skill_executor/start").success
        ok = rig.probe.wait_for(lambda: "/fr3_gripper/joint_states" in rig.status.last()["executor_fault"], 10)
        assert ok, rig.status.last()
        assert rig.status.last()["state"] == "waiting" and rig.status.last()["published"] == 0
        driver.gripper_on = True  # gripper states arrive: now the controllers are what is missing
        ok = rig.probe.wait_for(lambda: "no controller listens on /fr3_arm_controller/joint_trajectory" in rig.status.last()["executor_fault"], 10)
        assert ok, rig.status.last()
        assert rig.status.last()["state"] == "waiting" and rig.status.last()["published"] == 0
        # A controller appears (this probe listens), but the gripper's action server does not exist.
        listener = rig.probe.record(FR3.arm.trajectory_topic, JointTrajectory)
        ok = rig.probe.wait_for(lambda: "no gripper action server /fr3_gripper/gripper_action" in rig.status.last()["executor_fault"], 10)
        assert ok, rig.status.last()
        from rclpy.action import ActionServer

        from ros_bridge.interfaces import action_types

        _, grip = action_types()

        def accept(handle):
            handle.succeed()
            return grip.Result()

        ActionServer(rig.probe.node, grip, "/fr3_gripper/gripper_action", accept)
        # All there now; the push task's cube pose comes from a frame nobody can place.
        pose = rig.probe.publisher("/objects/red/pose", PoseStamped, 10)
        msg = PoseStamped()
        msg.header.frame_id = "camera_link"
        msg.pose.position.x, msg.pose.orientation.w = 0.5, 1.0
        for _ in range(50):
            to_stamp(msg.header.stamp, rig.probe.now())
            pose.publish(msg)
            time.sleep(0.02)
            if rig.status.last()["rejected_poses"] > 0:
                break
        st = rig.status.last()
        assert st["rejected_poses"] > 0 and "has no transform to the base frame 'fr3_link0'" in st["executor_fault"], st
        assert "waiting for poses of ['red']" in st["executor_fault"] and len(listener) == 0 and st["published"] == 0
        msg.header.frame_id = "world"  # the same pose in a known frame: the skill runs
        for _ in range(100):
            to_stamp(msg.header.stamp, rig.probe.now())
            pose.publish(msg)
            time.sleep(0.02)
            if len(listener) > 3:
                break
        assert len(listener) > 3, rig.status.last()
        check_trajectories(listener.messages(), limits_of("fr3", "skillstack/PandaPush-v0"))
    finally:
        driver.close()


def test_deploy_refuses_a_profile_with_unknown_joints(tmp_path: Path) -> None:
    import yaml

    doc = yaml.safe_load((Path(FR3.source)).read_text())
    doc["joints"]["fr3_joint8"] = "panda_joint8"
    bad = tmp_path / "fr3_bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    proc = subprocess.run([sys.executable, "-m", "skillstack", "deploy", "--profile", str(bad)],
                          env=child_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "names joints the panda description does not have: ['panda_joint8']" in proc.stderr


def test_control_msgs_actions_build_here() -> None:
    """Where a C/C++ compiler and the Python headers exist (the Makefile's install step builds
    them), control_msgs' actions must load: a skip elsewhere must not hide a broken build."""
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not (shutil.which(os.environ.get("CC", "cc")) and shutil.which(os.environ.get("CXX", "c++")) and headers.is_file()):
        pytest.skip("no C/C++ compiler or Python headers: the bridge falls back to topics")
    out = subprocess.run([sys.executable, "-m", "ros_bridge.interfaces", "--check"], env=child_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{out.stderr}\nbuild them: python -m ros_bridge.interfaces"
    assert "FollowJointTrajectory, GripperCommand" in out.stdout
    # The same type hashes as control_msgs built by colcon from the same Jazzy definitions, so a
    # real joint_trajectory_controller or franka_gripper takes these goals.
    if "control_msgs/action/FollowJointTrajectory RIHS01_" in out.stdout:
        assert "RIHS01_738ebcb7a2d7cfa42f9f1001cc99ce3a4383d1cfe508015d9be8485e4b1c66f6" in out.stdout
        assert "RIHS01_e17c0e644eccf14bea84a0a93e0977182872c2eb7873ca6694900059b46dbc84" in out.stdout
