"""DataViews' joint blocks (issue 22): the arm's and gripper's joint positions and velocities as views
made once per MjData. They must alias the data (show every later state: steps, resets, restored
states) and exist only where a view is possible (contiguous joints); elsewhere they are None and
the step path gathers."""

import types

import mujoco
import numpy as np
import pytest

import envs
from envs.robot import DataViews


@pytest.mark.parametrize("env_id", ["skillstack/PandaReach-v0", "skillstack/UR5eStack-v0"])
def test_joint_blocks_alias_the_data_through_steps_resets_and_restores(env_id):
    env = envs.make(env_id)
    u = env.unwrapped
    views = u.robot.views(u.data)
    r = u.robot
    blocks = {"arm_q": (u.data.qpos, r.arm_qpos), "arm_qd": (u.data.qvel, r.arm_dof),
              "finger_q": (u.data.qpos, r.finger_qpos), "finger_qd": (u.data.qvel, r.finger_dof)}

    def check():
        for name, (array, index) in blocks.items():
            block = getattr(views, name)
            assert block is not None and np.shares_memory(block, array), name
            np.testing.assert_array_equal(block, array[index], err_msg=name)

    env.reset(seed=0)
    state = u.get_state()
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        check()
    moved = views.arm_q.copy()
    u.set_state(state)
    check()
    assert not np.array_equal(views.arm_q, moved)
    env.reset(seed=1)
    check()
    assert u.robot.views(u.data) is views  # made once per MjData


def test_joint_blocks_are_none_for_non_contiguous_joints():
    """A gather is a copy: no block is kept for joints that are not contiguous (callers index then)."""
    u = envs.make("skillstack/PandaReach-v0").unwrapped
    r = u.robot
    scattered = types.SimpleNamespace(arm_qpos_ix=np.array([0, 2, 4]), arm_dof_ix=r.arm_dof_ix,
                                      finger_qpos_ix=np.array([7, 8]), finger_dof_ix=np.array([8, 7]))
    views = DataViews(mujoco.MjData(u.model), r.tcp_site, scattered)
    assert views.arm_q is None and views.finger_q is None and views.finger_qd is None
    assert views.arm_qd is not None  # a slice: a view
    plain = DataViews(u.data, r.tcp_site)
    assert plain.arm_q is plain.arm_qd is plain.finger_q is plain.finger_qd is None
