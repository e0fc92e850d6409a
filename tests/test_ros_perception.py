"""Perception over ROS 2 (issue 25): sim_robot's camera images, the perception node, pose freshness.

The ROS tests use real rclpy over Fast DDS on loopback, a fresh ROS_DOMAIN_ID each and
localhost-only discovery, with the nodes as processes (as `skillstack deploy` starts them).
Images are 320x240 where no pose is needed (rendering is CPU work) and 640x480, the profile
calibration's size, where the markers must be read (at 320x240 a 3 cm marker is ~11 px wide).
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

import sim_assets
from perception.camera import CameraModel
from ros_bridge._env import ros_available
from ros_bridge.perception_params import PerceptionParams, SimCameraParams
from ros_bridge.profile import ProfileError, load_profile, profile_names
from ros_bridge.state import PoseCache

if ros_available():
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from std_msgs.msg import Float64MultiArray

    from ros_bridge._ros import STATE_QOS, stamp_s, to_stamp
    from ros_bridge.launcher import NodeProcess, write_params_file
    from ros_bridge.perception_node import decode_image
    from ros_bridge.probe import Probe

needs_ros = pytest.mark.skipif(not ros_available(), reason="ROS 2 (rclpy) not installed: pip install 'skillstack[ros]'")
_DOMAINS = itertools.count(random.Random(os.getpid() ^ int(time.time() * 13)).randrange(100))
W, H = 320, 240
POSITIONS = {"red": (0.5, 0.1, 0.02), "blue": (0.5, -0.1, 0.02)}


def sim_camera(width: int, height: int, name: str = "scene") -> CameraModel:
    """The simulated camera at width x height, in the Panda's base frame ("world")."""
    model = sim_assets.load_scene(objects=("red",), goals=())
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return CameraModel.from_mujoco(model, data, name, width, height, base_frame="world")


def write_calibration(path: Path, camera: CameraModel) -> Path:
    path.write_text(yaml.safe_dump(camera.to_dict()), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- profiles and parameters (no ROS)


@pytest.mark.parametrize("name", profile_names())
def test_shipped_scene_camera_calibration_is_the_simulated_camera(name: str) -> None:
    """Each shipped profile's scene camera: its calibration, in the profile's base frame, is where
    the MJCF puts the camera sim_robot renders (same intrinsics at 640x480, same pose)."""
    prof = load_profile(name)
    spec = prof.camera("scene")
    truth = sim_camera(640, 480)
    cal = spec.calibration
    assert cal.base_frame == prof.base_frame and cal.frame_id == truth.frame_id == "scene_optical_frame"
    assert (cal.width, cal.height) == (640, 480) and spec.sim_camera == "scene"
    np.testing.assert_allclose(cal.K, truth.K, atol=1e-9)
    np.testing.assert_allclose(cal.T_base_camera, truth.T_base_camera, atol=1e-6)
    assert spec.image_topic == "/cameras/scene/image_raw" and spec.camera_info_topic == "/cameras/scene/camera_info"


def test_profile_camera_errors_name_the_key(tmp_path: Path) -> None:
    doc = yaml.safe_load(Path(load_profile("panda_sim").source).read_text())
    doc["cameras"]["scene"]["calibration"]["base_frame"] = "camera_mount"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ProfileError, match=r"cameras\.scene\.calibration\.base_frame.*'camera_mount'"):
        load_profile(str(bad))
    doc["cameras"]["scene"]["calibration"]["base_frame"] = "world"
    doc["cameras"]["scene"]["calibration"]["k"] = [0.0] * 9
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ProfileError, match=r"cameras\.scene\.calibration.*uncalibrated"):
        load_profile(str(bad))
    doc["cameras"]["scene"] = {"transport": "h264"}
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ProfileError, match=r"cameras\.scene\.transport"):
        load_profile(str(bad))


