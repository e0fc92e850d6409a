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
- ``embodiment``: {robot, arm_joint_names, finger_joint_names, action_mode: "ee_delta"|"ee_delta_yaw"|"joint",
  optional obs_layout: "joint"|"tcp" and checked_on: [{robot, env_id, episodes, success_rate}]}
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
- ``signer`` (optional): {algorithm: "ed25519", key_id, name}: the key whose signature over the
  manifest digest sits beside the manifest in ``signature.json`` (see `skill_library.signing`);
  absent in an unsigned package
- ``manifest_digest``: sha256 hex (written by `seal`)

This module holds the top level: `Manifest`, its digest, the canonical bytes and the strict
parser. The sections (`Embodiment`, `ObservationSpec`, ...) live in `manifest_sections` and
the field checks in `manifest_checks`; every public name is importable from here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skill_library.errors import SkillIntegrityError
from skill_library.manifest_checks import (
    as_number,
    as_object,
    as_predicates,
    as_str,
    as_str_list,
    check_fields,
    field_error,
    parse_version,
    short_repr,
    validate_name,
    version_key,
)
from skill_library.manifest_sections import (
    ACTION_MODES,
    OBS_LAYOUTS,
    ActionSpec,
    ControllerSpec,
    Embodiment,
    ObservationKey,
    ObservationSpec,
    Provenance,
    SignerSpec,
    TaskSpec,
    as_descriptors,
)

__all__ = [
    "ACTION_MODES",
    "ALLOWED_FILES",
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "MAX_MANIFEST_BYTES",
    "OBS_LAYOUTS",
    "ActionSpec",
    "ControllerSpec",
    "Embodiment",
    "Manifest",
    "ObservationKey",
    "ObservationSpec",
    "Provenance",
    "SignerSpec",
    "TaskSpec",
    "canonical_bytes",
    "compute_digest",
    "load_manifest_json",
    "parse_manifest_bytes",
    "parse_version",
    "validate_name",
    "version_key",
]

