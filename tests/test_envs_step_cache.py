"""The env step path's caches (issue 22): views into MjData, the observation's scratch buffer, the
IK/safety constants, the float goal test. Each must give what a fresh computation gives, on the
env's own data, on another MjData (the ROS bridge's scratch), after copies, and under domain
randomisation (which changes masses, friction, sizes and gains at every reset)."""

import copy
import pickle

import mujoco
import numpy as np
import pytest

import envs
from envs.ik import DifferentialIK
from envs.observation import ObservationBuilder, refresh_kinematics
from envs.safety import SafetyCost

# Randomised physics, no observation noise (so the observation can be recomputed exactly) and no latency.
DYNAMICS = {"observation_noise_std": 0.0, "action_latency_steps": (0, 0)}
IDS = ["skillstack/PandaStack-v0", "skillstack/UR5ePickPlace-v0", "skillstack/PandaReachDense-v0", "skillstack/UR5eStackThreeDense-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_step_matches_fresh_computations_under_randomisation(env_id):
    """Every step's targets, observation, safety cost and goal test equal what objects built anew
    from the (randomised) model compute: nothing the step caches goes stale when the model changes."""
    env = envs.make(env_id, randomization=DYNAMICS)
    u = env.unwrapped
    rng = np.random.default_rng(0)
    for episode in range(3):
        env.reset(seed=episode)
        ik = DifferentialIK(u.model, u.robot)
        builder = ObservationBuilder(u.model, u.objects, u.robot, u.obs_layout)
        safety = SafetyCost(u.model, u.robot)
        for _ in range(15):
            action = rng.uniform(-1, 1, size=env.action_space.shape)
            target = np.clip(u.tcp_pos() + u.max_delta * action[:3], *zip(*u._workspace))
            expected_q = ik.solve(u.data, target, u._target_mat, u.control_dt)
            obs, reward, _, _, info = env.step(action)
            np.testing.assert_array_equal(u.data.ctrl[u.robot.arm_actuators], expected_q)
            np.testing.assert_array_equal(obs["observation"], builder.build(u.data))
            assert info["safety_cost"] == safety(u.data)
            dist = u.goal_distances(obs["achieved_goal"], obs["desired_goal"])
            assert info["is_success"] == float(np.all(dist < u.goal_threshold))
            if u.reward_type == "dense":
                assert info["reward_terms"]["task"] == -float(dist.sum())


def test_views_follow_the_mjdata_they_are_asked_about():
    """A builder reading a scratch MjData (as the ROS bridge does) reads that one, then the env's again."""
    u = envs.make("skillstack/UR5ePush-v0").unwrapped
    u.reset(seed=0)
    for _ in range(5):
        u.step(u.action_space.sample())
    mine = u.observe()["observation"]
    scratch = mujoco.MjData(u.model)
    scratch.qpos[:] = u.data.qpos
    scratch.qpos[u.robot.arm_qpos[0]] += 0.1
    refresh_kinematics(u.model, scratch)
    theirs = u.obs_builder.build(scratch)
    assert not np.array_equal(theirs, mine)
    np.testing.assert_array_equal(theirs[u.observation_layout["joint_pos"]], scratch.qpos[u.robot.arm_qpos])
    np.testing.assert_array_equal(u.observe()["observation"], mine)  # back on the env's data


def test_copied_and_pickled_robots_do_not_carry_views():
    u = envs.make("skillstack/PandaReach-v0").unwrapped
    u.reset(seed=0)
    u.robot.views(u.data)
    assert copy.deepcopy(u.robot)._views is None
    assert pickle.loads(pickle.dumps(u.robot))._views is None


def test_a_task_with_its_own_goal_distances_is_measured_by_it():
    """The step's float goal test is only for the base's blockwise distances; an override is used as written."""

    class FarGoal(envs.PandaReachEnv):
        def goal_distances(self, achieved, desired):
            return np.zeros(np.shape(achieved)[:-1] + (1,))  # always at the goal

    env = FarGoal()
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(4))
    assert info["is_success"] == 1.0 and info["reward_terms"]["task"] == 0.0


@pytest.mark.parametrize("env_id", ["skillstack/PandaStack-v0", "skillstack/PandaStackThree-v0"])
def test_goal_blocks_give_one_distance_per_cube(env_id):
    u = envs.make(env_id).unwrapped
    obs, _ = u.reset(seed=0)
    dist = u.goal_distances(obs["achieved_goal"], obs["desired_goal"])
    assert dist.shape == (u.goal_blocks,)
    batch = u.goal_distances(np.stack([obs["achieved_goal"]] * 4), np.stack([obs["desired_goal"]] * 4))
    assert batch.shape == (4, u.goal_blocks)
