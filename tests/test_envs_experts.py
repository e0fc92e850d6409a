"""Scripted experts solve their tasks and expose meaningful phases."""

import os

import numpy as np
import pytest

import envs
from envs.experts import (
    PickPlaceExpert,
    PushThenPickExpert,
    StackExpert,
    StackThreeExpert,
    make_expert,
    run_expert_episode,
)

# CI runs fewer episodes; SKILLSTACK_EXPERT_EPISODES=100 reproduces the 100-episode check.
EPISODES = int(os.environ.get("SKILLSTACK_EXPERT_EPISODES", "20"))
TASK_IDS = [i for i in envs.ENV_IDS if "Dense" not in i]
LONG_HORIZON_TASK_IDS = [i for i in envs.LONG_HORIZON_IDS if "Dense" not in i]


# Every other shipped robot: a short seeded run here; `skillstack bench experts` measures 100 episodes.
OTHER_ROBOT_EPISODES = int(os.environ.get("SKILLSTACK_ROBOT_EXPERT_EPISODES", "10"))
OTHER_ROBOT_IDS = [
    i
    for robot, ids in envs.ROBOT_ENV_IDS.items()
    if robot != "panda"
    for i in ids + envs.ROBOT_LONG_HORIZON_IDS[robot]
    if "Dense" not in i
]


@pytest.mark.parametrize(
    "env_id, episodes",
    [(i, EPISODES) for i in TASK_IDS + LONG_HORIZON_TASK_IDS] + [(i, OTHER_ROBOT_EPISODES) for i in OTHER_ROBOT_IDS],
)
def test_expert_success_rate_at_least_95_percent(env_id, episodes):
    env = envs.make(env_id)
    results = [run_expert_episode(env, seed=1000 + s) for s in range(episodes)]
    rate = np.mean([r["success"] for r in results])
    assert rate >= 0.95, f"{env_id}: {rate:.2%}"
    # Experts are safe: no joint-limit, table or speed violations worth the name.
    assert np.mean([r["safety_cost"] for r in results]) < 1.0


@pytest.mark.parametrize(
    "env_id, expected",
    [
        ("skillstack/PandaPickPlace-v0", ["reach", "grasp", "lift", "carry", "place"]),
        ("skillstack/PandaStack-v0", ["reach", "grasp", "lift", "carry", "place", "release"]),
        ("skillstack/PandaPush-v0", ["reach", "push"]),
        ("skillstack/PandaReach-v0", ["reach"]),
        ("skillstack/PandaStackTwo-v0", ["reach", "grasp", "lift", "carry", "place", "release"]),
        (
            "skillstack/PandaStackThree-v0",
            ["reach", "grasp", "lift", "carry", "place", "release"]
            + ["reach_2", "grasp_2", "lift_2", "carry_2", "place_2", "release_2"],
        ),
        ("skillstack/PandaPushThenPick-v0", ["push_reach", "push", "reach", "grasp", "lift", "carry", "place"]),
    ],
)
def test_phases_appear_in_order(env_id, expected):
    env = envs.make(env_id)
    result = run_expert_episode(env, seed=2)
    seen = [p for i, p in enumerate(result["phases"]) if i == 0 or result["phases"][i - 1] != p]
    assert seen[: len(expected)] == expected
    assert set(result["phases"]) <= set(make_expert(env).PHASES)


def test_expert_is_deterministic():
    env = envs.make("skillstack/PandaPickPlace-v0")
    a = run_expert_episode(env, seed=5)
    b = run_expert_episode(env, seed=5)
    assert a["phases"] == b["phases"] and a["safety_cost"] == b["safety_cost"]


def test_expert_needs_end_effector_actions():
    with pytest.raises(ValueError, match="action_mode"):
        make_expert(envs.make("skillstack/PandaReach-v0", action_mode="joint"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hand_holds_still_after_the_release_back_off(seed):
    # The hold after placing used the fast gain, which overshoots by the error: the hand rang up
    # and down for ten steps (summed |action| 1.7-5.1 on these seeds; 0.3-0.4 with the fix). The
    # ringing is bad demonstration data and read as spurious skill boundaries.
    # Longer than the task's 50 steps: the fingers open at the robot's own speed, so the hold comes late.
    env = envs.make("skillstack/PandaPickPlace-v0", max_episode_steps=80)
    obs, _ = env.reset(seed=seed)
    expert = make_expert(env)
    hold = []
    for _ in range(env.spec.max_episode_steps):
        action = expert.act(obs)
        if expert.phase == "release" and expert.steps_in_phase > 4:  # opened; backing off
            hold.append(action[:3])
        obs, *_ = env.step(action)
    hold = np.array(hold)
    assert len(hold) >= 12, "the release should start early enough to watch the hold"
    up = int(np.argmax(hold[:, 2] > 0.5))  # the back-off starts once the fingers are open (a real gripper is slow)
    assert hold[up, 2] > 0.5, "the hand backs off upwards after the release"
    start = up + int(np.argmax(hold[up:, 2] < 0.5)) + 1  # after the upward move slows
    settled = hold[start : start + 12]  # the ringing was ten steps long
    assert len(settled) == 12
    assert np.abs(settled).sum() < 1.0


@pytest.mark.parametrize(
    "env_id, expert_cls",
    [
        ("skillstack/PandaPickPlaceLong-v0", PickPlaceExpert),
        ("skillstack/PandaStackTwo-v0", StackExpert),
        ("skillstack/PandaStackThree-v0", StackThreeExpert),
        ("skillstack/PandaPushThenPick-v0", PushThenPickExpert),
    ],
)
def test_long_horizon_envs_get_their_own_expert(env_id, expert_cls):
    # Looked up most specific class first: stack-three is not left to the two-cube StackExpert,
    # push-then-pick not to PickPlaceExpert (which cannot grasp a cube out of reach).
    expert = make_expert(envs.make(env_id))
    assert type(expert) is expert_cls
    assert len(set(expert.PHASES)) == len(expert.PHASES)


def test_push_then_pick_pushes_into_reach_before_picking():
    from envs.predicates import holding, in_reach

    env = envs.make("skillstack/PandaPushThenPick-v0")
    obs, _ = env.reset(seed=7)
    assert not in_reach(env.unwrapped.scene_state(), "red")
    expert = make_expert(env)
    phases, reach_ok = [], None
    for _ in range(env.spec.max_episode_steps):
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        phases.append(expert.phase)
        if expert.phase == "reach" and reach_ok is None:
            reach_ok = in_reach(env.unwrapped.scene_state(), "red")  # pushed in before the pick starts
        if terminated or truncated:
            break
    push = [i for i, p in enumerate(phases) if p in ("push_reach", "push")]
    pick = [i for i, p in enumerate(phases) if p in ("reach", "grasp", "lift", "carry", "place")]
    assert phases[0] == "push_reach" and push and pick and max(push) < min(pick)
    assert reach_ok and info["is_success"]
    assert holding(env.unwrapped.scene_state(), "red")  # the goal is in the air: the cube stays held


def test_sequence_expert_jumps_to_a_later_stage():
    # skill_library.scripted runs a group of phases by setting phase_index: that must select the stage.
    env = envs.make("skillstack/PandaStackThree-v0")
    env.reset(seed=1)
    expert = make_expert(env)
    expert.phase_index = expert.PHASES.index("reach_2")
    assert expert.stage_index == 1 and expert.phase == "reach_2" and expert.steps_in_phase == 0
    expert.act()
    assert expert.phase == "reach_2" and expert.steps_in_phase == 1
    expert.reset()
    assert expert.stage_index == 0 and expert.phase == "reach"
