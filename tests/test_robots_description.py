"""Robot descriptions as data: the typed loader, its errors, and no robot names outside the descriptions."""

import re
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

import sim_assets
from sim_assets import RobotDescriptionError, load_robot, robot_names

ROOT = Path(__file__).resolve().parents[1]
ROBOTS_DIR = ROOT / "sim_assets" / "robots"
PACKAGES = ("common", "sim_assets", "envs", "policies", "skill_library", "demos", "segmentation", "planning",
            "ros_bridge", "bench", "skillstack")


def test_every_shipped_robot_loads_and_matches_its_mjcf():
    assert robot_names()[0] == "panda" and {"panda", "ur5e"} <= set(robot_names())
    for name in robot_names():
        desc = load_robot(name)
        assert desc.name == name and desc.n_arm_joints == len(desc.arm.position_lower)
        model = sim_assets.load_robot_model(name)
        desc.check_model(model)  # joints, ranges, servos and force limits agree with the YAML
        np.testing.assert_allclose(model.numeric(f"{name}_home_qpos").data, desc.home_qpos)
        np.testing.assert_allclose(model.numeric(f"{name}_velocity_limits").data, desc.velocity_limits)
        for cam in desc.cameras:
            assert model.body(model.camera(cam.name).bodyid[0]).name == cam.body


def test_description_keeps_what_issue_23_and_24_need():
    # Driver profiles map joint names and need the base frame and limits; conditions perturb the gripper and servos.
    d = load_robot("ur5e").to_dict()
    assert d["arm"]["joints"][0] == "shoulder_pan_joint" and d["base_frame"] == "base_link"
    assert set(d["gripper"]) >= {"kind", "joints", "width_range", "width_to_joint", "velocity", "force"}
    assert d["cameras"][0]["name"] == "wrist"


@pytest.mark.parametrize("name", ["panda", "ur5e"])
def test_gripper_width_map_round_trips(name):
    g = load_robot(name).gripper
    for width in np.linspace(*g.width_range, 5):
        q = g.joint_targets(width)
        assert g.width_weights() @ (q - np.asarray(g.width_to_joint_offset)) == pytest.approx(width)


def _write(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load((ROBOTS_DIR / "panda.yaml").read_text())
    edit(doc)
    path = tmp_path / "robot.yaml"
    (tmp_path / "panda.xml").write_text((ROBOTS_DIR / "panda.xml").read_text())
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.pop("tcp_site"), r"missing key\(s\) \['tcp_site'\]"),
        (lambda d: d.update(colour="red"), r"unknown key\(s\) \['colour'\]"),
        (lambda d: d["arm"]["velocity"].pop(), r"arm.velocity: needs 7 values"),
        (lambda d: d["arm"]["torque"].__setitem__(0, -1), r"arm.torque: values must be > 0"),
        (lambda d: d["arm"]["position_lower"].__setitem__(3, 0.0), r"every lower limit must be below"),
        (lambda d: d["home"]["arm"].__setitem__(0, 9.0), r"home.arm: home pose is outside the position limits of \['panda_joint1'\]"),
        (lambda d: d["gripper"].update(kind="suction"), r"unknown gripper kind 'suction'"),
        (lambda d: d["gripper"]["width_to_joint"].update(scale=[0.5, 0.0]), r"zero scale"),
        (lambda d: d["home"].update(gripper_width=0.2), r"home.gripper_width: must lie in the gripper's width range"),
        (lambda d: d.update(mjcf="missing.xml"), r"mjcf: file not found"),
        (lambda d: d["cameras"][0].update(fovy="wide"), r"cameras\[0\].fovy: must be a finite number"),
        (lambda d: d["arm"].update(joints=["a", "a"]), r"arm.joints: names must be unique"),
    ],
)
def test_bad_descriptions_are_refused_naming_file_and_key(tmp_path, edit, match):
    path = _write(tmp_path, edit)
    with pytest.raises(RobotDescriptionError, match=match) as info:
        load_robot(str(path))
    assert str(path) in str(info.value)


