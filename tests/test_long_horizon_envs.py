"""Long-horizon task envs: registration, GoalEnv conformance, determinism, task geometry."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.long_horizon import LONG_HORIZON_TASKS
from envs.predicates import evaluate, in_reach

LONG_IDS = list(envs.LONG_HORIZON_IDS)
SPARSE = [i for i in LONG_IDS if "Dense" not in i]


def test_ids_registered_apart_from_the_primitive_tasks():
    assert len(LONG_IDS) == 8 and not set(LONG_IDS) & set(envs.ENV_IDS)
    assert len(envs.ENV_IDS) == 8  # the primitive tasks' list is unchanged
    assert {v[0] for v in LONG_HORIZON_TASKS.values()} == set(SPARSE)
    for name, (env_id, cls, steps) in LONG_HORIZON_TASKS.items():
        assert gym.spec(env_id).max_episode_steps == steps and cls.task_name == name
    with pytest.raises(ValueError, match="PandaStackThree-v0"):
        envs.make("skillstack/PandaStackFour-v0")


@pytest.mark.parametrize("env_id", LONG_IDS)
def test_goal_env_conformance(env_id):
    env = envs.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    u = env.unwrapped
    assert env.observation_space.contains(obs) and not terminated
    assert set(info["reward_terms"]) == {"task", "interaction", "safety"}
    assert u.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == pytest.approx(reward)
    batch = u.compute_reward(np.stack([obs["achieved_goal"]] * 2), np.stack([obs["desired_goal"]] * 2), np.array([info] * 2))
    np.testing.assert_allclose(batch, [reward] * 2)


@pytest.mark.parametrize("env_id", SPARSE)
def test_same_seed_same_actions_bit_identical(env_id):
    env = envs.make(env_id)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(15, 4))
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=11)
        traj = [obs["observation"]]
        for a in actions:
            traj.append(env.step(a)[0]["observation"])
        runs.append(np.stack(traj))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_push_then_pick_starts_out_of_grasp_reach_with_an_air_goal_in_reach():
    env = envs.make("skillstack/PandaPushThenPick-v0")
    u = env.unwrapped
    for seed in range(20):
        env.reset(seed=seed)
        s = u.scene_state()
        r = np.hypot(*s.objects["red"][:2])
        assert 0.72 < r <= 0.75 and not in_reach(s, "red") and evaluate("on_table(red)", s)
        goal = s.goals["goal"]
        assert goal[2] > 0.06 and np.hypot(*goal[:2]) < 0.72  # in the air, inside reach: pushing alone cannot do it


def test_stack_three_success_needs_the_whole_tower():
    env = envs.make("skillstack/PandaStackThree-v0")
    u = env.unwrapped
    env.reset(seed=5)
    blue = u.object_pos("blue")
    h = u.cube_half_size
    np.testing.assert_allclose(u.goal, np.concatenate((blue + [0, 0, 2 * h], blue + [0, 0, 4 * h], blue)))
    hold = np.array([0.0, 0.0, 0.0, 1.0])
    _, _, _, _, info = env.step(hold)
    assert info["is_success"] == 0.0 and not evaluate(u.goal_expression, u.scene_state())
    u.set_object_pos("red", blue + [0, 0, 2 * h])
    mujoco.mj_forward(u.model, u.data)
    _, _, _, _, info = env.step(hold)
    assert info["is_success"] == 0.0  # green still on the table
    u.set_object_pos("green", u.object_pos("red") + [0, 0, 2 * h])
    mujoco.mj_forward(u.model, u.data)
    for _ in range(5):
        _, _, _, _, info = env.step(hold)
    assert info["is_success"] == 1.0 and evaluate(u.goal_expression, u.scene_state())
