"""Demonstration file format: writer/reader round trip, robomimic layout, bad inputs, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from demos import (
    DemoFile,
    DemoFileCorruptError,
    DemoLayoutError,
    DemoWriter,
    EnvMismatchError,
    Episode,
    OutputExistsError,
    make_env_args,
)

ENV = "skillstack/PandaPush-v0"


def make_episode(
    rng: np.random.Generator, n: int = 12, image: bool = True, image_hw: tuple[int, int] = (8, 10)
) -> Episode:
    obs = {"observation": rng.normal(size=(n, 31)), "achieved_goal": rng.normal(size=(n, 3))}
    nxt = {k: v + 1.0 for k, v in obs.items()}
    if image:
        obs["front_image"] = rng.integers(0, 255, size=(n, *image_hw, 3), dtype=np.uint8)
        nxt["front_image"] = rng.integers(0, 255, size=(n, *image_hw, 3), dtype=np.uint8)
    dones = np.zeros(n, dtype=np.int64)
    dones[-1] = 1
    return Episode(
        actions=rng.uniform(-1, 1, size=(n, 4)),
        rewards=rng.normal(size=n),
        dones=dones,
        obs=obs,
        next_obs=nxt,
        states=rng.normal(size=(n, 40)),
        phases=rng.integers(0, 2, size=n).astype(np.int32),
        phase_names=("reach", "push"),
        model_file="<mujoco model='test'/>",
        attrs={"seed": 7, "success": True},
    )


def write_file(path: Path, episodes: list[Episode], env: str = ENV) -> None:
    with DemoWriter(path, make_env_args(env, {"reward_type": "sparse"})) as w:
        for ep in episodes:
            w.add_episode(ep)


@pytest.fixture
def demo_path(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "demos.hdf5"
    write_file(path, [make_episode(rng, n) for n in (12, 5, 9)])
    return path


def test_round_trip_keeps_every_array_and_attribute(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    episodes = [make_episode(rng, n) for n in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)]
    path = tmp_path / "rt.hdf5"
    write_file(path, episodes)
    with DemoFile(path, expected_env=ENV) as f:
        assert len(f) == 12
        # numeric order, not string order (demo_10 after demo_9)
        assert f.demo_names == [f"demo_{i}" for i in range(12)]
        assert f.total == sum(e.num_samples for e in episodes)
        assert f.env_id == ENV and f.env_kwargs == {"reward_type": "sparse"}
        for i, (want, got) in enumerate(zip(episodes, f)):
            assert got.name == f"demo_{i}" and got.index == i
            np.testing.assert_array_equal(got.actions, want.actions)
            np.testing.assert_array_equal(got.rewards, want.rewards)
            np.testing.assert_array_equal(got.dones, want.dones)
            np.testing.assert_array_equal(got.states, want.states)
            np.testing.assert_array_equal(got.phases, want.phases)
            assert got.phase_names == ("reach", "push")
            assert got.model_file == want.model_file
            assert got.attrs["seed"] == 7 and got.attrs["success"] is True
            assert set(got.obs) == set(want.obs) == set(got.next_obs)
            for k in want.obs:
                np.testing.assert_array_equal(got.obs[k], want.obs[k])
                np.testing.assert_array_equal(got.next_obs[k], want.next_obs[k])
            assert got.obs["front_image"].dtype == np.uint8
        low = f.episode(3, images=False)
        assert "front_image" not in low.obs and "observation" in low.obs
    # the writer leaves no hidden twin files behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rt.hdf5"]


def test_layout_is_robomimic(demo_path: Path) -> None:
    with h5py.File(demo_path, "r") as f:
        data = f["data"]
        env_args = json.loads(data.attrs["env_args"])
        assert env_args == {"env_name": ENV, "type": 2, "env_kwargs": {"reward_type": "sparse"}}
        assert int(data.attrs["total"]) == 12 + 5 + 9
        g = data["demo_1"]
        assert int(g.attrs["num_samples"]) == 5
        assert isinstance(g.attrs["model_file"], str)
        for key in ("actions", "rewards", "dones", "states", "phases"):
            assert isinstance(g[key], h5py.Dataset) and g[key].shape[0] == 5
        assert json.loads(g["phases"].attrs["phase_names"]) == ["reach", "push"]
        assert set(g["obs"]) == set(g["next_obs"]) == {"observation", "achieved_goal", "front_image"}
        assert g["obs/front_image"].shape == (5, 8, 10, 3) and g["obs/front_image"].dtype == np.uint8
        assert g["actions"].fletcher32  # checksummed, so corruption is detected on read


def test_existing_output_is_never_overwritten(demo_path: Path) -> None:
    before = demo_path.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists.*--overwrite") as exc:
        DemoWriter(demo_path, make_env_args(ENV))
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, FileExistsError)
    assert str(demo_path) in str(exc.value)
    assert demo_path.read_bytes() == before
    with DemoWriter(demo_path, make_env_args("skillstack/PandaReach-v0"), overwrite=True):
        pass
    with DemoFile(demo_path) as f:
        assert len(f) == 0 and f.env_id == "skillstack/PandaReach-v0"


def test_truncated_file_is_a_clear_error(demo_path: Path) -> None:
    data = demo_path.read_bytes()
    demo_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DemoFileCorruptError, match="truncated") as exc:
        DemoFile(demo_path)
    assert str(demo_path) in str(exc.value)
    demo_path.write_bytes(b"")
    with pytest.raises(DemoFileCorruptError, match="truncated"):
        DemoFile(demo_path)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(DemoFileCorruptError, match="not an HDF5 file"):
        DemoFile(junk)
    with pytest.raises(FileNotFoundError, match="nope.hdf5"):
        DemoFile(tmp_path / "nope.hdf5")


def test_missing_group_dataset_and_bad_total(demo_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as f:
        f.create_group("stuff")
    with pytest.raises(DemoLayoutError, match="missing group 'data'") as exc:
        DemoFile(other)
    assert str(other) in str(exc.value)

    with h5py.File(demo_path, "r+") as f:
        del f["data/demo_1/actions"]
    with pytest.raises(DemoLayoutError, match="data/demo_1 is missing dataset 'actions'"):
        DemoFile(demo_path)
    with h5py.File(demo_path, "r+") as f:
        f["data/demo_1"].create_dataset("actions", data=np.zeros((4, 4)))  # one sample short
    with pytest.raises(DemoLayoutError, match=r"data/demo_1/actions has shape \(4, 4\), expected 5"):
        DemoFile(demo_path)
    with h5py.File(demo_path, "r+") as f:
        del f["data/demo_1/actions"]
        f["data/demo_1"].create_dataset("actions", data=np.zeros((5, 4)))
        f["data"].attrs["total"] = 3
    with pytest.raises(DemoLayoutError, match="total is 3 but the demos hold 26"):
        DemoFile(demo_path)
    with h5py.File(demo_path, "r+") as f:
        f["data"].attrs["total"] = 26
        f["data"].attrs["env_args"] = "{not json"
    with pytest.raises(DemoLayoutError, match="env_args is not valid JSON"):
        DemoFile(demo_path)


def test_demo_for_another_env_is_rejected(demo_path: Path) -> None:
    with pytest.raises(EnvMismatchError) as exc:
        DemoFile(demo_path, expected_env="skillstack/PandaStack-v0")
    msg = str(exc.value)
    assert str(demo_path) in msg and ENV in msg and "skillstack/PandaStack-v0" in msg


def test_unknown_demo_lists_what_exists(demo_path: Path) -> None:
    with DemoFile(demo_path) as f, pytest.raises(KeyError, match="demo_0, demo_1, demo_2"):
        f.episode(9)


def test_flipped_data_byte_is_detected_by_checksum(demo_path: Path) -> None:
    with h5py.File(demo_path, "r") as f:
        info = f["data/demo_2/states"].id.get_chunk_info(0)
    raw = bytearray(demo_path.read_bytes())
    raw[info.byte_offset + 17] ^= 0xFF
    demo_path.write_bytes(bytes(raw))
    with DemoFile(demo_path) as f:  # metadata intact: opens
        f.episode(0)
        with pytest.raises(DemoFileCorruptError, match="demo_2"):
            f.episode(2)


def test_debris_of_a_killed_writer_is_cleaned(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "d.hdf5"
    debris = [tmp_path / f".d.hdf5.{dead.pid}.shadow", tmp_path / f".d.hdf5.{dead.pid}.spare"]
    for p in debris:
        p.write_bytes(b"partial")
    keep = tmp_path / ".d.hdf5.notes"
    keep.write_text("unrelated")
    with DemoWriter(out, make_env_args(ENV)):
        assert not any(p.exists() for p in debris)
    assert keep.exists()


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_demos_format import make_episode
    from demos import DemoWriter, make_env_args
    rng = np.random.default_rng(0)
    with DemoWriter({out!r}, make_env_args("skillstack/PandaPush-v0"), overwrite=True, durable={durable}) as w:
        for i in range(100000):
            # lengths 10..16; ~1 MB of frames per episode: big enough that a naive in-place
            # HDF5 append killed mid-write loses the whole file in a good share of trials
            w.add_episode(make_episode(rng, 10 + i % 7, image_hw=(96, 128)))
            print(i, flush=True)
    """
)


@pytest.mark.parametrize(("delay", "durable"), [(0.0, True), (0.013, True), (0.031, False)])
def test_kill9_while_committing_keeps_every_committed_episode(tmp_path: Path, delay: float, durable: bool) -> None:
    """The writer loop is commit-bound, so SIGKILL lands inside the commit protocol."""
    out = tmp_path / "k.hdf5"
    script = WRITER_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out), durable=durable)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        committed = -1
        while committed < 3:
            line = proc.stdout.readline()
            assert line, "writer exited early"
            committed = int(line)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    with DemoFile(out, expected_env=ENV) as f:
        assert len(f) >= committed + 1  # every episode reported as committed is there
        for i, name in enumerate(f.demo_names):
            assert f.num_samples(name) == 10 + i % 7  # complete, no partial episode
            ep = f.episode(name)
            assert ep.dones[-1] == 1 and ep.obs["front_image"].shape[0] == ep.num_samples
