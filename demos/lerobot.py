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

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.atomic import atomic_path, staged_dir
from demos.errors import OutputExistsError
from demos.format import DemoFile, Episode
from demos.lerobot_meta import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    LeRobotFormatError,
)
from demos.lerobot_video import VideoSettings
from demos.lerobot_write import DatasetWriter, Spans, column_plan, subtask_table

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
    `rate_hz` attribute or the envs' control rate. `chunks_size` and the `*_size_in_mb` limits
    are LeRobot's sharding settings. An existing `out` is an `OutputExistsError` unless
    overwrite=True; the folder appears complete or not at all.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite (overwrite=True) to replace it")
    spans = dict(subtasks or {})
    with DemoFile(demo_file) as f:
        names = f.demo_names if episodes is None else [f.demo_name(int(i)) for i in episodes]
        if not names:
            raise ValueError(f"{f.path}: holds no demos to export")
        first = f.episode(names[0], images=False)
        plan = column_plan(f, first, names[0])
        with staged_dir(out) as root:
            writer = DatasetWriter(root, plan, fps=fps or _default_fps(first), task=task or f.env_id, spans=spans,
                                   subtasks=subtask_table(names, spans, subtask_names), video=video or VideoSettings(),
                                   chunks_size=chunks_size, data_mb=data_files_size_in_mb, video_mb=video_files_size_in_mb)
            try:
                for demo in names:
                    try:
                        writer.add_episode(demo, f.episode(demo))
                    except ValueError as exc:
                        raise ValueError(f"{f.path}: {exc}") from None
                writer.close()
            except BaseException:
                writer.abort()
                raise
            writer.write_meta(robot_type=robot_type,
                              ours={"source": str(f.path), "env_args": f.env_args, "file_attrs": f.attrs})
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return LeRobotExport(out, len(names), writer.frames, plan.video_keys, writer.subtasks, time.perf_counter() - t0, size)


def _default_fps(first: Episode) -> int:
    """The demos' `rate_hz` (real-robot imports) or the envs' control rate (25 Hz)."""
    rate = first.attrs.get("rate_hz")
    if rate:
        return int(round(float(rate)))
    from envs.base import PandaEnv

    return int(round(1.0 / float(PandaEnv.control_dt)))


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
