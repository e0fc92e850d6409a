"""The UR5e MJCF: kinematics against Universal Robots' published DH parameters, limits and masses against the datasheet."""

import mujoco
import numpy as np
import pytest

import sim_assets
from envs.robot import Robot
from robot_checks import servo_step_fractions, worst_fk_error

# Universal Robots' published standard DH parameters of the UR5e: (a, d, alpha) per joint.
DH = [
    (0.0, 0.1625, np.pi / 2),
    (-0.425, 0.0, 0.0),
    (-0.3922, 0.0, 0.0),
    (0.0, 0.1333, np.pi / 2),
    (0.0, 0.0997, -np.pi / 2),
    (0.0, 0.0996, 0.0),
]
TCP_D = 0.154  # TCP beyond the tool flange, along the flange z axis
# The controller's DH base frame is base_link (the world here) turned by pi about z (ur_description).
BASE = np.diag([-1.0, -1.0, 1.0, 1.0])
# Datasheet: +-360 deg on every joint (the elbow +-180 deg: ur_description's limit), 180 deg/s everywhere.
Q_LIMIT = np.array([2 * np.pi, 2 * np.pi, np.pi, 2 * np.pi, 2 * np.pi, 2 * np.pi])
QD_LIMIT = np.full(6, np.pi)
TAU_LIMIT = np.array([150.0, 150.0, 150.0, 28.0, 28.0, 28.0])
# Universal Robots' DH page: link masses (kg) of links 1..6.
LINK_MASSES = [3.761, 8.058, 2.846, 1.37, 1.3, 0.365]


def _dh(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    ct, st, ca, sa = np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha)
    return np.array([[ct, -st * ca, st * sa, a * ct], [st, ct * ca, -ct * sa, a * st], [0, sa, ca, d], [0, 0, 0, 1]])


def dh_tcp(q: np.ndarray) -> np.ndarray:
    """World pose of the TCP from the DH chain: base turn, six joints, then TCP_D along the flange z."""
    pose = BASE.copy()
    for (a, d, alpha), theta in zip(DH, q):
        pose = pose @ _dh(a, d, alpha, theta)
    return pose @ _dh(0.0, TCP_D, 0.0, 0.0)


def test_tcp_matches_dh_forward_kinematics_at_100_random_configurations():
    model = sim_assets.load_robot_model("ur5e")
    worst_pos, worst_rot = worst_fk_error(model, Robot.from_model(model, "ur5e"), dh_tcp, n=100)
    assert worst_pos <= 1e-3
    assert worst_rot <= 1e-6


def test_flange_is_the_dh_end_frame():
    model = sim_assets.load_robot_model("ur5e")
    data = mujoco.MjData(model)
    robot = Robot.from_model(model, "ur5e")
    q = np.array([0.3, -1.2, 1.4, -0.5, 0.8, 2.0])
    data.qpos[robot.arm_qpos] = q
    mujoco.mj_kinematics(model, data)
    ref = BASE.copy()
    for (a, d, alpha), theta in zip(DH, q):
        ref = ref @ _dh(a, d, alpha, theta)
    np.testing.assert_allclose(data.site_xpos[model.site("ur5e_flange").id], ref[:3, 3], atol=1e-9)


def test_model_limits_are_the_datasheet_limits():
    model = sim_assets.load_robot_model("ur5e")
    robot = Robot.from_model(model, "ur5e")
    assert robot.arm_joint_names[0] == "shoulder_pan_joint" and robot.n_arm == 6
    np.testing.assert_allclose(robot.q_max, Q_LIMIT, atol=1e-4)
    np.testing.assert_allclose(robot.q_min, -Q_LIMIT, atol=1e-4)
    np.testing.assert_allclose(robot.qd_max, QD_LIMIT, atol=1e-4)
    np.testing.assert_allclose(model.actuator_forcerange[robot.arm_actuators, 1], TAU_LIMIT)
    assert robot.max_gripper_width == pytest.approx(0.085)  # 2F-85 stroke


def test_link_masses_are_the_published_masses():
    model = sim_assets.load_robot_model("ur5e")
    links = ["shoulder", "upper_arm", "forearm", "wrist_1", "wrist_2", "wrist_3"]
    np.testing.assert_allclose([model.body(f"ur5e_{n}_link").mass[0] for n in links], LINK_MASSES)
    arm = sum(LINK_MASSES) + model.body("ur5e_base").mass[0]
    assert 20.0 < arm < 21.0  # datasheet: 20.6 kg
    gripper = sum(model.body(b).mass[0] for b in ("ur5e_gripper", "ur5e_left_finger", "ur5e_right_finger"))
    assert gripper == pytest.approx(0.925)  # a 2F-85 weighs 0.925 kg
    for b in range(1, model.nbody):
        assert np.all(model.body_inertia[b] > 0)


def test_home_pose_points_the_gripper_down_above_the_table():
    model = sim_assets.load_scene((), ("goal",), "ur5e")
    data = mujoco.MjData(model)
    robot = Robot.from_model(model)
    robot.set_home(model, data)
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(robot.tcp_pos(data), [0.552, 0.0, 0.188], atol=2e-3)
    np.testing.assert_allclose(robot.tcp_mat(data), np.diag([1.0, -1.0, -1.0]), atol=1e-3)
    assert robot.gripper_width(data) == pytest.approx(0.085)


def test_position_servos_track_a_joint_step_within_two_control_periods():
    model = sim_assets.load_scene((), ("goal",), "ur5e")
    robot = Robot.from_model(model)
    for j, reached in enumerate(servo_step_fractions(model, robot, step=0.05, nstep=40)):  # two 25 Hz periods at 500 Hz
        assert 0.9 < reached < 1.1, f"joint {robot.arm_joint_names[j]} reached {reached:.2f} of a 0.05 rad step"


def test_gripper_closes_on_a_cube_and_reports_its_width():
    import envs

    env = envs.make("skillstack/UR5ePickPlace-v0")
    u = env.unwrapped
    env.reset(seed=0)
    cube = u.object_pos("red")
    for _ in range(40):  # down onto the cube, open
        env.step(np.append(np.clip((cube - u.tcp_pos()) / u.max_delta * 2, -1, 1), 1.0))
    for _ in range(8):
        env.step(np.array([0.0, 0.0, 0.0, -1.0]))
    assert u.gripper_width() == pytest.approx(2 * u.cube_half_size, abs=0.004)
