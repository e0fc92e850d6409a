"""Reading a local LeRobotDataset v3.0 folder into `Episode`s (pyarrow + PyAV, no lerobot package, no network).

`read_dataset(root)` checks the metadata up front (info.json, tasks, the episode table, that every
data and video file it names exists, that the lengths add up to `total_frames`); `episodes()`
then checks each episode's rows (count, frame_index, timestamp = frame_index / fps) and video
frames (one at `from_timestamp + timestamp` for every row, LeRobot's 1e-4 s tolerance) as it
reads them. Every error is a `LeRobotFormatError` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demos.format import IMAGE_SUFFIX, Episode, make_env_args
from demos.lerobot_meta import (
    EPISODES_DIR,
    SKILLSTACK_META_PATH,
    SUBTASKS_PATH,
    TASKS_PATH,
    LeRobotFormatError,
    column_numpy,
    read_index_table,
    read_info,
)
from demos.lerobot_video import TOLERANCE_S, decode_frames

__all__ = ["LeRobotReader", "read_dataset"]

IMAGE_KEY_PREFIX = "observation.images."
EPISODE_COLUMNS = ("episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index")
VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


@dataclass
class LeRobotReader:
    """A checked v3.0 folder: metadata in memory, episodes read on demand (see module doc)."""

    root: Path
    info: dict[str, Any]
    tasks: list[str]
    subtasks: list[str]
    rows: list[dict[str, Any]]
    env_args: dict[str, Any]
    file_attrs: dict[str, Any]
    obs_columns: dict[str, list[str]]
    camera_keys: dict[str, str]  # video feature -> obs/<cam>_image key
    episodes_file: Path
    _data: tuple[Path, Any, np.ndarray] | None = field(default=None, repr=False)
    _videos: dict[str, tuple[Path, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def cameras(self) -> list[str]:
        """Camera names as they appear in the HDF5 (`obs/<cam>_image`)."""
        return [v[: -len(IMAGE_SUFFIX)] for v in self.camera_keys.values()]

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    def data_path(self, row: dict[str, Any]) -> Path:
        return self.root / self.info["data_path"].format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])

    def video_path(self, row: dict[str, Any], key: str) -> Path:
        return self.root / self.info["video_path"].format(
            video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"])

    def episodes(self, which: Sequence[int] | None = None) -> Iterator[Episode]:
        """Episodes in order (all, or those whose episode_index is in `which`)."""
        wanted = None if which is None else {int(i) for i in which}
        if wanted is not None:
            known = {int(r["episode_index"]) for r in self.rows}
            if missing := sorted(wanted - known):
                raise KeyError(f"{self.episodes_file}: no episode(s) {missing}; the dataset has {len(known)}")
        for row in self.rows:
            if wanted is None or int(row["episode_index"]) in wanted:
                yield self._episode(row)

    # -- one episode --------------------------------------------------------------------------------
    def _rows(self, row: dict[str, Any]) -> tuple[Path, Any]:
        import pyarrow.parquet as pq

        path = self.data_path(row)
        if self._data is None or self._data[0] != path:
            try:
                table = pq.read_table(path)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
                raise LeRobotFormatError(path, f"cannot read parquet: {exc}") from None
            missing = [k for k, ft in self.info["features"].items() if ft["dtype"] != "video" and k not in table.column_names]
            if missing:
                raise LeRobotFormatError(path, f"missing column(s) {missing} declared in meta/info.json features")
            self._data = (path, table, table.column("episode_index").to_numpy())
        path, table, ep_col = self._data
        e = int(row["episode_index"])
        idx = np.nonzero(ep_col == e)[0]
        n = int(row["length"])
        if len(idx) != n:
            raise LeRobotFormatError(path, f"episode {e} has {len(idx)} rows, but meta/episodes says length {n}")
        return path, table.take(idx)

    def _column(self, table: Any, key: str) -> np.ndarray:
        ft = self.info["features"][key]
        shape = [int(s) for s in ft["shape"]]
        return column_numpy(table.column(key), ft["dtype"], shape if shape != [1] else [])

    def _frames(self, row: dict[str, Any], key: str, timestamps: np.ndarray) -> np.ndarray:
        path = self.video_path(row, key)
        cached = self._videos.get(key)
        if cached is None or cached[0] != path:
            try:
                frames, times = decode_frames(path)
            except ValueError as exc:
                raise LeRobotFormatError(path, str(exc).removeprefix(f"{path}: ")) from None
            except Exception as exc:  # noqa: BLE001 - PyAV raises its own error types for a bad file
                raise LeRobotFormatError(path, f"cannot decode video: {exc}") from None
            self._videos[key] = cached = (path, frames, times)
        _, frames, times = cached
        e = int(row["episode_index"])
        start, end = float(row[f"videos/{key}/from_timestamp"]), float(row[f"videos/{key}/to_timestamp"])
        inside = int(np.count_nonzero((times >= start - TOLERANCE_S) & (times < end - TOLERANCE_S)))
        if inside != len(timestamps):
            raise LeRobotFormatError(
                path, f"episode {e} has {len(timestamps)} frames in the data but {inside} video frames "
                      f"between {start:.4f} s and {end:.4f} s")
        query = start + timestamps.astype(np.float64)
        pos = np.clip(np.searchsorted(times, query), 1, len(times) - 1)
        nearest = np.where(np.abs(times[pos - 1] - query) <= np.abs(times[pos] - query), pos - 1, pos)
        if len(times) == 1:
            nearest = np.zeros(len(query), dtype=np.int64)
        off = np.abs(times[nearest] - query)
        if (bad := np.nonzero(off > TOLERANCE_S)[0]).size:
            raise LeRobotFormatError(path, f"episode {e} frame {int(bad[0])} (t={query[bad[0]]:.4f} s) has no video frame "
                                           f"within {TOLERANCE_S} s")
        out = frames[nearest]
        want = tuple(int(s) for s in self.info["features"][key]["shape"])
        if out.shape[1:] != want and out.shape[1:] != (want[1], want[2], want[0]):
            raise LeRobotFormatError(path, f"frames are {out.shape[1:]}, meta/info.json says {want}")
        return out

    def _episode(self, row: dict[str, Any]) -> Episode:
        data_path, table = self._rows(row)
        n = int(row["length"])
        e = int(row["episode_index"])
        frame_index = self._column(table, "frame_index").astype(np.int64)
        if not np.array_equal(frame_index, np.arange(n)):
            raise LeRobotFormatError(data_path, f"episode {e}: frame_index is not 0..{n - 1} in order")
        timestamps = self._column(table, "timestamp").astype(np.float64)
        if np.max(np.abs(timestamps - frame_index / self.fps)) > TOLERANCE_S + 1e-6 * n / self.fps:
            raise LeRobotFormatError(data_path, f"episode {e}: timestamps do not match frame_index / fps ({self.fps:g})")
        if "action" not in self.info["features"]:
            raise LeRobotFormatError(self.root / "meta/info.json", "has no 'action' feature (needed for demonstrations)")
        obs: dict[str, np.ndarray] = {}
        for key, cols in self.obs_columns.items():
            parts = [self._column(table, c).reshape(n, -1) for c in cols]
            obs[key] = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        for vkey, obs_key in self.camera_keys.items():
            obs[obs_key] = self._frames(row, vkey, timestamps)
        next_obs = {}
        for key, v in obs.items():
            final = row.get(f"skillstack/final_next_obs/{key}")
            last = np.asarray(final, dtype=v.dtype).reshape(v.shape[1:]) if final is not None else v[-1]
            next_obs[key] = np.concatenate((v[1:], last[None]))
        feats = self.info["features"]
        actions = self._column(table, "action").reshape(n, -1)
        rewards = self._column(table, "next.reward").astype(np.float64) if "next.reward" in feats else np.zeros(n)
        if "next.done" in feats:
            dones = self._column(table, "next.done").astype(np.int64)
        else:
            dones = np.zeros(n, dtype=np.int64)
            dones[-1] = 1
        states = self._column(table, "sim_state").reshape(n, -1) if "sim_state" in feats else None
        phases = None
        if self.subtasks and "subtask_index" in feats:
            phases = self._column(table, "subtask_index").astype(np.int32)
            if phases.min() < 0 or phases.max() >= len(self.subtasks):
                raise LeRobotFormatError(data_path, f"episode {e}: subtask_index outside meta/subtasks.parquet's {len(self.subtasks)}")
        attrs_text = row.get("skillstack/attrs")
        if attrs_text:
            attrs = json.loads(attrs_text)
        else:
            task_index = self._column(table, "task_index")
            attrs = {"source": "lerobot", "episode_index": e, "rate_hz": self.fps,
                     "task": self.tasks[int(task_index[0])] if len(self.tasks) > int(task_index[0]) else ""}
        return Episode(actions=actions, rewards=rewards, dones=dones, obs=obs, next_obs=next_obs, states=states,
                       phases=phases, phase_names=tuple(self.subtasks) if phases is not None else None,
                       model_file=row.get("skillstack/model_file") or None, attrs=attrs)


def _episode_rows(root: Path) -> tuple[Path, list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    files = sorted((root / EPISODES_DIR).glob("chunk-*/file-*.parquet"))
    if not files:
        raise LeRobotFormatError(root / EPISODES_DIR, "missing or empty: no chunk-*/file-*.parquet episode table")
    rows: list[dict[str, Any]] = []
    for path in files:
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001
            raise LeRobotFormatError(path, f"cannot read parquet: {exc}") from None
        keep = [c for c in table.column_names if not c.startswith("stats/")]
        rows += table.select(keep).to_pylist()
    rows.sort(key=lambda r: int(r.get("episode_index", -1)))
    return files[0], rows


def read_dataset(root: Path, env_id: str | None = None) -> LeRobotReader:
    """Open and check a v3.0 folder (see module doc); `env_id` overrides the env written to the HDF5."""
    root = Path(root)
    info = read_info(root)
    info_path = root / "meta/info.json"
    feats = info["features"]
    if images := [k for k, ft in feats.items() if ft["dtype"] == "image"]:
        raise LeRobotFormatError(info_path, f"image features stored in parquet {images} are not supported (videos only)")
    video_keys = [k for k, ft in feats.items() if ft["dtype"] == "video"]
    tasks = read_index_table(root / TASKS_PATH, "task")
    subtasks = read_index_table(root / SUBTASKS_PATH, "subtask") if (root / SUBTASKS_PATH).exists() else []
    if "subtask_index" in feats and not subtasks:
        raise LeRobotFormatError(root / SUBTASKS_PATH, "missing, but the data declares a subtask_index feature")
    episodes_file, rows = _episode_rows(root)
    need = list(EPISODE_COLUMNS) + [f"videos/{k}/{c}" for k in video_keys for c in VIDEO_COLUMNS]
    if missing := [c for c in need if c not in rows[0]]:
        raise LeRobotFormatError(episodes_file, f"missing column(s) {missing}")
    if len(rows) != int(info["total_episodes"]):
        raise LeRobotFormatError(info_path, f"total_episodes is {info['total_episodes']}, meta/episodes has {len(rows)} rows")
    total = sum(int(r["length"]) for r in rows)
    if total != int(info["total_frames"]):
        raise LeRobotFormatError(info_path, f"total_frames is {info['total_frames']}, the episode lengths add up to {total}")
    reader_paths = LeRobotReader(root, info, tasks, subtasks, rows, {}, {}, {}, {}, episodes_file)
    for r in rows:
        for path in [reader_paths.data_path(r)] + [reader_paths.video_path(r, k) for k in video_keys]:
            if not path.is_file():
                kind = "video" if path.suffix == ".mp4" else "data"
                raise LeRobotFormatError(path, f"missing {kind} file of episode {r['episode_index']}")
    meta_path = root / SKILLSTACK_META_PATH
    if meta_path.is_file():  # our own export: the exact mapping back
        meta = json.loads(meta_path.read_text())
        env_args = dict(meta["env_args"])
        obs_columns = {k: list(v) for k, v in meta["obs_columns"].items()}
        camera_keys = dict(meta["cameras"])
        file_attrs = {k: v for k, v in meta.get("file_attrs", {}).items() if k not in ("format", "format_version")}
    else:
        env_args = make_env_args(f"lerobot/{info.get('robot_type') or 'robot'}", {})
        obs_columns = {}
        if "observation.state" in feats:
            obs_columns["observation"] = ["observation.state"] + (
                ["observation.environment_state"] if "observation.environment_state" in feats else [])
        for k, ft in feats.items():
            if k.startswith("observation.") and ft["dtype"] != "video" and k not in ("observation.state", "observation.environment_state"):
                obs_columns[k.removeprefix("observation.").replace(".", "_")] = [k]
        camera_keys = {k: k.removeprefix(IMAGE_KEY_PREFIX).replace(".", "_") + IMAGE_SUFFIX for k in video_keys}
        file_attrs = {"source": f"lerobot:{root}", "lerobot_tasks": json.dumps(tasks)}
    if not obs_columns and not camera_keys:
        raise LeRobotFormatError(info_path, "has no observation features (observation.* or videos)")
    if env_id:
        env_args["env_name"] = env_id
    return LeRobotReader(root, info, tasks, subtasks, rows, env_args, file_attrs, obs_columns, camera_keys, episodes_file)
