"""Demonstrations to and from LeRobotDataset v3.0 folders (parquet + mp4), with pyarrow and PyAV.

    from demos.lerobot import export_lerobot, import_lerobot, phase_subtasks
    spans, names = phase_subtasks("pp.hdf5")              # or a segmenter's segments, see `skillstack demos`
    export_lerobot("pp.hdf5", "pp_lerobot/", subtasks=spans, subtask_names=names)
    import_lerobot("pp_lerobot/", "pp_back.hdf5")           # any local v3.0 folder, no network

How our HDF5 maps to the columns (layout and conventions in `demos.lerobot_meta`):

- `obs/observation` -> `observation.state` (the robot's proprioception, names from the env's
  observation layout) and `observation.environment_state` (the objects), split where the env's
  robot fields end; a real-robot import's `obs/robot_state` -> `observation.state`;
  every other low-dimensional `obs/<key>` -> `observation.<key>`; `obs/<cam>_image` ->
  the video `observation.images.<cam>`;
- `actions` -> `action`, `rewards` -> `next.reward`, `dones` -> `next.done` (LeRobot's names),
  `states` -> `sim_state` (the MuJoCo state, for exact resets; not an observation);
- skill boundaries -> `subtask_index` per frame and `meta/subtasks.parquet`;
- the env (`env_args`), which obs key went to which columns, each demo's attributes and its
  last `next_obs` row -> `meta/skillstack.json` and extra `skillstack/...` episode columns, so
  that importing our own export gives back actions, states and observations bit for bit
  (camera frames within the codec's loss; a demo's very last next-frame is its last frame).

Every dtype is kept (float64 stays float64). Writes are atomic: the folder is built in a
staging directory and swapped in (`common.atomic.staged_dir`), the HDF5 through `DemoWriter`
on a temp file renamed into place; on any error nothing at the destination changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_path, atomic_write_json, staged_dir
from demos.errors import OutputExistsError
from demos.format import IMAGE_SUFFIX, DemoFile, Episode
from demos.lerobot_meta import (
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_FEATURES,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    EPISODES_PATH,
    INFO_PATH,
    SKILLSTACK_META_PATH,
    STATS_PATH,
    SUBTASKS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    LeRobotFormatError,
    arrow_column,
    chunk_path,
    feature_stats,
    image_histogram,
    image_stats,
    write_index_table,
)
from demos.lerobot_video import Mp4Shard, VideoSettings

__all__ = [
    "LeRobotExport",
    "LeRobotFormatError",
    "LeRobotImport",
    "Spans",
    "VideoSettings",
    "export_lerobot",
    "import_lerobot",
    "phase_subtasks",
]

# demo name -> (start, end exclusive, subtask name) covering every frame of the demo
Spans = Mapping[str, Sequence[tuple[int, int, str]]]
IMAGE_KEY_PREFIX = "observation.images."
MB = 1024 * 1024


@dataclass
class LeRobotExport:
    """What `export_lerobot` wrote: the folder, episodes, frames, video keys, subtask names, time, bytes."""

    path: Path
    episodes: int
    frames: int
    video_keys: list[str]
    subtasks: list[str]
    seconds: float
    bytes: int

    @property
    def frames_per_second(self) -> float:
        """Export throughput (frames of all cameras together count once per time step)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LeRobotImport:
    """What `import_lerobot` wrote: the HDF5 file, episodes, frames, cameras, time."""

    path: Path
    episodes: int
    frames: int
    cameras: list[str]
    seconds: float
    env_id: str
    phase_names: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        """Import throughput in time steps per second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def phase_subtasks(path: str | Path) -> tuple[dict[str, list[tuple[int, int, str]]], list[str]]:
    """Subtask spans from the scripted expert's phase labels stored in the file (`phases`), and the
    names in the file's phase order. Demos without phases get no spans."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    names: list[str] = []
    with DemoFile(path) as f:
        for name in f.demo_names:
            ep = f.episode(name, images=False)
            if ep.phases is None or not ep.phase_names:
                continue
            for n in ep.phase_names:
                if n not in names:
                    names.append(n)
            p = np.asarray(ep.phases)
            cuts = [0, *(np.nonzero(p[1:] != p[:-1])[0] + 1).tolist(), len(p)]
            spans[name] = [(int(a), int(b), ep.phase_names[int(p[a])]) for a, b in zip(cuts[:-1], cuts[1:])]
    return spans, names


