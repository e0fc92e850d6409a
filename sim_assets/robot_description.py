"""Robot descriptions: every fact the stack needs about an arm, as data.

A robot is a YAML file under `sim_assets/robots/` beside its MJCF (or any YAML file given
by path, its `mjcf` relative to it). The YAML names the arm joints in order with their
position, velocity and torque limits, the base body and frame, the TCP and flange sites,
the home pose, the gripper (kind, joints, width range and the linear map from an
opening width to each gripper joint's command) and the camera mounts. `load_robot`
reads one into a frozen `RobotDescription`, refusing bad input with an error that names
the file and the key. The envs (robot wrapper, IK, observation, predicates, safety cost,
experts) and the ROS bridge read these; no other module names a robot's joints or links.

The MJCF holds geometry, inertia and servos. `RobotDescription.mjcf_xml()` returns it with
the description's camera mounts and two custom numerics added (`<name>_home_qpos`,
`<name>_velocity_limits`, arm then gripper joints), so a stored model file still says
where home is; `check_model` verifies a compiled model against the description.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = [
    "DEFAULT_ROBOT",
    "GRIPPER_KINDS",
    "ArmSpec",
    "CameraMount",
    "GripperSpec",
    "RobotDescription",
    "RobotDescriptionError",
    "load_robot",
    "robot_for_joints",
    "robot_for_model",
    "robot_names",
]

DEFAULT_ROBOT = "panda"
GRIPPER_KINDS = ("parallel_two_finger",)
_ROBOTS_DIR = "robots"


class RobotDescriptionError(ValueError):
    """A robot description file is missing, malformed, or disagrees with its MJCF."""


@dataclass(frozen=True)
class ArmSpec:
    """The arm's joints in controller order and their limits (rad, rad/s, Nm)."""

    joints: tuple[str, ...]
    position_lower: tuple[float, ...]
    position_upper: tuple[float, ...]
    velocity: tuple[float, ...]
    torque: tuple[float, ...]


@dataclass(frozen=True)
class GripperSpec:
    """The gripper: its joints and how an opening width (m) maps onto their commands.

    Joint j is commanded `width_to_joint_offset[j] + width_to_joint_scale[j] * width`; the
    measured width is the mean of the joints' inverse maps. A Panda-style hand with two
    fingers that each travel half the width has scales (0.5, 0.5) and offsets 0; a
    single-joint linkage gripper whose joint closes as the width shrinks has a negative scale.
    """

    kind: str
    joints: tuple[str, ...]
    width_range: tuple[float, float]
    width_to_joint_scale: tuple[float, ...]
    width_to_joint_offset: tuple[float, ...]
    velocity: tuple[float, ...]  # per joint (m/s or rad/s)
    force: tuple[float, ...]  # per joint actuator limit (N or Nm)

    @property
    def max_width(self) -> float:
        """The fully open width (m)."""
        return self.width_range[1]

    def joint_targets(self, width: float) -> np.ndarray:
        """Commands of the gripper joints for an opening `width` (m)."""
        return np.asarray(self.width_to_joint_offset) + np.asarray(self.width_to_joint_scale) * width

    def width_weights(self) -> np.ndarray:
        """Weights w with width = w @ (q - offset): the mean of the joints' inverse maps."""
        scale = np.asarray(self.width_to_joint_scale, dtype=np.float64)
        return 1.0 / (len(scale) * scale)


@dataclass(frozen=True)
class CameraMount:
    """A camera fixed to a robot body: MJCF camera attributes in that body's frame."""

    name: str
    body: str
    pos: tuple[float, float, float]
    xyaxes: tuple[float, ...]
    fovy: float