def test_perception_params_refuse_bad_calibrations(tmp_path: Path) -> None:
    cal = write_calibration(tmp_path / "cal.yaml", sim_camera(W, H))
    spec = PerceptionParams(calibration=str(cal)).camera_spec
    assert (spec.calibration.width, spec.calibration.height) == (W, H)
    with pytest.raises(ValueError, match="calibration file not found"):
        PerceptionParams(calibration=str(tmp_path / "missing.yaml"))
    (tmp_path / "junk.yaml").write_text("name: scene\nwidth: 320\n")
    with pytest.raises(ValueError, match="not a camera calibration"):
        PerceptionParams(calibration=str(tmp_path / "junk.yaml"))
    with pytest.raises(ValueError, match="is in frame 'world', not the base frame 'fr3_link0'"):
        PerceptionParams(profile="fr3", calibration=str(cal))  # calibrated in another frame
    with pytest.raises(ValueError, match="no camera 'left'"):
        PerceptionParams(camera="left")
    with pytest.raises(ValueError, match="camera.compression"):
        SimCameraParams(rate=5.0, compression="h264")


def test_pose_cache_ages_by_stamp_or_receipt() -> None:
    c = PoseCache(("red", "blue"))
    assert c.update("red", (0.5, 0.1, 0.02), (1, 0, 0, 0), stamp_s=10.0, received_s=10.2) is None
    assert c.ages(11.0) == pytest.approx({"red": 1.0})
    assert c.ages(11.0, "receipt") == pytest.approx({"red": 0.8})
    with pytest.raises(ValueError, match="stamp_source"):
        c.ages(11.0, "wall")


def test_pose_cache_predicts_from_the_stamp_and_ignores_repeats() -> None:
    """A perceived pose is where the object was at its image's time: carried forward at its
    finite-difference velocity (capped); the same pose republished (an unseen object) changes nothing."""
    c = PoseCache(("red",))
    c.update("red", (0.50, 0.1, 0.02), (1, 0, 0, 0), stamp_s=10.0, received_s=10.1)
    c.update("red", (0.50, 0.1, 0.05), (1, 0, 0, 0), stamp_s=10.1, received_s=10.2)  # lifted 3 cm in 0.1 s
    assert c.update("red", (0.50, 0.1, 0.05), (1, 0, 0, 0), stamp_s=10.1, received_s=10.3) is None
    np.testing.assert_allclose(c.latest("red").linvel, [0, 0, 0.3], atol=1e-9)  # kept, not zeroed
    np.testing.assert_allclose(c.predicted("red", 10.25, max_dt=1.0).position, [0.5, 0.1, 0.095], atol=1e-9)
    np.testing.assert_allclose(c.predicted("red", 99.0, max_dt=0.2).position, [0.5, 0.1, 0.11], atol=1e-9)
    assert c.predicted("blue", 10.0, 1.0) is None


# --------------------------------------------------------------------------- image decoding


@needs_ros
def test_decode_image_encodings_and_bad_input() -> None:
    import cv2

    rgb = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    msg = Image(height=6, width=5, encoding="bgr8", step=16)  # padded rows
    padded = np.zeros((6, 16), np.uint8)
    padded[:, :15] = rgb[..., ::-1].reshape(6, 15)
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(decode_image(msg, compressed=False), rgb)
    msg.encoding = "yuv422"
    with pytest.raises(ValueError, match="encoding 'yuv422' is not supported"):
        decode_image(msg, compressed=False)
    msg.encoding, msg.data = "bgr8", padded.tobytes()[:-3]
    with pytest.raises(ValueError, match="do not match"):
        decode_image(msg, compressed=False)
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    comp = CompressedImage(format="rgb8; png compressed bgr8")
    comp.data = png.tobytes()
    np.testing.assert_array_equal(decode_image(comp, compressed=True), rgb)
    comp.data = b"not an image"
    with pytest.raises(ValueError, match="does not decode"):
        decode_image(comp, compressed=True)


# --------------------------------------------------------------------------- over ROS 2


