"""MJCF assets, robot descriptions, and the functions that load them.

Each robot is data: a YAML description and an MJCF under `sim_assets/robots/`
(`robot_description.load_robot`). `scene_xml(objects, goals, robot)` builds a
self-contained tabletop scene (the robot + table + the named cubes + goal sites +
cameras) as one XML string; `load_scene(...)` compiles it. A task asks only for the
cubes it uses, because every free body costs physics time. The XML string is what
demonstrations store as `model_file`, so it never depends on files beside it.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from functools import lru_cache
from importlib import resources

# Headless rendering by default: on a machine without a display, EGL (Mesa) renders offscreen.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
    os.environ["MUJOCO_GL"] = "egl"

import mujoco  # noqa: E402  (after MUJOCO_GL is set)

from sim_assets.robot_description import (  # noqa: E402
    DEFAULT_ROBOT,
    RobotDescription,
    RobotDescriptionError,
    load_robot,
    robot_for_joints,
    robot_for_model,
    robot_names,
)

__all__ = [
    "CUBE_COLORS",
    "CUBE_HALF_SIZE",
    "DEFAULT_ROBOT",
    "ROBOT_MODEL_ID",
    "RobotDescription",
    "RobotDescriptionError",
    "load_panda",
    "load_robot",
    "load_robot_model",
    "load_scene",
    "panda_xml",
    "robot_for_joints",
    "robot_for_model",
    "robot_names",
    "robot_xml",
    "scene_xml",
]

ROBOT_MODEL_ID = load_robot(DEFAULT_ROBOT).model_id  # the default robot's; a scene's own is its description's
CUBE_HALF_SIZE = 0.02
CUBE_MASS = 0.1
CUBE_COLORS = ("red", "green", "blue", "yellow")


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def robot_xml(robot: str | RobotDescription = DEFAULT_ROBOT) -> str:
    """A robot alone as MJCF text (the ROS bridge's kinematics and the FK tests use it)."""
    return load_robot(robot).mjcf_xml()


def load_robot_model(robot: str | RobotDescription = DEFAULT_ROBOT) -> mujoco.MjModel:
    """Compile a robot alone (no table, no objects)."""
    return mujoco.MjModel.from_xml_string(robot_xml(robot))


def panda_xml() -> str:
    """The Panda alone as MJCF text (`robot_xml("panda")`)."""
    return robot_xml("panda")


def load_panda() -> mujoco.MjModel:
    """Compile the Panda alone (`load_robot_model("panda")`)."""
    return load_robot_model("panda")


def _cube_body(color: str, index: int) -> ET.Element:
    # Parked in a row behind the robot until the task places it on reset.
    body = ET.Element("body", name=f"cube_{color}", pos=f"{-0.3 - 0.1 * index} 0.4 {CUBE_HALF_SIZE}")
    ET.SubElement(body, "freejoint", name=f"cube_{color}_joint")
    ET.SubElement(
        body,
        "geom",
        name=f"cube_{color}",
        type="box",
        size=" ".join([str(CUBE_HALF_SIZE)] * 3),
        mass=str(CUBE_MASS),
        material=f"cube_{color}",
        contype="2",
        conaffinity="7",
        condim="4",
        friction="1.0 0.01 0.001",
        solref="0.01 1",
    )
    return body


def _goal_site(name: str, rgba: str) -> ET.Element:
    return ET.Element("site", name=name, type="sphere", size="0.018", rgba=rgba, pos="0.5 0 0.1", group="1")


_GOAL_RGBA = {
    "red": "0.95 0.2 0.2 0.35",
    "green": "0.2 0.9 0.3 0.35",
    "blue": "0.2 0.4 0.95 0.35",
    "yellow": "0.95 0.85 0.2 0.35",
}


def scene_xml(
    objects: tuple[str, ...] = ("red",),
    goals: tuple[str, ...] = ("goal",),
    robot: str | RobotDescription = DEFAULT_ROBOT,
) -> str:
    """Build the tabletop scene with the given cube colours, goal site names and robot.

    objects: cube colours from CUBE_COLORS; each becomes body/geom `cube_<colour>`
    with free joint `cube_<colour>_joint`.
    goals: site names; `goal_<colour>` sites take that cube's colour.
    robot: a shipped robot's name (`robot_names()`), a description YAML path, or a description.
    """
    return _scene_xml(tuple(objects), tuple(goals), load_robot(robot))


@lru_cache(maxsize=64)
def _scene_xml(objects: tuple[str, ...], goals: tuple[str, ...], description: RobotDescription) -> str:
    unknown = [o for o in objects if o not in CUBE_COLORS]
    if unknown:
        raise ValueError(f"unknown cube colour(s) {unknown}; valid: {list(CUBE_COLORS)}")
    if len(set(objects)) != len(objects):
        raise ValueError(f"duplicate cube colours in {objects}")
    scene = ET.fromstring(_read("tabletop.xml"))
    scene.set("model", f"{description.name}_tabletop")
    # The robot-table contact sensor watches the robot's subtree, named by its description.
    scene.find("sensor/contact[@name='robot_table_contact']").set("subtree2", description.base_body)
    robot = ET.fromstring(description.mjcf_xml())
    world = scene.find("worldbody")
    # Merge robot sections: defaults, assets, bodies, actuators, custom data.
    for section in ("default", "asset", "actuator", "custom"):
        src = robot.find(section)
        if src is None:
            continue
        dst = scene.find(section)
        if dst is None:
            dst = ET.SubElement(scene, section)
        for child in list(src):
            dst.append(child)
    for body in robot.find("worldbody"):
        world.append(body)
    for i, color in enumerate(objects):
        world.append(_cube_body(color, i))
    for name in goals:
        color = name.split("_", 1)[1] if name.startswith("goal_") else ""
        world.append(_goal_site(name, _GOAL_RGBA.get(color, "0.95 0.75 0.1 0.4")))
    # Keep the default-section order valid: MJCF needs <default> before use, which
    # ElementTree order preserves only if defaults precede worldbody.
    defaults = scene.find("default")
    if defaults is not None:
        scene.remove(defaults)
        scene.insert(1, defaults)
    ET.indent(scene)
    return ET.tostring(scene, encoding="unicode")


def load_scene(
    objects: tuple[str, ...] = ("red",),
    goals: tuple[str, ...] = ("goal",),
    robot: str | RobotDescription = DEFAULT_ROBOT,
) -> mujoco.MjModel:
    """Compile the tabletop scene (see `scene_xml`)."""
    return mujoco.MjModel.from_xml_string(scene_xml(tuple(objects), tuple(goals), robot))
