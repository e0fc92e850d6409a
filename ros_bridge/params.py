"""Node parameters as dataclasses, and the ROS 2 parameter YAML they are read from (no rclpy).

One YAML file configures both nodes, in ROS 2's own format, so the very same file
works with ``ros2 launch ros_bridge deploy.launch.py params_file:=...`` (ROS parses it)
and with ``skillstack deploy --params FILE`` (which validates it here first, then hands it
to the node processes with ``--ros-args --params-file``)::

    skill_executor:
      ros__parameters:
        task: skillstack/PandaReach-v0
        safety:
          stale_after_s: 0.1
    sim_robot:
      ros__parameters:
        publish_rate: 200.0

Nested keys flatten with dots (``safety.stale_after_s``), as ROS does. Values are
coerced to the dataclass field types (YAML ``100`` is fine for a float parameter), and an
unknown key is an error naming the valid ones.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from envs.in_flight import DEFAULT_IK_BASE, IK_BASES
from ros_bridge.perception_params import PerceptionParams, SimCameraParams
from ros_bridge.profile import ARM_INTERFACES, DEFAULT_PROFILE, RobotProfile, load_profile
from ros_bridge.safety import SafetyConfig
from sim_assets import DEFAULT_ROBOT, RobotDescription, load_robot

__all__ = [
    "DEFAULT_PARAMS_FILE",
    "ExecutorParams",
    "SimRobotParams",
    "flatten",
    "node_params",
    "params_from_mapping",
    "read_params_file",
]

DEFAULT_PARAMS_FILE = Path(__file__).resolve().parent / "config" / "deploy.yaml"
INTERFACES = ARM_INTERFACES
STATE_SOURCES = ("", "sources", "merged")


@dataclass
class ExecutorParams:
    """Parameters of the skill_executor node (see README "ROS 2 deployment")."""

    task: str = ""  # env id whose observation/IK the skill uses; "" = the skill's own (Reach for expert)
    skill: str = "expert"  # "expert", a skill package directory, or name[@version]
    library_root: str = ""  # skill library root ("" = the library's default)
    lock_file: str = ""  # a lock file (skillstack skills lock): run only the skills it pins ("" = no lock)
    plan_task: str = ""  # long-horizon task (name, env id or YAML spec): run the hierarchical controller
    plan_goal: str = ""  # goal expression overriding the plan task's own (e.g. "on(red,blue)")
    plan_skills: str = "all"  # library skills the controller may use: all | learned | scripted
    plan_max_steps: int = 0  # controller episode length in control periods (0 = 4 x the task's)
    goal: list[float] = field(default_factory=list)  # task goal; [] = the task's seed-0 goal
    goal_topic: str = ""  # optional geometry_msgs/PoseStamped goal (3-D goals)
    control_rate: float = 0.0  # Hz; 0 = the skill's own rate (25 Hz for the envs)
    profile: str = DEFAULT_PROFILE  # robot profile (config/profiles/NAME.yaml or a path): the driver's names,
    # topics, rates, controllers, gripper path, frames and limits; the four below override it
    controller: str = ""  # ros2_control controller name ("" = the profile's)
    interface: str = ""  # "" = the profile's; "position": Float64MultiArray on /<controller>/commands;
    # "trajectory": JointTrajectory on /<controller>/joint_trajectory; "action": FollowJointTrajectory
    joints: list[str] = field(default_factory=list)  # the arm controller's joints in order, driver names ([] = the profile's)
    joint_states_topic: str = ""  # "" = the profile's topics; a topic = one topic carrying every joint
    state_source: str = ""  # "" = the profile's choice; "sources" (each device's topic) or "merged"
    shadow: bool = False  # compute every command but send none: publish each on ~/preview (JointTrajectory)
    object_pose_topics: list[str] = field(default_factory=list)  # per task object; [] = /objects/<name>/pose
    predict_object_poses: bool = False  # carry each pose forward from its stamp at its velocity (perceived poses)
    ik_base: str = DEFAULT_IK_BASE  # the IK steps from the measured joints, or "in_flight": from where the arm will be when the command lands (envs.in_flight)
    ik_base_max_lead: float = 0.25  # rad: larger in-flight increments are not stepped from (held, blocked)
    ik_base_response: float = 0.0  # in_flight: the arm's share of the way per period; 0 = identified online
    carry_held_objects: bool = False  # a held object's pose rides on the TCP while unseen (ros_bridge.carried; perceived poses)
    carry_width: list[float] = field(default_factory=lambda: [0.03, 0.05])  # m: gripper opening that counts as holding an object
    carry_radius: float = 0.03  # m: an object this close to the TCP when the fingers close on it is held
    occlusion_camera: str = ""  # the profile camera the object poses come from: an old pose of an object the robot itself
    # hides from it (and does not touch) is kept, not held on (ros_bridge.occlusion); "" = no such test (every old pose holds)
    occluded_pose_max_age_s: float = 30.0  # s: a pose kept that way holds the arm once it is older than this
    stamp_source: str = "header"  # watchdog age from "header" stamps or local "receipt" time
    autostart: bool = True  # start the skill as soon as states arrive
    stop_on_success: bool = True  # hold and report "done" once the task's success test has passed
    success_hold_s: float = 0.5  # ... continuously for this long
    publish_timing: bool = False  # publish per-tick timing on ~/timing (benchmark)
    status_rate: float = 10.0  # Hz of ~/status
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self) -> None:
        if self.interface and self.interface not in INTERFACES:
            raise ValueError(f"interface must be one of {INTERFACES} ('' = the profile's), got {self.interface!r}")
        if self.state_source not in STATE_SOURCES:
            raise ValueError(f"state_source must be one of {STATE_SOURCES}, got {self.state_source!r}")
        if self.joint_states_topic and not self.joint_states_topic.startswith("/"):
            raise ValueError(f"joint_states_topic must be an absolute topic name, got {self.joint_states_topic!r}")
        if self.stamp_source not in ("header", "receipt"):
            raise ValueError(f"stamp_source must be 'header' or 'receipt', got {self.stamp_source!r}")
        if self.ik_base not in IK_BASES:
            raise ValueError(f"ik_base must be one of {IK_BASES}, got {self.ik_base!r}")
        if not (0.0 < self.ik_base_max_lead < math.inf):
            raise ValueError(f"ik_base_max_lead must be > 0 rad, got {self.ik_base_max_lead}")
        if not (0.0 <= self.ik_base_response <= 1.0):
            raise ValueError(f"ik_base_response must be in [0, 1] (0 = identified online), got {self.ik_base_response}")
        if len(self.carry_width) != 2 or not (0.0 <= self.carry_width[0] < self.carry_width[1] < math.inf):
            raise ValueError(f"carry_width must be [min, max] gripper openings in m with 0 <= min < max, got {list(self.carry_width)}")
        if not (0.0 < self.carry_radius < math.inf):
            raise ValueError(f"carry_radius must be > 0 m, got {self.carry_radius}")
        if not (self.occluded_pose_max_age_s > 0 and math.isfinite(self.occluded_pose_max_age_s)):
            raise ValueError(f"occluded_pose_max_age_s must be > 0 s, got {self.occluded_pose_max_age_s}")
        if not (self.control_rate >= 0 and math.isfinite(self.control_rate)):
            raise ValueError(f"control_rate must be >= 0 (0 = the skill's rate), got {self.control_rate}")
        profile = self.robot_profile  # raises (a ValueError) naming the shipped profiles
        if self.joints:
            valid = profile.driver_joints
            unknown = [j for j in self.joints if j not in valid]
            if unknown:
                raise ValueError(f"unknown joints {unknown}; the {profile.name} profile's joints: {list(valid)}")
            if len(set(self.joints)) != len(self.joints):
                raise ValueError(f"duplicate names in joints: {self.joints}")
        if self.occlusion_camera:
            camera = profile.camera(self.occlusion_camera)  # raises naming the profile's cameras
            if camera.calibration is None:
                raise ValueError(f"occlusion_camera {self.occlusion_camera!r} has no calibration in the {profile.name} profile: "
                                 "run `skillstack calibrate --write PROFILE` first")
        if self.state_source:
            profile.with_state_source(self.state_source)  # raises when the profile has no merged topic
        if "/" in self.controller.strip("/"):
            raise ValueError(f"controller must be a plain name like 'arm_controller', got {self.controller!r}")
        if self.status_rate <= 0:
            raise ValueError("status_rate must be > 0")
        if self.plan_skills not in ("all", "learned", "scripted"):
            raise ValueError(f"plan_skills must be all, learned or scripted, got {self.plan_skills!r}")
        if self.plan_max_steps < 0:
            raise ValueError("plan_max_steps must be >= 0")

    @property
    def robot_profile(self) -> RobotProfile:
        """The robot profile these parameters name (ProfileError, a ValueError, when unknown or bad)."""
        return load_profile(self.profile)


@dataclass
class SimRobotParams:
    """Parameters of the sim_robot node (MuJoCo as the robot)."""

    robot: str = DEFAULT_ROBOT  # a shipped robot (`skillstack robots`) or a robot description YAML path
    profile: str = ""  # "" = the topics below; a robot profile: publish and obey what that driver does
    # (its joint names, topics and rates, a separate gripper, its controllers and actions; robot from it)
    object_frame: str = ""  # frame_id of object poses ("" = "world", or the profile's base frame)
    action_servers: bool = True  # with a profile: serve its arm and gripper actions (false: another node does)
    objects: list[str] = field(default_factory=list)  # cube colours in the scene
    object_positions: list[float] = field(default_factory=list)  # x y z per object ([] = in front of the robot)
    initial_qpos: list[float] = field(default_factory=list)  # one per robot joint, arm then gripper ([] = home)
    publish_rate: float = 200.0  # Hz of /joint_states and object poses (>= 100)
    controller: str = "arm_controller"
    joints: list[str] = field(default_factory=list)  # joints of /<controller>/commands ([] = all of the robot's)
    joint_states_topic: str = "/joint_states"
    object_pose_prefix: str = "/objects"  # poses on <prefix>/<name>/pose
    latency_s: float = 0.0  # simulated delay of incoming commands
    noise_std: float = 0.0  # Gaussian noise on published joint positions (rad)
    drop_rate: float = 0.0  # probability of dropping each outgoing state and incoming command
    real_time_factor: float = 1.0
    seed: int = 0
    condition: str = ""  # a named perturbation condition (envs/conditions.yaml) or a YAML file of them (issue 24)
    camera: SimCameraParams = field(default_factory=SimCameraParams)  # rendered cameras (camera.rate > 0 turns them on)

    def __post_init__(self) -> None:
        if not (self.publish_rate >= 1.0 and math.isfinite(self.publish_rate)):
            raise ValueError(f"publish_rate must be >= 1 Hz, got {self.publish_rate}")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {self.drop_rate}")
        if self.latency_s < 0 or self.noise_std < 0:
            raise ValueError("latency_s and noise_std must be >= 0")
        if self.real_time_factor <= 0:
            raise ValueError("real_time_factor must be > 0")
        if self.condition:
            from ros_bridge.sim_conditions import resolve_condition

            resolve_condition(self.condition)  # raises naming the valid conditions
        if self.object_positions and len(self.object_positions) != 3 * len(self.objects):
            raise ValueError(f"object_positions needs 3 numbers per object ({3 * len(self.objects)}), got {len(self.object_positions)}")
        if self.profile:
            prof = self.robot_profile  # raises (a ValueError) naming the shipped profiles
            if self.robot not in (DEFAULT_ROBOT, prof.robot):
                raise ValueError(f"robot {self.robot!r} conflicts with profile {prof.name!r}, which drives the {prof.robot}")
            fixed = {"controller": "arm_controller", "joints": [], "joint_states_topic": "/joint_states"}
            overridden = [k for k, v in fixed.items() if getattr(self, k) != v]
            if overridden:
                raise ValueError(f"{overridden} are set by profile {prof.name!r}; leave them at their defaults")
        names = self.description.joint_names  # raises (a ValueError) naming the shipped robots
        if self.initial_qpos and len(self.initial_qpos) != len(names):
            raise ValueError(f"initial_qpos needs {len(names)} values (the {self.robot} joints {list(names)}), got {len(self.initial_qpos)}")
        unknown = [j for j in self.joints if j not in names]
        if unknown or len(set(self.joints)) != len(self.joints):
            raise ValueError(f"joints must be distinct joints of the {self.robot}, {list(names)} ([] = all), got {self.joints}")

    @property
    def robot_profile(self) -> RobotProfile | None:
        """The profile sim_robot speaks (None: its own topics)."""
        return load_profile(self.profile) if self.profile else None

    @property
    def description(self) -> RobotDescription:
        """The simulated robot's description (the profile's robot when a profile is given)."""
        return load_robot(self.robot_profile.robot if self.profile else self.robot)

    @property
    def command_joints(self) -> tuple[str, ...]:
        """The joints of /<controller>/commands, in order (`joints`, or all of the robot's)."""
        return tuple(self.joints) or self.description.joint_names


NODE_PARAMS: dict[str, type] = {"skill_executor": ExecutorParams, "sim_robot": SimRobotParams, "perception": PerceptionParams}


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'safety': {'x': 1}} -> {'safety.x': 1} (ROS 2's nested parameter names)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            raise TypeError
        if hint is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if hint is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if origin in (list, tuple):
            (item,) = set(typing.get_args(hint)) - {Ellipsis}
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise TypeError
            items = [_coerce(v, item, name) for v in value]
            return items if origin is list else tuple(items)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name!r} must be {getattr(hint, '__name__', hint)}, got {value!r}") from None
    return value


