"""Crash-safe writer of demonstration files.

Why not just append to the HDF5 file? HDF5 updates its metadata (B-trees, heaps, the
superblock) in place and caches it in memory; a process killed in the middle of an
append can leave a file that no longer opens at all, losing every episode in it. Why
not copy the file, append to the copy and `os.replace` it over the original? That is
crash-safe but rewrites the whole file per episode: quadratic in the dataset size (a
1000-episode camera dataset would copy gigabytes per episode).

What we do: double buffering with two complete files, A (the visible output) and B (a
hidden twin next to it, `.NAME.PID.shadow`), which always hold the same committed
episodes. Episodes are buffered in memory until they end, so a partial one is never on
disk. To commit episode k:

1. append episode k to B in place, close, fsync.           crash: output = A (k-1 episodes)
2. hard-link A under a spare name (`.NAME.PID.spare`).     crash: output = A
3. `os.replace(B, output)`, fsync the directory.          from here output = B (k episodes)
4. append episode k to A (spare name) in place, close.     crash: output = B, spare is debris
5. `os.replace(spare, shadow)`: A is the new twin.

At every instant the visible output is a closed, complete HDF5 file, so `kill -9` at
any point leaves a file that opens with every completed episode. The cost is writing
each episode twice plus one fsync of the file that becomes visible (and of the folder),
i.e. linear in the data, independent of how many episodes the file already holds; the
benchmark (`skillstack bench demos`) measures it. The fsyncs (from a sixth to two thirds
of the commit time on our shared machine, depending on disk load) only matter for a power cut or kernel crash: a killed
process leaves its writes in the page cache. `durable=False` skips them. Where hard links are not supported,
step 2 falls back to copying A (correct, but linear in the file size).
`close()` deletes the twin; debris left by a killed writer (`.NAME.<pid>.shadow|spare`
of a dead pid) is removed by the next writer of the same output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from common.atomic import atomic_replace, fsync_dir, fsync_file
from demos.errors import OutputExistsError
from demos.format import FORMAT_NAME, FORMAT_VERSION, IMAGE_SUFFIX, LIBVER, Episode

# atomic_replace and fsync_dir stay importable from here (they live in common.atomic).
__all__ = ["DemoWriter", "atomic_replace", "fsync_dir"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DemoWriter:
    """Writes episodes into a robomimic-layout HDF5 file, crash-safely (see module doc).

    >>> with DemoWriter("demos.hdf5", make_env_args("skillstack/PandaReach-v0")) as w:
    ...     w.add_episode(episode)

    The output is created (empty, valid) on construction; an existing file is an
    `OutputExistsError` unless overwrite=True. `image_compression` (e.g. "gzip") applies
    to `*_image` observation keys only. durable=False skips the fsyncs (still safe
    against a killed process, not against a power cut).
    """

    def __init__(
        self,
        path: str | Path,
        env_args: dict[str, Any],
        *,
        overwrite: bool = False,
        attrs: dict[str, Any] | None = None,
        image_compression: str | None = None,
        durable: bool = True,
    ):
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputExistsError(f"{self.path}: is a directory, expected a file path for the demonstrations")
        if self.path.exists() and not overwrite:
            raise OutputExistsError(f"{self.path}: already exists; pass --overwrite (overwrite=True) to replace it")
        if not isinstance(env_args.get("env_name"), str):
            raise ValueError("env_args needs a string 'env_name' (see make_env_args)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.env_args = dict(env_args)
        self.image_compression = image_compression
        self.durable = bool(durable)
        self.num_episodes = 0
        self.total = 0
        self.commit_seconds = 0.0
        self._closed = False
        pid = os.getpid()
        self._shadow = self.path.with_name(f".{self.path.name}.{pid}.shadow")
        self._spare = self.path.with_name(f".{self.path.name}.{pid}.spare")
        self._clean_debris()
        # Build the empty file once, duplicate it as the twin, then publish atomically.
        tmp = self.path.with_name(f".{self.path.name}.{pid}.tmp")
        with h5py.File(tmp, "w", libver=LIBVER, locking=False) as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            for key, value in (attrs or {}).items():
                f.attrs[key] = _attr_value(value)
            data = f.create_group("data")
            data.attrs["total"] = 0
            data.attrs["env_args"] = json.dumps(self.env_args)
        shutil.copyfile(tmp, self._shadow)
        atomic_replace(tmp, self.path)

    def _clean_debris(self) -> None:
        """Remove twin/spare files left next to the output by writers that were killed."""
        prefix = f".{self.path.name}."
        for p in self.path.parent.glob(f".{self.path.name}.*"):
            rest = p.name[len(prefix) :]
            pid_text, _, kind = rest.partition(".")
            if kind in ("shadow", "spare", "tmp") and pid_text.isdigit():
                pid = int(pid_text)
                if pid == os.getpid() or not _pid_alive(pid):
                    with contextlib.suppress(OSError):
                        p.unlink()

    # -- writing -----------------------------------------------------------------------
    def add_episode(self, episode: Episode) -> str:
        """Commit one finished episode; returns its name ("demo_N").

        When this returns, the output file on disk holds the episode (and all earlier ones).
        """
        import time

        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        episode.check()
        t0 = time.perf_counter()
        name = f"demo_{self.num_episodes}"
        self._append(self._shadow, name, episode)  # 1
        if self.durable:
            fsync_file(self._shadow)
        try:  # 2
            os.link(self.path, self._spare)
        except OSError:
            shutil.copyfile(self.path, self._spare)
        os.replace(self._shadow, self.path)  # 3
        if self.durable:
            fsync_dir(self.path.parent)
        self._append(self._spare, name, episode)  # 4
        os.replace(self._spare, self._shadow)  # 5
        self.num_episodes += 1
        self.total += episode.num_samples
        self.commit_seconds += time.perf_counter() - t0
        return name

    def _append(self, path: Path, name: str, ep: Episode) -> None:
        with h5py.File(path, "r+", libver=LIBVER, locking=False) as f:
            data = f["data"]
            g = data.create_group(name)
            g.attrs["num_samples"] = ep.num_samples
            if ep.model_file is not None:
                g.attrs["model_file"] = ep.model_file
            for key, value in ep.attrs.items():
                g.attrs[key] = _attr_value(value)
            self._put(g, "actions", np.asarray(ep.actions))
            self._put(g, "rewards", np.asarray(ep.rewards, dtype=np.float64))
            self._put(g, "dones", np.asarray(ep.dones, dtype=np.int64))
            if ep.states is not None:
                self._put(g, "states", np.asarray(ep.states, dtype=np.float64))
            if ep.phases is not None:
                ds = self._put(g, "phases", np.asarray(ep.phases, dtype=np.int32))
                ds.attrs["phase_names"] = json.dumps(list(ep.phase_names or ()))
            for group_name, obs in (("obs", ep.obs), ("next_obs", ep.next_obs)):
                og = g.create_group(group_name)
                for key, value in obs.items():
                    self._put(og, key, np.asarray(value), image=key.endswith(IMAGE_SUFFIX))
            data.attrs["total"] = int(data.attrs["total"]) + ep.num_samples

    def _put(self, group: h5py.Group, name: str, arr: np.ndarray, image: bool = False) -> h5py.Dataset:
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if image and arr.ndim >= 3:
            chunks = (1,) + arr.shape[1:]  # one frame per chunk: cheap random access
            compression = self.image_compression
        else:
            chunks = arr.shape
            compression = None
        return group.create_dataset(name, data=arr, chunks=chunks, fletcher32=True, compression=compression)

    def close(self) -> None:
        """Finish: delete the hidden twin. The output already holds every committed episode."""
        if self._closed:
            return
        self._closed = True
        for p in (self._shadow, self._spare):
            with contextlib.suppress(OSError):
                p.unlink()

    def __enter__(self) -> "DemoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _attr_value(value: Any) -> Any:
    """HDF5-storable attribute: scalars and strings as is, anything else as JSON text."""
    if value is None:
        return "null"
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value
    if isinstance(value, np.ndarray):
        return value
    return json.dumps(value)
