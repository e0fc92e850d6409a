"""The sections of `manifest.json` as frozen dataclasses: embodiment, task, observation,
action, scripted controller, provenance, and the check of the descriptors section.

Each class reads its section with `from_dict` (refusing a bad field by name, through
`manifest_checks`) and writes it back with `to_dict`. They are apart from `manifest`,
which holds the top-level `Manifest`, its digest and the strict byte parser, so each file
reads as one level of the schema; `skill_library.manifest` re-exports every name here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skill_library.errors import SkillPackageError
from skill_library.manifest_checks import (
    as_int,
    as_json_value,
    as_number,
    as_number_list,
    as_object,
    as_shape,
    as_str,
    as_str_list,
    check_fields,
    field_error,
    short_repr,
)

__all__ = [
    "ACTION_MODES",
    "OBS_LAYOUTS",
    "ActionSpec",
    "ControllerSpec",
    "Embodiment",
    "ObservationKey",
    "ObservationSpec",
    "Provenance",
    "SignerSpec",
    "TaskSpec",
    "as_descriptors",
]

ACTION_MODES = ("ee_delta", "ee_delta_yaw", "joint")
OBS_LAYOUTS = ("joint", "tcp")  # envs.observation.OBS_LAYOUTS (checked equal by a test; the schema loads no envs)
_OBS_DTYPES = ("float32", "float64")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_KEY_ID_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Embodiment:
    """Which robot the skill drives, in which action convention, through which observation layout.

    `obs_layout` ("joint" or "tcp", see `envs.observation`) decides where the skill may run:
    a "tcp" skill reads no joint angles, so it runs on any robot; a "joint" skill only on a
    robot with the same arm joints. None (manifests written before the field) means the
    layout of the task's env kwargs. `checked_on` records each robot the skill was
    evaluated on: {robot, env_id, episodes, success_rate}. Both are written only when set,
    so older manifests (and their digests and signatures) stay valid.
    """

    robot: str
    arm_joint_names: tuple[str, ...]
    finger_joint_names: tuple[str, ...]
    action_mode: str = "ee_delta"
    obs_layout: str | None = None
    checked_on: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, d: Any, where: str = "embodiment") -> "Embodiment":
        d = as_object(d, where)
        check_fields(d, where, ("robot", "arm_joint_names", "finger_joint_names", "action_mode"), ("obs_layout", "checked_on"))
        mode = d["action_mode"]
        if mode not in ACTION_MODES:
            raise field_error(f"{where}.action_mode", f"unknown {mode!r}; valid: {list(ACTION_MODES)}")
        layout = d.get("obs_layout")
        if layout is not None and layout not in OBS_LAYOUTS:
            raise field_error(f"{where}.obs_layout", f"unknown {short_repr(layout)}; valid: {list(OBS_LAYOUTS)}")
        checked = d.get("checked_on", [])
        if not isinstance(checked, list) or len(checked) > 64:
            raise field_error(f"{where}.checked_on", f"expected a list of at most 64 objects, got {short_repr(checked)}")
        return cls(
            robot=as_str(d["robot"], f"{where}.robot", 128),  # type: ignore[arg-type]
            arm_joint_names=tuple(as_str_list(d["arm_joint_names"], f"{where}.arm_joint_names", max_items=64)),
            finger_joint_names=tuple(as_str_list(d["finger_joint_names"], f"{where}.finger_joint_names", max_items=16)),
            action_mode=mode,
            obs_layout=layout,
            checked_on=tuple(_check_record(c, f"{where}.checked_on[{i}]") for i, c in enumerate(checked)),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "robot": self.robot,
            "arm_joint_names": list(self.arm_joint_names),
            "finger_joint_names": list(self.finger_joint_names),
            "action_mode": self.action_mode,
        }
        if self.obs_layout is not None:
            d["obs_layout"] = self.obs_layout
        if self.checked_on:
            d["checked_on"] = [dict(c) for c in self.checked_on]
        return d


def _check_record(c: Any, where: str) -> dict[str, Any]:
    """One `checked_on` entry: {robot, env_id, episodes, success_rate}."""
    c = as_object(c, where)
    check_fields(c, where, ("robot", "env_id", "episodes", "success_rate"))
    return {
        "robot": as_str(c["robot"], f"{where}.robot", 128),
        "env_id": as_str(c["env_id"], f"{where}.env_id", 256),
        "episodes": as_int(c["episodes"], f"{where}.episodes", 1, 10**9),
        "success_rate": as_number(c["success_rate"], f"{where}.success_rate", 0.0, 1.0),
    }


@dataclass(frozen=True)
class TaskSpec:
    """Task family (e.g. "push") and the Gymnasium id + kwargs the skill was trained or evaluated on."""

    family: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, where: str = "task") -> "TaskSpec":
        d = as_object(d, where)
        check_fields(d, where, ("family", "env_id", "env_kwargs"))
        kwargs = as_json_value(as_object(d["env_kwargs"], f"{where}.env_kwargs"), f"{where}.env_kwargs")
        return cls(as_str(d["family"], f"{where}.family", 128), as_str(d["env_id"], f"{where}.env_id", 256), kwargs)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "env_id": self.env_id, "env_kwargs": dict(self.env_kwargs)}


@dataclass(frozen=True)
class ObservationKey:
    """One observation entry: dict key, shape, dtype and optional normalisation statistics."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float64"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "ObservationKey":
        d = as_object(d, where)
        check_fields(d, where, ("name", "shape", "dtype", "mean", "std"))
        name = as_str(d["name"], f"{where}.name", 64)
        if not _KEY_RE.match(name):  # type: ignore[arg-type]
            raise field_error(f"{where}.name", f"{name!r} is not a valid key name")
        shape = as_shape(d["shape"], f"{where}.shape")
        if d["dtype"] not in _OBS_DTYPES:
            raise field_error(f"{where}.dtype", f"unknown dtype {d['dtype']!r}; valid: {list(_OBS_DTYPES)}")
        n = math.prod(shape)
        mean = None if d["mean"] is None else tuple(as_number_list(d["mean"], f"{where}.mean", n))
        std = None if d["std"] is None else tuple(as_number_list(d["std"], f"{where}.std", n, positive=True))
        if (mean is None) != (std is None):
            raise field_error(where, "mean and std must both be given or both be null")
        return cls(name, shape, d["dtype"], mean, std)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }


