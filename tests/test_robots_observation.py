"""The robot-independent observation layout ("tcp"): no joint angles, the same vector on every robot."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.observation import TCP_FIELDS

ROBOTS = list(envs.ROBOT_ENV_IDS)
TASKS = [i for i in envs.ENV_IDS + envs.LONG_HORIZON_IDS if "Dense" not in i]


@pytest.mark.parametrize("env_id", TASKS)
def test_tcp_layout_is_the_same_on_every_robot(env_id):
    layouts = {r: envs.make(env_id, robot=r, obs_layout="tcp").unwrapped.observation_layout for r in ROBOTS}
    first = layouts[ROBOTS[0]]
    assert "joint_pos" not in first and list(first)[: len(TCP_FIELDS)] == [n for n, _ in TCP_FIELDS]
    assert all(layout == first for layout in layouts.values())


@pytest.mark.parametrize("robot", ROBOTS)
def test_tcp_layout_envs_pass_the_gymnasium_checker(robot):
    env = envs.make("skillstack/PandaStack-v0", robot=robot, obs_layout="tcp")
    check_env(env.unwrapped, skip_render_check=True)


def test_same_scene_reads_the_same_on_both_arms():
    # Same seed, same task: the cubes and goals are identical and both arms start with the TCP at home,
    # pointing down, so everything but the gripper opening agrees.
    obs = {r: envs.make("skillstack/PandaStackThree-v0", robot=r, obs_layout="tcp").reset(seed=4)[0] for r in ROBOTS}
    layout = envs.make("skillstack/PandaStackThree-v0", obs_layout="tcp").unwrapped.observation_layout
    a, b = (obs[r]["observation"] for r in ROBOTS[:2])
    for name, sl in layout.items():
        if name in ("gripper_width",):
            continue
        tol = 1e-12 if name.split("_", 1)[0] in ("red", "green", "blue") and not name.endswith("rel_pos") else 3e-3
        np.testing.assert_allclose(a[sl], b[sl], atol=tol, err_msg=name)
    np.testing.assert_array_equal(obs[ROBOTS[0]]["desired_goal"], obs[ROBOTS[1]]["desired_goal"])


@pytest.mark.parametrize("robot", ROBOTS)
def test_tcp_rotation_and_angular_velocity_are_the_tcp_frames(robot):
    env = envs.make("skillstack/PandaReach-v0", robot=robot, obs_layout="tcp", yaw=True)
    u = env.unwrapped
    layout = u.observation_layout
    obs, _ = env.reset(seed=0)
    rot_before = u.robot.tcp_mat(u.data).copy()
    obs, *_ = env.step(np.array([0.0, 0.0, 0.0, 1.0, 1.0]))  # turn about world z
    mat = u.robot.tcp_mat(u.data)
    np.testing.assert_allclose(obs["observation"][layout["tcp_rot"]], mat[:, :2].T.ravel())
    w = obs["observation"][layout["tcp_angvel"]]
    assert w[2] > 0.3 and abs(w[0]) < 0.1 * w[2] and abs(w[1]) < 0.1 * w[2]  # yawing left, about z only
    # The rotation over the step agrees in sign with the measured yaw rate.
    assert np.arctan2(mat[1, 0], mat[0, 0]) > np.arctan2(rot_before[1, 0], rot_before[0, 0])


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="obs_layout must be one of"):
        envs.make("skillstack/PandaReach-v0", obs_layout="joints")


def test_manifests_record_the_layout_and_the_robot():
    from skill_library.authoring import embodiment_from_env, task_from_env

    env = envs.make("skillstack/PandaPush-v0", robot="ur5e", obs_layout="tcp")
    task = task_from_env(env)
    assert task.env_id == "skillstack/UR5ePush-v0" and task.family == "push"
    assert task.env_kwargs["obs_layout"] == "tcp" and task.env_kwargs["robot"] == "ur5e"
    embodiment = embodiment_from_env(env)
    assert embodiment.robot == "skillstack/ur5e-v1" and embodiment.arm_joint_names[0] == "shoulder_pan_joint"
    assert embodiment_from_env(envs.make("skillstack/PandaPush-v0")).robot == "skillstack/panda-v1"
