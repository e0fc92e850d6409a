"""Signed skills: keys and trust store, the add policy (unsigned, untrusted, trust on first use,
revocation), what a load checks against the index, and the audit log."""

from __future__ import annotations

import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import pytest
import torch

from skill_library.audit import read_audit
from skill_library.errors import (
    SkillIntegrityError,
    SkillLibraryError,
    SkillRevokedError,
    SkillSignatureError,
    SkillTrustError,
    SkillTrustWarning,
)
from skill_library.keyring import PROJECT_KEY_ID, Keyring, read_public_key_file
from skill_library.package import read_package, sign_package, write_package
from skill_library.registry import SkillLibrary
from skill_library.signing import SIGNATURE_FILE, SignaturePolicy
from skill_library.skill import load_skill
from skill_library.testing import make_random_skill, reseal

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A user key ring ($SKILLSTACK_KEYS), a second author's key ring, and packages by each."""
    root = tmp_path_factory.mktemp("signing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKILLSTACK_KEYS", str(root / "keys"))
        import envs

        env = envs.make("skillstack/PandaPush-v0")
        user = Keyring().generate("ana")
        other_ring = Keyring(root / "other-keys")
        other = other_ring.generate("bob")
        pk = {}
        for name, version, key in [("reach", "0.1.0", user), ("reach", "0.2.0", user), ("reach", "0.3.0", other),
                                   ("bob_skill", "1.0.0", other)]:  # fmt: skip
            path = root / f"{name}-{version}"
            make_random_skill(path, name=name, version=version, env=env, seed=len(pk))
            if key is not user:
                sign_package(path, key)
            pk[f"{name}@{version}"] = path
        env.close()
        yield {"root": root, "user": user, "other": other, "other_ring": other_ring, "pk": pk}


@pytest.fixture
def ring(work, monkeypatch, tmp_path):
    """A fresh copy of the user's key ring per test (trust changes stay inside the test)."""
    dst = tmp_path / "keys"
    shutil.copytree(work["root"] / "keys", dst)
    monkeypatch.setenv("SKILLSTACK_KEYS", str(dst))
    return Keyring(dst)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_keys_are_ed25519_files_with_owner_only_private_keys(work, ring):
    user = work["user"]
    assert ring.default_key_id() == user.key_id and ring.state(user.key_id) == "trusted"
    private = ring.root / f"{user.key_id}.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and stat.S_IMODE(ring.root.stat().st_mode) == 0o700
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    pub = read_public_key_file(ring.root / f"{user.key_id}.pub")
    assert pub.key_id == user.key_id and pub.name == "ana"
    assert ring.signing_key(user.key_id).sign(b"x") == user.sign(b"x")  # Ed25519 is deterministic
    # the project key ships with the code and is trusted by default; its .pub file is the same key
    shipped = read_public_key_file(REPO / "skill_library" / "keys" / "skillstack-project.pub")
    assert shipped.key_id == PROJECT_KEY_ID and ring.state(PROJECT_KEY_ID) == "trusted"


def test_default_key_is_generated_on_first_write_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKILLSTACK_KEYS", str(tmp_path / "fresh"))
    m = make_random_skill(tmp_path / "pkg", hidden=(4,))
    err = capsys.readouterr().err
    ring = Keyring()
    assert m.signer is not None and m.signer.key_id == ring.default_key_id()
    assert f"created your signing key {m.signer.key_id}" in err and "skillstack keys export" in err
    assert load_skill(tmp_path / "pkg").manifest.signer == m.signer
    assert [r["op"] for r in read_audit(ring.audit_path)] == ["generate"]


def test_unsigned_package_refused_unless_allowed_and_recorded(work, ring, tmp_path):
    pkg = tmp_path / "unsigned"
    m = read_package(work["pk"]["reach@0.1.0"]).manifest
    weights = (work["pk"]["reach@0.1.0"] / "weights.safetensors").read_bytes()
    write_package(pkg, m, weights_bytes=weights, sign=False)
    assert not (pkg / SIGNATURE_FILE).exists()
    with pytest.raises(SkillSignatureError, match="unsigned package"):
        load_skill(pkg)
    lib = SkillLibrary(tmp_path / "lib")
    with pytest.raises(SkillSignatureError, match="--allow-unsigned"):
        lib.add(pkg)
    assert lib.entries() == []
    with pytest.warns(SkillTrustWarning, match="allow-unsigned"):
        entry = lib.add(pkg, allow_unsigned=True)
    assert entry.trust == "unsigned" and entry.overrides == ("unsigned",) and entry.signer_key_id is None
    assert lib.load("reach").ref == "reach@0.1.0"  # loads: the library recorded the override
    ops = [(r["op"], r["details"].get("overrides")) for r in read_audit(lib.audit_path)]
    assert ops == [("add-refused", None), ("add", ["unsigned"])]