FORMAT = "skillstack-skill"
FORMAT_VERSION = 1
KINDS = ("rl", "bc", "scripted")
WEIGHTS_FILE = "weights.safetensors"
# filename -> required; nothing else may be in a package directory besides manifest.json
ALLOWED_FILES: dict[str, bool] = {WEIGHTS_FILE: True, "eval.mp4": False}
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
_MAX_JSON_DEPTH = 64
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:=+-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


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
    signer: SignerSpec | None = None
    # The manifest_digest read from disk (None for a manifest built in code); not serialised.
    source_digest: str | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        """`name@version`."""
        return f"{self.name}@{self.version}"

    @property
    def obs_layout(self) -> str:
        """The observation layout the skill reads: recorded in its embodiment, else its task env's ("joint" by default)."""
        return self.embodiment.obs_layout or str(self.task.env_kwargs.get("obs_layout", "joint"))

    @classmethod
    def from_dict(cls, d: Any, *, check_digest: bool = True) -> "Manifest":
        """Validate a parsed manifest; raises `SkillPackageError` naming the first bad field."""
        d = as_object(d, "top level")
        check_fields(d, "top level", _TOP_REQUIRED, ("manifest_digest", "signer"))
        if d["format"] != FORMAT:
            raise field_error("format", f"expected {FORMAT!r}, got {short_repr(d['format'])}")
        if d["format_version"] != FORMAT_VERSION or isinstance(d["format_version"], bool):
            raise field_error("format_version", f"unsupported {short_repr(d['format_version'])}; this library reads {FORMAT_VERSION}")
        if check_digest:
            digest = d.get("manifest_digest")
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise field_error("manifest_digest", "missing or not a sha256 hex digest")
            if compute_digest(d) != digest:
                raise SkillIntegrityError("manifest.json: content does not match manifest_digest (file was changed)")
        name = validate_name(d["name"])
        version = d["version"]
        parse_version(version)
        kind = d["kind"]
        if kind not in KINDS:
            raise field_error("kind", f"unknown kind {short_repr(kind)}; valid: {list(KINDS)}")
        observation = ObservationSpec.from_dict(d["observation"])
        action = ActionSpec.from_dict(d["action"])
        network = controller = None
        if kind == "scripted":
            if d["network"] is not None:
                raise field_error("network", "scripted skills have no network (must be null)")
            controller = ControllerSpec.from_dict(d["controller"])
        else:
            if d["controller"] is not None:
                raise field_error("controller", f"{kind} skills run a network; controller must be null")
            from policies.networks import NetworkSpecError, validate_arch

            try:
                network = validate_arch(d["network"])
            except NetworkSpecError as exc:
                raise field_error("network", str(exc)) from None
            if network.get("in_dim") is not None and network["in_dim"] != observation.size:
                raise field_error("network.in_dim", f"{network['in_dim']} != observation size {observation.size}")
            if network.get("out_dim") is not None and network["out_dim"] != action.size:
                raise field_error("network.out_dim", f"{network['out_dim']} != action size {action.size}")
        files = as_object(d["files"], "files")
        for fname, digest in files.items():
            if fname not in ALLOWED_FILES:
                raise field_error("files", f"file {fname!r} is not allowed in a package; allowed: {sorted(ALLOWED_FILES)}")
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise field_error(f"files.{fname}", "expected a lowercase sha256 hex digest")
        for fname, required in ALLOWED_FILES.items():
            if required and fname not in files:
                raise field_error("files", f"must list {fname}")
        return cls(
            name=name,
            version=version,
            kind=kind,
            embodiment=Embodiment.from_dict(d["embodiment"]),
            task=TaskSpec.from_dict(d["task"]),
            observation=observation,
            action=action,
            control_hz=as_number(d["control_hz"], "control_hz", 1e-3, 1e5),  # type: ignore[arg-type]
            network=network,
            controller=controller,
            description=as_str(d["description"], "description", 65536),  # type: ignore[arg-type]
            tags=tuple(as_str_list(d["tags"], "tags", _TAG_RE, max_items=64)),
            preconditions=tuple(as_predicates(d["preconditions"], "preconditions")),
            effects=tuple(as_predicates(d["effects"], "effects")),
            descriptors=as_descriptors(d["descriptors"]),
            provenance=Provenance.from_dict(d["provenance"]),
            files=dict(files),
            signer=None if d.get("signer") is None else SignerSpec.from_dict(d["signer"]),
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
        if self.signer is not None:  # absent, not null, in an unsigned manifest (older digests stay valid)
            d["signer"] = self.signer.to_dict()
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
            raise field_error("top level", f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise field_error("top level", f"{name} is not valid JSON")


def load_manifest_json(data: bytes, *, check_digest: bool = True, check_canonical: bool = True) -> dict[str, Any]:
    """The JSON object of a `manifest.json`'s bytes, before its schema is checked.

    Strict JSON (UTF-8, no NaN/Infinity, no duplicate keys, bounded size and nesting); with
    `check_digest` its `manifest_digest` must match its content and with `check_canonical`
    the bytes must equal the canonical form, so no byte can be changed without refusal.
    The package reader verifies the signature over this digest before the schema is parsed.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise field_error("top level", f"{len(data)} bytes exceeds the {MAX_MANIFEST_BYTES}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise field_error("top level", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
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
                raise field_error("top level", f"nesting deeper than {_MAX_JSON_DEPTH}")
        elif ch in "]}":
            depth -= 1
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise field_error("top level", f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise field_error("top level", "nesting too deep") from None
    as_object(raw, "top level")
    if check_digest:
        digest = raw.get("manifest_digest")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise field_error("manifest_digest", "missing or not a sha256 hex digest")
        try:
            actual = compute_digest(raw)
        except (TypeError, ValueError):
            raise field_error("top level", "content cannot be put in canonical form") from None
        if actual != digest:
            raise SkillIntegrityError("manifest.json: content does not match manifest_digest (file was changed)")
    if check_canonical and canonical_bytes(raw) != data:
        raise SkillIntegrityError("manifest.json: bytes differ from the canonical form the library writes (file was edited)")
    return raw


def parse_manifest_bytes(data: bytes, *, check_digest: bool = True, check_canonical: bool = True) -> Manifest:
    """Parse and validate the bytes of a `manifest.json` (`load_manifest_json`, then the schema).

    Raises `SkillPackageError` (or its `SkillIntegrityError`) naming the bad field.
    """
    raw = load_manifest_json(data, check_digest=check_digest, check_canonical=check_canonical)
    try:
        return Manifest.from_dict(raw, check_digest=False)
    except RecursionError:
        raise field_error("top level", "nesting too deep") from None
