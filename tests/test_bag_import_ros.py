"""A franka_ros2-style bag, imported through the fr3 profile, replayed to ROS 2 through the safety
layer on sim_robot speaking franka_ros2 (real rclpy/Fast DDS on loopback, a fresh ROS_DOMAIN_ID):
arm targets on fr3_arm_controller's JointTrajectory topic in fr3_* names within the FR3's
limits, gripper goals as control_msgs/GripperCommand, the arm ending where the bag ended."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ros_bridge._env import ros_available

pytestmark = [
    pytest.mark.skipif(not ros_available(), reason="ROS 2 (rclpy) not installed: pip install 'skillstack[ros]'"),
    pytest.mark.timeout(180),
    pytest.mark.slow,
]


def test_imported_franka_bag_replays_through_the_fr3_profile(tmp_path: Path) -> None:
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from demos import DemoFile, import_bag, joint_trajectory
    from demos.bag_synth import write_franka_bag
    from ros_bridge._ros import STATE_QOS
    from ros_bridge.interfaces import actions_available
    from ros_bridge.launcher import NodeProcess, write_params_file
    from ros_bridge.probe import Probe
    from ros_bridge._env import child_env
    from ros_bridge.replay import replay_plan

    if not actions_available():
        pytest.skip("control_msgs actions not built: python -m ros_bridge.interfaces")
    bag, out = tmp_path / "fr3_bag", tmp_path / "fr3.hdf5"
    write_franka_bag(bag, 2.0)
    import_bag(bag, out, profile="fr3")
    with DemoFile(out) as f:
        recorded = joint_trajectory(f[0])
    plan = replay_plan(recorded.joint_names, "fr3", recorded.dt)
    domain = 100 + (os.getpid() ^ random.randrange(1000)) % 100
    probe = Probe(domain_id=domain, name="test_probe", localhost_only=True)
    arm = probe.record("/fr3_arm_controller/joint_trajectory", JointTrajectory)
    arm_states = probe.record("/franka/joint_states", JointState, STATE_QOS)
    grip_states = probe.record("/fr3_gripper/joint_states", JointState, STATE_QOS)
    sim = NodeProcess("sim_robot", write_params_file(tmp_path / "sim.yaml", {"sim_robot": {"profile": "fr3"}}),
                      domain_id=domain, localhost_only=True, log_path=tmp_path / "sim.log")  # fmt: skip
    sim.start()
    try:
        assert probe.wait_for(lambda: len(arm_states) > 0 and len(grip_states) > 0, 30), sim.log_text()[-2000:]
        proc = subprocess.run(  # the command a user runs; the profile is the demo's own (fr3)
            [sys.executable, "-m", "skillstack", "replay", str(out), "--to-ros", "--listeners", "2"],  # sim_robot + this probe
            env=child_env(domain_id=domain, localhost_only=True), capture_output=True, text=True, timeout=80,
        )
        text = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "on profile fr3 (panda)" in text and "ABORTED" not in text, text + sim.log_text()[-2000:]
        assert "GripperCommand goals on /fr3_gripper/gripper_action" in text, text
        sent = int(proc.stdout.split(", sent ")[1].split(",")[0])
        assert sent >= len(recorded.positions) - 1, text
        time.sleep(0.3)
        # every arm target the probe saw: the driver's names, inside the FR3's limits, one velocity step apart
        msgs = arm.messages()
        assert len(msgs) > 10
        n = len(plan.arm_joints)
        lo, hi, vel = plan.limits.lower[:n], plan.limits.upper[:n], plan.limits.velocity[:n]
        prev = None
        for m in msgs:
            assert list(m.joint_names) == [f"fr3_joint{i}" for i in range(1, 8)]
            q = np.array(m.points[0].positions)
            assert np.all(q >= lo - 1e-9) and np.all(q <= hi + 1e-9)
            if prev is not None:
                assert np.all(np.abs(q - prev) <= vel * recorded.dt + 1e-6)
            prev = q
        last = arm_states.last()
        q = np.array([dict(zip(last.name, last.position))[f"fr3_joint{i}"] for i in range(1, 8)])
        np.testing.assert_allclose(q, recorded.positions[-1][:7], atol=0.02)
        g = grip_states.last()
        width = sum(dict(zip(g.name, g.position)).values())
        assert abs(width - recorded.positions[-1][7:].sum()) < 0.01, width  # the gripper followed to the bag's last width
    finally:
        sim.stop()
        probe.close()
