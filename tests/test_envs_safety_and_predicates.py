"""Safety cost parts, predicates and domain randomisation."""

import numpy as np
import pytest

import envs
from envs import predicates
from envs.experts import make_expert


def test_pressing_the_table_costs_and_free_motion_does_not():
    env = envs.make("skillstack/PandaReach-v0", action_mode="joint")
    u = env.unwrapped
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(8))
    assert info["safety_cost"] == pytest.approx(0.0)
    # Fold joint 2 and 4 forward: drives the hand into the table top.
    costs = []
    for _ in range(30):
        _, _, _, _, info = env.step(np.array([0, 1.0, 0, 1.0, 0, 0, 0, -1.0]))
        costs.append(u.safety.parts(u.data)["table_contact"])
    assert max(costs) > 0.1


def test_joint_limit_proximity_costs():
    u = envs.make("skillstack/PandaReach-v0").unwrapped
    u.reset(seed=0)
    u.data.qpos[u.robot.arm_qpos[0]] = u.robot.q_max[0] - 0.01
    parts = u.safety.parts(u.data)
    assert parts["joint_limit"] == pytest.approx(0.9, abs=1e-6)


def test_excessive_joint_speed_costs():
    u = envs.make("skillstack/PandaReach-v0").unwrapped
    u.reset(seed=0)
    u.data.qvel[u.robot.arm_dof[2]] = u.robot.qd_max[2]
    assert u.safety.parts(u.data)["joint_speed"] == pytest.approx(1.0)


def test_predicates_follow_a_pick_and_place():
    env = envs.make("skillstack/PandaStack-v0")
    obs, _ = env.reset(seed=0)
    u = env.unwrapped
    s = u.scene_state()
    assert predicates.evaluate("gripper_open & in_reach(red) & on_table(red) & !holding(red) & !on(red,blue)", s)
    expert = make_expert(env)
    seen_holding = False
    for _ in range(env.spec.max_episode_steps):
        obs, *_ = env.step(expert.act(obs))
        seen_holding |= predicates.evaluate("holding(red)", u.scene_state())
    assert seen_holding
    final = u.scene_state()
    assert predicates.evaluate("on(red,blue) & at(red,goal_red) & !holding(red) & gripper_open", final)


def test_predicate_parse_errors_are_clear():
    with pytest.raises(ValueError, match="unknown predicate"):
        predicates.parse("levitating(red)")
    with pytest.raises(ValueError, match="argument"):
        predicates.parse("on(red)")
    with pytest.raises(ValueError, match="cannot parse"):
        predicates.parse("on(red,blue) & (")
    s = envs.make("skillstack/PandaPush-v0").unwrapped.scene_state()
    with pytest.raises(ValueError, match="unknown object"):
        predicates.evaluate("holding(green)", s)
    lits = predicates.parse("on(red, blue) & !gripper_open")
    assert [str(x) for x in lits] == ["on(red,blue)", "!gripper_open"]


def test_randomisation_is_seeded_and_changes_physics():
    a = envs.make("skillstack/PandaPickPlace-v0", randomization=True)
    b = envs.make("skillstack/PandaPickPlace-v0", randomization=True)
    oa, ia = a.reset(seed=11)
    ob, ib = b.reset(seed=11)
    assert ia["randomization"] == ib["randomization"]
    np.testing.assert_array_equal(oa["observation"], ob["observation"])
    _, ic = a.reset(seed=12)
    assert ic["randomization"] != ia["randomization"]
    nominal = envs.make("skillstack/PandaPickPlace-v0").unwrapped.model
    geom = nominal.geom("cube_red").id
    assert not np.allclose(a.unwrapped.model.geom_size[geom], nominal.geom_size[geom])
    # randomisation never accumulates: nominal values are restored before each draw
    sizes = []
    for s in range(5):
        a.reset(seed=100)
        sizes.append(a.unwrapped.model.geom_size[geom].copy())
    assert all(np.array_equal(sizes[0], x) for x in sizes)


def test_randomisation_off_by_default_and_validated():
    env = envs.make("skillstack/PandaPush-v0")
    _, info = env.reset(seed=0)
    assert info["randomization"] == {}
    with pytest.raises(ValueError, match="unknown randomisation field"):
        envs.make("skillstack/PandaPush-v0", randomization={"gravity": (0, 1)})


def test_action_latency_delays_motion():
    env = envs.make("skillstack/PandaReach-v0", randomization={"action_latency_steps": (1, 1)})
    env.reset(seed=0)
    z0 = env.unwrapped.tcp_pos()[2]
    env.step(np.array([0, 0, -1.0, 1.0]))
    assert abs(env.unwrapped.tcp_pos()[2] - z0) < 0.003  # first command still queued
    env.step(np.array([0, 0, 0.0, 1.0]))
    assert env.unwrapped.tcp_pos()[2] < z0 - 0.01
