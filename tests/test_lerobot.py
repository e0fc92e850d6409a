"""LeRobotDataset v3.0 export/import (demos.lerobot), checked against the format with pyarrow and PyAV only.

The lerobot package does not install beside our torch pin, so the format checks read the folder as
its documentation describes (huggingface/lerobot docs/source/lerobot-dataset-v3.mdx, codebase_version
"v3.0"; subtasks as in lerobot PR #2860): column names and arrow types, chunk/file paths, video keys,
episode offsets, info.json fields, timestamps = frame_index / fps, video frames per episode.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from demos import DemoFile, OutputExistsError, record_demos
from demos.lerobot import LeRobotFormatError, VideoSettings, export_lerobot, import_lerobot, phase_subtasks
from demos.lerobot_video import Mp4Shard

ENV = "skillstack/PandaPickPlace-v0"
CAMERAS = ["front", "wrist"]


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lerobot") / "pp.hdf5"
    record_demos(ENV, "expert", 2, out, cameras=CAMERAS, image_size=32, seed=0, progress=False, durable=False)
    return out


@pytest.fixture(scope="module")
def exported(demo_file, tmp_path_factory) -> Path:
    spans, names = phase_subtasks(demo_file)
    out = tmp_path_factory.mktemp("lerobot") / "pp_lerobot"
    res = export_lerobot(demo_file, out, subtasks=spans, subtask_names=names)
    assert res.episodes == 2 and res.video_keys == [f"observation.images.{c}" for c in CAMERAS]
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_export_follows_v3_layout(exported, demo_file):
    info = json.loads((exported / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    for key in ("fps", "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "total_tasks", "splits"):
        assert key in info
    fps = info["fps"]
    feats = info["features"]
    with DemoFile(demo_file) as f:
        eps = list(f)
    assert info["total_episodes"] == 2 and info["total_frames"] == sum(e.num_samples for e in eps)
    video_keys = [k for k, ft in feats.items() if ft["dtype"] == "video"]
    assert video_keys == [f"observation.images.{c}" for c in CAMERAS]
    for k in video_keys:
        assert feats[k]["shape"] == [32, 32, 3] and feats[k]["names"] == ["height", "width", "channels"]
        assert feats[k]["info"]["video.fps"] == fps and feats[k]["info"]["video.codec"] == "h264"
    # data: one file, every non-video feature a column of the declared dtype and shape
    data = pq.read_table(exported / "data/chunk-000/file-000.parquet")
    for col in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index",
                "subtask_index"):
        assert col in data.column_names
    for k, ft in feats.items():
        if ft["dtype"] == "video":
            assert k not in data.column_names
            continue
        t = data.schema.field(k).type
        if ft["shape"] == [1]:
            assert t == pa.from_numpy_dtype(np.dtype(ft["dtype"])), k
        else:
            assert pa.types.is_fixed_size_list(t) and t.list_size == ft["shape"][0], k
            assert t.value_type == pa.from_numpy_dtype(np.dtype(ft["dtype"])), k
    assert data.schema.field("timestamp").type == pa.float32()
    assert feats["observation.state"]["names"][:3] == ["tcp_pos_0", "tcp_pos_1", "tcp_pos_2"]
    assert np.array_equal(data.column("index").to_numpy(), np.arange(len(data)))
    # tasks / subtasks: index tables as pandas writes them
    tasks = pq.read_table(exported / "meta/tasks.parquet")
    assert tasks.column("task").to_pylist() == [ENV] and tasks.column("task_index").to_pylist() == [0]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    subtasks = pq.read_table(exported / "meta/subtasks.parquet").column("subtask").to_pylist()
    # episodes: offsets into the shared data and video files
    episodes = pq.read_table(exported / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in episodes] == [0, 1]
    ep_col = data.column("episode_index").to_numpy()
    for e, ep in zip(episodes, eps):
        n = e["length"]
        assert n == ep.num_samples and e["tasks"] == [ENV]
        assert (e["data/chunk_index"], e["data/file_index"]) == (0, 0)
        rows = data.slice(e["dataset_from_index"], e["dataset_to_index"] - e["dataset_from_index"])
        assert np.all(rows.column("episode_index").to_numpy() == e["episode_index"]) and np.sum(ep_col == e["episode_index"]) == n
        frame_index = rows.column("frame_index").to_numpy()
        assert np.array_equal(frame_index, np.arange(n))
        assert np.allclose(rows.column("timestamp").to_numpy(), frame_index / fps, atol=1e-6)
        action = np.stack(rows.column("action").to_numpy(zero_copy_only=False))
        assert np.array_equal(action, ep.actions)
        labels = [subtasks[i] for i in rows.column("subtask_index").to_numpy()]
        assert labels == [ep.phase_names[p] for p in ep.phases]
        for key in video_keys:
            path = exported / info["video_path"].format(video_key=key, chunk_index=e[f"videos/{key}/chunk_index"],
                                                        file_index=e[f"videos/{key}/file_index"])
            with av.open(str(path)) as c:
                times = [float(fr.time) for fr in c.decode(video=0)]
            start, end = e[f"videos/{key}/from_timestamp"], e[f"videos/{key}/to_timestamp"]
            inside = [t for t in times if start - 1e-4 <= t < end - 1e-4]
            assert len(inside) == n and np.allclose(inside, start + frame_index / fps, atol=1e-4)
    stats = json.loads((exported / "meta/stats.json").read_text())
    assert set(stats["action"]) >= {"min", "max", "mean", "std", "count", "q01", "q99"}
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert stats["action"]["count"] == [info["total_frames"]]


def test_round_trip_is_exact_and_images_within_codec_loss(exported, demo_file, tmp_path):
    back = tmp_path / "back.hdf5"
    res = import_lerobot(exported, back)
    assert res.episodes == 2 and res.cameras == CAMERAS
    with DemoFile(demo_file) as a, DemoFile(back, expected_env=ENV) as b:
        assert a.env_args == b.env_args
        for ea, eb in zip(a, b):
            for name in ("actions", "states", "rewards", "dones", "phases"):
                x, y = getattr(ea, name), getattr(eb, name)
                assert x.dtype == y.dtype and np.array_equal(x, y), name
            assert ea.phase_names == eb.phase_names and ea.model_file == eb.model_file
            assert {k: v for k, v in ea.attrs.items()} == eb.attrs
            for key in ea.obs:
                if key.endswith("_image"):
                    assert eb.obs[key].shape == ea.obs[key].shape
                    assert _psnr(ea.obs[key], eb.obs[key]) > 28.0, key  # crf 10, yuv420p: halved chroma on 32 px frames (29.7 dB wrist seen); 34-40 dB at 84 px (docs/demonstrations.md)
                else:
                    assert np.array_equal(ea.obs[key], eb.obs[key]) and np.array_equal(ea.next_obs[key], eb.next_obs[key])


def test_imported_demos_feed_segmentation_and_bc(exported, tmp_path):
    from policies.bc import train_bc
    from segmentation import load_hdf5_episodes, true_boundaries

    # a dataset that is not ours: no skillstack metadata, so the generic column mapping applies
    foreign = tmp_path / "foreign"
    shutil.copytree(exported, foreign)
    (foreign / "meta/skillstack.json").unlink()
    back = tmp_path / "foreign.hdf5"
    res = import_lerobot(foreign, back)
    assert res.env_id == "lerobot/robot"
    eps = load_hdf5_episodes(back, CAMERAS, 32)
    assert len(eps) == 2 and eps[0].images["front"].shape[1:] == (32, 32, 3) and eps[0].proprio is not None
    assert true_boundaries(eps[0].phases)  # subtasks come back as phase labels
    obs = np.concatenate([e.low_dim["observation"] for e in eps])
    policy = train_bc(obs, np.concatenate([e.actions for e in eps]), epochs=2, hidden=(16,))
    assert policy.train_loss and np.isfinite(policy.train_loss[-1])


def test_chunked_export_round_trips(demo_file, tmp_path):
    out = tmp_path / "chunked"
    export_lerobot(demo_file, out, chunks_size=1, data_files_size_in_mb=1e-6, video_files_size_in_mb=1e-6)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet") if "data" in p.parts)
    assert files == ["data/chunk-000/file-000.parquet", "data/chunk-001/file-000.parquet"]
    assert (out / "videos/observation.images.wrist/chunk-001/file-000.mp4").is_file()
    assert not (out / "meta/subtasks.parquet").exists()
    back = tmp_path / "back.hdf5"
    import_lerobot(out, back, episodes=[1])
    with DemoFile(demo_file) as a, DemoFile(back) as b:
        assert len(b) == 1 and np.array_equal(a[1].actions, b[0].actions) and b[0].phases is None


def test_av1_videos_as_lerobot_writes_them_import(demo_file, tmp_path):
    out = tmp_path / "av1"
    export_lerobot(demo_file, out, video=VideoSettings(codec="libsvtav1", crf=30), episodes=[0])
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == "av1"
    with av.open(str(out / "videos/observation.images.front/chunk-000/file-000.mp4")) as c:
        assert c.streams.video[0].codec_context.name in ("av1", "libdav1d")
    back = tmp_path / "av1.hdf5"
    import_lerobot(out, back)
    with DemoFile(demo_file) as a, DemoFile(back) as b:
        assert _psnr(a[0].obs["front_image"], b[0].obs["front_image"]) > 25.0


def _edit_info(root: Path, **changes) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info.update(changes)
    (root / "meta/info.json").write_text(json.dumps(info))


def test_bad_input_names_the_file_and_overwrites_nothing(exported, tmp_path):
    out = tmp_path / "out.hdf5"
    out.write_bytes(b"keep me")
    old = tmp_path / "v21"
    shutil.copytree(exported, old)
    _edit_info(old, codebase_version="v2.1")
    with pytest.raises(LeRobotFormatError, match=r"info\.json.*v2\.1"):
        import_lerobot(old, out, overwrite=True)
    novideo = tmp_path / "novideo"
    shutil.copytree(exported, novideo)
    (novideo / "videos/observation.images.wrist/chunk-000/file-000.mp4").unlink()
    with pytest.raises(LeRobotFormatError, match=r"wrist/chunk-000/file-000\.mp4: missing video file"):
        import_lerobot(novideo, out, overwrite=True)
    short = tmp_path / "short"
    shutil.copytree(exported, short)
    ep_path = short / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(ep_path)
    lengths = table.column("length").to_pylist()
    pq.write_table(table.set_column(table.column_names.index("length"), "length", pa.array([lengths[0] - 1, lengths[1] + 1])), ep_path)
    with pytest.raises(LeRobotFormatError, match=r"data/chunk-000/file-000\.parquet: episode 0 has \d+ rows"):
        import_lerobot(short, out, overwrite=True)
    cut = tmp_path / "cutvideo"
    shutil.copytree(exported, cut)
    front = cut / "videos/observation.images.front/chunk-000/file-000.mp4"
    with av.open(str(front)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    front.unlink()
    shard = Mp4Shard(front, 25, VideoSettings())
    shard.append(frames[:-3])  # the last episode loses its last 3 frames
    shard.close()
    with pytest.raises(LeRobotFormatError, match=r"front/chunk-000/file-000\.mp4: episode 1 has \d+ frames in the data but"):
        import_lerobot(cut, out, overwrite=True)
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["out.hdf5"]  # no temp debris
    with pytest.raises(OutputExistsError):
        import_lerobot(exported, out)


def test_export_never_leaves_a_partial_folder(demo_file, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(OutputExistsError):
        export_lerobot(demo_file, out)
    with pytest.raises(ValueError, match="spans end at step"):
        export_lerobot(demo_file, out, subtasks={"demo_0": [(0, 3, "a")], "demo_1": [(0, 3, "a")]}, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["ds"] and (out / "mine.txt").read_text() == "keep"


def test_cli_export_with_gripper_annotator_and_import(demo_file, tmp_path, capsys):
    from skillstack.cli import main

    out = tmp_path / "ds"
    assert main(["demos", "export", str(demo_file), "--format", "lerobot", str(out), "--annotate", "gripper"]) == 0
    subtasks = pq.read_table(out / "meta/subtasks.parquet").column("subtask").to_pylist()
    assert subtasks == ["gripper closed", "gripper open"]
    sub = pq.read_table(out / "data/chunk-000/file-000.parquet").column("subtask_index").to_numpy()
    assert set(sub.tolist()) == {0, 1}  # the expert closes the gripper on the cube and opens it again
    assert main(["demos", "import", str(out), "--format", "lerobot", str(tmp_path / "b.hdf5")]) == 0
    assert main(["demos", "import", str(out), "--format", "lerobot", str(tmp_path / "b.hdf5")]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_export_with_a_trained_segmenter_as_annotator(tmp_path):
    from segmentation import load_hdf5_episodes
    from segmentation.api import train_segmenter
    from skillstack.cli import main

    demos = tmp_path / "pp4.hdf5"
    record_demos(ENV, "expert", 4, demos, cameras=["front"], image_size=32, seed=0, progress=False, durable=False)
    seg = train_segmenter([demos], tmp_path / "seg", cameras=["front"], image_size=32, epochs=2, idm=False,
                          val_fraction=0.5, skill_types=2)
    out = tmp_path / "ds"
    assert main(["demos", "export", str(demos), "--format", "lerobot", str(out), "--annotate", f"segmenter:{tmp_path / 'seg'}"]) == 0
    names = pq.read_table(out / "meta/subtasks.parquet").column("subtask").to_pylist()
    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    labels = [names[i] for i in data.column("subtask_index").to_pylist()]
    expected = []
    for ep in load_hdf5_episodes(demos, ["front"], 32, proprio=seg.uses_proprio):
        for start, end, kind in seg.segment(ep).segments:
            expected += [f"skill type {kind}"] * (end - start)
    assert labels == expected


def test_real_robot_demos_without_sim_states_round_trip(tmp_path):
    from demos import DemoWriter, Episode, make_env_args

    rng = np.random.default_rng(0)
    path = tmp_path / "real.hdf5"
    with DemoWriter(path, make_env_args("real/panda"), durable=False) as w:
        for n in (12, 9):
            obs = {"joint_pos": rng.normal(size=(n + 1, 9)), "robot_state": rng.normal(size=(n + 1, 15)),
                   "front_image": rng.integers(0, 255, size=(n + 1, 16, 16, 3), dtype=np.uint8)}
            w.add_episode(Episode(actions=rng.normal(size=(n, 9)), rewards=np.zeros(n), dones=np.eye(n, dtype=np.int64)[-1],
                                  obs={k: v[:-1] for k, v in obs.items()}, next_obs={k: v[1:] for k, v in obs.items()},
                                  attrs={"rate_hz": 30.0, "source": "bag"}))
    out = tmp_path / "real_lerobot"
    export_lerobot(path, out)
    info = json.loads((out / "meta/info.json").read_text())
    assert info["fps"] == 30 and "sim_state" not in info["features"]
    assert info["features"]["observation.state"]["shape"] == [15]  # robot_state is the proprioception
    assert info["features"]["observation.joint_pos"]["shape"] == [9]
    back = tmp_path / "back.hdf5"
    import_lerobot(out, back)
    with DemoFile(path) as a, DemoFile(back) as b:
        assert b.env_id == "real/panda"
        for ea, eb in zip(a, b):
            assert eb.states is None and ea.attrs == eb.attrs
            for key in ("joint_pos", "robot_state"):
                assert np.array_equal(ea.obs[key], eb.obs[key]) and np.array_equal(ea.next_obs[key], eb.next_obs[key])
            assert np.array_equal(ea.actions, eb.actions)
