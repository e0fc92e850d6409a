"""Property-based manifests: each either loads or fails with the library's own error, and a
failed add never changes the library."""

from __future__ import annotations

import atexit
import copy
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skill_library.errors import SkillLibraryError
from skill_library.keyring import Keyring
from skill_library.registry import SkillLibrary
from skill_library.signing import SIGNATURE_FILE, sign_manifest_dict
from skill_library.skill import load_skill
from skill_library.testing import make_random_skill

_WORK = Path(tempfile.mkdtemp(prefix="skillstack-hyp-"))
atexit.register(shutil.rmtree, _WORK, True)
_TEMPLATE = _WORK / "template"
_LIB_ROOT = _WORK / "lib"


def _setup() -> dict[str, Any]:
    if not _TEMPLATE.exists():
        make_random_skill(_TEMPLATE, name="hyp", version="1.0.0", hidden=(4,), seed=1, effects=("at(red)",))
        SkillLibrary(_LIB_ROOT).add(_TEMPLATE)  # the library is never empty: changes would show
    return json.loads((_TEMPLATE / "manifest.json").read_text())


BASE = _setup()


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            if prefix == () and k == "manifest_digest":
                continue
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += _paths(v, prefix + (i,))
    return out


PATHS = _paths(BASE)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
mutation = st.tuples(st.sampled_from(["replace", "delete", "add_key"]), st.sampled_from(PATHS), json_values)


def _apply(d: dict, kind: str, path: tuple, value: Any) -> None:
    parent = d
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if kind == "replace":
        parent[last] = value
    elif kind == "delete":
        del parent[last]  # dict or list; TypeError where an earlier mutation left no container here
    else:
        target = parent[last]
        if isinstance(target, dict):
            target["x_unknown"] = value
        else:
            parent[last] = value


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _signed(d: dict) -> tuple[bytes, bytes]:
    """Re-seal and re-sign a manifest dict as its author (the user's key) would."""
    return sign_manifest_dict(d, Keyring().default_key())


def _check(manifest_bytes: bytes, signature_bytes: bytes | None = None) -> str:
    work = Path(tempfile.mkdtemp(dir=_WORK))
    pkg = work / "pkg"
    shutil.copytree(_TEMPLATE, pkg)
    (pkg / "manifest.json").write_bytes(manifest_bytes)
    if signature_bytes is not None:
        (pkg / SIGNATURE_FILE).write_bytes(signature_bytes)
    lib = SkillLibrary(_LIB_ROOT)
    before = _tree(_LIB_ROOT)
    try:
        try:
            skill = load_skill(pkg)
        except SkillLibraryError:
            outcome = "refused"
        else:
            x = np.zeros(skill.manifest.observation.size)
            a = skill(x)
            assert a.shape == skill.manifest.action.shape and np.all(np.isfinite(a))
            outcome = "loaded"
        try:
            entry = lib.add(pkg, force=True)
        except SkillLibraryError:
            assert outcome == "refused", "add refused a package that loads"
            assert _tree(_LIB_ROOT) == before, "a refused add changed the library"
        else:
            assert outcome == "loaded", "add accepted a package that does not load"
            assert lib.load(entry.ref).manifest == skill.manifest
            if entry.ref != "hyp@1.0.0":
                lib.remove(entry.ref)
            else:  # restore the original
                lib.add(_TEMPLATE, force=True)
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=3), st.booleans())
def test_mutated_manifests_load_or_raise_library_error(mutations, seal):
    d = copy.deepcopy(BASE)
    for kind, path, value in mutations:
        try:
            _apply(d, kind, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    if seal:
        outcome = _check(*_signed(d))
    else:
        outcome = _check(json.dumps(d).encode())
    if not seal and d != BASE:
        assert outcome == "refused"


@settings(max_examples=60, deadline=None)
@given(json_values | st.binary(max_size=64).map(lambda b: b.decode("latin-1")))
def test_arbitrary_json_or_bytes_as_manifest_is_refused(value):
    data = value.encode("latin-1", "replace") if isinstance(value, str) and not value.startswith("{") else None
    raw = data if data is not None else json.dumps(value).encode()
    assert _check(raw) == "refused"


@pytest.mark.parametrize(
    "payload",
    [b"[" * 100_000, b'{"a": NaN}', b'{"format": 1, "format": 2}', b"\xff\xfe", b"", b"null"],
)
def test_hostile_manifest_bytes_are_refused(payload):
    assert _check(payload) == "refused"


def test_valid_reseal_still_loads():
    d = copy.deepcopy(BASE)
    d["description"] = "edited by its author and re-sealed"
    assert _check(*_signed(d)) == "loaded"
