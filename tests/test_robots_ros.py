"""sim_robot speaks for any described robot: the UR5e over real rclpy on loopback."""

from __future__ import annotations

import itertools
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from ros_bridge._env import ros_available
from ros_bridge.params import SimRobotParams
from sim_assets import load_robot

pytestmark = pytest.mark.timeout(90)
_DOMAINS = itertools.count(random.Random(os.getpid() ^ int(time.time())).randrange(100))
UR5E = load_robot("ur5e")


def test_sim_robot_params_follow_the_robot_description():
    p = SimRobotParams(robot="ur5e")
    assert p.command_joints == UR5E.joint_names and len(p.command_joints) == 8
    assert SimRobotParams(robot="ur5e", joints=list(UR5E.arm.joints[:2])).command_joints == UR5E.arm.joints[:2]
    with pytest.raises(ValueError, match="initial_qpos needs 8 values"):
        SimRobotParams(robot="ur5e", initial_qpos=[0.0] * 9)
    with pytest.raises(ValueError, match="joints must be distinct joints of the ur5e"):
        SimRobotParams(robot="ur5e", joints=list(load_robot("panda").arm.joints))
    with pytest.raises(ValueError, match="unknown robot 'kuka'"):
        SimRobotParams(robot="kuka")


@pytest.mark.skipif(not ros_available(), reason="ROS 2 (rclpy) not installed: pip install 'skillstack[ros]'")
def test_sim_robot_runs_the_ur5e_with_its_own_joint_names(tmp_path: Path):
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from ros_bridge._ros import STATE_QOS
    from ros_bridge.launcher import NodeProcess, write_params_file
    from ros_bridge.probe import Probe

    domain = 100 + next(_DOMAINS) % 100
    params = write_params_file(tmp_path / "sim.yaml", {"sim_robot": {"robot": "ur5e", "objects": ["red"]}})
    probe = Probe(domain_id=domain, name="test_probe")
    node = NodeProcess("sim_robot", params, domain_id=domain, localhost_only=True, log_path=tmp_path / "sim.log")
    try:
        states = probe.record("/joint_states", JointState, STATE_QOS)
        node.start()
        assert probe.wait_for(lambda: len(states) > 5, 30), node.log_text()
        msg = states.last()
        assert list(msg.name) == list(UR5E.joint_names)
        np.testing.assert_allclose(msg.position, UR5E.home_qpos, atol=0.02)

        def joint(name: str) -> float:
            last = states.last()
            return dict(zip(last.name, last.position))[name]

        # forward_command_controller style: one value per robot joint, in description order.
        commands = probe.publisher("/arm_controller/commands", Float64MultiArray)
        assert probe.wait_for_subscribers(commands, 1, 10)
        target = UR5E.home_qpos.copy()
        target[0] += 0.2
        for _ in range(3):
            commands.publish(Float64MultiArray(data=target.tolist()))
            time.sleep(0.02)
        assert probe.wait_for(lambda: abs(joint("shoulder_pan_joint") - target[0]) < 0.01, 10), node.log_text()

        # joint_trajectory_controller style, matched by name; another robot's names are refused.
        traj = probe.publisher("/arm_controller/joint_trajectory", JointTrajectory)
        assert probe.wait_for_subscribers(traj, 1, 10)
        wrong = JointTrajectory(joint_names=list(load_robot("panda").arm.joints[:1]))
        wrong.points = [JointTrajectoryPoint(positions=[0.5])]
        traj.publish(wrong)
        time.sleep(0.3)
        assert abs(joint("shoulder_pan_joint") - target[0]) < 0.01
        ok = JointTrajectory(joint_names=["wrist_3_joint"])
        point = JointTrajectoryPoint(positions=[UR5E.home_arm[5] + 0.3])
        point.time_from_start.sec = 0
        point.time_from_start.nanosec = 200_000_000
        ok.points = [point]
        traj.publish(ok)
        assert probe.wait_for(lambda: abs(joint("wrist_3_joint") - (UR5E.home_arm[5] + 0.3)) < 0.01, 10), node.log_text()
        assert "rejected command" in node.log_text()
    finally:
        node.stop()
        probe.close()
