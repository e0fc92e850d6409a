"""Demo readers take the robot and observation layout from what the file recorded (no Panda assumptions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import envs
from demos import DemoFile, joint_trajectory, record_demos
from segmentation.dataset import PROPRIO_DIM, load_hdf5_episodes, proprio_dim


@pytest.mark.parametrize(("env_id", "kwargs", "width"), [
    ("skillstack/UR5eReach-v0", {}, 14),  # 8 + 6 joints
    ("skillstack/PandaReach-v0", {"obs_layout": "tcp"}, 17),  # no joint angles: read from the states
    ("skillstack/PandaReach-v0", {"robot": "ur5e", "obs_layout": "joint"}, 14),
])
def test_a_demo_reads_as_the_robot_and_layout_it_was_recorded_with(env_id, kwargs, width, tmp_path: Path) -> None:
    out = tmp_path / "d.hdf5"
    record_demos(env_id, "expert", 1, out, seed=3, max_steps=12, progress=False, env_kwargs=kwargs)
    with DemoFile(out) as f:
        ep, file_env, file_kwargs = f[0], f.env_id, f.env_kwargs
    assert proprio_dim(file_env, file_kwargs) == width
    (seg,) = load_hdf5_episodes(out, (), 32)
    assert seg.proprio.shape == (12, width)
    np.testing.assert_array_equal(seg.proprio, ep.obs["observation"][:, :width].astype(np.float32))
    traj = joint_trajectory(ep, env_id=file_env, env_kwargs=file_kwargs)
    env = envs.make(file_env, **file_kwargs)
    u = env.unwrapped
    assert traj.joint_names == u.robot.joint_names and traj.positions.shape == (13, len(u.robot.joint_names))
    env.reset(seed=3)
    for t in range(ep.num_samples):
        u.set_state(ep.states[t])
        np.testing.assert_allclose(traj.positions[t, : u.robot.n_arm], u.robot.arm_q(u.data), atol=1e-12)
        opening = u.robot.description.gripper.width_weights() @ (traj.positions[t, u.robot.n_arm:]
                                                                  - u.robot.description.gripper.width_to_joint_offset)
        assert opening == pytest.approx(u.robot.gripper_width(u.data), abs=1e-9)
    u.set_state(ep.states[-1])
    env.step(ep.actions[-1])  # the final row is the state after the last step
    np.testing.assert_allclose(traj.positions[-1, : u.robot.n_arm], u.robot.arm_q(u.data), atol=1e-12)
    env.close()


def test_files_that_name_no_robot_read_as_the_default_robots_joint_layout() -> None:
    assert proprio_dim() == proprio_dim("skillstack/PandaPickPlace-v0") == PROPRIO_DIM == 15
    assert proprio_dim("real/ur5e") == 14


def test_a_tcp_demo_without_states_says_why_it_has_no_joints(tmp_path: Path) -> None:
    out = tmp_path / "d.hdf5"
    record_demos("skillstack/PandaReach-v0", "expert", 1, out, seed=3, max_steps=5, progress=False, env_kwargs={"obs_layout": "tcp"})
    with DemoFile(out) as f:
        ep = f[0]
    ep.states = None
    with pytest.raises(ValueError, match="'tcp' observation layout, which holds no joint angles"):
        joint_trajectory(ep, env_id="skillstack/PandaReach-v0", env_kwargs={"obs_layout": "tcp"})
    with pytest.raises(ValueError, match="unknown obs_layout"):
        joint_trajectory(ep, env_id="skillstack/PandaReach-v0", env_kwargs={"obs_layout": "pixels"})