def params_from_mapping(cls: type, flat: Mapping[str, Any], where: str = "") -> Any:
    """Build `cls` (ExecutorParams/SimRobotParams) from flat ROS parameter names -> values.

    Unknown names raise ValueError listing the valid ones; values are type-coerced.
    """
    hints = typing.get_type_hints(cls)
    nested_cls = {name: typing.get_type_hints(cls)[name] for name in hints if dataclasses.is_dataclass(hints[name])}
    valid = [n for n in hints if n not in nested_cls] + [f"{n}.{f}" for n, c in nested_cls.items() for f in typing.get_type_hints(c)]
    kwargs: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {n: {} for n in nested_cls}
    for name, value in flat.items():
        head, _, tail = name.partition(".")
        if tail and head in nested_cls:
            sub_hints = typing.get_type_hints(nested_cls[head])
            if tail not in sub_hints:
                raise ValueError(f"{where}unknown parameter {name!r}; valid: {sorted(valid)}")
            nested[head][tail] = _coerce(value, sub_hints[tail], name)
        elif name in hints and name not in nested_cls:
            kwargs[name] = _coerce(value, hints[name], name)
        else:
            raise ValueError(f"{where}unknown parameter {name!r}; valid: {sorted(valid)}")
    for head, values in nested.items():
        kwargs[head] = nested_cls[head](**values)
    return cls(**kwargs)


