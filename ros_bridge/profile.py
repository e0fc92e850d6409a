"""ROS 2 robot profiles: how a real driver names, publishes and accepts things (pure Python, no rclpy).

A profile (YAML under `ros_bridge/config/profiles/`, or any file given by path) maps what a
ROS 2 driver speaks onto a skillstack robot description (`sim_assets.load_robot`):

* ``joints``: driver joint name -> description joint, arm joints first, then the gripper's;
* ``joint_states``: the topics joint states arrive on, each with the joints it carries and its
  expected rate (an arm and a gripper may publish separately, at different rates), and the
  driver's merged topic (``merged``) that may be used instead (``use: merged``);
* ``watchdog``: how many missed messages make a topic stale: each topic's threshold is
  ``max(safety.stale_after_s, missed_messages / rate_hz)``, so a 30 Hz topic gets 167 ms,
  not 100 ms (three messages);
* ``arm``: controller name and interface (``position``: Float64MultiArray on
  ``/<controller>/commands``; ``trajectory``: JointTrajectory on ``/<controller>/joint_trajectory``;
  ``action``: control_msgs/FollowJointTrajectory on ``/<controller>/follow_joint_trajectory``,
  falling back to the trajectory topic when the action types cannot be imported);
* ``gripper``: its own command path: ``action`` (control_msgs/GripperCommand, goal position =
  the target of ``command_joint``), ``trajectory`` / ``position`` (a controller of its own), or
  ``arm`` (the gripper joints ride in the arm controller's command, as in skillstack's
  single-controller simulation, ``panda_sim``);
* ``limits``: the real arm's own limits per driver joint; the tighter of these and the
  description's are in force;
* ``base_frame`` and ``frames``: object poses must be in the base frame or in a frame with a
  static transform here (its pose in the base frame); anything else is refused;
* ``ramp_s``: after every (re)start the velocity limit ramps up from zero over this long;
* ``cameras``: the cameras the perception node reads, each with its image and CameraInfo topics,
  raw or compressed transport, the MJCF camera sim_robot renders for it, and its ``calibration``
  (`perception.camera.CameraModel.to_dict()`: optical frame, resolution, intrinsics and its pose
  ``T_base_camera`` in the base frame, or in a frame under ``frames``), as `skillstack calibrate` writes it.

`load_profile` returns a frozen `RobotProfile`, refusing bad input with errors naming the file
and the key (unknown joints included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from common.transforms import pose_matrix, quat_conjugate, quat_multiply, quat_rotate, xyzw_to_wxyz
from sim_assets import RobotDescription, RobotDescriptionError, load_robot

__all__ = [
    "ARM_INTERFACES",
    "DEFAULT_PROFILE",
    "GRIPPER_INTERFACES",
    "ArmCommand",
    "CameraSpec",
    "GripperCommandPath",
    "ProfileError",
    "RobotProfile",
    "StateSource",
    "StaticTransform",
    "load_profile",
    "profile_names",
]

DEFAULT_PROFILE = "panda_sim"
ARM_INTERFACES = ("position", "trajectory", "action")
GRIPPER_INTERFACES = ("arm", "action", "trajectory", "position", "none")
_PROFILES_DIR = ("config", "profiles")


class ProfileError(ValueError):
    """A robot profile is missing, malformed, or names joints its robot does not have."""


@dataclass(frozen=True)
class StateSource:
    """One joint-state topic: the driver joints it carries and how often it should arrive."""

    topic: str
    rate_hz: float
    joints: tuple[str, ...]  # driver names

    def stale_after_s(self, floor_s: float, missed_messages: float) -> float:
        """Watchdog threshold of this topic: `missed_messages` periods, never below `floor_s`."""
        return max(float(floor_s), float(missed_messages) / self.rate_hz)


@dataclass(frozen=True)
class ArmCommand:
    """Where arm targets go: a ros2_control controller and the interface used to reach it."""

    controller: str
    interface: str  # position | trajectory | action
    joints: tuple[str, ...]  # driver names, in the controller's order (gripper too when it rides along)

    @property
    def commands_topic(self) -> str:
        """forward_command_controller's topic."""
        return f"/{self.controller}/commands"

    @property
    def trajectory_topic(self) -> str:
        """joint_trajectory_controller's streaming topic."""
        return f"/{self.controller}/joint_trajectory"

    @property
    def action_name(self) -> str:
        """joint_trajectory_controller's FollowJointTrajectory action."""
        return f"/{self.controller}/follow_joint_trajectory"


