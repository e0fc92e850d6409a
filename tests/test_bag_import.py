"""Real-robot bags through a robot profile: franka_ros2-style rosbag2 files (written with rosbags'
own writer, sqlite3 and MCAP) with the arm at 1 kHz and the gripper at 50 Hz on separate
JointState topics, an object pose as PoseStamped in a camera frame, another as a tf chain, and a
JPEG camera; merged, mapped and checked against the motion that was written. Then the import
feeds behaviour cloning and the segmentation loader, and bad input fails clearly, writing nothing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from demos import BagImportError, DemoFile, import_bag
from demos.bag_poses import quat_mul, quat_rotate
from demos.bag_synth import TABLE_IN_BASE, write_franka_bag

ENV = "skillstack/PandaStack-v0"  # objects red and blue, the Panda's model (the FR3's stand-in)


@pytest.fixture(scope="module")
def franka_bag(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("bags") / "fr3_sqlite"
    return path, write_franka_bag(path, 2.0, storage="sqlite3")


def tick_times(ep) -> np.ndarray:
    """Seconds since the bag's start (T0) of every tick, from the start stamp and the arm's 1 kHz clock."""
    n = ep.num_samples + 1
    return (ep.attrs["start_time_ns"] - 1_700_000_000 * 10**9) * 1e-9 + np.arange(n) * 0.04


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_franka_bag_imports_through_the_fr3_profile(storage: str, franka_bag, tmp_path: Path) -> None:
    if storage == "sqlite3":
        bag, motion = franka_bag
    else:
        bag = tmp_path / "fr3_mcap"
        motion = write_franka_bag(bag, 1.0, storage="mcap")
    out = tmp_path / "fr3.hdf5"
    res = import_bag(bag, out, profile="fr3", env_id=ENV, image_size=32)
    assert res.cameras == ["camera"] and res.objects == ["blue", "red"]
    with DemoFile(out, expected_env=ENV) as f:
        ep = f[0]
    assert ep.attrs["profile"] == "fr3" and ep.attrs["storage"] == storage and ep.attrs["tick_jitter_max_s"] < 1e-9
    # merged by name, driver names mapped onto the description's
    sources = json.loads(ep.attrs["joint_sources"])  # dict attributes are stored as JSON
    assert sources["panda_joint3"] == "/franka/joint_states:fr3_joint3"
    assert sources["panda_finger_joint2"] == "/fr3_gripper/joint_states:fr3_finger_joint2"
    t = tick_times(ep)
    assert ep.attrs["start_time_ns"] == 1_700_000_000 * 10**9 + 1_000_000  # the first arm sample after the gripper's first (0.3 ms)
    assert t[-1] <= motion.seconds < t[-1] + 0.04
    q, qd = motion.arm(t)
    joint_pos = np.concatenate((ep.obs["joint_pos"], ep.next_obs["joint_pos"][-1:]))
    np.testing.assert_allclose(joint_pos[:, :7], q, rtol=0, atol=1e-12)  # the arm exactly as published at its stamps
    np.testing.assert_allclose(ep.obs["joint_vel"][:, :7], qd[:-1], rtol=0, atol=1e-12)
    # the gripper (50 Hz, its own clock) interpolated onto the arm's stamps; width per the description
    np.testing.assert_allclose(joint_pos[:, 7:], np.repeat(motion.width(t)[:, None] / 2, 2, axis=1), atol=1e-9)
    np.testing.assert_allclose(ep.obs["robot_state"][:, 3], motion.width(t[:-1]), atol=1e-9)
    np.testing.assert_allclose(ep.actions[:, 7], 2 * motion.width(t[1:]) / 0.08 - 1, atol=1e-9)
    # the red cube: PoseStamped in the profile's camera frame, back in the base frame
    red_p, red_q = motion.red(t[:-1])
    np.testing.assert_allclose(ep.obs["red_pose"][:, :3], red_p, atol=1e-9)
    np.testing.assert_allclose(ep.obs["red_pose"][:, 3:], red_q, atol=1e-9)
    # the blue cube: tf object_blue under the static `table` frame, chained to fr3_link0
    bp, bq = motion.blue_in_table(t[:-1])
    np.testing.assert_allclose(ep.obs["blue_pose"][:, :3], TABLE_IN_BASE[0] + quat_rotate(TABLE_IN_BASE[1], bp), atol=1e-9)
    np.testing.assert_allclose(ep.obs["blue_pose"][:, 3:], quat_mul(TABLE_IN_BASE[1], bq), atol=1e-9)
    # the env observation: robot part, then each cube's pose as the env lays it out
    obs = ep.obs["observation"]
    assert obs.shape == (ep.num_samples, 15 + 2 * 16)
    np.testing.assert_allclose(obs[:, :15], ep.obs["robot_state"])
    np.testing.assert_allclose(obs[:, 15:18], red_p, atol=1e-9)
    np.testing.assert_allclose(obs[:, 21:25], red_q, atol=1e-9)
    np.testing.assert_allclose(obs[:, 25:28], np.gradient(red_p, t[:-1], axis=0)[:, :3], atol=1e-6)  # linear velocity
    np.testing.assert_allclose(obs[:, 28:31], np.broadcast_to([0, 0, 0.4], (ep.num_samples, 3)), atol=1e-6)  # 0.4 rad/s about z
    # images: JPEG decoded, resized to 32x32, the latest frame at or before each tick (30 Hz)
    img = ep.obs["camera_image"]
    assert img.shape == (ep.num_samples, 32, 32, 3) and img.dtype == np.uint8
    frame = np.floor(t[:-1] * 30 + 1e-6).astype(int)
    np.testing.assert_allclose(img[:, 16, 16, 0].astype(float), motion.frame_value(frame), atol=3)


def test_bag_demo_feeds_behaviour_cloning_and_segmentation(franka_bag, tmp_path: Path) -> None:
    from policies.bc import train_bc
    from segmentation.dataset import PROPRIO_DIM, load_hdf5_episodes

    bag, _ = franka_bag
    out = tmp_path / "fr3.hdf5"
    import_bag([bag, bag], out, profile="fr3", env_id=ENV, image_size=32)
    episodes = load_hdf5_episodes(out, ["camera"], 24)
    assert len(episodes) == 2 and episodes[0].images["camera"].shape == (49, 24, 24, 3)
    assert episodes[0].proprio.shape == (49, PROPRIO_DIM) and episodes[0].actions.shape == (49, 8)
    obs = np.concatenate([e.low_dim["observation"] for e in episodes])
    actions = np.concatenate([e.actions for e in episodes])
    policy = train_bc(obs, actions, hidden=(32,), epochs=40, batch=32, seed=0)
    assert policy.train_loss[-1] < policy.train_loss[0] / 2  # it learns the recorded motion
    assert policy.predict(obs[:3]).shape == (3, 8)


def test_cli_import_bag_with_a_profile(franka_bag, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skillstack.commands import import_bag as cmd

    bag, _ = franka_bag
    parser = argparse.ArgumentParser(prog="skillstack")
    cmd.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli.hdf5"
    args = parser.parse_args(["import-bag", str(bag), "--out", str(out), "--profile", "fr3", "--image-size", "16",
                              "--pose-topics", "/objects/red/pose=cube", "--tf-frames", "object_blue=box"])  # fmt: skip
    assert args.func(args) == 0
    assert "objects: box, cube" in capsys.readouterr().out
    with DemoFile(out, expected_env="real/panda") as f:
        ep = f[0]
        assert {"cube_pose", "box_pose", "observation", "camera_image"} <= set(ep.obs) and ep.obs["camera_image"].shape[1:] == (16, 16, 3)
        assert ep.obs["observation"].shape[1] == 15  # no env: the robot part only


def test_bad_bags_name_the_file_and_topic_and_leave_the_output_alone(franka_bag, tmp_path: Path) -> None:
    bag, _ = franka_bag
    out = tmp_path / "keep.hdf5"
    out.write_bytes(b"an earlier import")

    def refused(match: str, source: Path, **kw) -> None:
        with pytest.raises(BagImportError, match=match):
            import_bag(source, out, overwrite=True, **kw)
        assert out.read_bytes() == b"an earlier import"  # nothing overwritten, nothing half-written
        assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith("keep")) == ["keep.hdf5"]

    no_joints = tmp_path / "no_joints"
    write_franka_bag(no_joints, 0.3, with_joints=False)
    refused(r"no_joints: no sensor_msgs/msg/JointState messages on /franka/joint_states \(robot profile 'fr3'", no_joints, profile="fr3")
    refused(r"no_joints: no sensor_msgs/msg/JointState messages on /joint_states; topics in the bag: .*/objects/red/pose", no_joints)
    panda_names = tmp_path / "panda_names"
    write_franka_bag(panda_names, 0.3, arm_names=tuple(f"panda_joint{i}" for i in range(1, 8)))
    refused(r"panda_names: /franka/joint_states carries joints \['panda_joint1'.*that robot profile 'fr3' does not map", panda_names, profile="fr3")
    refused(r"fr3_sqlite: no sensor_msgs/msg/JointState messages on /joint_states \(robot profile 'ur'", bag, profile="ur")
    refused(r"env skillstack/UR5eStack-v0 runs the ur5e, but the bag's robot is the panda \(profile 'fr3'\)", bag, profile="fr3", env_id="skillstack/UR5eStack-v0")
    refused(r"unknown robot profile 'kuka'; shipped profiles: fr3, panda_sim, ur", bag, profile="kuka")
    nan = tmp_path / "nan_gripper"
    write_franka_bag(nan, 0.5, gripper_nan_at_s=0.2)
    refused(r"nan_gripper: /fr3_gripper/joint_states: joint fr3_finger_joint1 has 16 NaN/inf position\(s\), the first 0.200 s into the bag",
            nan, profile="fr3")
    db3 = next(bag.glob("*.db3"))
    truncated = tmp_path / "truncated.db3"
    truncated.write_bytes(db3.read_bytes()[: db3.stat().st_size // 3])
    refused(r"truncated.db3: cannot read", truncated, profile="fr3")
    mcap_bag = tmp_path / "m"
    write_franka_bag(mcap_bag, 0.3, storage="mcap")
    mcap = next(mcap_bag.glob("*.mcap"))
    corrupt = tmp_path / "corrupt.mcap"
    data = bytearray(mcap.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096  # a damaged stretch mid-file
    corrupt.write_bytes(bytes(data))
    refused(r"corrupt.mcap: cannot read", corrupt, profile="fr3")
    refused(r"fr3_sqlite: /tf: no transform chain from frame 'object_green' to the base frame 'fr3_link0'", bag, profile="fr3",
            tf_frames={"object_green": "green"})


def test_ur_bag_imports_through_the_ur_profile(tmp_path: Path) -> None:
    """Another robot, from its profile alone: UR5e arm on /joint_states at 500 Hz (6 joints), the
    gripper on /gripper/joint_states at 100 Hz; the UR5e's description, observation and env."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    JointState, Header, Time = (ts.types[k] for k in ("sensor_msgs/msg/JointState", "std_msgs/msg/Header", "builtin_interfaces/msg/Time"))
    arm = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint"]
    home = np.array([-0.2439, -1.4061, 1.7716, -1.9362, -1.5708, -1.8147])
    t0, empty = 1_700_000_000 * 10**9, np.array([], dtype=np.float64)

    def msg(ns: int, names: list[str], pos: np.ndarray) -> bytes:
        stamp = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="")
        return ts.serialize_cdr(JointState(header=stamp, name=names, position=pos, velocity=empty, effort=empty), JointState.__msgtype__)

    bag = tmp_path / "ur_bag"
    with Writer(bag, version=9) as w:
        ca = w.add_connection("/joint_states", JointState.__msgtype__, typestore=ts)
        cg = w.add_connection("/gripper/joint_states", JointState.__msgtype__, typestore=ts)
        for k in range(501):  # 1 s at 500 Hz; the gripper at 100 Hz
            ns = t0 + 2_000_000 * k
            w.write(ca, ns, msg(ns, arm, home + 0.1 * (k / 500)))
            if k % 5 == 0:
                w.write(cg, ns + 1_000_000, msg(ns + 1_000_000, ["gripper_left_finger_joint", "gripper_right_finger_joint"],
                                                np.full(2, 0.04 - 0.02 * (k + 0.5) / 500)))  # fmt: skip
    out = tmp_path / "ur.hdf5"
    import_bag(bag, out, profile="ur", env_id="skillstack/UR5eReach-v0")
    with DemoFile(out) as f:
        ep = f[0]
    assert ep.attrs["robot"] == "ur5e" and ep.obs["joint_pos"].shape == (ep.num_samples, 8) and ep.actions.shape[1] == 7
    t = (ep.attrs["start_time_ns"] - t0) * 1e-9 + np.arange(ep.num_samples) * 0.04
    np.testing.assert_allclose(ep.obs["joint_pos"][:, :6], home + 0.1 * t[:, None] * 1.0, atol=1e-9)
    np.testing.assert_allclose(ep.obs["robot_state"][:, 3], 2 * (0.04 - 0.02 * t), atol=1e-9)  # the UR gripper's width map
    assert ep.obs["observation"].shape[1] == 8 + 6  # the UR5e's joint layout, no objects in Reach
    with pytest.raises(BagImportError, match=r"/joint_states carries joints \['elbow_joint'.*that robot profile 'fr3' does not map"):
        import_bag(bag, tmp_path / "x.hdf5", profile="fr3", joint_topic="/joint_states")


