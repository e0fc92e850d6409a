"""The skill manifest: schema, validation, canonical JSON and content digest.

`manifest.json` is the only metadata file of a skill package. It is plain JSON, parsed
strictly (no NaN, no duplicate keys, bounded size and depth), validated field by field
into the `Manifest` dataclass, and refused with a `SkillPackageError` naming the field.

Integrity: the manifest records the SHA-256 of every other file (`files`), and its own
`manifest_digest`: the SHA-256 of its canonical compact JSON without that field. The
file on disk must be exactly the canonical pretty form (`canonical_bytes`), so any
changed byte - a value, a space, a newline - refuses the package.

Schema (format_version 1), every field required unless marked optional:

- ``format``: "skillstack-skill"; ``format_version``: 1
- ``name``: [a-z0-9][a-z0-9_.-]{0,63}; ``version``: semantic version (MAJOR.MINOR.PATCH[-pre][+build])
- ``kind``: "rl" | "bc" | "scripted"; ``description`` (str); ``tags`` (list of str)
- ``embodiment``: {robot, arm_joint_names, finger_joint_names, action_mode: "ee_delta"|"ee_delta_yaw"|"joint"}
- ``task``: {family, env_id, env_kwargs (object)}
- ``observation``: {keys: [{name, shape, dtype, mean|null, std|null}], clip|null}: network input
  is the concatenation of the keys in order, each flattened and normalised (x - mean) / std, then clipped
- ``action``: {shape, dtype, low, high, names|null, network_output: "unit"|"raw", noise_std}:
  "unit" maps a [-1, 1] network output to [low, high]; actions are always clipped to [low, high]
- ``control_hz`` (number); ``network`` (arch dict, see policies.networks) or null for scripted;
  ``controller`` ({name, params}) for scripted, null otherwise
- ``preconditions`` / ``effects``: lists of predicate expressions from `envs.predicates`
- ``descriptors``: null or the grid evaluation written by `skill_library.descriptors`
- ``provenance``: {command, config, seed, env_steps, source_commit, date, eval}
- ``files``: {filename: sha256 hex}: must list weights.safetensors; optional eval.mp4
- ``manifest_digest``: sha256 hex (written by `seal`)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skill_library.errors import SkillIntegrityError, SkillPackageError

__all__ = [
    "ACTION_MODES",
    "ALLOWED_FILES",
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "MAX_MANIFEST_BYTES",
    "ActionSpec",
    "ControllerSpec",
    "Embodiment",
    "Manifest",
    "ObservationKey",
    "ObservationSpec",
    "Provenance",
    "TaskSpec",
    "canonical_bytes",
    "compute_digest",
    "parse_manifest_bytes",
    "parse_version",
    "validate_name",
    "version_key",
]

FORMAT = "skillstack-skill"
FORMAT_VERSION = 1
KINDS = ("rl", "bc", "scripted")
ACTION_MODES = ("ee_delta", "ee_delta_yaw", "joint")
WEIGHTS_FILE = "weights.safetensors"
# filename -> required; nothing else may be in a package directory besides manifest.json
ALLOWED_FILES: dict[str, bool] = {WEIGHTS_FILE: True, "eval.mp4": False}
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
_MAX_JSON_DEPTH = 64
_OBS_DTYPES = ("float32", "float64")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:=+-]{0,63}$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


# ----------------------------------------------------------------- small validators


def _err(where: str, msg: str) -> SkillPackageError:
    return SkillPackageError(f"manifest.json: {where}: {msg}")


def validate_name(name: Any, where: str = "name") -> str:
    """Check a skill name: lowercase letters, digits, '_', '.', '-'; starts alphanumeric; at most 64 chars."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _err(where, f"{name!r} is not a valid skill name (pattern [a-z0-9][a-z0-9_.-]{{0,63}})")
    return name


def parse_version(version: Any, where: str = "version") -> tuple[int, int, int, tuple[Any, ...]]:
    """Parse a semantic version; returns (major, minor, patch, prerelease identifiers)."""
    if not isinstance(version, str) or len(version) > 64:
        raise _err(where, f"{version!r} is not a semantic version like 1.2.3")
    m = _SEMVER.match(version)
    if not m:
        raise _err(where, f"{version!r} is not a semantic version like 1.2.3")
    pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre


def version_key(version: str) -> tuple[Any, ...]:
    """Sort key giving semver precedence: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0; build ignored."""
    major, minor, patch, pre = parse_version(version)
    # A release sorts after all its pre-releases; numeric identifiers sort before alphanumeric.
    pre_key = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre)
    return (major, minor, patch, 1 if not pre else 0, pre_key)


def _obj(d: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise _err(where, f"expected an object, got {type(d).__name__}")
    return d


def _fields(d: Mapping[str, Any], where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    missing = [k for k in required if k not in d]
    if missing:
        raise _err(where, f"missing field(s) {missing}")
    extra = sorted(set(d) - set(required) - set(optional))
    if extra:
        raise _err(where, f"unknown field(s) {extra}; valid: {sorted(required + optional)}")


def _str(v: Any, where: str, max_len: int = 4096, allow_none: bool = False) -> str | None:
    if v is None and allow_none:
        return None
    if not isinstance(v, str) or len(v) > max_len:
        raise _err(where, f"expected a string of at most {max_len} characters, got {_short(v)}")
    return v


def _int(v: Any, where: str, lo: int = 0, hi: int = 2**62, allow_none: bool = False) -> int | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _err(where, f"expected an integer in [{lo}, {hi}], got {_short(v)}")
    return v


def _num(v: Any, where: str, lo: float = -math.inf, hi: float = math.inf, allow_none: bool = False) -> float | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise _err(where, f"expected a finite number in [{lo}, {hi}], got {_short(v)}")
    return float(v)


def _str_list(v: Any, where: str, pattern: re.Pattern[str] | None = None, max_items: int = 256) -> list[str]:
    if not isinstance(v, list) or len(v) > max_items:
        raise _err(where, f"expected a list of at most {max_items} strings, got {_short(v)}")
    out = []
    for i, s in enumerate(v):
        _str(s, f"{where}[{i}]", 256)
        if pattern is not None and not pattern.match(s):
            raise _err(f"{where}[{i}]", f"{s!r} does not match {pattern.pattern}")
        out.append(s)
    return out


def _num_list(v: Any, where: str, n: int, positive: bool = False) -> list[float]:
    if not isinstance(v, list) or len(v) != n:
        raise _err(where, f"expected a list of {n} numbers, got {_short(v)}")
    lo = 0.0 if positive else -math.inf
    out = [_num(x, f"{where}[{i}]", lo=lo) for i, x in enumerate(v)]
    if positive and any(x == 0.0 for x in out):
        raise _err(where, "values must be > 0")
    return out  # type: ignore[return-value]


def _shape(v: Any, where: str) -> tuple[int, ...]:
    if not isinstance(v, list) or not 1 <= len(v) <= 4:
        raise _err(where, f"expected a shape list of 1 to 4 positive integers, got {_short(v)}")
    shape = tuple(_int(d, f"{where}[{i}]", 1, 1 << 20) for i, d in enumerate(v))
    if math.prod(shape) > 1 << 20:  # type: ignore[arg-type]
        raise _err(where, f"shape {shape} has more than 2^20 elements")
    return shape  # type: ignore[return-value]


def _json_value(v: Any, where: str) -> Any:
    """Free-form JSON data (provenance config/eval, env kwargs): any JSON value, no NaN."""
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _err(where, "NaN/Infinity are not JSON")
        return v
    if isinstance(v, list):
        return [_json_value(x, f"{where}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        for k in v:
            if not isinstance(k, str):
                raise _err(where, f"object key {k!r} is not a string")
        return {k: _json_value(x, f"{where}.{k}") for k, x in v.items()}
    raise _err(where, f"{type(v).__name__} is not JSON data")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _predicates(v: Any, where: str) -> list[str]:
    exprs = _str_list(v, where, max_items=64)
    try:
        from envs.predicates import parse
    except ImportError:  # pragma: no cover - envs is part of this project
        return exprs
    for i, e in enumerate(exprs):
        try:
            parse(e)
        except ValueError as exc:
            raise _err(f"{where}[{i}]", str(exc)) from None
    return exprs


# ----------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Embodiment:
    """Which robot the skill drives and in which action convention."""

    robot: str
    arm_joint_names: tuple[str, ...]
    finger_joint_names: tuple[str, ...]
    action_mode: str = "ee_delta"

    @classmethod
    def from_dict(cls, d: Any, where: str = "embodiment") -> "Embodiment":
        d = _obj(d, where)
        _fields(d, where, ("robot", "arm_joint_names", "finger_joint_names", "action_mode"))
        mode = d["action_mode"]
        if mode not in ACTION_MODES:
            raise _err(f"{where}.action_mode", f"unknown {mode!r}; valid: {list(ACTION_MODES)}")
        return cls(
            robot=_str(d["robot"], f"{where}.robot", 128),  # type: ignore[arg-type]
            arm_joint_names=tuple(_str_list(d["arm_joint_names"], f"{where}.arm_joint_names", max_items=64)),
            finger_joint_names=tuple(_str_list(d["finger_joint_names"], f"{where}.finger_joint_names", max_items=16)),
            action_mode=mode,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "robot": self.robot,
            "arm_joint_names": list(self.arm_joint_names),
            "finger_joint_names": list(self.finger_joint_names),
            "action_mode": self.action_mode,
        }


@dataclass(frozen=True)
class TaskSpec:
    """Task family (e.g. "push") and the Gymnasium id + kwargs the skill was trained or evaluated on."""

    family: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, where: str = "task") -> "TaskSpec":
        d = _obj(d, where)
        _fields(d, where, ("family", "env_id", "env_kwargs"))
        kwargs = _json_value(_obj(d["env_kwargs"], f"{where}.env_kwargs"), f"{where}.env_kwargs")
        return cls(_str(d["family"], f"{where}.family", 128), _str(d["env_id"], f"{where}.env_id", 256), kwargs)  # type: ignore[arg-type]

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
        d = _obj(d, where)
        _fields(d, where, ("name", "shape", "dtype", "mean", "std"))
        name = _str(d["name"], f"{where}.name", 64)
        if not _KEY_RE.match(name):  # type: ignore[arg-type]
            raise _err(f"{where}.name", f"{name!r} is not a valid key name")
        shape = _shape(d["shape"], f"{where}.shape")
        if d["dtype"] not in _OBS_DTYPES:
            raise _err(f"{where}.dtype", f"unknown dtype {d['dtype']!r}; valid: {list(_OBS_DTYPES)}")
        n = math.prod(shape)
        mean = None if d["mean"] is None else tuple(_num_list(d["mean"], f"{where}.mean", n))
        std = None if d["std"] is None else tuple(_num_list(d["std"], f"{where}.std", n, positive=True))
        if (mean is None) != (std is None):
            raise _err(where, "mean and std must both be given or both be null")
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
        d = _obj(d, where)
        _fields(d, where, ("keys", "clip"))
        keys = d["keys"]
        if not isinstance(keys, list) or not 1 <= len(keys) <= 32:
            raise _err(f"{where}.keys", f"expected a list of 1 to 32 key specs, got {_short(keys)}")
        parsed = tuple(ObservationKey.from_dict(k, f"{where}.keys[{i}]") for i, k in enumerate(keys))
        names = [k.name for k in parsed]
        if len(set(names)) != len(names):
            raise _err(f"{where}.keys", f"duplicate key names in {names}")
        if sum(k.size for k in parsed) > 1 << 20:
            raise _err(f"{where}.keys", "observation has more than 2^20 elements")
        clip = _num(d["clip"], f"{where}.clip", lo=1e-9, allow_none=True)
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
        d = _obj(d, where)
        _fields(d, where, ("shape", "dtype", "low", "high", "names", "network_output", "noise_std"))
        shape = _shape(d["shape"], f"{where}.shape")
        if len(shape) != 1:
            raise _err(f"{where}.shape", f"actions are vectors; got shape {list(shape)}")
        if d["dtype"] not in _OBS_DTYPES:
            raise _err(f"{where}.dtype", f"unknown dtype {d['dtype']!r}; valid: {list(_OBS_DTYPES)}")
        n = shape[0]
        low = tuple(_num_list(d["low"], f"{where}.low", n))
        high = tuple(_num_list(d["high"], f"{where}.high", n))
        if any(lo >= hi for lo, hi in zip(low, high)):
            raise _err(where, "every low must be < high")
        names = None if d["names"] is None else tuple(_str_list(d["names"], f"{where}.names", max_items=n))
        if names is not None and len(names) != n:
            raise _err(f"{where}.names", f"expected {n} names, got {len(names)}")
        if d["network_output"] not in ("unit", "raw"):
            raise _err(f"{where}.network_output", f"unknown {d['network_output']!r}; valid: ['unit', 'raw']")
        noise = _num(d["noise_std"], f"{where}.noise_std", lo=0.0, hi=10.0)
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
        d = _obj(d, where)
        _fields(d, where, ("name", "params"))
        name = _str(d["name"], f"{where}.name", 64)
        params = _json_value(_obj(d["params"], f"{where}.params"), f"{where}.params")
        from skill_library.scripted import validate_controller

        try:
            validate_controller(name, params)  # type: ignore[arg-type]
        except SkillPackageError as exc:
            raise _err(where, str(exc)) from None
        return cls(name, params)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}


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
        d = _obj(d, where)
        _fields(d, where, ("command", "config", "seed", "env_steps", "source_commit", "date", "eval"))
        return cls(
            command=_str(d["command"], f"{where}.command", 65536, allow_none=True),
            config=_json_value(d["config"], f"{where}.config"),
            seed=_int(d["seed"], f"{where}.seed", -(2**63), 2**64, allow_none=True),
            env_steps=_int(d["env_steps"], f"{where}.env_steps", allow_none=True),
            source_commit=_str(d["source_commit"], f"{where}.source_commit", 128, allow_none=True),
            date=_str(d["date"], f"{where}.date", 64, allow_none=True),
            eval=_json_value(d["eval"], f"{where}.eval"),
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


def _validate_descriptors(d: Any, where: str = "descriptors") -> dict[str, Any] | None:
    if d is None:
        return None
    d = _obj(d, where)
    _fields(
        d,
        where,
        ("env_id", "variable", "axes", "seed", "episodes_per_cell", "max_steps", "cells", "totals"),
        ("env_kwargs", "date", "control_dt", "cell_size", "setup", "obs_source"),
    )
    _str(d["env_id"], f"{where}.env_id", 256)
    _str(d["variable"], f"{where}.variable", 64)
    _int(d["seed"], f"{where}.seed", 0, 2**63)
    _int(d["episodes_per_cell"], f"{where}.episodes_per_cell", 1, 1 << 20)
    _int(d["max_steps"], f"{where}.max_steps", 1, 1 << 24)
    axes = d["axes"]
    if not isinstance(axes, list) or not 1 <= len(axes) <= 4:
        raise _err(f"{where}.axes", "expected 1 to 4 lists of grid values")
    dims = []
    for i, ax in enumerate(axes):
        if not isinstance(ax, list) or not 1 <= len(ax) <= 4096:
            raise _err(f"{where}.axes[{i}]", "expected a list of 1 to 4096 numbers")
        for j, x in enumerate(ax):
            _num(x, f"{where}.axes[{i}][{j}]")
        dims.append(len(ax))
    cells = d["cells"]
    if not isinstance(cells, list) or len(cells) > 1 << 20:
        raise _err(f"{where}.cells", "expected a list of cells")
    stat_fields = ("episodes", "successes", "success_rate", "mean_duration_s", "mean_safety_cost")
    for i, c in enumerate(cells):
        w = f"{where}.cells[{i}]"
        c = _obj(c, w)
        _fields(c, w, ("index", "center", *stat_fields))
        idx = c["index"]
        if not isinstance(idx, list) or len(idx) != len(dims):
            raise _err(f"{w}.index", f"expected {len(dims)} integers")
        for a, (k, n) in enumerate(zip(idx, dims)):
            _int(k, f"{w}.index[{a}]", 0, n - 1)
        _num_list(c["center"], f"{w}.center", len(dims))
        _validate_stats(c, w)
    totals = _obj(d["totals"], f"{where}.totals")
    _fields(totals, f"{where}.totals", stat_fields)
    _validate_stats(totals, f"{where}.totals")
    if "env_kwargs" in d:
        _obj(d["env_kwargs"], f"{where}.env_kwargs")
    if "date" in d:
        _str(d["date"], f"{where}.date", 64, allow_none=True)
    if "control_dt" in d:
        _num(d["control_dt"], f"{where}.control_dt", lo=0.0)
    if "cell_size" in d:
        _num_list(d["cell_size"], f"{where}.cell_size", len(dims))
    if "setup" in d and d["setup"] not in ("auto", "none"):
        raise _err(f"{where}.setup", f"unknown {_short(d['setup'])}; valid: ['auto', 'none']")
    if d.get("obs_source") is not None:
        src = _obj(d["obs_source"], f"{where}.obs_source")
        _fields(src, f"{where}.obs_source", ("key", "start"))
        _str(src["key"], f"{where}.obs_source.key", 64)
        _int(src["start"], f"{where}.obs_source.start", 0, 1 << 20)
    return _json_value(d, where)


def _validate_stats(c: Mapping[str, Any], w: str) -> None:
    n = _int(c["episodes"], f"{w}.episodes", 0, 1 << 40)
    k = _int(c["successes"], f"{w}.successes", 0, 1 << 40)
    if k > n:  # type: ignore[operator]
        raise _err(w, "successes > episodes")
    _num(c["success_rate"], f"{w}.success_rate", 0.0, 1.0)
    _num(c["mean_duration_s"], f"{w}.mean_duration_s", 0.0)
    _num(c["mean_safety_cost"], f"{w}.mean_safety_cost", 0.0)


_TOP_REQUIRED = (
    "format", "format_version", "name", "version", "kind", "description", "tags", "embodiment", "task",
    "observation", "action", "control_hz", "network", "controller", "preconditions", "effects",
    "descriptors", "provenance", "files",
)  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    """A validated skill manifest (see module docstring for the schema)."""

    name: str
    version: str
    kind: str
    embodiment: Embodiment
    task: TaskSpec
    observation: ObservationSpec
    action: ActionSpec
    control_hz: float
    network: dict[str, Any] | None = None
    controller: ControllerSpec | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    preconditions: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    descriptors: dict[str, Any] | None = None
    provenance: Provenance = field(default_factory=Provenance)
    files: dict[str, str] = field(default_factory=dict)
    # The manifest_digest read from disk (None for a manifest built in code); not serialised.
    source_digest: str | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        """`name@version`."""
        return f"{self.name}@{self.version}"

    @classmethod
    def from_dict(cls, d: Any, *, check_digest: bool = True) -> "Manifest":
        """Validate a parsed manifest; raises `SkillPackageError` naming the first bad field."""
        d = _obj(d, "top level")
        _fields(d, "top level", _TOP_REQUIRED, ("manifest_digest",))
        if d["format"] != FORMAT:
            raise _err("format", f"expected {FORMAT!r}, got {_short(d['format'])}")
        if d["format_version"] != FORMAT_VERSION or isinstance(d["format_version"], bool):
            raise _err("format_version", f"unsupported {_short(d['format_version'])}; this library reads {FORMAT_VERSION}")
        if check_digest:
            digest = d.get("manifest_digest")
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise _err("manifest_digest", "missing or not a sha256 hex digest")
            if compute_digest(d) != digest:
                raise SkillIntegrityError("manifest.json: content does not match manifest_digest (file was changed)")
        name = validate_name(d["name"])
        version = d["version"]
        parse_version(version)
        kind = d["kind"]
        if kind not in KINDS:
            raise _err("kind", f"unknown kind {_short(kind)}; valid: {list(KINDS)}")
        observation = ObservationSpec.from_dict(d["observation"])
        action = ActionSpec.from_dict(d["action"])
        network = controller = None
        if kind == "scripted":
            if d["network"] is not None:
                raise _err("network", "scripted skills have no network (must be null)")
            controller = ControllerSpec.from_dict(d["controller"])
        else:
            if d["controller"] is not None:
                raise _err("controller", f"{kind} skills run a network; controller must be null")
            from policies.networks import NetworkSpecError, validate_arch

            try:
                network = validate_arch(d["network"])
            except NetworkSpecError as exc:
                raise _err("network", str(exc)) from None
            if network.get("in_dim") is not None and network["in_dim"] != observation.size:
                raise _err("network.in_dim", f"{network['in_dim']} != observation size {observation.size}")
            if network.get("out_dim") is not None and network["out_dim"] != action.size:
                raise _err("network.out_dim", f"{network['out_dim']} != action size {action.size}")
        files = _obj(d["files"], "files")
        for fname, digest in files.items():
            if fname not in ALLOWED_FILES:
                raise _err("files", f"file {fname!r} is not allowed in a package; allowed: {sorted(ALLOWED_FILES)}")
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise _err(f"files.{fname}", "expected a lowercase sha256 hex digest")
        for fname, required in ALLOWED_FILES.items():
            if required and fname not in files:
                raise _err("files", f"must list {fname}")
        return cls(
            name=name,
            version=version,
            kind=kind,
            embodiment=Embodiment.from_dict(d["embodiment"]),
            task=TaskSpec.from_dict(d["task"]),
            observation=observation,
            action=action,
            control_hz=_num(d["control_hz"], "control_hz", 1e-3, 1e5),  # type: ignore[arg-type]
            network=network,
            controller=controller,
            description=_str(d["description"], "description", 65536),  # type: ignore[arg-type]
            tags=tuple(_str_list(d["tags"], "tags", _TAG_RE, max_items=64)),
            preconditions=tuple(_predicates(d["preconditions"], "preconditions")),
            effects=tuple(_predicates(d["effects"], "effects")),
            descriptors=_validate_descriptors(d["descriptors"]),
            provenance=Provenance.from_dict(d["provenance"]),
            files=dict(files),
            source_digest=d.get("manifest_digest") if isinstance(d.get("manifest_digest"), str) else None,
        )

    def to_dict(self, *, with_digest: bool = True) -> dict[str, Any]:
        """JSON-able dict; with `with_digest` the `manifest_digest` over the rest is included."""
        d: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "description": self.description,
            "tags": list(self.tags),
            "embodiment": self.embodiment.to_dict(),
            "task": self.task.to_dict(),
            "observation": self.observation.to_dict(),
            "action": self.action.to_dict(),
            "control_hz": self.control_hz,
            "network": None if self.network is None else dict(self.network),
            "controller": None if self.controller is None else self.controller.to_dict(),
            "preconditions": list(self.preconditions),
            "effects": list(self.effects),
            "descriptors": self.descriptors,
            "provenance": self.provenance.to_dict(),
            "files": dict(sorted(self.files.items())),
        }
        # Round-trip through JSON so the digest is over exactly what is written.
        d = json.loads(json.dumps(d, allow_nan=False))
        if with_digest:
            d["manifest_digest"] = compute_digest(d)
        return d

    def to_bytes(self) -> bytes:
        """The canonical bytes of `manifest.json` for this manifest (sealed with its digest)."""
        return canonical_bytes(self.to_dict())


def compute_digest(d: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical compact JSON of `d` without its `manifest_digest` field."""
    body = {k: v for k, v in d.items() if k != "manifest_digest"}
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(data.encode("ascii")).hexdigest()


def canonical_bytes(d: Mapping[str, Any]) -> bytes:
    """The one accepted on-disk form of a manifest: sorted keys, 2-space indent, ASCII, trailing newline."""
    return (json.dumps(d, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _err("top level", f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise _err("top level", f"{name} is not valid JSON")


def parse_manifest_bytes(data: bytes, *, check_digest: bool = True, check_canonical: bool = True) -> Manifest:
    """Parse and validate the bytes of a `manifest.json`.

    Strict JSON (UTF-8, no NaN/Infinity, no duplicate keys, bounded size and nesting);
    with `check_canonical` the bytes must equal the canonical form, so no byte can be
    changed without refusal. Raises `SkillPackageError` (or its `SkillIntegrityError`).
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise _err("top level", f"{len(data)} bytes exceeds the {MAX_MANIFEST_BYTES}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _err("top level", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    depth = max_depth = 0
    in_str = esc = False
    for ch in text:  # cheap nesting bound before json recursion
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            max_depth = max(max_depth, depth)
            if max_depth > _MAX_JSON_DEPTH:
                raise _err("top level", f"nesting deeper than {_MAX_JSON_DEPTH}")
        elif ch in "]}":
            depth -= 1
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise _err("top level", f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _err("top level", "nesting too deep") from None
    try:
        manifest = Manifest.from_dict(raw, check_digest=check_digest)
    except RecursionError:
        raise _err("top level", "nesting too deep") from None
    if check_canonical and canonical_bytes(raw) != data:
        raise SkillIntegrityError("manifest.json: bytes differ from the canonical form the library writes (file was edited)")
    return manifest