def test_untrusted_signer_refused_unless_allowed(work, ring, tmp_path):
    pkg = work["pk"]["bob_skill@1.0.0"]
    with pytest.raises(SkillTrustError, match="which you do not trust"):
        load_skill(pkg)
    lib = SkillLibrary(tmp_path / "lib")
    with pytest.raises(SkillTrustError, match="skillstack keys trust"):
        lib.add(pkg)
    with pytest.warns(SkillTrustWarning, match="allow-untrusted"):
        entry = lib.add(pkg, allow_untrusted=True)
    assert (entry.trust, entry.overrides, entry.signer_name) == ("untrusted", ("untrusted",), "bob")
    assert lib.load("bob_skill").ref == "bob_skill@1.0.0"
    # trusting bob's exported key makes his packages load anywhere
    pub = work["root"] / "bob.pub"
    pub.write_bytes(work["other"].public.to_file_bytes())
    ring.trust(read_public_key_file(pub), source=f"file:{pub}")
    assert load_skill(pkg).ref == "bob_skill@1.0.0"


def test_trust_on_first_use_refuses_a_new_signer_for_an_installed_name(work, ring, tmp_path):
    ring.trust(work["other"].public, source="test")
    lib = SkillLibrary(tmp_path / "lib")
    lib.add(work["pk"]["reach@0.1.0"])
    lib.add(work["pk"]["reach@0.2.0"])  # same signer: fine
    with pytest.raises(SkillTrustError, match="trust on first use"):
        lib.add(work["pk"]["reach@0.3.0"])  # bob is trusted, but reach came from ana
    assert lib.resolve("reach").version == "0.2.0"
    with pytest.warns(SkillTrustWarning, match="allow-signer-change"):
        entry = lib.add(work["pk"]["reach@0.3.0"], allow_signer_change=True)
    assert entry.overrides == ("signer-change",) and lib.resolve("reach").version == "0.3.0"


def test_resealed_tampered_version_never_becomes_the_default(work, ring, tmp_path):
    """The issue's attack: negate the output layer, re-seal as a newer version with the library's own writer."""
    lib = SkillLibrary(tmp_path / "lib")
    lib.add(work["pk"]["reach@0.1.0"])
    original = lib.load("reach").manifest
    from safetensors.torch import load_file

    sd = load_file(str(work["pk"]["reach@0.1.0"] / "weights.safetensors"))
    last = sorted(k for k in sd if k.endswith("weight"))[-1]
    sd[last] = -sd[last]
    from dataclasses import replace

    tampered = replace(original, version="0.1.1")
    attacker = Keyring(tmp_path / "attacker").generate("mallory")
    for i, how in enumerate([dict(sign=False), dict(signing_key=attacker)]):
        out = tmp_path / f"tampered{i}"
        write_package(out, tampered, {k: torch.as_tensor(v) for k, v in sd.items()}, **how)
        with pytest.raises((SkillSignatureError, SkillTrustError)):
            lib.add(out)
        assert lib.resolve("reach").version == "0.1.0" and lib.load("reach").manifest == original


def test_revoked_key_makes_its_packages_unloadable(work, ring, tmp_path):
    ring.trust(work["other"].public, source="test")
    lib = SkillLibrary(tmp_path / "lib")
    lib.add(work["pk"]["bob_skill@1.0.0"])
    lib.load("bob_skill")
    ring.revoke(work["other"].key_id, "lost laptop")
    with pytest.raises(SkillRevokedError, match="which you revoked"):
        lib.load("bob_skill")
    with pytest.raises(SkillRevokedError, match="which you revoked"):
        load_skill(work["pk"]["bob_skill@1.0.0"])
    with pytest.raises(SkillRevokedError):
        lib.add(work["pk"]["bob_skill@1.0.0"], force=True, allow_untrusted=True, allow_signer_change=True)
    with pytest.raises(SkillLibraryError, match="never trusted again"):
        ring.trust(work["other"].public, source="test")
    assert [r["op"] for r in read_audit(ring.audit_path)][-2:] == ["trust", "revoke"]
    assert ring.entries()[work["other"].key_id].reason == "lost laptop"


