"""The demonstration file format (robomimic-compatible HDF5) and its reader.

Layout (robomimic's, plus two optional extras marked *)::

    /                      attrs: format="skillstack-demos", format_version=1
    data/                  attrs: total (int, samples over all demos),
                                  env_args (JSON {"env_name", "type", "env_kwargs"})
    data/demo_N/           attrs: num_samples (int), model_file (MJCF text),
                                  seed, success, policy, source ... (informational)
        actions            (T, A) float64   action applied at step t
        rewards            (T,)   float64
        dones              (T,)   int64     1 on the last step of the episode
        states             (T, S) float64   env.unwrapped.get_state() *before* action t
                                            (absent for real-robot imports)
        obs/<key>          (T, ...)         observation before action t
        next_obs/<key>     (T, ...)         observation after action t
        obs/<cam>_image    (T, H, W, 3) uint8  camera frames, when recorded *
        phases             (T,)   int32     scripted-expert phase index *
                                  attrs: phase_names (JSON list of str)

`env_args["type"]` is 2, robomimic's `EnvType.GYM_TYPE` (1 is robosuite, 3 iGibson
MOMART): robomimic builds such envs with `gym.make(env_name, **env_kwargs)`, which is
how ours are made too once `import envs` has registered the ids.

Every dataset is chunked with HDF5's Fletcher-32 checksum filter, so a flipped byte in
the data is reported on read instead of silently returned. `DemoFile` validates the whole
layout (metadata only, cheap) when it opens a file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from demos.errors import (
    DemoFileCorruptError,
    DemoFileError,
    DemoLayoutError,
    EnvMismatchError,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GYM_ENV_TYPE",
    "DemoFile",
    "Episode",
    "make_env_args",
]

FORMAT_NAME = "skillstack-demos"
FORMAT_VERSION = 1
GYM_ENV_TYPE = 2  # robomimic EnvType.GYM_TYPE
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
DEMO_RE = re.compile(r"^demo_(\d+)$")
IMAGE_SUFFIX = "_image"
# HDF5 >= 1.8 object headers: lets attributes grow past 64 KiB (large MJCF model_file).
LIBVER = ("v108", "v108")


def make_env_args(env_id: str, env_kwargs: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Build robomimic's `env_args` dict for one of our Gymnasium ids.

    `env_kwargs` must be JSON-serialisable; they are what `envs.make(env_id, **env_kwargs)`
    needs to rebuild the same environment at replay time.
    """
    kwargs = dict(env_kwargs or {})
    try:
        json.dumps(kwargs)
    except TypeError as exc:
        raise ValueError(f"env_kwargs for {env_id!r} must be JSON-serialisable: {exc}") from None
    return {"env_name": env_id, "type": GYM_ENV_TYPE, "env_kwargs": kwargs, **extra}


@dataclass
class Episode:
    """One demonstration in memory: what `DemoWriter.add_episode` writes and `DemoFile` reads.

    Every per-step array has the same first dimension T (`num_samples`). `states` is
    None for real-robot imports; `phases`/`phase_names` are None when no expert labelled
    the steps.
    """

    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    obs: dict[str, np.ndarray]
    next_obs: dict[str, np.ndarray]
    states: np.ndarray | None = None
    phases: np.ndarray | None = None
    phase_names: tuple[str, ...] | None = None
    model_file: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # "demo_N" once stored

    @property
    def num_samples(self) -> int:
        """Number of steps (transitions) in the episode."""
        return len(self.actions)

    @property
    def index(self) -> int | None:
        """N of `demo_N`, or None for an episode not read from a file."""
        if self.name is None:
            return None
        m = DEMO_RE.match(self.name)
        return int(m.group(1)) if m else None

    def check(self) -> None:
        """Raise ValueError naming the first array whose length differs from `actions`."""
        n = self.num_samples
        if n == 0:
            raise ValueError("episode has no steps")
        arrays: dict[str, np.ndarray | None] = {
            "rewards": self.rewards,
            "dones": self.dones,
            "states": self.states,
            "phases": self.phases,
        }
        arrays.update({f"obs/{k}": v for k, v in self.obs.items()})
        arrays.update({f"next_obs/{k}": v for k, v in self.next_obs.items()})
        for key, arr in arrays.items():
            if arr is not None and len(arr) != n:
                raise ValueError(f"episode array {key!r} has {len(arr)} steps, actions have {n}")
        if self.phases is not None and not self.phase_names:
            raise ValueError("episode has phases but no phase_names")
        if not self.obs:
            raise ValueError("episode has no observations")