class Rig:
    """Nodes of one test and the probe watching them."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.domain = 100 + next(_DOMAINS) % 100
        self.probe = Probe(domain_id=self.domain, name="test_probe")
        self.nodes: list[NodeProcess] = []

    def start(self, node: str, name: str = "", **params) -> NodeProcess:
        key = name or node
        f = write_params_file(self.tmp / f"{key}.yaml", {key: params})
        extra = ["-r", f"__node:={name}"] if name else []
        proc = NodeProcess(node, f, domain_id=self.domain, localhost_only=True, extra_ros_args=extra, log_path=self.tmp / f"{key}.log")
        self.nodes.append(proc.start())
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {n.node} ---\n{n.log_text()[-2500:]}" for n in self.nodes)

    def close(self) -> None:
        for n in reversed(self.nodes):
            n.stop()
        self.probe.close()


@pytest.fixture
def rig(tmp_path: Path):
    r = Rig(tmp_path)
    try:
        yield r
    finally:
        r.close()


def sim_params(**extra) -> dict:
    """sim_robot with the two cubes, the scene camera at W x H, true poses off the executor's topics."""
    flat = [v for o in ("red", "blue") for v in POSITIONS[o]]
    return {"objects": ["red", "blue"], "object_positions": flat, "object_pose_prefix": "/ground_truth/objects",
            "camera.rate": 5.0, "camera.width": W, "camera.height": H, **extra}  # fmt: skip


def position(msg: PoseStamped) -> np.ndarray:
    return np.array([msg.pose.position.x, msg.pose.position.y, msg.pose.position.z])


@needs_ros
@pytest.mark.timeout(120)
def test_perceived_pose_from_sim_robot_images(rig: Rig) -> None:
    """sim_robot publishes Image (rgb8) and CameraInfo at the configured resolution, stamped alike;
    the perception node (the profile's calibration) turns them into the red cube's pose in the base
    frame, within 5 mm and 5 deg of the truth (fast rendering has no multisampling: its aliased
    edges put this cube ~3.3 mm off), stamped with the time of an image it was computed from."""
    w, h = 640, 480
    images = rig.probe.record("/cameras/scene/image_raw", Image)
    infos = rig.probe.record("/cameras/scene/camera_info", CameraInfo)
    perceived = rig.probe.record("/objects/red/pose", PoseStamped, STATE_QOS)
    truth = rig.probe.record("/ground_truth/objects/red/pose", PoseStamped, STATE_QOS)
    timing = rig.probe.record("/perception/timing", Float64MultiArray)
    rig.start("sim_robot", **sim_params(**{"camera.width": w, "camera.height": h, "camera.rate": 4.0}))
    rig.start("perception", objects=["red", "blue"], publish_timing=True)
    ok = rig.probe.wait_for(lambda: len(perceived) >= 3 and len(timing) >= 3 and len(images) and len(infos), 60)
    assert ok, f"{len(images)} images, {len(infos)} infos, {len(perceived)} poses\n{rig.logs()}"
    img, info = images.last(), infos.last()
    assert (img.width, img.height, img.encoding, img.step) == (w, h, "rgb8", 3 * w) and len(img.data) == 3 * w * h
    assert img.header.frame_id == info.header.frame_id == "scene_optical_frame"
    assert (info.width, info.height) == (w, h)
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), sim_camera(w, h).K, atol=1e-9)
    info_stamps = {stamp_s(m.header.stamp) for m in infos.messages()}
    image_stamps = [stamp_s(m.header.stamp) for m in images.messages()]
    # Stamped alike: an info carries its image's stamp. Not every image's info need arrive: a camera
    # driver's topics keep one sample (a KEEP_LAST 1 writer), and a sample lost on a busy loopback
    # is replaced by the next frame's before DDS repairs it; an image may likewise be replaced.
    assert info_stamps & set(image_stamps), (image_stamps, info_stamps)
    spanned = {t for t in image_stamps if min(info_stamps) <= t <= max(info_stamps)}
    assert len(spanned & info_stamps) >= len(spanned) / 2, (image_stamps, info_stamps)
    msg = perceived.last()
    assert msg.header.frame_id == "world"
    assert stamp_s(msg.header.stamp) in {t.data[0] for t in timing.messages()}  # an image's stamp
    assert np.linalg.norm(position(msg) - position(truth.last())) < 0.005, (position(msg), position(truth.last()))
    q, qt = msg.pose.orientation, truth.last().pose.orientation
    angle = 2 * np.degrees(np.arccos(min(1.0, abs(q.w * qt.w + q.x * qt.x + q.y * qt.y + q.z * qt.z))))
    assert angle < 5.0, angle
    assert perceived.publisher_count() == 1  # the executor's topic carries only the perception node's poses