# -- export ---------------------------------------------------------------------------------------------
def _state_split(env_id: str, env_kwargs: Mapping[str, Any], dim: int) -> tuple[int, list[str]]:
    """Robot part of the env observation (its size, and a name per dimension of the whole vector).

    Builds the env once to read its observation layout; an env that cannot be built (a real-robot
    id) keeps the whole vector as `observation.state` with plain names."""
    try:
        import envs
        from envs.observation import robot_fields

        env = envs.make(env_id, **dict(env_kwargs))
    except Exception:  # noqa: BLE001 - unknown or unbuildable env: no layout to read
        return dim, [f"observation_{i}" for i in range(dim)]
    try:
        u = env.unwrapped
        robot = {n for n, _ in robot_fields(u.robot.n_arm, u.obs_layout)}
        names: list[str] = []
        robot_dim = 0
        for fname, sl in sorted(u.obs_builder.layout.items(), key=lambda kv: kv[1].start):
            size = sl.stop - sl.start
            names += [fname] if size == 1 else [f"{fname}_{i}" for i in range(size)]
            if fname in robot:
                robot_dim = max(robot_dim, sl.stop)
    finally:
        env.close()
    if len(names) != dim:
        return dim, [f"observation_{i}" for i in range(dim)]
    return robot_dim, names


def _check_spans(spans: Sequence[tuple[int, int, str]], n: int, demo: str) -> None:
    pos = 0
    for start, end, name in spans:
        if start != pos or end <= start:
            raise ValueError(f"subtasks of {demo}: span ({start}, {end}, {name!r}) does not continue at step {pos}")
        pos = end
    if pos != n:
        raise ValueError(f"subtasks of {demo}: spans end at step {pos}, the demo has {n} steps")


