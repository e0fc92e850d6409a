"""The Panda MJCF: kinematics against Franka's DH parameters, limits against the datasheet."""

import numpy as np
import pytest

import sim_assets
from envs.robot import PandaRobot, Q_MAX, Q_MIN, QD_MAX, TAU_MAX
from robot_checks import servo_step_fractions, worst_fk_error

# Franka's published modified (Craig) DH parameters: (a, d, alpha) per joint.
DH = [
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
]
FLANGE_D = 0.107
TCP_D = 0.1034


def _craig(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array(
        [[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]]
    )


def dh_tcp(q: np.ndarray) -> np.ndarray:
    """TCP pose from DH: flange, hand rotated -45 deg about z, TCP 0.1034 m along hand z."""
    pose = np.eye(4)
    for (a, d, alpha), theta in zip(DH, q):
        pose = pose @ _craig(a, d, alpha, theta)
    return pose @ _craig(0, FLANGE_D, 0, 0) @ _craig(0, 0, 0, -np.pi / 4) @ _craig(0, TCP_D, 0, 0)


def test_tcp_matches_dh_forward_kinematics_at_100_random_configurations():
    model = sim_assets.load_panda()
    worst_pos, worst_rot = worst_fk_error(model, PandaRobot.from_model(model), dh_tcp, n=100)
    assert worst_pos <= 1e-3
    assert worst_rot <= 1e-6


def test_model_limits_are_frankas_published_limits():
    model = sim_assets.load_panda()
    robot = PandaRobot.from_model(model)
    np.testing.assert_allclose(robot.q_min, Q_MIN)
    np.testing.assert_allclose(robot.q_max, Q_MAX)
    np.testing.assert_allclose(robot.qd_max, QD_MAX)
    forces = model.actuator_forcerange[robot.arm_actuators]
    np.testing.assert_allclose(forces[:, 1], TAU_MAX)
    for name in robot.finger_joint_names:
        np.testing.assert_allclose(model.joint(name).range, [0.0, 0.04])


def test_joint_and_camera_names():
    model = sim_assets.load_scene(("red", "blue"), ("goal",))
    names = [model.joint(i).name for i in range(model.njnt)]
    for n in [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1", "panda_finger_joint2"]:
        assert n in names
    cams = {model.camera(i).name for i in range(model.ncam)}
    assert {"front", "wrist"} <= cams


def test_link_masses_are_plausible():
    model = sim_assets.load_panda()
    total = sum(model.body(f"panda_link{i}").mass[0] for i in range(8)) + model.body("panda_hand").mass[0]
    assert 15.0 < total < 22.0  # Franka: about 18 kg arm incl. hand
    for b in range(1, model.nbody):
        assert np.all(model.body_inertia[b] > 0)


def test_position_servos_track_a_joint_step_within_two_control_periods():
    model = sim_assets.load_scene((), ("goal",))
    robot = PandaRobot.from_model(model)
    for j, reached in enumerate(servo_step_fractions(model, robot, step=0.05, nstep=40)):  # two 25 Hz periods at 500 Hz
        assert 0.9 < reached < 1.1, f"joint {robot.arm_joint_names[j]} reached {reached:.2f} of a 0.05 rad step"


def test_scene_rejects_unknown_cube_colour():
    with pytest.raises(ValueError, match="unknown cube colour"):
        sim_assets.scene_xml(("purple",))
