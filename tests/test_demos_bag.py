"""ROS 2 bag import: bags written with rosbags' own writer (MCAP and sqlite3) round-trip into HDF5."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from envs.robot import ARM_JOINT_NAMES, FINGER_JOINT_NAMES, MAX_GRIPPER_WIDTH, QD_MAX
from demos import BagImportError, DemoFile, DemoFileError, OutputExistsError, import_bag, replay
from demos.bag import match_joints

TS = get_typestore(Stores.ROS2_HUMBLE)
JointState = TS.types["sensor_msgs/msg/JointState"]
Image = TS.types["sensor_msgs/msg/Image"]
CompressedImage = TS.types["sensor_msgs/msg/CompressedImage"]
Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]

T0_NS = 1_700_000_000 * 10**9  # stamps are integer nanoseconds, as in ROS
Q0 = np.array([0.0, 0.2, 0.0, -2.2, 0.0, 2.4, 0.785, 0.03, 0.03])
QV = np.array([0.1, -0.2, 0.3, 0.05, -0.1, 0.2, -0.3, -0.01, -0.01])  # rad/s (m/s for fingers)


def header(ns: int) -> Header:
    return Header(stamp=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id="")


def write_bag(
    path: Path,
    storage: str,
    *,
    arm_names: tuple[str, ...] = ARM_JOINT_NAMES,
    duration: float = 1.0,
    with_images: bool = True,
) -> None:
    """A bag like a real Panda's: arm and gripper on separate JointState publishers at 100 Hz
    (arm joints in shuffled order, with velocities; gripper without), a raw rgb8 camera at
    ~33 Hz whose pixel value counts frames, and a JPEG CompressedImage camera."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    order = [3, 0, 6, 1, 5, 2, 4]
    with Writer(path, version=9, storage_plugin=plugin) as w:
        cj = w.add_connection("/joint_states", JointState.__msgtype__, typestore=TS)
        ci = w.add_connection("/camera/front/image_raw", Image.__msgtype__, typestore=TS)
        cc = w.add_connection("/wrist/image/compressed", CompressedImage.__msgtype__, typestore=TS)
        w.add_connection("/rosout_like", TS.types["std_msgs/msg/String"].__msgtype__, typestore=TS)
        for k in range(round(duration * 100) + 1):
            t = T0_NS + 10_000_000 * k
            q = Q0 + QV * (0.01 * k)  # linear in time: resampling must be exact
            arm = JointState(
                header=header(t),
                name=[arm_names[i] for i in order],
                position=q[order],
                velocity=QV[order],
                effort=np.array([], dtype=np.float64),
            )
            w.write(cj, t, TS.serialize_cdr(arm, JointState.__msgtype__))
            if k % 2 == 0:  # gripper publisher at 50 Hz, stamped 5 ms later
                tg = t + 5_000_000
                qg = Q0[7:] + QV[7:] * (0.01 * k + 0.005)
                grip = JointState(
                    header=header(tg),
                    name=list(FINGER_JOINT_NAMES),
                    position=qg,
                    velocity=np.array([], dtype=np.float64),
                    effort=np.array([], dtype=np.float64),
                )
                w.write(cj, tg, TS.serialize_cdr(grip, JointState.__msgtype__))
            if with_images and k % 3 == 0:
                rgb = np.zeros((6, 8, 3), dtype=np.uint8)
                rgb[..., 0] = k  # red channel counts frames
                rgb[..., 2] = 200
                img = Image(header=header(t), height=6, width=8, encoding="rgb8", is_bigendian=0, step=24,
                            data=rgb.reshape(-1))
                w.write(ci, t, TS.serialize_cdr(img, Image.__msgtype__))
                _, jpg = cv2.imencode(".jpg", np.full((16, 16, 3), (255, 0, 0), np.uint8))  # BGR blue
                comp = CompressedImage(header=header(t), format="jpeg", data=jpg.reshape(-1))
                w.write(cc, t, TS.serialize_cdr(comp, CompressedImage.__msgtype__))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_round_trip(storage: str, tmp_path: Path) -> None:
    bag = tmp_path / f"bag_{storage}"
    write_bag(bag, storage)
    out = tmp_path / "real.hdf5"
    res = import_bag(bag, out)
    assert res.demos == ["demo_0"] and res.cameras == ["camera_front", "wrist"]
    with DemoFile(out, expected_env="real/panda") as f:
        ep = f[0]
    # gripper series starts 5 ms after the arm: the grid starts where every joint has data
    rel = 0.005 + np.arange(ep.num_samples + 1) / 25.0  # seconds since the first message
    assert rel[-1] <= 1.0 < rel[-1] + 0.04
    assert ep.attrs["start_time_ns"] == T0_NS + 5_000_000
    assert ep.states is None and ep.attrs["storage"] == storage and ep.attrs["source"] == "ros2_bag"
    assert ep.attrs["rate_hz"] == 25.0 and ep.attrs["action_mode"] == "joint"
    q = Q0 + QV * rel[:, None]
    np.testing.assert_allclose(ep.obs["joint_pos"], q[:-1], atol=1e-9)
    np.testing.assert_allclose(ep.next_obs["joint_pos"], q[1:], atol=1e-9)
    np.testing.assert_allclose(ep.obs["joint_vel"][:, :7], np.broadcast_to(QV[:7], (ep.num_samples, 7)), atol=1e-9)
    np.testing.assert_allclose(ep.obs["joint_vel"][:, 7:], np.broadcast_to(QV[7:], (ep.num_samples, 2)), atol=1e-6)
    # robot_state is the env observation's robot part: gripper width and joint_pos fields
    np.testing.assert_allclose(ep.obs["robot_state"][:, 3], q[:-1, 7:].sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(ep.obs["robot_state"][:, 8:15], q[:-1, :7], atol=1e-9)
    # actions: joint mode, fraction of the max joint step per 25 Hz tick; gripper targets next width
    max_step = 0.9 * QD_MAX * 0.04
    np.testing.assert_allclose(ep.actions[:, :7], np.broadcast_to(QV[:7] * 0.04 / max_step, (ep.num_samples, 7)))
    np.testing.assert_allclose(ep.actions[:, 7], 2 * q[1:, 7:].sum(axis=1) / MAX_GRIPPER_WIDTH - 1, atol=1e-9)
    assert ep.rewards.tolist() == [0.0] * ep.num_samples and ep.dones[-1] == 1 and ep.dones[:-1].sum() == 0
    # images: latest frame at or before each tick (frames every 30 ms, counted in red)
    front = ep.obs["camera_front_image"]
    assert front.shape == (ep.num_samples, 6, 8, 3) and front.dtype == np.uint8
    want = [3 * int(np.floor(t * 100 / 3 + 1e-6)) for t in rel[:-1]]
    assert front[:, 0, 0, 0].tolist() == want and (front[..., 2] == 200).all()
    wrist = ep.obs["wrist_image"]
    assert wrist.shape == (ep.num_samples, 16, 16, 3)
    assert (wrist[..., 2] > 200).all() and (wrist[..., 0] < 60).all()  # JPEG decoded to RGB (blue)
    # a real-robot file has no simulator states to replay
    with pytest.raises(DemoFileError, match="no simulator states"):
        replay(out, "actions")


def test_bag_for_an_env_with_other_joint_names(tmp_path: Path) -> None:
    names = tuple(f"fr3_joint{i}" for i in range(1, 8))
    bag = tmp_path / "fr3.mcap_dir"
    write_bag(bag, "mcap", arm_names=names, with_images=False, duration=0.5)
    out = tmp_path / "fr3.hdf5"
    res = import_bag([bag, bag], out, env_id="skillstack/PandaReach-v0", rate=10)
    assert res.demos == ["demo_0", "demo_1"] and res.cameras == []
    with DemoFile(out, expected_env="skillstack/PandaReach-v0") as f:
        assert f.env_kwargs == {"action_mode": "joint"}
        ep = f[1]
        assert ep.num_samples == 4 and set(ep.obs) == {"joint_pos", "joint_vel", "robot_state"}
        assert '"panda_joint3": "fr3_joint3"' in ep.attrs["joint_names"]
        import envs

        assert ep.model_file == envs.make("skillstack/PandaReach-v0").unwrapped.model_xml


def test_match_joints_rules() -> None:
    panda = ARM_JOINT_NAMES + FINGER_JOINT_NAMES
    m = match_joints(["fr3_joint1", "fr3_joint11", "fr3_finger_joint1", "panda_joint2", "x"], panda, {"x": "panda_joint4"})
    assert m["panda_joint1"] == "fr3_joint1" and m["panda_joint2"] == "panda_joint2"
    assert m["panda_joint4"] == "x" and m["panda_finger_joint1"] == "fr3_finger_joint1"
    assert "panda_joint3" not in m and "fr3_joint11" not in m.values()
    with pytest.raises(BagImportError, match="unknown joint 'elbow'"):
        match_joints(["a"], panda, {"a": "elbow"})


def test_bad_bags_are_clear_errors_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "o.hdf5"
    bag = tmp_path / "weird"
    write_bag(bag, "sqlite3", arm_names=tuple(f"a{i}" for i in range(7)), with_images=False, duration=0.2)
    with pytest.raises(BagImportError, match=r"lacks Panda arm joints \['panda_joint1'.*joints in the bag: \['a0'"):
        import_bag(bag, out)
    joint_map = {f"a{i}": f"panda_joint{i + 1}" for i in range(7)}
    assert import_bag(bag, out, joint_map=joint_map).samples == [4]  # ticks 5..165 ms
    out.unlink()
    with pytest.raises(BagImportError, match=r"no sensor_msgs/msg/JointState messages on /joints; topics in the bag: .*/joint_states \[sensor_msgs/msg/JointState\]"):
        import_bag(bag, out, joint_topic="/joints")
    with pytest.raises(BagImportError, match="no Image/CompressedImage messages on /cam"):
        import_bag(bag, out, joint_map=joint_map, image_topics=["/cam"])
    good = tmp_path / "good"
    write_bag(good, "mcap", with_images=False, duration=0.3)
    mcap = next(good.glob("*.mcap"))
    broken = tmp_path / "broken.mcap"
    broken.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(BagImportError, match="broken.mcap"):
        import_bag(broken, out)
    with pytest.raises(FileNotFoundError, match="nothere"):
        import_bag(tmp_path / "nothere", out)
    assert not out.exists()
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        import_bag(good, out)
    assert out.read_bytes() == b"keep"


def test_cli_import_bag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skillstack.commands import import_bag as cmd

    bag = tmp_path / "b"
    write_bag(bag, "mcap", duration=0.4)
    parser = argparse.ArgumentParser(prog="skillstack")
    cmd.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli.hdf5"
    args = parser.parse_args(
        ["import-bag", str(bag), "--out", str(out), "--image-topics", "/camera/front/image_raw=front", "--rate", "20"]
    )
    assert args.func(args) == 0
    assert "wrote 1 demos" in capsys.readouterr().out
    with DemoFile(out) as f:
        assert set(f[0].obs) == {"joint_pos", "joint_vel", "robot_state", "front_image"}
        assert f[0].attrs["rate_hz"] == 20.0


def test_joint_trajectory_of_a_bag_demo(tmp_path: Path) -> None:
    from demos import joint_trajectory

    bag = tmp_path / "b"
    write_bag(bag, "sqlite3", with_images=False, duration=0.5)
    out = tmp_path / "t.hdf5"
    import_bag(bag, out, rate=50)
    with DemoFile(out) as f:
        traj = joint_trajectory(f[0])
    rel = 0.005 + np.arange(len(traj.positions)) * 0.02
    assert traj.dt == pytest.approx(0.02)
    np.testing.assert_allclose(traj.positions, Q0 + QV * rel[:, None], atol=1e-9)
