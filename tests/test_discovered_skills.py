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
