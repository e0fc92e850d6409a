"""The one way this project writes a file that matters: temp file in the same folder, fsync, rename.

A reader (or a process killed half-way) sees the old file or the new one, never a torn one.
Every layer writes through these helpers; nothing else calls `os.replace` on user data.

- `atomic_write_bytes` / `atomic_write_text` / `atomic_write_json`: a whole file from memory.
- `atomic_path`: a temp path for a third-party writer (OpenCV, matplotlib, h5py) that wants a
  file name; renamed into place when the block ends without error, deleted otherwise.
- `atomic_savefig`: a matplotlib figure through `atomic_path`, then closed.
- `temp_path`: a fresh temp file beside a target, for a writer that finishes later (a streaming
  video) and then calls `atomic_replace` (or deletes it).
- `atomic_replace`: move an already written temp file (or finished directory) into place durably.
- `staged_dir` / `swap_in_dir`: the same for a whole directory (skill packages, run folders).
- `write_new_file`: create a file that must not exist yet (exclusive create), flushed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_replace",
    "atomic_savefig",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "fsync_file",
    "staged_dir",
    "swap_in_dir",
    "temp_path",
    "write_new_file",
]

PathLike = str | os.PathLike[str]


def fsync_dir(path: PathLike) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: PathLike) -> None:
    """Flush a file someone else wrote (a copy, an HDF5 file) to disk before it is renamed or trusted."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_replace(tmp: PathLike, dest: PathLike) -> None:
    """fsync the finished `tmp`, rename it over `dest` (same filesystem) and fsync the folder.

    `tmp` may be a file or a directory (a directory's own entries are flushed, as `fsync_dir`
    does); `dest` must then be absent or an empty directory, as for `os.replace`."""
    if Path(tmp).is_dir():
        fsync_dir(tmp)
    else:
        fsync_file(tmp)
    os.replace(tmp, dest)
    fsync_dir(Path(dest).parent)


def temp_path(path: PathLike, suffix: str = ".tmp", tmp_dir: PathLike | None = None) -> Path:
    """Create an empty, uniquely named temp file beside `path` (or in `tmp_dir`, same filesystem)
    and return its name; the parent folder is created. The caller renames it into place with
    `atomic_replace` or deletes it: use this only when a `with atomic_path(...)` block cannot
    span the writing (a writer opened now and closed by a later call)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=tmp_dir or path.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: PathLike, suffix: str = "", tmp_dir: PathLike | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path` (with `suffix`, e.g. ".mp4" for writers that read it);
    when the block ends, the file written there replaces `path` atomically. If the block raises,
    the temp file is removed and `path` is left as it was."""
    tmp = temp_path(path, suffix, tmp_dir)
    try:
        yield tmp
        atomic_replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_savefig(fig: Any, path: PathLike, **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure to `path` atomically (the format follows the path's suffix, as for
    `fig.savefig`) and close it either way, so plotting many runs does not pile up open figures."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp, **savefig_kwargs)
    finally:
        plt.close(fig)
    return path


def atomic_write_bytes(path: PathLike, data: bytes, tmp_dir: PathLike | None = None) -> Path:
    """Write `data` to `path` atomically (temp file in `tmp_dir`, default the target's folder; same
    filesystem), creating the parent folder. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=tmp_dir or path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """`atomic_write_bytes` for text."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = False,
                      default: Any = None) -> Path:
    """Serialise `obj` as JSON (newline-terminated) and write it atomically. Serialisation happens
    before the file is touched, so an unserialisable object leaves the old file intact."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default) + "\n"
    return atomic_write_text(path, text)


def write_new_file(path: PathLike, data: bytes) -> None:
    """Create `path` (it must not exist: FileExistsError) with `data`, flushed to disk."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def swap_in_dir(staging: PathLike, out: PathLike) -> None:
    """Move a finished `staging` directory (same filesystem) to `out`, replacing any directory there.

    The old directory is moved aside first and deleted only once the new one is in place, so a
    crash leaves either the old or the new one at `out` (or the old one beside it, never a mix).
    """
    staging, out = Path(staging), Path(out)
    if out.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, trash / "old")
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)
    fsync_dir(out.parent)


@contextmanager
def staged_dir(out: PathLike, suffix: str = ".staging") -> Iterator[Path]:
    """Yield an empty staging directory beside `out`; when the block finishes, flush it and swap it
    in for `out` (`swap_in_dir`). If the block raises, the staging directory is deleted and `out`
    is left as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=suffix, dir=out.parent))
    try:
        yield staging
        fsync_dir(staging)
        swap_in_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