def test_bench_bag_section_reports_what_it_imported(tmp_path: Path) -> None:
    from bench import demos_bag

    r = demos_bag.measure(argparse.Namespace(bag_seconds=1.0, bag_image="32x24", repeats=1), tmp_path)
    # 1 s: arm 1001 + gripper 51 + red pose 31 + tf 31 + images 31 + one tf_static; ticks 1 ms .. 0.961 s at 25 Hz
    assert r["messages"] == 1146 and r["samples"] == 24 and r["image"] == [32, 24]
    assert r["recorded_over_import"] == pytest.approx(1.0 / r["import_s"]) and r["faster_than_recorded"] == (r["import_s"] < 1.0)
    assert r["import_vs_raw_read"] == pytest.approx(r["raw_read_s"] / r["import_s"]) and r["bag_bytes"] > 0 and r["hdf5_bytes"] > 0


def test_replay_plan_follows_the_demos_profile() -> None:
    """What `replay --to-ros` sends where, from the profile alone (no ROS needed to plan it)."""
    from ros_bridge.profile import ProfileError
    from ros_bridge.replay import replay_plan
    from sim_assets import load_robot

    ur = load_robot("ur5e").joint_names
    plan = replay_plan(ur, "ur", 0.04)
    assert plan.arm_joints == ur[:6] and plan.controller == "scaled_joint_trajectory_controller" and plan.interface == "trajectory"
    assert plan.gripper.interface == "action" and plan.gripper.action == "/gripper/gripper_controller/gripper_cmd"
    assert [t.topic for t in plan.state_topics] == ["/joint_states", "/gripper/joint_states"]
    fr3 = replay_plan(load_robot("panda").joint_names, "fr3", 0.04)
    assert fr3.arm_joints == tuple(f"fr3_joint{i}" for i in range(1, 8)) and fr3.limits.upper[5] == pytest.approx(3.7525)  # tighter of FR3's and Panda's
    with pytest.raises(ProfileError, match=r"profile 'ur' drives the ur5e"):
        replay_plan(load_robot("panda").joint_names, "ur", 0.04)
