"""Writing a LeRobotDataset v3.0 folder: the column plan, data/video sharding, episode rows, metadata.

Used by `demos.lerobot.export_lerobot` (the public entry point, which documents the mapping);
`DatasetWriter` works inside a staging folder that the caller swaps into place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_write_json
from demos.format import IMAGE_SUFFIX, DemoFile, Episode
from demos.lerobot_meta import (
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    INFO_PATH,
    SKILLSTACK_META_PATH,
    STATS_PATH,
    SUBTASKS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    arrow_column,
    chunk_path,
    feature_stats,
    image_histogram,
    image_stats,
    write_index_table,
)
from demos.lerobot_video import Mp4Shard, VideoSettings

__all__ = ["ColumnPlan", "DatasetWriter", "column_plan", "subtask_table"]

IMAGE_KEY_PREFIX = "observation.images."
MB = 1024 * 1024
# demo name -> (start, end exclusive, subtask name) covering every frame of the demo
Spans = Mapping[str, Sequence[tuple[int, int, str]]]


@dataclass
class ColumnPlan:
    """Which obs keys go to which columns (the same for every demo of a file)."""

    obs_columns: dict[str, list[str]]  # obs key -> its column(s); "observation" splits into state + environment_state
    robot_dim: int  # columns of obs/observation that are the robot's (observation.state)
    obs_names: list[str]  # a name per dimension of obs/observation
    cameras: list[str]

    @property
    def video_keys(self) -> list[str]:
        return [IMAGE_KEY_PREFIX + c for c in self.cameras]


def column_plan(f: DemoFile, first: Episode, first_name: str) -> ColumnPlan:
    """The plan for the demos of `f`, from its first exported demo (loaded without images)."""
    obs_dim = first.obs["observation"].shape[1] if "observation" in first.obs else 0
    robot_dim, obs_names = _state_split(f.env_id, f.env_kwargs, obs_dim) if obs_dim else (0, [])
    obs_columns: dict[str, list[str]] = {}
    for key in first.obs:
        if key == "observation":
            obs_columns[key] = ["observation.state"] + (["observation.environment_state"] if robot_dim < obs_dim else [])
        elif key == "robot_state" and "observation" not in first.obs:
            obs_columns[key] = ["observation.state"]
        elif not key.endswith(IMAGE_SUFFIX):
            obs_columns[key] = [f"observation.{key}"]
    cameras = [k[: -len(IMAGE_SUFFIX)] for k in f.obs_keys(first_name) if k.endswith(IMAGE_SUFFIX)]
    return ColumnPlan(obs_columns, robot_dim, obs_names, cameras)


def subtask_table(names: Sequence[str], spans: Spans, order: Sequence[str] | None) -> list[str]:
    """Subtask names for meta/subtasks.parquet: `order` when given (every span's name must be in it),
    else in order of first appearance; every exported demo needs spans once any has them."""
    table = list(order or [])
    for demo in names:
        for _, _, n in spans.get(demo, ()):
            if n not in table:
                if order is not None:
                    raise ValueError(f"subtasks of {demo}: {n!r} is not in subtask_names {list(order)}")
                table.append(n)
    if spans and (missing := [d for d in names if d not in spans]):
        raise ValueError(f"subtasks given for some demos but not for {missing[:5]}")
    return table


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


class DatasetWriter:
    """Builds one dataset inside a staging folder: `add_episode` per demo, `close`, then `write_meta`.

    Data rows and video frames go to the current `file-FFF` of their kind until it reaches its size
    limit (LeRobot's rule: a file closes once it is at least that big), then the next file; a chunk
    folder holds `chunks_size` files.
    """

    def __init__(self, root: Path, plan: ColumnPlan, *, fps: int, task: str, spans: Spans, subtasks: list[str],
                 video: VideoSettings, chunks_size: int, data_mb: float, video_mb: float):
        self.root, self.plan, self.fps, self.task, self.video = root, plan, fps, task, video
        self.spans, self.subtasks = spans, subtasks
        self.chunks_size, self.data_mb, self.video_mb = chunks_size, data_mb, video_mb
        self.frames = 0
        self.features: dict[str, dict[str, Any]] = {}
        self.episode_rows: list[dict[str, Any]] = []
        self._stats_values: dict[str, list[np.ndarray]] = {}
        self._image_hist: dict[str, np.ndarray] = {}
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
        """Stop the encoders after an error (the staging folder is deleted by the caller)."""
        for shard in self.shards.values():
            shard.abort()

    # -- one episode ---------------------------------------------------------------------------------
    def columns(self, demo: str, ep: Episode, ep_index: int) -> dict[str, np.ndarray]:
        """The frame columns of one demo (low-dimensional features and the default ones)."""
        n = ep.num_samples
        plan = self.plan
        cols: dict[str, np.ndarray] = {}
        for key, targets in plan.obs_columns.items():
            if key not in ep.obs:
                raise ValueError(f"{demo} has no obs/{key} (the first demo has it)")
            v = np.asarray(ep.obs[key]).reshape(n, -1)
            if key == "observation":
                cols["observation.state"] = v[:, : plan.robot_dim]
                if len(targets) == 2:
                    cols["observation.environment_state"] = v[:, plan.robot_dim :]
            else:
                cols[targets[0]] = v
        cols["action"] = np.asarray(ep.actions).reshape(n, -1)
        cols["next.reward"] = np.asarray(ep.rewards)
        cols["next.done"] = np.asarray(ep.dones).astype(bool)
        if ep.states is not None:
            cols["sim_state"] = np.asarray(ep.states)
        frame_index = np.arange(n, dtype=np.int64)
        cols["timestamp"] = (frame_index / self.fps).astype(np.float32)
        cols["frame_index"] = frame_index
        cols["episode_index"] = np.full(n, ep_index, dtype=np.int64)
        cols["index"] = np.arange(self.frames, self.frames + n, dtype=np.int64)
        cols["task_index"] = np.zeros(n, dtype=np.int64)
        if self.spans:
            _check_spans(self.spans[demo], n, demo)
            sub = np.empty(n, dtype=np.int64)
            for a, b, name in self.spans[demo]:
                sub[a:b] = self.subtasks.index(name)
            cols["subtask_index"] = sub
        return cols

    def add_episode(self, demo: str, ep: Episode) -> None:
        """Write one demo's rows and frames and keep its row of the episode table."""
        import pyarrow as pa

        ep_index, n = len(self.episode_rows), ep.num_samples
        cols = self.columns(demo, ep, ep_index)
        if not self.features:
            self.features = _features(cols, self.plan, ep, self.fps, self.video)
        chunk, file = self.add_data(pa.table({k: arrow_column(v) for k, v in cols.items()}))
        row: dict[str, Any] = {
            "episode_index": ep_index, "tasks": [self.task], "length": n,
            "data/chunk_index": chunk, "data/file_index": file,
            "dataset_from_index": self.frames, "dataset_to_index": self.frames + n,
        }
        for cam, key in zip(self.plan.cameras, self.plan.video_keys):
            frames = ep.obs.get(cam + IMAGE_SUFFIX)
            if frames is None:
                raise ValueError(f"{demo} has no camera {cam!r} (the first demo has it)")
            row.update(self.add_video(key, frames))
            cols[key] = frames
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
        for k, v in cols.items():
            if k.startswith(IMAGE_KEY_PREFIX):
                hist = image_histogram(v)
                ep_stats = image_stats(hist, n)
                self._image_hist[k] = self._image_hist.get(k, 0) + hist
            else:
                ep_stats = feature_stats(v)
                self._stats_values.setdefault(k, []).append(v)
            row.update({f"stats/{k}/{s}": val for s, val in ep_stats.items()})
        # ours, for an exact import: the demo's name, attributes, model and last next-observation
        row["skillstack/demo"] = demo
        row["skillstack/attrs"] = json.dumps({k: v for k, v in ep.attrs.items() if k != "num_samples"})
        row["skillstack/model_file"] = ep.model_file or ""
        for key in self.plan.obs_columns:
            row[f"skillstack/final_next_obs/{key}"] = np.asarray(ep.next_obs[key][-1]).reshape(-1).tolist()
        self.episode_rows.append(row)
        self.frames += n

    # -- metadata --------------------------------------------------------------------------------------
    def write_meta(self, *, robot_type: str | None, ours: dict[str, Any]) -> None:
        """meta/: episodes table, tasks, subtasks, stats, info.json, and our skillstack.json (`ours`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        root = self.root
        ep_path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        ep_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.episode_rows), ep_path)
        write_index_table(root / TASKS_PATH, [self.task], "task")
        if self.spans:
            write_index_table(root / SUBTASKS_PATH, self.subtasks, "subtask")
        stats = {k: feature_stats(np.concatenate(v)) for k, v in self._stats_values.items()}
        stats.update({k: image_stats(h, self.frames) for k, h in self._image_hist.items()})
        atomic_write_json(root / STATS_PATH, stats, indent=4)
        episodes = len(self.episode_rows)
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type,
            "total_episodes": episodes,
            "total_frames": self.frames,
            "total_tasks": 1,
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": self.data_mb,
            "video_files_size_in_mb": self.video_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{episodes}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.plan.cameras else None,
            "features": self.features,
        }
        atomic_write_json(root / INFO_PATH, info, indent=4)
        ours = {**ours, "obs_columns": self.plan.obs_columns,
                "cameras": {k: c + IMAGE_SUFFIX for c, k in zip(self.plan.cameras, self.plan.video_keys)}}
        atomic_write_json(root / SKILLSTACK_META_PATH, ours, default=str)


def _features(cols: Mapping[str, np.ndarray], plan: ColumnPlan, ep: Episode, fps: int,
              video: VideoSettings) -> dict[str, dict[str, Any]]:
    """info.json `features` for the columns of the first episode and the cameras."""
    obs_names, robot_dim, cameras = plan.obs_names, plan.robot_dim, plan.cameras
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