def read_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 parameter YAML: node name -> flat parameter dict.

    Accepts `node:` and `/node:` keys and the `/**` wildcard (merged under every node).
    Raises FileNotFoundError / ValueError with the file name on bad input.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameter file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping):
        raise ValueError(f"{path}: expected a mapping of node names, got {type(doc).__name__}")
    out: dict[str, dict[str, Any]] = {}
    wildcard: dict[str, Any] = {}
    for node, body in doc.items():
        if not isinstance(body, Mapping) or not isinstance(body.get("ros__parameters", {}), Mapping):
            raise ValueError(f"{path}: node {node!r} needs a 'ros__parameters' mapping")
        params = flatten(body.get("ros__parameters") or {})
        name = str(node).strip("/")
        if name in ("**", "*"):
            wildcard.update(params)
        else:
            out[name] = params
    if wildcard:
        out = {n: {**wildcard, **p} for n, p in out.items()}
        out.setdefault("**", wildcard)
    return out


def node_params(path: str | Path | None, node: str) -> Any:
    """Validated parameters of `node` ("skill_executor" or "sim_robot") from a params file
    (None = defaults only). Unknown keys are errors that name the file."""
    cls = NODE_PARAMS[node]
    if path is None:
        return cls()
    nodes = read_params_file(path)
    flat = nodes.get(node, nodes.get("**", {}))
    return params_from_mapping(cls, flat, where=f"{path}: {node}: ")