@needs_ros
@pytest.mark.timeout(120)
def test_perception_refuses_missing_camera_info_and_another_cameras_calibration(rig: Rig) -> None:
    """No CameraInfo: a clear error and no pose. A calibration for another resolution (the profile's
    640x480 against 320x240 images): the CameraInfo is refused by name, and no pose either."""
    no_info = rig.probe._record_json("/perception_no_info/status", 10)
    other = rig.probe._record_json("/perception_other/status", 10)
    poses_a = rig.probe.record("/a/red/pose", PoseStamped, STATE_QOS)
    poses_b = rig.probe.record("/b/red/pose", PoseStamped, STATE_QOS)
    rig.start("sim_robot", **sim_params())
    rig.start("perception", name="perception_no_info", camera_info_topic="/nowhere/camera_info", object_pose_prefix="/a")
    rig.start("perception", name="perception_other", object_pose_prefix="/b")  # the profile's 640x480 calibration

    def both_saw_images() -> bool:
        a, b = no_info.last(), other.last()
        return bool(a and b and a["images"] >= 3 and b["images"] >= 3)

    assert rig.probe.wait_for(both_saw_images, 60), f"{no_info.last()} {other.last()}\n{rig.logs()}"
    a, b = no_info.last(), other.last()
    assert a["camera_info"] == "waiting for CameraInfo" and a["processed"] == 0 and a["without_camera_info"] >= 3
    assert "no CameraInfo on /nowhere/camera_info: refusing to estimate poses" in a["last_error"]
    assert b["camera_info"].startswith("CameraInfo on /cameras/scene/camera_info refused") and b["processed"] == 0
    assert "calibration is for 640x480 images" in b["camera_info"], b
    assert len(poses_a) == len(poses_b) == 0
    assert all(o["age_s"] is None and not o["visible"] for o in a["objects"].values())


