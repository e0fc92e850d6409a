"""Typed configuration dataclasses from plain mappings (YAML) and ``key.sub=value`` overrides.

The rules, in one place so every config class behaves alike (LeRobot's config classes are
the model; a small loader here because draccus/dacite are not dependencies of this project):

- a mapping becomes the dataclass its field is typed with; a key the class does not have is
  an error naming the full key and the allowed ones (``UnknownConfigKeyError``);
- a scalar must have its field's type (``ConfigTypeError`` names the key, the expected type
  and what it got); an int is accepted for a float, and so is a string that parses as one
  (PyYAML reads ``1e-3`` as a string);
- an optional section (``HerConfig | None``) is switched off by ``null`` or ``{}``;
- an override's value is parsed as YAML, except for a field typed ``str``, which takes the
  text as written (``--set export.version=1.10`` stays ``"1.10"``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union

import yaml

__all__ = [
    "ConfigError",
    "ConfigSection",
    "ConfigTypeError",
    "UnknownConfigKeyError",
    "apply_overrides",
    "from_mapping",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot be used: the message names the key."""


class ConfigTypeError(ConfigError):
    """A config value of the wrong type or out of range."""


class UnknownConfigKeyError(ConfigError, KeyError):
    """A config key that no config class has (a ``KeyError`` too, as the dict config raised)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigSection:
    """Base of the config dataclasses: ``to_dict`` for YAML/JSON, and mapping-style reads
    (``cfg["eval"]["freq"]``, ``cfg.get("her")``) for scripts written against the dict config."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts and lists (what ``config.yaml`` and provenance store)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in dataclasses.fields(self)}:  # type: ignore[arg-type]
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``getattr`` with a default, like ``dict.get``."""
        try:
            return self[key]
        except KeyError:
            return default


def _join(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    if origin is not None:
        return f"a {origin.__name__}"
    return getattr(tp, "__name__", str(tp))


def _type_error(tp: Any, value: Any, where: str) -> ConfigTypeError:
    return ConfigTypeError(f"config key {where!r}: expected {_describe(tp)}, got {type(value).__name__} {value!r}")


def _convert(tp: Any, value: Any, where: str) -> Any:
    """``value`` checked against (and converted to) type ``tp``; raises naming ``where``."""
    if tp is Any:
        return copy.deepcopy(value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        sections = [a for a in args if dataclasses.is_dataclass(a)]
        if sections and isinstance(value, Mapping):
            if not value and type(None) in args:
                return None  # `{}` switches an optional section off
            return from_mapping(sections[0], value, where)
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigTypeError:
                continue
        raise _type_error(tp, value, where)
    if origin is Literal:
        if value in args and not (isinstance(value, bool) and not any(isinstance(a, bool) for a in args)):
            return value
        raise _type_error(tp, value, where)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_mapping(tp, value, where)
        raise _type_error(tp, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _type_error(tp, value, where)
        item = args[0] if args else Any
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _type_error(tp, value, where)
        item = args[1] if len(args) == 2 else Any
        return {str(k): _convert(item, v, _join(where, k)) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a field type this loader does not know is a bug in the config class
        raise TypeError(f"config key {where!r}: unsupported field type {tp!r}")
    raise _type_error(tp, value, where)


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build config dataclass ``cls`` from ``data``: defaults for missing keys, type-checked
    values, nested sections built recursively. ``where`` is the key path (for messages)."""
    if not isinstance(data, Mapping):
        raise ConfigTypeError(f"{where or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        place = f"under {where!r}" if where else "at the top level"
        hints = [f"{_join(where, k)!r} -> {m[0]!r}" for k in unknown if (m := difflib.get_close_matches(k, fields, 1))]
        raise UnknownConfigKeyError(
            f"unknown config keys {[_join(where, k) for k in unknown]}; allowed {place}: {sorted(fields)}"
            + (f" (did you mean {', '.join(hints)}?)" if hints else "")
        )
    types_ = typing.get_type_hints(cls)
    kwargs = {key: _convert(types_[key], value, _join(where, key)) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError) as exc:  # a section's own __post_init__ checks
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ConfigTypeError(f"{where or 'config'}: {msg}") from None


def _field_type(schema: Any, parts: Sequence[str]) -> Any:
    """The declared type at a dotted key path of ``schema`` (``None`` where it is not typed)."""
    tp = schema
    for part in parts:
        args = typing.get_args(tp)
        if typing.get_origin(tp) in (Union, types.UnionType):
            sections = [a for a in args if dataclasses.is_dataclass(a)]
            tp = sections[0] if sections else None
        if not dataclasses.is_dataclass(tp):
            return None
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return None
        tp = hints[part]
    return tp


def _is_text(tp: Any) -> bool:
    if tp is str:
        return True
    args = typing.get_args(tp)
    return typing.get_origin(tp) in (Union, types.UnionType) and [a for a in args if a is not type(None)] == [str]


def apply_overrides(config: Mapping[str, Any], overrides: Sequence[str], schema: type | None = None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a copy of the mapping ``config`` and return it.

    Values are parsed as YAML (``[32, 32]``, ``{n_sampled_goal: 4}``, ``null``), except that a
    key ``schema`` types as ``str`` keeps its text as written. Missing intermediate mappings are
    created. Raises ``ValueError`` for a malformed override.
    """
    out = copy.deepcopy(dict(config))
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not key.strip() or not all(parts):
            raise ValueError(f"override {item!r} is not KEY=VALUE (e.g. total_timesteps=5000)")
        if schema is not None and _is_text(_field_type(schema, parts)) and raw.strip() not in ("", "null", "~"):
            value: Any = raw
        else:
            try:
                value = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError as exc:
                raise ValueError(f"override {item!r}: value is not valid YAML ({exc})") from None
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out
