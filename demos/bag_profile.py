"""The part of a ROS 2 robot profile a bag import needs, read as data (no ros_bridge import).

Robot profiles (`ros_bridge/config/profiles/NAME.yaml`, documented in `ros_bridge/profile.py`
and docs/ros2.md) say how a driver names and publishes a robot's joints. The ROS bridge is
layer 7 and demos layer 5, so demos may not import it; the YAML files are data, and this
module reads the keys a bag import uses: the robot description, the driver -> description
joint names, the joint-state topics with the joints each carries and its rate, the base frame
and the static frames. The shipped profiles are found as package data beside this package
(the same `ros_bridge/config/profiles/` folder in a checkout and in an installed wheel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from common.transforms import xyzw_to_wxyz
from demos.errors import BagImportError
from sim_assets import RobotDescription, RobotDescriptionError, load_robot

__all__ = ["BagProfile", "JointSource", "bag_profile_names", "load_bag_profile"]

PROFILES_DIR = Path(__file__).resolve().parent.parent / "ros_bridge" / "config" / "profiles"


@dataclass(frozen=True)
class JointSource:
    """One joint-state topic of a driver: the driver joints it carries and its nominal rate."""

    topic: str
    rate_hz: float
    joints: tuple[str, ...]  # driver names


@dataclass(frozen=True)
class BagProfile:
    """What a bag import reads from a robot profile (see the module docstring)."""

    name: str
    source: str  # the YAML file
    description: RobotDescription
    base_frame: str
    joint_map: Mapping[str, str]  # driver name -> description name
    sources: tuple[JointSource, ...]  # the first carries the arm: its stamps are the demo's clock
    merged: JointSource | None  # the driver's merged topic, when it has one
    frames: Mapping[str, tuple[np.ndarray, np.ndarray]]  # frame -> (translation, quaternion wxyz) in the base frame

    @property
    def driver_joints(self) -> tuple[str, ...]:
        """Every driver joint name the profile maps."""
        return tuple(self.joint_map)


def bag_profile_names() -> tuple[str, ...]:
    """Names of the shipped profiles."""
    return tuple(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))


def load_bag_profile(profile: str | Path) -> BagProfile:
    """A shipped profile by name (`fr3`), or a profile YAML by path; BagImportError names the file and key."""
    text = str(profile)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser().resolve()
        if not path.is_file():
            raise BagImportError(f"robot profile file not found: {path}")
    else:
        path = PROFILES_DIR / f"{text}.yaml"
        if not path.is_file():
            raise BagImportError(f"unknown robot profile {text!r}; shipped profiles: {', '.join(bag_profile_names())}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BagImportError(f"{path}: cannot read the robot profile: {exc}") from None
    return _parse(doc, str(path))


def _parse(doc: Any, path: str) -> BagProfile:
    def fail(key: str, message: str) -> BagImportError:
        return BagImportError(f"{path}: {key}: {message}")

    if not isinstance(doc, Mapping):
        raise BagImportError(f"{path}: a robot profile must be a mapping")
    for key in ("name", "robot", "base_frame", "joints", "joint_states"):
        if key not in doc:
            raise fail(key, "missing")
    try:
        desc = load_robot(doc["robot"])
    except RobotDescriptionError as exc:
        raise fail("robot", str(exc)) from None
    joints = doc["joints"]
    if not isinstance(joints, Mapping) or sorted(map(str, joints.values())) != sorted(desc.joint_names):
        raise fail("joints", f"must map driver names onto each joint of the {desc.name} description once: {list(desc.joint_names)}")
    joint_map = {str(k): str(v) for k, v in joints.items()}
    states = doc["joint_states"]
    if not isinstance(states, Mapping) or not isinstance(states.get("sources"), list) or not states["sources"]:
        raise fail("joint_states.sources", "must list at least one joint-state topic")

    def source(d: Any, key: str) -> JointSource:
        if not isinstance(d, Mapping) or not isinstance(d.get("topic"), str) or not str(d["topic"]).startswith("/"):
            raise fail(key, f"needs an absolute 'topic', got {d!r}")
        names = tuple(str(j) for j in d.get("joints", joint_map))
        unknown = [j for j in names if j not in joint_map]
        if unknown:
            raise fail(f"{key}.joints", f"unknown driver joints {unknown}; the profile's joints: {list(joint_map)}")
        rate = d.get("rate_hz", 0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise fail(f"{key}.rate_hz", f"must be a positive number, got {rate!r}")
        return JointSource(str(d["topic"]), float(rate), names)

    sources = tuple(source(s, f"joint_states.sources[{i}]") for i, s in enumerate(states["sources"]))
    merged = source(states["merged"], "joint_states.merged") if states.get("merged") else None
    frames = {}
    for frame, tf in (doc.get("frames") or {}).items():
        try:
            t = np.asarray(tf["translation"], dtype=np.float64).reshape(3)
            xyzw = np.asarray(tf["rotation_xyzw"], dtype=np.float64).reshape(4)
        except (KeyError, TypeError, ValueError):
            raise fail(f"frames.{frame}", "needs translation [3] and rotation_xyzw [4]") from None
        try:
            q = xyzw_to_wxyz(xyzw)
        except ValueError as exc:  # NaN, inf or zero
            raise fail(f"frames.{frame}.rotation_xyzw", str(exc)) from None
        frames[str(frame)] = (t, q)
    return BagProfile(
        name=str(doc["name"]),
        source=path,
        description=desc,
        base_frame=str(doc["base_frame"]),
        joint_map=joint_map,
        sources=sources,
        merged=merged,
        frames=frames,
    )