@dataclass(frozen=True)
class RobotDescription:
    """One robot, as read from its YAML file (see the module docstring)."""

    name: str
    title: str
    model_id: str
    env_prefix: str  # prefix of this robot's registered env ids, e.g. "UR5e" in skillstack/UR5eReach-v0
    kinematics: str  # where the kinematic chain comes from
    mjcf_path: str
    base_body: str
    base_frame: str
    tcp_site: str
    flange_site: str
    arm: ArmSpec
    gripper: GripperSpec
    home_arm: tuple[float, ...]
    home_gripper_width: float
    cameras: tuple[CameraMount, ...]
    grasp_reach: tuple[float, float]  # horizontal distance from the base axis where top grasps work (m)
    source: str  # the YAML file

    @property
    def n_arm_joints(self) -> int:
        """Number of arm joints."""
        return len(self.arm.joints)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Arm joints then gripper joints: the order of joint states and commands."""
        return self.arm.joints + self.gripper.joints

    @property
    def home_qpos(self) -> np.ndarray:
        """Home joint positions, arm then gripper joints (gripper at its home width)."""
        return np.concatenate((self.home_arm, self.gripper.joint_targets(self.home_gripper_width)))

    @property
    def velocity_limits(self) -> np.ndarray:
        """Velocity limits, arm then gripper joints."""
        return np.array(self.arm.velocity + self.gripper.velocity, dtype=np.float64)

    def mjcf_xml(self) -> str:
        """The robot's MJCF text with camera mounts and home/velocity numerics added."""
        return _mjcf_xml(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what `skillstack robots --json` prints)."""
        arm, grip = self.arm, self.gripper
        return {
            "name": self.name,
            "title": self.title,
            "model_id": self.model_id,
            "env_prefix": self.env_prefix,
            "kinematics": self.kinematics,
            "mjcf": self.mjcf_path,
            "source": self.source,
            "base_body": self.base_body,
            "base_frame": self.base_frame,
            "tcp_site": self.tcp_site,
            "flange_site": self.flange_site,
            "arm": {
                "joints": list(arm.joints),
                "position_lower": list(arm.position_lower),
                "position_upper": list(arm.position_upper),
                "velocity": list(arm.velocity),
                "torque": list(arm.torque),
            },
            "home": {"arm": list(self.home_arm), "gripper_width": self.home_gripper_width},
            "gripper": {
                "kind": grip.kind,
                "joints": list(grip.joints),
                "width_range": list(grip.width_range),
                "width_to_joint": {"scale": list(grip.width_to_joint_scale), "offset": list(grip.width_to_joint_offset)},
                "velocity": list(grip.velocity),
                "force": list(grip.force),
            },
            "cameras": [
                {"name": c.name, "body": c.body, "pos": list(c.pos), "xyaxes": list(c.xyaxes), "fovy": c.fovy}
                for c in self.cameras
            ],
            "grasp_reach": list(self.grasp_reach),
        }

    def check_model(self, model: Any) -> None:
        """Raise RobotDescriptionError where a compiled MuJoCo model disagrees with this description.

        Checks that every named joint, body, site and camera exists, that joint ranges equal the
        position limits (gripper: the range of its width map), and that each joint has one
        position servo whose force range equals the torque/force limit.
        """
        where = f"robot {self.name!r} ({self.source})"
        lookups = [("body", self.base_body), ("site", self.tcp_site), ("site", self.flange_site)]
        lookups += [("camera", c.name) for c in self.cameras]
        for kind, name in lookups:
            try:
                getattr(model, kind)(name)
            except KeyError:
                raise RobotDescriptionError(f"{where}: the model has no {kind} {name!r}") from None
        servo = {int(model.actuator_trnid[i, 0]): i for i in range(model.nu)}
        grip = self.gripper
        lo_w, hi_w = grip.joint_targets(grip.width_range[0]), grip.joint_targets(grip.width_range[1])
        rows = list(zip(self.arm.joints, self.arm.position_lower, self.arm.position_upper, self.arm.torque))
        rows += list(zip(grip.joints, np.minimum(lo_w, hi_w), np.maximum(lo_w, hi_w), grip.force))
        for name, lower, upper, force in rows:
            try:
                joint = model.joint(name)
            except KeyError:
                raise RobotDescriptionError(f"{where}: the model has no joint {name!r}") from None
            if not np.allclose(joint.range, (lower, upper), atol=1e-9):
                raise RobotDescriptionError(
                    f"{where}: joint {name!r} has range {joint.range.tolist()} in the MJCF, the description says {[lower, upper]}"
                )
            act = servo.get(int(joint.id))
            if act is None:
                raise RobotDescriptionError(f"{where}: joint {name!r} has no actuator in the MJCF")
            if not np.allclose(model.actuator_forcerange[act], (-force, force), atol=1e-9):
                raise RobotDescriptionError(
                    f"{where}: actuator of {name!r} has force range {model.actuator_forcerange[act].tolist()}, "
                    f"the description says +-{force}"
                )


# ---------------------------------------------------------------------------------- loading
@lru_cache(maxsize=1)
def robot_names() -> tuple[str, ...]:
    """Names of the robots shipped under sim_assets/robots/ (default robot first)."""
    folder = resources.files(__package__).joinpath(_ROBOTS_DIR)
    names = sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return tuple(sorted(names, key=lambda n: n != DEFAULT_ROBOT))


def load_robot(robot: str | RobotDescription = DEFAULT_ROBOT) -> RobotDescription:
    """The description of a shipped robot by name, or of a YAML file by path.

    A description passes through unchanged. Unknown names raise RobotDescriptionError
    listing the shipped robots; malformed files raise it naming the file and the key.
    """
    if isinstance(robot, RobotDescription):
        return robot
    if not isinstance(robot, str) or not robot:
        raise RobotDescriptionError(f"robot must be a robot name or a YAML path, got {robot!r}")
    if robot.endswith((".yaml", ".yml")) or "/" in robot:
        path = Path(robot).expanduser().resolve()
        if not path.is_file():
            raise RobotDescriptionError(f"robot description file not found: {path}")
        return _load_file(str(path))
    if robot not in robot_names():
        raise RobotDescriptionError(f"unknown robot {robot!r}; shipped robots: {', '.join(robot_names())}")
    return _load_file(str(resources.files(__package__).joinpath(_ROBOTS_DIR, f"{robot}.yaml")))


def robot_for_model(model: Any) -> RobotDescription:
    """The shipped robot whose arm joints a compiled MuJoCo model has (RobotDescriptionError if none)."""
    joints = {model.joint(i).name for i in range(model.njnt)}
    for name in robot_names():
        desc = load_robot(name)
        if set(desc.arm.joints) <= joints:
            return desc
    raise RobotDescriptionError(f"the model has the arm joints of no shipped robot ({', '.join(robot_names())})")


def robot_for_joints(names: Sequence[str]) -> RobotDescription:
    """The shipped robot whose joints include every name in `names` (RobotDescriptionError if none)."""
    wanted = set(names)
    for name in robot_names():
        desc = load_robot(name)
        if wanted <= set(desc.joint_names):
            return desc
    raise RobotDescriptionError(f"no shipped robot has all of the joints {list(names)}; robots: {', '.join(robot_names())}")


@lru_cache(maxsize=16)
def _load_file(path: str) -> RobotDescription:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RobotDescriptionError(f"{path}: not valid YAML: {exc}") from None
    return _parse(doc, path)


class _Reader:
    """Typed access to one mapping of the YAML, with errors naming the file and key."""

    def __init__(self, doc: Any, path: str, where: str, keys: Sequence[str], optional: Sequence[str] = ()):
        self.path, self.where = path, where
        if not isinstance(doc, Mapping):
            self.fail("", f"must be a mapping, got {type(doc).__name__}")
        unknown = sorted(set(doc) - set(keys) - set(optional))
        if unknown:
            self.fail("", f"unknown key(s) {unknown}; valid: {sorted([*keys, *optional])}")
        missing = [k for k in keys if k not in doc]
        if missing:
            self.fail("", f"missing key(s) {missing}")
        self.doc = doc

    def fail(self, key: str, message: str) -> None:
        name = ".".join(p for p in (self.where, key) if p) or "top level"
        raise RobotDescriptionError(f"{self.path}: {name}: {message}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.doc.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def number(self, key: str, positive: bool = False) -> float:
        value = self.doc[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value!r}")
        if positive and value <= 0:
            self.fail(key, f"must be > 0, got {value!r}")
        return float(value)

    def numbers(self, key: str, length: int | None = None, positive: bool = False) -> tuple[float, ...]:
        value = self.doc[key]
        ok = isinstance(value, list) and all(
            not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in value
        )
        if not ok:
            self.fail(key, f"must be a list of finite numbers, got {value!r}")
        if length is not None and len(value) != length:
            self.fail(key, f"needs {length} values (one per joint), got {len(value)}")
        if positive and any(v <= 0 for v in value):
            self.fail(key, f"values must be > 0, got {value}")
        return tuple(float(v) for v in value)

    def names(self, key: str) -> tuple[str, ...]:
        value = self.doc[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(key, f"must be a non-empty list of names, got {value!r}")
        if len(set(value)) != len(value):
            self.fail(key, f"names must be unique, got {value}")
        return tuple(value)


def _parse(doc: Any, path: str) -> RobotDescription:
    top = _Reader(
        doc,
        path,
        "",
        ("name", "title", "model_id", "env_prefix", "kinematics", "mjcf", "base_body", "base_frame", "tcp_site",
         "flange_site", "arm", "home", "gripper", "grasp_reach"),
        ("cameras",),
    )
    arm_r = _Reader(doc["arm"], path, "arm", ("joints", "position_lower", "position_upper", "velocity", "torque"))
    joints = arm_r.names("joints")
    n = len(joints)
    lower, upper = arm_r.numbers("position_lower", n), arm_r.numbers("position_upper", n)
    if any(lo >= hi for lo, hi in zip(lower, upper)):
        arm_r.fail("position_lower", f"every lower limit must be below its upper limit ({list(lower)} / {list(upper)})")
    arm = ArmSpec(joints, lower, upper, arm_r.numbers("velocity", n, True), arm_r.numbers("torque", n, True))
    gripper = _parse_gripper(doc["gripper"], path)
    if set(joints) & set(gripper.joints):
        top.fail("gripper.joints", f"names arm joints {sorted(set(joints) & set(gripper.joints))}")
    home_r = _Reader(doc["home"], path, "home", ("arm", "gripper_width"))
    home_arm = home_r.numbers("arm", n)
    outside = [j for j, q, lo, hi in zip(joints, home_arm, lower, upper) if not lo <= q <= hi]
    if outside:
        home_r.fail("arm", f"home pose is outside the position limits of {outside}")
    home_width = home_r.number("gripper_width")
    if not gripper.width_range[0] <= home_width <= gripper.width_range[1]:
        home_r.fail("gripper_width", f"must lie in the gripper's width range {list(gripper.width_range)}, got {home_width}")
    reach = top.numbers("grasp_reach", 2)
    if not 0 <= reach[0] < reach[1]:
        top.fail("grasp_reach", f"must be [min, max] radii with 0 <= min < max, got {list(reach)}")
    cameras_doc = doc.get("cameras") or []
    if not isinstance(cameras_doc, list):
        top.fail("cameras", f"must be a list of camera mounts, got {cameras_doc!r}")
    cameras = tuple(_parse_camera(c, path, f"cameras[{i}]") for i, c in enumerate(cameras_doc))
    mjcf = Path(path).parent / top.text("mjcf")
    if not mjcf.is_file():
        top.fail("mjcf", f"file not found: {mjcf}")
    name = top.text("name")
    if not name.isidentifier():
        top.fail("name", f"must be a plain identifier (letters, digits, _), got {name!r}")
    return RobotDescription(
        name=name,
        title=top.text("title"),
        model_id=top.text("model_id"),
        env_prefix=top.text("env_prefix"),
        kinematics=top.text("kinematics"),
        mjcf_path=str(mjcf),
        base_body=top.text("base_body"),
        base_frame=top.text("base_frame"),
        tcp_site=top.text("tcp_site"),
        flange_site=top.text("flange_site"),
        arm=arm,
        gripper=gripper,
        home_arm=home_arm,
        home_gripper_width=home_width,
        cameras=cameras,
        grasp_reach=(reach[0], reach[1]),
        source=path,
    )


def _parse_gripper(doc: Any, path: str) -> GripperSpec:
    r = _Reader(doc, path, "gripper", ("kind", "joints", "width_range", "width_to_joint", "velocity", "force"))
    kind = r.text("kind")
    if kind not in GRIPPER_KINDS:
        r.fail("kind", f"unknown gripper kind {kind!r}; known: {list(GRIPPER_KINDS)}")
    joints = r.names("joints")
    n = len(joints)
    width = r.numbers("width_range", 2)
    if not 0 <= width[0] < width[1]:
        r.fail("width_range", f"must be [min, max] with 0 <= min < max, got {list(width)}")
    m = _Reader(doc["width_to_joint"], path, "gripper.width_to_joint", ("scale", "offset"))
    scale, offset = m.numbers("scale", n), m.numbers("offset", n)
    if any(s == 0 for s in scale):
        m.fail("scale", f"a zero scale maps every width to one command: {list(scale)}")
    return GripperSpec(kind, joints, (width[0], width[1]), scale, offset, r.numbers("velocity", n, True), r.numbers("force", n, True))


def _parse_camera(doc: Any, path: str, where: str) -> CameraMount:
    r = _Reader(doc, path, where, ("name", "body", "pos", "xyaxes", "fovy"))
    fovy = r.number("fovy", positive=True)
    if fovy >= 180:
        r.fail("fovy", f"must be below 180 degrees, got {fovy}")
    pos = r.numbers("pos", 3)
    return CameraMount(r.text("name"), r.text("body"), (pos[0], pos[1], pos[2]), r.numbers("xyaxes", 6), fovy)


# ---------------------------------------------------------------------------------- MJCF
def _num(v: float) -> str:
    """Shortest text that reads back as exactly `v` (integers without a trailing .0)."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


