"""Demonstrations: robomimic-compatible HDF5 files, recording, replay, ROS 2 bag import and
LeRobotDataset v3 export/import.

Public API (layer 5, see docs/architecture.md):

- `DemoFile(path, expected_env=None)`: validated reader; `Episode`: one demo in memory.
- `DemoWriter(path, env_args)`: crash-safe writer; `make_env_args(env_id, env_kwargs)`.
- `record_demos(env_id, policy, episodes, out, ...)`: roll out a policy and record.
- `replay(path, mode="states"|"actions", ...)`: play a file back, measure divergence.
- `import_bag(bags, out, ...)`: convert ROS 2 bags (MCAP or sqlite3) to the same layout.
- `export_lerobot(demo, out_dir, ...)` / `import_lerobot(folder, out, ...)`: LeRobotDataset
  v3.0 folders (parquet + mp4) to and from our HDF5.
- `joint_trajectory(episode)`: the robot's joint positions of a demo (sim or real), e.g. to
  send a recorded motion to the robot.

Heavy pieces (envs, rosbags, OpenCV, pyarrow, PyAV) are imported when first used.
"""

from __future__ import annotations

from typing import Any

from demos.errors import (
    BagImportError,
    DemoError,
    DemoFileCorruptError,
    DemoFileError,
    DemoLayoutError,
    EnvMismatchError,
    OutputExistsError,
    UnknownPolicyError,
)
from demos.format import DemoFile, Episode, make_env_args
from demos.writer import DemoWriter

__all__ = [
    "BagImportError",
    "DemoError",
    "DemoFile",
    "DemoFileCorruptError",
    "DemoFileError",
    "DemoLayoutError",
    "DemoWriter",
    "EnvMismatchError",
    "Episode",
    "EpisodeReplay",
    "JointTrajectory",
    "OutputExistsError",
    "RecordResult",
    "ReplayDivergenceWarning",
    "ReplayResult",
    "UnknownPolicyError",
    "export_lerobot",
    "import_bag",
    "import_lerobot",
    "joint_trajectory",
    "make_env_args",
    "record_demos",
    "replay",
]

_LAZY = {
    "record_demos": "demos.record",
    "RecordResult": "demos.record",
    "replay": "demos.playback",
    "ReplayResult": "demos.playback",
    "EpisodeReplay": "demos.playback",
    "ReplayDivergenceWarning": "demos.playback",
    "import_bag": "demos.bag",
    "export_lerobot": "demos.lerobot",
    "import_lerobot": "demos.lerobot",
    "JointTrajectory": "demos.trajectory",
    "joint_trajectory": "demos.trajectory",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'demos' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
