"""MJCF assets and the one function that loads them.

`scene_xml(objects)` builds a self-contained tabletop scene (Panda + table + the named
cubes + goal sites + cameras) as one XML string; `load_scene(objects)` compiles it.
A task asks only for the cubes it uses, because every free body costs physics time.
The XML string is what demonstrations store as `model_file`, so it never depends on
files beside it.
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

__all__ = [
    "CUBE_COLORS",
    "CUBE_HALF_SIZE",
    "ROBOT_MODEL_ID",
    "load_panda",
    "load_scene",
    "panda_xml",
    "scene_xml",
]

ROBOT_MODEL_ID = "skillstack/panda-v1"
CUBE_HALF_SIZE = 0.02
CUBE_MASS = 0.1
CUBE_COLORS = ("red", "green", "blue", "yellow")


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def panda_xml() -> str:
    """The robot alone as MJCF text (used by the ROS bridge's kinematics and the FK test)."""
    return _read("panda.xml")


def load_panda() -> mujoco.MjModel:
    """Compile the robot alone (no table, no objects)."""
    return mujoco.MjModel.from_xml_string(panda_xml())


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


@lru_cache(maxsize=32)
def scene_xml(objects: tuple[str, ...] = ("red",), goals: tuple[str, ...] = ("goal",)) -> str:
    """Build the tabletop scene with the given cube colours and goal site names.

    objects: cube colours from CUBE_COLORS; each becomes body/geom `cube_<colour>`
    with free joint `cube_<colour>_joint`.
    goals: site names; `goal_<colour>` sites take that cube's colour.
    """
    unknown = [o for o in objects if o not in CUBE_COLORS]
    if unknown:
        raise ValueError(f"unknown cube colour(s) {unknown}; valid: {list(CUBE_COLORS)}")
    if len(set(objects)) != len(objects):
        raise ValueError(f"duplicate cube colours in {objects}")
    scene = ET.fromstring(_read("tabletop.xml"))
    robot = ET.fromstring(panda_xml())
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


def load_scene(objects: tuple[str, ...] = ("red",), goals: tuple[str, ...] = ("goal",)) -> mujoco.MjModel:
    """Compile the tabletop scene (see `scene_xml`)."""
    return mujoco.MjModel.from_xml_string(scene_xml(tuple(objects), tuple(goals)))