@lru_cache(maxsize=16)
def _mjcf_xml(desc: RobotDescription) -> str:
    try:
        root = ET.fromstring(Path(desc.mjcf_path).read_text(encoding="utf-8"))
    except ET.ParseError as exc:
        raise RobotDescriptionError(f"{desc.mjcf_path}: not valid XML: {exc}") from None
    bodies = {b.get("name"): b for b in root.iter("body")}
    for cam in desc.cameras:
        parent = bodies.get(cam.body)
        if parent is None:
            raise RobotDescriptionError(f"{desc.source}: camera {cam.name!r} is mounted on body {cam.body!r}, not in {desc.mjcf_path}")
        element = ET.Element(
            "camera", name=cam.name, pos=" ".join(map(_num, cam.pos)), xyaxes=" ".join(map(_num, cam.xyaxes)), fovy=_num(cam.fovy)
        )
        # MJCF lists a body's own elements before its child bodies: mount the camera there.
        children = list(parent)
        first_body = next((i for i, c in enumerate(children) if c.tag == "body"), len(children))
        parent.insert(first_body, element)
    custom = root.find("custom")
    if custom is None:
        custom = ET.SubElement(root, "custom")
    for suffix, values in (("velocity_limits", desc.velocity_limits), ("home_qpos", desc.home_qpos)):
        ET.SubElement(custom, "numeric", name=f"{desc.name}_{suffix}", data=" ".join(map(_num, values)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")