@dataclass(frozen=True)
class ObservationSpec:
    """Observation keys in network-input order, plus the clip applied after normalisation."""

    keys: tuple[ObservationKey, ...]
    clip: float | None = None

    @property
    def size(self) -> int:
        """Length of the flat network input."""
        return sum(k.size for k in self.keys)

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    @classmethod
    def from_dict(cls, d: Any, where: str = "observation") -> "ObservationSpec":
        d = as_object(d, where)
        check_fields(d, where, ("keys", "clip"))
        keys = d["keys"]
        if not isinstance(keys, list) or not 1 <= len(keys) <= 32:
            raise field_error(f"{where}.keys", f"expected a list of 1 to 32 key specs, got {short_repr(keys)}")
        parsed = tuple(ObservationKey.from_dict(k, f"{where}.keys[{i}]") for i, k in enumerate(keys))
        names = [k.name for k in parsed]
        if len(set(names)) != len(names):
            raise field_error(f"{where}.keys", f"duplicate key names in {names}")
        if sum(k.size for k in parsed) > 1 << 20:
            raise field_error(f"{where}.keys", "observation has more than 2^20 elements")
        clip = as_number(d["clip"], f"{where}.clip", lo=1e-9, allow_none=True)
        return cls(parsed, clip)

    def to_dict(self) -> dict[str, Any]:
        return {"keys": [k.to_dict() for k in self.keys], "clip": self.clip}


@dataclass(frozen=True)
class ActionSpec:
    """Action vector: shape, dtype, bounds, component names, and how network outputs map to it."""

    shape: tuple[int, ...]
    dtype: str
    low: tuple[float, ...]
    high: tuple[float, ...]
    names: tuple[str, ...] | None = None
    network_output: str = "unit"
    noise_std: float = 0.1

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @classmethod
    def from_dict(cls, d: Any, where: str = "action") -> "ActionSpec":
        d = as_object(d, where)
        check_fields(d, where, ("shape", "dtype", "low", "high", "names", "network_output", "noise_std"))
        shape = as_shape(d["shape"], f"{where}.shape")
        if len(shape) != 1:
            raise field_error(f"{where}.shape", f"actions are vectors; got shape {list(shape)}")
        if d["dtype"] not in _OBS_DTYPES:
            raise field_error(f"{where}.dtype", f"unknown dtype {d['dtype']!r}; valid: {list(_OBS_DTYPES)}")
        n = shape[0]
        low = tuple(as_number_list(d["low"], f"{where}.low", n))
        high = tuple(as_number_list(d["high"], f"{where}.high", n))
        if any(lo >= hi for lo, hi in zip(low, high)):
            raise field_error(where, "every low must be < high")
        names = None if d["names"] is None else tuple(as_str_list(d["names"], f"{where}.names", max_items=n))
        if names is not None and len(names) != n:
            raise field_error(f"{where}.names", f"expected {n} names, got {len(names)}")
        if d["network_output"] not in ("unit", "raw"):
            raise field_error(f"{where}.network_output", f"unknown {d['network_output']!r}; valid: ['unit', 'raw']")
        noise = as_number(d["noise_std"], f"{where}.noise_std", lo=0.0, hi=10.0)
        return cls(shape, d["dtype"], low, high, names, d["network_output"], noise)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "low": list(self.low),
            "high": list(self.high),
            "names": None if self.names is None else list(self.names),
            "network_output": self.network_output,
            "noise_std": self.noise_std,
        }


