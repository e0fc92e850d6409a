"""LeRobotDataset v3.0 layout: paths, info.json, index tables (tasks, subtasks), statistics, arrow columns.

What we follow (huggingface/lerobot, `src/lerobot/datasets/utils.py`, `io_utils.py`, `compute_stats.py`
and `docs/source/lerobot-dataset-v3.mdx`, codebase_version "v3.0"; subtasks as added in lerobot PR #2860)::

    meta/info.json                              codebase_version, fps, features, path templates, totals
    meta/stats.json                             per feature: min max mean std count q01 q10 q50 q90 q99
    meta/tasks.parquet                          task_index (int64), index column "task" (str)
    meta/subtasks.parquet                       subtask_index (int64), index column "subtask" (str)
    meta/episodes/chunk-CCC/file-FFF.parquet    one row per episode
    data/chunk-CCC/file-FFF.parquet             one row per frame, many episodes per file
    videos/<video_key>/chunk-CCC/file-FFF.mp4   many episodes per file

LeRobot writes the two index tables with pandas (`DataFrame.to_parquet`, the index named "task" /
"subtask"); pandas is not a dependency here, so we write the same columns and the same `pandas`
schema metadata with pyarrow, and `pd.read_parquet` gives LeRobot's DataFrame back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demos.errors import DemoFileError

__all__ = [
    "CODEBASE_VERSION",
    "DEFAULT_FEATURES",
    "LeRobotFormatError",
    "feature_stats",
    "image_histogram",
    "image_stats",
    "read_index_table",
    "read_info",
    "write_index_table",
]

CODEBASE_VERSION = "v3.0"
DEFAULT_CHUNK_SIZE = 1000  # files per chunk folder
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
SUBTASKS_PATH = "meta/subtasks.parquet"
EPISODES_DIR = "meta/episodes"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"
# Our own extras (env_args, how obs keys map to columns); LeRobot ignores files it does not know.
SKILLSTACK_META_PATH = "meta/skillstack.json"

# Every frame row has these (lerobot.utils.constants.DEFAULT_FEATURES).
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
INFO_REQUIRED = ("codebase_version", "fps", "features", "data_path", "total_episodes", "total_frames")


class LeRobotFormatError(DemoFileError):
    """A folder is not a readable LeRobotDataset v3.0: `path` names the offending file."""


def chunk_path(template: str, index: int, chunks_size: int, **keys: Any) -> str:
    """`template` filled for the index-th file overall (chunk = index // chunks_size)."""
    return template.format(chunk_index=index // chunks_size, file_index=index % chunks_size, **keys)


def feature_stats(values: np.ndarray) -> dict[str, list[Any]]:
    """LeRobot's statistics of a low-dimensional feature over frames, per dimension (min max mean std
    count q01 q10 q50 q90 q99); quantiles are exact (numpy's linear interpolation), not binned."""
    a = np.asarray(values)
    flat = a.reshape(len(a), -1).astype(np.float64)
    out: dict[str, list[Any]] = {
        "min": flat.min(axis=0).tolist(),
        "max": flat.max(axis=0).tolist(),
        "mean": flat.mean(axis=0).tolist(),
        "std": flat.std(axis=0).tolist(),
        "count": [len(a)],
    }
    for q, v in zip(QUANTILES, np.quantile(flat, QUANTILES, axis=0)):
        out[f"q{int(round(q * 100)):02d}"] = v.tolist()
    return out


def image_histogram(frames: np.ndarray) -> np.ndarray:
    """Per-channel value counts (3, 256) of uint8 (T, H, W, 3) frames: image statistics from sums."""
    f = np.asarray(frames)
    return np.stack([np.bincount(f[..., c].ravel(), minlength=256) for c in range(f.shape[-1])])


def image_stats(hist: np.ndarray, frames: int) -> dict[str, list[Any]]:
    """LeRobot's camera statistics from `image_histogram` counts: per channel in [0, 1], shape (3, 1, 1);
    exact for uint8 pixels (quantiles are the lowest pixel value whose cumulative share reaches q)."""
    values = np.arange(hist.shape[1]) / 255.0
    n = hist.sum(axis=1)
    mean = (hist * values).sum(axis=1) / n
    std = np.sqrt(np.maximum((hist * values**2).sum(axis=1) / n - mean**2, 0.0))
    nz = [np.nonzero(h)[0] for h in hist]
    out = {"min": np.array([values[i[0]] for i in nz]), "max": np.array([values[i[-1]] for i in nz]), "mean": mean, "std": std}
    cum = np.cumsum(hist, axis=1)
    for q in QUANTILES:
        out[f"q{int(round(q * 100)):02d}"] = np.array([values[np.searchsorted(c, q * c[-1])] for c in cum])
    result: dict[str, list[Any]] = {k: v.reshape(-1, 1, 1).tolist() for k, v in out.items()}
    result["count"] = [int(frames)]
    return result


def _pandas_metadata(columns: Sequence[tuple[str, str, str]], index: str) -> bytes:
    """The `pandas` schema metadata pyarrow writes for a DataFrame with a named string index."""
    return json.dumps({
        "index_columns": [index],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": n, "field_name": n, "pandas_type": p, "numpy_type": t, "metadata": None}
                    for n, p, t in columns],
        "creator": {"library": "pyarrow", "version": _pyarrow_version()},
        "pandas_version": "2.2.3",
    }).encode()


def _pyarrow_version() -> str:
    import pyarrow

    return str(pyarrow.__version__)


def write_index_table(path: Path, names: Sequence[str], index: str) -> None:
    """tasks.parquet / subtasks.parquet: `<index>_index` int64 column plus the strings as the pandas index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    col = f"{index}_index"
    table = pa.table({col: pa.array(range(len(names)), pa.int64()), index: pa.array(list(names), pa.string())})
    meta = _pandas_metadata([(col, "int64", "int64"), (index, "unicode", "object")], index)
    table = table.replace_schema_metadata({b"pandas": meta})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_index_table(path: Path, index: str) -> list[str]:
    """Strings of tasks.parquet / subtasks.parquet ordered by their `<index>_index`."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise LeRobotFormatError(path, "missing (a LeRobotDataset v3.0 folder has it)")
    table = pq.read_table(path)
    name_col = index if index in table.column_names else "__index_level_0__"
    col = f"{index}_index"
    if name_col not in table.column_names or col not in table.column_names:
        raise LeRobotFormatError(path, f"expected columns {col!r} and {index!r}, found {table.column_names}")
    idx = table.column(col).to_pylist()
    names = table.column(name_col).to_pylist()
    if sorted(idx) != list(range(len(idx))):
        raise LeRobotFormatError(path, f"{col} is not 0..{len(idx) - 1}")
    out = [""] * len(idx)
    for i, n in zip(idx, names):
        out[i] = str(n)
    return out


def read_info(root: Path) -> dict[str, Any]:
    """meta/info.json of a v3.0 dataset, checked: another codebase_version or a missing field is an error."""
    path = root / INFO_PATH
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such LeRobot dataset folder")
    if not path.is_file():
        legacy = [p for p in ("meta/episodes.jsonl", "meta/tasks.jsonl") if (root / p).exists()]
        hint = " (it has v2.x files " + ", ".join(legacy) + ")" if legacy else ""
        raise LeRobotFormatError(path, f"missing: not a LeRobotDataset folder{hint}")
    try:
        info = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise LeRobotFormatError(path, f"not valid JSON: {exc}") from None
    if not isinstance(info, dict):
        raise LeRobotFormatError(path, "is not a JSON object")
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        raise LeRobotFormatError(
            path,
            f"codebase_version is {version!r}; only {CODEBASE_VERSION!r} is supported (convert a v2.1 dataset with "
            "LeRobot's `python -m lerobot.scripts.convert_dataset_v21_to_v30` first)",
        )
    missing = [k for k in INFO_REQUIRED if k not in info]
    if missing:
        raise LeRobotFormatError(path, f"missing field(s) {missing}")
    if not isinstance(info["features"], dict) or not info["features"]:
        raise LeRobotFormatError(path, "'features' is not a non-empty object")
    fps = info["fps"]
    if not isinstance(fps, (int, float)) or fps <= 0:
        raise LeRobotFormatError(path, f"fps must be a positive number, got {fps!r}")
    for key, ft in info["features"].items():
        if not isinstance(ft, dict) or "dtype" not in ft or "shape" not in ft:
            raise LeRobotFormatError(path, f"feature {key!r} needs 'dtype' and 'shape'")
    if any(ft["dtype"] == "video" for ft in info["features"].values()) and not info.get("video_path"):
        raise LeRobotFormatError(path, "has video features but no 'video_path' template")
    return info


def arrow_column(values: np.ndarray) -> Any:
    """A numpy (T,) or (T, D) array as the arrow column HF datasets writes: a scalar column, or a
    fixed-size list of D values (LeRobot features of shape (D,))."""
    import pyarrow as pa

    a = np.asarray(values)
    if a.ndim == 1:
        return pa.array(a)
    if a.ndim != 2:
        raise ValueError(f"only (T,) and (T, D) features go to parquet, got shape {a.shape}")
    flat = pa.array(np.ascontiguousarray(a).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, a.shape[1])


def column_numpy(column: Any, dtype: str, shape: Sequence[int]) -> np.ndarray:
    """An arrow column (scalar, list or fixed-size list) back to numpy (T,) or (T, D) of `dtype`."""
    import pyarrow as pa

    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    np_dtype = np.dtype("bool" if dtype == "bool" else dtype)
    if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        n = len(col)
        flat = col.flatten().to_numpy(zero_copy_only=False)
        width = int(np.prod(shape)) if shape else (len(flat) // n if n else 0)
        if n and len(flat) != n * width:
            raise ValueError(f"list column holds {len(flat)} values for {n} rows of shape {list(shape)}")
        return flat.astype(np_dtype, copy=False).reshape(n, width)
    return col.to_numpy(zero_copy_only=False).astype(np_dtype, copy=False)