def test_library_copy_replaced_by_another_signed_package_is_refused(work, ring, tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    entry = lib.add(work["pk"]["reach@0.1.0"])
    # same name@version, same trusted signer, different weights: swapped in behind the library's back
    other = tmp_path / "other"
    make_random_skill(other, name="reach", version="0.1.0", seed=77, hidden=(16, 16))
    shutil.rmtree(entry.path)
    shutil.copytree(other, entry.path)
    with pytest.raises(SkillIntegrityError, match="not the one installed"):
        lib.load("reach")


def test_signature_checked_before_the_schema(work, ring, tmp_path):
    pkg = _copy(work["pk"]["reach@0.1.0"], tmp_path / "pkg")
    reseal(pkg, lambda d: d.update(kind="magic"))  # a schema error, but signed by a trusted key: schema speaks
    with pytest.raises(SkillLibraryError, match="unknown kind 'magic'"):
        load_skill(pkg)
    attacker = Keyring(tmp_path / "attacker").generate("mallory")
    reseal(pkg, lambda d: d.update(kind="magic"), key=attacker)  # untrusted: refused before the schema is read
    with pytest.raises(SkillTrustError, match="mallory"):
        load_skill(pkg)


def test_update_manifest_resigns_and_keeps_the_publisher(work, ring, tmp_path):
    ring.trust(work["other"].public, source="test")
    lib = SkillLibrary(tmp_path / "lib")
    lib.add(work["pk"]["bob_skill@1.0.0"])
    m = lib.manifest("bob_skill")
    from dataclasses import replace

    sealed = lib.update_manifest("bob_skill", replace(m, description="evaluated here"))
    entry = lib.resolve("bob_skill")
    assert sealed.signer.key_id == work["user"].key_id == entry.signer_key_id
    assert entry.publisher_key_id == work["other"].key_id  # trust on first use still pins bob
    assert lib.load("bob_skill").manifest.description == "evaluated here"
    assert [r["op"] for r in read_audit(lib.audit_path)] == ["add", "update"]


def test_audit_log_records_who_and_when_and_detects_edits(work, ring, tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    lib.add(work["pk"]["reach@0.1.0"])
    lib.remove("reach@0.1.0")
    records = read_audit(lib.audit_path)
    assert [r["op"] for r in records] == ["add", "remove"]
    for r in records:
        assert r["user"] and r["time"].endswith("Z") and r["key_id"] == work["user"].key_id and r["pid"] == os.getpid()
    lines = lib.audit_path.read_bytes().splitlines(keepends=True)
    edited = json.loads(lines[0])
    edited["details"]["ref"] = "something_else@0.1.0"
    lib.audit_path.write_bytes(json.dumps(edited, sort_keys=True, separators=(",", ":")).encode() + b"\n" + lines[1])
    with pytest.raises(SkillLibraryError, match="line 2 breaks the hash chain"):  # line 2 no longer chains to it
        read_audit(lib.audit_path)
    lib.audit_path.write_bytes(lines[1])  # the first line deleted
    with pytest.raises(SkillLibraryError, match="line 1 breaks the hash chain"):
        read_audit(lib.audit_path)
    with pytest.raises(SkillLibraryError, match="hash chain"):  # nothing is appended to a broken log
        lib.add(work["pk"]["reach@0.2.0"])


def test_cli_keys_and_policy_flags(work, ring, tmp_path, capsys):
    from skillstack.cli import main

    lib = str(tmp_path / "lib")
    pub = tmp_path / "bob.pub"
    assert main(["keys", "--keys", str(work["other_ring"].root), "export", "--out", str(pub)]) == 0
    assert main(["skills", "--library", lib, "add", str(work["pk"]["bob_skill@1.0.0"])]) == 2
    assert "which you do not trust" in capsys.readouterr().err
    assert main(["skills", "--library", lib, "add", "--allow-untrusted", str(work["pk"]["bob_skill@1.0.0"])]) == 0
    out = capsys.readouterr()
    assert "warning: bob_skill@1.0.0: accepted with --allow-untrusted" in out.err
    assert main(["keys", "trust", str(pub)]) == 0
    assert main(["skills", "--library", lib, "list"]) == 0
    listing = capsys.readouterr().out
    assert "SIGNER" in listing and "bob" in listing and "trusted (allowed: untrusted)" in listing
    assert main(["keys", "revoke", work["other"].key_id, "--reason", "test"]) == 0
    revoked_line = capsys.readouterr().out
    assert main(["skills", "--library", lib, "list", "--json"]) == 0
    assert "packages it signed can no longer" in revoked_line
    assert json.loads(capsys.readouterr().out)[0]["trust_now"].startswith("revoked")
    assert main(["skills", "--library", lib, "show", "bob_skill"]) == 2
    assert "which you revoked" in capsys.readouterr().err
    assert main(["keys", "list", "--json"]) == 0
    keys = {k["key_id"]: k for k in json.loads(capsys.readouterr().out)}
    assert keys[work["other"].key_id]["state"] == "revoked" and keys[work["user"].key_id]["default"]
    assert main(["skills", "--library", lib, "audit"]) == 0
    assert "hash chain intact" in capsys.readouterr().out


def test_signature_policy_pins_the_expected_key(work, ring):
    pkg = work["pk"]["reach@0.1.0"]
    assert read_package(pkg, policy=SignaturePolicy(expected_key_id=work["user"].key_id)).signature.state == "trusted"
    with pytest.raises(SkillSignatureError, match="installed signed by"):
        read_package(pkg, policy=SignaturePolicy(expected_key_id=work["other"].key_id))


def test_sign_package_signs_an_old_unsigned_package(work, ring, tmp_path):
    pkg = tmp_path / "old"
    m = read_package(work["pk"]["reach@0.1.0"]).manifest
    write_package(pkg, m, weights_bytes=(work["pk"]["reach@0.1.0"] / "weights.safetensors").read_bytes(), sign=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signed = sign_package(pkg)
    assert signed.signer.key_id == work["user"].key_id and load_skill(pkg).ref == "reach@0.1.0"
