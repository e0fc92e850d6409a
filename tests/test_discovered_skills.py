"""Discovered skills' training data: corrective copies of demonstration steps, inputs a skill does not read."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from segmentation.skill_data import absolute_inputs_off, corrective_copies, ignored_columns, silence_columns


@pytest.fixture(scope="module")
def stack_env():
    env = envs.make("skillstack/PandaStack-v0")
    env.reset(seed=0)
    yield env
    env.close()


def test_a_corrective_copy_commands_the_demonstrated_target_from_a_displaced_tcp(stack_env):
    u = stack_env.unwrapped
    layout, md = u.obs_builder.layout, u.max_delta
    obs = np.stack([stack_env.reset(seed=s)[0]["observation"] for s in range(5)])
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, size=(5, 4))
    x, y = corrective_copies(obs, actions, layout, copies=2, sigma=0.01, max_delta=md, seed=1)
    assert x.shape == (15, obs.shape[1]) and y.shape == (15, 4)
    assert np.array_equal(x[:5], obs) and np.array_equal(y[:5], actions)
    tcp = layout["tcp_pos"]
    for c in (1, 2):
        xc, yc = x[5 * c : 5 * c + 5], y[5 * c : 5 * c + 5]
        d = xc[:, tcp] - obs[:, tcp]
        assert np.all(np.abs(d) > 0)
        # the TCP target the demonstration commanded is commanded again from the displaced TCP
        np.testing.assert_allclose(xc[:, tcp] + md * yc[:, :3], obs[:, tcp] + md * actions[:, :3], atol=1e-12)
        np.testing.assert_array_equal(yc[:, 3], actions[:, 3])  # the gripper command is the demonstration's
        for cube in ("red", "blue"):
            rel, pos = layout[f"{cube}_rel_pos"], layout[f"{cube}_pos"]
            np.testing.assert_allclose(xc[:, rel], obs[:, rel] - d, atol=1e-12)  # cube - tcp, with the moved tcp
            np.testing.assert_array_equal(xc[:, pos], obs[:, pos])  # the cube itself did not move


def test_corrective_labels_stay_in_the_action_bounds_and_bad_arguments_are_refused(stack_env):
    layout = stack_env.unwrapped.obs_builder.layout
    obs = np.zeros((4, stack_env.unwrapped.obs_builder.size))
    x, y = corrective_copies(obs, np.full((4, 4), 0.99), layout, copies=3, sigma=0.5, max_delta=0.05)
    assert np.all(np.abs(y) <= 1.0)
    assert corrective_copies(obs, np.zeros((4, 4)), layout, copies=0, sigma=0.01, max_delta=0.05)[0].shape == obs.shape
    with pytest.raises(ValueError, match="same N"):
        corrective_copies(obs, np.zeros((3, 4)), layout, copies=1, sigma=0.01, max_delta=0.05)
    with pytest.raises(ValueError, match="sigma"):
        corrective_copies(obs, np.zeros((4, 4)), layout, copies=1, sigma=float("nan"), max_delta=0.05)
    with pytest.raises(ValueError, match="tcp_pos"):
        corrective_copies(obs, np.zeros((4, 4)), {"red_pos": slice(0, 3)}, copies=1, sigma=0.01, max_delta=0.05)


def test_a_skill_fitted_without_joint_angles_ignores_them_when_run(stack_env):
    from policies.bc import train_bc

    layout = stack_env.unwrapped.obs_builder.layout
    cols = ignored_columns(layout)
    assert len(cols) == 7  # the Panda's joint angles
    rng = np.random.default_rng(0)
    obs = np.stack([stack_env.reset(seed=s)[0]["observation"] for s in range(20)])
    actions = rng.uniform(-1, 1, size=(20, 4))
    policy = train_bc(absolute_inputs_off(obs, cols), actions, epochs=3, batch=8, seed=0)
    policy.obs_mean, policy.obs_std = silence_columns(policy.obs_mean, policy.obs_std, cols)
    moved = obs.copy()
    moved[:, cols] += rng.uniform(-1, 1, size=(20, len(cols)))  # any other arm configuration
    np.testing.assert_allclose(policy.predict(moved), policy.predict(obs), atol=1e-5)
    zeroed = obs.copy()
    zeroed[:, cols] = 0.0
    np.testing.assert_allclose(policy.predict(obs), policy.predict(zeroed), atol=1e-5)
    other = obs.copy()
    other[:, layout["red_rel_pos"]] += 0.2  # what it does read still steers it
    assert not np.allclose(policy.predict(other), policy.predict(obs), atol=1e-4)


def test_a_run_that_grasps_and_lets_go_declares_the_release():
    from segmentation.skills import infer_predicates

    start = {"holding(red)": False, "on(red,blue)": False, "gripper_open": True}
    end = {"holding(red)": False, "on(red,blue)": True, "gripper_open": True}
    grasped = {"holding(red)": True, "on(red,blue)": False, "gripper_open": True}
    never = dict.fromkeys(start, False)
    assert infer_predicates([start] * 4, [end] * 4)[1] == ("on(red,blue)",)  # without what happened inside the runs
    assert infer_predicates([start] * 4, [end] * 4, flipped=[grasped] * 4)[1] == ("!holding(red)", "on(red,blue)")
    # held in too few runs (1 of 4 < agree), or a predicate that is not a grasp: not declared
    assert infer_predicates([start] * 4, [end] * 4, flipped=[grasped] + [never] * 3)[1] == ("on(red,blue)",)
    opened = {**never, "gripper_open": True}
    assert infer_predicates([start] * 4, [end] * 4, flipped=[opened] * 4)[1] == ("on(red,blue)",)


def test_runs_through_different_types_with_the_same_effects_are_one_skill():
    from segmentation.skills import group_by_effect

    env = "skillstack/PandaStack-v0"
    effects = {0: ("on(red,blue)",), 1: ("on(red,blue)",), 2: ("on(red,blue)",), 3: ("holding(red)",), 4: ()}
    groups = {((1, 0, 1), env): [("ep", 0, 10), ("ep", 1, 10)], ((1, 0, 2, 1), env): [("ep", 2, 10)],
              ((5,), env): [("ep", 3, 10), ("ep", 4, 10)]}
    out = group_by_effect(groups, lambda ep, s, e: effects[s])
    assert out == {((1, 0, 1), env): [("ep", 0, 10), ("ep", 1, 10), ("ep", 2, 10)],  # named by the majority's types
                   ((5,), env): [("ep", 4, 10)],  # no effect of its own: kept by its types
                   ((5, -1), env): [("ep", 3, 10)]}  # another effect through the same types: kept apart


def test_preconditions_name_only_the_cube_the_skill_moves():
    from segmentation.skills import infer_predicates

    start = {"gripper_open": True, "holding(red)": False, "holding(blue)": False, "on(red,blue)": False,
             "on(blue,red)": False, "on_table(red)": True, "on_table(blue)": True}
    end = {**start, "on(red,blue)": True, "on_table(red)": False}
    pre, eff = infer_predicates([start] * 3, [end] * 3)
    assert "on_table(blue)" in pre  # the demonstrations' scene: blue was always on the table
    pre, eff = infer_predicates([start] * 3, [end] * 3, moved_only=True)
    assert pre == ("gripper_open", "!holding(red)", "!on(red,blue)", "on_table(red)")
    assert eff == ("on(red,blue)", "!on_table(red)")  # so it grounds as green onto red standing on blue