@dataclass(frozen=True)
class GripperCommandPath:
    """Where gripper targets go (never inside the arm's trajectory unless interface is 'arm')."""

    interface: str  # arm | action | trajectory | position | none
    joints: tuple[str, ...]  # driver names of the gripper joints
    action: str = ""  # GripperCommand action name (interface 'action')
    command_joint: str = ""  # GripperCommand.position is this joint's target
    max_effort: float = 0.0  # GripperCommand.max_effort (N; 0 = the driver's default)
    goal_deadband: float = 0.002  # a new goal only when the target moved this far (joint units)
    controller: str = ""  # the gripper's own controller (interfaces 'trajectory' / 'position')


@dataclass(frozen=True)
class CameraSpec:
    """A camera of the robot's cell: where its images arrive and its calibration (intrinsics at the
    calibrated resolution, optical frame, pose in the base frame: a `perception.camera.CameraModel`)."""

    name: str
    image_topic: str  # sensor_msgs/Image; the compressed stream is this + "/compressed"
    camera_info_topic: str
    transport: str = "raw"  # raw | compressed
    sim_camera: str = ""  # the MJCF camera sim_robot renders for it ("" = `name`)
    calibration: Any = field(default=None, compare=False)  # CameraModel in the base frame; None = not calibrated yet

    @property
    def compressed_topic(self) -> str:
        """image_transport's compressed topic for `image_topic`."""
        return self.image_topic + "/compressed"