@needs_ros
@pytest.mark.timeout(120)
def test_stale_object_pose_holds_the_executor(rig: Rig) -> None:
    """The push expert runs on fresh cube poses; when they stop (an occluded cube, a dead camera) the
    executor holds once the newest is older than safety.max_pose_age_s, reports it, and sends the
    same held target until a fresh pose arrives; then it runs again."""
    from std_msgs.msg import Float64MultiArray as Commands

    status = rig.probe.record_status()
    commands = rig.probe.record("/arm_controller/commands", Commands)
    pose_pub = rig.probe.publisher("/objects/red/pose", PoseStamped, 10)
    rig.start("sim_robot", objects=["red"], object_pose_prefix="/ground_truth/objects")
    rig.start("skill_executor", task="skillstack/PandaPush-v0", stop_on_success=False, **{"safety.max_pose_age_s": 0.4})
    msg = PoseStamped()
    msg.header.frame_id = "world"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z, msg.pose.orientation.w = 0.5, 0.1, 0.02, 1.0

    def publish_until(pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            to_stamp(msg.header.stamp, rig.probe.now())
            pose_pub.publish(msg)
            if pred():
                return True
            time.sleep(0.05)
        return False

    running = lambda: (status.last() or {}).get("state") == "running" and status.last()["published"] > 5  # noqa: E731
    assert publish_until(running, 60), f"{status.last()}\n{rig.logs()}"
    held_status: list[dict] = []

    def holding() -> bool:
        st = status.last()
        if st["state"] == "hold" and st["last_fault"] == "stale_pose":
            held_status.append(st)
        return bool(held_status)

    assert rig.probe.wait_for(holding, 10), status.last()
    st = held_status[0]
    assert "object pose too old: red" in st["executor_fault"] and "limit 0.4 s" in st["executor_fault"]
    assert st["pose_ages"]["red"] > 0.4 and st["stale_pose_holds"] > 0
    time.sleep(0.3)
    n = len(commands)
    time.sleep(1.0)
    held = [np.array(m.data) for m in commands.messages()[n:]]
    assert held and all(np.array_equal(h, held[0]) for h in held)  # nothing moves on an old pose
    assert publish_until(lambda: status.last()["state"] == "running", 10), status.last()  # a fresh pose: runs again


def test_a_held_cube_rides_on_the_hand_when_the_camera_loses_it(rig: Rig) -> None:
    """Poses stop the moment the fingers close (as when the hand hides the cube's markers): with
    carry_held_objects the executor carries the cube on the TCP, from fresh joint states, and lifts
    it without a stale-pose hold; the status names the held cube."""
    from std_msgs.msg import Float64MultiArray as Commands

    status = rig.probe.record_status()
    commands = rig.probe.record("/arm_controller/commands", Commands)
    relay_on = threading.Event()
    relay_on.set()
    pose_pub = rig.probe.publisher("/objects/red/pose", PoseStamped, 10)
    truth = rig.probe.record("/ground_truth/objects/red/pose", PoseStamped, 10,
                             callback=lambda m: pose_pub.publish(m) if relay_on.is_set() else None)
    rig.start("sim_robot", objects=["red"], object_pose_prefix="/ground_truth/objects")
    rig.start("skill_executor", task="skillstack/PandaPickPlace-v0", goal=[0.45, -0.1, 0.2], stop_on_success=False,
              carry_held_objects=True, **{"safety.max_pose_age_s": 0.4})
    held = lambda: "red" in ((status.last() or {}).get("carried") or {}).get("held", [])  # noqa: E731
    assert rig.probe.wait_for(held, 90), f"{status.last()}\n{rig.logs()}"
    relay_on.clear()  # the camera sees the cube no more
    z0, holds0 = position(truth.last())[2], status.last()["stale_pose_holds"]
    lifted = lambda: position(truth.last())[2] > z0 + 0.05  # noqa: E731
    assert rig.probe.wait_for(lifted, 30), f"{status.last()}\n{rig.logs()}"
    st = status.last()
    assert st["stale_pose_holds"] == holds0 and st["state"] == "running", st  # no hold: the hand's pose is fresh
    assert held() and st["pose_ages"]["red"] < 0.4, st
    assert len(commands) > 0


@needs_ros
@pytest.mark.timeout(120)
def test_an_old_pose_the_arm_hides_is_kept_and_one_in_view_holds(rig: Rig) -> None:
    """With occlusion_camera, an old pose of a cube the arm itself hides from that camera is kept
    (state running, the status' `occluded` names it) instead of holding forever; an old pose of a
    cube in the camera's open view still holds. Shadow mode keeps the arm at home."""
    status = rig.probe.record_status()
    pose_pub = rig.probe.publisher("/objects/red/pose", PoseStamped, 10)
    rig.start("sim_robot", objects=["red"], object_pose_prefix="/ground_truth/objects")
    rig.start("skill_executor", task="skillstack/PandaPush-v0", stop_on_success=False, shadow=True,
              occlusion_camera="scene", **{"safety.max_pose_age_s": 0.4})
    msg = PoseStamped()
    msg.header.frame_id = "world"
    msg.pose.orientation.w = 1.0

    def publish_for(xyz, seconds: float, pred=lambda: True) -> None:
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = xyz
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or not pred():
            assert time.monotonic() < deadline + 60, f"{status.last()}\n{rig.logs()}"
            to_stamp(msg.header.stamp, rig.probe.now())
            pose_pub.publish(msg)
            time.sleep(0.05)

    running = lambda: (status.last() or {}).get("state") == "running"  # noqa: E731
    publish_for((0.1, 0.0, 0.02), 0.5, running)  # behind the arm's base and shoulder, seen from the scene camera
    kept = lambda: "red" in (status.last() or {}).get("occluded", {})  # noqa: E731
    assert rig.probe.wait_for(kept, 10), status.last()
    # the pose grows more than twice max_pose_age_s old and the executor keeps running on it (waited for, not
    # sampled: on a loaded machine a late joint state may briefly make it 'stale', a safety hold that ends by itself)
    kept_running = lambda: (st := status.last() or {}).get("state") == "running" and st["pose_ages"]["red"] > 0.8 \
        and st["occluded_pose_keeps"] > 0  # noqa: E731
    assert rig.probe.wait_for(kept_running, 10), status.last()
    assert status.last()["stale_pose_holds"] == 0, status.last()
    publish_for((0.5, 0.1, 0.02), 0.5)  # in open view, then no more
    holding = lambda: status.last()["state"] == "hold" and status.last()["last_fault"] == "stale_pose"  # noqa: E731
    assert rig.probe.wait_for(holding, 10), status.last()
    assert "object pose too old: red" in status.last()["executor_fault"] and not status.last()["occluded"]
