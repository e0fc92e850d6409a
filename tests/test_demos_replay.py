"""Replaying demonstrations: exact action replay on every task, divergence warnings, video."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import envs
from common.video import read_mp4
from demos import (
    DemoFileError,
    EnvMismatchError,
    ReplayDivergenceWarning,
    record_demos,
    replay,
)


@pytest.fixture(scope="module")
def reach_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "reach.hdf5"
    record_demos("skillstack/PandaReach-v0", "expert", 3, out, seed=11, max_steps=15, progress=False)
    return out


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_action_replay_is_exact_on_every_task(env_id: str, tmp_path: Path) -> None:
    out = tmp_path / "d.hdf5"
    record_demos(env_id, "expert", 1, out, seed=2, progress=False)  # full-length episode
    result = replay(out, "actions")
    assert result.ok and len(result.episodes) == 1
    ep = result.episodes[0]
    assert ep.steps == envs.registry.EPISODE_STEPS[env_id.split("/")[1].split("-")[0].replace("Dense", "")]
    assert ep.max_divergence <= 1e-6
    states = replay(out, "states")
    assert states.max_divergence <= 1e-9  # stored states rebuild the stored observations


@pytest.mark.parametrize(
    ("env_id", "policy", "kwargs"),
    [
        ("skillstack/PandaPushDense-v0", "random", {"action_mode": "joint"}),
        ("skillstack/PandaStack-v0", "expert", {"yaw": True}),
        ("skillstack/PandaPickPlace-v0", "expert", {"randomization": True}),
    ],
)
def test_action_replay_is_exact_with_env_options(env_id: str, policy: str, kwargs: dict, tmp_path: Path) -> None:
    out = tmp_path / "d.hdf5"
    record_demos(env_id, policy, 2, out, seed=9, env_kwargs=kwargs, max_steps=30, progress=False)
    result = replay(out, "actions")
    assert [e.steps for e in result.episodes] == [30, 30]
    assert result.max_divergence <= 1e-6 and result.ok


def test_tampered_action_warns_at_the_step_it_diverges(reach_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.hdf5"
    shutil.copyfile(reach_file, bad)
    with h5py.File(bad, "r+") as f:
        f["data/demo_1/actions"][6] = -np.asarray(f["data/demo_1/actions"][6])
    with pytest.warns(ReplayDivergenceWarning, match=r"demo_1: playback diverged by .* at step 6 \(threshold 1e-06\)"):
        result = replay(bad, "actions", episodes=[0, 1])
    assert not result.ok
    first, second = result.episodes
    assert first.first_exceeded_step is None and first.max_divergence == 0.0
    assert second.first_exceeded_step == 6 and second.max_divergence > 1e-3


def test_states_replay_video_has_one_frame_per_step(reach_file: Path, tmp_path: Path) -> None:
    video = tmp_path / "out.mp4"
    result = replay(reach_file, "states", episodes=["demo_2"], video=video, camera="side", video_size=(32, 48))
    assert result.frames == 15 and result.video == video
    assert read_mp4(video).shape == (15, 32, 48, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temp file left


def test_replay_bad_requests(reach_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown replay mode 'fast'; valid modes: states, actions"):
        replay(reach_file, "fast")
    with pytest.raises(ValueError, match="unknown camera 'belly'"):
        replay(reach_file, "states", camera="belly", video=tmp_path / "v.mp4")
    with pytest.raises(KeyError, match="no demo 'demo_9'"):
        replay(reach_file, "states", episodes=[9])
    with pytest.raises(EnvMismatchError, match="expected 'skillstack/PandaStack-v0'"):
        replay(reach_file, "actions", expected_env="skillstack/PandaStack-v0")
    nostates = tmp_path / "nostates.hdf5"
    shutil.copyfile(reach_file, nostates)
    with h5py.File(nostates, "r+") as f:
        del f["data/demo_0/states"]
    with pytest.raises(DemoFileError, match="demo_0 has no simulator states"):
        replay(nostates, "actions")
    assert not (tmp_path / "v.mp4").exists()


def test_joint_trajectory_of_a_sim_demo_matches_the_simulator(reach_file: Path) -> None:
    from demos import DemoFile, joint_trajectory

    with DemoFile(reach_file) as f:
        ep = f[0]
    traj = joint_trajectory(ep)
    assert traj.positions.shape == (16, 9) and traj.dt == pytest.approx(0.04)
    assert traj.joint_names[0] == "panda_joint1" and traj.joint_names[-1] == "panda_finger_joint2"
    env = envs.make("skillstack/PandaReach-v0")
    u = env.unwrapped
    env.reset(seed=ep.attrs["seed"])
    for t in range(ep.num_samples):
        u.set_state(ep.states[t])
        np.testing.assert_allclose(traj.positions[t, :7], u.robot.arm_q(u.data), atol=1e-12)
        assert traj.positions[t, 7:].sum() == pytest.approx(u.robot.gripper_width(u.data), abs=1e-12)
    env.close()
