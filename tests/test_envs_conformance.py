"""Every registered (robot, task) pair passes the same conformance checks (dm_control style)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs

ROBOTS = list(envs.ROBOT_ENV_IDS)  # every shipped robot
ALL_IDS = [i for robot in ROBOTS for i in envs.ROBOT_ENV_IDS[robot] + envs.ROBOT_LONG_HORIZON_IDS[robot]]
SPARSE_IDS = [i for i in ALL_IDS if "Dense" not in i]


def rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return out


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_env_checker(env_id):
    env = envs.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_goal_env_conventions(env_id):
    env = envs.make(env_id)
    obs, info = env.reset(seed=1)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert info["is_success"] in (0.0, 1.0)
    assert set(info["reward_terms"]) == {"task", "interaction", "safety"}
    assert info["safety_cost"] >= 0.0
    u = env.unwrapped
    weighted = sum(u.reward_weights[k] * v for k, v in info["reward_terms"].items())
    assert reward == pytest.approx(weighted)
    assert not terminated
    # compute_reward reproduces the step reward, single and batched (HER relabelling path)
    assert u.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == pytest.approx(reward)
    batch_ag = np.stack([obs["achieved_goal"]] * 3)
    batch_dg = np.stack([obs["desired_goal"]] * 3)
    batched = u.compute_reward(batch_ag, batch_dg, np.array([info] * 3))
    np.testing.assert_allclose(batched, [reward] * 3)
    assert u.compute_terminated(batch_ag, batch_dg, [info] * 3).shape == (3,)
    assert u.compute_truncated(batch_ag, batch_dg, [info] * 3).shape == (3,)
    env.close()


@pytest.mark.parametrize("env_id", SPARSE_IDS)
def test_time_limit_truncates(env_id):
    env = envs.make(env_id)
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape))
        steps += 1
        if terminated or truncated:
            break
    assert truncated and steps == env.spec.max_episode_steps


@pytest.mark.parametrize("env_id", SPARSE_IDS)
def test_same_seed_same_actions_bit_identical(env_id):
    actions = np.random.default_rng(0).uniform(-1, 1, (40, 4))
    a = rollout(envs.make(env_id), 7, actions)
    b = rollout(envs.make(env_id), 7, actions)
    for oa, ob in zip(a, b):
        for k in oa:
            assert np.array_equal(oa[k], ob[k]), k
    c = rollout(envs.make(env_id), 8, actions)
    assert not np.array_equal(a[0]["desired_goal"], c[0]["desired_goal"])


@pytest.mark.parametrize("env_id", SPARSE_IDS)
def test_state_round_trip_reproduces_the_trajectory(env_id):
    env = envs.make(env_id)
    u = env.unwrapped
    env.reset(seed=3)
    rng = np.random.default_rng(1)
    for a in rng.uniform(-1, 1, (10, 4)):
        env.step(a)
    state = u.get_state()
    actions = rng.uniform(-1, 1, (15, 4))
    first = [env.step(a)[0]["observation"] for a in actions]
    env.reset(seed=99)
    u.set_state(state)
    second = [env.step(a)[0]["observation"] for a in actions]
    np.testing.assert_array_equal(np.array(first), np.array(second))


@pytest.mark.parametrize("env_id", SPARSE_IDS)
def test_bad_actions_raise_and_leave_state_untouched(env_id):
    env = envs.make(env_id)
    u = env.unwrapped
    env.reset(seed=0)
    before = u.get_state()
    for bad, match in [
        (np.zeros(7), "shape"),
        (np.array([0.0, np.nan, 0.0, 0.0]), "NaN"),
        (np.array([np.inf, 0.0, 0.0, 0.0]), "NaN or inf"),
    ]:
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    np.testing.assert_array_equal(before, u.get_state())


def test_unknown_env_id_lists_valid_ids():
    with pytest.raises(ValueError, match="PandaPickPlace-v0"):
        envs.make("skillstack/PandaJuggle-v0")


def test_gymnasium_make_works_with_registered_ids():
    env = gym.make("skillstack/PandaPush-v0")
    assert env.spec.max_episode_steps == 50


def test_unknown_camera_lists_valid_cameras():
    env = envs.make("skillstack/PandaReach-v0")
    with pytest.raises(ValueError, match="front"):
        env.unwrapped.render_camera("ceiling")
    with pytest.raises(ValueError, match="valid cameras"):
        envs.make("skillstack/PandaReach-v0", camera="ceiling")


@pytest.mark.parametrize("robot", ROBOTS)
@pytest.mark.parametrize("camera", ["front", "wrist", "side", "top"])
def test_render_any_named_camera(camera, robot):
    env = envs.make("skillstack/PandaPickPlace-v0", render_mode="rgb_array", camera=camera, robot=robot)
    env.reset(seed=0)
    img = env.render()
    assert img.dtype == np.uint8 and img.shape == (360, 480, 3)
    assert img.std() > 5  # a real picture, not a blank frame
    small = env.unwrapped.render_camera(camera, width=64, height=48)
    assert small.shape == (48, 64, 3)
    env.close()


@pytest.mark.parametrize("robot", ROBOTS)
def test_front_camera_sees_the_red_cube(robot):
    env = envs.make("skillstack/PandaPickPlace-v0", robot=robot)
    env.reset(seed=0)
    img = env.unwrapped.render_camera("front").astype(int)
    red = (img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80)
    assert red.sum() > 20


def test_invalid_constructor_arguments():
    with pytest.raises(ValueError, match="reward_type"):
        envs.make("skillstack/PandaReach-v0", reward_type="shaped")
    with pytest.raises(ValueError, match="action_mode"):
        envs.make("skillstack/PandaReach-v0", action_mode="torque")
    with pytest.raises(ValueError, match="unknown reward term"):
        envs.make("skillstack/PandaReach-v0", reward_weights={"fun": 1.0})


def test_set_state_rejects_wrong_shape_and_nan():
    u = envs.make("skillstack/PandaPush-v0").unwrapped
    with pytest.raises(ValueError, match="shape"):
        u.set_state(np.zeros(3))
    bad = u.get_state()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        u.set_state(bad)


@pytest.mark.parametrize("robot, n_joints", [("panda", 7), ("ur5e", 6)])
def test_yaw_and_joint_action_modes(robot, n_joints):
    env = envs.make("skillstack/PandaReach-v0", yaw=True, robot=robot)
    assert env.action_space.shape == (5,)
    env.reset(seed=0)
    for _ in range(30):
        env.step(np.array([0, 0, 0, 1.0, 1.0]))
    assert env.unwrapped.tcp_yaw() == pytest.approx(np.pi / 2, abs=0.15)

    env = envs.make("skillstack/PandaReach-v0", action_mode="joint", robot=robot)
    assert env.action_space.shape == (n_joints + 1,)
    env.reset(seed=0)
    q0 = env.unwrapped.data.qpos[:n_joints].copy()
    for _ in range(5):
        env.step(np.array([1.0] + [0.0] * (n_joints - 1) + [1.0]))
    assert env.unwrapped.data.qpos[0] - q0[0] > 0.2


def test_reward_variants_differ_only_in_task_term_and_weights():
    sparse = envs.make("skillstack/PandaPush-v0")
    dense = envs.make("skillstack/PandaPushDense-v0")
    o1, _ = sparse.reset(seed=4)
    o2, _ = dense.reset(seed=4)
    a = np.array([0.3, -0.2, -0.5, 1.0])
    _, r1, *_, i1 = sparse.step(a)
    _, r2, *_, i2 = dense.step(a)
    assert i1["reward_terms"]["task"] == -1.0
    d = np.linalg.norm(o2["achieved_goal"] - o2["desired_goal"])
    assert i2["reward_terms"]["task"] == pytest.approx(-d, abs=0.01)
    assert i1["reward_terms"]["interaction"] == pytest.approx(i2["reward_terms"]["interaction"])
    assert r1 != r2


@pytest.mark.parametrize("robot", ROBOTS)
def test_make_with_robot_gives_that_robots_registered_env(robot):
    env = envs.make("skillstack/PandaStackDense-v0", robot=robot)
    assert env.spec.id == envs.id_for_robot("skillstack/PandaStackDense-v0", robot)
    assert env.spec.id in envs.ROBOT_ENV_IDS[robot] and envs.robot_of(env.spec.id) == robot
    u = env.unwrapped
    assert u.robot.name == robot and u.reward_type == "dense"
    assert u.observation_layout["joint_pos"].stop - u.observation_layout["joint_pos"].start == u.robot.n_arm
    assert "dq1..dq" in envs.make(env.spec.id, action_mode="joint").unwrapped.action_description()


def test_unknown_robot_lists_the_shipped_robots():
    with pytest.raises(ValueError, match="unknown robot 'kuka'.*panda, ur5e"):
        envs.make("skillstack/PandaReach-v0", robot="kuka")