@dataclass(frozen=True)
class ControllerSpec:
    """A scripted controller, by name from the in-code registry `skill_library.scripted.SCRIPTED_CONTROLLERS`."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, where: str = "controller") -> "ControllerSpec":
        d = as_object(d, where)
        check_fields(d, where, ("name", "params"))
        name = as_str(d["name"], f"{where}.name", 64)
        params = as_json_value(as_object(d["params"], f"{where}.params"), f"{where}.params")
        from skill_library.scripted import validate_controller

        try:
            validate_controller(name, params)  # type: ignore[arg-type]
        except SkillPackageError as exc:
            raise field_error(where, str(exc)) from None
        return cls(name, params)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}


@dataclass(frozen=True)
class SignerSpec:
    """Who signed the manifest: the Ed25519 key id (see `skill_library.keyring`) and the key's name.

    Covered by the manifest digest, so the signature in `signature.json` is bound to this key:
    a package re-signed by another key must also change (and re-seal) its manifest."""

    key_id: str
    name: str
    algorithm: str = "ed25519"

    @classmethod
    def from_dict(cls, d: Any, where: str = "signer") -> "SignerSpec":
        d = as_object(d, where)
        check_fields(d, where, ("algorithm", "key_id", "name"))
        if d["algorithm"] != "ed25519":
            raise field_error(f"{where}.algorithm", f"unsupported {short_repr(d['algorithm'])}; valid: ['ed25519']")
        key_id = as_str(d["key_id"], f"{where}.key_id", 32)
        if not _KEY_ID_RE.match(key_id):  # type: ignore[arg-type]
            raise field_error(f"{where}.key_id", f"{short_repr(key_id)} is not a key id (32 lowercase hex digits)")
        name = as_str(d["name"], f"{where}.name", 128)
        if not name or not name.isprintable():  # type: ignore[union-attr]
            raise field_error(f"{where}.name", "expected 1 to 128 printable characters")
        return cls(key_id, name, "ed25519")  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "key_id": self.key_id, "name": self.name}


@dataclass(frozen=True)
class Provenance:
    """Where the skill came from: command, config, seed, env steps, source commit, date, eval results."""

    command: str | None = None
    config: Any = None
    seed: int | None = None
    env_steps: int | None = None
    source_commit: str | None = None
    date: str | None = None
    eval: Any = None

    @classmethod
    def from_dict(cls, d: Any, where: str = "provenance") -> "Provenance":
        d = as_object(d, where)
        check_fields(d, where, ("command", "config", "seed", "env_steps", "source_commit", "date", "eval"))
        return cls(
            command=as_str(d["command"], f"{where}.command", 65536, allow_none=True),
            config=as_json_value(d["config"], f"{where}.config"),
            seed=as_int(d["seed"], f"{where}.seed", -(2**63), 2**64, allow_none=True),
            env_steps=as_int(d["env_steps"], f"{where}.env_steps", allow_none=True),
            source_commit=as_str(d["source_commit"], f"{where}.source_commit", 128, allow_none=True),
            date=as_str(d["date"], f"{where}.date", 64, allow_none=True),
            eval=as_json_value(d["eval"], f"{where}.eval"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "config": self.config,
            "seed": self.seed,
            "env_steps": self.env_steps,
            "source_commit": self.source_commit,
            "date": self.date,
            "eval": self.eval,
        }


def as_descriptors(d: Any, where: str = "descriptors") -> dict[str, Any] | None:
    """The `descriptors` section (a grid evaluation written by `skill_library.descriptors`), or None."""
    if d is None:
        return None
    d = as_object(d, where)
    check_fields(
        d,
        where,
        ("env_id", "variable", "axes", "seed", "episodes_per_cell", "max_steps", "cells", "totals"),
        ("env_kwargs", "date", "control_dt", "cell_size", "setup", "obs_source", "condition", "conditions"),
    )
    as_str(d["env_id"], f"{where}.env_id", 256)
    as_str(d["variable"], f"{where}.variable", 64)
    as_int(d["seed"], f"{where}.seed", 0, 2**63)
    as_int(d["episodes_per_cell"], f"{where}.episodes_per_cell", 1, 1 << 20)
    as_int(d["max_steps"], f"{where}.max_steps", 1, 1 << 24)
    axes = d["axes"]
    if not isinstance(axes, list) or not 1 <= len(axes) <= 4:
        raise field_error(f"{where}.axes", "expected 1 to 4 lists of grid values")
    dims = []
    for i, ax in enumerate(axes):
        if not isinstance(ax, list) or not 1 <= len(ax) <= 4096:
            raise field_error(f"{where}.axes[{i}]", "expected a list of 1 to 4096 numbers")
        for j, x in enumerate(ax):
            as_number(x, f"{where}.axes[{i}][{j}]")
        dims.append(len(ax))
    cells = d["cells"]
    if not isinstance(cells, list) or len(cells) > 1 << 20:
        raise field_error(f"{where}.cells", "expected a list of cells")
    stat_fields = ("episodes", "successes", "success_rate", "mean_duration_s", "mean_safety_cost")
    for i, c in enumerate(cells):
        w = f"{where}.cells[{i}]"
        c = as_object(c, w)
        check_fields(c, w, ("index", "center", *stat_fields))
        idx = c["index"]
        if not isinstance(idx, list) or len(idx) != len(dims):
            raise field_error(f"{w}.index", f"expected {len(dims)} integers")
        for a, (k, n) in enumerate(zip(idx, dims)):
            as_int(k, f"{w}.index[{a}]", 0, n - 1)
        as_number_list(c["center"], f"{w}.center", len(dims))
        _validate_stats(c, w)
    totals = as_object(d["totals"], f"{where}.totals")
    check_fields(totals, f"{where}.totals", stat_fields)
    _validate_stats(totals, f"{where}.totals")
    if "env_kwargs" in d:
        as_object(d["env_kwargs"], f"{where}.env_kwargs")
    if "date" in d:
        as_str(d["date"], f"{where}.date", 64, allow_none=True)
    if "control_dt" in d:
        as_number(d["control_dt"], f"{where}.control_dt", lo=0.0)
    if "cell_size" in d:
        as_number_list(d["cell_size"], f"{where}.cell_size", len(dims))
    if "setup" in d and d["setup"] not in ("auto", "none"):
        raise field_error(f"{where}.setup", f"unknown {short_repr(d['setup'])}; valid: ['auto', 'none']")
    if "condition" in d:
        as_str(d["condition"], f"{where}.condition", 64)
    for name, c in as_object(d.get("conditions", {}), f"{where}.conditions").items():  # per-condition totals
        as_str(name, f"{where}.conditions key", 64)
        c = as_object(c, f"{where}.conditions.{name}")
        check_fields(c, f"{where}.conditions.{name}", stat_fields, ("condition", "seed", "date"))
        _validate_stats(c, f"{where}.conditions.{name}")
    if d.get("obs_source") is not None:
        src = as_object(d["obs_source"], f"{where}.obs_source")
        check_fields(src, f"{where}.obs_source", ("key", "start"))
        as_str(src["key"], f"{where}.obs_source.key", 64)
        as_int(src["start"], f"{where}.obs_source.start", 0, 1 << 20)
    return as_json_value(d, where)


def _validate_stats(c: Mapping[str, Any], w: str) -> None:
    n = as_int(c["episodes"], f"{w}.episodes", 0, 1 << 40)
    k = as_int(c["successes"], f"{w}.successes", 0, 1 << 40)
    if k > n:  # type: ignore[operator]
        raise field_error(w, "successes > episodes")
    as_number(c["success_rate"], f"{w}.success_rate", 0.0, 1.0)
    as_number(c["mean_duration_s"], f"{w}.mean_duration_s", 0.0)
    as_number(c["mean_safety_cost"], f"{w}.mean_safety_cost", 0.0)