@dataclass(frozen=True)
class StaticTransform:
    """Pose of a frame in the base frame: p_base = R @ p_frame + t, q_base = q_rot * q_frame."""

    translation: tuple[float, float, float]
    rotation_xyzw: tuple[float, float, float, float]

    @property
    def rotation_wxyz(self) -> np.ndarray:
        """The rotation as a unit quaternion (w, x, y, z) (normalised when the profile was loaded)."""
        return xyzw_to_wxyz(self.rotation_xyzw, normalise=False)

    def apply(self, position: Sequence[float], quat_wxyz: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """A pose given in this frame, expressed in the base frame (position, quaternion wxyz); a pose with
        NaN or inf comes back as NaN (a message off the wire: the pose cache refuses it, naming why)."""
        if not (np.isfinite(position).all() and np.isfinite(quat_wxyz).all()):
            return np.full(3, np.nan), np.full(4, np.nan)  # not raised: this runs in a subscriber callback
        r = self.rotation_wxyz
        return quat_rotate(r, position) + np.asarray(self.translation), quat_multiply(r, quat_wxyz)

    def matrix(self) -> np.ndarray:
        """This transform as a 4x4 homogeneous matrix (the frame's pose in the base frame)."""
        return pose_matrix(self.translation, self.rotation_wxyz)

    def inverse_apply(self, position: Sequence[float], quat_wxyz: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """A pose given in the base frame, expressed in this frame (what a camera would report)."""
        r_conj = quat_conjugate(self.rotation_wxyz)
        p = quat_rotate(r_conj, np.asarray(position, dtype=np.float64) - np.asarray(self.translation))
        return p, quat_multiply(r_conj, quat_wxyz)


@dataclass(frozen=True)
class RobotProfile:
    """One driver's view of a robot (see the module docstring)."""

    name: str
    title: str
    driver: str
    robot: str  # description name or path
    base_frame: str
    joint_map: tuple[tuple[str, str], ...]  # (driver name, description name), arm then gripper
    sources: tuple[StateSource, ...]
    merged: StateSource | None
    use_merged: bool
    missed_messages: float
    arm: ArmCommand
    gripper: GripperCommandPath
    limits: tuple[tuple[str, float, float, float], ...]  # (driver joint, lower, upper, velocity)
    frames: tuple[tuple[str, StaticTransform], ...]
    ramp_s: float
    source: str  # the YAML file
    cameras: tuple[CameraSpec, ...] = ()
    description: RobotDescription = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    # -- names -----------------------------------------------------------------------------
    @property
    def driver_joints(self) -> tuple[str, ...]:
        """Driver joint names in the description's order (arm, then gripper)."""
        return tuple(d for d, _ in self.joint_map)

    def to_description(self, names: Sequence[str]) -> list[str]:
        """Driver names -> description names (names the profile does not map pass unchanged)."""
        m = dict(self.joint_map)
        return [m.get(n, n) for n in names]

    def to_driver(self, names: Sequence[str]) -> list[str]:
        """Description names -> driver names."""
        m = {desc: drv for drv, desc in self.joint_map}
        return [m[n] for n in names]

    def with_joint_names(self, names: Sequence[str]) -> list[str]:
        """Validate a list of driver names (e.g. an override of the arm's joints): all known, distinct."""
        unknown = [n for n in names if n not in self.driver_joints]
        if unknown or len(set(names)) != len(names):
            raise ProfileError(f"profile {self.name!r}: joints must be distinct driver joints of {list(self.driver_joints)}, got {list(names)}")
        return list(names)

    # -- states and frames -------------------------------------------------------------------
    @property
    def state_sources(self) -> tuple[StateSource, ...]:
        """The joint-state topics the executor listens to (the merged one, or each device's)."""
        return (self.merged,) if self.use_merged and self.merged is not None else self.sources

    def frame(self, frame_id: str) -> StaticTransform | None:
        """The transform of `frame_id` into the base frame (identity for the base), or None."""
        if frame_id == self.base_frame:
            return StaticTransform((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
        return dict(self.frames).get(frame_id)

    def to_base(self, frame_id: str, position: Sequence[float], quat_wxyz: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """A pose in `frame_id` expressed in the base frame; ProfileError when no transform is known."""
        tf = self.frame(frame_id)
        if tf is None:
            known = [self.base_frame, *(f for f, _ in self.frames)]
            raise ProfileError(
                f"pose in frame {frame_id!r} has no transform to the base frame {self.base_frame!r} "
                f"(profile {self.name!r} knows {known}; add it under 'frames')"
            )
        return tf.apply(position, quat_wxyz)

    def camera(self, name: str | None = None) -> CameraSpec:
        """The profile's camera `name` (None: its first); ProfileError naming the cameras it has."""
        if not self.cameras:
            raise ProfileError(f"profile {self.name!r} ({self.source}) lists no cameras: add a 'cameras' section")
        if name is None:
            return self.cameras[0]
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise ProfileError(f"profile {self.name!r} has no camera {name!r}; its cameras: {[c.name for c in self.cameras]}")

    def with_state_source(self, use: str) -> "RobotProfile":
        """A copy listening to 'sources' (each device's topic) or 'merged' (the driver's merged topic)."""
        if use not in ("sources", "merged"):
            raise ProfileError(f"joint_states.use must be 'sources' or 'merged', got {use!r}")
        if use == "merged" and self.merged is None:
            raise ProfileError(f"profile {self.name!r} has no merged joint-state topic")
        import dataclasses

        return dataclasses.replace(self, use_merged=use == "merged")

    # -- limits ------------------------------------------------------------------------------
    def limits_for(self, desc_names: Sequence[str], lower: np.ndarray, upper: np.ndarray, velocity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The limits in force for description joints `desc_names`: the tighter of the
        description's (`lower`, `upper`, `velocity`) and this profile's own."""
        lo, hi, vel = (np.array(a, dtype=np.float64) for a in (lower, upper, velocity))
        own = {self.to_description([d])[0]: (lo_, hi_, v_) for d, lo_, hi_, v_ in self.limits}
        for i, name in enumerate(desc_names):
            if name in own:
                l_, h_, v_ = own[name]
                lo[i], hi[i], vel[i] = max(lo[i], l_), min(hi[i], h_), min(vel[i], v_)
        if np.any(lo > hi):
            bad = [n for n, b in zip(desc_names, lo > hi) if b]
            raise ProfileError(f"profile {self.name!r}: its limits and the description's leave no range for {bad}")
        return lo, hi, vel

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the start-up summary and `skillstack robots --json` use it)."""
        return {
            "name": self.name,
            "title": self.title,
            "driver": self.driver,
            "robot": self.robot,
            "base_frame": self.base_frame,
            "joints": dict(self.joint_map),
            "joint_states": [{"topic": s.topic, "rate_hz": s.rate_hz, "joints": list(s.joints)} for s in self.sources],
            "merged": None if self.merged is None else {"topic": self.merged.topic, "rate_hz": self.merged.rate_hz},
            "use": "merged" if self.use_merged else "sources",
            "watchdog_missed_messages": self.missed_messages,
            "arm": {"controller": self.arm.controller, "interface": self.arm.interface, "joints": list(self.arm.joints)},
            "gripper": {
                "interface": self.gripper.interface, "joints": list(self.gripper.joints), "action": self.gripper.action,
                "command_joint": self.gripper.command_joint, "controller": self.gripper.controller,
            },
            "limits": {d: {"lower": lo, "upper": hi, "velocity": v} for d, lo, hi, v in self.limits},
            "frames": sorted(f for f, _ in self.frames),
            "cameras": {c.name: {"image_topic": c.image_topic, "camera_info_topic": c.camera_info_topic, "transport": c.transport,
                                 "frame": c.calibration.frame_id if c.calibration is not None else None,
                                 "calibrated_size": [c.calibration.width, c.calibration.height] if c.calibration is not None else None}
                        for c in self.cameras},
            "ramp_s": self.ramp_s,
            "source": self.source,
        }  # fmt: skip


# ---------------------------------------------------------------------------------- loading
@lru_cache(maxsize=1)
def profile_names() -> tuple[str, ...]:
    """Names of the profiles shipped under ros_bridge/config/profiles/ (the default first)."""
    folder = resources.files(__package__).joinpath(*_PROFILES_DIR)
    names = sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return tuple(sorted(names, key=lambda n: n != DEFAULT_PROFILE))


def load_profile(profile: str | RobotProfile = DEFAULT_PROFILE) -> RobotProfile:
    """A shipped profile by name, or a profile YAML by path (a profile passes through).

    Unknown names raise ProfileError listing the shipped ones; a malformed file, an unknown
    joint or a bad rate raise it naming the file and the key.
    """
    if isinstance(profile, RobotProfile):
        return profile
    if not isinstance(profile, str) or not profile:
        raise ProfileError(f"profile must be a profile name or a YAML path, got {profile!r}")
    if profile.endswith((".yaml", ".yml")) or "/" in profile:
        path = Path(profile).expanduser().resolve()
        if not path.is_file():
            raise ProfileError(f"robot profile file not found: {path}")
        return _load_file(str(path))
    if profile not in profile_names():
        raise ProfileError(f"unknown robot profile {profile!r}; shipped profiles: {', '.join(profile_names())}")
    return _load_file(str(resources.files(__package__).joinpath(*_PROFILES_DIR, f"{profile}.yaml")))


@lru_cache(maxsize=16)
def _load_file(path: str) -> RobotProfile:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    return _Parser(path).profile(doc)


class _Parser:
    """Typed reads of a profile YAML with errors naming the file and the key."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, message: str) -> None:
        raise ProfileError(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")

    def mapping(self, doc: Any, key: str, required: Sequence[str], optional: Sequence[str] = ()) -> Mapping[str, Any]:
        if not isinstance(doc, Mapping):
            self.fail(key, f"must be a mapping, got {type(doc).__name__}")
        unknown = sorted(set(doc) - set(required) - set(optional))
        if unknown:
            self.fail(key, f"unknown key(s) {unknown}; valid: {sorted([*required, *optional])}")
        missing = [k for k in required if k not in doc]
        if missing:
            self.fail(key, f"missing key(s) {missing}")
        return doc

    def text(self, doc: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = doc.get(key, default)
        if not isinstance(value, str) or not value:
            self.fail(f"{where}{key}", f"must be a non-empty string, got {value!r}")
        return value

    def number(self, value: Any, key: str, positive: bool = False, minimum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value!r}")
        if positive and value <= 0:
            self.fail(key, f"must be > 0, got {value!r}")
        if minimum is not None and value < minimum:
            self.fail(key, f"must be >= {minimum}, got {value!r}")
        return float(value)

    def names(self, value: Any, key: str, known: Sequence[str]) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.fail(key, f"must be a non-empty list of joint names, got {value!r}")
        unknown = [v for v in value if v not in known]
        if unknown or len(set(value)) != len(value):
            self.fail(key, f"unknown or repeated joints {unknown or value}; the profile's joints: {list(known)}")
        return tuple(value)

    def topic(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.startswith("/") or value.endswith("/") or " " in value:
            self.fail(key, f"must be an absolute topic name like '/joint_states', got {value!r}")
        return value

    def profile(self, doc: Any) -> RobotProfile:
        top = self.mapping(
            doc, "", ("name", "robot", "base_frame", "joints", "joint_states", "arm", "gripper"),
            ("title", "driver", "watchdog", "limits", "frames", "ramp_s", "cameras"),
        )  # fmt: skip
        try:
            desc = load_robot(top["robot"])
        except RobotDescriptionError as exc:
            self.fail("robot", str(exc))
        joint_map = self.joint_map(top["joints"], desc)
        drivers = tuple(d for d, _ in joint_map)
        arm_drivers = tuple(d for d, n in joint_map if n in desc.arm.joints)
        grip_drivers = tuple(d for d, n in joint_map if n in desc.gripper.joints)
        sources, merged, use_merged = self.joint_states(top["joint_states"], drivers)
        watchdog = self.mapping(top.get("watchdog", {}), "watchdog", (), ("missed_messages",))
        missed = self.number(watchdog.get("missed_messages", 5), "watchdog.missed_messages", minimum=1)
        gripper = self.gripper(top["gripper"], grip_drivers)
        frames = self.frames(top.get("frames", {}), top["base_frame"])
        return RobotProfile(
            name=self.text(top, "name", ""),
            title=str(top.get("title", top["name"])),
            driver=str(top.get("driver", "")),
            robot=top["robot"],
            base_frame=self.text(top, "base_frame", ""),
            joint_map=joint_map,
            sources=sources,
            merged=merged,
            use_merged=use_merged,
            missed_messages=missed,
            arm=self.arm(top["arm"], arm_drivers + (grip_drivers if gripper.interface == "arm" else ())),
            gripper=gripper,
            limits=self.limits(top.get("limits", {}), drivers),
            frames=frames,
            ramp_s=self.number(top.get("ramp_s", 0.0), "ramp_s", minimum=0.0),
            source=self.path,
            cameras=self.cameras(top.get("cameras", {}), top["base_frame"], frames),
            description=desc,
        )

    def joint_map(self, doc: Any, desc: RobotDescription) -> tuple[tuple[str, str], ...]:
        if not isinstance(doc, Mapping) or not doc:
            self.fail("joints", "must map each driver joint name to a joint of the robot description")
        unknown = [n for n in doc.values() if n not in desc.joint_names]
        if unknown:
            self.fail("joints", f"names joints the {desc.name} description does not have: {unknown}; its joints: {list(desc.joint_names)}")
        missing = [n for n in desc.joint_names if n not in doc.values()]
        if missing or len(set(doc.values())) != len(doc):
            self.fail("joints", f"must map every joint of the {desc.name} description once; unmapped: {missing}")
        by_desc = {v: k for k, v in doc.items()}
        return tuple((str(by_desc[n]), n) for n in desc.joint_names)

    def source(self, doc: Any, key: str, drivers: Sequence[str], joints_required: bool) -> StateSource:
        d = self.mapping(doc, key, ("topic", "rate_hz"), ("joints",))
        joints = self.names(d["joints"], f"{key}.joints", drivers) if "joints" in d else tuple(drivers)
        if joints_required and "joints" not in d:
            self.fail(key, "missing key 'joints'")
        return StateSource(self.topic(d["topic"], f"{key}.topic"), self.number(d["rate_hz"], f"{key}.rate_hz", positive=True), joints)

    def joint_states(self, doc: Any, drivers: Sequence[str]) -> tuple[tuple[StateSource, ...], StateSource | None, bool]:
        d = self.mapping(doc, "joint_states", ("sources",), ("merged", "use"))
        if not isinstance(d["sources"], list) or not d["sources"]:
            self.fail("joint_states.sources", "must list at least one topic")
        sources = tuple(self.source(s, f"joint_states.sources[{i}]", drivers, len(d["sources"]) > 1) for i, s in enumerate(d["sources"]))
        covered = [j for s in sources for j in s.joints]
        if sorted(covered) != sorted(drivers):
            self.fail("joint_states.sources", f"must carry every joint exactly once between them; they carry {covered}")
        if len({s.topic for s in sources}) != len(sources):
            self.fail("joint_states.sources", "two sources on one topic")
        merged = self.source(d["merged"], "joint_states.merged", drivers, False) if d.get("merged") else None
        use = d.get("use", "sources")
        if use not in ("sources", "merged") or (use == "merged" and merged is None):
            self.fail("joint_states.use", f"must be 'sources' or 'merged' (with a merged topic), got {use!r}")
        return sources, merged, use == "merged"

    def arm(self, doc: Any, arm_drivers: tuple[str, ...]) -> ArmCommand:
        d = self.mapping(doc, "arm", ("controller", "interface"), ())
        controller = self.text(d, "controller", "arm.")
        if "/" in controller.strip("/"):
            self.fail("arm.controller", f"must be a plain controller name, got {controller!r}")
        if d["interface"] not in ARM_INTERFACES:
            self.fail("arm.interface", f"must be one of {ARM_INTERFACES}, got {d['interface']!r}")
        return ArmCommand(controller.strip("/"), d["interface"], arm_drivers)

    def gripper(self, doc: Any, grip_drivers: tuple[str, ...]) -> GripperCommandPath:
        d = self.mapping(doc, "gripper", ("interface",), ("action", "command_joint", "max_effort", "goal_deadband", "controller"))
        kind = d["interface"]
        if kind not in GRIPPER_INTERFACES:
            self.fail("gripper.interface", f"must be one of {GRIPPER_INTERFACES}, got {kind!r}")
        action = command_joint = controller = ""
        if kind == "action":
            action = self.topic(d.get("action"), "gripper.action")
            command_joint = self.text(d, "command_joint", "gripper.")
            if command_joint not in grip_drivers:
                self.fail("gripper.command_joint", f"must be one of the gripper's joints {list(grip_drivers)}, got {command_joint!r}")
        if kind in ("trajectory", "position"):
            controller = self.text(d, "controller", "gripper.").strip("/")
        return GripperCommandPath(
            kind, grip_drivers, action, command_joint,
            self.number(d.get("max_effort", 0.0), "gripper.max_effort", minimum=0.0),
            self.number(d.get("goal_deadband", 0.002), "gripper.goal_deadband", positive=True),
            controller,
        )  # fmt: skip

    def limits(self, doc: Any, drivers: Sequence[str]) -> tuple[tuple[str, float, float, float], ...]:
        if not isinstance(doc, Mapping):
            self.fail("limits", "must map driver joints to {lower, upper, velocity}")
        out = []
        for joint, lim in doc.items():
            if joint not in drivers:
                self.fail("limits", f"unknown joint {joint!r}; the profile's joints: {list(drivers)}")
            m = self.mapping(lim, f"limits.{joint}", ("lower", "upper", "velocity"))
            lo, hi = self.number(m["lower"], f"limits.{joint}.lower"), self.number(m["upper"], f"limits.{joint}.upper")
            if lo >= hi:
                self.fail(f"limits.{joint}", f"lower {lo} must be below upper {hi}")
            out.append((str(joint), lo, hi, self.number(m["velocity"], f"limits.{joint}.velocity", positive=True)))
        return tuple(out)

    def cameras(self, doc: Any, base: str, frames: Sequence[tuple[str, StaticTransform]]) -> tuple[CameraSpec, ...]:
        if not isinstance(doc, Mapping):
            self.fail("cameras", "must map camera names to {image_topic, camera_info_topic, transport, sim_camera, calibration}")
        out = []
        for name, cam in doc.items():
            key = f"cameras.{name}"
            m = self.mapping(cam, key, (), ("image_topic", "camera_info_topic", "transport", "sim_camera", "calibration"))
            transport = m.get("transport", "raw")
            if transport not in ("raw", "compressed"):
                self.fail(f"{key}.transport", f"must be 'raw' or 'compressed', got {transport!r}")
            calibration = None if m.get("calibration") is None else self.calibration(m["calibration"], f"{key}.calibration", base, frames)
            out.append(CameraSpec(
                str(name),  # topics default to sim_robot's (ros_bridge.perception_params.camera_topics)
                self.topic(m.get("image_topic", f"/cameras/{name}/image_raw"), f"{key}.image_topic"),
                self.topic(m.get("camera_info_topic", f"/cameras/{name}/camera_info"), f"{key}.camera_info_topic"),
                transport, str(m.get("sim_camera", "")) or str(name), calibration,
            ))  # fmt: skip
        return tuple(out)

    def calibration(self, doc: Any, key: str, base: str, frames: Sequence[tuple[str, StaticTransform]]) -> Any:
        """A camera calibration (CameraModel.to_dict()) expressed in the base frame."""
        from perception.camera import CameraModel, CameraModelError

        if not isinstance(doc, Mapping):
            self.fail(key, "must be a camera model mapping (perception.camera.CameraModel.to_dict())")
        try:
            model = CameraModel.from_dict(dict(doc))
        except (CameraModelError, TypeError, ValueError) as exc:
            self.fail(key, str(exc))
        if model.base_frame == base:
            return model
        tf = dict(frames).get(model.base_frame)
        if tf is None:
            self.fail(f"{key}.base_frame", f"{model.base_frame!r} is neither the base frame {base!r} nor under 'frames'")
        import dataclasses

        return dataclasses.replace(model, T_base_camera=tf.matrix() @ model.T_base_camera, base_frame=base)

    def frames(self, doc: Any, base: str) -> tuple[tuple[str, StaticTransform], ...]:
        if not isinstance(doc, Mapping):
            self.fail("frames", "must map frame ids to {translation, rotation_xyzw} (the frame's pose in the base frame)")
        out = []
        for frame, tf in doc.items():
            if frame == base:
                self.fail(f"frames.{frame}", "is the base frame (its transform is the identity)")
            m = self.mapping(tf, f"frames.{frame}", ("translation", "rotation_xyzw"))
            t = m["translation"]
            r = m["rotation_xyzw"]
            if not (isinstance(t, list) and len(t) == 3) or not (isinstance(r, list) and len(r) == 4):
                self.fail(f"frames.{frame}", "translation needs 3 numbers and rotation_xyzw 4")
            t = tuple(self.number(v, f"frames.{frame}.translation") for v in t)
            r = np.array([self.number(v, f"frames.{frame}.rotation_xyzw") for v in r])
            norm = float(np.linalg.norm(r))
            if abs(norm - 1.0) > 1e-3:
                self.fail(f"frames.{frame}.rotation_xyzw", f"must be a unit quaternion (norm {norm:.4f})")
            out.append((str(frame), StaticTransform(t, tuple(float(v) for v in r / norm))))
        return tuple(out)
