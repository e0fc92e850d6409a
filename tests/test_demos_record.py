"""Recording demonstrations in the real envs: content, cameras, video, policies, kill -9, CLI."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import envs
from common.video import read_mp4
from demos import DemoFile, OutputExistsError, UnknownPolicyError, record_demos


def cli(argv: list[str]) -> int:
    """Run one of this package's subcommands as `skillstack` would (parser + dispatch)."""
    from skillstack.commands import import_bag, record, replay

    parser = argparse.ArgumentParser(prog="skillstack")
    sub = parser.add_subparsers(dest="command")
    for module in (record, replay, import_bag):
        module.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_record_expert_with_cameras_and_video(tmp_path: Path) -> None:
    out = tmp_path / "pp.hdf5"
    res = record_demos(
        "skillstack/PandaPickPlace-v0",
        "expert",
        episodes=2,
        out=out,
        seed=5,
        cameras=["front", "wrist"],
        image_size=(24, 32),
        video=True,
        video_camera="front",
        video_size=24,
        max_steps=4,
        progress=False,
    )
    assert res.episodes == 2 and res.steps == 8
    assert [p.name for p in res.videos] == ["demo_0.mp4", "demo_1.mp4"]
    for p in res.videos:
        assert read_mp4(p).shape == (4, 24, 24, 3)
        cap = cv2.VideoCapture(str(p))
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
        cap.release()
    env = envs.make("skillstack/PandaPickPlace-v0")
    u = env.unwrapped
    with DemoFile(out, expected_env="skillstack/PandaPickPlace-v0") as f:
        assert len(f) == 2 and f.total == 8
        assert f.attrs["source"] == "sim" and f.attrs["policy"] == "expert"
        for i, ep in enumerate(f):
            assert ep.num_samples == 4 and ep.attrs["seed"] == 5 + i
            assert ep.attrs["video"] == f"pp_videos/demo_{i}.mp4"
            assert ep.model_file == u.model_xml
            assert ep.phase_names == ("reach", "grasp", "lift", "carry", "place", "release")
            assert ep.phases.dtype == np.int32 and ep.phases[0] == 0
            assert ep.states.shape == (4, u.state_size)
            assert ep.dones.tolist() == [0, 0, 0, 1]
            for cam in ("front", "wrist"):
                key = f"{cam}_image"
                assert ep.obs[key].shape == (4, 24, 32, 3) and ep.obs[key].dtype == np.uint8
                assert ep.obs[key].std() > 0  # a real picture, not a blank buffer
                np.testing.assert_array_equal(ep.obs[key][1:], ep.next_obs[key][:-1])
            for key in ("observation", "achieved_goal", "desired_goal"):
                np.testing.assert_array_equal(ep.obs[key][1:], ep.next_obs[key][:-1])
            # the stored state is the state *before* each action: it rebuilds obs[t]
            env.reset(seed=5 + i)
            for t in range(4):
                u.set_state(ep.states[t])
                np.testing.assert_allclose(u.obs_builder.build(u.data), ep.obs["observation"][t], atol=1e-12)
    env.close()


def test_record_long_horizon_expert_with_phase_labels(tmp_path: Path) -> None:
    # The multi-step experts label every step of a long demonstration (skill-boundary ground truth).
    out = tmp_path / "ptp.hdf5"
    res = record_demos(
        "skillstack/PandaPushThenPick-v0", "expert", 1, out, seed=3, cameras=["front"], image_size=16, progress=False
    )
    assert res.episodes == 1 and res.successes == 1
    with DemoFile(out, expected_env="skillstack/PandaPushThenPick-v0") as f:
        ep = f[0]
        assert ep.num_samples == 200 and ep.obs["front_image"].shape == (200, 16, 16, 3)
        assert ep.phase_names == ("push_reach", "push", "reach", "grasp", "lift", "carry", "place")
        codes = ep.phases.tolist()
        assert codes[0] == 0 and codes[-1] == 6
        assert all(b >= a or (a, b) == (1, 0) for a, b in zip(codes, codes[1:]))  # in order (a lost push may go round)


