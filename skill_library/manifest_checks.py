"""Field checks for `manifest.json`: each takes a parsed JSON value and where it sits, and
returns the typed value or raises a `SkillPackageError` naming that field.

The manifest's sections (`manifest_sections`) and its top level (`manifest`) are both built
from these, so the rules for "a string", "a finite number", "a shape" or "a skill name" are
written once and every refusal reads the same. Kept apart from the schema so the schema
modules read as the list of fields they check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from skill_library.errors import SkillPackageError

__all__ = [
    "as_int",
    "as_json_value",
    "as_number",
    "as_number_list",
    "as_object",
    "as_predicates",
    "as_shape",
    "as_str",
    "as_str_list",
    "check_fields",
    "field_error",
    "parse_version",
    "short_repr",
    "validate_name",
    "version_key",
]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


def field_error(where: str, msg: str) -> SkillPackageError:
    """The error for a bad manifest field: `SkillPackageError("manifest.json: <where>: <msg>")`."""
    return SkillPackageError(f"manifest.json: {where}: {msg}")


def validate_name(name: Any, where: str = "name") -> str:
    """Check a skill name: lowercase letters, digits, '_', '.', '-'; starts alphanumeric; at most 64 chars."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise field_error(where, f"{name!r} is not a valid skill name (pattern [a-z0-9][a-z0-9_.-]{{0,63}})")
    return name


def parse_version(version: Any, where: str = "version") -> tuple[int, int, int, tuple[Any, ...]]:
    """Parse a semantic version; returns (major, minor, patch, prerelease identifiers)."""
    if not isinstance(version, str) or len(version) > 64:
        raise field_error(where, f"{version!r} is not a semantic version like 1.2.3")
    m = _SEMVER.match(version)
    if not m:
        raise field_error(where, f"{version!r} is not a semantic version like 1.2.3")
    pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre


def version_key(version: str) -> tuple[Any, ...]:
    """Sort key giving semver precedence: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0; build ignored."""
    major, minor, patch, pre = parse_version(version)
    # A release sorts after all its pre-releases; numeric identifiers sort before alphanumeric.
    pre_key = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre)
    return (major, minor, patch, 1 if not pre else 0, pre_key)


def as_object(d: Any, where: str) -> Mapping[str, Any]:
    """`d` if it is a JSON object, else an error naming `where`."""
    if not isinstance(d, Mapping):
        raise field_error(where, f"expected an object, got {type(d).__name__}")
    return d


def check_fields(d: Mapping[str, Any], where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Refuse an object that lacks a required field or has one outside `required` + `optional`."""
    missing = [k for k in required if k not in d]
    if missing:
        raise field_error(where, f"missing field(s) {missing}")
    extra = sorted(set(d) - set(required) - set(optional))
    if extra:
        raise field_error(where, f"unknown field(s) {extra}; valid: {sorted(required + optional)}")


def as_str(v: Any, where: str, max_len: int = 4096, allow_none: bool = False) -> str | None:
    """`v` if it is a string of at most `max_len` characters (or None when `allow_none`)."""
    if v is None and allow_none:
        return None
    if not isinstance(v, str) or len(v) > max_len:
        raise field_error(where, f"expected a string of at most {max_len} characters, got {short_repr(v)}")
    return v


def as_int(v: Any, where: str, lo: int = 0, hi: int = 2**62, allow_none: bool = False) -> int | None:
    """`v` if it is an integer (not a bool) in [lo, hi] (or None when `allow_none`)."""
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise field_error(where, f"expected an integer in [{lo}, {hi}], got {short_repr(v)}")
    return v


def as_number(v: Any, where: str, lo: float = -math.inf, hi: float = math.inf, allow_none: bool = False) -> float | None:
    """`v` as a float if it is a finite number (not a bool) in [lo, hi] (or None when `allow_none`)."""
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise field_error(where, f"expected a finite number in [{lo}, {hi}], got {short_repr(v)}")
    return float(v)


def as_str_list(v: Any, where: str, pattern: re.Pattern[str] | None = None, max_items: int = 256) -> list[str]:
    """`v` if it is a list of at most `max_items` short strings, each matching `pattern` when given."""
    if not isinstance(v, list) or len(v) > max_items:
        raise field_error(where, f"expected a list of at most {max_items} strings, got {short_repr(v)}")
    out = []
    for i, s in enumerate(v):
        as_str(s, f"{where}[{i}]", 256)
        if pattern is not None and not pattern.match(s):
            raise field_error(f"{where}[{i}]", f"{s!r} does not match {pattern.pattern}")
        out.append(s)
    return out


def as_number_list(v: Any, where: str, n: int, positive: bool = False) -> list[float]:
    """`v` as floats if it is a list of exactly `n` finite numbers (all > 0 when `positive`)."""
    if not isinstance(v, list) or len(v) != n:
        raise field_error(where, f"expected a list of {n} numbers, got {short_repr(v)}")
    lo = 0.0 if positive else -math.inf
    out = [as_number(x, f"{where}[{i}]", lo=lo) for i, x in enumerate(v)]
    if positive and any(x == 0.0 for x in out):
        raise field_error(where, "values must be > 0")
    return out  # type: ignore[return-value]


def as_shape(v: Any, where: str) -> tuple[int, ...]:
    """`v` as a tensor shape: 1 to 4 positive integers, at most 2^20 elements in all."""
    if not isinstance(v, list) or not 1 <= len(v) <= 4:
        raise field_error(where, f"expected a shape list of 1 to 4 positive integers, got {short_repr(v)}")
    shape = tuple(as_int(d, f"{where}[{i}]", 1, 1 << 20) for i, d in enumerate(v))
    if math.prod(shape) > 1 << 20:  # type: ignore[arg-type]
        raise field_error(where, f"shape {shape} has more than 2^20 elements")
    return shape  # type: ignore[return-value]


def as_json_value(v: Any, where: str) -> Any:
    """Free-form JSON data (provenance config/eval, env kwargs): any JSON value, no NaN."""
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise field_error(where, "NaN/Infinity are not JSON")
        return v
    if isinstance(v, list):
        return [as_json_value(x, f"{where}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        for k in v:
            if not isinstance(k, str):
                raise field_error(where, f"object key {k!r} is not a string")
        return {k: as_json_value(x, f"{where}.{k}") for k, x in v.items()}
    raise field_error(where, f"{type(v).__name__} is not JSON data")


def short_repr(v: Any) -> str:
    """`repr(v)` cut to 60 characters, for error messages."""
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def as_predicates(v: Any, where: str) -> list[str]:
    """`v` if it is a list of predicate expressions that `envs.predicates.parse` accepts."""
    exprs = as_str_list(v, where, max_items=64)
    try:
        from envs.predicates import parse
    except ImportError:  # pragma: no cover - envs is part of this project
        return exprs
    for i, e in enumerate(exprs):
        try:
            parse(e)
        except ValueError as exc:
            raise field_error(f"{where}[{i}]", str(exc)) from None
    return exprs