class _Exporter:
    """Builds one export inside a staging folder (see `export_lerobot`)."""

    def __init__(self, root: Path, fps: int, video: VideoSettings, chunks_size: int, data_mb: float, video_mb: float):
        self.root, self.fps, self.video = root, fps, video
        self.chunks_size, self.data_mb, self.video_mb = chunks_size, data_mb, video_mb
        self.data_file = 0
        self.data_tables: list[Any] = []
        self.data_bytes = 0
        self.shards: dict[str, Mp4Shard] = {}
        self.shard_index: dict[str, int] = {}

    def add_data(self, table: Any) -> tuple[int, int]:
        """Append one episode's rows; returns (chunk_index, file_index) of the data file holding them."""
        where = (self.data_file // self.chunks_size, self.data_file % self.chunks_size)
        self.data_tables.append(table)
        self.data_bytes += table.nbytes
        if self.data_bytes >= self.data_mb * MB:  # like LeRobot: a file closes once it reached the size
            self.flush_data()
        return where

    def flush_data(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.data_tables:
            return
        path = self.root / chunk_path(DATA_PATH, self.data_file, self.chunks_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        # one row group per episode, as LeRobot writes them (cheap per-episode reads)
        with pq.ParquetWriter(path, self.data_tables[0].schema) as w:
            for t in self.data_tables:
                w.write_table(pa.Table.from_batches(t.to_batches(), schema=self.data_tables[0].schema))
        self.data_tables, self.data_bytes = [], 0
        self.data_file += 1

    def add_video(self, key: str, frames: np.ndarray) -> dict[str, Any]:
        """Append one episode's frames of `key`; returns its `videos/<key>/...` episode columns."""
        index = self.shard_index.setdefault(key, 0)
        shard = self.shards.get(key)
        if shard is None:
            path = self.root / chunk_path(VIDEO_PATH, index, self.chunks_size, video_key=key)
            shard = self.shards[key] = Mp4Shard(path, self.fps, self.video)
        start, end = shard.append(frames)
        cols = {f"videos/{key}/chunk_index": index // self.chunks_size, f"videos/{key}/file_index": index % self.chunks_size,
                f"videos/{key}/from_timestamp": start, f"videos/{key}/to_timestamp": end}
        if shard.path.exists() and shard.path.stat().st_size >= self.video_mb * MB:
            shard.close()
            del self.shards[key]
            self.shard_index[key] = index + 1
        return cols

    def close(self) -> None:
        self.flush_data()
        for shard in self.shards.values():
            shard.close()
        self.shards.clear()

    def abort(self) -> None:
        for shard in self.shards.values():
            shard.abort()


def export_lerobot(
    demo_file: str | Path,
    out: str | Path,
    *,
    task: str | None = None,
    subtasks: Spans | None = None,
    subtask_names: Sequence[str] | None = None,
    episodes: Sequence[int] | None = None,
    video: VideoSettings | None = None,
    fps: int | None = None,
    robot_type: str | None = None,
    chunks_size: int = DEFAULT_CHUNK_SIZE,
    data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB,
    video_files_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    overwrite: bool = False,
) -> LeRobotExport:
    """Write the demos of `demo_file` (all, or `episodes` by index) as a LeRobotDataset v3.0 folder `out`.

    `task` is the natural-language task of every episode (default: the env id). `subtasks` maps
    demo names to spans covering every step (e.g. `phase_subtasks(file)` or a segmenter's
    segments); they become the per-frame `subtask_index` column and `meta/subtasks.parquet`
    (names in `subtask_names` order when given, else first seen). `fps` defaults to the demos'
    `rate_hz` attribute or the envs' control rate. An existing `out` is an `OutputExistsError`
    unless overwrite=True; the folder appears complete or not at all.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite (overwrite=True) to replace it")
    video = video or VideoSettings()
    with DemoFile(demo_file) as f:
        names = f.demo_names if episodes is None else [f.demo_name(int(i)) for i in episodes]
        if not names:
            raise ValueError(f"{f.path}: holds no demos to export")
        first = f.episode(names[0], images=False)
        if fps is None:
            rate = first.attrs.get("rate_hz")
            if rate:
                fps = int(round(float(rate)))
            else:
                from envs.base import PandaEnv

                fps = int(round(1.0 / float(PandaEnv.control_dt)))
        task = task or f.env_id
        spans = dict(subtasks or {})
        sub_names = list(subtask_names or [])
        for demo in names:
            for _, _, n in spans.get(demo, ()):
                if n not in sub_names:
                    if subtask_names is not None:
                        raise ValueError(f"subtasks of {demo}: {n!r} is not in subtask_names {list(subtask_names)}")
                    sub_names.append(n)
        if spans and (missing := [d for d in names if d not in spans]):
            raise ValueError(f"subtasks given for some demos but not for {missing[:5]}")
        obs_dim = first.obs["observation"].shape[1] if "observation" in first.obs else 0
        robot_dim, obs_names = _state_split(f.env_id, f.env_kwargs, obs_dim) if obs_dim else (0, [])
        obs_map: dict[str, list[str]] = {}
        for key in first.obs:
            if key == "observation":
                obs_map[key] = ["observation.state"] + (["observation.environment_state"] if robot_dim < obs_dim else [])
            elif key == "robot_state" and "observation" not in first.obs:
                obs_map[key] = ["observation.state"]
            elif not key.endswith(IMAGE_SUFFIX):
                obs_map[key] = [f"observation.{key}"]
        cameras = [k[: -len(IMAGE_SUFFIX)] for k in f.obs_keys(names[0]) if k.endswith(IMAGE_SUFFIX)]
        features: dict[str, dict[str, Any]] = {}
        stats_frames: dict[str, list[np.ndarray]] = {}
        image_hist: dict[str, np.ndarray] = {}
        episode_rows: list[dict[str, Any]] = []
        final_next: dict[str, list[list[float]]] = {}
        index = 0
        with staged_dir(out) as root:
            exporter = _Exporter(root, fps, video, chunks_size, data_files_size_in_mb, video_files_size_in_mb)
            try:
                for ep_index, demo in enumerate(names):
                    ep = f.episode(demo)
                    n = ep.num_samples
                    if demo in spans:
                        _check_spans(spans[demo], n, demo)
                    cols: dict[str, np.ndarray] = {}
                    for key, targets in obs_map.items():
                        if key not in ep.obs:
                            raise ValueError(f"{f.path}: {demo} has no obs/{key} (the first demo has it)")
                        v = np.asarray(ep.obs[key]).reshape(n, -1)
                        if key == "observation":
                            cols["observation.state"] = v[:, :robot_dim]
                            if len(targets) == 2:
                                cols["observation.environment_state"] = v[:, robot_dim:]
                        else:
                            cols[targets[0]] = v
                        final_next.setdefault(key, []).append(np.asarray(ep.next_obs[key][-1]).reshape(-1).tolist())
                    cols["action"] = np.asarray(ep.actions).reshape(n, -1)
                    cols["next.reward"] = np.asarray(ep.rewards)
                    cols["next.done"] = np.asarray(ep.dones).astype(bool)
                    if ep.states is not None:
                        cols["sim_state"] = np.asarray(ep.states)
                    frame_index = np.arange(n, dtype=np.int64)
                    cols["timestamp"] = (frame_index / fps).astype(np.float32)
                    cols["frame_index"] = frame_index
                    cols["episode_index"] = np.full(n, ep_index, dtype=np.int64)
                    cols["index"] = np.arange(index, index + n, dtype=np.int64)
                    cols["task_index"] = np.zeros(n, dtype=np.int64)
                    if spans:
                        sub = np.empty(n, dtype=np.int64)
                        for a, b, name in spans[demo]:
                            sub[a:b] = sub_names.index(name)
                        cols["subtask_index"] = sub
                    if not features:
                        features = _features(cols, obs_names, robot_dim, cameras, ep, fps, video)
                    table = pa.table({k: arrow_column(v) for k, v in cols.items()})
                    chunk, file = exporter.add_data(table)
                    row: dict[str, Any] = {
                        "episode_index": ep_index, "tasks": [task], "length": n,
                        "data/chunk_index": chunk, "data/file_index": file,
                        "dataset_from_index": index, "dataset_to_index": index + n,
                    }
                    for cam in cameras:
                        key = IMAGE_KEY_PREFIX + cam
                        frames = ep.obs.get(cam + IMAGE_SUFFIX)
                        if frames is None:
                            raise ValueError(f"{f.path}: {demo} has no camera {cam!r} (the first demo has it)")
                        row.update(exporter.add_video(key, frames))
                        cols[key] = frames
                    row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
                    for k, v in cols.items():
                        if k.startswith(IMAGE_KEY_PREFIX):
                            hist = image_histogram(v)
                            ep_stats = image_stats(hist, n)
                            image_hist[k] = image_hist.get(k, 0) + hist
                        else:
                            ep_stats = feature_stats(v)
                            stats_frames.setdefault(k, []).append(v)
                        row.update({f"stats/{k}/{s}": val for s, val in ep_stats.items()})
                    row["skillstack/demo"] = demo
                    attrs = {k: v for k, v in ep.attrs.items() if k != "num_samples"}
                    row["skillstack/attrs"] = json.dumps(attrs)
                    row["skillstack/model_file"] = ep.model_file or ""
                    episode_rows.append(row)
                    index += n
                exporter.close()
            except BaseException:
                exporter.abort()
                raise
            # -- metadata -----------------------------------------------------------------------
            for key, rows in final_next.items():
                for row, value in zip(episode_rows, rows):
                    row[f"skillstack/final_next_obs/{key}"] = value
            ep_path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
            ep_path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(episode_rows), ep_path)
            write_index_table(root / TASKS_PATH, [task], "task")
            if spans:
                write_index_table(root / SUBTASKS_PATH, sub_names, "subtask")
            stats = {k: feature_stats(np.concatenate(v)) for k, v in stats_frames.items()}
            stats.update({k: image_stats(h, index) for k, h in image_hist.items()})
            atomic_write_json(root / STATS_PATH, stats, indent=4)
            info = {
                "codebase_version": CODEBASE_VERSION,
                "robot_type": robot_type,
                "total_episodes": len(names),
                "total_frames": index,
                "total_tasks": 1,
                "chunks_size": chunks_size,
                "data_files_size_in_mb": data_files_size_in_mb,
                "video_files_size_in_mb": video_files_size_in_mb,
                "fps": fps,
                "splits": {"train": f"0:{len(names)}"},
                "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if cameras else None,
                "features": features,
            }
            atomic_write_json(root / INFO_PATH, info, indent=4)
            atomic_write_json(root / SKILLSTACK_META_PATH, {
                "source": str(f.path), "env_args": f.env_args, "file_attrs": f.attrs, "obs_columns": obs_map,
                "cameras": {IMAGE_KEY_PREFIX + c: c + IMAGE_SUFFIX for c in cameras},
            }, default=str)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return LeRobotExport(out, len(names), index, [IMAGE_KEY_PREFIX + c for c in cameras], sub_names,
                         time.perf_counter() - t0, size)


def _features(cols: Mapping[str, np.ndarray], obs_names: list[str], robot_dim: int, cameras: list[str],
              ep: Episode, fps: int, video: VideoSettings) -> dict[str, dict[str, Any]]:
    """info.json `features` for the columns of the first episode and the cameras."""
    out: dict[str, dict[str, Any]] = {}
    for key, v in cols.items():
        if key in DEFAULT_FEATURES:
            continue
        a = np.asarray(v)
        names: list[str] | None = None
        if key == "observation.state" and obs_names:
            names = obs_names[:robot_dim]
        elif key == "observation.environment_state":
            names = obs_names[robot_dim:]
        elif a.ndim == 2:
            names = [f"{key.split('.')[-1]}_{i}" for i in range(a.shape[1])]
        out[key] = {"dtype": str(a.dtype), "shape": [int(a.shape[1])] if a.ndim == 2 else [1], "names": names}
    for cam in cameras:
        h, w = np.asarray(ep.obs[cam + IMAGE_SUFFIX]).shape[1:3]
        out[IMAGE_KEY_PREFIX + cam] = {"dtype": "video", "shape": [int(h), int(w), 3],
                                       "names": ["height", "width", "channels"], "info": video.info(fps, int(h), int(w))}
    out.update({k: dict(v) for k, v in DEFAULT_FEATURES.items()})
    return out


def import_lerobot(
    src: str | Path,
    out: str | Path,
    *,
    env_id: str | None = None,
    episodes: Sequence[int] | None = None,
    overwrite: bool = False,
) -> LeRobotImport:
    """Read a local LeRobotDataset v3.0 folder into our demonstration HDF5 (with camera frames).

    The metadata is checked first (info.json version and fields, the episode table, every data and
    video file it names), then each episode's rows and video frames as they are read; any error
    names the offending file and leaves `out` untouched (the HDF5 is written to a temp file and
    renamed into place only when every episode is in). `env_id`
    overrides the env recorded by our own export (default for other datasets: "lerobot/<robot_type>").
    """
    from demos.lerobot_read import read_dataset

    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite (overwrite=True) to replace it")
    if out.is_dir():
        raise OutputExistsError(f"{out}: is a directory, expected a file path for the demonstrations")
    from demos.writer import DemoWriter

    reader = read_dataset(Path(src), env_id=env_id)
    with atomic_path(out, suffix=".hdf5") as tmp:
        with DemoWriter(tmp, reader.env_args, overwrite=True, attrs=reader.file_attrs, durable=False) as w:
            frames = 0
            count = 0
            for ep in reader.episodes(episodes):
                w.add_episode(ep)
                frames += ep.num_samples
                count += 1
    return LeRobotImport(out, count, frames, reader.cameras, time.perf_counter() - t0,
                         str(reader.env_args["env_name"]), list(reader.subtasks))