def check_signature(path: Path) -> None:
    """Raise DemoFileCorruptError if `path` does not start like an HDF5 file."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8:
        raise DemoFileCorruptError(path, f"file is truncated ({len(head)} bytes), not a demonstration file")
    if head != HDF5_SIGNATURE:
        raise DemoFileCorruptError(path, "not an HDF5 file (bad signature); is it a demonstration file?")


def open_h5(path: str | Path, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning HDF5's low-level errors into DemoFileCorruptError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such demonstration file")
    if path.is_dir():
        raise DemoFileError(path, "is a directory, expected an HDF5 demonstration file")
    check_signature(path)
    try:
        return h5py.File(path, mode, locking=False)
    except OSError as exc:
        text = str(exc)
        if "truncated" in text:
            problem = f"file is truncated (an interrupted copy or write?): {text}"
        else:
            problem = f"not a readable HDF5 file (corrupt or truncated): {text}"
        raise DemoFileCorruptError(path, problem) from None


class DemoFile:
    """Read-only view of a demonstration file, validated on open.

    `DemoFile(path)` checks the whole robomimic layout (groups, attributes, dataset
    lengths, `total`) and raises a `DemoFileError` subclass naming the file and the
    problem; `expected_env` additionally rejects demos recorded for another env id.
    Episodes load lazily: `file[i]`, `file["demo_3"]`, or iterate.

    Use as a context manager (or call `close()`): the HDF5 file stays open while the
    object lives.
    """

    def __init__(self, path: str | Path, expected_env: str | None = None):
        self.path = Path(path)
        self._f = open_h5(self.path, "r")
        try:
            self._validate(expected_env)
        except BaseException:
            self._f.close()
            raise

    # -- validation --------------------------------------------------------------------
    def _fail(self, problem: str) -> DemoLayoutError:
        return DemoLayoutError(self.path, problem)

    def _validate(self, expected_env: str | None) -> None:
        f = self._f
        try:
            data = f.get("data")
        except (OSError, RuntimeError, KeyError) as exc:
            raise DemoFileCorruptError(self.path, f"cannot read group 'data': {exc}") from None
        if data is None:
            raise self._fail("missing group 'data' (not a robomimic/skillstack demonstration file)")
        if not isinstance(data, h5py.Group):
            raise self._fail("'data' is not a group")
        if "env_args" not in data.attrs:
            raise self._fail("group 'data' has no attribute 'env_args'")
        if "total" not in data.attrs:
            raise self._fail("group 'data' has no attribute 'total'")
        try:
            env_args = json.loads(_as_str(data.attrs["env_args"]))
        except (ValueError, TypeError) as exc:
            raise self._fail(f"attribute data.env_args is not valid JSON: {exc}") from None
        if not isinstance(env_args, dict) or not isinstance(env_args.get("env_name"), str):
            raise self._fail("attribute data.env_args has no string 'env_name'")
        if not isinstance(env_args.get("env_kwargs", {}), dict):
            raise self._fail("attribute data.env_args.env_kwargs is not an object")
        self.env_args: dict[str, Any] = env_args
        if expected_env is not None and env_args["env_name"] != expected_env:
            raise EnvMismatchError(
                self.path,
                f"holds demonstrations for env {env_args['env_name']!r}, expected {expected_env!r}",
            )
        names: list[tuple[int, str]] = []
        for key in data:
            m = DEMO_RE.match(key)
            if m:
                names.append((int(m.group(1)), key))
        names.sort()
        self.demo_names: list[str] = [k for _, k in names]
        self._lengths: dict[str, int] = {}
        total = 0
        for name in self.demo_names:
            try:
                total += self._validate_demo(data, name)
            except (OSError, RuntimeError) as exc:
                raise DemoFileCorruptError(self.path, f"cannot read data/{name}: {exc}") from None
        stored_total = int(data.attrs["total"])
        if stored_total != total:
            raise self._fail(f"attribute data.total is {stored_total} but the demos hold {total} samples")
        self.total = total

    def _validate_demo(self, data: h5py.Group, name: str) -> int:
        g = data[name]
        where = f"data/{name}"
        if not isinstance(g, h5py.Group):
            raise self._fail(f"{where} is not a group")
        if "num_samples" not in g.attrs:
            raise self._fail(f"{where} has no attribute 'num_samples'")
        n = int(g.attrs["num_samples"])
        for key in ("actions", "rewards", "dones"):
            if key not in g:
                raise self._fail(f"{where} is missing dataset '{key}'")
        for key in ("obs", "next_obs"):
            if key not in g:
                raise self._fail(f"{where} is missing group '{key}'")
            if not isinstance(g[key], h5py.Group):
                raise self._fail(f"{where}/{key} is not a group")
        to_check = ["actions", "rewards", "dones"] + [k for k in ("states", "phases") if k in g]
        to_check += [f"obs/{k}" for k in g["obs"]] + [f"next_obs/{k}" for k in g["next_obs"]]
        for key in to_check:
            ds = g[key]
            if not isinstance(ds, h5py.Dataset):
                raise self._fail(f"{where}/{key} is not a dataset")
            if ds.ndim == 0 or ds.shape[0] != n:
                raise self._fail(f"{where}/{key} has shape {ds.shape}, expected {n} samples (num_samples)")
        if "phases" in g:
            if "phase_names" not in g["phases"].attrs:
                raise self._fail(f"{where}/phases has no attribute 'phase_names'")
            try:
                names = json.loads(_as_str(g["phases"].attrs["phase_names"]))
            except (ValueError, TypeError):
                raise self._fail(f"{where}/phases attribute phase_names is not a JSON list") from None
            if not isinstance(names, list):
                raise self._fail(f"{where}/phases attribute phase_names is not a JSON list")
        self._lengths[name] = n
        return n

    # -- properties --------------------------------------------------------------------
    @property
    def env_id(self) -> str:
        """Gymnasium id the demos were recorded in (`env_args["env_name"]`)."""
        return str(self.env_args["env_name"])

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that rebuild the recording env (`env_args["env_kwargs"]`)."""
        return dict(self.env_args.get("env_kwargs", {}))

    @property
    def attrs(self) -> dict[str, Any]:
        """File-level attributes (format, version, source ...)."""
        return {k: _as_py(v) for k, v in self._f.attrs.items()}

    def __len__(self) -> int:
        return len(self.demo_names)

    def num_samples(self, key: int | str) -> int:
        """Length of one demo without loading it."""
        return self._lengths[self.demo_name(key)]

    def has_states(self, key: int | str) -> bool:
        """Whether a demo stores simulator states (False for real-robot imports)."""
        return "states" in self._f["data"][self.demo_name(key)]

    def obs_keys(self, key: int | str = 0) -> list[str]:
        """Observation keys stored for a demo."""
        return list(self._f["data"][self.demo_name(key)]["obs"].keys())

    # -- episode access ----------------------------------------------------------------
    def demo_name(self, key: int | str) -> str:
        """Name "demo_N" of a demo given by index N or name; KeyError listing the demos if absent."""
        if isinstance(key, (int, np.integer)):
            name = f"demo_{int(key)}"
        else:
            name = str(key)
        if name not in self._lengths:
            shown = ", ".join(self.demo_names[:20]) + (" ..." if len(self.demo_names) > 20 else "")
            raise KeyError(f"{self.path}: no demo {name!r}; the file has: {shown or 'no demos'}")
        return name

    def episode(self, key: int | str, *, images: bool = True) -> Episode:
        """Load one demo (by index N or name "demo_N") into memory.

        images=False skips `*_image` observation keys (faster when only low-dim data is needed).
        """
        name = self.demo_name(key)
        g = self._f["data"][name]
        try:
            obs = {k: g["obs"][k][()] for k in g["obs"] if images or not k.endswith(IMAGE_SUFFIX)}
            next_obs = {k: g["next_obs"][k][()] for k in g["next_obs"] if images or not k.endswith(IMAGE_SUFFIX)}
            phases = g["phases"][()] if "phases" in g else None
            phase_names = (
                tuple(json.loads(_as_str(g["phases"].attrs["phase_names"]))) if "phases" in g else None
            )
            return Episode(
                actions=g["actions"][()],
                rewards=g["rewards"][()],
                dones=g["dones"][()],
                obs=obs,
                next_obs=next_obs,
                states=g["states"][()] if "states" in g else None,
                phases=phases,
                phase_names=phase_names,
                model_file=_as_str(g.attrs["model_file"]) if "model_file" in g.attrs else None,
                attrs={k: _as_py(v) for k, v in g.attrs.items() if k not in ("model_file",)},
                name=name,
            )
        except (OSError, RuntimeError) as exc:
            raise DemoFileCorruptError(self.path, f"cannot read data/{name} (checksum or I/O error): {exc}") from None

    def __getitem__(self, key: int | str) -> Episode:
        return self.episode(key)

    def __iter__(self) -> Iterator[Episode]:
        for name in self.demo_names:
            yield self.episode(name)

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._f.close()

    def __enter__(self) -> "DemoFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DemoFile({str(self.path)!r}, env={self.env_id!r}, demos={len(self)}, total={self.total})"


def _as_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.size == 1:
        return _as_str(value.reshape(-1)[0])
    return str(value)


def _as_py(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
