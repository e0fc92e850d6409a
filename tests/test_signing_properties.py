"""Property tests over signed packages: every single-byte change of every file, every re-sealing with
another key or none, every replay of an old signature on a new manifest is refused.

Counts of what was tried and refused are kept per attack and checked (and printed, for
docs/signing.md) by the last test: `pytest -s tests/test_signing_properties.py`.
"""

from __future__ import annotations

import atexit
import copy
import json
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skill_library.errors import SkillLibraryError
from skill_library.keyring import Keyring
from skill_library.manifest import canonical_bytes, compute_digest
from skill_library.package import read_package
from skill_library.registry import SkillLibrary
from skill_library.signing import SIGNATURE_FILE, sign_manifest_dict
from skill_library.testing import make_random_skill

_WORK = Path(tempfile.mkdtemp(prefix="skillstack-signing-props-"))
atexit.register(shutil.rmtree, _WORK, True)
TRIED: Counter = Counter()
REFUSED: Counter = Counter()
FILES = ("manifest.json", SIGNATURE_FILE, "weights.safetensors", "eval.mp4")


@pytest.fixture(scope="module", autouse=True)
def keys():
    """The user (trusted, publisher of `hyp`), a second trusted author, an untrusted stranger; a library
    where `hyp@1.0.0` is installed; the package as published."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKILLSTACK_KEYS", str(_WORK / "keys"))
        ring = Keyring()
        user = ring.generate("user")
        trusted = Keyring(_WORK / "colleague").generate("colleague")
        ring.trust(trusted.public, source="test")
        stranger = Keyring(_WORK / "stranger").generate("stranger")
        make_random_skill(_WORK / "template", name="hyp", version="1.0.0", hidden=(4,), seed=1,
                          eval_video_bytes=b"\x00\x00\x00\x18ftypmp42" + bytes(range(40)))  # fmt: skip
        SkillLibrary(_WORK / "lib").add(_WORK / "template")
        yield {"user": user, "trusted": trusted, "stranger": stranger}


def _fresh() -> Path:
    pkg = Path(tempfile.mkdtemp(dir=_WORK)) / "pkg"
    shutil.copytree(_WORK / "template", pkg)
    return pkg


def _refused_on_load_and_add(pkg: Path, attack: str) -> None:
    """Count one attempt; it must be refused both by the reader and by `skills add` (library unchanged)."""
    TRIED[attack] += 1
    lib = SkillLibrary(_WORK / "lib")
    index = lib.index_path.read_bytes()
    refused = 0
    try:
        read_package(pkg)
    except SkillLibraryError:
        refused += 1
    try:
        lib.add(pkg, force=True)
    except SkillLibraryError:
        refused += 1
    if refused == 2 and lib.index_path.read_bytes() == index:
        REFUSED[attack] += 1
    shutil.rmtree(pkg.parent, ignore_errors=True)
    assert refused == 2, f"{attack}: accepted"


def test_every_single_byte_change_of_every_file_is_refused():
    """Exhaustive: each byte of each file, changed to a different value, in its own copy (read_package)."""
    rng = random.Random(0)
    template = _WORK / "template"
    base = {f: (template / f).read_bytes() for f in FILES}
    for fname in FILES:
        work = Path(tempfile.mkdtemp(dir=_WORK)) / "pkg"
        shutil.copytree(template, work)
        for pos in range(len(base[fname])):
            data = bytearray(base[fname])
            data[pos] ^= rng.randrange(1, 256)
            (work / fname).write_bytes(bytes(data))
            TRIED["byte change"] += 1
            try:
                read_package(work)
            except SkillLibraryError:
                REFUSED["byte change"] += 1
        (work / fname).write_bytes(base[fname])
        read_package(work)  # the untouched copy still verifies: the refusals were the changes
        shutil.rmtree(work.parent)
    assert REFUSED["byte change"] == TRIED["byte change"] > 5000


@settings(max_examples=60)
@given(st.sampled_from(FILES), st.data())
def test_a_byte_change_is_refused_by_add_too(fname, data):
    pkg = _fresh()
    raw = bytearray((pkg / fname).read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    (pkg / fname).write_bytes(bytes(raw))
    _refused_on_load_and_add(pkg, "byte change (load + add)")


edits = st.fixed_dictionaries({}, optional={
    "description": st.text(max_size=20),
    "version": st.sampled_from(["1.0.0", "1.0.1", "2.0.0"]),
    "tags": st.lists(st.sampled_from(["a", "b", "test"]), max_size=3),
    "negate": st.booleans(),
})  # fmt: skip


def _edit(d: dict, edit: dict) -> dict:
    d = copy.deepcopy(d)
    for k in ("description", "version", "tags"):
        if k in edit:
            d[k] = edit[k]
    if edit.get("negate"):
        d["action"]["low"], d["action"]["high"] = d["action"]["high"], d["action"]["low"]
    return d


@pytest.mark.parametrize("how", ["none", "stranger", "trusted other key", "signer field only"])
@settings(max_examples=40)
@given(edit=edits)
def test_resealing_with_another_key_or_none_is_refused(keys, edit, how):
    pkg = _fresh()
    d = _edit(json.loads((pkg / "manifest.json").read_text()), edit)
    if how == "none":  # strip the signature and the signer, re-seal the digest
        d.pop("signer", None)
        d["manifest_digest"] = compute_digest(d)
        (pkg / "manifest.json").write_bytes(canonical_bytes(d))
        (pkg / SIGNATURE_FILE).unlink()
    elif how == "signer field only":  # claim the user's key, sign with the stranger's
        manifest, sig = sign_manifest_dict(d, keys["stranger"])
        body = json.loads(manifest)
        body["signer"] = json.loads((_WORK / "template" / "manifest.json").read_text())["signer"]
        body["manifest_digest"] = compute_digest(body)
        (pkg / "manifest.json").write_bytes(canonical_bytes(body))
        (pkg / SIGNATURE_FILE).write_bytes(sig)
    else:  # a valid signature by a key that is not the publisher's: untrusted, or trusted but not hyp's
        key = keys["stranger"] if how == "stranger" else keys["trusted"]
        manifest, sig = sign_manifest_dict(d, key)
        (pkg / "manifest.json").write_bytes(manifest)
        (pkg / SIGNATURE_FILE).write_bytes(sig)
        if how == "trusted other key":  # the reader accepts a trusted key; the library's TOFU must not
            TRIED["re-seal, trusted other key"] += 1
            lib = SkillLibrary(_WORK / "lib")
            index = lib.index_path.read_bytes()
            try:
                lib.add(pkg, force=True)
            except SkillLibraryError:
                REFUSED["re-seal, trusted other key"] += int(lib.index_path.read_bytes() == index)
            shutil.rmtree(pkg.parent, ignore_errors=True)
            assert REFUSED["re-seal, trusted other key"] == TRIED["re-seal, trusted other key"]
            return
    _refused_on_load_and_add(pkg, f"re-seal, {how}")


@settings(max_examples=60)
@given(edits, st.booleans())
def test_replayed_signature_on_a_new_manifest_is_refused(keys, edit, from_other_package):
    """A new manifest (properly re-sealed, same signer named) carrying an old signature: the publisher's
    signature of the original manifest, or of another package the same key signed."""
    pkg = _fresh()
    d = _edit(json.loads((pkg / "manifest.json").read_text()), edit)
    if d == json.loads((pkg / "manifest.json").read_text()):
        d["description"] += " (edited)"
    d["manifest_digest"] = compute_digest(d)
    (pkg / "manifest.json").write_bytes(canonical_bytes(d))
    if from_other_package:
        other = _WORK / "other_pkg"
        if not other.exists():
            make_random_skill(other, name="other", version="3.0.0", hidden=(4,), seed=9)
        shutil.copyfile(other / SIGNATURE_FILE, pkg / SIGNATURE_FILE)
    _refused_on_load_and_add(pkg, "replayed signature")


def test_zz_counts_tried_and_refused():
    """Every attack above was refused every time (printed for docs/signing.md with -s)."""
    assert TRIED and set(TRIED) == set(REFUSED)
    print("\nattack                          tried  refused")
    for attack in sorted(TRIED):
        print(f"{attack:<30}  {TRIED[attack]:>5}  {REFUSED[attack]:>7}  ({100 * REFUSED[attack] / TRIED[attack]:.0f} %)")
        assert REFUSED[attack] == TRIED[attack]