def test_record_is_reproducible_and_policies_resolve(tmp_path: Path) -> None:
    a = record_demos("skillstack/PandaReach-v0", "random", 1, tmp_path / "a.hdf5", seed=3, max_steps=5, progress=False)
    b = record_demos("skillstack/PandaReach-v0", "random", 1, tmp_path / "b.hdf5", seed=3, max_steps=5, progress=False)
    with DemoFile(a.path) as fa, DemoFile(b.path) as fb:
        ea, eb = fa[0], fb[0]
        np.testing.assert_array_equal(ea.actions, eb.actions)
        np.testing.assert_array_equal(ea.states, eb.states)
        assert ea.phases is None  # a random policy has no phases
        assert np.abs(ea.actions).max() <= 1.0 and ea.actions.std() > 0

    class Still:
        PHASES = ("hold",)
        phase_index = 0

        def act(self, obs: dict) -> np.ndarray:
            return np.zeros(4)

    record_demos("skillstack/PandaReach-v0", Still(), 1, tmp_path / "c.hdf5", max_steps=3, progress=False)
    record_demos("skillstack/PandaReach-v0", lambda obs: np.zeros(4), 1, tmp_path / "d.hdf5", max_steps=3, progress=False)
    with DemoFile(tmp_path / "c.hdf5") as fc, DemoFile(tmp_path / "d.hdf5") as fd:
        assert fc[0].phase_names == ("hold",) and fc[0].phases.tolist() == [0, 0, 0]
        assert fd[0].phases is None and fd[0].actions.tolist() == [[0.0] * 4] * 3


def test_bad_arguments_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.hdf5"
    with pytest.raises(UnknownPolicyError, match="expert, random, skill:NAME"):
        record_demos("skillstack/PandaReach-v0", "clever", 1, out, progress=False)
    with pytest.raises(ValueError, match="unknown camera 'belly'.*front"):
        record_demos("skillstack/PandaReach-v0", "expert", 1, out, cameras=["belly"], progress=False)
    with pytest.raises(ValueError, match="unknown env id 'skillstack/Nope-v0'; valid ids"):
        record_demos("skillstack/Nope-v0", "expert", 1, out, progress=False)
    assert not out.exists()
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        record_demos("skillstack/PandaReach-v0", "expert", 1, out, progress=False)
    assert out.read_bytes() == b"precious"


RECORD_SCRIPT = textwrap.dedent(
    """
    from demos import record_demos
    record_demos("skillstack/PandaPush-v0", "expert", 10000, {out!r}, max_steps=20, progress=False)
    """
)


def test_kill9_during_recording_keeps_completed_episodes(tmp_path: Path) -> None:
    out = tmp_path / "push.hdf5"
    proc = subprocess.Popen([sys.executable, "-c", RECORD_SCRIPT.format(out=str(out))])
    try:
        deadline = time.monotonic() + 120
        seen = 0
        while seen < 3:  # the published file is never modified in place: safe to read meanwhile
            assert proc.poll() is None, "recorder exited early"
            assert time.monotonic() < deadline, "recorder made no progress"
            time.sleep(0.05)
            if out.exists():
                with DemoFile(out) as f:
                    seen = len(f)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with DemoFile(out, expected_env="skillstack/PandaPush-v0") as f:
        assert len(f) >= 3
        assert all(f.num_samples(n) == 20 for n in f.demo_names)  # the partial episode was dropped
        assert f.total == 20 * len(f)
        assert [f[n].attrs["seed"] for n in f.demo_names] == list(range(len(f)))
    # a new recording over it cleans the killed writer's hidden files
    record_demos("skillstack/PandaPush-v0", "expert", 1, out, max_steps=2, overwrite=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["push.hdf5"]


def test_cli_record_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.hdf5"
    argv = ["record", "--env", "skillstack/PandaReach-v0", "--episodes", "2", "--out", str(out)]
    assert cli(argv + ["--max-steps", "6", "--no-progress", "--seed", "4"]) == 0
    assert "wrote 2 demos (12 steps" in capsys.readouterr().out
    assert cli(["replay", str(out), "--mode", "actions", "--episodes", "1"]) == 0
    text = capsys.readouterr().out
    assert "demo_1" in text and "demo_0" not in text and "max divergence 0" in text
    with pytest.raises(OutputExistsError):
        cli(argv)


def test_record_a_library_skill(tmp_path: Path) -> None:
    from skill_library.starter import build_starter_skills

    lib = tmp_path / "lib"
    build_starter_skills(lib, names=["reach_goal"])
    out = tmp_path / "skill.hdf5"
    res = record_demos("skillstack/PandaReach-v0", "skill:reach_goal", 2, out, library=lib, progress=False)
    assert res.episodes == 2 and res.successes == 2
    with DemoFile(out) as f:
        ep = f[0]
        assert ep.attrs["policy"] == "skill:reach_goal" and ep.phase_names == ("reach",)
        assert ep.phases.tolist() == [0] * ep.num_samples
        assert ep.num_samples <= 50  # ends when the skill reports done (or at the time limit)
    missing = tmp_path / "none.hdf5"
    with pytest.raises(ValueError, match="no skill 'nope'.*reach_goal"):
        record_demos("skillstack/PandaReach-v0", "skill:nope", 1, missing, library=lib, progress=False)
    assert not missing.exists()