def test_unknown_robot_lists_the_shipped_ones():
    with pytest.raises(RobotDescriptionError, match="unknown robot 'kuka'.*panda, ur5e"):
        load_robot("kuka")
    with pytest.raises(RobotDescriptionError, match="not found"):
        load_robot("/no/such/robot.yaml")


def test_model_that_disagrees_with_its_description_is_refused(tmp_path):
    desc = load_robot("panda")
    bad = sim_assets.panda_xml().replace('forcerange="-87 87"', 'forcerange="-50 50"', 1)
    with pytest.raises(RobotDescriptionError, match="force range"):
        desc.check_model(mujoco.MjModel.from_xml_string(bad))
    bad = sim_assets.panda_xml().replace('range="-2.8973 2.8973"', 'range="-2.5 2.5"', 1)
    with pytest.raises(RobotDescriptionError, match="range"):
        desc.check_model(mujoco.MjModel.from_xml_string(bad))


def test_a_description_file_outside_the_package_runs_in_an_env(tmp_path):
    import envs

    path = _write(tmp_path, lambda d: d.update(name="my_panda", title="my Panda"))
    env = envs.make("skillstack/PandaReach-v0", robot=str(path))
    assert env.unwrapped.robot.name == "my_panda"
    env.reset(seed=0)
    env.step(np.zeros(4))


def _robot_specific_names() -> set[str]:
    """Every joint, body, geom, site, camera and actuator name of every robot, except names all robots share
    (the interface names a description points at, such as the TCP site and the wrist camera)."""
    per_robot = []
    for name in robot_names():
        m = sim_assets.load_robot_model(name)
        names = set()
        for kind, count in (("joint", m.njnt), ("body", m.nbody), ("geom", m.ngeom), ("site", m.nsite),
                            ("camera", m.ncam), ("actuator", m.nu)):
            names |= {getattr(m, kind)(i).name for i in range(count)}
        per_robot.append(names - {""})
    shared = set.intersection(*per_robot)
    return set.union(*per_robot) - shared - {"world"}


def test_no_module_outside_the_descriptions_names_a_robots_joints_or_links():
    names = _robot_specific_names()
    assert {"panda_joint1", "panda_finger_joint2", "panda_hand", "shoulder_pan_joint", "wrist_3_joint"} <= names
    exact = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    # Also name families such as `panda_jointN` or `ur5e_..._link` that no single name spells out.
    families = r"(?:" + "|".join(robot_names()) + r")_\w*(?:joint|finger|hand|link)\w*"
    pattern = re.compile(rf"\b(?:{exact})\b|\b{families}")
    hits = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                match = pattern.search(line)
                if match:
                    hits.append(f"{path.relative_to(ROOT)}:{lineno}: {match.group(0)}")
    assert not hits, "robot joint/link names outside sim_assets/robots/:\n" + "\n".join(hits)


def test_no_module_reads_the_default_robots_constants():
    """`envs.robot`'s ARM_JOINT_NAMES, Q_MIN, ... and `envs.observation.ROBOT_FIELDS` are the default robot's (kept for
    old callers): a module that reads them assumes the Panda. Modules take the robot from a description instead."""
    constants = ("ARM_JOINT_NAMES", "FINGER_JOINT_NAMES", "TCP_SITE", "MAX_GRIPPER_WIDTH", "Q_MIN", "Q_MAX", "QD_MAX",
                 "TAU_MAX", "ROBOT_FIELDS")
    pattern = re.compile(r"\b(?:" + "|".join(constants) + r")\b")
    defined_in = {ROOT / "envs" / "robot.py", ROOT / "envs" / "observation.py"}
    hits = [f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}"
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")) if path not in defined_in
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, "modules reading the default robot's constants:\n" + "\n".join(hits)
